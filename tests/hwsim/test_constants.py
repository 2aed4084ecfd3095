"""Every default constant of the energy model, pinned to its source: the source's figure, in the source's
unit, converted here to the unit hwsim stores, so a unit slip (per bit vs per byte vs per access) fails.

Sources
* [H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, the
  energy table for 45 nm (integer add / multiply, 64-bit cache access by size, DRAM per 64-bit access).
* [E16] Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for
  Convolutional Neural Networks", ISCA 2016, table "Normalized energy cost relative to a MAC operation
  extracted from a commercial 65 nm process": RF 1x, PE-to-PE (array) 2x, global buffer 6x, DRAM 200x.
* [BF18] H. Sharma et al., "Bit Fusion: Bit-Level Dynamically Composable Architecture for Accelerating
  Deep Neural Networks", ISCA 2018, and the authors' simulator github.com/hsharma35/bitfusion:
  ``bf_e_conf.ini`` (low_prec = 2) and ``results/systolic_array_synth.csv`` (their 45 nm synthesis,
  500 MHz), whose 4x4 rows ``simulator.py`` scales by N*M/16 to price the evaluated 16x32 array.
"""

from __future__ import annotations

import math

import pytest

import hwsim
from hwsim.energy import EnergyTable, sram_access_pj

# ---- [H14], in its units -------------------------------------------------------------------------------
H14_ADD_8BIT_PJ = 0.03
H14_ADD_32BIT_PJ = 0.1
H14_MULT_8BIT_PJ = 0.2
H14_MULT_32BIT_PJ = 3.1
H14_SRAM_64BIT_ACCESS_PJ = {8 * 1024: 10.0, 32 * 1024: 20.0, 1024 * 1024: 100.0}  # bytes of cache -> pJ/access
H14_DRAM_64BIT_ACCESS_NJ = (1.3, 2.6)                                               # range, nJ per access

# ---- [E16] ratios (dimensionless, relative to one MAC) --------------------------------------------------
E16_RF_PER_MAC = 1.0
E16_PE_TO_PE_PER_MAC = 2.0

# ---- [BF18] ---------------------------------------------------------------------------------------------
BF18_BITBRICK_BITS = 2  # bf_e_conf.ini: low_prec
BF18_DYN_POWER_4X4_FUSION_NW = 3_673_500  # systolic_array_synth.csv line 94: N=4, M=4, max 8, min 2 (fusion)
BF18_DYN_POWER_4X4_FIXED8_NW = 1_627_500  # systolic_array_synth.csv line 95: N=4, M=4, max 8, min 8 (fixed 8-bit)

# ---- unit conversions -----------------------------------------------------------------------------------
PJ_PER_NJ = 1000.0
BITS_PER_BYTE = 8
DRAM_ACCESS_BITS = 64
ACC_BITS = 32  # the accumulator width hwsim's default PESpec uses, for the per-MAC derivations


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


D = EnergyTable()


def test_dram_pj_per_byte_is_the_midpoint_of_horowitz_per_64bit_access() -> None:
    """1.3-2.6 nJ per 64-bit access: midpoint 1.95 nJ = 1950 pJ per 8 bytes = 243.75 pJ/byte (not per bit)."""
    mid_pj_per_access = sum(H14_DRAM_64BIT_ACCESS_NJ) / 2 * PJ_PER_NJ
    expected = mid_pj_per_access / (DRAM_ACCESS_BITS / BITS_PER_BYTE)
    assert D.dram_pj_per_byte == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(243.75)
    # within the published range, per byte
    lo, hi = (e * PJ_PER_NJ / (DRAM_ACCESS_BITS / BITS_PER_BYTE) for e in H14_DRAM_64BIT_ACCESS_NJ)
    assert lo <= D.dram_pj_per_byte <= hi


def test_accelerator_dram_energy_defaults_to_the_table() -> None:
    acc = hwsim.Accelerator("t", 4, 4)
    assert acc.dram.energy_pj_per_byte is None
    assert acc.dram_pj_per_byte == D.dram_pj_per_byte


def test_mult_pj_per_bit2_reproduces_horowitz_8_and_32_bit_multipliers() -> None:
    """An array multiplier has w*a partial-product cells: k_m*64 ~ 0.2 pJ, k_m*1024 ~ 3.1 pJ, each within 4 %."""
    assert rel(D.mult_pj_per_bit2 * 8 * 8, H14_MULT_8BIT_PJ) <= 0.04
    assert rel(D.mult_pj_per_bit2 * 32 * 32, H14_MULT_32BIT_PJ) <= 0.04


