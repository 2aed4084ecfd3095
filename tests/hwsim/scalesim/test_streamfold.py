"""``hwsim.scalesim.streamfold``: a skewed stream fold's demands by index in closed form (cut slots listed,
addresses read from the fetch order at their homes, nothing built) against the fold built whole, and the
USER-mode replay reading every stream fold that way against the full stream fed demand by demand."""

from __future__ import annotations

import numpy as np
from demands import user_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig
from hwsim.scalesim.homes import FoldCache, home_map, replay_homes, stream_fold
from hwsim.scalesim.layout import skew_count
from hwsim.scalesim.replay import demand_streams, fold_blocks
from hwsim.scalesim.streamfold import CutSlots, StreamFold, skew_cells, skew_counts
from hwsim.scalesim.topology import scalesim_shape
from hwsim.scalesim.user import fetch_orders, user_prefetches

SKEWED = {Dataflow.OS: ("ifmap", "filter"), Dataflow.WS: ("ifmap",), Dataflow.IS: ("filter",)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases(), st.integers(0, 2**31))
def test_stream_fold_equals_the_built_fold(case: tuple[Layer, ScaleSimConfig], seed: int) -> None:
    """Every skewed stream fold's count, homes, rows and addresses (whole and in random pieces), and its
    first demand at or past random homes, equal the fold built whole."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    rng = np.random.default_rng(seed)
    for operand in SKEWED[cfg.dataflow]:
        fb, hm = fold_blocks(sp, cfg, operand), home_map(sp, cfg, operand)
        built = fetch_orders(sp, cfg)[0]
        order = built.addrs if operand == "ifmap" and built.held is None else None
        cache, cuts = FoldCache(fb, hm), CutSlots(sp, cfg)
        for f in range(len(fb.keys)):
            sf = stream_fold(hm, f, fb, {}, cuts, order)
            assert isinstance(sf, StreamFold)
            rel, addrs, h = cache.get(f)
            assert sf.n == h.size
            if not sf.n:
                continue
            assert [sf.home(i) for i in range(sf.n)] == h.tolist()
            assert [sf.row(i) for i in range(sf.n)] == rel.tolist()
            if order is not None:
                assert np.array_equal(sf.addrs(0, sf.n), addrs)
                i = int(rng.integers(0, sf.n))
                j = int(rng.integers(i + 1, sf.n + 1))
                assert np.array_equal(sf.addrs(i, j), addrs[i:j])
                assert [sf.addr_at(q) for q in range(sf.n)] == addrs.tolist()
            for x in rng.integers(int(h[0]) - 3, int(h[-1]) + 4, size=8).tolist():
                lo = int(rng.integers(0, sf.n + 1))
                assert sf.first_ge(x, lo) == max(lo, int(np.searchsorted(h, x)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 20), st.integers(1, 20), st.integers(0, 2**31))
def test_skew_cells_and_counts_equal_the_slots(w: int, t: int, seed: int) -> None:
    """Cells of a random run of slots and counts below random diagonals, against the slots' definition."""
    rng = np.random.default_rng(seed)
    d = np.array([a + c for a in range(t) for c in range(w)])
    cols = np.array([c for a in range(t) for c in range(w)])
    order = np.lexsort((cols, d))
    s0 = int(rng.integers(0, w * t))
    s1 = int(rng.integers(s0 + 1, w * t + 1))
    dd, cc = skew_cells(s0, s1, w, t)
    assert np.array_equal(dd, d[order][s0:s1]) and np.array_equal(cc, cols[order][s0:s1])
    x = np.arange(-2, w + t + 2)
    assert skew_counts(x, w, t).tolist() == [skew_count(int(v), w, t) for v in x]


def replay_equals_the_stream(layer: Layer, cfg: ScaleSimConfig) -> None:
    """Both read buffers replayed with every stream fold in closed form, against the full stream (drawn
    layers: ``test_homes``)."""
    sp = scalesim_shape(layer)
    st_ = demand_streams(sp, cfg)
    full, lazy = fetch_orders(sp, cfg), fetch_orders(sp, cfg, lazy=True)
    for i, (operand, stream) in enumerate((("ifmap", st_.ifmap), ("filter", st_.filter))):
        kb = cfg.ifmap_sram_kb if i == 0 else cfg.filter_sram_kb
        bw = cfg.ifmap_read_words_per_cycle if i == 0 else cfg.filter_read_words_per_cycle
        want = user_prefetches(stream, full[i], kb, bw)
        got = replay_homes(fold_blocks(sp, cfg, operand), home_map(sp, cfg, operand), lazy[i], kb, bw)
        assert np.array_equal(got.rows, want.rows) and np.array_equal(got.counts, want.counts)
        assert (got.gap, got.dram_start, got.dram_stop, got.dram_reads) == (
            want.gap, want.dram_start, want.dram_stop, want.dram_reads)


def test_a_strided_stem_with_cut_windows_misses_as_the_stream() -> None:
    """A 7x7 stride-2 stem whose last windows run past the input, on 1 kB buffers (many misses)."""
    stem = Layer("c", LayerKind.CONV2D, in_channels=3, out_channels=9, in_h=30, in_w=28, kernel_h=7, kernel_w=7,
                 stride_h=2, stride_w=2)
    for flow in Dataflow:
        replay_equals_the_stream(stem, ScaleSimConfig("r", 4, 6, 1, 1, 1, flow, user_bandwidth=True, bandwidths=(2,),
                                                      ifmap_read_words_per_cycle=3, filter_read_words_per_cycle=2))
