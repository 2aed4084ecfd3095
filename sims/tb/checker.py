"""Compares what the monitor saw with the model: values bit-exact, cycles exactly as hwsim predicts."""

from __future__ import annotations

from dataclasses import dataclass

from .model import BenchConfig, Tile, expected_acc, expected_cycles
from .monitor import Completion

__all__ = ["Mismatch", "check"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    tile: int
    what: str

    def __str__(self) -> str:
        return f"tile {self.tile}: {self.what}"


def check(cfg: BenchConfig, tiles: list[Tile], seen: list[Completion]) -> list[Mismatch]:
    problems: list[Mismatch] = []
    if len(seen) != len(tiles):
        problems.append(Mismatch(len(seen), f"{len(seen)} tiles completed, {len(tiles)} sent"))
    previous = [0] * (cfg.rows * cfg.cols)
    for i, (tile, got) in enumerate(zip(tiles, seen, strict=False)):
        want = expected_acc(cfg, tile, previous)
        if list(got.acc) != want:
            problems.append(Mismatch(i, f"acc {list(got.acc)} != golden {want}"))
        cycles = expected_cycles(cfg, tile.plan)
        if got.cycles != cycles:
            problems.append(Mismatch(i, f"took {got.cycles} cycles, hwsim.timing predicts {cycles} "
                                        f"(K={tile.plan.steps}, p={tile.plan.precision})"))
        previous = want
    return problems
