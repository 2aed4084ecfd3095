"""Mapper invariants as properties: tiles cover every loop exactly once, footprints fit, and the tiled
integer result (partial sums accumulated across reduction tiles, in the schedule's loop order) equals
the golden model's whole-layer result."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.golden import conv2d, linear
from hwsim.network import Layer
from hwsim.schedule import LOOPS, LayerMapping, Tile, footprints_bytes, tile_fits
from mapping.mapper import map_layer
from mapping.tiling import run_tiled_conv2d, tile_visits

EDGE8 = hwsim.resolve_accelerator("edge8_serial")


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = g * draw(st.integers(1, 4)), g * draw(st.integers(1, 4))
    wb, ab = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    if draw(st.integers(0, 3)) == 0:
        return Layer("l", "linear", cin, cout, batch=draw(st.integers(1, 3)), weight_bits=wb, act_bits=ab)
    k = draw(st.sampled_from([1, 2, 3]))
    s = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k // 2))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))
    return Layer("l", "conv2d", cin, cout, h, w, k, k, s, s, pad, pad, groups=g, batch=draw(st.integers(1, 2)),
                 weight_bits=wb, act_bits=ab)


@st.composite
def mappings(draw: st.DrawFn) -> tuple[Layer, LayerMapping]:
    la = draw(layers())
    whole = Tile.whole(la)
    tile = Tile(*(draw(st.integers(1, getattr(whole, d))) for d in LOOPS))
    return la, LayerMapping("l", "os", tile, "".join(draw(st.permutations(LOOPS))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mappings())
def test_tiles_cover_every_loop_exactly_once(case: tuple[Layer, LayerMapping]) -> None:
    la, m = case
    whole = Tile.whole(la)
    seen = np.zeros((la.groups, whole.n, whole.m, whole.c, whole.p, whole.q), dtype=np.int64)
    for g, r in tile_visits(la, m):
        seen[g][np.ix_(*(list(r[d]) for d in LOOPS))] += 1
    assert (seen == 1).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mappings(), st.integers(0, 2**31 - 1))
def test_tiled_result_equals_untiled(case: tuple[Layer, LayerMapping], seed: int) -> None:
    la, m = case
    rng = np.random.default_rng(seed)
    lo_a, hi_a = -(1 << (la.act_bits - 1)), 1 << (la.act_bits - 1)
    lo_w, hi_w = -(1 << (la.weight_bits - 1)), 1 << (la.weight_bits - 1)
    if la.kind.value == "linear":
        x = rng.integers(lo_a, hi_a, size=(la.batch, la.in_channels))
        w = rng.integers(lo_w, hi_w, size=(la.out_channels, la.in_channels))
        want = linear(x, w, acc_bits=63)
    else:
        x = rng.integers(lo_a, hi_a, size=(la.batch, la.in_channels, la.in_h, la.in_w))
        w = rng.integers(lo_w, hi_w, size=(la.out_channels, la.in_channels // la.groups, la.kernel_h, la.kernel_w))
        want = conv2d(x, w, (la.stride_h, la.stride_w), (la.pad_h, la.pad_w), la.groups, acc_bits=63)
    np.testing.assert_array_equal(run_tiled_conv2d(la, m, x, w), want)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers(), st.sampled_from(["latency", "energy", "edp"]), st.integers(0, 2**31 - 1))
def test_mapped_layers_fit_and_compute_the_same_result(la: Layer, objective: str, seed: int) -> None:
    acc = EDGE8
    choice = map_layer(la, acc, objective, max_mapspace=300)
    m = choice.mapping
    assert tile_fits(la, m.tile, acc) is None
    fp = footprints_bytes(la, m.tile, acc)
    for buf, need in fp.items():
        assert need <= getattr(acc, buf).size_bytes // 2
    rng = np.random.default_rng(seed)
    if la.kind.value == "linear":
        x = rng.integers(-3, 4, size=(la.batch, la.in_channels))
        w = rng.integers(-3, 4, size=(la.out_channels, la.in_channels))
        want = linear(x, w, acc_bits=63)
    else:
        x = rng.integers(-3, 4, size=(la.batch, la.in_channels, la.in_h, la.in_w))
        w = rng.integers(-3, 4, size=(la.out_channels, la.in_channels // la.groups, la.kernel_h, la.kernel_w))
        want = conv2d(x, w, (la.stride_h, la.stride_w), (la.pad_h, la.pad_w), la.groups, acc_bits=63)
    np.testing.assert_array_equal(run_tiled_conv2d(la, m, x, w), want)
