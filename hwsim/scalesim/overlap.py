"""CALC mode's IFMAP read buffer in closed form where windows overlap (placeholder, filled below)."""

from __future__ import annotations

from collections.abc import Callable

from .config import ScaleSimConfig
from .report import ReadBuffer
from .topology import Shape

__all__ = ["overlap_read_buffer"]


def overlap_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                        shift_at: Callable[[int], int]) -> ReadBuffer | None:
    return None
