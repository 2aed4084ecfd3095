"""``hwsim.scalesim.homes``: every demand's home (its own entry's place in the built fetch order) and each
fold's home range in closed form, and the replay that skips folds whose homes lie in the window, against
the replay of every demand (``replay_prefetches`` on the full stream)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from demands import user_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig
from hwsim.scalesim.homes import HomeMap, home_map, interleaved, preload_misses, replay_homes
from hwsim.scalesim.replay import demand_streams, fold_blocks
from hwsim.scalesim.topology import scalesim_shape
from hwsim.scalesim.user import FetchOrder, distinct_ifmap, fetch_orders, user_prefetches, window_sets


def built(order: FetchOrder, sp_size: int) -> FetchOrder:
    """``order`` itself when built, else an empty order of the same slots (an operand fits the window)."""
    return order if order.held is None else FetchOrder(np.zeros(0, dtype=np.int64), sp_size, order.distinct)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_homes_are_the_demands_own_entries(case: tuple[Layer, ScaleSimConfig]) -> None:
    """Each demand's home holds its address, every entry of the order is the home of equally many demands
    (once per sweep over the matrix), and each fold's homes lie in its closed-form range."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    for operand, order in zip(("ifmap", "filter"), fetch_orders(sp, cfg), strict=True):
        if order.held is not None:   # fits the active half: its order was not built, nothing to compare
            continue
        fb, hm = fold_blocks(sp, cfg, operand), home_map(sp, cfg, operand)
        assert int(hm.cum[-1]) == order.addrs.size
        homes, addrs = [], []
        for f, key in enumerate(fb.keys):
            rel, a = fb.block(key)
            h = hm.homes(f, rel)
            if h.size:
                assert int(hm.lo[f]) <= int(h.min()) and int(h.max()) < int(hm.hi[f])
            homes.append(h)
            addrs.append(a)
        h, a = np.concatenate(homes), np.concatenate(addrs)
        assert np.array_equal(order.addrs[h], a)
        times = np.bincount(h, minlength=order.addrs.size)
        assert times.min() == times.max() and a.size == times[0] * order.addrs.size


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases(), st.booleans())
def test_skipping_replay_equals_every_demand_fed(case: tuple[Layer, ScaleSimConfig], lazy: bool) -> None:
    """Both read buffers, with the orders built or left lazy (held once: not built), against the full
    stream fed demand by demand."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    st_ = demand_streams(sp, cfg)
    full = fetch_orders(sp, cfg)
    orders = fetch_orders(sp, cfg, lazy=lazy)
    for operand, stream, order, ref_order, kb, bw in (
            ("ifmap", st_.ifmap, orders[0], full[0], cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle),
            ("filter", st_.filter, orders[1], full[1], cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)):
        want = user_prefetches(stream, ref_order, kb, bw)
        got = replay_homes(fold_blocks(sp, cfg, operand), home_map(sp, cfg, operand), order, kb, bw)
        assert np.array_equal(got.rows, want.rows) and np.array_equal(got.counts, want.counts)
        assert (got.gap, got.dram_start, got.dram_stop, got.dram_reads) == (
            want.gap, want.dram_start, want.dram_stop, want.dram_reads)


def test_a_strided_stem_and_a_gemm_skip_and_match() -> None:
    """A 7x7 stride-2 stem (IFMAP with duplicates, windows past the input) and a GEMM (IFMAP held once,
    left unbuilt) on 1 kB buffers: many misses, equal to the stream's."""
    stem = Layer("c", LayerKind.CONV2D, in_channels=3, out_channels=9, in_h=30, in_w=28, kernel_h=7, kernel_w=7,
                 stride_h=2, stride_w=2)
    gemm = Layer("g", LayerKind.LINEAR, in_channels=150, out_channels=70, batch=40)
    assert not distinct_ifmap(scalesim_shape(stem)) and distinct_ifmap(scalesim_shape(gemm))
    for layer in (stem, gemm):
        for flow in Dataflow:
            cfg = ScaleSimConfig("r", 4, 6, 1, 1, 1, flow, user_bandwidth=True, bandwidths=(2,),
                                 ifmap_read_words_per_cycle=3, filter_read_words_per_cycle=2)
            sp = scalesim_shape(layer)
            st_ = demand_streams(sp, cfg)
            lazy, full = fetch_orders(sp, cfg, lazy=True), fetch_orders(sp, cfg)
            for operand, stream, i in (("ifmap", st_.ifmap, 0), ("filter", st_.filter, 1)):
                want = user_prefetches(stream, full[i], 1, 3 if i == 0 else 2)
                got = replay_homes(fold_blocks(sp, cfg, operand), home_map(sp, cfg, operand), lazy[i], 1,
                                   3 if i == 0 else 2)
                assert want.counts.sum() > 0
                assert np.array_equal(got.rows, want.rows) and np.array_equal(got.counts, want.counts)
                assert got.dram_stop == want.dram_stop



@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_interleaved_counts_skip_blocks_between_full_ones(case: tuple[Layer, ScaleSimConfig]) -> None:
    """The interleaved entries' counts taken from a full block's for blocks between full ones equal those
    counted block by block."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    for operand in ("ifmap", "filter"):
        hm = home_map(sp, cfg, operand)
        if not hm.skew:
            continue
        full = np.diff(hm.cum) == hm.steps * hm.width
        got = interleaved(sp, cfg, operand, hm.folds, hm.steps, hm.width, full)
        want = interleaved(sp, cfg, operand, hm.folds, hm.steps, hm.width)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def misses_home_by_home(hm: HomeMap, f: int, k: int, sets: tuple[int, int, int, int]) -> tuple[list[tuple[int, int]], int]:
    """A WS filter fold's misses after ``k`` prefetches, each home checked against the window in turn."""
    eps, n_sets, a_sets, p_sets = sets
    R, C = hm.cfg.array_rows, hm.cfg.array_cols
    g, fr = int(hm.block_of[f]), f % hm.row_folds
    w, base = min(C, hm.sp.m - g * C), int(hm.cum[g])
    misses = []
    for a in range(min(R, hm.steps - fr * R) - 1, -1, -1):   # rows bottom first, each's homes in turn
        for h in range(base + (fr * R + a) * w, base + (fr * R + a + 1) * w):
            k1 = k
            while (h // eps - (k1 * p_sets) % n_sets) % n_sets >= a_sets:
                k1 += 1
            if k1 > k:
                misses.append((R - 1 - a, k1 - k))
                k = k1
    return misses, k


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases(), st.integers(0, 2**31))
def test_preload_misses_skip_only_rows_inside_the_window(case: tuple[Layer, ScaleSimConfig], seed: int) -> None:
    """The WS filter's misses found row by row (rows wholly inside the window skipped at once, wrapped
    windows included) against checking every home, on every fold at drawn window positions."""
    layer, cfg = case
    cfg = replace(cfg, dataflow=Dataflow.WS)
    sp = scalesim_shape(layer)
    order = fetch_orders(sp, cfg)[1]
    sets = window_sets(order.addrs.size, cfg.filter_sram_kb)
    if sets[3] == 0:   # the order fits the window: nothing is prefetched again
        return
    hm = home_map(sp, cfg, "filter")
    rng = np.random.default_rng(seed)
    for f in range(hm.block_of.size):
        for k in (0, *rng.integers(0, 4 * sets[1] + 1, size=3).tolist()):
            got: list[tuple[int, int]] = []
            k_out = preload_misses(hm, f, k, sets, got)
            assert (got, k_out) == misses_home_by_home(hm, f, k, sets)
