"""Helpers the SCALE-Sim-mode tests share: a WS fold's IFMAP demands enumerated one by one in SCALE-Sim's
service order (the slow, obvious definition that the stationary and periodic tests compare the closed forms
with), and the USER-mode layers and configurations the USER tests draw."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, stall_free_cycles
from hwsim.scalesim.topology import Shape


@st.composite
def user_cases(draw: st.DrawFn) -> tuple[Layer, ScaleSimConfig]:
    """GEMMs and convs (strides below, at and above the kernel, equal or unequal in the two axes, windows
    running past the input), every dataflow, 1-12 x 1-12 arrays, 1-2 kB buffers and 1-5 words per cycle:
    read buffers that prefetch again and stall, and write-buffer stalls."""
    if draw(st.integers(0, 4)) == 0:
        layer = Layer("g", LayerKind.LINEAR, in_channels=draw(st.integers(1, 200)),
                      out_channels=draw(st.integers(1, 200)), batch=draw(st.integers(1, 30)))
    else:
        r, s, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 24)), out_channels=draw(st.integers(1, 40)),
                      in_h=draw(st.integers(r, r + 10)), in_w=draw(st.integers(s, s + 10)), kernel_h=r, kernel_w=s,
                      stride_h=stride, stride_w=draw(st.sampled_from([stride, 1])))
    bw = draw(st.integers(1, 5))
    cfg = ScaleSimConfig("r", draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.sampled_from([1, 2])),
                         draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])), draw(st.sampled_from(list(Dataflow))),
                         ifmap_offset=draw(st.sampled_from([0, 5, 7])), user_bandwidth=True, bandwidths=(bw,),
                         ifmap_read_words_per_cycle=draw(st.integers(1, 5)),
                         filter_read_words_per_cycle=draw(st.integers(1, 5)))
    assume(stall_free_cycles(layer, cfg) > 0)
    return layer, cfg


def ws_fold_demands(sp: Shape, ks: range) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The demands of the fold of window indices ``ks``, by diagonal ``t`` then window column: their slots
    ``(t, column)``, their addresses and the indices of the first demand of each address."""
    slots, addrs = [], []
    for t in range(sp.npix + len(ks) - 1):
        for col in range(len(ks)):
            p = t - col
            if not 0 <= p < sp.npix:
                continue
            (orow, ocol), (kr, rem) = divmod(p, sp.ew), divmod(ks[col], sp.s * sp.c)
            kc, ch = divmod(rem, sp.c)
            y, x = orow * sp.sh + kr, ocol * sp.sw + kc
            if y < sp.h and x < sp.w:
                slots.append((t, col))
                addrs.append((y * sp.w + x) * sp.c + ch)
    seen: set[int] = set()
    firsts = []
    for i, a in enumerate(addrs):
        if a not in seen:
            seen.add(a)
            firsts.append(i)
    return slots, addrs, firsts
