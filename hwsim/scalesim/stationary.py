"""CALC mode's WS IFMAP read buffer where windows overlap: windows counted, folds walked only where a
window may meet an address twice.

In WS, row fold ``fr`` demands window indices ``[fr * R, fr * R + w)`` of every output pixel (pixels along
the stream, window indices along the array's rows, skewed), and each column fold repeats the sweep of
``rf`` row folds. Each row fold's pattern (:class:`FoldWindows`) is set up once, with nothing built that
a window does not ask for:

* a fold whose ``w`` window indices are ``w`` different channels (``w <= C``: every layer but a stem
  of few channels) demands each address once; its size is arithmetic, its service order, addresses and
  whole-fold marks (boxes of the ``H x W x C`` input) come on first use. Two such folds share an
  address only if they share a channel-and-stride-residue class (:mod:`.sharing`), so runs of windows
  that span no such pair close every ``cap`` demands and are counted without walking a fold
  (:class:`~hwsim.scalesim.sharing.CleanRuns`); the folds of a run at one kernel position (consecutive
  channels at the same input positions) are counted at once over one box of the window's bitmap
  (:class:`~hwsim.scalesim.sharing.PositionRuns`);
* a stem's fold (``w > C``) repeats addresses; its *first demands* (those that bring an address first
  in the fold) follow from the window indices alone (:func:`first_slots`: two window indices read one
  element only at a fixed pixel offset, so each one's repeated demands are rectangles of pixels), and
  its output rows repeat between a few boundaries, so it is a head, periods and a tail
  (:mod:`.periodic`) whose first demands are ranked and selected by ``divmod``; a fold too short for
  periods keeps its first demands explicitly.

A window open at a fold's start holds addresses of earlier folds: the fold fills it at the
``(cap - held)``-th first demand whose address it lacks, found without looking where the fold reads
nothing the window holds (other channels, or input rows above the lowest it holds: a stem's fold starts
at the top of the input, the one before ended at its bottom). A window that opens inside a fold holds
only that fold's demands from its start ``s`` on: where every demand is new it closes after ``cap``
demands; otherwise at the ``cap``-th demand whose address is not demanded in ``[s, i)``. Two demands of
a fold with one address lie less than a *reach* apart (:func:`repeat_reach`), so past ``s + reach`` a
demand is new exactly when it is a first demand of the fold: the new ones within the reach come from a
table per phase of a period (or are marked, near a fold's ends), the rest is a selection among the first
demands (:func:`nth_new`, :meth:`~hwsim.scalesim.periodic.PeriodicFold.windows_from`). Folds wholly
inside the open window are skipped, and once the window's state at a sweep's start recurs, whole periods
of sweeps are skipped (to the layer's end when they fill it).

Exactness is by construction and tested: :func:`ws_read_buffer` equals
:func:`~hwsim.scalesim.replay.stream_read_buffer` fed demand by demand on random layers, and
:func:`first_slots` and the periodic folds equal the first demands found by serving a fold's demands in
order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .periodic import PeriodicFold, periodic_folds
from .replay import skew_slots
from .report import ReadBuffer
from .sharing import CleanRuns, PositionRuns
from .topology import Shape
from .windows import window_capacity, window_trace

__all__ = ["FoldWindows", "Skew", "first_slots", "fold_channels", "mark_from", "nth_new", "repeat_reach", "ws_patterns", "ws_read_buffer"]


@dataclass(frozen=True, slots=True)
class Skew:
    """The service order of one WS fold's demands: window column ``c`` of pixel ``p`` on diagonal ``t = p + c``
    (row ``rows + t`` of the fold), by diagonal, then ``c``; ``valid[t, c]``: the slot holds a demand (its
    pixel exists and its window element lies inside the input), ``start[t]``: the demands before
    diagonal ``t``."""

    rows: int
    valid: np.ndarray
    start: np.ndarray

    @staticmethod
    def of(valid: np.ndarray, rows: int) -> Skew:
        start = np.zeros(valid.shape[0] + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=start[1:])
        return Skew(rows, valid, start)

    @property
    def n(self) -> int:
        return int(self.start[-1])

    def diagonal(self, i: int) -> int:
        """The diagonal of demand ``i``."""
        return int(np.searchsorted(self.start, i, side="right")) - 1

    def row(self, i: int) -> int:
        """The fold row of demand ``i``."""
        return self.diagonal(i) + self.rows

    def slots(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal and column of demands ``a .. b - 1``."""
        if b <= a:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        t0, t1 = self.diagonal(a), self.diagonal(b - 1)
        dt, c = np.nonzero(self.valid[t0: t1 + 1])
        skip = a - int(self.start[t0])
        return dt[skip: skip + b - a] + t0, c[skip: skip + b - a]

    def index(self, t: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The demand index of (valid) slots ``(t, c)``."""
        rank = np.cumsum(self.valid, axis=1, dtype=np.int16 if self.valid.shape[1] < 2**15 else np.int64)
        return self.start[t] + rank[t, c] - 1


T = TypeVar("T")


class Once(Generic[T]):
    """A value built on first use and kept (``functools.cache`` costs more to set up, per fold)."""

    __slots__ = ("make", "value")

    def __init__(self, make: Callable[[], T]) -> None:
        self.make = make
        self.value: T | None = None

    def __call__(self) -> T:
        if self.value is None:
            self.value = self.make()
        return self.value


@dataclass(frozen=True, slots=True)
class FoldWindows:
    """One row fold's IFMAP demands in service order: ``n`` demands, their rows within the fold
    (:meth:`row`: from ``rel``, or from ``skew`` for a fold of whole windows); ``firsts``, the indices of
    the demands that bring an address first in the fold (sorted) and ``first_addrs``, those addresses
    (relative to the input; empty where every demand is a first one, recomputed instead); ``distinct``: every demand is a new address; ``chans``: the channels it
    reads, as a bit mask (folds reading no common channel share no address); ``reach``: a repeated
    address's previous demand lies fewer than ``reach`` demands before it (so a demand that far past a
    window's start is new to the window exactly when it is a first demand of the fold). Every demand's
    address is either kept (``addrs``) or recomputed where asked (:meth:`addr_range`) from ``lazy``: the
    fold's window offsets and the pixels' bases, along ``skew`` or along ``order``: the pixel and window
    column of each demand (shared by the folds of a width) and a scratch array the addresses are built
    in (every fold of whole windows: kept, a layer's fold addresses were tens of MB of fresh memory,
    which costs more to touch than to recompute)."""

    rel: np.ndarray | None
    n: int
    firsts: np.ndarray
    first_addrs: np.ndarray
    distinct: bool
    chans: int
    reach: int
    addrs: np.ndarray | None = None
    lazy: tuple[np.ndarray, np.ndarray] | None = None
    skew: Skew | None = None
    order: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = None
    skew_of: Callable[[], Skew] | None = None
    addrs_of: Callable[[], np.ndarray] | None = None
    last: int = -1
    boxes: tuple[tuple[slice, slice, slice], ...] = ()
    grid: tuple[int, int, int] = (0, 0, 0)
    periodic: PeriodicFold | None = None
    geom: tuple[int, int, int, int, int, int] = (0, 1, 1, 1, 0, 0)

    def input_rows(self, lo: int, hi: int) -> tuple[int, int]:
        """Bounds on the input rows demands ``lo .. hi - 1`` read (``geom``: the fold's first row, width,
        the output width, the row stride and its lowest and highest kernel row)."""
        rows, w, ew, sh, k0, k1 = self.geom
        d0, d1 = self.row(lo) - rows, self.row(hi - 1) - rows
        return max(0, d0 - w + 1) // ew * sh + k0, d1 // ew * sh + k1

    def count_held(self, seen: np.ndarray) -> int:
        """How many of a fold of whole windows' addresses ``seen`` holds: a count over its boxes (each a
        kernel position's strided rows and columns of input times a run of channels), no address built."""
        view = seen.reshape(self.grid)
        return sum(int(np.count_nonzero(view[b])) for b in self.boxes)

    def service(self) -> Skew:
        """The service order (kept, or built on first use: most folds of whole windows never need it)."""
        if self.skew is not None:
            return self.skew
        assert self.skew_of is not None
        return self.skew_of()

    def row(self, i: int) -> int:
        """The fold row of demand ``i``."""
        if self.rel is not None:
            return int(self.rel[i])
        if self.periodic is not None:
            return self.geom[0] + self.periodic.diagonal(i)
        if i == self.n - 1 and self.last >= 0:
            return self.last
        return self.service().row(i)

    def addr_range(self, lo: int, hi: int) -> np.ndarray:
        """The addresses of demands ``lo .. hi - 1``."""
        if self.addrs is not None:
            return self.addrs[lo:hi]
        if self.addrs_of is not None:
            return self.addrs_of()[lo:hi]
        if self.periodic is not None:
            return self.periodic.addr_range(lo, hi)
        assert self.lazy is not None
        offs, pbase = self.lazy
        if self.order is not None:   # built in the shared scratch array: valid until the next call
            pix, col, scratch = self.order
            out, tmp = scratch[0][: hi - lo], scratch[1][: hi - lo]
            np.take(offs, col[lo:hi], out=out)
            np.take(pbase, pix[lo:hi], out=tmp)
            return np.add(out, tmp, out=out)
        t, c = self.service().slots(lo, hi)
        return offs[c] + pbase[t - c]

    @property
    def nbytes(self) -> int:
        """Memory the pattern holds of its own (the per-width service order is shared)."""
        own = self.firsts.nbytes + (self.addrs.nbytes if self.addrs is not None else 0)
        return own if self.distinct else own + self.first_addrs.nbytes


def members(sp: Shape, ks: range) -> list[tuple[int, int, int, int, int]]:
    """Each window index's kernel row, column and channel, and the output rows and columns whose window
    element it reads lies inside the input (all but where SCALE-Sim's last windows are cut by the edge)."""
    out = []
    for k in ks:
        kr, rem = divmod(k, sp.s * sp.c)
        kc, ch = divmod(rem, sp.c)
        out.append((kr, kc, ch, min(sp.eh, -(-(sp.h - kr) // sp.sh)), min(sp.ew, -(-(sp.w - kc) // sp.sw))))
    return out


def valid_table(sp: Shape, mem: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """``[t, c]``: window column ``c`` has a demand on diagonal ``t`` (pixel ``t - c`` exists and reads
    inside the input)."""
    n_r = np.array([m[3] for m in mem], dtype=np.int64)
    n_c = np.array([m[4] for m in mem], dtype=np.int64)
    return valid_grid(sp, n_r, n_c)


def valid_grid(sp: Shape, n_r: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """:func:`valid_table` from each window column's rows ``n_r`` and columns ``n_c`` of pixels inside
    the input, built at once (a Python loop over the columns cost more than the table)."""
    w, P = n_r.size, sp.npix
    valid = np.zeros((P + w - 1) * w, dtype=bool)
    skewed = np.lib.stride_tricks.as_strided(valid, shape=(P, w), strides=(w, w + 1))   # [p, c] at [p + c, c]
    rows_in = np.arange(sp.eh, dtype=np.int64)[:, None] < n_r      # [output row, c]
    cols_in = np.arange(sp.ew, dtype=np.int64)[:, None] < n_c
    np.logical_and(rows_in[:, None, :], cols_in[None, :, :], out=skewed.reshape(sp.eh, sp.ew, w))
    return valid.reshape(P + w - 1, w)


def first_slots(sp: Shape, ks: range, rows: int) -> tuple[Skew, np.ndarray, np.ndarray]:
    """The service order of a WS fold of window indices ``ks`` and the diagonal and column of its first
    demands, from the window indices alone.

    Window index ``k`` (kernel row ``kr``, column ``kc``) has a demand for the pixels whose window element
    lies inside the input: a rectangle of output rows and columns (all of them but where SCALE-Sim's last
    windows are cut by the edge). Window indices ``k, k'`` (columns ``c, c'``) read one address only if
    they share the channel and their kernel rows and columns differ by multiples ``dr, dc`` of the
    strides; then pixel ``p`` of ``k`` and pixel ``p + dr * E_w + dc`` of ``k'`` read the same element,
    if ``k'`` has that pixel (a rectangle of ``p``), on diagonals a constant ``dr * E_w + dc + c' - c``
    apart. So ``k``'s demand is a first one except on the rectangles of the ``k'`` that come before it."""
    w, P, eh, ew = len(ks), sp.npix, sp.eh, sp.ew
    mem = members(sp, ks)
    valid = valid_table(sp, mem)
    first = np.zeros((P + w - 1, w), dtype=bool)
    grid = np.empty((eh, ew), dtype=bool)
    for c, (kr, kc, ch, n_r, n_c) in enumerate(mem):
        grid[:] = False
        grid[:n_r, :n_c] = True
        for c2, (kr2, kc2, ch2, n_r2, n_c2) in enumerate(mem):
            if c2 == c or ch2 != ch or (kr - kr2) % sp.sh or (kc - kc2) % sp.sw:
                continue
            dr, dc = (kr - kr2) // sp.sh, (kc - kc2) // sp.sw
            dt = dr * ew + dc + c2 - c
            if dt > 0 or (dt == 0 and c2 > c):   # k' demands the shared element after k
                continue
            grid[max(0, -dr): min(eh, n_r2 - dr), max(0, -dc): min(ew, n_c2 - dc)] = False
        first[c: c + P, c] = grid.ravel()
    t, c_ = np.divmod(np.flatnonzero(first), w)
    return Skew.of(valid, rows), t, c_


def repeat_reach(sp: Shape, ks: range) -> int:
    """A bound, in demands, on how far apart two demands of one WS fold (window indices ``ks``) with the
    same address lie. Window indices ``k, k'`` read one address only if they share the channel and
    their kernel rows (columns) differ by a multiple of the stride, for output pixels ``dr * E_w + dc``
    apart (``dr, dc``: that difference over the stride); served by rows ``p + c`` (``c = k - ks[0]``),
    at most ``len(ks)`` demands a row, two such demands are at most ``(rows apart + 1) * len(ks)`` apart."""
    groups: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for c, (kr, kc, ch, _, _) in enumerate(members(sp, ks)):
        groups.setdefault((ch, kr % sp.sh, kc % sp.sw), []).append((c, kr // sp.sh, kc // sp.sw))
    rows = 0
    for group in groups.values():
        for c, ir, jc in group:
            for c2, ir2, jc2 in group:
                rows = max(rows, abs(ir - ir2) * sp.ew + abs(jc - jc2) + abs(c - c2))
    return (rows + 1) * len(ks)


def fold_channels(ks: range, channels: int) -> int:
    """The channels window indices ``ks`` read, as a bit mask."""
    bits = 0
    for k in ks[: channels]:
        bits |= 1 << (k % channels)
    return bits


def ws_patterns(sp: Shape, rows: int) -> Callable[[int], FoldWindows]:
    """Row fold ``fr``'s pattern (:class:`FoldWindows`): its IFMAP demands in service order, window index
    ``fr * rows + c`` of pixel ``p`` at row ``rows + p + c``, by row, then ``c``; a demand whose element
    lies past the input (a window cut by the edge) is left out.

    A fold of ``w <= C`` window indices reads ``w`` channels, so every demand is a new address (its
    addresses are kept, in the service order found once per fold width). Otherwise its first demands
    follow from the window indices alone (:func:`first_slots`) and its addresses are recomputed only for
    the stretches a window asks for (a stem's fold has some 200,000 demands: building and marking them
    was most of its time)."""
    P, K = sp.npix, sp.window
    orow, ocol = np.divmod(np.arange(P, dtype=np.int64), sp.ew)
    room_r, room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw     # input rows / columns from the corner
    pbase = (orow * sp.sh * sp.w + ocol * sp.sw) * sp.c
    kr, rem = np.divmod(np.arange(K, dtype=np.int64), sp.s * sp.c)
    kc = rem // sp.c
    koff = (kr * sp.w + kc) * sp.c + rem % sp.c
    partial = bool(room_r[-1] < sp.r or room_c[-1] < sp.s)
    n_r = np.minimum(sp.eh, -(-(sp.h - kr) // sp.sh))   # each window index's output rows / columns inside
    n_c = np.minimum(sp.ew, -(-(sp.w - kc) // sp.sw))
    counts = np.zeros(K + 1, dtype=np.int64)           # demands of window indices below k
    np.cumsum(n_r * n_c, out=counts[1:])
    last_p = (n_r - 1) * sp.ew + n_c - 1                 # each window index's last pixel
    grid = (sp.h, sp.w, sp.c)
    n_r_at, n_c_at = n_r.tolist(), n_c.tolist()
    all_chans = (1 << sp.c) - 1

    def fold_boxes(ks: range) -> tuple[tuple[slice, slice, slice], ...]:
        """The fold's addresses as boxes of the ``H x W x C`` input: a run of window indices at one kernel
        position reads its channels at that position's strided rows and columns."""
        out = []
        k = ks.start
        while k < ks.stop:
            pos, ch = divmod(k, sp.c)
            end = min(ks.stop, (pos + 1) * sp.c)
            r0, c0 = divmod(pos, sp.s)
            out.append((slice(r0, r0 + (n_r_at[k] - 1) * sp.sh + 1, sp.sh),
                        slice(c0, c0 + (n_c_at[k] - 1) * sp.sw + 1, sp.sw), slice(ch, ch + end - k)))
            k = end
        return tuple(out)
    none = np.zeros(0, dtype=np.int64)
    periodic: dict[int, dict[int, PeriodicFold | None]] = {}   # width -> row fold -> its periods
    orders: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    ramp: list[np.ndarray] = []   # 0, 1, 2, ... as long as the most demands of a fold (built when needed)
    scratch: list[np.ndarray] = []   # two arrays as long, where folds of whole windows build their addresses

    def pattern(fr: int) -> FoldWindows:
        ks = range(fr * rows, min(fr * rows + rows, K))
        w = len(ks)
        offs = koff[ks.start: ks.stop]
        distinct = w <= sp.c
        if distinct:   # w channels from the first one's on, round the channels
            c0 = ks.start % sp.c
            chans = (((1 << w) - 1) << c0 | ((1 << w) - 1) >> (sp.c - c0)) & all_chans
        else:
            chans = all_chans
        geom = (rows, w, sp.ew, sp.sh, ks.start // (sp.s * sp.c), (ks.stop - 1) // (sp.s * sp.c))   # kernel rows
        if not distinct:   # the first demands from the window indices, addresses only where asked
            n = int(counts[ks.stop] - counts[ks.start])
            if w not in periodic:   # every such fold of this width at once
                frs = [f for f in range(-(-K // rows)) if min(K, f * rows + rows) - f * rows == w]
                built = periodic_folds(sp, [f * rows for f in frs], w,
                                       [int(counts[min(K, f * rows + w)] - counts[f * rows]) for f in frs], koff, pbase)
                periodic[w] = dict(zip(frs, built, strict=True))
            pf = periodic[w].get(fr)
            if pf is not None:   # counted along its periods
                return FoldWindows(None, n, none, none, False, chans, pf.reach, periodic=pf, geom=geom)
            sk, t, c = first_slots(sp, ks, rows)
            return FoldWindows(None, sk.n, sk.index(t, c), offs[c] + pbase[t - c], False, chans,
                               repeat_reach(sp, ks), None, (offs, pbase), sk, geom=geom)
        if not ramp:
            ramp.append(np.arange(min(rows, K) * P, dtype=np.int64))
        n = int(counts[ks.stop] - counts[ks.start])
        idx = ramp[0][:n]
        boxes = fold_boxes(ks)
        if partial:   # its own service order (windows cut by the edge), built only if a window asks
            sk_of = Once(lambda: Skew.of(valid_grid(sp, n_r[ks.start: ks.stop], n_c[ks.start: ks.stop]), rows))
            last = rows + int((last_p[ks.start: ks.stop] + np.arange(w)).max())

            def spread() -> np.ndarray:
                t, c = sk_of().slots(0, n)
                return offs[c] + pbase[t - c]
            return FoldWindows(None, n, idx, idx[:0], True, chans, 0, None, (offs, pbase), None, None, sk_of,
                               Once(spread) if n < _KEEP_BELOW else None, last, boxes, grid, geom=geom)
        if w not in orders:
            d, a, c = skew_slots(w, P)
            orders[w] = (d + rows, a, c)
        rel, pix, col = orders[w]
        if n < _KEEP_BELOW:   # a small fold keeps its addresses once built (few calls beat little memory)
            return FoldWindows(rel, n, idx, idx[:0], True, chans, 0, None, (offs, pbase), None, None, None,
                               Once(lambda: offs[col] + pbase[pix]), -1, boxes, grid, geom=geom)
        if not scratch:
            scratch[:] = [np.empty(ramp[0].size, dtype=np.int64) for _ in range(2)]
        return FoldWindows(rel, n, idx, idx[:0], True, chans, 0, None, (offs, pbase), None,
                           (pix, col, scratch), None, None, -1, boxes, grid, geom=geom)
    return pattern


_PATTERN_CACHE_BYTES = 64 * 2**20   # fold patterns kept at once (a layer has rf of them)
_KEEP_BELOW = 8192   # demands below which a fold of whole windows keeps its addresses


def nth_new(pt: FoldWindows, start: int, need: int, mark: np.ndarray) -> tuple[int, int]:
    """In demands ``start ..`` of a fold, the index of the one that brings the ``need``-th address not
    demanded since ``start`` (``-1`` if the fold ends first) and how many such addresses it brings.

    Within ``pt.reach`` demands of ``start`` the new ones are found by marking (a first demand since
    ``start`` is one within the stretch); past it, a demand is new exactly when it is a first demand of
    the fold (its address's previous demand, if any, lies at or after ``start``), a search in
    ``pt.firsts``."""
    end = min(pt.n, start + pt.reach)
    pf = pt.periodic
    if pf is not None:   # the new ones within the reach counted (:meth:`.PeriodicFold.new_since`)
        x, r0 = pf.new_since(start), pf.rank(start)
        if x + pf.rank(end) - r0 < need:
            j = r0 + need - x - 1
            return (pf.select(j), need) if j < pf.firsts else (-1, x + pf.firsts - r0)
    sub = pt.addr_range(start, end)
    sidx = np.arange(sub.size, dtype=np.int64)
    mark[sub[::-1]] = sidx[::-1]
    new = np.flatnonzero(mark[sub] == sidx)
    if new.size >= need:
        return start + int(new[need - 1]), need
    j0 = int(np.searchsorted(pt.firsts, end))
    j = j0 + need - new.size - 1
    if j < pt.firsts.size:
        return int(pt.firsts[j]), need
    return -1, new.size + pt.firsts.size - j0


def mark_from(seen: np.ndarray, pt: FoldWindows, start: int) -> None:
    """Mark in ``seen`` the addresses of the fold's demands ``start ..``: the first ``reach`` demands and
    the fold's first demands past them (every other demand repeats an address marked before it)."""
    if pt.distinct:
        if start == 0 and pt.boxes:   # the whole fold: its boxes, no address built
            view = seen.reshape(pt.grid)
            for b in pt.boxes:
                view[b] = True
        else:
            seen[pt.addr_range(start, pt.n)] = True
        return
    end = min(pt.n, start + pt.reach)
    seen[pt.addr_range(start, end)] = True
    if pt.periodic is not None:
        seen[pt.periodic.first_addrs_from(end)] = True
    else:
        seen[pt.first_addrs[np.searchsorted(pt.firsts, end):]] = True


def fresh_demands(pt: FoldWindows, seen: np.ndarray | None) -> tuple[int, np.ndarray | None]:
    """How many of the fold's demands bring an address the open window lacks (``seen``: its addresses;
    None: it holds none of the fold's), and their indices where they are not all of the fold's first
    demands or not only counted (None: the first demands, or for a fold of whole windows counted over
    its boxes, found where the window closes)."""
    pf = pt.periodic
    if seen is None:
        if pf is not None:
            return pf.firsts, None
        return (pt.n, None) if pt.distinct else (pt.firsts.size, pt.firsts)
    if pt.distinct and pt.boxes:
        return pt.n - pt.count_held(seen), None
    if pf is not None:
        every = pf.select_all(0)
        got = every[~seen[pf.addrs(every)]]
    elif pt.distinct:
        got = np.flatnonzero(~seen[pt.addr_range(0, pt.n)])
    else:
        got = pt.firsts[~seen[pt.first_addrs]]
    return got.size, got


class PatternCache:
    """Fold patterns built once and kept within a memory bound, the oldest dropped first (sweeps run
    in order)."""

    __slots__ = ("build", "pats", "held")

    def __init__(self, build: Callable[[int], FoldWindows]) -> None:
        self.build = build
        self.pats: dict[int, FoldWindows] = {}
        self.held = 0

    def __call__(self, key: int) -> FoldWindows:
        got = self.pats.get(key)
        if got is None:
            got = self.build(key)
            nbytes = got.nbytes
            while self.pats and self.held + nbytes > _PATTERN_CACHE_BYTES:
                self.held -= self.pats.pop(next(iter(self.pats))).nbytes
            self.pats[key] = got
            self.held += nbytes
        return got


def windows_inside(pt: FoldWindows, start: int, cap: int, mark: np.ndarray) -> tuple[int, int, int, int]:
    """Windows opening one after another at demand ``start`` of the fold and closing inside it: ``(how
    many, the demand that closed the last, where the open one starts, its count)``. In a fold of whole
    windows every ``cap`` demands; along a stem fold's periods by arithmetic
    (:meth:`.PeriodicFold.windows_from`); otherwise each by :func:`nth_new`."""
    n = pt.n
    if pt.distinct:
        k = (n - start) // cap
        return k, start + k * cap - 1, start + k * cap, n - start - k * cap
    closes, last = 0, -1
    pf = pt.periodic
    if pf is not None and cap > pt.reach:
        closes, last, start = pf.windows_from(start, cap)
    while start < n:
        hit, got_new = nth_new(pt, start, cap, mark)
        if hit < 0:
            return closes, last, start, got_new
        closes, last, start = closes + 1, hit, hit + 1
    return closes, last, start, 0


def lowest_row(pt: FoldWindows, start: int, kept: bool) -> int:
    """The lowest input row the fold's demands ``start ..`` read, where it is ``kept`` (a layer of
    stem folds); 0 otherwise (below every row: nothing is taken as apart from the window)."""
    return pt.input_rows(start, pt.n)[0] if kept else 0


def below_held(pt: FoldWindows, need: int, held_lo: int) -> bool:
    """Whether the input rows the fold reads until it could bring ``need`` new addresses (all of its
    first demands, if fewer) lie above ``held_lo``, the lowest row the open window holds: then none of
    them is in the window (a stem's fold starts at the top of the input, the one before ended at its
    bottom)."""
    pf = pt.periodic
    if pf is not None:
        last = pf.select(need - 1) if need <= pf.firsts else pt.n - 1
    elif pt.distinct:
        last = min(need, pt.n) - 1
    else:
        last = int(pt.firsts[need - 1]) if need <= pt.firsts.size else pt.n - 1
    return pt.input_rows(0, last + 1)[1] < held_lo


def ws_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                   shift_at: Callable[[int], int]) -> ReadBuffer | None:
    """The WS IFMAP read buffer's DRAM trace (module docstring); None for other operands and dataflows."""
    if operand != "ifmap" or cfg.dataflow is not Dataflow.WS:
        return None
    cap = window_capacity(kb)
    g = fold_grid(sp, cfg)
    fold_rows = g.fold_rows
    keys = list(range(g.row_folds)) * g.col_folds   # fold -> its row fold (column folds outer)
    rf, cf = g.row_folds, g.col_folds
    size = sp.h * sp.w * sp.c
    seen = np.zeros(size, dtype=bool)      # the open window's addresses
    mark = np.empty(size, dtype=np.int64)   # nth_new reads only the entries it has just written
    pattern = PatternCache(ws_patterns(sp, cfg.array_rows))

    count = 0            # distinct addresses in the open window
    pending: list[tuple[FoldWindows, int]] = []   # its folds (from an index on) not yet marked in ``seen``
    chans = 0            # the channels it holds
    dirty = False        # whether ``seen`` holds anything
    opened = (0, 0)      # (fold, index in fold) where the open window started
    last_whole: dict[int, int] = {}   # row fold -> last fold wholly in a window
    closes, last_close_row = 0, -1
    first_row = last_row = -1
    period = rf if cf > 1 else 0
    states: dict[tuple[int, int, int], tuple[int, int]] = {}   # state at a sweep's start -> (fold, closes)
    folds = len(keys)
    runs = CleanRuns.of(sp, cfg.array_rows, cf, cap)
    at = PositionRuns.of(sp, cfg.array_rows) if runs is not None else None

    def row_of(i: int) -> int:
        """The row of the layer's demand ``i`` (``runs`` known)."""
        assert runs is not None
        fl = runs.fold_of(i)
        return fl * fold_rows + pattern(keys[fl]).row(i - int(runs.starts[fl]))

    def skip_clean(s0: int) -> tuple[int, int, int] | None:
        """Count the windows from demand ``s0`` on that hold no address twice (:mod:`.sharing`): None if
        the first may, else ``(fold, index)`` where the next window opens and its count (``fold``
        ``-1``: the layer ends in a window that holds no address twice)."""
        nonlocal closes, last_close_row, last_row
        assert runs is not None
        got, to_end = runs.clean_windows(s0)
        if not got and not to_end:
            return None
        closes += got
        s1 = s0 + got * cap
        if got:
            last_close_row = row_of(s1 - 1)
        if to_end:
            last_row = row_of(runs.n - 1)
            return -1, 0, runs.n - s1
        f1 = runs.fold_of(s1)
        pt1 = pattern(keys[f1])
        last_row = f1 * fold_rows + pt1.row(pt1.n - 1)
        return f1, s1 - int(runs.starts[f1]), pt1.n - (s1 - int(runs.starts[f1]))

    absorbing = False   # whether the last run absorbed stopped at the fold that closes the window
    held_lo = sp.h      # the lowest input row the open window holds (folds of whole windows: not kept)

    def absorb_run(f0: int) -> int:
        """Folds ``f0 ..`` at one kernel position read disjoint channels at the same input positions:
        their new addresses are counted at once over one box of ``seen`` (:meth:`.PositionRuns.fill`),
        and those that leave the window open are marked and absorbed; how many (0: fewer than two in
        the run)."""
        nonlocal count, chans, last_row, absorbing
        assert at is not None
        fr = keys[f0]
        m = min(at.end[fr] - fr, (min(folds, (f0 // period + 1) * period) if period else folds) - f0)
        if m < 2:   # (sweep starts are left to the loop, which checks them)
            return 0
        view = seen.reshape(sp.h, sp.w, sp.c)
        a, count = at.fill(view, fr, m, count, cap)
        absorbing = a < m
        if a == 0:
            return 0
        lo, hi = int(at.lo[fr]), int(at.hi[fr + a - 1])
        rs, cs = at.boxes[at.pos[fr]]
        view[rs, cs, lo: hi] = True
        chans |= ((1 << (hi - lo)) - 1) << lo
        for j in range(a):
            last_whole[fr + j] = f0 + j
        last = pattern(fr + a - 1)
        last_row = (f0 + a - 1) * fold_rows + last.row(last.n - 1)
        return a

    f = -1
    if runs is not None and runs.n:
        first_row = row_of(0)
        jumped = skip_clean(0)
        if jumped is not None:
            f, o1, count = jumped
            if f < 0:
                return window_trace(kb, closes, count, last_close_row, first_row, last_row, shift_at)
            pt1 = pattern(keys[f])
            pending, chans, opened = [(pt1, o1)], pt1.chans, (f, o1)
    while f + 1 < folds:
        f += 1
        if period and f % period == 0:
            state = (opened[0] - f, opened[1], count)
            if state not in states:
                states[state] = (f, closes)
            else:   # the same window at the same place of a sweep: the sweeps between repeat
                f0, closes0 = states[state]
                q = (folds - f) // (f - f0)   # whole periods to skip (to the layer's end if they fill it)
                if q > 0:
                    jump = q * (f - f0)
                    if closes > closes0:
                        last_close_row += jump * fold_rows
                    closes += q * (closes - closes0)
                    opened = (opened[0] + jump, opened[1])
                    last_whole = {k: v + jump for k, v in last_whole.items()}
                    last_row += jump * fold_rows   # the last demand so far, a whole number of periods on
                    f += jump
                period = 0
                if f >= folds:   # the layer ends where a period does: the window as at the period's start
                    break
        key = keys[f]
        pt = pattern(key)
        n = pt.n
        if n == 0:
            continue
        base = f * fold_rows
        if first_row < 0:
            first_row = base + pt.row(0)
        last_row = base + pt.row(n - 1)
        w = last_whole.get(key)
        if w is not None and (w > opened[0] or (w == opened[0] and opened[1] == 0)):
            last_whole[key] = f   # every address of the fold is in the open window already
            continue
        shared = bool(pt.chans & chans)
        if shared and at is not None and at.pos[key] >= 0:   # a run of folds at one kernel position
            for q_pt, q_start in pending:
                mark_from(seen, q_pt, q_start)
            pending.clear()
            dirty = True
            got = absorb_run(f)
            if got:
                f += got
                if not absorbing:   # the whole run stays in the window
                    f -= 1
                    continue
                key = keys[f]
                pt = pattern(key)
                n = pt.n
                base = f * fold_rows
                last_row = base + pt.row(n - 1)
        untouched = not shared or (runs is None and below_held(pt, cap - count, held_lo))
        if not untouched:   # the window may hold some of the fold's addresses: mark what it holds
            for q_pt, q_start in pending:
                mark_from(seen, q_pt, q_start)
            pending.clear()
            dirty = True
        fresh, fresh_first = fresh_demands(pt, None if untouched else seen)
        if count + fresh < cap:
            pending.append((pt, 0))
            held_lo = min(held_lo, lowest_row(pt, 0, runs is None))
            chans |= pt.chans
            count += fresh
            if opened[0] != f:
                last_whole[key] = f
            continue
        need = cap - count
        if fresh_first is not None:
            hit = int(fresh_first[need - 1])
        elif pt.periodic is not None:
            hit = pt.periodic.select(need - 1)
        elif untouched:   # a fold of whole windows: every demand new
            hit = need - 1
        else:
            hit = int(np.flatnonzero(~seen[pt.addr_range(0, n)])[need - 1])
        closes += 1
        last_close_row = base + pt.row(hit)
        if dirty:
            seen[:] = False
            dirty = False
        pending.clear()
        count = 0
        k, hit, start, count = windows_inside(pt, hit + 1, cap, mark)
        if k:
            closes += k
            last_close_row = base + pt.row(hit)
        if count:
            pending.append((pt, start))
        held_lo = lowest_row(pt, start, runs is None) if count else sp.h
        chans = pt.chans if count else 0
        opened = (f, start)
        if runs is not None:
            jumped = skip_clean(int(runs.starts[f]) + start)
            if jumped is not None:
                f, o1, count = jumped
                if f < 0:
                    break
                pt1 = pattern(keys[f])
                pending[:] = [(pt1, o1)] if count else []
                chans, opened = (pt1.chans if count else 0), (f, o1)
    return window_trace(kb, closes, count, last_close_row, first_row, last_row, shift_at)
