"""Which addresses a USER-mode IFMAP window holds, where an address can be held more than once (windows
that overlap): the check :func:`~hwsim.scalesim.homes.replay_homes` makes for a demand whose own entry
is outside the window, since another copy of its address may be inside.

Two ways, both exact:

* :class:`OrderWindows`: the built fetch order; a window's addresses marked in a bitmap (the WS IFMAP,
  whose blocks are window indices of every pixel: a window is a slice of one or two blocks).
* :class:`RasterWindows` (OS and IS): a block of the fetch matrix is every window index of ``n``
  consecutive pixels, so the blocks wholly inside a window are a raster range of output pixels, and an
  input element is read by some pixel of that range exactly when the range meets the rectangle of
  pixels whose windows cover the element (a closed form per demand). Only the one or two blocks cut by
  each end of the window are built (from their demand folds, with their homes) and marked. No fetch
  order is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..accelerator import Dataflow
from .replay import ifmap_addr
from .topology import Shape
from .user import FetchOrder

if TYPE_CHECKING:   # homes imports this module
    from .homes import FoldCache, HomeMap

__all__ = ["OrderWindows", "RasterWindows", "covered"]


class OrderWindows:
    """A window's addresses from the built fetch order (:mod:`.members`)."""

    def __init__(self, order: FetchOrder, eps: int, n_sets: int, a_sets: int) -> None:
        self.base = int(order.addrs.min())
        self.elems = order.addrs - self.base
        self.cnt = order.addrs.size
        self.stamp = np.full(int(order.addrs.max()) - self.base + 1, -1, dtype=np.int64)
        self.eps, self.n_sets, self.a_sets = eps, n_sets, a_sets
        self.filled = -1

    def slices(self, s0: int) -> list[np.ndarray]:
        s1 = s0 + self.a_sets
        e = self.elems
        if s1 <= self.n_sets:
            return [e[s0 * self.eps: min(s1 * self.eps, self.cnt)]]
        return [e[s0 * self.eps:], e[: min((s1 - self.n_sets) * self.eps, self.cnt)]]

    def member(self, s0: int, addrs: np.ndarray) -> np.ndarray:
        """Whether the window from set ``s0`` holds each of ``addrs``."""
        if self.filled != s0:
            for sl in self.slices(s0):
                self.stamp[sl] = s0
            self.filled = s0
        return self.stamp[addrs - self.base] == s0

    def holds(self, s0: int, a: int) -> bool:
        return any(bool(np.any(sl == a - self.base)) for sl in self.slices(s0))


