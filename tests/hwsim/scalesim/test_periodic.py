"""``hwsim.scalesim.periodic``: a stem's fold as head, periods and tail against its demands enumerated in
service order, and the WS read buffer that counts along the periods against the buffer fed demand by
demand (``replay.stream_read_buffer``)."""

from __future__ import annotations

import numpy as np
import pytest
from demands import ws_fold_demands
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, periodic, scalesim_shape, stationary
from hwsim.scalesim.periodic import PeriodicFold, periodic_folds
from hwsim.scalesim.replay import stream_read_buffer
from hwsim.scalesim.sharing import fold_sizes
from hwsim.scalesim.stationary import first_slots, repeat_reach, ws_read_buffer
from hwsim.scalesim.topology import Shape


def built(sp: Shape, rows: int) -> dict[int, PeriodicFold | None]:
    """Every fold of more window indices than channels, built at once as :func:`ws_read_buffer` does."""
    K = sp.window
    kr, rem = np.divmod(np.arange(K, dtype=np.int64), sp.s * sp.c)
    koff = (kr * sp.w + rem // sp.c) * sp.c + rem % sp.c
    orow, ocol = np.divmod(np.arange(sp.npix, dtype=np.int64), sp.ew)
    pbase = (orow * sp.sh * sp.w + ocol * sp.sw) * sp.c
    sizes = fold_sizes(sp, rows).tolist()
    out: dict[int, PeriodicFold | None] = {}
    for w in sorted({min(K, f * rows + rows) - f * rows for f in range(len(sizes))}):
        frs = [f for f in range(len(sizes)) if min(K, f * rows + rows) - f * rows == w and w > sp.c]
        if frs:
            out.update(zip(frs, periodic_folds(sp, [f * rows for f in frs], w, [sizes[f] for f in frs], koff, pbase),
                           strict=True))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4),
       st.integers(6, 24), st.integers(6, 24), st.integers(2, 20), st.data())
def test_periodic_folds_equal_their_demands_enumerated(c: int, r: int, s: int, sh: int, sw: int, dh: int, dw: int,
                                                       rows: int, data: st.DataObject) -> None:
    """On inputs that end a whole number of strides past the kernel or short of it, strides 1-4 on
    either axis, folds of 2-20 window indices over 1-4 channels: the count, diagonals, ranks, selections
    and addresses of every fold built with periods equal those of its demands served in order, the
    repeat reach equals :func:`repeat_reach`, and :meth:`new_since` counts the demands within the reach
    whose address is new since the window's start."""
    h, w = r + dh * sh + data.draw(st.integers(0, sh - 1)), s + dw * sw + data.draw(st.integers(0, sw - 1))
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=c, out_channels=1, in_h=h, in_w=w, kernel_h=r,
                              kernel_w=s, stride_h=sh, stride_w=sw))
    folds = {f: pf for f, pf in built(sp, rows).items() if pf is not None}
    for fr, pf in list(folds.items())[:3]:
        ks = range(fr * rows, min(fr * rows + rows, sp.window))
        slots, addrs, firsts = ws_fold_demands(sp, ks)
        diags = [t for t, _ in slots]
        n = len(addrs)
        assert pf.n == n and pf.firsts == len(firsts) and pf.reach == repeat_reach(sp, ks)
        assert [pf.diagonal(i) for i in range(n)] == diags
        assert pf.addr_range(0, n).tolist() == addrs
        assert [pf.rank(i) for i in range(0, n + 1, 7)] == [int(np.searchsorted(firsts, i)) for i in range(0, n + 1, 7)]
        assert [pf.select(j) for j in range(len(firsts))] == firsts
        j0 = data.draw(st.integers(0, len(firsts)))
        assert pf.select_all(j0).tolist() == firsts[j0:]
        for start in {0, n - 1, *data.draw(st.lists(st.integers(0, n - 1), max_size=12))}:
            end = min(n, start + pf.reach)
            distinct = len(set(addrs[start:end]))
            assert pf.new_since(start) == distinct - (np.searchsorted(firsts, end) - np.searchsorted(firsts, start))


def test_the_stems_folds_are_built_with_periods() -> None:
    """ResNet-18's 7x7 stride-2 stem on a 16-row array: its nine folds of 16 window indices over 3
    channels all take the periodic form, with 111-112 periods each and the same first demands as
    :func:`first_slots` finds (the tenth fold, 3 window indices, has distinct channels)."""
    sp = scalesim_shape(Layer("conv1", LayerKind.CONV2D, in_channels=3, out_channels=64, in_h=224, in_w=224, kernel_h=7,
                              kernel_w=7, stride_h=2, stride_w=2, pad_h=3, pad_w=3))
    folds = built(sp, 16)
    assert sorted(folds) == list(range(9)) and all(pf is not None for pf in folds.values())
    for fr in (0, 4, 8):
        pf = folds[fr]
        assert pf is not None and pf.q in (111, 112)
        sk, t, c = first_slots(sp, range(fr * 16, fr * 16 + 16), 16)
        idx = sk.index(t, c)
        assert pf.n == sk.n and pf.firsts == idx.size
        assert pf.select_all(0).tolist() == idx.tolist()


@pytest.mark.parametrize(("chans", "k", "stride", "size", "rows", "cols", "kb"), [
    (3, 7, 2, 61, 16, 4, 1), (3, 7, 2, 47, 16, 3, 2), (2, 5, 1, 60, 8, 5, 2), (1, 4, 3, 70, 8, 2, 1),
    (3, 6, 4, 90, 16, 4, 1), (2, 3, 1, 38, 7, 3, 1)])
def test_stems_counted_along_periods_equal_the_buffer_fed_demand_by_demand(
        chans: int, k: int, stride: int, size: int, rows: int, cols: int, kb: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stem-like layers (a few channels, kernels of 3-7, strides 1-4) whose folds take the periodic form,
    with windows inside folds and across folds and sweeps: the fast path equals the reference, and
    the periodic form was used."""
    calls = []
    real = periodic.PeriodicFold.windows_from

    def counted(self: PeriodicFold, s: int, cap: int) -> tuple[int, int, int]:
        got = real(self, s, cap)
        calls.append(got[0])
        return got
    monkeypatch.setattr(periodic.PeriodicFold, "windows_from", counted)
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=chans, out_channels=3 * cols, in_h=size, in_w=size,
                              kernel_h=k, kernel_w=k, stride_h=stride, stride_w=stride))
    cfg = ScaleSimConfig("r", rows, cols, kb, 1, 1, Dataflow.WS)
    shift = lambda row: row // 7   # noqa: E731  (write stalls that grow along the layer)
    assert ws_read_buffer(sp, cfg, "ifmap", kb, shift) == stream_read_buffer(sp, cfg, "ifmap", kb, shift)
    assert sum(calls) > 0


def test_a_fold_too_short_for_periods_is_handled_explicitly() -> None:
    """A fold whose input has fewer than four steady output rows has no periodic form (None), and the
    read buffer still equals the reference through the explicit first demands."""
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=2, out_channels=4, in_h=9, in_w=30, kernel_h=5,
                              kernel_w=3, stride_h=2, stride_w=1))
    assert set(built(sp, 8).values()) == {None}
    cfg = ScaleSimConfig("r", 8, 4, 1, 1, 1, Dataflow.WS)
    assert ws_read_buffer(sp, cfg, "ifmap", 1, lambda r: 0) == stream_read_buffer(sp, cfg, "ifmap", 1, lambda r: 0)
    assert stationary.ws_patterns(sp, 8)(0).periodic is None
