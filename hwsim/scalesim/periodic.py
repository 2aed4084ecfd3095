"""A WS fold of repeated addresses (more window indices than channels: a stem) as a head, a periodic
body and a tail, so that its first demands are counted and found by arithmetic.

In such a fold window index ``k`` of output pixel ``p`` is served on diagonal ``t = p + c`` (``c``: its
column). Whether a demand exists and whether it is the first of its address depend on the pixel's
output row only through which of a few row ranges it falls in (the rows a window index's element
stays inside the input, the rectangles where an earlier window index reads the same element:
:func:`~hwsim.scalesim.stationary.first_slots`). Between those boundaries every output row is alike:
the diagonals of those rows repeat with period ``E_w``, each period ``D`` demands of which ``F`` are
first ones, every address one output row (``sh * W * C``) on. So the fold is a *head* (diagonals before
the steady rows), ``Q`` periods and a *tail*, each built explicitly once (a few thousand slots against
some 200,000 demands); ranks, selections and addresses of the body follow by ``divmod``.

A buffer window opening at demand ``s`` inside the fold holds, past ``s + reach``
(:func:`~hwsim.scalesim.stationary.repeat_reach`), exactly the fold's first demands; before it, the
demands whose address was not demanded in ``[s, j)``: the first demands there and :meth:`new_since`
others, periodic in ``s`` in the body (one table of ``D`` entries, found by a difference array over the
repeated demands' previous ones). Exactness is tested against the fold's demands enumerated in order.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from .topology import Shape

__all__ = ["PeriodicFold", "periodic_fold"]


@dataclass(frozen=True, slots=True)
class _Stretch:
    """Explicit slots of a range of diagonals: diagonal, column and first flag of each demand, in order;
    ``rank[i]``: first demands before slot ``i``; ``first_at``: the slots of the first demands."""

    t: np.ndarray
    c: np.ndarray
    rank: np.ndarray
    first_at: np.ndarray

    @property
    def n(self) -> int:
        return int(self.t.size)

    @property
    def firsts(self) -> int:
        return int(self.first_at.size)


@dataclass(frozen=True, slots=True)
class PeriodicFold:
    """One fold's demands as head, ``q`` periods of ``ew`` diagonals from diagonal ``t0`` and tail
    (module docstring); ``offs`` and ``pbase``: each column's and pixel's part of an address,
    ``shift``: the address step of one period; ``reach``: the repeat reach; ``x_table[phase]``:
    :meth:`new_since` for a window opening at that phase of a period away from the head and tail."""

    n: int
    head: _Stretch
    body: _Stretch
    tail: _Stretch
    q: int
    t0: int
    ew: int
    shift: int
    offs: np.ndarray
    pbase: np.ndarray
    reach: int
    x_table: np.ndarray

    @property
    def firsts(self) -> int:
        """First demands of the fold."""
        return self.head.firsts + self.q * self.body.firsts + self.tail.firsts

    def diagonal(self, i: int) -> int:
        """The diagonal of demand ``i``."""
        h, b = self.head.n, self.body.n
        if i < h:
            return int(self.head.t[i])
        if i < h + self.q * b:
            per, r = divmod(i - h, b)
            return self.t0 + per * self.ew + int(self.body.t[r])
        return int(self.tail.t[i - h - self.q * b])

    def rank(self, i: int) -> int:
        """First demands before demand ``i``."""
        h, b = self.head.n, self.body.n
        if i <= h:
            return int(self.head.rank[i])
        if i <= h + self.q * b:
            per, r = divmod(i - h, b)
            return self.head.firsts + per * self.body.firsts + int(self.body.rank[r])
        return self.head.firsts + self.q * self.body.firsts + int(self.tail.rank[i - h - self.q * b])

    def select(self, j: int) -> int:
        """The index of the ``j``-th first demand (from 0)."""
        fh, fb = self.head.firsts, self.body.firsts
        if j < fh:
            return int(self.head.first_at[j])
        if j < fh + self.q * fb:
            per, r = divmod(j - fh, fb)
            return self.head.n + per * self.body.n + int(self.body.first_at[r])
        return self.head.n + self.q * self.body.n + int(self.tail.first_at[j - fh - self.q * fb])

    def _slots(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal and column of demands ``idx`` (sorted)."""
        h, b = self.head.n, self.body.n
        e = h + self.q * b
        a0, a1 = np.searchsorted(idx, [h, e])
        per, r = np.divmod(idx[a0:a1] - h, b)
        t = np.concatenate((self.head.t[idx[:a0]], self.t0 + per * self.ew + self.body.t[r],
                            self.tail.t[idx[a1:] - e]))
        c = np.concatenate((self.head.c[idx[:a0]], self.body.c[r], self.tail.c[idx[a1:] - e]))
        return t, c

    def addrs(self, idx: np.ndarray) -> np.ndarray:
        """The addresses of demands ``idx`` (sorted)."""
        t, c = self._slots(idx)
        return self.offs[c] + self.pbase[t - c]

    def addr_range(self, lo: int, hi: int) -> np.ndarray:
        return self.addrs(np.arange(lo, max(lo, hi), dtype=np.int64))

    def first_addrs_from(self, i: int) -> np.ndarray:
        """The addresses of the first demands at or after demand ``i``."""
        return self.addrs(self.select_all(self.rank(i)))

    def select_all(self, j0: int) -> np.ndarray:
        """The indices of the first demands from the ``j0``-th on."""
        fh, fb = self.head.firsts, self.body.firsts
        j = np.arange(j0, self.firsts, dtype=np.int64)
        a0, a1 = np.searchsorted(j, [fh, fh + self.q * fb])
        per, r = np.divmod(j[a0:a1] - fh, fb)
        return np.concatenate((self.head.first_at[j[:a0]], self.head.n + per * self.body.n + self.body.first_at[r],
                               self.head.n + self.q * self.body.n + self.tail.first_at[j[a1:] - fh - self.q * fb]))

    def windows_from(self, s: int, cap: int) -> tuple[int, int, int]:
        """Windows of ``cap`` addresses opening one after another at demand ``s`` while they open and close
        within the body's periods away from the head and tail (each closes at its ``cap``-th new demand:
        :meth:`new_since` from the table, then the first demands, by ``divmod``): ``(windows closed,
        the demand that closed the last, where the next one opens)``."""
        h, b, fh, fb = self.head.n, self.body.n, self.head.firsts, self.body.firsts
        hi = h + (self.q - 1) * b - self.reach
        last_first = fh + (self.q - 1) * fb    # selections up to here stay in the body's periods
        x, rank, at = self.x_table, self.body.rank, self.body.first_at
        closes, hit = 0, -1
        while h + b <= s < hi:
            per, r = divmod(s - h, b)
            j = fh + per * fb + rank[r] + cap - x[r] - 1
            if j >= last_first:
                break
            per, r = divmod(j - fh, fb)
            hit = h + per * b + at[r]
            closes += 1
            s = hit + 1
        return closes, hit, s

    def new_since(self, s: int) -> int:
        """Demands in ``[s, s + reach)`` that are not first ones of the fold yet bring an address not
        demanded in ``[s, j)`` (their previous demand lies before ``s``)."""
        h, b = self.head.n, self.body.n
        if h + b <= s < h + (self.q - 1) * b - self.reach:   # a period's table applies
            return int(self.x_table[(s - h) % b])
        e = min(self.n, s + self.reach)
        if e <= s:
            return 0
        return int(np.unique(self.addr_range(s, e)).size) - (self.rank(e) - self.rank(s))


