"""USER mode: a skewed stream fold read only where a check needs it (its demands never built whole).

A stream fold's demands are the slots of a ``T x w`` skewed block in service order (by diagonal, then
column: :func:`~hwsim.scalesim.replay.skew_slots`) less the slots of windows cut by the input's edge,
which are few (the last output rows and columns) and listed once per block. So the i-th demand's slot,
its diagonal, its home and its address are closed forms: a slot is the demand's index plus the cut slots
at or before it, a home the fold's base plus the index plus its diagonal's correction
(:class:`~hwsim.scalesim.homes.HomeMap`), an address the entry of the slot's pixel and window index.
The demands past a window's edge are read in small batches (:func:`~hwsim.scalesim.homes.stream_misses`),
so a fold of 2 * 10^5 demands (WS, the ResNet-18 stem) is read at a few thousand.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .layout import skew_count, skew_find
from .topology import Shape

__all__ = ["skew_counts", "skew_cells", "CutSlots", "StreamFold"]


def skew_counts(x: np.ndarray, w: int, t: int) -> np.ndarray:
    """:func:`~hwsim.scalesim.layout.skew_count` at every ``x``."""
    full = np.minimum(np.maximum(x - t + 1, 0), w)   # (np.clip costs several times more on small arrays)
    hi = np.minimum(x - 1, w - 1)
    n = hi - full + 1
    return full * t + np.where(n > 0, n * x - (full + hi) * n // 2, 0)


def skew_cells(s0: int, s1: int, w: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal ``d`` and column ``c`` of slots ``s0 .. s1 - 1`` of a ``t x w`` skewed block (the
    diagonals they lie on built, nothing else)."""
    d0, d1 = skew_find(s0, w, t), skew_find(s1 - 1, w, t)
    d = np.arange(d0, d1 + 1, dtype=np.int64)
    lo = np.maximum(d - t + 1, 0)
    lens = np.minimum(d, w - 1) - lo + 1
    starts = np.cumsum(lens) - lens
    dd = np.repeat(d, lens)
    cc = np.repeat(lo - starts, lens) + np.arange(dd.size, dtype=np.int64)
    cut = s0 - skew_count(d0, w, t)
    return dd[cut: cut + s1 - s0], cc[cut: cut + s1 - s0]


