"""``hwsim.scalesim.sharing``: which WS folds can share an address, the windows counted by arithmetic,
and the runs of folds at one kernel position, against brute force and the buffer fed demand by demand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, scalesim_shape, sharing
from hwsim.scalesim.replay import stream_read_buffer
from hwsim.scalesim.sharing import CleanRuns, PositionRuns, fold_sizes, next_sharing_fold
from hwsim.scalesim.stationary import members, ws_read_buffer
from hwsim.scalesim.topology import Shape


def shape(c: int, r: int, s: int, sh: int, sw: int, h: int, w: int) -> Shape:
    return scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=c, out_channels=4, in_h=h, in_w=w, kernel_h=r,
                                kernel_w=s, stride_h=sh, stride_w=sw))


def fold_addresses(sp: Shape, ks: range) -> set[int]:
    out = set()
    for kr, kc, ch, n_r, n_c in members(sp, ks):
        for orow in range(n_r):
            for ocol in range(n_c):
                out.add(((orow * sp.sh + kr) * sp.w + ocol * sp.sw + kc) * sp.c + ch)
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 6), st.integers(0, 6), st.integers(1, 12))
def test_folds_that_share_an_address_come_no_earlier_than_next_sharing_fold(c: int, r: int, s: int, sh: int, sw: int,
                                                                          dh: int, dw: int, rows: int) -> None:
    """Brute force over every pair of folds (this sweep and the next): a later fold that demands an
    address of fold ``fr`` comes at or after ``next_sharing_fold[fr]``; fold sizes equal the demands
    counted by enumeration."""
    sp = shape(c, r, s, sh, sw, r + dh * sh, s + dw * sw)
    K = sp.window
    rf = -(-K // rows)
    sets = [fold_addresses(sp, range(f * rows, min(K, f * rows + rows))) for f in range(rf)]
    assert fold_sizes(sp, rows).tolist() == [sum(n_r * n_c for *_, n_r, n_c in members(sp, range(f * rows, min(K, f * rows + rows))))
                                           for f in range(rf)]
    nxt = next_sharing_fold(sp, rows)
    for f in range(rf):
        later = [g for g in range(f + 1, 2 * rf) if sets[f] & sets[g % rf]]
        if later:
            assert nxt[f] <= later[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 3), st.integers(0, 8), st.integers(1, 16),
       st.integers(1, 6), st.integers(0, 10**6))
def test_windows_counted_clean_hold_no_address_twice(c: int, k: int, stride: int, dh: int, rows: int, cf: int,
                                                     seed: int) -> None:
    """From any demand of the layer, the windows :meth:`CleanRuns.clean_windows` counts as holding no
    address twice do hold distinct addresses only (checked on the layer's demands enumerated)."""
    sp = shape(c, k, k, stride, stride, k + dh * stride, k + dh * stride)
    runs = CleanRuns.of(sp, rows, cf, 50)
    if runs is None:
        assert min(rows, sp.window) > sp.c
        return
    K = sp.window
    stream: list[int] = []
    for _ in range(cf):
        for f in range(-(-K // rows)):
            stream += sorted(fold_addresses(sp, range(f * rows, min(K, f * rows + rows))))   # order does not matter here
    assert runs.n == len(stream)
    s = np.random.default_rng(seed).integers(0, runs.n)
    got, to_end = runs.clean_windows(int(s))
    for j in range(got + (1 if to_end else 0)):
        block = stream[s + j * 50: s + (j + 1) * 50]
        assert len(set(block)) == len(block)


def test_position_runs_count_what_the_window_holds() -> None:
    """:meth:`PositionRuns.fill` against counting each fold's addresses in a random window bitmap."""
    sp = shape(64, 3, 3, 2, 2, 21, 19)
    at = PositionRuns.of(sp, 16)
    rng = np.random.default_rng(3)
    view = rng.random((sp.h, sp.w, sp.c)) < 0.3
    fr = 4   # kernel position 1: row folds 4 .. 7
    assert at.pos[fr] == 1 and at.end[fr] == 8
    flat = view.reshape(-1)
    fresh = [len([a for a in fold_addresses(sp, range(f * 16, f * 16 + 16)) if not flat[a]]) for f in range(4, 8)]
    for count in (0, 100, 2000):
        cap = count + sum(fresh[:2]) + 1
        a, after = at.fill(view, fr, 4, count, cap)
        assert (a, after) == (2, count + sum(fresh[:2]))


@pytest.mark.parametrize(("chans", "k", "stride", "size", "rows", "cols", "filters", "kb"), [
    (64, 3, 2, 30, 16, 16, 64, 1), (32, 3, 1, 12, 16, 8, 40, 1), (48, 3, 2, 17, 16, 4, 20, 1), (20, 2, 1, 15, 5, 3, 9, 1),
    (16, 1, 1, 9, 16, 4, 12, 1), (24, 3, 3, 22, 8, 6, 30, 1), (128, 3, 1, 5, 16, 4, 40, 8), (64, 3, 2, 9, 16, 4, 40, 4),
    (96, 3, 1, 6, 12, 5, 30, 8)])
def test_layers_of_distinct_channels_equal_the_buffer_fed_demand_by_demand(
        chans: int, k: int, stride: int, size: int, rows: int, cols: int, filters: int, kb: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers whose folds read distinct channels (the 3x3 and strided layers), many sweeps, 1-2 kB
    and 4-8 kB buffers (windows spanning whole kernel positions): windows counted clean and runs
    absorbed at once give the reference's trace; the shortcuts were taken where the case is built
    for them."""
    used = {"clean": 0, "fill": 0}
    clean, fill = CleanRuns.clean_windows, PositionRuns.fill

    def counted_clean(self: CleanRuns, s: int) -> tuple[int, bool]:
        got = clean(self, s)
        used["clean"] += got[0]
        return got

    def counted_fill(self: PositionRuns, *args: object) -> tuple[int, int]:
        got = fill(self, *args)  # type: ignore[arg-type]
        used["fill"] += got[0]
        return got
    monkeypatch.setattr(sharing.CleanRuns, "clean_windows", counted_clean)
    monkeypatch.setattr(sharing.PositionRuns, "fill", counted_fill)
    sp = scalesim_shape(Layer("c", LayerKind.CONV2D, in_channels=chans, out_channels=filters, in_h=size, in_w=size,
                              kernel_h=k, kernel_w=k, stride_h=stride, stride_w=stride, pad_h=k // 2, pad_w=k // 2))
    cfg = ScaleSimConfig("r", rows, cols, kb, 1, 1, Dataflow.WS)
    shift = lambda row: row // 6   # noqa: E731
    assert ws_read_buffer(sp, cfg, "ifmap", kb, shift) == stream_read_buffer(sp, cfg, "ifmap", kb, shift)
    if kb == 1 and chans >= 20:
        assert used["clean"] > 0
    if kb >= 4:
        assert used["fill"] > 0