def periodic_fold(sp: Shape, ks: range, n: int, offs: np.ndarray, pbase: np.ndarray) -> PeriodicFold | None:
    """The fold of window indices ``ks`` as head, periods and tail; None where its steady output rows
    give fewer than four periods or a period is not longer than the repeat reach (the fold is then
    handled explicitly); ``offs`` and ``pbase``: each window index's and output pixel's part of an
    address."""
    w, P, eh, ew, sh, sw = len(ks), sp.npix, sp.eh, sp.ew, sp.sh, sp.sw
    k = np.arange(ks.start, ks.stop, dtype=np.int64)
    kr, rem = np.divmod(k, sp.s * sp.c)
    kc, ch = np.divmod(rem, sp.c)
    n_r = np.minimum(eh, -(-(sp.h - kr) // sh))
    n_c = np.minimum(ew, -(-(sp.w - kc) // sw))
    # (c, c2): c2 reads the element c's pixel p reads at pixel p + dr * ew + dc, before it (first_slots)
    same = (ch[:, None] == ch[None, :]) & ((kr[:, None] - kr[None, :]) % sh == 0) & ((kc[:, None] - kc[None, :]) % sw == 0)
    dr, dc = (kr[:, None] - kr[None, :]) // sh, (kc[:, None] - kc[None, :]) // sw
    col = np.arange(w, dtype=np.int64)
    dt = dr * ew + dc + col[None, :] - col[:, None]
    cover = same & (col[:, None] != col[None, :]) & ((dt < 0) | ((dt == 0) & (col[None, :] < col[:, None])))
    r0, r1 = np.maximum(0, -dr), np.minimum(eh, n_r[None, :] - dr)
    c0, c1 = np.maximum(0, -dc), np.minimum(ew, n_c[None, :] - dc)
    cover &= (r0 < r1) & (c0 < c1)
    # repeat_reach's bound, from the same pairs: two demands of one address lie fewer than this apart
    reach = int(((np.abs(dr) * ew + np.abs(dc) + np.abs(col[None, :] - col[:, None]))[same].max() + 1) * w)
    lo_row = int(max(0, r0[cover].max(initial=0)))
    hi_row = int(min(n_r.min(), r1[cover].min(initial=eh)))
    t0 = lo_row * ew + w - 1
    q = (hi_row * ew - t0) // ew if hi_row * ew > t0 else 0
    if q < 4:
        return None
    pairs = list(zip(*(x.tolist() for x in (*np.nonzero(cover), r0[cover], r1[cover], c0[cover], c1[cover]))))
    T = P + w - 1
    parts = ((0, t0), (t0, t0 + ew), (t0 + q * ew, T))   # head, one period, tail
    # each column's first pixels (inside the input, less the rectangles of earlier window indices) on
    # the few output rows these diagonals touch, then looked up for every slot
    rows_at = sorted({y for lo, hi in parts if hi > lo
                      for y in range(max(0, lo - (w - 1)) // ew, min(eh, (hi - 1) // ew + 1))})
    where = np.zeros(eh, dtype=np.int64)
    where[rows_at] = np.arange(len(rows_at))
    grid = ((np.array(rows_at, dtype=np.int64) < n_r[:, None])[:, :, None]
            & (np.arange(ew, dtype=np.int64) < n_c[:, None])[:, None, :])
    for a, _, y0, y1, x0, x1 in pairs:
        i0, i1 = bisect_left(rows_at, y0), bisect_left(rows_at, y1)
        if i0 < i1:
            grid[a, i0:i1, x0:x1] = False
    diag = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in parts])
    tt = np.repeat(diag, w)
    cc = np.tile(col, diag.size)
    p = tt - cc
    orow, ocol = np.divmod(p, ew)
    ok = (p >= 0) & (p < P)
    ok[ok] = (orow[ok] < n_r[cc[ok]]) & (ocol[ok] < n_c[cc[ok]])
    tt, cc = tt[ok], cc[ok]
    first = grid[cc, where[orow[ok]], ocol[ok]]
    cut = np.searchsorted(tt, [t0, t0 + ew, t0 + q * ew])

    rank = np.zeros(tt.size + 1, dtype=np.int64)
    np.cumsum(first, out=rank[1:])
    at = np.flatnonzero(first)
    i0, i1, i2 = cut.tolist()
    j0, j1, j2 = np.searchsorted(at, cut).tolist()
    head = _Stretch(tt[:i0], cc[:i0], rank[: i0 + 1], at[:j0])
    body = _Stretch(tt[i0:i1] - t0, cc[i0:i1], rank[i0: i1 + 1] - rank[i0], at[j0:j1] - i0)
    tail = _Stretch(tt[i2:], cc[i2:], rank[i2:] - rank[i2], at[j2:] - i2)
    if body.n <= reach or head.n + q * body.n + tail.n != n:
        return None
    shift = sh * sp.w * sp.c
    # the table of new_since over one period: j (not a first demand) counts for s in (prev(j), j], its
    # previous demand found by sorting the addresses of a period and a reach on either side
    b, h = body.n, head.n
    per = offs[body.c] + pbase[t0 + body.t - body.c]
    adr = np.concatenate((per[b - reach:], per + shift, per[:reach] + 2 * shift))
    idx = np.arange(h + b - reach, h + 2 * b + reach, dtype=np.int64)
    order = np.argsort(adr, kind="stable")
    dup = adr[order[1:]] == adr[order[:-1]]
    j, prev = idx[order[1:]][dup], idx[order[:-1]][dup]
    s_lo, s_hi = h + b, h + 2 * b
    lo_s, hi_s = np.maximum(prev + 1, s_lo), np.minimum(j + 1, s_hi)
    keep = lo_s < hi_s
    diff = np.bincount(lo_s[keep] - s_lo, minlength=b + 1) - np.bincount(hi_s[keep] - s_lo, minlength=b + 1)
    x_table = np.cumsum(diff[:-1])
    return PeriodicFold(n, head, body, tail, q, t0, ew, shift, offs, pbase, reach, x_table)
