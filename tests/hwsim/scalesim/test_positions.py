"""``hwsim.scalesim.positions``: the OS IFMAP read buffer counted per input position, against enumeration
and against the read buffer fed demand by demand (``replay.stream_read_buffer``, the reference)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, scalesim_shape
from hwsim.scalesim.folds import fold_grid
from hwsim.scalesim.positions import fold_positions, last_reader_below, nth_new_demand, position_read_buffer
from hwsim.scalesim.replay import ifmap_addr, skew_slots, stream_read_buffer
from hwsim.scalesim.topology import Shape
from hwsim.scalesim.windows import window_capacity


@st.composite
def cases(draw: st.DrawFn) -> tuple[Shape, ScaleSimConfig]:
    """OS layers with at least as many channels as array rows, windows overlapping in one or both
    directions (or not), last windows running past the input, non-square arrays, 1-2 kB buffers."""
    rows = draw(st.integers(1, 8))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.integers(1, 3))
    layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(rows, 40)), out_channels=draw(st.integers(1, 40)),
                  in_h=draw(st.integers(r, r + 16)), in_w=draw(st.integers(s, s + 16)), kernel_h=r, kernel_w=s,
                  stride_h=stride, stride_w=stride)
    cfg = ScaleSimConfig("r", rows, draw(st.integers(1, 12)), draw(st.sampled_from([1, 2])), 1, 1, Dataflow.OS,
                         ifmap_offset=draw(st.sampled_from([0, 5])))
    return scalesim_shape(layer), cfg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 9))
def test_position_counts_equal_the_buffer_fed_demand_by_demand(case: tuple[Shape, ScaleSimConfig], every: int) -> None:
    sp, cfg = case
    shift = lambda row: row // every   # noqa: E731  (write stalls that grow along the layer)
    got = position_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)
    if got is None:   # refused only where a fold holds a whole window
        pats = fold_positions(sp, cfg.array_rows)
        assert max(p.pos.size for p in pats) * sp.c >= window_capacity(cfg.ifmap_sram_kb)
        return
    assert got == stream_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_fold_positions_first_and_last_readers_equal_the_fold_demands(case: tuple[Shape, ScaleSimConfig]) -> None:
    """Each position's channel ``ch`` is first demanded at diagonal ``e + ch`` (column ``c_first``) and last
    at ``last + ch`` (column ``c_last``), and no other pixel reads it between the fold and ``prev``."""
    sp, cfg = case
    g = fold_grid(sp, cfg)
    R, C = cfg.array_rows, sp.c
    for fr, pt in enumerate(fold_positions(sp, R)):
        w = min(R, sp.npix - fr * R)
        rel, t, col = skew_slots(w, sp.window)   # the fold's slots in service order
        addr = ifmap_addr(sp, fr * R + col, t, 0)
        keep = addr >= 0
        rel, col, addr = rel[keep], col[keep], addr[keep]
        first: dict[int, tuple[int, int]] = {}
        last: dict[int, tuple[int, int]] = {}
        for d, c, a in zip(rel.tolist(), col.tolist(), addr.tolist(), strict=True):
            first.setdefault(a, (d, c))
            last[a] = (d, c)
        want = sorted({a // C for a in first})
        assert pt.pos.tolist() == want
        for i, u in enumerate(pt.pos.tolist()):
            for ch in range(C):
                assert first[u * C + ch] == (int(pt.e[i]) + ch, int(pt.c_first[i]))
                assert last[u * C + ch] == (int(pt.last[i]) + ch, int(pt.c_last[i]))
        assert pt.d_last == (int(rel.max()) if rel.size else -1)
        assert g.fold_rows > pt.d_last


@settings(max_examples=150, deadline=None)
@given(cases(), st.data())
def test_last_reader_below_equals_enumeration(case: tuple[Shape, ScaleSimConfig], data: st.DataObject) -> None:
    sp = case[0]
    pb = data.draw(st.integers(0, sp.npix))
    pos = np.arange(sp.h * sp.w, dtype=np.int64)
    want = []
    for u in pos.tolist():
        y, x = divmod(u, sp.w)
        rd = [p for p in range(pb) if 0 <= y - (p // sp.ew) * sp.sh < sp.r and 0 <= x - (p % sp.ew) * sp.sw < sp.s]
        want.append(max(rd, default=-1))
    assert last_reader_below(sp, pos, np.full(pos.size, pb, dtype=np.int64)).tolist() == want


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 6), st.integers(0, 7)), min_size=1, max_size=12,
                unique_by=lambda t: t[2]), st.data())
def test_nth_new_demand_equals_enumeration(runs: list[tuple[int, int, int]], data: st.DataObject) -> None:
    """Runs of new channels ``e .. e + n - 1`` at distinct columns: the slot of the need-th by (diagonal,
    column)."""
    slots = sorted((e + ch, c) for e, n, c in runs for ch in range(n))
    if not slots:
        return
    need = data.draw(st.integers(1, len(slots)))
    e, n, c = (np.array(v, dtype=np.int64) for v in zip(*runs, strict=True))
    assert nth_new_demand(e, n, c, need) == slots[need - 1]


def test_positions_serve_only_the_os_ifmap_with_channels_at_least_the_rows() -> None:
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=8, out_channels=4, in_h=8, in_w=8, kernel_h=3,
                              kernel_w=3))
    os_cfg = ScaleSimConfig("r", 4, 4, 1, 1, 1, Dataflow.OS)
    assert position_read_buffer(sp, os_cfg, "ifmap", 1, lambda r: 0) is not None
    assert position_read_buffer(sp, os_cfg, "filter", 1, lambda r: 0) is None
    assert position_read_buffer(sp, ScaleSimConfig("r", 16, 4, 1, 1, 1, Dataflow.OS), "ifmap", 1, lambda r: 0) is None
    for flow in (Dataflow.WS, Dataflow.IS):
        assert position_read_buffer(sp, ScaleSimConfig("r", 4, 4, 1, 1, 1, flow), "ifmap", 1, lambda r: 0) is None
