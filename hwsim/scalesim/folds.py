"""How SCALE-Sim 3.0.0 folds a layer onto the array, and the counts that follow from the folds alone.

A layer is a GEMM of ``E`` output pixels, a window of ``K = R·S·C`` and ``M`` filters (see
:class:`~hwsim.scalesim.topology.Shape`). Each dataflow puts two of the three on the array's rows and
columns and streams the third through time:

=========  ===========  ==============  ================
dataflow   array rows   array columns   time (T steps)
=========  ===========  ==============  ================
OS         pixels E     filters M       window K
WS         window K     filters M       pixels E
IS         window K     pixels E        filters M
=========  ===========  ==============  ================

SCALE-Sim counts two different per-fold overheads, and both are reproduced here:

* the *demand rows* of a fold (what its "Total Cycles" adds up): ``R + C + T - 2`` for OS (operands
  skewed in from two edges) and ``2R + C + T - 2`` for WS and IS (``R`` rows of a preload come first);
* the *cycles* its compute utilisation divides by: ``R + C + T - 2`` for OS, but ``2R + 2C + T - 3``
  for WS and IS (its ``compute_utils`` charges the preload's skew over the columns too, one more
  ``C - 1``). Only "Compute Util %" uses the second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accelerator import Dataflow
from ..network import Layer
from .config import ScaleSimConfig
from .topology import Shape, scalesim_shape

__all__ = ["FoldGrid", "fold_grid", "extent", "stall_free_cycles", "sram_counts", "fold_stats"]


@dataclass(frozen=True, slots=True)
class FoldGrid:
    """A layer's folds on the array: ``row_folds x col_folds`` folds of ``steps`` time steps, each
    taking ``fold_rows`` rows of demands; ``row_dim`` / ``col_dim`` are the GEMM sizes on the array's
    rows and columns, in fold order (column folds outer, row folds inner)."""

    row_folds: int
    col_folds: int
    steps: int
    fold_rows: int
    row_dim: int
    col_dim: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def demand_rows(self) -> int:
        """Rows of the whole demand matrix: one more than SCALE-Sim's stall-free "Total Cycles"."""
        return self.folds * self.fold_rows


def fold_grid(sp: Shape, cfg: ScaleSimConfig) -> FoldGrid:
    """The folds of ``sp`` on ``cfg``'s array; the demand-row overhead is SCALE-Sim's (module docstring)."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    if cfg.dataflow is Dataflow.OS:   # skewed in from the left (ifmap) and the top (filter)
        return FoldGrid(-(-P // R), -(-M // C), K, R + C + K - 2, P, M)
    if cfg.dataflow is Dataflow.WS:   # R rows of weights preloaded, then the ifmap skewed in
        return FoldGrid(-(-K // R), -(-M // C), P, 2 * R + C + P - 2, K, M)
    if cfg.dataflow is Dataflow.IS:   # R rows of inputs preloaded, then the filters skewed in
        return FoldGrid(-(-K // R), -(-P // C), M, 2 * R + C + M - 2, K, P)
    raise ValueError(f"ScaleSimConfig.dataflow must be os, ws or is, not {cfg.dataflow!r}")


def extent(n: int, size: int, i: int) -> int:
    """Size of the i-th of the blocks of ``size`` that cover ``n`` (the last may be short)."""
    return min(size, n - i * size)


def stall_free_cycles(layer: Layer, cfg: ScaleSimConfig) -> int:
    """SCALE-Sim's "Total Cycles" of a stall-free run, in closed form: the index of the last demand row,
    ``folds * (R + C + T - 2) - 1`` (OS) or ``folds * (2R + C + T - 2) - 1`` (WS, IS)."""
    return fold_grid(scalesim_shape(layer), cfg).demand_rows - 1


def sram_counts(sp: Shape, cfg: ScaleSimConfig) -> tuple[int, int, int]:
    """SRAM IFMAP reads, filter reads and OFMAP writes: one per demand slot, out-of-input window slots
    included; SCALE-Sim's OS OFMAP count adds the padded fold's ``R + C`` once per fold."""
    g = fold_grid(sp, cfg)
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    if cfg.dataflow is Dataflow.OS:
        return g.col_folds * K * P, g.row_folds * K * M, P * M + g.folds * (R + C)
    if cfg.dataflow is Dataflow.WS:
        return g.col_folds * P * K, K * M, g.row_folds * P * M
    return K * P, g.col_folds * M * K, g.row_folds * M * P


def fold_stats(sp: Shape, cfg: ScaleSimConfig) -> tuple[float, float]:
    """Unweighted means over folds of mapping efficiency and compute utilisation, summed in SCALE-Sim's
    order (column folds outer, row folds inner) so that the floating-point sums are its own; a fold's
    utilisation divides by the second overhead of the module docstring (``2R + 2C + T - 3`` for WS, IS).
    Folds take at most four values: the lists are built by repetition."""
    R, C = cfg.array_rows, cfg.array_cols
    g = fold_grid(sp, cfg)
    T = g.steps
    cyc = R + C + T - 2 if cfg.dataflow is Dataflow.OS else 2 * R + 2 * C + T - 3
    sr, sc, rf, cf = g.row_dim, g.col_dim, g.row_folds, g.col_folds
    maps: list[float] = []
    utils: list[float] = []
    for cu, times in ((C, cf - 1), (sc - (cf - 1) * C, 1)):
        if times == 0:
            continue
        used = [R * cu] * (rf - 1) + [(sr - (rf - 1) * R) * cu]
        maps += [u / (R * C) for u in used] * times
        utils += [u * T / (R * C * cyc) for u in used] * times
    return sum(maps) / len(maps), sum(utils) / len(utils)
