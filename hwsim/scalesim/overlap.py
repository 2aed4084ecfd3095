"""CALC mode's IFMAP read buffer in closed form where windows overlap (every 3x3 layer, the 7x7 stem).

In OS, fold ``(fr, fc)`` demands all ``K`` window indices of the output pixels ``[fr * R, fr * R + R)``
(raster order), whatever ``fc``: a sweep of ``rf`` row folds streams the whole input once, and each
column fold repeats it. So the distinct addresses of consecutive whole folds are the input elements
that the windows of a *raster range* of output pixels cover, a count in closed form
(:meth:`Coverage.count`: the range is a part row, whole rows and a part row of outputs; each input row
is covered by a union of a suffix, whole rows and a prefix of column windows).

A window of the buffer (:mod:`.windows`) opens after the demand that closed the previous one: it holds
the rest of that fold (``T``, a few thousand explicit addresses) and then whole folds. For each
element of ``T`` the first later fold that covers it again is a closed form too
(:meth:`Coverage.first_cover`), so the fold in which the window fills is found by a binary search
over counts, with no fold fed. Only that fold is fed, address by address, against a bitmap of the
window (``T`` plus the covered rectangles), to find the demand that closes it. A window that runs
from one column fold into the next holds ``T``, the covered tail of the input and a covered head; the
head is counted in closed form while its rows stay below the tail's, and fed fold by fold otherwise.
Once a window closes at the same place of a sweep as an earlier one, every sweep in between repeats:
whole periods are skipped.

Exactness is by construction and tested: :func:`overlap_read_buffer` equals
:func:`~hwsim.scalesim.replay.stream_read_buffer` fed demand by demand on random layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .replay import skew_slots
from .report import ReadBuffer
from .topology import Shape
from .windows import FillSearch, window_capacity, window_trace

__all__ = ["Coverage", "FoldPattern", "overlap_read_buffer"]


class Coverage:
    """The input elements that the windows of a raster range of output pixels cover (OS folds)."""

    __slots__ = ("sp", "h", "w", "r", "s", "c", "sh", "sw", "eh", "ew", "npix", "full_cols", "counted")

    def __init__(self, sp: Shape) -> None:
        self.sp = sp
        self.counted: dict[tuple[int, int], int] = {}   # count's answers: sweeps ask the same ranges again
        self.h, self.w, self.r, self.s, self.c, self.sh, self.sw = sp.h, sp.w, sp.r, sp.s, sp.c, sp.sh, sp.sw
        self.eh, self.ew, self.npix = sp.eh, sp.ew, sp.npix
        self.full_cols = self._cols(0, self.ew - 1)

    def _cols(self, a: int, b: int) -> int:
        """Input columns covered by output columns ``a .. b``."""
        if a > b:
            return 0
        if self.sw <= self.s:   # windows touch or overlap: one interval
            return min(self.w, b * self.sw + self.s) - a * self.sw
        return (b - a) * self.s + max(0, min(self.s, self.w - b * self.sw))   # only the last may be cut

    def _rows(self, a: int, b: int) -> int:
        """Input rows covered by output rows ``a .. b``."""
        if a > b:
            return 0
        if self.sh <= self.r:
            return min(self.h, b * self.sh + self.r) - a * self.sh
        return (b - a) * self.r + max(0, min(self.r, self.h - b * self.sh))

    def _suffix_prefix(self, a: int, b: int) -> int:
        """Columns covered by output columns ``a ..`` (a suffix) or ``.. b`` (a prefix)."""
        if b >= a - 1:
            return self.full_cols
        both = max(0, b * self.sw + self.s - a * self.sw) if self.sw < self.s else 0
        return self._cols(0, b) + self._cols(a, self.ew - 1) - both

    def count(self, pa: int, pb: int) -> int:
        """Distinct input elements (all channels) that pixels ``[pa, pb)`` read."""
        got = self.counted.get((pa, pb))
        if got is None:
            got = self.counted[(pa, pb)] = self._count(pa, pb)
        return got

    def _count(self, pa: int, pb: int) -> int:
        if pb <= pa:
            return 0
        ew, sh, R, H = self.ew, self.sh, self.r, self.h
        oy0, ox0 = divmod(pa, ew)
        oy1, ox1 = divmod(pb - 1, ew)
        if oy0 == oy1:
            return self.c * self._rows(oy0, oy0) * self._cols(ox0, ox1)
        a0, a1 = oy0 * sh, min(H, oy0 * sh + R)           # input rows of the first (part) output row
        b0, b1 = oy1 * sh, min(H, oy1 * sh + R)           # and of the last
        a_n, b_n = max(0, a1 - a0), max(0, b1 - b0)
        sfx, pfx = self._cols(ox0, ew - 1), self._cols(0, ox1)
        if oy1 == oy0 + 1:   # no whole output row between: rows read by both see a suffix and a prefix
            both = max(0, min(a1, b1) - b0)
            return self.c * (both * self._suffix_prefix(ox0, ox1) + (a_n - both) * sfx + (b_n - both) * pfx)
        mid = self._rows(oy0 + 1, oy1 - 1)                # rows some whole output row reads
        if sh <= R:   # the whole rows' input rows are one interval, overlapping the first's and last's
            a_only = max(0, min(a1, (oy0 + 1) * sh) - a0)
            b_only = max(0, b1 - max(b0, min(H, (oy1 - 1) * sh + R)))
        else:
            a_only, b_only = a_n, b_n
        return self.c * (mid * self.full_cols + a_only * sfx + b_only * pfx)

    def _axis(self, a: int, b: int, n: int, k: int, s: int) -> slice | np.ndarray:
        if s <= k:
            return slice(a * s, min(n, b * s + k))
        idx = (np.arange(a, b + 1, dtype=np.int64)[:, None] * s + np.arange(k, dtype=np.int64)).ravel()
        return idx[idx < n]

    def fill(self, grid3: np.ndarray, pa: int, pb: int) -> None:
        """Set the elements pixels ``[pa, pb)`` read in ``grid3`` (an ``H x W x C`` view of a bitmap)."""
        if pb <= pa:
            return
        sp = self.sp
        ew = self.ew
        oy0, ox0 = divmod(pa, ew)
        oy1, ox1 = divmod(pb - 1, ew)
        parts = [(oy0, oy0, ox0, ew - 1 if oy1 > oy0 else ox1)]
        if oy1 > oy0:
            parts += [(oy0 + 1, oy1 - 1, 0, ew - 1), (oy1, oy1, 0, ox1)]
        for ya, yb, xa, xb in parts:
            if ya > yb:
                continue
            rows = self._axis(ya, yb, sp.h, sp.r, sp.sh)
            cols = self._axis(xa, xb, sp.w, sp.s, sp.sw)
            if isinstance(rows, slice) and isinstance(cols, slice):
                grid3[rows, cols] = True
            else:
                ri = np.arange(sp.h)[rows] if isinstance(rows, slice) else rows
                ci = np.arange(sp.w)[cols] if isinstance(cols, slice) else cols
                grid3[np.ix_(ri, ci)] = True

    def first_cover(self, elems: np.ndarray, pmin: int | np.ndarray) -> np.ndarray:
        """For each element (address relative to the input), the first pixel ``>= pmin`` (one for all, or
        one per element) whose window reads it, or ``npix`` where none does. The answer is a position's
        (all its channels alike): with one ``pmin`` it is found once per position of the elements' span
        where that span is shorter than the elements (a fold reads a few input rows, every channel)."""
        pos = elems // self.c
        if np.ndim(pmin) == 0 and pos.size > 64:
            lo, hi = int(pos.min()), int(pos.max())
            if hi - lo < pos.size:
                return self.first_reader(np.arange(lo, hi + 1, dtype=np.int64), pmin)[pos - lo]
        return self.first_reader(pos, pmin)

    def first_reader(self, pos: np.ndarray, pmin: int | np.ndarray) -> np.ndarray:
        """:meth:`first_cover` of input positions (``y * W + x``)."""
        sp = self.sp
        ew = sp.ew
        y, x = np.divmod(pos, sp.w)
        oy_lo = np.maximum(0, -((sp.r - 1 - y) // sp.sh))
        oy_hi = np.minimum(sp.eh - 1, y // sp.sh)
        ox_lo = np.maximum(0, -((sp.s - 1 - x) // sp.sw))
        ox_hi = np.minimum(ew - 1, x // sp.sw)
        oy_m, ox_m = divmod(pmin, ew)
        none = sp.npix
        same = oy_m * ew + np.maximum(ox_m, ox_lo)        # the row of pmin still holds a reader
        nxt = (oy_m + 1) * ew + ox_lo                     # else the next output row's first reader
        in_row = np.where(ox_m <= ox_hi, same, np.where(oy_m + 1 <= oy_hi, nxt, none))
        out = np.where(oy_lo > oy_m, oy_lo * ew + ox_lo, np.where(oy_hi >= oy_m, in_row, none))
        return np.where(ox_lo <= ox_hi, out, none)

    def min_row(self, pa: int) -> int:
        """The first input row that pixels ``[pa, npix)`` read."""
        return (pa // self.sp.ew) * self.sp.sh

    def max_row(self, pb: int) -> int:
        """The last input row that pixels ``[0, pb)`` read."""
        return min(self.sp.h, ((pb - 1) // self.sp.ew) * self.sp.sh + self.sp.r) - 1


@dataclass(frozen=True, slots=True)
class FoldPattern:
    """One row fold's IFMAP demands in service order (``rel`` rows within the fold, ``base_addrs +
    offset`` the addresses relative to the input), its distinct addresses ``base_uniq + offset`` with
    the index of each one's first and last demand, and ``nxt``: the first pixel from the next fold on
    that reads each one again (``npix``: none), and ``again``: its row fold (``rf``: none). Distinct
    addresses come in the order of their last demand, so what a fold demands after index ``i`` is
    the suffix from ``searchsorted(last_at, i)``.

    Patterns repeat up to a shift: folds ``lcm(R, ew) / R`` apart start at the same output column,
    ``lcm(R, ew) / ew`` output rows lower, so away from windows cut by the bottom edge a fold's pattern
    is an earlier one's with addresses moved by that many rows of input (:meth:`shifted`)."""

    rel: np.ndarray
    base_addrs: np.ndarray
    base_uniq: np.ndarray
    first_at: np.ndarray
    last_at: np.ndarray
    nxt: np.ndarray
    again: np.ndarray
    offset: int = 0

    @property
    def addrs(self) -> np.ndarray:
        return self.base_addrs + self.offset if self.offset else self.base_addrs

    @property
    def uniq(self) -> np.ndarray:
        return self.base_uniq + self.offset if self.offset else self.base_uniq

    @property
    def nbytes(self) -> int:
        own = self.nxt.nbytes + self.again.nbytes
        return own if self.offset else own + sum(
            x.nbytes for x in (self.rel, self.base_addrs, self.base_uniq, self.first_at, self.last_at))

    def shifted(self, addr_step: int, pix_step: int, npix: int, rows: int) -> FoldPattern:
        """The same demands ``pix_step`` pixels (``addr_step`` addresses) later, on an array of ``rows``
        rows; readers past the last pixel do not exist."""
        nxt = self.nxt + pix_step
        nxt = np.where((self.nxt < npix) & (nxt < npix), nxt, npix)
        again = np.where(nxt < npix, nxt // rows, -(-npix // rows))
        return FoldPattern(self.rel, self.base_addrs, self.base_uniq, self.first_at, self.last_at, nxt, again,
                           self.offset + addr_step)


def _is_rows(rf: int, rows: int, fold_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """An IS column fold's rows of demands in service order: each one's row from the column fold's
    start and its window index; row fold ``fr`` preloads window indices ``fr * rows ..`` (bottom row
    first), and every row holds them for all the fold's pixels, in order."""
    fr, r = np.divmod(np.arange(rf * rows, dtype=np.int64), rows)
    idx = fr * rows + rows - 1 - r
    keep = idx < k
    return (fr * fold_rows + r)[keep], idx[keep]


_PATTERN_CACHE_BYTES = 32 * 2**20   # fold patterns kept at once (a layer has rf of them)


def overlap_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                        shift_at: Callable[[int], int]) -> ReadBuffer | None:
    """The IFMAP read buffer's DRAM trace in OS by the closed forms of the module docstring; None for
    the other operands and dataflows."""
    if operand != "ifmap" or cfg.dataflow is Dataflow.WS:
        return None
    g = fold_grid(sp, cfg)
    K, P = sp.window, sp.npix
    if cfg.dataflow is Dataflow.OS:   # fold (fr, fc): R pixels x all K window indices; rf folds a sweep
        R, rf, folds, fold_rows = cfg.array_rows, g.row_folds, g.folds, g.fold_rows
    else:   # IS: column fold fc (C pixels) reads all K window indices in its rf row folds: one "fold" here,
        # and the whole layer one sweep (the IS IFMAP is read once)
        R, rf, folds, fold_rows = cfg.array_cols, g.col_folds, g.col_folds, g.row_folds * g.fold_rows
    cap = window_capacity(kb)
    cov = Coverage(sp)
    # a demand (pixel p, window index k) reads corner[p] + offset[k] where the window holds it
    orow, ocol = np.divmod(np.arange(P, dtype=np.int64), sp.ew)
    room_r, room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw
    corner = (orow * sp.sh * sp.w + ocol * sp.sw) * sp.c
    kr, rem = np.divmod(np.arange(K, dtype=np.int64), sp.s * sp.c)
    kc = rem // sp.c
    offset = (kr * sp.w + kc) * sp.c + rem % sp.c
    cut = (room_r < sp.r) | (room_c < sp.s)          # pixels whose window runs past the input
    is_flow = cfg.dataflow is Dataflow.IS
    slots: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]] = {}
    mark = np.zeros(0, dtype=np.int64)
    pats: dict[tuple[int, int], FoldPattern] = {}
    held_bytes = 0

    def pix(fr: int) -> int:
        return min(fr * R, P)

    period_pix = R * sp.ew // gcd(R, sp.ew)            # folds this many pixels apart are shifted copies
    period_folds = period_pix // R
    cut_rows = np.flatnonzero(room_r < sp.r)             # pixels whose window the bottom edge cuts
    first_cut_fold = int(cut_rows[0]) // R if cut_rows.size else rf

    def keep(key: tuple[int, int], got: FoldPattern) -> FoldPattern:
        """``got`` kept as the pattern of ``key`` within the memory bound (the oldest dropped first)."""
        nonlocal held_bytes
        while pats and held_bytes + got.nbytes > _PATTERN_CACHE_BYTES:
            held_bytes -= pats.pop(next(iter(pats))).nbytes
        pats[key] = got
        held_bytes += got.nbytes
        return got

    def pattern(fr: int, pa_next: int) -> FoldPattern:
        """Row fold ``fr``'s pattern; ``nxt`` counts from pixel ``pa_next`` on. (Not recursive: a closure
        that calls itself is a reference cycle, which held the layer's patterns, a few MB, until the
        garbage collector ran.)"""
        got = pats.get((fr, pa_next))
        if got is not None:
            return got
        base = fr % period_folds
        if base != fr and fr < first_cut_fold and fr + 1 < rf and pa_next == pix(fr + 1):
            shift = (fr - base) // period_folds
            key = (base, pix(base + 1))
            src = pats.get(key) or keep(key, build(*key))
            got = src.shifted(shift * (period_pix // sp.ew) * sp.sh * sp.w * sp.c, shift * period_pix, P, R)
        else:
            got = build(fr, pa_next)
        return keep((fr, pa_next), got)

    def build(fr: int, pa_next: int) -> FoldPattern:
        nonlocal mark
        p0 = fr * R
        w = min(R, P - p0)
        if w not in slots:
            if is_flow:   # rows of window indices, each over the fold's w pixels: built as a grid
                d, a = _is_rows(g.row_folds, cfg.array_rows, g.fold_rows, K)
                slots[w] = (np.repeat(d, w), None, offset[a][:, None], kr[a][:, None], kc[a][:, None])
            else:         # OS: skewed over the fold's pixels
                d, a, cols = skew_slots(w, K)
                slots[w] = (d, cols, offset[a], kr[a], kc[a])
        rel, c, off, krs, kcs = slots[w]
        if c is None:
            q = slice(p0, p0 + w)
            addr = (off + corner[q]).ravel()
            if cut[q].any():
                inside = ((krs < room_r[q]) & (kcs < room_c[q])).ravel()
                rel, addr = rel[inside], addr[inside]
        else:
            p = c + p0
            addr = corner[p] + off
            if cut[p0:p0 + w].any():
                inside = (krs < room_r[p]) & (kcs < room_c[p])
                rel, addr = rel[inside], addr[inside]
        idx = np.arange(addr.size, dtype=np.int64)
        lo = int(addr.min()) if addr.size else 0
        loc = addr - lo                                  # a fold reads a few input rows: a small table
        span = int(loc.max()) + 1 if addr.size else 0
        if mark.size < span:
            mark = np.zeros(span, dtype=np.int64)
        mark[loc] = idx                                  # the last demand of each address wins
        last_at = np.flatnonzero(mark[loc] == idx)
        uniq = addr[last_at]
        mark[loc[::-1]] = idx[::-1]                      # and now the first
        first_at = mark[uniq - lo]
        nxt = cov.first_cover(uniq, pa_next) if pa_next < P else np.full(uniq.size, P, dtype=np.int64)
        return FoldPattern(rel, addr, uniq, first_at, last_at, nxt, np.where(nxt < P, nxt // R, rf))

    def pat(f: int) -> FoldPattern:
        """Fold ``f``'s pattern, ``again`` counted in the fold's own sweep (from the next fold on)."""
        fr = f % rf
        return pattern(fr, pix(fr + 1) if fr + 1 < rf else 0)

    # the first demand is fold 0's first (pixel 0 reads all its window); the last, the last reading fold's
    f_last = folds - 1
    while f_last > 0 and not ((room_r[pix(f_last % rf):pix(f_last % rf + 1)] > 0)
                              & (room_c[pix(f_last % rf):pix(f_last % rf + 1)] > 0)).any():
        f_last -= 1
    first_row = int(pat(0).rel[0])
    last_row = f_last * fold_rows + int(pat(f_last).rel[-1])
    total = cov.count(0, P)
    if total < cap:
        return window_trace(kb, 0, total, -1, first_row, last_row, shift_at)
    fill_search = FillSearch(total, rf)   # the fold in which each window fills

    size = sp.h * sp.w * sp.c
    seen = np.zeros(size, dtype=bool)
    grid3 = seen.reshape(sp.h, sp.w, sp.c)
    closes = 0
    last_close_row = -1
    count = 0
    states: dict[tuple[int, int], tuple[int, int]] = {}   # where a window opened in a sweep -> (fold, closes)

    def feed(f: int) -> int:
        """Feed fold ``f`` against ``seen`` (the open window); returns where the window open at its end
        starts (0 if none closed in it, else after the closing demand)."""
        nonlocal count, closes, last_close_row
        pt = pat(f)
        n = pt.base_addrs.size
        base = f * fold_rows
        uniq = pt.uniq
        fresh = ~seen[uniq]
        new_first = pt.first_at[fresh]
        if count + new_first.size < cap:
            seen[uniq] = True
            count += new_first.size
            return 0
        need = cap - count
        hit = int(np.partition(new_first, need - 1)[need - 1])
        closes += 1
        last_close_row = base + int(pt.rel[hit])
        seen[:] = False
        start = opened = hit + 1
        count = pt.last_at.size - int(np.searchsorted(pt.last_at, start))   # the rest opens the next window
        if count < cap:
            return opened
        count = 0
        a = pt.addrs
        lo = int(a.min())
        scratch = np.zeros(int(a.max()) - lo + 1, dtype=np.int64)
        a = a - lo
        seen_here = seen[lo:]
        while start < n:   # windows smaller than a fold: feed the rest demand by demand
            sub = a[start:]
            sidx = np.arange(sub.size, dtype=np.int64)
            scratch[sub[::-1]] = sidx[::-1]
            new = (scratch[sub] == sidx) & ~seen_here[sub]
            cs = np.cumsum(new)
            if count + int(cs[-1]) < cap:
                seen_here[sub[new]] = True
                count += int(cs[-1])
                break
            hit = int(np.searchsorted(cs, cap - count))
            closes += 1
            last_close_row = base + int(pt.rel[start + hit])
            seen[:] = False
            count = 0
            start = opened = start + hit + 1
        return opened

    f = 0
    tail = np.zeros(0, dtype=np.int64)      # the open window's addresses, from the fold before ``f``
    again = np.zeros(0, dtype=np.int64)     # and the row fold that reads each again
    while f < folds:
        # the open window holds ``tail`` and nothing else; folds from f on are whole until it fills
        sweep_end = (f // rf + 1) * rf
        fr0 = f % rf
        pa = pix(fr0)
        # cum[j]: tail addresses read again by row folds fr0 .. fr0 + j
        cum = (np.cumsum(np.bincount(again - fr0, minlength=rf - fr0 + 1)) if tail.size
               else np.zeros(rf + 1, dtype=np.int64))

        def held(fr: int, pa: int = pa, cum: np.ndarray = cum, fr0: int = fr0, n_tail: int = tail.size) -> int:
            """Distinct addresses of the window after whole folds fr0 .. fr of this sweep."""
            return cov.count(pa, pix(fr + 1)) + n_tail - int(cum[fr - fr0])

        if held(rf - 1) >= cap:   # the first fold in which the window fills
            lo_fr = fill_search(held, fr0, rf - 1, cap, tail.size)
            seen[tail] = True   # seen was emptied when the last window closed
            cov.fill(grid3, pa, pix(lo_fr))
            count = held(lo_fr - 1) if lo_fr > fr0 else int(tail.size)
            f = f - fr0 + lo_fr
        else:   # the window runs into the next column fold (or to the end)
            count = held(rf - 1)
            f = sweep_end
            if f >= folds:
                break
            seen[tail] = True
            cov.fill(grid3, pa, P)
            floor_row = min(cov.min_row(pa), int(tail.min()) // (sp.w * sp.c) if tail.size else sp.h)
            fr1 = 0   # whole folds of the next sweep, counted while they read rows above the window's
            while fr1 < rf and cov.max_row(pix(fr1 + 1)) < floor_row and count + cov.count(0, pix(fr1 + 1)) < cap:
                fr1 += 1
            if fr1 < rf and cov.max_row(pix(fr1 + 1)) < floor_row:
                count += cov.count(0, pix(fr1))
                cov.fill(grid3, 0, pix(fr1))
                f += fr1
            # otherwise (the head reaches the window's rows) fold by fold from the sweep's start
        opened = 0
        while f < folds:   # feed folds until one closes a window
            opened = feed(f)
            if opened:
                break
            f += 1
        if f >= folds:
            break
        pt = pat(f)
        rest = int(np.searchsorted(pt.last_at, opened))
        tail, again = pt.base_uniq[rest:] + pt.offset, pt.again[rest:]
        key = (f % rf, opened)
        if key in states:   # the same window as a sweep ago: whole periods repeat
            f_prev, closes_prev = states.pop(key)
            period = f - f_prev
            q = (folds - 1 - f) // period
            if q > 0:
                closes += q * (closes - closes_prev)
                last_close_row += q * period * fold_rows
                f += q * period
            states.clear()
        else:
            states[key] = (f, closes)
        f += 1
    return window_trace(kb, closes, count, last_close_row, first_row, last_row, shift_at)
