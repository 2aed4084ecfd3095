"""Which addresses a USER-mode IFMAP window holds, where an address can be held more than once (windows
that overlap): the check :func:`~hwsim.scalesim.homes.replay_homes` makes for a demand whose own entry
is outside the window, since another copy of its address may be inside. The window's slice of the built
fetch order is marked in a bitmap, once per window a check needs.

A closed form without the fetch order (the blocks wholly inside a window are a raster range of output
pixels in OS and IS; the cut blocks marked; an address's copies placed in closed form) was written,
tested equal and measured slower on the ResNet-18 layers (docs/scalesim.md): it is not kept.
"""

from __future__ import annotations

import numpy as np

from .user import FetchOrder

__all__ = ["OrderWindows"]


INDEX_CHUNK = 1 << 16   # entries of the order cast to stamp indices at a time, where a window first needs them
RANGE_SETS = 64         # sets whose lowest and highest address are found at a time, where a search first reads them


class OrderWindows:
    """A window's addresses from the built fetch order (:mod:`.members`)."""

    def __init__(self, order: FetchOrder, eps: int, n_sets: int, a_sets: int) -> None:
        self.addrs = order.addrs
        self.base = 0   # the order's lowest address, and the stamps: found at the first window stamped
        # stamped through (native width; a cast is 2x a subtract), cast chunk by chunk where a window is
        # first stamped: many layers stamp a few windows of an order of millions of entries, or none
        self.index = np.empty(order.addrs.size, dtype=np.intp)
        self.cast = [False] * -(-order.addrs.size // INDEX_CHUNK)
        self.left = len(self.cast)   # chunks not cast yet
        self.cnt = order.addrs.size
        self.stamp = np.zeros(0, dtype=np.int32)   # per address, the last set stamped (sets < 2^31)
        self.eps, self.n_sets, self.a_sets = eps, n_sets, a_sets
        self.filled = -1
        self.probe = True   # whether a check looks for its first demand in the window's slice first
        # each set's lowest and highest address (an empty set's: none), found RANGE_SETS sets at a time:
        # a search for one address reads only the sets whose range holds it
        self.lo = np.zeros(n_sets, dtype=np.int64)
        self.hi = np.zeros(n_sets, dtype=np.int64)
        self.ranged = [False] * -(-n_sets // RANGE_SETS)

    def ranges(self, s0: int) -> list[tuple[int, int]]:
        """The window from set ``s0`` as ranges of the order's entries."""
        s1 = s0 + self.a_sets
        if s1 <= self.n_sets:
            return [(s0 * self.eps, min(s1 * self.eps, self.cnt))]
        return [(s0 * self.eps, self.cnt), (0, min((s1 - self.n_sets) * self.eps, self.cnt))]

    def slices(self, s0: int, e: np.ndarray) -> list[np.ndarray]:
        """The window from set ``s0`` as slices of ``e`` (the order's addresses)."""
        return [e[lo:hi] for lo, hi in self.ranges(s0)]

    def cast_index(self, lo: int, hi: int) -> None:
        """Entries ``lo .. hi - 1`` of the order in :attr:`index` (their stamp places), each chunk once."""
        if self.left == 0:
            return
        for c in range(lo // INDEX_CHUNK, -(-hi // INDEX_CHUNK)):
            if not self.cast[c]:
                a, b = c * INDEX_CHUNK, min(self.cnt, (c + 1) * INDEX_CHUNK)
                np.subtract(self.addrs[a:b], self.base, out=self.index[a:b], casting="unsafe")
                self.cast[c] = True
                self.left -= 1

    def member(self, s0: int, addrs: np.ndarray) -> np.ndarray:
        """Whether the window from set ``s0`` holds each of ``addrs``."""
        if self.filled != s0:
            if not self.stamp.size:
                self.base = int(self.addrs.min())
                self.stamp = np.full(int(self.addrs.max()) - self.base + 1, -1, dtype=np.int32)
            for lo, hi in self.ranges(s0):
                self.cast_index(lo, hi)
                self.stamp[self.index[lo:hi]] = s0
            self.filled = s0
        return self.stamp[addrs - self.base if self.base else addrs] == s0

    def first_absent(self, s0: int, addrs: np.ndarray) -> int:
        """The index of the first of ``addrs`` the window from set ``s0`` does not hold, or -1."""
        out = ~self.member(s0, addrs)
        i = int(out.argmax())   # stops at the first
        return i if out.size and out[i] else -1

    def holds(self, s0: int, a: int) -> bool:
        """Whether the window from set ``s0`` holds address ``a``: its slice scanned once (no stamps; the
        sets' address ranges, found first, would leave most of a WS window's sets to read)."""
        if self.filled == s0:
            return bool(self.stamp[a - self.base] == s0)
        return any(bool(np.any(sl == a)) for sl in self.slices(s0, self.addrs))

    def first_set(self, s0: int, stop: int, a: int) -> int:
        """The first set from ``s0`` on, cyclically up to ``stop``, that holds address ``a`` (``stop``
        if none before it: the address's own set)."""
        for lo, hi in [(s0, stop + 1)] if s0 <= stop else [(s0, self.n_sets), (0, stop + 1)]:
            got = self.first_holding(lo, hi, a)
            if got < hi:
                return got
        return stop

    def first_holding(self, lo: int, hi: int, a: int) -> int:
        """The first of sets ``lo .. hi - 1`` that holds address ``a`` (``hi``: none), read in growing
        batches: of a batch, only the sets whose range holds it (gathered where they are few, else the
        run of sets from the first to the last of them)."""
        eps, cnt, step = self.eps, self.cnt, 64
        full = cnt // eps   # sets wholly filled, viewed as rows
        while lo < hi:
            end = min(hi, lo + step)
            self.find_ranges(lo, end)
            cand = np.flatnonzero((self.lo[lo:end] <= a) & (self.hi[lo:end] >= a))
            if cand.size:
                first, last = lo + int(cand[0]), lo + int(cand[-1])
                if 4 * cand.size < last - first + 1 and last < full:
                    rows = self.addrs[: full * eps].reshape(full, eps)[lo + cand]
                    hit = np.flatnonzero((rows == a).any(axis=1))
                    if hit.size:
                        return lo + int(cand[int(hit[0])])
                else:
                    hit = np.flatnonzero(self.addrs[first * eps: min((last + 1) * eps, cnt)] == a)
                    if hit.size:
                        return first + int(hit[0]) // eps
            lo, step = end, step * 4
        return hi

    def find_ranges(self, lo: int, hi: int) -> None:
        """Each of sets ``lo .. hi - 1`` lowest and highest address, found RANGE_SETS sets at a time."""
        eps = self.eps
        for q in range(lo // RANGE_SETS, -(-hi // RANGE_SETS)):
            if self.ranged[q]:
                continue
            self.ranged[q] = True
            s0, s1 = q * RANGE_SETS, min(self.n_sets, (q + 1) * RANGE_SETS)
            seg = self.addrs[s0 * eps: min(s1 * eps, self.cnt)]
            full = seg.size // eps
            if full:
                block = seg[: full * eps].reshape(full, eps)
                self.lo[s0: s0 + full] = block.min(axis=1)
                self.hi[s0: s0 + full] = block.max(axis=1)
            if s0 + full < s1:   # a part-filled last set, then empty ones: no address
                self.lo[s0 + full: s1], self.hi[s0 + full: s1] = 1, 0
                if seg.size > full * eps:
                    self.lo[s0 + full], self.hi[s0 + full] = int(seg[full * eps:].min()), int(seg[full * eps:].max())
