"""CALC mode without streams: each operand's demands as a *layout* of folds.

Within a fold, the demands of one operand form either a *skewed* block (entry ``(a, c)``, ``a < t``,
of array column ``c < w`` at row ``off + a + c``, served by row then column) or a *preloaded* block
(``w`` rows of ``t`` entries, row ``a`` at ``off - a``). Counting the demands above a row, and finding
the row of the i-th demand, have closed forms (:func:`skew_count`, :func:`skew_find`); where a fold
starts in the stream is a product of row-fold and column-fold extents (:func:`product_layout`). The
streams are never built; :mod:`.replay` builds them as the reference.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import extent, fold_grid
from .topology import Shape
from .windows import first_filling

__all__ = ["skew_count", "skew_find", "Fold", "Layout", "count_layout", "product_layout", "ofmap_layout",
           "Pixels", "reading_pixels", "read_layout"]


def skew_count(x: int, w: int, t: int) -> int:
    """Entries ``(a < t, c < w)`` with ``a + c < x``."""
    if x <= 0 or w <= 0 or t <= 0:
        return 0
    full = min(max(x - t + 1, 0), w)          # columns whose t entries all lie below x
    hi = min(x - 1, w - 1)                    # the others hold x - c entries below x
    n = hi - full + 1
    return full * t + (n * x - (full + hi) * n // 2 if n > 0 else 0)


def skew_find(i: int, w: int, t: int) -> int:
    """``a + c`` of the i-th entry of a ``t x w`` skewed block, entries ordered by ``a + c`` then ``c``."""
    m, big = min(w, t), max(w, t)
    tri = m * (m + 1) // 2
    if i < tri:
        return (math.isqrt(8 * i + 1) - 1) // 2
    if i < tri + (big - m) * m:
        return m + (i - tri) // m
    j = w * t - 1 - i                          # the last entries mirror the first ones
    return w + t - 2 - (math.isqrt(8 * j + 1) - 1) // 2


class Fold(NamedTuple):   # a named tuple: built about twice per drain, 4x faster than a frozen dataclass
    """One fold's demands of one operand (see above), ``n`` in all. ``skip``: columns with no
    demand (pixels whose window lies past the input); ``valid``: for skewed blocks whose columns
    demand only some ``a`` (pixels, for WS IFMAP), how many ``a < y`` they demand."""

    off: int
    w: int
    t: int
    n: int
    preload: bool = False
    skip: tuple[int, ...] = ()
    valid: Callable[[int], int] | None = None
    valid_prefix: Callable[[int], int] | None = None   # sum of valid(v) over v < n, in closed form

    @property
    def per_row(self) -> int:
        """The most demands one row holds (a skewed block's anti-diagonal, a preloaded block's row)."""
        return self.t if self.preload else min(self.w, self.t)

    def count_lt(self, x: int) -> int:
        """Demands of the fold served at rows below ``x`` (counted from the fold's first row)."""
        if self.preload:   # w rows of t entries; row a is served at off - a
            return self.t * max(0, self.w - max(self.off + 1 - x, 0))
        y = x - self.off
        if self.valid is None:
            n = skew_count(y, self.w, self.t)
            return n - sum(min(max(y - c, 0), self.t) for c in self.skip) if self.skip else n
        g = self.valid
        if self.valid_prefix is not None and not self.skip:   # y - c over c < w: a run of values, clipped
            t, w = self.t, self.w
            top = min(max(y - t + 1, 0), w)                   # columns at v >= t count g(t)
            lo, hi = max(y - w + 1, 0), min(y, t - 1)         # the others take each v in [lo, hi] once
            return top * g(t) + (self.valid_prefix(hi + 1) - self.valid_prefix(lo) if hi >= lo else 0)
        return sum(g(min(max(y - c, 0), self.t)) for c in range(self.w) if c not in self.skip)

    def rel_of(self, i: int) -> int:
        """The row within the fold of the fold's i-th demand (0 <= i < n)."""
        if self.preload:
            return self.off - (self.w - 1 - i // self.t)
        if self.valid is None and not self.skip:
            return self.off + skew_find(i, self.w, self.t)
        # the smallest x with count_lt(x + 1) > i, looked for from where the i-th of a full block lies,
        # moved once by the demands it is off over about min(w, t) demands a row (the block's middle)
        full = self.w * self.t
        guess = self.off + skew_find(min(full - 1, i * full // max(1, self.n)), self.w, self.t)
        guess += (i + 1 - self.count_lt(guess + 1)) // min(self.w, self.t)
        return first_filling(lambda x: self.count_lt(x + 1), self.off, self.off + self.w + self.t - 2, i + 1, guess)


@dataclass(frozen=True, slots=True)
class Layout:
    """An operand's demand stream in service order, fold by fold: ``fold(f)`` describes fold f (of
    ``folds``), whose demands follow the ``start(f)`` demands of the folds before it, at rows from
    ``f * fold_rows``. Fold f = ``fc * rf + fr`` holds either ``cum[f + 1] - cum[f]`` demands or, where
    ``prod = (rf, cf, a, a_last, b, b_last)``, ``A(fr) * B(fc)``: ``a`` for every row fold but the
    last, ``a_last`` for that one, and so for ``B``. ``per_row``: no row holds more demands than this
    (0: not known)."""

    fold_rows: int
    folds: int
    n: int
    fold: Callable[[int], Fold]
    cum: list[int] | None = None
    prod: tuple[int, int, int, int, int, int] | None = None
    per_row: int = 0

    def start(self, f: int) -> int:
        if self.cum is not None:
            return self.cum[f]
        assert self.prod is not None
        rf, cf, a, a_last, b, b_last = self.prod
        fc, fr = divmod(f, rf)
        return fc * b * ((rf - 1) * a + a_last) + (b if fc < cf - 1 else b_last) * fr * a

    def locate(self, j: int) -> tuple[int, int]:
        """``(fold, index within it)`` of the stream's j-th demand."""
        if self.cum is not None:
            f = bisect.bisect_right(self.cum, j) - 1
            return f, j - self.cum[f]
        assert self.prod is not None
        rf, cf, a, a_last, b, b_last = self.prod
        per_fc = b * ((rf - 1) * a + a_last)
        fc = min(j // per_fc, cf - 1)
        j -= fc * per_fc
        per_fr = (b if fc < cf - 1 else b_last) * a
        fr = min(j // per_fr, rf - 1)
        return fc * rf + fr, j - fr * per_fr

    def row_of(self, j: int) -> int:
        """Row of the stream's j-th demand."""
        f, i = self.locate(j)
        return f * self.fold_rows + self.fold(f).rel_of(i)

    def count_below(self, row: int) -> int:
        """Number of demands at rows ``< row`` (the index of the first demand at or after ``row``)."""
        if row <= 0:
            return 0
        f = row // self.fold_rows
        if f >= self.folds:
            return self.n
        return self.start(f) + self.fold(f).count_lt(row - f * self.fold_rows)


def count_layout(counts: np.ndarray, fold_rows: int, fold: Callable[[int], Fold]) -> Layout:
    """A layout whose fold f holds ``counts[f]`` demands (where pixels reading nothing break the product)."""
    cum = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=cum[1:])
    return Layout(fold_rows, counts.size, int(cum[-1]), fold, cum=cum.tolist())


def product_layout(fold_rows: int, fold: Callable[[int], Fold], rf: int, cf: int, a: int, a_last: int, b: int,
                   b_last: int, per_row: int = 0) -> Layout:
    """A layout whose fold ``(fc, fr)`` holds ``A(fr) * B(fc)`` demands (see :class:`Layout`)."""
    n = ((rf - 1) * a + a_last) * ((cf - 1) * b + b_last)
    return Layout(fold_rows, rf * cf, n, fold, prod=(rf, cf, a, a_last, b, b_last), per_row=per_row)


def ofmap_layout(sp: Shape, cfg: ScaleSimConfig) -> Layout:
    """The OFMAP write demands: OS folds write pixels x filters along anti-diagonals after the
    stream; WS and IS folds write one row of the column fold's filters / pixels per step."""
    R, C = cfg.array_rows, cfg.array_cols
    M, P = sp.m, sp.npix
    fg = fold_grid(sp, cfg)
    rf, cf, T, fold_rows = fg.row_folds, fg.col_folds, fg.steps, fg.fold_rows
    if cfg.dataflow is Dataflow.OS:   # fold: pixels x filters, written along anti-diagonals
        # four kinds of fold (the last row fold and the last column fold are narrower), built once:
        # a fold is looked up twice a drain
        kinds = {(lr, lc): Fold(T - 1 + R - u, w, u, u * w)
                 for lr, u in ((False, R), (True, P - (rf - 1) * R)) for lc, w in ((False, C), (True, M - (cf - 1) * C))}

        def fold(f: int) -> Fold:
            return kinds[(f % rf == rf - 1, f // rf == cf - 1)]
        return product_layout(fold_rows, fold, rf, cf, R, P - (rf - 1) * R, C, M - (cf - 1) * C,
                              max(k.per_row for k in kinds.values()))
    n_c = M if cfg.dataflow is Dataflow.WS else P   # fold: T steps x the column fold's filters / pixels

    # every column fold is C wide but the last: two kinds of fold, built once (looked up twice a drain)
    wide, last = (Fold(2 * R - 1, w, T, w * T) for w in (C, extent(n_c, C, cf - 1)))

    def fold_t(f: int) -> Fold:
        return last if f // rf == cf - 1 else wide
    return product_layout(fold_rows, fold_t, rf, cf, 1, 1, C * T, (n_c - (cf - 1) * C) * T,
                          max(wide.per_row, last.per_row))


@dataclass(frozen=True, slots=True)
class Pixels:
    """Which output pixels read their whole window (``True``) or nothing (their window starts past
    the input): SCALE-Sim's last output row / column can do either, or read part of their window,
    in which case ``binary`` is False and no layout is built for the IFMAP."""

    binary: bool
    rows: int   # output rows that read (the others read nothing)
    cols: int

    def below(self, y: int, ew: int) -> int:
        """Reading pixels among the first ``y``."""
        q, r = divmod(y, ew)
        return min(q, self.rows) * self.cols + (min(r, self.cols) if q < self.rows else 0)

    def below_prefix(self, n: int, ew: int) -> int:
        """``sum(below(v, ew) for v in range(n))`` in closed form: whole output rows, then a part row."""
        cols, rows = self.cols, self.rows

        def part(x: int) -> int:   # sum of min(r, cols) over r < x
            return x * (x - 1) // 2 if x <= cols else cols * (cols - 1) // 2 + (x - cols) * cols
        if n <= 0:
            return 0
        full = rows * ew
        extra = max(n - full, 0) * rows * cols
        q, r = divmod(min(n, full), ew)
        return ew * cols * q * (q - 1) // 2 + q * part(ew) + r * q * cols + part(r) + extra


def reading_pixels(sp: Shape) -> Pixels:
    """Which output rows and columns read (their window starts inside the input) and whether every
    pixel reads all or nothing of its window."""
    vr = sp.h - (sp.eh - 1) * sp.sh
    vc = sp.w - (sp.ew - 1) * sp.sw
    binary = (vr >= sp.r or vr <= 0) and (vc >= sp.s or vc <= 0)
    return Pixels(binary, sp.eh - (vr <= 0), sp.ew - (vc <= 0))


def read_layout(sp: Shape, cfg: ScaleSimConfig, operand: str, px: Pixels) -> Layout | None:
    """The layout of a read operand's demands, or None where a pixel reads part of its window."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    fg = fold_grid(sp, cfg)
    rf, cf, fold_rows = fg.row_folds, fg.col_folds, fg.fold_rows
    flow = cfg.dataflow
    ew = sp.ew
    full = px.rows == sp.eh and px.cols == ew
    if operand == "ifmap" and not px.binary:
        return None
    fold: Callable[[int], Fold]
    if operand == "filter" and flow is Dataflow.OS:   # columns: filters of the column fold; a: window index

        def fold(f: int) -> Fold:
            w = extent(M, C, f // rf)
            return Fold(0, w, K, w * K)
        return product_layout(fold_rows, fold, rf, cf, 1, 1, C * K, (M - (cf - 1) * C) * K)
    if operand == "filter" and flow is Dataflow.WS:   # preloaded: rows of window indices, columns of filters

        def fold(f: int) -> Fold:
            w, t = extent(K, R, f % rf), extent(M, C, f // rf)
            return Fold(R - 1, w, t, w * t, preload=True)
        return product_layout(fold_rows, fold, rf, cf, R, K - (rf - 1) * R, C, M - (cf - 1) * C)
    if operand == "filter":                           # columns: window indices of the row fold; a: filter

        def fold(f: int) -> Fold:
            w = extent(K, R, f % rf)
            return Fold(R, w, M, w * M)
        return product_layout(fold_rows, fold, rf, cf, R * M, (K - (rf - 1) * R) * M, 1, 1)
    if flow is Dataflow.OS:          # columns: pixels of the row fold; a: window index

        def fold(f: int) -> Fold:
            fr = f % rf
            w = extent(P, R, fr)
            skip: tuple[int, ...] = ()
            if not full:
                p0 = fr * R
                skip = tuple(c for c in range(w) if (p0 + c) // ew >= px.rows or (p0 + c) % ew >= px.cols)
            return Fold(0, w, K, (w - len(skip)) * K, skip=skip)
        if full:
            return product_layout(fold_rows, fold, rf, cf, R * K, (P - (rf - 1) * R) * K, 1, 1)
        q, r = np.divmod(np.minimum(R * np.arange(rf + 1), P), ew)
        live = np.diff(np.minimum(q, px.rows) * px.cols + np.where(q < px.rows, np.minimum(r, px.cols), 0))
        return count_layout(np.tile(live * K, cf), fold_rows, fold)
    if flow is Dataflow.WS:          # columns: window indices of the row fold; a: pixel
        n_live = px.rows * px.cols
        g = None if full else (lambda y: px.below(y, ew))
        g_sum = None if full else (lambda n: px.below_prefix(n, ew))

        def fold(f: int) -> Fold:
            w = extent(K, R, f % rf)
            return Fold(R, w, P, w * n_live, valid=g, valid_prefix=g_sum)
        return product_layout(fold_rows, fold, rf, cf, R * n_live, (K - (rf - 1) * R) * n_live, 1, 1)
    # preloaded: rows of window indices, columns of pixels

    def fold_p(f: int) -> Fold:
        fc = f // rf
        w = extent(K, R, f % rf)
        t = px.below(min(fc * C + C, P), ew) - px.below(fc * C, ew)
        return Fold(R - 1, w, t, w * t, preload=True)
    if full:
        return product_layout(fold_rows, fold_p, rf, cf, R, K - (rf - 1) * R, C, P - (cf - 1) * C)
    ku = np.minimum(R, K - R * np.arange(rf))
    q, r = np.divmod(np.minimum(C * np.arange(cf + 1), P), ew)
    live = np.diff(np.minimum(q, px.rows) * px.cols + np.where(q < px.rows, np.minimum(r, px.cols), 0))
    return count_layout((live[:, None] * ku[None, :]).ravel(), fold_rows, fold_p)


