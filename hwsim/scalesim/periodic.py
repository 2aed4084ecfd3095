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

from dataclasses import dataclass

import numpy as np

from .topology import Shape

__all__ = ["PeriodicFold", "periodic_fold"]


@dataclass(frozen=True, slots=True)
class _Stretch:
    """Explicit slots of a range of diagonals: diagonal, column and first flag of each demand, in order;
    ``rank[i]``: first demands before slot ``i``; ``first_at``: the slots of the first demands; ``n`` and
    ``firsts``: how many of each (kept as numbers: the scalar lookups read them on every call)."""

    t: np.ndarray
    c: np.ndarray
    rank: np.ndarray
    first_at: np.ndarray
    n: int
    firsts: int

    @staticmethod
    def cut(t: np.ndarray, c: np.ndarray, rank: np.ndarray, at: np.ndarray, o: tuple[int, int], j: tuple[int, int],
            t0: int = 0) -> _Stretch:
        """Slots ``o[0] .. o[1] - 1`` of arrays over many stretches (first demands ``j[0] .. j[1] - 1`` of
        ``at``), diagonals counted from ``t0``."""
        (o0, o1), (j0, j1) = o, j
        return _Stretch(t[o0:o1] - t0 if t0 else t[o0:o1], c[o0:o1], rank[o0: o1 + 1] - rank[o0], at[j0:j1] - o0,
                        o1 - o0, j1 - j0)


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
    """The fold of window indices ``ks`` as head, periods and tail (:func:`periodic_folds` for one)."""
    koff = np.zeros(ks.stop, dtype=np.int64)
    koff[ks.start:] = offs
    return periodic_folds(sp, [ks.start], len(ks), [n], koff, pbase)[0]


