"""``hwsim.scalesim.simulate.simulate_user`` (folds skipped where their demands' own entries lie in the
window) and ``simulate_user_fed`` (every demand of a fold read) equal the replay of the full demand streams
(``simulate_streams``, the model the SCALE-Sim parity tests check)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from demands import user_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig
from hwsim.scalesim.folds import fold_grid
from hwsim.scalesim.layout import ofmap_layout
from hwsim.scalesim.replay import demand_streams, fold_blocks, grid, ifmap_addr
from hwsim.scalesim.simulate import simulate_streams, simulate_user, simulate_user_fed
from hwsim.scalesim.timeline import run_layout, run_stream
from hwsim.scalesim.topology import Shape, scalesim_shape
from hwsim.scalesim.user import (
    FetchOrder,
    Prefetches,
    fetch_orders,
    read_stall,
    replay_prefetches,
    rollout,
    rollout_sorted,
    user_prefetches,
    window_sets,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_user_mode_fold_by_fold_equals_the_streams(case: tuple[Layer, ScaleSimConfig]) -> None:
    layer, cfg = case
    ref = simulate_streams(layer, cfg)
    assert simulate_user(layer, cfg) == ref and simulate_user_fed(layer, cfg) == ref


def test_user_mode_stalls_on_reads_in_the_generated_range() -> None:
    """The generated range reaches read stalls (a 1 kB buffer, 1 word per cycle, an input over a window)."""
    layer = Layer("c", LayerKind.CONV2D, in_channels=16, out_channels=20, in_h=10, in_w=9, kernel_h=3, kernel_w=3)
    cfg = ScaleSimConfig("r", 4, 8, 1, 1, 1, Dataflow.OS, user_bandwidth=True, bandwidths=(2,),
                         ifmap_read_words_per_cycle=1, filter_read_words_per_cycle=1)
    rep = simulate_user(layer, cfg)
    assert rep.stall_cycles > 0 and rep.ifmap_dram_stop > -1
    assert rep == simulate_streams(layer, cfg)


def test_a_demand_never_fetched_is_one_line() -> None:
    order = FetchOrder(np.arange(10, 2010, dtype=np.int64), 2000)   # more than the active half of 1 kB
    with pytest.raises(ValueError, match=r"^address 5 is demanded but never fetched$"):
        replay_prefetches([(None, 0, lambda: (np.zeros(1, dtype=np.int64), np.array([5], dtype=np.int64)))], order,
                          1, 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31))
def test_rollout_places_equal_the_sorted_definition(m: int, n: int, seed: int) -> None:
    vals = np.random.default_rng(seed).integers(-5, 50, size=(m, n))
    assert np.array_equal(rollout(vals), rollout_sorted(vals))


def fetch_orders_flat(sp: Shape, cfg: ScaleSimConfig) -> tuple[FetchOrder, FetchOrder]:
    """The prefetch matrices from flat index grids and the sorted read-out: ``fetch_orders`` as it was
    first written, the reference of its broadcast form."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    g = fold_grid(sp, cfg)
    rf, cf = g.row_folds, g.col_folds

    def filt(k: np.ndarray, m: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, m * K + k + cfg.filter_offset, -1)

    def ifm(p: np.ndarray, k: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset), -1)

    if cfg.dataflow is Dataflow.OS:
        fr, t, c = grid(rf, K, R)
        i_mat = rollout_sorted(ifm(fr * R + c, t, fr * R + c < P).reshape(rf * K, R))
        fc, t, c = grid(cf, K, C)
        f_mat = rollout_sorted(filt(t, fc * C + c, fc * C + c < M).reshape(cf * K, C))
    elif cfg.dataflow is Dataflow.WS:
        fr, t, c = grid(rf, P, R)
        i_mat = rollout_sorted(ifm(t, fr * R + c, fr * R + c < K).reshape(rf * P, R))
        fc, t, c = grid(cf, K, C)
        f_mat = filt(t, fc * C + c, fc * C + c < M)
    else:
        fc, k, c = grid(cf, K, C)
        i_mat = ifm(fc * C + c, k, fc * C + c < P)
        fr, t, c = grid(rf, M, R)
        f_mat = rollout_sorted(filt(fr * R + c, t, fr * R + c < K).reshape(rf * M, R))
    return FetchOrder(i_mat[i_mat >= 0], i_mat.size), FetchOrder(f_mat[f_mat >= 0], f_mat.size)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_fetch_orders_broadcast_equal_the_flat_grids(case: tuple[Layer, ScaleSimConfig]) -> None:
    layer, cfg = case
    sp = scalesim_shape(layer)
    kbs = (cfg.ifmap_sram_kb, cfg.filter_sram_kb)
    for got, ref, kb in zip(fetch_orders(sp, cfg), fetch_orders_flat(sp, cfg), kbs, strict=True):
        assert got.size == ref.size
        if got.held is not None:   # left unbuilt: it fits the active half, and its count is right
            assert got.held == ref.addrs.size and got.addrs.size == 0 and window_sets(got.held, kb)[3] == 0
        else:
            assert np.array_equal(got.addrs, ref.addrs) and window_sets(got.addrs.size, kb)[3] > 0
        if got.distinct:   # claimed: each address held once
            assert np.unique(got.addrs).size == got.addrs.size


