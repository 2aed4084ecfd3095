"""``hwsim.scalesim.stationary``: the WS IFMAP read buffer's fast path against the buffer fed demand by
demand (``replay.stream_read_buffer``, the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from demands import ws_fold_demands
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, scalesim_shape, stationary
from hwsim.scalesim.replay import stream_read_buffer
from hwsim.scalesim.stationary import ws_read_buffer
from hwsim.scalesim.topology import Shape


@st.composite
def ws_cases(draw: st.DrawFn) -> tuple[Shape, ScaleSimConfig]:
    """WS layers whose windows overlap (strides below the kernel, last windows running past the input),
    channels below and above the array's rows (folds with and without repeated addresses), many column
    folds (sweeps that repeat), 1-16 x 1-16 arrays, 1-4 kB IFMAP buffers."""
    r, s = draw(st.integers(2, 5)), draw(st.integers(1, 5))
    stride = draw(st.integers(1, r - 1))
    layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 48)), out_channels=draw(st.integers(1, 70)),
                  in_h=draw(st.integers(r, r + 16)), in_w=draw(st.integers(s, s + 16)), kernel_h=r, kernel_w=s,
                  stride_h=stride, stride_w=stride)
    cfg = ScaleSimConfig("r", draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.sampled_from([1, 2, 4])),
                         1, 1, Dataflow.WS, ifmap_offset=draw(st.sampled_from([0, 7])))
    return scalesim_shape(layer), cfg


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws_cases(), st.integers(1, 9))
def test_ws_ifmap_equals_the_buffer_fed_demand_by_demand(case: tuple[Shape, ScaleSimConfig], every: int) -> None:
    sp, cfg = case
    shift = lambda row: row // every   # noqa: E731  (write stalls that grow along the layer)
    got = ws_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)
    assert got is not None
    assert got == stream_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)


def test_windows_inside_one_fold_are_counted() -> None:
    """A 1 kB buffer (windows of 500 addresses) on folds of 16 channels x 400 pixels: several windows
    close inside each fold, with (3 channels) and without (64 channels) repeated addresses in a fold."""
    for chans in (3, 64):
        sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=chans, out_channels=40, in_h=22, in_w=22,
                                  kernel_h=3, kernel_w=3))
        cfg = ScaleSimConfig("r", 16, 8, 1, 1, 1, Dataflow.WS)
        got = ws_read_buffer(sp, cfg, "ifmap", 1, lambda row: 0)
        assert got is not None and got.dram_reads > 2 * 16 * 400
        assert got == stream_read_buffer(sp, cfg, "ifmap", 1, lambda row: 0)


def test_stationary_serves_only_the_ws_ifmap() -> None:
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=4, out_channels=4, in_h=8, in_w=8, kernel_h=3,
                              kernel_w=3))
    for flow in (Dataflow.OS, Dataflow.IS):
        assert ws_read_buffer(sp, ScaleSimConfig("r", 4, 4, 1, 1, 1, flow), "ifmap", 1, lambda r: 0) is None
    assert ws_read_buffer(sp, ScaleSimConfig("r", 4, 4, 1, 1, 1, Dataflow.WS), "filter", 1, lambda r: 0) is None


def test_patterns_dropped_past_the_memory_bound_give_the_same_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for one fold pattern only, every fold's pattern is rebuilt each sweep: same result."""
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=5, out_channels=30, in_h=14, in_w=13, kernel_h=3,
                              kernel_w=3))
    cfg = ScaleSimConfig("r", 8, 4, 1, 1, 1, Dataflow.WS)
    want = stream_read_buffer(sp, cfg, "ifmap", 1, lambda row: row // 3)
    assert ws_read_buffer(sp, cfg, "ifmap", 1, lambda row: row // 3) == want
    monkeypatch.setattr(stationary, "_PATTERN_CACHE_BYTES", 1)
    assert ws_read_buffer(sp, cfg, "ifmap", 1, lambda row: row // 3) == want


def test_large_folds_of_repeated_addresses_equal_the_buffer_fed_demand_by_demand() -> None:
    """Folds of a few thousand demands with repeated addresses (few channels, strides 1-3, kernels up to
    the 7x7 stem's), whose addresses are recomputed where a window asks instead of kept, and the
    stem's own channels and stride at a smaller input: seeded random layers against the reference."""
    rng = np.random.default_rng(14)
    cases = [(3, 7, 2, 41, 16, 8, 1)]   # channels, kernel, stride, input, array rows, array columns, kB
    for _ in range(10):
        k = int(rng.integers(2, 8))
        cases.append((int(rng.integers(1, 9)), k, int(rng.integers(1, min(k, 3) + 1)), int(rng.integers(k + 20, 48)),
                      int(rng.choice([8, 16])), int(rng.integers(2, 9)), int(rng.choice([1, 2]))))
    for chans, k, stride, size, rows, cols, kb in cases:
        sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=chans, out_channels=3 * cols, in_h=size,
                                  in_w=size, kernel_h=k, kernel_w=k, stride_h=stride, stride_w=stride))
        cfg = ScaleSimConfig("r", rows, cols, kb, 1, 1, Dataflow.WS)
        shift = lambda row: row // 5   # noqa: E731
        got = ws_read_buffer(sp, cfg, "ifmap", kb, shift)
        assert got == stream_read_buffer(sp, cfg, "ifmap", kb, shift), (chans, k, stride, size, rows, cols, kb)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), st.integers(1, 3), st.integers(0, 9),
       st.integers(0, 9), st.integers(1, 16), st.data())