def periodic_folds(sp: Shape, starts: list[int], w: int, ns: list[int], koff: np.ndarray,
                   pbase: np.ndarray) -> list[PeriodicFold | None]:
    """The folds of window indices ``start .. start + w - 1`` (``ns``: their demands) as head, periods
    and tail, all built at once (a stem's folds alike in all but their window indices: one pass of
    array operations instead of one per fold); None for a fold whose steady output rows give fewer
    than four periods or whose period is not longer than the repeat reach (it is handled explicitly).
    ``koff`` and ``pbase``: each window index's and output pixel's part of an address."""
    P, eh, ew, sh, sw = sp.npix, sp.eh, sp.ew, sp.sh, sp.sw
    out: list[PeriodicFold | None] = [None] * len(starts)
    k = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(w, dtype=np.int64)    # [fold, column]
    kr, rem = np.divmod(k, sp.s * sp.c)
    kc, ch = np.divmod(rem, sp.c)
    n_r = np.minimum(eh, -(-(sp.h - kr) // sh))
    n_c = np.minimum(ew, -(-(sp.w - kc) // sw))
    # [fold, c, c2]: c2 reads the element c's pixel p reads at pixel p + dr * ew + dc, before it
    # (first_slots' rectangles)
    A, B = (slice(None), slice(None), None), (slice(None), None, slice(None))
    col = np.arange(w, dtype=np.int64)
    same = (ch[A] == ch[B]) & ((kr[A] - kr[B]) % sh == 0) & ((kc[A] - kc[B]) % sw == 0)
    dr, dc = (kr[A] - kr[B]) // sh, (kc[A] - kc[B]) // sw
    dcol = col[None, None, :] - col[None, :, None]
    dt = dr * ew + dc + dcol
    cover = same & (dcol != 0) & ((dt < 0) | ((dt == 0) & (dcol < 0)))
    r0, r1 = np.maximum(0, -dr), np.minimum(eh, n_r[:, None, :] - dr)
    c0, c1 = np.maximum(0, -dc), np.minimum(ew, n_c[:, None, :] - dc)
    cover &= (r0 < r1) & (c0 < c1)
    # repeat_reach's bound, from the same pairs: two demands of one address lie fewer than this apart
    reach = (np.where(same, np.abs(dr) * ew + np.abs(dc) + np.abs(dcol), 0).max(axis=(1, 2)) + 1) * w
    lo_row = np.where(cover, r0, 0).max(axis=(1, 2))
    hi_row = np.minimum(n_r.min(axis=1), np.where(cover, r1, eh).min(axis=(1, 2)))
    t0 = lo_row * ew + w - 1
    q = np.where(hi_row * ew > t0, (hi_row * ew - t0) // ew, 0)
    good = np.flatnonzero(q >= 4).tolist()
    if not good:
        return out
    T = P + w - 1
    G = len(good)
    parts = [((0, int(t0[i])), (int(t0[i]), int(t0[i]) + ew), (int(t0[i] + q[i] * ew), T)) for i in good]
    # each column's pixels on the few output rows these diagonals touch, coded 0 (no demand: outside
    # the input), 1 (a demand) or 2 (a first demand: not in a rectangle of an earlier window index),
    # each column's row padded by w - 1 pixels before (p < 0) and w after (p >= P)
    spans = [(max(0, lo - (w - 1)) // ew, min(eh, (hi - 1) // ew + 1)) for fold in parts for lo, hi in fold]
    rows_at = sorted({y for y0, y1 in spans for y in range(y0, y1)})
    rows_arr = np.array(rows_at, dtype=np.int64)
    where = dict(zip(rows_at, range(len(rows_at)), strict=True))
    g = np.asarray(good, dtype=np.int64)
    valid = ((rows_arr < n_r[g][:, :, None])[:, :, :, None] & (np.arange(ew) < n_c[g][:, :, None])[:, :, None, :])
    grid = valid.copy()
    fi, ca, cb = np.nonzero(cover[g])
    if fi.size:
        y0, y1 = r0[g][fi, ca, cb], r1[g][fi, ca, cb]
        x0, x1 = c0[g][fi, ca, cb], c1[g][fi, ca, cb]
        rect = (((rows_arr >= y0[:, None]) & (rows_arr < y1[:, None]))[:, :, None]
                & ((np.arange(ew) >= x0[:, None]) & (np.arange(ew) < x1[:, None]))[:, None, :])
        grp = np.flatnonzero(np.concatenate(([True], (fi[1:] != fi[:-1]) | (ca[1:] != ca[:-1]))))
        grid[fi[grp], ca[grp]] &= ~np.logical_or.reduceat(rect, grp, axis=0)
    span = len(rows_at) * ew
    lp = span + 2 * w - 1
    code = np.zeros((G, w, lp), dtype=np.int8)
    code[:, :, w - 1: w - 1 + span] = (valid.view(np.int8) + grid.view(np.int8)).reshape(G, w, span)
    # slot (t, c) of a part reads code[fold, c, w - 1 + (t - c) - (its first row - its place) * ew]: a
    # base per diagonal plus c * (lp - 1)
    lens = [hi - lo for fold in parts for lo, hi in fold]
    diag = np.concatenate([np.arange(lo, hi, dtype=np.int64) for fold in parts for lo, hi in fold])
    shift_of = [i // 3 * w * lp + w - 1 + (where[y0] - y0) * ew if y1 > y0 else 0
                for i, (y0, y1) in enumerate(spans)]
    dbase = diag + np.repeat(np.asarray(shift_of, dtype=np.int64), lens)
    got = code.reshape(-1)[(dbase[:, None] + col * (lp - 1)).ravel()]
    kept = np.flatnonzero(got)                   # the slots that are demands, in order
    bounds = np.searchsorted(kept, np.concatenate(([0], np.cumsum(lens))) * w)   # each part's first demand
    tt = np.repeat(diag, w)[kept]
    cc = np.tile(col, diag.size)[kept]
    first = got[kept] == 2
    rank = np.zeros(tt.size + 1, dtype=np.int64)
    np.cumsum(first, out=rank[1:])
    at = np.flatnonzero(first)
    jb = np.searchsorted(at, bounds).tolist()
    bl = bounds.tolist()
    shift = sh * sp.w * sp.c
    folds: list[int] = []
    meta: list[tuple[_Stretch, _Stretch, _Stretch, int, int, int]] = []
    for i, f in enumerate(good):
        o0, o1, o2, o3 = bl[3 * i: 3 * i + 4]
        j0, j1, j2, j3 = jb[3 * i: 3 * i + 4]
        ti = int(t0[f])
        head = _Stretch.cut(tt, cc, rank, at, (o0, o1), (j0, j1))
        body = _Stretch.cut(tt, cc, rank, at, (o1, o2), (j1, j2), ti)
        tail = _Stretch.cut(tt, cc, rank, at, (o2, o3), (j2, j3))
        if body.n <= int(reach[f]) or head.n + int(q[f]) * body.n + tail.n != ns[f]:
            continue
        folds.append(f)
        meta.append((head, body, tail, ti, int(reach[f]), o1))
    if not folds:
        return out
    # the tables of new_since over one period: j (not a first demand) counts for s in (prev(j), j], its
    # previous demand found by sorting (address, place) keys of a period and a reach on either side
    b_of = np.array([m[1].n for m in meta], dtype=np.int64)
    r_of = np.array([m[4] for m in meta], dtype=np.int64)
    o1_of = np.array([m[5] for m in meta], dtype=np.int64)
    c0_of = np.array([starts[f] for f in folds], dtype=np.int64)
    m_of = b_of + 2 * r_of                      # keys per fold: the period and a reach on either side
    F = len(folds)
    fk = np.repeat(np.arange(F, dtype=np.int64), m_of)
    loc = np.arange(int(m_of.sum()), dtype=np.int64) - np.repeat(np.cumsum(m_of) - m_of, m_of)   # 0 .. m - 1
    bk = b_of[fk]
    x = loc - r_of[fk] + bk                     # place in periods 0 (before), 1 (the body), 2 (after)
    per = (x >= bk).astype(np.int64) + (x >= 2 * bk)
    sl = o1_of[fk] + x - per * bk
    adr = koff[c0_of[fk] + cc[sl]] + pbase[tt[sl] - cc[sl]] + per * shift
    big = int(adr.max(initial=0)) + 1
    bits = int(m_of.max()).bit_length()
    if (F * big) << bits >= 1 << 63:   # (a stem of some 10^13 input elements)
        raise ValueError(f"a stem too large to pack its fold keys in 64 bits ({F} folds, {big} addresses)")
    key = np.sort(((fk * big + adr) << bits) | loc)
    place = key & ((1 << bits) - 1)
    key >>= bits
    same_adr = key[1:] == key[:-1]
    fj = key[1:][same_adr] // big
    j, prev = place[1:][same_adr], place[:-1][same_adr]     # places within a fold's keys
    base = np.concatenate(([0], np.cumsum(b_of + 1)))
    s_lo = r_of[fj]                             # the period's s, as places: r .. r + b
    lo_s, hi_s = np.maximum(prev + 1, s_lo), np.minimum(j + 1, s_lo + b_of[fj])
    keep = lo_s < hi_s
    at_lo, at_hi = (lo_s - s_lo + base[fj])[keep], (hi_s - s_lo + base[fj])[keep]
    size = int(base[-1])
    x_all = np.cumsum(np.bincount(at_lo, minlength=size) - np.bincount(at_hi, minlength=size))
    for i, f in enumerate(folds):
        head, body, tail, ti, rf, _ = meta[i]
        offs = koff[starts[f]: starts[f] + w]
        out[f] = PeriodicFold(ns[f], head, body, tail, int(q[f]), ti, ew, shift, offs, pbase, rf,
                              x_all[int(base[i]): int(base[i]) + body.n])
    return out
