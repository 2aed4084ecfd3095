"""``hwsim.scalesim.overlap``: the closed forms for overlapping windows against brute force and against
the read buffer fed demand by demand (``replay.stream_read_buffer``, the reference)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, scalesim_shape
from hwsim.scalesim.overlap import Coverage, overlap_read_buffer
from hwsim.scalesim.replay import stream_read_buffer
from hwsim.scalesim.topology import Shape


def readers(sp: Shape) -> list[set[int]]:
    """The output pixels whose window reads each input element, by enumeration."""
    out: list[set[int]] = [set() for _ in range(sp.h * sp.w * sp.c)]
    for p in range(sp.npix):
        oy, ox = divmod(p, sp.ew)
        for kr in range(sp.r):
            for kc in range(sp.s):
                y, x = oy * sp.sh + kr, ox * sp.sw + kc
                if y < sp.h and x < sp.w:
                    for ch in range(sp.c):
                        out[(y * sp.w + x) * sp.c + ch].add(p)
    return out


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    r, s, stride = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 3)), out_channels=1,
                  in_h=draw(st.integers(r, r + 9)), in_w=draw(st.integers(s, s + 9)), kernel_h=r, kernel_w=s,
                  stride_h=stride, stride_w=stride)
    return scalesim_shape(layer)


@settings(max_examples=150, deadline=None)
@given(shapes(), st.data())
def test_coverage_counts_fills_and_first_readers_equal_enumeration(sp: Shape, data: st.DataObject) -> None:
    cov, who = Coverage(sp), readers(sp)
    pa = data.draw(st.integers(0, sp.npix - 1))
    pb = data.draw(st.integers(pa + 1, sp.npix))
    inside = np.array([any(pa <= q < pb for q in rd) for rd in who])
    assert cov.count(pa, pb) == int(inside.sum())
    bitmap = np.zeros(sp.h * sp.w * sp.c, dtype=bool)
    cov.fill(bitmap.reshape(sp.h, sp.w, sp.c), pa, pb)
    assert (bitmap == inside).all()
    read = np.array([e for e, rd in enumerate(who) if rd], dtype=np.int64)
    want = [min((q for q in who[e] if q >= pa), default=sp.npix) for e in read.tolist()]
    assert cov.first_cover(read, pa).tolist() == want
    # any elements in any order, a few or many (found once per position of their span, or each)
    pick = np.array(data.draw(st.lists(st.sampled_from(range(read.size)), min_size=1, max_size=300)), dtype=np.int64)
    assert cov.first_cover(read[pick], pa).tolist() == [want[i] for i in pick.tolist()]
    assert cov.first_cover(read[pick], np.full(pick.size, pa)).tolist() == [want[i] for i in pick.tolist()]


@st.composite
def overlap_cases(draw: st.DrawFn) -> tuple[Shape, ScaleSimConfig]:
    """OS and IS layers whose windows overlap (strides below the kernel in one or both directions, last
    windows running past the input), 1-16 x 1-16 arrays, 1-4 kB IFMAP buffers."""
    r, s = draw(st.integers(2, 5)), draw(st.integers(1, 5))
    stride = draw(st.integers(1, r - 1))
    layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 48)), out_channels=draw(st.integers(1, 70)),
                  in_h=draw(st.integers(r, r + 16)), in_w=draw(st.integers(s, s + 16)), kernel_h=r, kernel_w=s,
                  stride_h=stride, stride_w=stride)
    sp = scalesim_shape(layer)
    assume(sp.eh > 1)
    cfg = ScaleSimConfig("r", draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.sampled_from([1, 2, 4])),
                         1, 1, draw(st.sampled_from([Dataflow.OS, Dataflow.IS])),
                         ifmap_offset=draw(st.sampled_from([0, 7])))
    return sp, cfg


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlap_cases(), st.integers(1, 9))
def test_overlapping_windows_equal_the_buffer_fed_demand_by_demand(case: tuple[Shape, ScaleSimConfig],
                                                                  every: int) -> None:
    sp, cfg = case
    shift = lambda row: row // every   # noqa: E731  (write stalls that grow along the layer)
    got = overlap_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)
    assert got is not None
    assert got == stream_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, shift)


def test_overlap_serves_only_the_os_and_is_ifmap() -> None:
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=4, out_channels=4, in_h=8, in_w=8, kernel_h=3,
                              kernel_w=3))
    assert overlap_read_buffer(sp, ScaleSimConfig("r", 4, 4, 1, 1, 1, Dataflow.WS), "ifmap", 1, lambda r: 0) is None
    for flow in (Dataflow.OS, Dataflow.IS):
        cfg = ScaleSimConfig("r", 4, 4, 1, 1, 1, flow)
        assert overlap_read_buffer(sp, cfg, "filter", 1, lambda r: 0) is None
        assert overlap_read_buffer(sp, cfg, "ifmap", 1, lambda r: 0) is not None
