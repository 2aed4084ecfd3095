"""hwsim's ``fusion`` PE against the Bit Fusion authors' own cycle equations (reference in ``bitfusion_ref``).

Array: the one the authors evaluate against Eyeriss (``bf_e_conf.ini`` of github.com/hsharma35/bitfusion):
16 x 32 fusion units (N = 16 rows carry input channels, M = 32 columns carry output channels), pmax = 8,
pmin = 2, weight-stationary systolic. Buffers are large enough that every layer is one DRAM tile, so the
authors' ``num_tiles * get_compute_cycles(tile)`` is their formula applied once.

hwsim folds the flattened reduction (IC*KH*KW on the rows), one rule for every PE kind and dataflow: it
equals the authors' im2col path exactly, on every layer and width. Against their default channel-wise path
the bound is: never more cycles, and equal wherever KH*KW == 1 or IC is a multiple of N*pf (the
channel-wise path then leaves no row idle either).

Compared number: ``LayerResult.compute_cycles``. The authors' ``get_compute_cycles`` has
``overhead = 0`` (no fill/drain) and leaves memory stalls out of compute cycles; hwsim reports the systolic
fill/drain in ``fill_cycles`` and stalls in ``stall_cycles``, so neither belongs in the compared number.

None of these layers is fed by a network input, so the authors' simulator takes its channel-wise path
(``im2col=False``) for all of them (``Simulator.get_cycles``), including the 3-channel 7x7 stem shape:
the reduction folds per kernel position, KH*KW*ceil(IC/(N*pf)). A model that flattens the reduction
(IC*KH*KW on the rows) reproduces the authors' im2col path instead, ceil(KH*KW*IC/(N*pf)); the two agree
only where KH*KW == 1 or IC is a multiple of N*pf.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import re
from pathlib import Path

import pytest

import hwsim
from hwsim import Layer, LayerKind

_spec = importlib.util.spec_from_file_location("bitfusion_ref", Path(__file__).with_name("bitfusion_ref.py"))
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

WIDTHS = (1, 2, 4, 8)
BIG_SRAM_BYTES = 1 << 26  # 64 MiB per buffer: every layer below fits whole in one buffer half


def bitfusion_isca18() -> hwsim.Accelerator:
    big = hwsim.BufferSpec(BIG_SRAM_BYTES)
    return hwsim.Accelerator(
        name="bitfusion_isca18", rows=ref.BF_E_ROWS_N, cols=ref.BF_E_COLS_M,
        pe=hwsim.PESpec(kind="fusion", max_weight_bits=ref.BF_PMAX_BITS,  # type: ignore[arg-type]
                        max_act_bits=ref.BF_PMAX_BITS, acc_bits=32),
        dataflows=("ws",), interconnect="systolic",  # type: ignore[arg-type]
        ifmap_sram=big, filter_sram=big, ofmap_sram=big)


def conv(name: str, ic: int, oc: int, hw: int, k: int, stride: int = 1, batch: int = 1) -> Layer:
    return Layer(name, LayerKind.CONV2D, ic, oc, hw, hw, k, k, stride, stride, k // 2, k // 2, batch=batch)


LAYERS = (
    conv("conv3x3_64_64", 64, 64, 14, 3),                 # channels multiples of N=16 and M=32
    conv("conv3x3_48_40_b2", 48, 40, 10, 3, batch=2),      # OC=40 not a multiple of 32; batch 2
    conv("conv3x3_s2_32_96_b2", 32, 96, 16, 3, stride=2, batch=2),
    conv("conv1x1_256_128", 256, 128, 7, 1),
    conv("conv1x1_100_70", 100, 70, 8, 1),                 # neither a multiple of the array
    conv("conv7x7_s2_3_64", 3, 64, 32, 7, stride=2),       # stem shape: IC=3 far below N*pf
    conv("conv7x7_s2_64_32", 64, 32, 16, 7, stride=2),
    Layer("fc_512_1000", LayerKind.LINEAR, 512, 1000),
    Layer("fc_300_10_b4", LayerKind.LINEAR, 300, 10, batch=4),
)


def reference_cycles(la: Layer, act_bits: int, weight_bits: int, im2col: bool) -> int:
    if la.kind is LayerKind.LINEAR:
        return ref.fc_compute_cycles(in_features=la.in_channels, out_features=la.out_channels, batch=la.batch,
                                     act_bits=act_bits, weight_bits=weight_bits)
    return ref.conv_compute_cycles(in_channels=la.in_channels, out_channels=la.out_channels, out_h=la.out_h,
                                   out_w=la.out_w, kernel_h=la.kernel_h, kernel_w=la.kernel_w, batch=la.batch,
                                   act_bits=act_bits, weight_bits=weight_bits, im2col=im2col)


def hwsim_cycles(la: Layer, act_bits: int, weight_bits: int) -> int:
    layer = dataclasses.replace(la, act_bits=act_bits, weight_bits=weight_bits)
    mapping = hwsim.LayerMapping(layer.name, "ws", hwsim.Tile.whole(layer))  # type: ignore[arg-type]
    return hwsim.simulate_layer(layer, mapping, bitfusion_isca18()).compute_cycles


@pytest.mark.parametrize("la", LAYERS, ids=[la.name for la in LAYERS])
@pytest.mark.parametrize("act_bits,weight_bits", list(itertools.product(WIDTHS, WIDTHS)))
def test_fusion_compute_cycles_equal_authors_model(la: Layer, act_bits: int, weight_bits: int) -> None:
    got = hwsim_cycles(la, act_bits, weight_bits)
    im2col = reference_cycles(la, act_bits, weight_bits, im2col=True)
    assert got == im2col, (f"{la.name} a={act_bits} w={weight_bits}: hwsim {got} compute cycles, "
                           f"Bit Fusion im2col model {im2col} (ratio {got / im2col:.3g})")
    channelwise = reference_cycles(la, act_bits, weight_bits, im2col=False)
    assert got <= channelwise
    if la.kernel_h * la.kernel_w == 1 or la.in_channels % (ref.BF_E_ROWS_N * ref.perf_factor(act_bits,
                                                                                               weight_bits)) == 0:
        assert got == channelwise


# ---- the reference itself, against the authors' expressions worked by hand ---------------------------------

@pytest.mark.parametrize("a,w,pf", [(8, 8, 1), (8, 2, 4), (2, 8, 4), (4, 4, 4), (2, 2, 16), (1, 1, 16),
                                    (1, 8, 4), (3, 5, 2), (4, 1, 8)])
def test_reference_perf_factor(a: int, w: int, pf: int) -> None:
    """int(8/max(a,2)) * int(8/max(w,2)): 1-bit operands run on a whole 2-bit brick; 3 bits give 2 per side, 5 bits 1."""
    assert ref.perf_factor(a, w) == pf


def test_reference_conv_by_hand() -> None:
    """3x3, IC=48, OC=40, 10x10 out, batch 2, 2/2 bits (pf 16): 2 * ceil(40/32) * 10*10 * 3*3 * ceil(48/256)
    = 2*2*100*9*1 = 3600; im2col instead reduces 432 = 9*48 inputs in ceil(432/256) = 2 passes: 2*100*2*2 = 800."""
    kw = dict(in_channels=48, out_channels=40, out_h=10, out_w=10, kernel_h=3, kernel_w=3, batch=2,
              act_bits=2, weight_bits=2)
    assert ref.conv_compute_cycles(**kw) == 3600
    assert ref.conv_compute_cycles(**kw, im2col=True) == 800


def test_reference_fc_is_a_1x1_conv_and_ignores_nothing() -> None:
    """FC = get_conv_cycles(K=1, O=1): B * ceil(No/M) * ceil(Ni/(N*pf)); at 8/8, 4 * ceil(10/32) * ceil(300/16)."""
    assert ref.fc_compute_cycles(in_features=300, out_features=10, batch=4, act_bits=8, weight_bits=8) == 4 * 1 * 19
    assert ref.fc_compute_cycles(in_features=300, out_features=10, batch=4, act_bits=8, weight_bits=8) == \
        ref.conv_compute_cycles(in_channels=300, out_channels=10, out_h=1, out_w=1, kernel_h=1, kernel_w=1,
                                batch=4, act_bits=8, weight_bits=8, im2col=True)


@pytest.mark.parametrize("bad", [0, 9, 2.0])
def test_reference_rejects_widths_outside_1_to_pmax(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"^bitfusion_ref\.act_bits must be an integer in \[1, 8\], "
                                         rf"not {re.escape(repr(bad))}$"):
        ref.perf_factor(bad, 8)  # type: ignore[arg-type]