class CutSlots:
    """The slots (sorted) of an IFMAP stream fold of block ``g`` whose window the input's edge cuts:
    OS, columns pixels ``g*R + c`` and rows window indices; WS, columns window indices ``g*R + c`` and
    rows pixels (a window index's cut pixels: the output rows past those it fits, and the columns past
    those it fits in the others). Only the last output rows and columns can be cut: OS, every block's
    cut slots are found at once (those of the few cut pixels); WS, a block's depend only on its kernel
    rows and columns, found once per those."""

    def __init__(self, sp: Shape, cfg: ScaleSimConfig) -> None:
        self.sp, self.R, self.os = sp, cfg.array_rows, cfg.dataflow is Dataflow.OS
        orow, ocol = np.arange(sp.eh, dtype=np.int64), np.arange(sp.ew, dtype=np.int64)
        self.room_r, self.room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw   # input rows / columns from a corner
        self.rows_fit = int(np.count_nonzero(self.room_r >= sp.r))   # output rows / columns whose windows fit
        self.cols_fit = int(np.count_nonzero(self.room_c >= sp.s))
        self.none = np.zeros(0, dtype=np.int64)
        self.known: dict[tuple[int, int, bytes], np.ndarray] = {}
        self.cut_blocks: set[int] = set()   # OS: the blocks holding a cut pixel
        self.by_block: dict[int, np.ndarray] = {}   # OS: their cut slots, found at the first looked up
        self.codes = self.none   # WS: what a block's cut slots depend on, one number per column (the key's parts)
        if self.rows_fit == sp.eh and self.cols_fit == sp.ew:
            return
        if self.os:
            pr, pc = np.divmod(np.arange(sp.npix, dtype=np.int64), sp.ew)
            self.cut_blocks = set((np.flatnonzero((pr >= self.rows_fit) | (pc >= self.cols_fit)) // self.R).tolist())
        else:         # each window index's kernel row and column
            kr, rem = np.divmod(np.arange(sp.window, dtype=np.int64), sp.s * sp.c)
            self.codes = (kr * sp.s + rem // sp.c).astype(np.int32)

    def __call__(self, g: int, w: int, t: int) -> np.ndarray:
        sp, R = self.sp, self.R
        if self.rows_fit == sp.eh and self.cols_fit == sp.ew:
            return self.none
        if self.os and g not in self.cut_blocks:   # the block's pixels: cut where past the rows or columns that fit
            return self.none
        if self.os:
            if not self.by_block:
                self.by_block = self.os_blocks(t)
            return self.by_block.get(g, self.none)
        key = (w, t, self.codes[g * R: g * R + w].tobytes())
        got = self.known.get(key)
        if got is None:
            got = self.known[key] = self.build(g, w, t)
        return got

    def os_blocks(self, t: int) -> dict[int, np.ndarray]:
        """OS: the cut slots of every block holding a cut pixel, at once (a few thousand at most: the last
        output row and column), each block's sorted."""
        sp, R = self.sp, self.R
        pr, pc = np.divmod(np.arange(sp.npix, dtype=np.int64), sp.ew)
        rr, rc = self.room_r[pr], self.room_c[pc]
        pix = np.flatnonzero((rr < sp.r) | (rc < sp.s))
        kr, rem = np.divmod(np.arange(t, dtype=np.int64), sp.s * sp.c)
        i, a = np.nonzero((kr[None, :] >= rr[pix, None]) | (rem[None, :] // sp.c >= rc[pix, None]))
        g, c = np.divmod(pix[i], R)
        w = np.minimum(R, sp.npix - g * R)
        d = a + c
        span = R * t   # a block's slots: sorted by block, then slot, as one key
        key = np.sort(g * span + skew_counts(d, w, t) + c - np.maximum(d - t + 1, 0))
        if not key.size:
            return {}
        g = key // span
        cut = np.flatnonzero(g[1:] != g[:-1]) + 1
        return dict(zip(g[np.concatenate([[0], cut])].tolist(), np.split(key - g * span, cut), strict=True))

    def build(self, g: int, w: int, t: int) -> np.ndarray:
        sp, R = self.sp, self.R
        room_r, room_c = self.room_r, self.room_c
        kr, rem = np.divmod(g * R + np.arange(w, dtype=np.int64), sp.s * sp.c)
        rows_in = np.searchsorted(-room_r, -kr, side="left")   # output rows whose room exceeds kr
        cols_in = np.searchsorted(-room_c, -(rem // sp.c), side="left")
        orow, ocol = np.arange(sp.eh, dtype=np.int64), np.arange(sp.ew, dtype=np.int64)
        parts_a, parts_c = [self.none], [self.none]
        for c_ in np.flatnonzero((rows_in < sp.eh) | (cols_in < sp.ew)).tolist():
            ri, ci_ = int(rows_in[c_]), int(cols_in[c_])
            side = (orow[:ri, None] * sp.ew + ocol[None, ci_:]).ravel()
            past = np.arange(ri * sp.ew, sp.npix, dtype=np.int64)
            parts_a += [side, past]
            parts_c.append(np.full(side.size + past.size, c_, dtype=np.int64))
        a, c = np.concatenate(parts_a), np.concatenate(parts_c)
        d = a + c
        return np.sort(skew_counts(d, w, t) + c - np.maximum(d - t + 1, 0))


@dataclass(frozen=True, slots=True)
class StreamFold:
    """A skewed stream fold of block ``g`` (``w`` columns of ``t`` slots, its cut slots hold no
    demand), served from row ``off`` of its fold: each demand's home, row and address by its index.

    ``base``: the block's valid entries before it in the fetch order; ``head`` / ``tail``: the home
    corrections of its first ``width - 1`` diagonals and of those from ``t`` on (``width``: the fetch
    matrix's columns; the corrections vanish on diagonals ``width - 1 .. t - 1``, demands ``mid``); ``valid``: each cut slot less the cut slots before it (a demand's slot is
    its index plus the entries of ``valid`` at or below it); ``order``: the built fetch order's
    addresses where they are looked at (an IFMAP with duplicates), whose entry at a demand's home is
    its address: a run of demands on the middle diagonals is a slice of it; ``dem``: the addresses built
    whole instead, where the fold is short (mostly its first and last diagonals, where homes jump)."""

    g: int
    w: int
    t: int
    off: int
    base: int
    head: list[int]
    tail: list[int]
    width: int
    valid: list[int]
    valid_arr: np.ndarray
    n: int
    mid: tuple[int, int]
    order: np.ndarray | None
    dem: np.ndarray | None
    ramps: dict[bool, np.ndarray] = field(default_factory=dict)   # the homes off the middle diagonals (head:
                                                                  # False, tail: True), found at their first gather

    @classmethod
    def build(cls, g: int, w: int, t: int, off: int, base: int, head: list[int], tail: list[int], width: int,
              cut: np.ndarray, order: np.ndarray | None, dem: np.ndarray | None = None) -> StreamFold:
        lo = skew_count(width - 1, w, t)
        hi = max(lo, skew_count(t, w, t))   # slots
        if cut.size:
            valid = cut - np.arange(cut.size, dtype=np.int64)
            mid = (lo - int(np.searchsorted(cut, lo)), hi - int(np.searchsorted(cut, hi)))
            return cls(g, w, t, off, base, head, tail, width, valid.tolist(), valid, w * t - cut.size, mid, order, dem)
        return cls(g, w, t, off, base, head, tail, width, [], cut, w * t, (lo, hi), order, dem)

    def corr(self, d: int) -> int:
        """The home correction of diagonal ``d``."""
        if self.width - 1 <= d < self.t:
            return 0
        return (self.head[d] if d < self.width - 1 else 0) + (self.tail[d - self.t] if d >= self.t else 0)

    def slot(self, i: int) -> int:
        return i + bisect.bisect_right(self.valid, i) if self.valid else i

    def home(self, i: int) -> int:
        if self.mid[0] <= i < self.mid[1]:   # a middle diagonal: no correction
            return self.base + i
        tail = i >= self.mid[1]
        got = self.ramps.get(tail)
        if got is not None:
            return int(got[i - self.mid[1] if tail else i])
        return self.base + i + self.corr(skew_find(self.slot(i), self.w, self.t))

    def row(self, i: int) -> int:
        """Demand ``i``'s row within the fold."""
        return skew_find(self.slot(i), self.w, self.t) + self.off

    def first_ge(self, x: int, lo: int) -> int:
        """The first demand at or after ``lo`` whose home is ``x`` or more (``n``: none)."""
        nd, span = self.n, self.width * self.width
        guess = x - self.base   # where the correction is 0 (the fold's middle diagonals), home(i) = base + i
        if lo <= guess < nd and self.mid[0] <= guess < self.mid[1]:
            return guess
        lo = min(nd, max(lo, guess - span))   # corrections are at most width^2 / 2 either way
        hi = min(nd, max(lo, guess + span + 1))
        while lo < hi:
            mid = (lo + hi) // 2
            if self.home(mid) >= x:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def addrs(self, i: int, j: int) -> np.ndarray:
        """The addresses of demands ``i .. j - 1``: the fetch order at their homes (a slice of it on the
        middle diagonals, gathered on the first and last)."""
        if self.dem is not None:
            return self.dem[i:j]
        assert self.order is not None
        lo, hi = self.mid
        if lo <= i and j <= hi:
            return self.order[self.base + i: self.base + j]
        parts = [self.ramp(i, min(j, lo)), self.order[self.base + max(i, lo): self.base + min(j, hi)],
                 self.ramp(max(i, hi), j)]
        return np.concatenate([p for p in parts if p.size])

    def ramp(self, i: int, j: int) -> np.ndarray:
        """:meth:`addrs` of demands ``i .. j - 1`` off the middle diagonals (each home gathered), all on
        the first ones or all on the last; their homes are found once per fold, a few hundred at most."""
        assert self.order is not None
        if i >= j:
            return self.order[:0]
        tail = i >= self.mid[1]
        got = self.ramps.get(tail)
        if got is None:
            got = self.ramps[tail] = self.ramp_homes(self.mid[1], self.n) if tail else self.ramp_homes(0, self.mid[0])
        s = self.mid[1] if tail else 0
        return self.order[got[i - s: j - s]]

    def ramp_homes(self, i: int, j: int) -> np.ndarray:
        """The homes of demands ``i .. j - 1`` (``i < j``) by their diagonals' corrections."""
        idx = np.arange(i, j, dtype=np.int64)
        slots = idx + np.searchsorted(self.valid_arr, idx, side="right") if self.valid else idx
        s0 = int(slots[0])
        d = skew_cells(s0, int(slots[-1]) + 1, self.w, self.t)[0][slots - s0]
        corr = np.zeros(self.t + self.width - 1, dtype=np.int64)
        corr[: self.width - 1] += self.head   # the two overlap on a block shorter than the matrix is wide
        corr[self.t: self.t + self.width - 1] += self.tail
        return self.base + idx + corr[d]

    def addr_at(self, i: int) -> int:
        """:meth:`addrs` of one demand, in plain integers."""
        if self.dem is not None:
            return int(self.dem[i])
        assert self.order is not None
        return int(self.order[self.home(i)])