def covered(sp: Shape, addrs: np.ndarray, offset: int, p0: int, p1: int) -> np.ndarray:
    """Whether some output pixel of the raster range ``p0 .. p1 - 1`` reads each input address: the range
    (a part row, whole rows, a part row) meets the rectangle of pixels whose windows cover the element."""
    if p1 <= p0:
        return np.zeros(addrs.shape, dtype=bool)
    pos = (addrs - offset) // sp.c
    y, x = np.divmod(pos, sp.w)
    a0 = np.maximum(0, -(-(y - sp.r + 1) // sp.sh))
    a1 = np.minimum(sp.eh - 1, y // sp.sh)
    b0 = np.maximum(0, -(-(x - sp.s + 1) // sp.sw))
    b1 = np.minimum(sp.ew - 1, x // sp.sw)
    some = (a0 <= a1) & (b0 <= b1)
    r0, c0 = divmod(p0, sp.ew)
    r1, c1 = divmod(p1 - 1, sp.ew)
    if r0 == r1:
        return some & (a0 <= r0) & (r0 <= a1) & (b1 >= c0) & (b0 <= c1)
    first = (a0 <= r0) & (r0 <= a1) & (b1 >= c0)
    last = (a0 <= r1) & (r1 <= a1) & (b0 <= c1)
    middle = (np.maximum(a0, r0 + 1) <= np.minimum(a1, r1 - 1))
    return some & (first | last | middle)


class RasterWindows:
    """A window's addresses without the fetch order, for the OS and IS IFMAP (:mod:`.members`)."""

    def __init__(self, sp: Shape, offset: int, cache: FoldCache, hm: HomeMap, cnt: int, eps: int, n_sets: int,
                 a_sets: int) -> None:
        self.sp, self.offset, self.cache, self.hm = sp, offset, cache, hm
        self.cnt, self.eps, self.n_sets, self.a_sets = cnt, eps, n_sets, a_sets
        tri = hm.width * (hm.width - 1) // 2 if hm.skew else 0
        self.blo = hm.cum[:-1] - tri   # every entry of block g lies in [blo[g], bhi[g])
        self.bhi = hm.cum[1:] + tri
        self.full = hm.cum[1:] > hm.cum[:-1]
        self.stamp = np.full(sp.h * sp.w * sp.c, -1, dtype=np.int64)
        self.plan: tuple[int, list[tuple[int, int]]] = (-1, [])
        self.below: dict[int, np.ndarray] = {}   # IS: per block, the places before each of its rows

    def mark(self, g: int, u: int, v: int, s0: int) -> None:
        """Mark the addresses of block ``g`` whose homes lie in ``u .. v - 1`` as held by the window from
        set ``s0``: OS, from the block's demand fold (its homes increase in service order); IS, from the
        block's rows that hold those places (read row by row: window index, then pixel)."""
        hm = self.hm
        if hm.cfg.dataflow is Dataflow.OS:
            _, addrs, homes = self.cache.get(g)
            i0, i1 = np.searchsorted(homes, u), np.searchsorted(homes, v)
            self.stamp[addrs[i0:i1] - self.offset] = s0
            return
        bel = self.below.get(g)
        if bel is None:
            bel = int(hm.cum[g]) + hm.below(g, np.arange(hm.steps + 1, dtype=np.int64))
            self.below[g] = bel
        k0 = max(0, int(np.searchsorted(bel, u, "right")) - 1)
        k1 = min(int(np.searchsorted(bel, v, "left")), hm.steps)
        n = hm.width
        p = g * n + np.arange(n, dtype=np.int64)
        k = np.arange(k0, k1, dtype=np.int64)[:, None]
        addr = ifmap_addr(self.sp, np.minimum(p, self.sp.npix - 1)[None, :], k, 0)
        ok = (addr >= 0) & (p < self.sp.npix)[None, :]
        a = addr[ok]
        homes = int(bel[k0]) + np.arange(a.size, dtype=np.int64)
        self.stamp[a[(homes >= u) & (homes < v)]] = s0

    def ranges(self, s0: int) -> list[tuple[int, int]]:
        """The window's positions in the fetch order: one range, or two where it wraps."""
        s1 = s0 + self.a_sets
        if s1 <= self.n_sets:
            return [(s0 * self.eps, min(s1 * self.eps, self.cnt))]
        return [(s0 * self.eps, self.cnt), (0, min((s1 - self.n_sets) * self.eps, self.cnt))]

    def whole(self, s0: int) -> list[tuple[int, int]]:
        """The raster ranges of pixels whose blocks lie wholly in the window; the cut blocks marked."""
        if self.plan[0] == s0:
            return self.plan[1]
        out = []
        n = self.hm.width
        for u, v in self.ranges(s0):
            ga = int(np.searchsorted(self.blo, u, "left"))
            gb = int(np.searchsorted(self.bhi, v, "right"))
            if ga < gb:
                out.append((ga * n, min(gb * n, self.sp.npix)))
            cut0 = int(np.searchsorted(self.bhi, u, "right"))
            cut1 = int(np.searchsorted(self.blo, v, "left"))
            for g in range(cut0, cut1):
                if ga <= g < gb or not self.full[g]:
                    continue
                self.mark(g, u, v, s0)
        self.plan = (s0, out)
        return out

    def member(self, s0: int, addrs: np.ndarray) -> np.ndarray:
        """Whether the window from set ``s0`` holds each of ``addrs``."""
        ranges = self.whole(s0)
        hit = self.stamp[addrs - self.offset] == s0
        for p0, p1 in ranges:
            hit |= covered(self.sp, addrs, self.offset, p0, p1)
        return hit

    def holds(self, s0: int, a: int) -> bool:
        return bool(self.member(s0, np.array([a], dtype=np.int64))[0])