def test_first_slots_equal_the_first_demands_found_by_enumeration(c: int, r: int, s: int, sh: int, sw: int, dh: int,
                                                                  dw: int, rows: int, data: st.DataObject) -> None:
    """A fold's service order and first demands from its window indices alone equal those found by
    serving its demands in order and keeping each address's first, on inputs that end a whole number of
    strides past the kernel or short of it (SCALE-Sim's last windows cut by the edge)."""
    h, w = r + dh * sh + data.draw(st.integers(0, sh - 1)), s + dw * sw + data.draw(st.integers(0, sw - 1))
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=c, out_channels=1, in_h=h, in_w=w, kernel_h=r,
                              kernel_w=s, stride_h=sh, stride_w=sw))
    fr = data.draw(st.integers(0, -(-sp.window // rows) - 1))
    ks = range(fr * rows, min(fr * rows + rows, sp.window))
    want_slots, addrs, want = ws_fold_demands(sp, ks)   # by diagonal, then window column
    sk, ft, fc = stationary.first_slots(sp, ks, rows)
    assert sk.n == len(addrs)
    assert sk.index(ft, fc).tolist() == want
    lo = data.draw(st.integers(0, len(addrs)))
    hi = data.draw(st.integers(lo, len(addrs)))
    t_got, c_got = sk.slots(lo, hi)
    assert list(zip(t_got.tolist(), c_got.tolist(), strict=True)) == want_slots[lo:hi]
    assert all(sk.row(i) == rows + want_slots[i][0] for i in range(lo, hi))


def test_folds_that_recompute_their_addresses_equal_the_buffer_fed_demand_by_demand(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fold of whole windows recomputing its addresses where asked instead of keeping them (what
    large folds do): seeded random layers, with and without windows cut by the edge, and windows
    inside folds, against the reference."""
    monkeypatch.setattr(stationary, "_KEEP_BELOW", 0)
    rng = np.random.default_rng(7)
    for _ in range(25):
        k = int(rng.integers(1, 5))
        stride = int(rng.integers(1, max(1, k - 1) + 1))
        sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=int(rng.integers(1, 40)),
                                  out_channels=int(rng.integers(1, 60)), in_h=int(rng.integers(k, k + 14)),
                                  in_w=int(rng.integers(k, k + 14)), kernel_h=k, kernel_w=k, stride_h=stride,
                                  stride_w=stride))
        cfg = ScaleSimConfig("r", int(rng.integers(1, 17)), int(rng.integers(1, 17)), int(rng.choice([1, 2])), 1, 1,
                             Dataflow.WS)
        shift = lambda row: row // 4   # noqa: E731
        want = stream_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)
        assert ws_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift) == want, (sp, cfg)
