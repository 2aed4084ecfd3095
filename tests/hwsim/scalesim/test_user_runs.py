"""USER mode's read buffers fed runs of folds at once: ``FoldBlocks.span`` equals the folds' blocks
concatenated, and every way ``FoldFeed`` cuts an operand's demands (fold by fold, unnamed runs, runs
named by their first and last fold, runs cut short) replays to the prefetches of the full stream."""

from __future__ import annotations

import numpy as np
import pytest
from demands import user_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig
from hwsim.scalesim import simulate as sim
from hwsim.scalesim.folds import fold_grid
from hwsim.scalesim.replay import demand_streams, fold_blocks
from hwsim.scalesim.topology import scalesim_shape
from hwsim.scalesim.user import (
    FetchOrder,
    Prefetches,
    fetch_orders,
    replay_prefetches,
    rollout_sorted,
    skew_valid,
    skew_view,
    skewed,
    user_prefetches,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases(), st.integers(0, 2**31))
def test_span_equals_the_blocks_concatenated(case: tuple[Layer, ScaleSimConfig], seed: int) -> None:
    layer, cfg = case
    sp = scalesim_shape(layer)
    rng = np.random.default_rng(seed)
    for operand in ("ifmap", "filter"):
        fb = fold_blocks(sp, cfg, operand)
        f0 = int(rng.integers(0, len(fb.keys)))
        f1 = int(rng.integers(f0 + 1, len(fb.keys) + 1))
        blocks = [fb.block(fb.keys[f]) for f in range(f0, f1)]
        rows = np.concatenate([rel + (f - f0) * fb.fold_rows for f, (rel, _) in zip(range(f0, f1), blocks, strict=True)])
        addrs = np.concatenate([a for _, a in blocks])
        got_rows, got_addrs = fb.span(f0, f1)
        assert np.array_equal(got_rows, rows) and np.array_equal(got_addrs, addrs)
        for f in range(len(fb.keys)):   # each fold's first and last demand rows, its block unbuilt
            rel = fb.block(fb.keys[f])[0]
            assert fb.ends(fb.keys[f]) == ((int(rel[0]), int(rel[-1])) if rel.size else None)


def same(a: Prefetches, b: Prefetches) -> bool:
    return (np.array_equal(a.rows, b.rows) and np.array_equal(a.counts, b.counts)
            and (a.gap, a.dram_start, a.dram_stop, a.dram_reads) == (b.gap, b.dram_start, b.dram_stop, b.dram_reads))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases(), st.sampled_from([1, 7, 60, 2**19]))
def test_every_feed_replays_the_streams_prefetches(case: tuple[Layer, ScaleSimConfig], span: int) -> None:
    """Fold by fold, runs unnamed and runs named, each with runs of ``span`` demands (1: a fold per run;
    7, 60: runs cut inside a column fold), against the full stream fed demand by demand."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    st_ = demand_streams(sp, cfg)
    rf = fold_grid(sp, cfg).row_folds
    orders = fetch_orders(sp, cfg)
    kbs = (cfg.ifmap_sram_kb, cfg.filter_sram_kb)
    bws = (cfg.ifmap_read_words_per_cycle, cfg.filter_read_words_per_cycle)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "SPAN_DEMANDS", span)
        for b, (operand, stream) in enumerate((("ifmap", st_.ifmap), ("filter", st_.filter))):
            ref = user_prefetches(stream, orders[b], kbs[b], bws[b])
            fb = fold_blocks(sp, cfg, operand)
            for sweep, named in ((0, False), (rf, False), (rf, True)):
                got = replay_prefetches(sim.FoldFeed(fb, sweep, named), orders[b], kbs[b], bws[b])
                assert same(got, ref), (operand, sweep, named)


def test_the_generated_feeds_prefetch_again_and_cut_runs() -> None:
    """The range above reaches buffers that miss many times, and runs cut inside a column fold."""
    layer = Layer("c", LayerKind.CONV2D, in_channels=12, out_channels=30, in_h=11, in_w=10, kernel_h=3, kernel_w=3)
    cfg = ScaleSimConfig("r", 4, 5, 1, 1, 1, Dataflow.WS, user_bandwidth=True, bandwidths=(2,),
                         ifmap_read_words_per_cycle=1, filter_read_words_per_cycle=1)
    sp = scalesim_shape(layer)
    fb = fold_blocks(sp, cfg, "ifmap")
    rf = fold_grid(sp, cfg).row_folds
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "SPAN_DEMANDS", 60)
        chunks = list(sim.FoldFeed(fb, rf, True))
    assert rf > 1 and len(chunks) > len(fb.keys) // rf * 2   # more than one run per column fold
    pf = replay_prefetches(chunks, fetch_orders(sp, cfg)[0], 1, 1)
    assert pf.rows.size > 5


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 20), st.integers(0, 2**31))
def test_skewed_read_out_is_the_rollout_with_its_corners(m: int, n: int, seed: int) -> None:
    vals = np.random.default_rng(seed).integers(0, 50, size=(m, n))
    got = skewed(vals, -1)
    assert got.size == (m + n - 1) * n and np.count_nonzero(got == -1) == (n - 1) * n
    assert np.array_equal(got[got >= 0], rollout_sorted(vals))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(1, 20), st.integers(0, 2**31))
def test_a_skew_view_written_in_place_is_the_skewed_read_out(lead: int, t: int, n: int, seed: int) -> None:
    """A matrix written through ``skew_view`` reads out as ``skewed`` of it, corners included, and its
    entries without the corners (``skew_valid``) as the rollout."""
    vals = np.random.default_rng(seed).integers(0, 50, size=(lead * t, n))
    flat, view = skew_view(lead, t, n, -1, np.int32)
    view[...] = vals.reshape(lead, t, n)
    assert np.array_equal(flat, skewed(vals, -1))
    got = skew_valid(flat.copy(), lead * t, n)
    assert np.array_equal(got, rollout_sorted(vals))


def test_an_address_held_nowhere_among_duplicates_is_one_line() -> None:
    """An order holding some address twice (the bitmap path) and a demand for an address inside its
    range that it never holds."""
    held = np.concatenate([np.arange(10, 700, dtype=np.int64), np.arange(10, 700, dtype=np.int64)])
    held = held[held != 300]
    demands = np.array([10, 11, 300], dtype=np.int64)
    with pytest.raises(ValueError, match=r"^address 300 is demanded but never fetched$"):
        replay_prefetches([(None, 0, lambda: (np.arange(3, dtype=np.int64), demands))], FetchOrder(held, held.size), 1, 1)
