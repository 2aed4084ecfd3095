"""Independent reference for Bit Fusion's compute cycles, written from the authors' own simulator.

Paper: H. Sharma, J. Park, N. Suda, L. Lai, B. Chau, V. Chandra, H. Esmaeilzadeh, "Bit Fusion: Bit-Level
Dynamically Composable Architecture for Accelerating Deep Neural Networks", ISCA 2018.
Simulator: github.com/hsharma35/bitfusion (commit 04ec1c8, "updated notebook"). What this module follows:

* ``bitfusion/src/simulator/accelerator.py``
  - ``Accelerator.get_perf_factor`` (lines 61-64): ``iprec = max(iprec, pmin)``, ``wprec = max(wprec, pmin)``,
    ``return int(pmax / iprec) * int(pmax / wprec)``. Widths below ``pmin`` (the 2-bit BitBrick) run as
    ``pmin``: at 1/1 bits the factor is (8/2)^2 = 16, not 64.
  - ``Accelerator.get_compute_cycles`` (lines 67-93), with ``overhead = 0``:
      channel-wise (``im2col=False``): ``b * ceil(oc/M) * ow * oh * kw * kh * ceil(ic / (N*pf))``
      im2col (``im2col=True``):      ``b*oh*ow * ceil(oc/M) * ceil(kw*kh*ic / (N*pf))``
    So the perf factor lengthens the *reduction* (input channels) that one array column sums per cycle;
    output channels fold over the M columns; every output pixel, kernel position and batch sample is one
    more cycle. Stride does not appear (it only sizes the input tile). No fill/drain term (overhead is 0).
* ``bitfusion/src/simulator/simulator.py``
  - ``Simulator.__init__`` (lines 34-36, 80-86): ``N = config 'a'``, ``M = config 'c'``; ``__str__`` (350-352)
    prints them as "N -inputs x M -outputs". ``bf_e_conf.ini`` (the Bit Fusion-vs-Eyeriss configuration
    the repository's notebook evaluates; its printout reads "Systolic array size: 16 -inputs x 32 -outputs")
    sets a = 16, c = 32, high_prec (pmax) = 8, low_prec (pmin) = 2, 500 MHz.
  - ``Simulator.get_FC_cycles`` (lines 379-398): an FC layer is ``get_conv_cycles(K=1, O=1, S=1, IC=Ni,
    OC=No, batch)``: ``B * ceil(No/M) * ceil(Ni/(N*pf))``.
  - ``Simulator.get_cycles`` (lines 471-499): ``im2col=True`` only for a layer fed by the network input
    (``op.data.op is None``, lines 481-484); every other conv runs channel-wise.
* ``bitfusion/src/optimizer/optimizer.py``, ``get_stats_fast`` (lines 34-256):
  ``compute_cycles = num_tiles * acc_obj.get_compute_cycles(<tile extents>)`` (line 244) and
  ``total_cycles = compute_cycles + memory_stalls`` (247-248), where the stalls are
  ``max(0, memory_cycles - compute_cycles)`` plus the first load / last write-back latency. Compute cycles
  therefore exclude memory stalls; with the whole layer in one tile they are exactly the formula above.

The mapping onto a weight-stationary N x M systolic array: rows (N = 16) carry input channels, columns
(M = 32) carry output channels, and each fusion unit of a row sums ``pf`` products per cycle, so one array
column reduces ``N * pf`` input channels per cycle; output pixels (and batch) stream in time.
"""

from __future__ import annotations

__all__ = [
    "BF_E_ROWS_N", "BF_E_COLS_M", "BF_PMAX_BITS", "BF_PMIN_BITS", "perf_factor", "conv_compute_cycles",
    "fc_compute_cycles",
]

BF_E_ROWS_N = 16
"""Array rows N ("inputs", the reduction), ``bf_e_conf.ini`` key ``a``."""
BF_E_COLS_M = 32
"""Array columns M ("outputs", the filters), ``bf_e_conf.ini`` key ``c``."""
BF_PMAX_BITS = 8
"""Widest operand a fusion unit takes in one cycle, ``bf_e_conf.ini`` key ``high_prec``."""
BF_PMIN_BITS = 2
"""BitBrick width: narrower operands still occupy a whole brick, ``bf_e_conf.ini`` key ``low_prec``."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_bits(name: str, bits: int, pmax: int) -> None:
    # The authors' int(pmax / bits) is 0 above pmax (then a division by zero); widths must be 1..pmax.
    if not isinstance(bits, int) or not 1 <= bits <= pmax:
        raise ValueError(f"bitfusion_ref.{name} must be an integer in [1, {pmax}], not {bits!r}")


def perf_factor(act_bits: int, weight_bits: int, pmax: int = BF_PMAX_BITS, pmin: int = BF_PMIN_BITS) -> int:
    """MACs one fusion unit completes per cycle: floor(pmax/max(a,pmin)) * floor(pmax/max(w,pmin))."""
    _check_bits("act_bits", act_bits, pmax)
    _check_bits("weight_bits", weight_bits, pmax)
    return (pmax // max(act_bits, pmin)) * (pmax // max(weight_bits, pmin))


def conv_compute_cycles(*, in_channels: int, out_channels: int, out_h: int, out_w: int, kernel_h: int,
                        kernel_w: int, batch: int, act_bits: int, weight_bits: int, rows: int = BF_E_ROWS_N,
                        cols: int = BF_E_COLS_M, pmax: int = BF_PMAX_BITS, pmin: int = BF_PMIN_BITS,
                        im2col: bool = False) -> int:
    """Compute cycles of one conv layer held in one tile (``Accelerator.get_compute_cycles``).

    ``im2col=False`` (the authors' path for every layer not fed by the network input):
    B * ceil(OC/M) * OH * OW * KH * KW * ceil(IC/(N*pf)). ``im2col=True`` (their path for the first layer):
    B * OH * OW * ceil(OC/M) * ceil(KH*KW*IC/(N*pf)). Stride enters only through OH, OW.
    """
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("out_h", out_h),
                    ("out_w", out_w), ("kernel_h", kernel_h), ("kernel_w", kernel_w), ("batch", batch),
                    ("rows", rows), ("cols", cols)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"bitfusion_ref.{name} must be a positive integer, not {v!r}")
    pf = perf_factor(act_bits, weight_bits, pmax, pmin)
    if im2col:
        return batch * out_h * out_w * _ceil_div(out_channels, cols) * _ceil_div(
            kernel_h * kernel_w * in_channels, rows * pf)
    return (batch * _ceil_div(out_channels, cols) * out_w * out_h * kernel_w * kernel_h
            * _ceil_div(in_channels, rows * pf))


def fc_compute_cycles(*, in_features: int, out_features: int, batch: int, act_bits: int, weight_bits: int,
                      rows: int = BF_E_ROWS_N, cols: int = BF_E_COLS_M, pmax: int = BF_PMAX_BITS,
                      pmin: int = BF_PMIN_BITS) -> int:
    """Compute cycles of an FC layer (``Simulator.get_FC_cycles``): a 1x1 conv on a 1x1 map,
    B * ceil(No/M) * ceil(Ni/(N*pf))."""
    return conv_compute_cycles(in_channels=in_features, out_channels=out_features, out_h=1, out_w=1, kernel_h=1,
                               kernel_w=1, batch=batch, act_bits=act_bits, weight_bits=weight_bits, rows=rows,
                               cols=cols, pmax=pmax, pmin=pmin)