@pytest.mark.parametrize("flow", list(Dataflow))
def test_replaying_repeated_folds_changes_no_prefetch(flow: Dataflow) -> None:
    """A fold whose pattern was fed before at the same window replays its misses; fed every demand
    instead (pattern ``None``), both buffers prefetch at the same rows, as often, to the same trace."""
    layer = Layer("c", LayerKind.CONV2D, in_channels=16, out_channels=40, in_h=12, in_w=11, kernel_h=3, kernel_w=3)
    cfg = ScaleSimConfig("r", 4, 4, 1, 1, 1, flow, user_bandwidth=True, bandwidths=(2,),
                         ifmap_read_words_per_cycle=1, filter_read_words_per_cycle=1)
    sp = scalesim_shape(layer)
    repeats = []
    for operand, order in zip(("ifmap", "filter"), fetch_orders(sp, cfg), strict=True):
        fb = fold_blocks(sp, cfg, operand)
        repeats.append(len(set(fb.keys)) < len(fb.keys))
        chunks = [(key, f * fb.fold_rows, partial(fb.block, key)) for f, key in enumerate(fb.keys)]
        named = replay_prefetches(chunks, order, 1, 1)
        plain = replay_prefetches([(None, base, build) for _, base, build in chunks], order, 1, 1)
        assert named.rows.size > 1   # the buffer misses again and again
        assert np.array_equal(named.rows, plain.rows) and np.array_equal(named.counts, plain.counts)
        fields = ("gap", "dram_start", "dram_stop", "dram_reads")
        assert [getattr(named, f) for f in fields] == [getattr(plain, f) for f in fields]
    assert any(repeats)   # some operand's fold patterns repeat (and can be skipped)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_layout_drains_with_read_stalls_equal_the_stream(case: tuple[Layer, ScaleSimConfig]) -> None:
    """The OFMAP layout's drain loop with the read buffers' prefetching rows finds the stream's write
    and read stalls, row by row, and its DRAM trace."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    st = demand_streams(sp, cfg)
    i_order, f_order = fetch_orders(sp, cfg)
    reads = (user_prefetches(st.ifmap, i_order, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle),
             user_prefetches(st.filter, f_order, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle))
    ref = run_stream(st.ofmap, cfg.ofmap_sram_kb, cfg.bandwidths[0], st.n_rows, reads)
    new = run_layout(ofmap_layout(sp, cfg), cfg.ofmap_sram_kb, cfg.bandwidths[0], st.n_rows, reads=reads)
    assert (new.write_stalls, new.read_stalls, new.ofmap_dram) == (ref.write_stalls, ref.read_stalls, ref.ofmap_dram)
    assert [new.shift_at(r) for r in range(st.n_rows + 1)] == ref.shift.tolist()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 80), st.integers(-50, 5000), st.integers(2, 300))
def test_read_stall_closed_form_equals_the_prefetch_by_prefetch_rule(done: int, count: int, cyc: int, gap: int) -> None:
    """Each prefetch in turn: a late one adds its lateness twice, an early one moves the row back."""
    pf = Prefetches(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), gap, 0, 0, 0)
    t = cyc + 1
    for i in range(done + 1, done + count + 1):
        lp = -1 + i * gap
        t = lp if lp <= t else 2 * lp - t
    assert read_stall(pf, done, count, cyc) == t - cyc - 1
