"""CALC mode's OS IFMAP read buffer where windows overlap, counted per input *position* (all channels of
a pixel of the input at once) when the channels outnumber the array's rows (every 3x3 layer but a stem).

In OS, fold ``fr`` demands window index ``t = kpos * C + ch`` (``kpos = kr * S + kc``) of its ``w <= R``
pixels, pixel ``c`` at diagonal ``t + c``, served by diagonal then ``c``. With ``C >= R`` two readers of
one input position differ in ``kpos``, so their diagonals differ by at least ``C > |c - c'|``: the reader
with the smallest ``kpos`` demands every channel first, channel ``ch`` at diagonal ``e + ch``
(``e = kpos_min * C + c_first``), and the one with the largest demands it last, at ``l + ch``. A fold is
then a few hundred positions instead of ``R * K`` demands, and the open window holds, per position,
either all channels, none, or a suffix ``[th, C)`` (what a fold demands after the demand that closed a
window). The demand that fills a window is found by the piecewise-linear count of new channels below a
diagonal; the rest (which folds a window spans, coverage of raster pixel ranges, periods of sweeps)
is :mod:`.overlap`'s closed forms.

Used where no fold holds a whole window (``positions * C < cap`` for every fold), so a window closes at
most once in a fold; :mod:`.overlap` takes the other layers. Exactness is tested against
:func:`~hwsim.scalesim.replay.stream_read_buffer` fed demand by demand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .overlap import Coverage
from .report import ReadBuffer
from .topology import Shape
from .windows import FillSearch, window_capacity, window_trace

__all__ = ["FoldPositions", "FoldTable", "fold_positions", "nth_new_demand", "new_upto", "nth_new_slot", "position_read_buffer"]


@dataclass(frozen=True, slots=True)
class FoldPositions:
    """One OS row fold's input positions (``pos = y * W + x``), each one's first demand of channel 0 at
    diagonal ``e`` and array column ``c_first``, its last demand of channel 0 at diagonal ``last`` and
    column ``c_last`` (channel ``ch`` ``ch`` diagonals later), ``again``, the row fold of the next fold's
    sweep that reads it again (the number of row folds: none), ``prev``, the last pixel before the fold
    that reads it (-1: none), ``final``, the last pixel of the layer that reads it, ``d_last``, the
    fold's last diagonal, ``e_hist``, the positions whose first demand lies on each diagonal
    (``d_last + 2`` of them: :func:`nth_new_demand`'s start, the same for every window the fold closes),
    and ``span``, its lowest and highest position (none: empty)."""

    pos: np.ndarray
    e: np.ndarray
    c_first: np.ndarray
    last: np.ndarray
    c_last: np.ndarray
    again: np.ndarray
    prev: np.ndarray
    final: np.ndarray
    d_last: int
    e_hist: np.ndarray
    span: tuple[int, int] | tuple[()]


def readers(sp: Shape, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The output rows ``oy_lo .. oy_hi`` and columns ``ox_lo .. ox_hi`` whose windows read each input
    position: a rectangle of pixels."""
    y, x = np.divmod(pos, sp.w)
    oy_lo = np.maximum(0, -((sp.r - 1 - y) // sp.sh))
    ox_lo = np.maximum(0, -((sp.s - 1 - x) // sp.sw))
    return oy_lo, np.minimum(sp.eh - 1, y // sp.sh), ox_lo, np.minimum(sp.ew - 1, x // sp.sw)


def last_reader_below(sp: Shape, pos: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """The last pixel before ``pb`` (raster order) that reads each position; -1 where none does."""
    oy_lo, oy_hi, ox_lo, ox_hi = readers(sp, pos)
    oy_b, ox_b = np.divmod(pb - 1, sp.ew)
    ew = sp.ew
    in_row = np.where(ox_b >= ox_lo, oy_b * ew + np.minimum(ox_b, ox_hi),
                      np.where(oy_b - 1 >= oy_lo, (oy_b - 1) * ew + ox_hi, -1))
    out = np.where(oy_b > oy_hi, oy_hi * ew + ox_hi, np.where(oy_b >= oy_lo, in_row, -1))
    return np.where((pb > 0) & (ox_lo <= ox_hi) & (oy_lo <= oy_hi), out, -1)


class FoldTable(Sequence[FoldPositions]):
    """Every OS row fold's :class:`FoldPositions`, kept as arrays over all folds (fold ``f``'s positions
    are ``bounds[f] .. bounds[f + 1] - 1``) and cut into a fold's record only where a window reads it
    (a layer has hundreds of folds; a few dozen are fed)."""

    __slots__ = ("arrays", "bounds", "sizes", "c", "made")

    def __init__(self, arrays: tuple[np.ndarray, ...], bounds: np.ndarray, c: int) -> None:
        self.arrays = arrays   # pos, e, c_first, last, c_last, again, prev, final: all folds at once
        self.bounds = bounds
        self.sizes = np.diff(bounds)
        self.c = c
        self.made: dict[int, FoldPositions] = {}

    def __len__(self) -> int:
        return self.sizes.size

    @overload
    def __getitem__(self, f: int) -> FoldPositions: ...
    @overload
    def __getitem__(self, f: slice) -> list[FoldPositions]: ...

    def __getitem__(self, f: int | slice) -> FoldPositions | list[FoldPositions]:
        if isinstance(f, slice):
            return [self[i] for i in range(*f.indices(len(self)))]
        if f < 0:
            f += len(self)
        if not 0 <= f < len(self):
            raise IndexError(f)
        got = self.made.get(f)
        if got is None:
            a, b = int(self.bounds[f]), int(self.bounds[f + 1])
            pos, e, c_first, last, c_last, again, prev, final = (x[a:b] for x in self.arrays)
            d_last = int(last.max()) + self.c - 1 if b > a else -1
            got = self.made[f] = FoldPositions(pos, e, c_first, last, c_last, again, prev, final, d_last,
                                               np.bincount(e, minlength=d_last + 2),
                                               (int(pos[0]), int(pos[-1])) if b > a else ())
        return got


def fold_positions(sp: Shape, rows: int) -> FoldTable:
    """Every OS row fold's positions (folds of ``rows <= C`` pixels), with their first and last readers
    (module docstring), found for all folds at once; a window cut by the input's edge reads only what
    lies inside."""
    P, RS = sp.npix, sp.r * sp.s
    oy, ox = np.divmod(np.arange(P, dtype=np.int64), sp.ew)
    kr, kc = np.divmod(np.arange(RS, dtype=np.int64), sp.s)
    y = oy[:, None] * sp.sh + kr[None, :]
    x = ox[:, None] * sp.sw + kc[None, :]
    ok = (y < sp.h) & (x < sp.w)
    pix, kpos = np.nonzero(ok)                        # pairs (pixel, kernel position) that read inside
    u = (y * sp.w + x)[ok]
    fold, col = np.divmod(pix, rows)
    order = np.argsort((fold * (sp.h * sp.w) + u) * RS + kpos)
    u, kpos, col, fold = u[order], kpos[order], col[order], fold[order]
    head = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (fold[1:] != fold[:-1])])
    tail = np.r_[head[1:], u.size] - 1
    C = sp.c
    e = kpos[head] * C + col[head]
    last = kpos[tail] * C + col[tail]
    n_folds = -(-P // rows)
    f_of = fold[head]
    bounds = np.searchsorted(f_of, np.arange(n_folds + 1))
    pos, c_first, c_last = u[head], col[head], col[tail]
    pa_next = np.where(f_of + 1 < n_folds, (f_of + 1) * rows, 0)   # the next fold's first pixel (a sweep wraps)
    nxt = Coverage(sp).first_reader(pos, pa_next)
    again = np.where(nxt < P, nxt // rows, n_folds)
    prev = last_reader_below(sp, pos, f_of * rows)
    final = last_reader_below(sp, pos, np.full(pos.size, P, dtype=np.int64))
    return FoldTable((pos, e, c_first, last, c_last, again, prev, final), bounds, C)


def nth_new_demand(e: np.ndarray, n_new: np.ndarray, c_first: np.ndarray, need: int) -> tuple[int, int]:
    """The slot ``(diagonal, column)`` of the ``need``-th new demand of a fold whose position ``i`` brings
    channels ``0 .. n_new[i] - 1`` new, channel ``ch`` at diagonal ``e[i] + ch`` and column ``c_first[i]``
    (``1 <= need <=`` their sum). Each position adds one demand to each diagonal of ``[e, e + n_new)``:
    the demands per diagonal are a running sum of those runs' starts and ends, and the demands up to a
    diagonal a running sum of that (:func:`nth_new_slot` on it)."""
    ends = e + n_new
    return nth_new_slot(new_upto(np.bincount(e, minlength=int(ends.max()) + 1), ends), e, ends, c_first, need)


def new_upto(e_hist: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The new demands up to each diagonal: the runs starting there (``e_hist``, counted per diagonal,
    past every run's end) less those ending there, summed twice."""
    return (e_hist - np.bincount(ends, minlength=e_hist.size)).cumsum().cumsum()


def nth_new_slot(upto: np.ndarray, e: np.ndarray, ends: np.ndarray, c_first: np.ndarray, need: int) -> tuple[int, int]:
    """:func:`nth_new_demand` from ``upto``, the new demands up to each diagonal, and each position's
    run of diagonals ``[e, ends)``: the first diagonal by which ``need`` are new, and the column of the
    one there (a diagonal serves its demands by column)."""
    d = int(upto.searchsorted(need))
    below = int(upto[d - 1]) if d else 0
    cols = np.sort(c_first[(e <= d) & (d < ends)])
    return d, int(cols[need - below - 1])


def position_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                         shift_at: Callable[[int], int]) -> ReadBuffer | None:
    """The OS IFMAP read buffer's DRAM trace by input positions (module docstring); None for other
    operands and dataflows, fewer channels than array rows, or a fold holding a whole window."""
    R = cfg.array_rows
    if operand != "ifmap" or cfg.dataflow is not Dataflow.OS or sp.c < R:
        return None
    g = fold_grid(sp, cfg)
    rf, folds, fold_rows = g.row_folds, g.folds, g.fold_rows
    P, C, W = sp.npix, sp.c, sp.w
    cap = window_capacity(kb)

    starts = [min(fr * R, P) for fr in range(rf + 1)]   # each row fold's first pixel (rf: past the last)
    pats = fold_positions(sp, R)
    if int(pats.sizes.max()) * C >= cap:
        return None
    cov = Coverage(sp)
    last_reading = int(np.flatnonzero(pats.sizes)[-1])
    first_row = 0                                     # pixel 0 demands window index 0 first
    last_row = (folds - rf + last_reading) * fold_rows + pats[last_reading].d_last
    total = cov.count(0, P)
    if total < cap:
        return window_trace(kb, 0, total, -1, first_row, last_row, shift_at)
    fill_search = FillSearch(total, rf)   # the fold in which each window fills

    # the open window: the tail of the fold that closed the last one (channels [th, C) of its positions),
    # and every channel that pixels [lo_pix, the fed fold) read (with ``wrap``: [lo_pix, P), then [0, ..))
    th = np.full(sp.h * W, C, dtype=np.int64)
    lo_pix, wrap = 0, False
    closes, last_close_row, count = 0, -1, 0
    tail_pos = tail_th = again = np.zeros(0, dtype=np.int64)
    tail_span = (0, -1)   # the tail's lowest and highest position
    # a fold fed while the tail holds none of its positions brings all channels of each position the
    # window does not cover: its new channels and their running count per diagonal depend only on
    # where the window opened, found once per (fold, lo_pix, wrap) (sweeps feed the same ones again)
    plain: dict[tuple[int, int, bool], tuple[np.ndarray, int, np.ndarray | None]] = {}

    def feed(f: int) -> tuple[int, int] | None:
        """Fold ``f`` against the open window: the slot of the demand that closes it (the window that
        opens after it holds the fold's tail), or None (the fold joins the window)."""
        nonlocal count, closes, last_close_row, tail_pos, tail_th, again, tail_span
        pt = pats[f % rf]
        key = (f % rf, lo_pix, wrap)
        got = plain.get(key)
        apart = not pt.span or tail_span[1] < pt.span[0] or tail_span[0] > pt.span[1]
        if got is None or not apart:
            covered = (pt.prev >= 0) | (pt.final >= lo_pix) if wrap else pt.prev >= lo_pix
            n_new = np.where(covered, 0, th[pt.pos])
            got = (n_new, int(n_new.sum()), None)
            if apart:
                plain[key] = got
        n_new, tot, upto = got
        if count + tot < cap:
            count += tot
            return None
        ends = pt.e + n_new
        if upto is None:
            upto = new_upto(pt.e_hist, ends)
            if apart:
                plain[key] = (n_new, tot, upto)
        d, c = nth_new_slot(upto, pt.e, ends, pt.c_first, cap - count)
        closes += 1
        last_close_row = f * fold_rows + d
        th[tail_pos] = C
        keep_th = np.minimum(np.maximum(d - pt.last + (pt.c_last <= c), 0), C)   # channels demanded after (d, c)
        keep = keep_th < C
        tail_pos, tail_th, again = pt.pos[keep], keep_th[keep], pt.again[keep]
        tail_span = (int(tail_pos[0]), int(tail_pos[-1])) if tail_pos.size else (0, -1)
        count = int((C - tail_th).sum())
        return d, c

    states: dict[tuple[int, int, int], tuple[int, int]] = {}   # where a window opened -> (fold, closes)
    f = 0
    while f < folds:
        sweep_end = (f // rf + 1) * rf
        fr0 = f % rf
        pa = starts[fr0]
        weight = C - tail_th
        n_tail = int(weight.sum())
        # cum[fr]: tail addresses read again by row folds fr0 .. fr (the tail's are read again at fr0 or later)
        cum = (np.bincount(again, weights=weight, minlength=rf + 1).cumsum().astype(np.int64).tolist()
               if tail_pos.size else [0] * (rf + 1))

        def held(fr: int, pa: int = pa, cum: list[int] = cum, n_tail: int = n_tail) -> int:
            """Addresses in the window after whole folds fr0 .. fr of this sweep."""
            return cov.count(pa, starts[fr + 1]) + n_tail - cum[fr]

        if held(rf - 1) >= cap:   # the first fold in which the window fills
            lo_fr = fill_search(held, fr0, rf - 1, cap, n_tail)
            th[tail_pos] = tail_th
            lo_pix, wrap = pa, False
            count = held(lo_fr - 1) if lo_fr > fr0 else n_tail
            f = f - fr0 + lo_fr
        else:   # the window runs into the next column fold (or to the end)
            count = held(rf - 1)
            f = sweep_end
            if f >= folds:
                break
            th[tail_pos] = tail_th
            lo_pix, wrap = pa, True
            floor_row = min(cov.min_row(pa), int(tail_pos.min()) // W if tail_pos.size else sp.h)
            fr1 = 0   # whole folds of the next sweep, counted while they read rows above the window's
            while fr1 < rf and cov.max_row(starts[fr1 + 1]) < floor_row and count + cov.count(0, starts[fr1 + 1]) < cap:
                fr1 += 1
            if fr1 < rf and cov.max_row(starts[fr1 + 1]) < floor_row:
                count += cov.count(0, starts[fr1])
                f += fr1
        slot = None
        while f < folds:   # feed folds until one closes a window
            slot = feed(f)
            if slot is not None:
                break
            f += 1
        if slot is None:
            break
        key = (f % rf, *slot)
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