def test_add_pj_per_bit_is_the_mean_of_horowitz_8_and_32_bit_adders() -> None:
    """0.03/8 = 3.75e-3 and 0.1/32 = 3.125e-3 pJ/bit; mean 3.44e-3 (stored rounded to 3.4e-3: 1.5 %)."""
    mean = (H14_ADD_8BIT_PJ / 8 + H14_ADD_32BIT_PJ / 32) / 2
    assert rel(D.add_pj_per_bit, mean) <= 0.015
    # and each end point within the 10 % the linear fit leaves
    assert rel(D.add_pj_per_bit * 8, H14_ADD_8BIT_PJ) <= 0.10
    assert rel(D.add_pj_per_bit * 32, H14_ADD_32BIT_PJ) <= 0.10


@pytest.mark.parametrize("size_bytes", sorted(H14_SRAM_64BIT_ACCESS_PJ))
def test_sram_points_are_horowitz_64bit_accesses(size_bytes: int) -> None:
    """The SRAM curve passes through Horowitz's three points, in pJ per 64-bit access."""
    assert sram_access_pj(size_bytes, 64) == pytest.approx(H14_SRAM_64BIT_ACCESS_PJ[size_bytes], rel=1e-9)


@pytest.mark.parametrize("word_bits", [8, 32, 128])
def test_sram_energy_is_per_access_of_word_bits(word_bits: int) -> None:
    """Per access of ``word_bits`` (bit-lines switched): a 64-bit point scaled by word_bits/64."""
    for size, pj64 in H14_SRAM_64BIT_ACCESS_PJ.items():
        assert sram_access_pj(size, word_bits) == pytest.approx(pj64 * word_bits / 64, rel=1e-9)


def test_buffer_default_read_energy_comes_from_the_curve_per_bank() -> None:
    b = hwsim.BufferSpec(64 * 1024, word_bits=64, banks=2)
    assert b.read_energy_pj == pytest.approx(H14_SRAM_64BIT_ACCESS_PJ[32 * 1024])


def test_noc_pj_per_byte_is_eyeriss_pe_to_pe_ratio_times_one_8bit_mac() -> None:
    """[E16] normalises to one MAC: PE-to-PE = 2 x MAC per operand moved. With [H14]'s 8-bit MAC
    (0.2 pJ multiply + 0.03 pJ add) per 8-bit operand = 1 byte: 2 x 0.23 = 0.46 pJ/byte (within 5 %)."""
    mac_8bit_pj = H14_MULT_8BIT_PJ + H14_ADD_8BIT_PJ
    rf_access_pj = E16_RF_PER_MAC * mac_8bit_pj
    pe_to_pe_pj_per_operand = E16_PE_TO_PE_PER_MAC / E16_RF_PER_MAC * rf_access_pj
    expected_pj_per_byte = pe_to_pe_pj_per_operand / (8 / BITS_PER_BYTE)  # an 8-bit operand is one byte
    assert rel(D.noc_pj_per_byte, expected_pj_per_byte) <= 0.05, (
        f"noc_pj_per_byte={D.noc_pj_per_byte} but Eyeriss' 2x-a-MAC with Horowitz' 8-bit MAC gives "
        f"{expected_pj_per_byte:.3g} pJ/byte")


def test_fusion_overhead_matches_the_authors_synthesis() -> None:
    """[BF18] synthesis: a 4x4 array of fusion units (pmax 8, pmin 2) dissipates 3.6735 mW dynamic against
    1.6275 mW for 4x4 plain 8-bit PEs, same 500 MHz, both 1 MAC/cycle/PE at 8/8 bits: 2.26x per MAC. With
    hwsim's fusion MAC o*k_m*w*a + k_a*acc against the parallel k_m*w*a + k_a*acc at 8/8, that ratio
    needs o = (R*(m + a) - a)/m; the stored overhead must be within 10 % of it."""
    ratio = BF18_DYN_POWER_4X4_FUSION_NW / BF18_DYN_POWER_4X4_FIXED8_NW
    m = D.mult_pj_per_bit2 * 8 * 8
    a = D.add_pj_per_bit * ACC_BITS
    expected = (ratio * (m + a) - a) / m
    assert rel(D.fusion_overhead, expected) <= 0.10, (
        f"fusion_overhead={D.fusion_overhead}; the authors' synthesis (fusion/fixed-8 = {ratio:.3f}) gives "
        f"{expected:.3g}")


def test_fusion_brick_floor_is_bit_fusions_2bit_bitbrick() -> None:
    assert hwsim.PESpec(kind="fusion").brick_bits == BF18_BITBRICK_BITS  # type: ignore[arg-type]


def test_every_energy_default_is_pinned_here() -> None:
    """A new EnergyTable field needs its source pinned above (this list is the fields tested in this file)."""
    pinned = {"mult_pj_per_bit2", "add_pj_per_bit", "dram_pj_per_byte", "noc_pj_per_byte", "fusion_overhead"}
    assert set(EnergyTable.__dataclass_fields__) == pinned
    assert all(math.isfinite(getattr(D, f)) for f in pinned)
