"""Energy model: per-MAC energy as a function of operand widths, SRAM energy per access by size and
width, DRAM energy per byte, leakage over time.

Default numbers and their sources (all 45 nm, 0.9 V unless stated):

* M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, slide/table
  "Energy per operation": 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit mult 0.2 pJ, 32-bit mult 3.1 pJ;
  64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); DRAM 1.3-2.6 nJ per 64-bit access.
* Y.-H. Chen et al., "Eyeriss", ISCA 2016: normalised access energy RF 1 : PE-to-PE 2 : buffer 6 :
  DRAM 200 (relative to one MAC). Used for the ``noc_pj_per_byte`` default (2 x one 8-bit MAC per byte).
* H. Sharma et al., "Bit Fusion", ISCA 2018, and the authors' synthesis results: ``fusion_overhead``.

A multiplier's energy grows with the product of its operand widths (an array multiplier has wa*wb
partial-product cells): 0.2 pJ / 64 = 3.1e-3 pJ per bit-product at 8 bits and 3.1 / 1024 = 3.0e-3 at
32 bits, so one coefficient fits both points within 4%. An adder grows with its width: 0.03/8 =
3.75e-3 and 0.1/32 = 3.1e-3 pJ per bit; we take the mean, 3.4e-3 pJ per bit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .errors import check_float

__all__ = ["EnergyTable", "HOROWITZ_45NM", "sram_access_pj"]

# Horowitz ISSCC 2014: 64-bit SRAM access energy by array size (bytes -> pJ).
_SRAM_POINTS_64BIT: tuple[tuple[float, float], ...] = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


@functools.lru_cache(maxsize=4096)
def sram_access_pj(size_bytes: int, word_bits: int) -> float:
    """Energy of one access of ``word_bits`` to an SRAM of ``size_bytes``.

    Interpolates Horowitz's three 64-bit points linearly in log(size) (and extrapolates with the end
    slopes), then scales linearly with the word width (the bit-lines switched).
    """
    xs = [math.log2(s) for s, _ in _SRAM_POINTS_64BIT]
    ys = [math.log2(e) for _, e in _SRAM_POINTS_64BIT]
    x = math.log2(max(size_bytes, 1))
    if x <= xs[1]:
        i = 0
    else:
        i = 1
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    e64 = 2.0 ** (ys[i] + slope * (x - xs[i]))
    return e64 * word_bits / 64.0


@dataclass(frozen=True, slots=True)
class EnergyTable:
    """Technology energy coefficients; every field is user-overridable from the accelerator YAML."""

    mult_pj_per_bit2: float = 3.1e-3
    """Multiplier energy per partial-product bit (wa*wb); Horowitz 2014 (8-bit mult 0.2 pJ)."""
    add_pj_per_bit: float = 3.4e-3
    """Adder/accumulator energy per bit of width; Horowitz 2014 (8-bit add 0.03 pJ, 32-bit 0.1 pJ)."""
    dram_pj_per_byte: float = 243.75
    """DRAM energy per byte: midpoint of Horowitz's 1.3-2.6 nJ per 64-bit (8-byte) access: 1950 pJ / 8 B."""
    noc_pj_per_byte: float = 0.46
    """Operand movement PE-to-PE per byte: Eyeriss (Chen et al., ISCA 2016) normalises a PE-to-PE transfer
    to 2 x one MAC; with Horowitz's 8-bit MAC (0.2 + 0.03 pJ) per 8-bit operand, 2 x 0.23 = 0.46 pJ/byte."""
    fusion_overhead: float = 2.95
    """Bit Fusion brick-multiplier overhead (shift-add tree, fusion control): the authors' synthesis
    (github hsharma35/bitfusion, results/systolic_array_synth.csv, 4x4 arrays at 500 MHz) gives fusion
    units 3.6735 mW of dynamic power against 1.6275 mW for fixed 8-bit PEs, 2.26x per MAC at 8/8 bits;
    with this table's 8-bit multiply and 32-bit add that needs o = 2.95. MAC energy per PE kind is
    :func:`hwsim.kinds.mac_pj`."""

    def __post_init__(self) -> None:
        for f in ("mult_pj_per_bit2", "add_pj_per_bit", "dram_pj_per_byte", "noc_pj_per_byte"):
            check_float("EnergyTable", f, getattr(self, f), lo=0.0)
        check_float("EnergyTable", "fusion_overhead", self.fusion_overhead, lo=1.0)


HOROWITZ_45NM = EnergyTable()
