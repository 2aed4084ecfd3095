"""CALC mode's read buffers in closed form: windows counted, never fed.

Every filter, and the IFMAP when windows do not overlap, is a sequence of blocks of distinct
addresses, each demanded some number of times in a row, no address in two blocks
(:func:`disjoint_blocks`; :func:`~hwsim.scalesim.windows.group_windows` counts their windows). An
operand that fits one window fetches each distinct address once (:func:`distinct_addresses`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .layout import Layout
from .report import ReadBuffer
from .topology import Shape
from .windows import group_windows, window_capacity, window_trace

__all__ = ["distinct_addresses", "disjoint_blocks", "closed_read_buffer"]


def distinct_addresses(sp: Shape, operand: str) -> int:
    """Distinct addresses an operand's demands touch: every filter weight, the input pixels some
    window covers."""
    if operand == "filter":
        return sp.window * sp.m

    def covered(n: int, k: int, s: int, e: int) -> int:
        if s < k:
            return min(n, (e - 1) * s + k)
        return (e - 1) * k + max(0, min(k, n - (e - 1) * s))
    return covered(sp.h, sp.r, sp.sh, sp.eh) * covered(sp.w, sp.s, sp.sw, sp.ew) * sp.c


def disjoint_blocks(sp: Shape, cfg: ScaleSimConfig, operand: str, lay: Layout) -> list[tuple[int, int]] | None:
    """The operand's demands as groups ``(size, times)``: a block of ``size`` distinct addresses
    demanded ``times`` times in a row, no address in two groups; None where windows overlap (an input
    element comes back within a block)."""
    C = cfg.array_cols
    K, M = sp.window, sp.m
    g = fold_grid(sp, cfg)
    rf, cf = g.row_folds, g.col_folds
    flow = cfg.dataflow
    if operand == "filter":
        if flow is Dataflow.OS:       # a column fold's filters, once per row fold
            return [(C * K, rf)] * (cf - 1) + [((M - (cf - 1) * C) * K, rf)]
        if flow is Dataflow.WS:       # each weight once
            return [(K * M, 1)]
        return [(K * M, cf)]          # all filters, once per column fold
    if (sp.r > sp.sh and sp.eh > 1) or (sp.s > sp.sw and sp.ew > 1):   # neighbouring windows share inputs
        return None
    if flow is Dataflow.IS:           # each (pixel, window index) once
        return [(lay.n, 1)]
    return [(lay.n // cf, cf)]        # the whole input, once per column fold


def closed_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int, lay: Layout,
                       shift_at: Callable[[int], int]) -> ReadBuffer | None:
    """:func:`~hwsim.scalesim.replay.stream_read_buffer`'s result in closed form where the operand fits
    one window or is made of repeated disjoint blocks (:func:`disjoint_blocks`); None otherwise."""
    cap = window_capacity(kb)
    first_row, last_row = lay.row_of(0), lay.row_of(lay.n - 1)
    groups = disjoint_blocks(sp, cfg, operand, lay)
    if groups is None:
        distinct = distinct_addresses(sp, operand)
        if distinct >= cap:
            return None
        closes, rest, last_close = 0, distinct, -1
    else:
        closes, rest, last_close = group_windows(groups, cap)
    last_close_row = lay.row_of(last_close) if closes else -1
    return window_trace(kb, closes, rest, last_close_row, first_row, last_row, shift_at)
