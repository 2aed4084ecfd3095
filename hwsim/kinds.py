"""What varies by PE kind and by dataflow, as data: one table each (DESIGN rule 4).

Adding a PE kind that only the model knows means one entry in :data:`PE_KINDS` (plus tests and docs);
a test checks that every :class:`~hwsim.accelerator.PEKind` has one. Dataflows are the rows of
:data:`DATAFLOW_AXES`: which GEMM dimension goes on the array's rows, its columns and in time. Folds
and SRAM access counts follow from that one rule (:func:`hwsim.engine.tile_costs`).

Energy per MAC (pJ), with ``k_m`` = ``EnergyTable.mult_pj_per_bit2``, ``k_a`` = ``add_pj_per_bit``,
``acc`` the accumulator width and ``N`` = ``PESpec.adder_tree`` (docs/models.md, "PE kinds"):

* ``parallel``: one ``w x a`` multiplier and one accumulator add: ``k_m·w·a + k_a·acc``.
* ``serial_act`` (Stripes): ``a`` cycles of ``w`` AND cells; the ``N = 2^L`` products of a lane group are
  summed by a binary adder tree of ``T(N, w) = (N−1)·w + N − L − 1`` full adders before one
  accumulator add, every bit cycle: ``k_m·w·a + a·k_a·(T(N, w) + acc)/N``. ``N = 1`` is one accumulator
  per PE (today's RTL); Stripes' and Loom's PEs sum 16 lanes (the Moshovos group's simulator DNNsim,
  ``WEIGHT_LANES 16``).
* ``serial_both`` (Loom): ``a·w`` cycles of one AND each; the tree sums 1-bit products:
  ``k_m·w·a + a·w·k_a·(T(N, 1) + acc)/N``.
* ``fusion`` (Bit Fusion): ``pf = ⌊P/max(a,b)⌋·⌊P/max(w,b)⌋`` products per fusion unit per cycle, with
  ``b`` the BitBrick width (2) and ``P`` the unit's width (8); the bricks cost their bit-products at the
  brick floor, plus the fusion shift-add overhead, and the ``pf`` products share one accumulator add:
  ``o·k_m·max(w,b)·max(a,b) + k_a·acc/pf`` (Sharma et al., ISCA 2018).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .energy import EnergyTable

if TYPE_CHECKING:
    from .accelerator import PESpec


class PEKind(StrEnum):
    """How a PE spends cycles on precision: one entry of :data:`PE_KINDS` each (docs/models.md)."""

    PARALLEL = "parallel"        # fixed-width MAC, 1 MAC per cycle (classic systolic array)
    SERIAL_ACT = "serial_act"    # Stripes: weights parallel, activations 1 bit per cycle
    SERIAL_BOTH = "serial_both"  # Loom / BISMO: 1 weight bit x 1 activation bit per cycle
    FUSION = "fusion"            # Bit Fusion: 2-bit bricks fuse along the reduction (fusion_factor)


class Dataflow(StrEnum):
    """Which operand stays in the PEs; what goes on rows, columns and time is :data:`DATAFLOW_AXES`."""

    OS = "os"  # output stationary
    WS = "ws"  # weight stationary
    IS = "is"  # input stationary

__all__ = ["PEKind", "Dataflow", "KindModel", "PE_KINDS", "DATAFLOW_AXES", "GEMM_DIMS", "kind_model",
           "kind_options", "pe_step", "mac_pj", "multiply_add_pj", "fusion_factor", "tree_bits"]

GEMM_DIMS = ("P", "K", "N")
"""A layer tile is the GEMM ``(P x K) @ (K x N)``: P output pixels, K reduction, N filters."""

DATAFLOW_AXES: dict[Dataflow, tuple[str, str, str]] = {
    Dataflow.OS: ("P", "N", "K"),  # output stationary: rows <- pixels, cols <- filters, time <- reduction
    Dataflow.WS: ("K", "N", "P"),  # weight stationary: rows <- reduction, cols <- filters, time <- pixels
    Dataflow.IS: ("K", "P", "N"),  # input stationary:  rows <- reduction, cols <- pixels, time <- filters
}
"""``(rows, cols, time)`` of each dataflow: the only place a dataflow is defined."""


def fusion_factor(pe: PESpec, weight_bits: int, act_bits: int) -> int:
    """Products one Bit Fusion unit computes per cycle: ``⌊A/max(a,b)⌋·⌊W/max(w,b)⌋`` with BitBricks
    of ``b = pe.brick_bits`` (Sharma et al., ISCA 2018; the authors' simulator, ``get_perf_factor``)."""
    b = pe.brick_bits
    return (pe.max_act_bits // max(act_bits, b)) * (pe.max_weight_bits // max(weight_bits, b))


def tree_bits(n: int, product_bits: int) -> int:
    """Full adders of a binary adder tree summing ``n = 2^L`` products of ``p = product_bits``: level ``l``
    has ``n/2^l`` adders of ``p + l - 1`` bits, which sums to ``(n-1)·p + n - L - 1``."""
    levels = n.bit_length() - 1
    return (n - 1) * product_bits + n - levels - 1


def multiply_add_pj(e: EnergyTable, w: int, a: int, acc_bits: int) -> float:
    """One ``w x a`` multiply into an ``acc_bits`` accumulator: ``k_m·w·a + k_a·acc``."""
    return e.mult_pj_per_bit2 * w * a + e.add_pj_per_bit * acc_bits


def _tree_pj(e: EnergyTable, n: int, product_bits: int, acc_bits: int) -> float:
    """One bit cycle of an adder tree of ``n`` products and one accumulator add, per product."""
    return e.add_pj_per_bit * (tree_bits(n, product_bits) + acc_bits) / n


@dataclass(frozen=True, slots=True)
class KindModel:
    """The model of one PE kind.

    ``step(pe, w, a)`` is ``(cycles, reduction elements)`` of one step of one PE; ``mac(e, pe, w, a)`` the
    energy of one MAC in pJ; ``weight_bits_set_cycles`` says whether grouping channels of equal weight
    width can shorten the run (the default schedule groups only then); ``rtl`` whether rtl/ builds it."""

    step: Callable[[PESpec, int, int], tuple[int, int]]
    mac: Callable[[EnergyTable, PESpec, int, int], float]
    weight_bits_set_cycles: bool
    rtl: bool
    like: str
    options: frozenset[str] = frozenset()
    """The ``PESpec`` micro-architecture options this kind reads (others must keep their defaults)."""


PE_KINDS: dict[PEKind, KindModel] = {
    PEKind.PARALLEL: KindModel(
        step=lambda pe, w, a: (1, 1),
        mac=lambda e, pe, w, a: multiply_add_pj(e, w, a, pe.acc_bits),
        weight_bits_set_cycles=False, rtl=True, like="TPU-style fixed-width MAC"),
    PEKind.SERIAL_ACT: KindModel(
        step=lambda pe, w, a: (a, 1),
        mac=lambda e, pe, w, a: e.mult_pj_per_bit2 * w * a + a * _tree_pj(e, pe.adder_tree, w, pe.acc_bits),
        weight_bits_set_cycles=False, rtl=True, like="Stripes (Judd et al., MICRO 2016)",
        options=frozenset({"adder_tree"})),
    PEKind.SERIAL_BOTH: KindModel(
        step=lambda pe, w, a: (a * w, 1),
        mac=lambda e, pe, w, a: e.mult_pj_per_bit2 * w * a + a * w * _tree_pj(e, pe.adder_tree, 1, pe.acc_bits),
        weight_bits_set_cycles=True, rtl=True, like="Loom (Sharify et al., DAC 2018), BISMO (FPL 2018)",
        options=frozenset({"adder_tree"})),
    PEKind.FUSION: KindModel(
        step=lambda pe, w, a: (1, fusion_factor(pe, w, a)),
        mac=lambda e, pe, w, a: (e.fusion_overhead * e.mult_pj_per_bit2 * max(w, pe.brick_bits)
                                 * max(a, pe.brick_bits) + e.add_pj_per_bit * pe.acc_bits
                                 / fusion_factor(pe, w, a)),
        weight_bits_set_cycles=True, rtl=False, like="Bit Fusion (Sharma et al., ISCA 2018)",
        options=frozenset({"brick_bits"})),
}
"""The per-kind table, keyed by :class:`PEKind`; a test checks it is complete."""


def kind_model(pe: PESpec) -> KindModel:
    try:
        return PE_KINDS[pe.kind]
    except KeyError:
        raise ValueError(f"PESpec.kind must be one of {[k.value for k in PE_KINDS]}, not {pe.kind!r}") from None


def kind_options(kind: PEKind) -> frozenset[str]:
    """The micro-architecture options a PE kind reads (``PESpec`` validates the others stay at defaults)."""
    return PE_KINDS[kind].options


def pe_step(pe: PESpec, weight_bits: int, act_bits: int) -> tuple[int, int]:
    """``(cycles, reduction elements)``: one step of a PE takes ``cycles`` cycles and consumes that many
    elements of each output's reduction (fused bricks lengthen the reduction a PE takes per step)."""
    pe.check_bits("PE", weight_bits, act_bits)
    return kind_model(pe).step(pe, weight_bits, act_bits)


def mac_pj(e: EnergyTable, pe: PESpec, weight_bits: int, act_bits: int) -> float:
    """Energy of one MAC on ``pe`` at the given operand widths (module docstring)."""
    return kind_model(pe).mac(e, pe, weight_bits, act_bits)
