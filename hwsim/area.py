"""FPGA area of the bit-serial PE array (``rtl/``) from a least-squares model; no synthesis needed.

The model was fitted by ``sims/bench_rtl_area.py`` on Yosys ``synth_ice40`` results of the array's
exported Verilog (single carry-chain adder; Debian Yosys 0.23; data in ``docs/rtl_area.csv``). Units
are iCE40 cells: 4-input LUTs (``SB_LUT4``), flip-flops (``SB_DFF*``) and carry cells (``SB_CARRY``).

Terms (``P = rows*cols`` PEs, ``W``/``A`` weight/activation bits, ``L = acc_bits - W - A`` the
accumulator's headroom, i.e. ``log2`` of the longest tile the RTL's controller counts)::

    P*acc_bits   accumulator register and its adder, per PE
    P*(W+A-1)    gating / negation of the shifted weight, per PE
    C*(W+A-1)    the shared weight shifter of each column
    R*A          the activation shifter of each row
    L            the controller's step counter and its limit
    1            the rest of the shared controller

Fit over the 38 single-adder designs of the sweep (1..16 bits, 1x1..8x8 and non-square arrays, two
accumulator widths): largest / mean relative error LUTs 4.9% / 0.9%, FFs 6.6% / 0.9%,
carries 13.9% / 2.3% (``FIT_ERROR``; the largest errors are on the smallest designs).
"""

from __future__ import annotations

from dataclasses import dataclass

from .accelerator import Accelerator, PEKind
from .errors import check_int

__all__ = ["FPGAArea", "ICE40_COEFFS", "FIT_ERROR", "FIT_YOSYS", "array_area", "fpga_area"]

FIT_YOSYS = "Yosys 0.23 (git sha1 7ce5011c24b), synth_ice40"
# Coefficients of (P*acc, P*(W+A-1), C*(W+A-1), R*A, L, 1), from docs/rtl_area_fit.json.
ICE40_COEFFS: dict[str, tuple[float, ...]] = {
    "luts": (1.0037, 0.9788, 1.0642, 1.3078, 3.4669, 9.565),
    "ffs": (0.9972, -0.0053, 1.0473, 1.0984, 2.0042, 4.8849),
    "carries": (0.8919, 0.0916, 0.0875, 0.1659, 3.1562, -15.7196),
}
# Largest and mean relative error of the fit on the sweep's designs.
FIT_ERROR: dict[str, tuple[float, float]] = {
    "luts": (0.0488, 0.0091),
    "ffs": (0.0655, 0.0087),
    "carries": (0.1385, 0.0234),
}


@dataclass(frozen=True, slots=True)
class FPGAArea:
    """iCE40 cell counts; adds up (``a + b``) for designs made of several arrays."""

    luts: int
    ffs: int
    carries: int

    def __add__(self, other: FPGAArea) -> FPGAArea:
        if not isinstance(other, FPGAArea):
            return NotImplemented
        return FPGAArea(self.luts + other.luts, self.ffs + other.ffs, self.carries + other.carries)


def array_area(rows: int, cols: int, weight_bits: int, act_bits: int, acc_bits: int) -> FPGAArea:
    """The model for one ``rows x cols`` array of ``weight_bits`` x ``act_bits`` bit-serial PEs."""
    check_int("array_area", "rows", rows, 1, 4096)
    check_int("array_area", "cols", cols, 1, 4096)
    check_int("array_area", "weight_bits", weight_bits, 1, 32)
    check_int("array_area", "act_bits", act_bits, 1, 32)
    check_int("array_area", "acc_bits", acc_bits, weight_bits + act_bits, 128)
    pes = rows * cols
    operand = weight_bits + act_bits - 1
    headroom = acc_bits - weight_bits - act_bits
    terms = (pes * acc_bits, pes * operand, cols * operand, rows * act_bits, headroom, 1)

    def model(what: str) -> int:
        return max(0, round(sum(c * t for c, t in zip(ICE40_COEFFS[what], terms, strict=True))))

    return FPGAArea(model("luts"), model("ffs"), model("carries"))


def fpga_area(acc: Accelerator) -> FPGAArea:
    """Area of ``acc``'s PE array built as ``rtl.array.PEArray`` (bit-serial activations, broadcast)."""
    if not isinstance(acc, Accelerator):
        raise TypeError(f"fpga_area.acc must be an Accelerator, not {acc!r}")
    if acc.pe.kind is not PEKind.SERIAL_ACT:
        raise ValueError(f"fpga_area.acc.pe.kind must be 'serial_act' (the bit-serial RTL the model was fitted "
                         f"on), not {acc.pe.kind.value!r}")
    return array_area(acc.rows, acc.cols, acc.pe.max_weight_bits, acc.pe.max_act_bits, acc.pe.acc_bits)
