"""Which WS folds can demand an address twice, and the buffer windows that hold no address twice.

A WS fold of ``w <= C`` window indices demands each of its addresses once; two folds demand a common
address only if some window index of each reads the same channel at kernel rows (columns) that differ
by a multiple of the stride: the element ``(y, x, ch)`` is read only by window indices of channel
``ch`` with ``kr = y mod sh`` and ``kc = x mod sw``. So the folds that may share an address with a
fold follow from its window indices' *classes* ``(ch, kr mod sh, kc mod sw)`` alone: for each fold, the
first later fold (of this sweep or the next) with a class in common (:attr:`CleanRuns.clear_to`
keeps, for each fold ``a``, the first fold that may repeat an address of the folds ``a ..``).

A window of the buffer that spans folds ``a .. b`` with ``b`` before that fold holds only new
addresses, so it closes after exactly ``cap`` demands. Where every fold has whole windows of distinct
channels (no fold repeats an address of its own), runs of such windows are counted by arithmetic
(:meth:`CleanRuns.clean_windows`), and only the windows that may meet an address twice are fed
(:func:`~hwsim.scalesim.stationary.ws_read_buffer`). On layers whose folds sharing a channel lie
farther apart than a window, no fold is fed at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .topology import Shape

__all__ = ["CleanRuns", "PositionRuns", "fold_sizes", "next_sharing_fold"]


def fold_sizes(sp: Shape, rows: int) -> np.ndarray:
    """The demands of each WS row fold: window index ``k`` (kernel row ``kr``, column ``kc``) has one for
    each output pixel whose window element lies inside the input, a rectangle of output rows and columns."""
    kr, rem = np.divmod(np.arange(sp.window, dtype=np.int64), sp.s * sp.c)
    n_r = np.minimum(sp.eh, -(-(sp.h - kr) // sp.sh))
    n_c = np.minimum(sp.ew, -(-(sp.w - rem // sp.c) // sp.sw))
    return np.add.reduceat(n_r * n_c, np.arange(0, sp.window, rows))


def next_sharing_fold(sp: Shape, rows: int) -> np.ndarray:
    """For each row fold ``fr`` of a sweep, the first later fold in the sequence of sweeps (``rf`` and on
    for the next sweep) with a window index of a class in common (module docstring)."""
    K = sp.window
    rf = -(-K // rows)
    k = np.arange(K, dtype=np.int64)
    kr, rem = np.divmod(k, sp.s * sp.c)
    kc, ch = np.divmod(rem, sp.c)
    cls = (ch * sp.sh + kr % sp.sh) * sp.sw + kc % sp.sw
    order = np.lexsort((k, cls))                       # by class, then window index
    nxt_k = np.empty(K, dtype=np.int64)
    same = cls[order[1:]] == cls[order[:-1]]
    nxt_k[order[:-1]] = np.where(same, order[1:], -1)
    nxt_k[order[-1]] = -1
    first_of = np.empty(K, dtype=np.int64)            # each class's first window index (where it wraps)
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    first_of[order] = np.repeat(order[starts], np.diff(np.append(starts, K)))
    nxt_fold = np.where(nxt_k >= 0, nxt_k // rows, first_of // rows + rf)
    return np.minimum.reduceat(nxt_fold, np.arange(0, K, rows))


@dataclass(frozen=True, slots=True)
class CleanRuns:
    """A layer's WS folds in sequence (``starts``: the first demand of each fold, and the demand count
    at the end) and, for each fold ``a``, ``clear_to[a]``: the first fold that may demand an address
    some fold ``a ..`` before it demanded; ``cap``: the addresses a window holds."""

    starts: np.ndarray
    clear_to: np.ndarray
    cap: int

    @staticmethod
    def of(sp: Shape, rows: int, col_folds: int, cap: int) -> CleanRuns | None:
        """The runs of a layer of ``col_folds`` sweeps of row folds of ``rows`` window indices; None where
        a fold repeats an address of its own (more window indices than channels)."""
        if min(rows, sp.window) > sp.c:
            return None
        sizes = fold_sizes(sp, rows)
        rf = sizes.size
        starts = np.zeros(rf * col_folds + 1, dtype=np.int64)
        np.cumsum(np.tile(sizes, col_folds), out=starts[1:])
        nxt = (next_sharing_fold(sp, rows)[None, :] + rf * np.arange(col_folds, dtype=np.int64)[:, None]).ravel()
        clear_to = np.minimum.accumulate(nxt[::-1])[::-1]
        return CleanRuns(starts, clear_to, cap)

    @property
    def n(self) -> int:
        return int(self.starts[-1])

    def fold_of(self, i: int) -> int:
        """The fold of demand ``i`` (the last of the folds starting at or before it: empty ones are passed)."""
        return int(np.searchsorted(self.starts, i, side="right")) - 1

    def clean_windows(self, s: int) -> tuple[int, bool]:
        """From a window opening at demand ``s``: how many windows in a row close after exactly ``cap``
        demands, and whether the window after them is the layer's last open one and holds no address
        twice either (then its addresses are the demands left)."""
        n, cap = self.n, self.cap
        if s >= n:
            return 0, True
        a, b = self.fold_of(s), self.fold_of(min(s + cap, n) - 1)
        if b >= self.clear_to[a]:   # the window at hand may meet an address twice
            return 0, False
        opens = s + cap * np.arange((n - s - 1) // cap + 1, dtype=np.int64)    # window starts before the end
        a_j = np.searchsorted(self.starts, opens, side="right") - 1
        b_j = np.searchsorted(self.starts, np.minimum(opens + cap, n) - 1, side="right") - 1
        bad = np.flatnonzero(b_j >= self.clear_to[a_j])
        if bad.size:
            return int(bad[0]), False
        return (n - s) // cap, True


@dataclass(frozen=True, slots=True)
class PositionRuns:
    """Row folds of whole windows that read one kernel position: ``pos[fr]`` (-1 where the fold spans two
    positions), its channels ``lo[fr] .. hi[fr]``, ``end[fr]``: the row fold after the run of folds at
    that position (consecutive folds there read consecutive channels at the same input positions);
    ``sizes[fr]``: its demands; ``boxes[pos]``: the position's strided input rows and columns."""

    pos: list[int]
    lo: np.ndarray
    hi: np.ndarray
    end: list[int]
    sizes: np.ndarray
    boxes: list[tuple[slice, slice]]

    @staticmethod
    def of(sp: Shape, rows: int) -> PositionRuns:
        K = sp.window
        first = np.arange(0, K, rows, dtype=np.int64)
        last = np.minimum(first + rows, K) - 1
        p0, p1 = first // sp.c, last // sp.c
        pos = np.where(p0 == p1, p0, -1).tolist()
        end = list(range(1, len(pos) + 1))
        for fr in range(len(pos) - 2, -1, -1):
            if pos[fr] >= 0 and pos[fr + 1] == pos[fr]:
                end[fr] = end[fr + 1]
        boxes = []
        for q in range(sp.r * sp.s):
            kr, kc = divmod(q, sp.s)
            n_r = min(sp.eh, -(-(sp.h - kr) // sp.sh))
            n_c = min(sp.ew, -(-(sp.w - kc) // sp.sw))
            boxes.append((slice(kr, kr + (n_r - 1) * sp.sh + 1, sp.sh), slice(kc, kc + (n_c - 1) * sp.sw + 1, sp.sw)))
        return PositionRuns(pos, first % sp.c, last % sp.c + 1, end, fold_sizes(sp, rows), boxes)

    def fill(self, view: np.ndarray, fr: int, m: int, count: int, cap: int) -> tuple[int, int]:
        """Of the ``m`` folds from row fold ``fr`` on (one run), how many leave a window of ``count``
        addresses (``view``: its ``H x W x C`` bitmap) open, and its count after them: each fold's new
        addresses are its demands less those the window holds in its box, counted at once."""
        rs, cs = self.boxes[self.pos[fr]]
        lo = int(self.lo[fr])
        per_ch = np.count_nonzero(view[rs, cs, lo: int(self.hi[fr + m - 1])], axis=(0, 1))
        held = np.add.reduceat(per_ch, self.lo[fr: fr + m] - lo)
        tot = count + np.cumsum(self.sizes[fr: fr + m] - held)
        a = int(np.searchsorted(tot, cap, side="left"))   # the first fold that fills the window
        return a, int(tot[a - 1]) if a else count
