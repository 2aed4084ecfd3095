"""CALC mode's WS IFMAP read buffer where windows overlap: row folds fed through their distinct addresses,
windows inside a fold counted.

In WS, row fold ``fr`` demands window indices ``[fr * R, fr * R + w)`` of every output pixel (pixels along
the stream, window indices along the array's rows, skewed), and each column fold repeats the sweep of
``rf`` row folds. Each row fold's pattern is built once (:class:`FoldWindows`): its distinct addresses
and where each is first demanded, sorted, and whether every demand is a new address (a fold whose
``w`` window indices are ``w`` different channels, ``w <= C``: every layer but a stem of few channels).

A window open at a fold's start holds addresses of earlier folds: the fold fills it at the
``(cap - held)``-th address it lacks, a partial selection over the fold's distinct addresses. A window
that opens inside a fold holds only that fold's demands from its start ``s`` on: where every demand is
new it closes after ``cap`` demands (arithmetic); otherwise at the ``cap``-th demand whose address is
not demanded in ``[s, i)``, found over a stretch of about a window's demands. Folds wholly inside the
open window are skipped, and once the window's state at a sweep's start recurs, whole periods of
sweeps are skipped.

Exactness is by construction and tested: :func:`ws_read_buffer` equals
:func:`~hwsim.scalesim.replay.stream_read_buffer` fed demand by demand on random layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .replay import skew_slots
from .report import ReadBuffer
from .topology import Shape
from .windows import window_capacity, window_trace

__all__ = ["FoldWindows", "fold_channels", "mark_from", "nth_new", "repeat_reach", "ws_patterns", "ws_read_buffer"]


@dataclass(frozen=True, slots=True)
class FoldWindows:
    """One row fold's IFMAP demands in service order: ``rel``, the row (within the fold) of each of its
    ``n`` demands; ``firsts``, the indices of the demands that bring an address first in the fold
    (sorted) and ``first_addrs``, those addresses (relative to the input); ``distinct``: every demand is
    a new address; ``chans``: the channels it reads, as a bit mask (folds reading no common channel
    share no address); ``reach``: a repeated address's previous demand lies fewer than ``reach``
    demands before it (so a demand that far past a window's start is new to the window exactly when
    it is a first demand of the fold). Every demand's address is either kept (``addrs``) or, for a
    large fold of repeated addresses, recomputed where asked (:meth:`addr_range`) from ``lazy``: the
    fold's window offsets, the pixel and the window column of each demand, and the pixels' bases."""

    rel: np.ndarray
    n: int
    firsts: np.ndarray
    first_addrs: np.ndarray
    distinct: bool
    chans: int
    reach: int
    addrs: np.ndarray | None = None
    lazy: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def addr_range(self, lo: int, hi: int) -> np.ndarray:
        """The addresses of demands ``lo .. hi - 1``."""
        if self.addrs is not None:
            return self.addrs[lo:hi]
        assert self.lazy is not None
        offs, pix, col, pbase = self.lazy
        return offs[col[lo:hi]] + pbase[pix[lo:hi]]

    @property
    def nbytes(self) -> int:
        """Memory the pattern holds of its own (the per-width service order is shared)."""
        own = self.firsts.nbytes + (self.addrs.nbytes if self.addrs is not None else 0)
        return own if self.distinct else own + self.first_addrs.nbytes


def repeat_reach(sp: Shape, ks: range) -> int:
    """A bound, in demands, on how far apart two demands of one WS fold (window indices ``ks``) with the
    same address lie. Window indices ``k, k'`` read one address only if they share the channel and
    their kernel rows (columns) differ by a multiple of the stride, for output pixels ``dr * E_w + dc``
    apart (``dr, dc``: that difference over the stride); served by rows ``p + c`` (``c = k - ks[0]``),
    at most ``len(ks)`` demands a row, two such demands are at most ``(rows apart + 1) * len(ks)`` apart."""
    groups: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for c, k in enumerate(ks):
        kr, rem = divmod(k, sp.s * sp.c)
        kc, ch = divmod(rem, sp.c)
        groups.setdefault((ch, kr % sp.sh, kc % sp.sw), []).append((c, kr // sp.sh, kc // sp.sw))
    rows = 0
    for members in groups.values():
        for c, ir, jc in members:
            for c2, ir2, jc2 in members:
                rows = max(rows, abs(ir - ir2) * sp.ew + abs(jc - jc2) + abs(c - c2))
    return (rows + 1) * len(ks)


def fold_channels(ks: range, channels: int) -> int:
    """The channels window indices ``ks`` read, as a bit mask."""
    bits = 0
    for k in ks[: channels]:
        bits |= 1 << (k % channels)
    return bits


def ws_patterns(sp: Shape, rows: int, mark: np.ndarray) -> Callable[[int], FoldWindows]:
    """Row fold ``fr``'s pattern (:class:`FoldWindows`): its IFMAP demands in service order, window index
    ``fr * rows + c`` of pixel ``p`` at row ``rows + p + c``, by row, then ``c``; a demand whose element
    lies past the input (a window cut by the edge) is left out. ``mark`` (ints) is a table as large as
    the input.

    The service order (row, pixel and window column of each demand) is found once per fold width. A fold
    of ``w <= C`` window indices reads ``w`` channels, so every demand is a new address; otherwise its
    first demands are found by marking (each address's first demand wins). A large fold of repeated
    addresses keeps only its first demands: its addresses are built in two scratch arrays shared by the
    folds (fresh pages cost more than the arithmetic) and recomputed where a window asks for a stretch."""
    P, K = sp.npix, sp.window
    orow, ocol = np.divmod(np.arange(P, dtype=np.int64), sp.ew)
    room_r, room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw     # input rows / columns from the corner
    pbase = (orow * sp.sh * sp.w + ocol * sp.sw) * sp.c
    kr, rem = np.divmod(np.arange(K, dtype=np.int64), sp.s * sp.c)
    kc = rem // sp.c
    koff = (kr * sp.w + kc) * sp.c + rem % sp.c
    partial = bool(room_r[-1] < sp.r or room_c[-1] < sp.s)
    orders: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    ramp = np.arange(min(rows, K) * P, dtype=np.int64)   # the most demands of a fold
    scratch: list[np.ndarray] = []

    def pattern(fr: int) -> FoldWindows:
        ks = range(fr * rows, min(fr * rows + rows, K))
        w = len(ks)
        if w not in orders:
            d, a, c = skew_slots(w, P)
            orders[w] = (d + rows, a, c)
        rel, pix, col = orders[w]
        offs = koff[ks.start: ks.stop]
        chans, distinct = fold_channels(ks, sp.c), w <= sp.c
        if partial:
            ok = (kr[ks.start: ks.stop][col] < room_r[pix]) & (kc[ks.start: ks.stop][col] < room_c[pix])
            rel, pix, col = rel[ok], pix[ok], col[ok]
        n = rel.size
        idx = ramp[:n]
        if distinct:
            addrs = offs[col] + pbase[pix]
            return FoldWindows(rel, n, idx, addrs, True, chans, 0, addrs)
        if not scratch or scratch[0].size < n:
            scratch[:] = [np.empty(max(n, ramp.size), dtype=np.int64) for _ in range(2)]
        addr, got = scratch[0][:n], scratch[1][:n]
        np.take(offs, col, out=addr)
        np.take(pbase, pix, out=got)
        np.add(addr, got, out=addr)
        mark[addr[::-1]] = idx[::-1]   # the first demand of each address wins
        np.take(mark, addr, out=got)
        firsts = np.flatnonzero(got == idx)
        reach = repeat_reach(sp, ks)
        if partial or n < 4096:
            own = addr.copy()
            return FoldWindows(rel, n, firsts, own[firsts], False, chans, reach, own)
        return FoldWindows(rel, n, firsts, addr[firsts], False, chans, reach, None, (offs, pix, col, pbase))
    return pattern


_PATTERN_CACHE_BYTES = 64 * 2**20   # fold patterns kept at once (a layer has rf of them)


def nth_new(pt: FoldWindows, start: int, need: int, mark: np.ndarray) -> tuple[int, int]:
    """In demands ``start ..`` of a fold, the index of the one that brings the ``need``-th address not
    demanded since ``start`` (``-1`` if the fold ends first) and how many such addresses it brings.

    Within ``pt.reach`` demands of ``start`` the new ones are found by marking (a first demand since
    ``start`` is one within the stretch); past it, a demand is new exactly when it is a first demand of
    the fold (its address's previous demand, if any, lies at or after ``start``), a search in
    ``pt.firsts``."""
    end = min(pt.n, start + pt.reach)
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
        seen[pt.first_addrs[start:]] = True
        return
    end = min(pt.n, start + pt.reach)
    seen[pt.addr_range(start, end)] = True
    seen[pt.first_addrs[np.searchsorted(pt.firsts, end):]] = True


def ws_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                   shift_at: Callable[[int], int]) -> ReadBuffer | None:
    """The WS IFMAP read buffer's DRAM trace (module docstring); None for other operands and dataflows."""
    if operand != "ifmap" or cfg.dataflow is not Dataflow.WS:
        return None
    cap = window_capacity(kb)
    g = fold_grid(sp, cfg)
    fold_rows = g.fold_rows
    keys = [fr for _ in range(g.col_folds) for fr in range(g.row_folds)]
    rf, cf = g.row_folds, g.col_folds
    size = sp.h * sp.w * sp.c
    seen = np.zeros(size, dtype=bool)      # the open window's addresses
    mark = np.zeros(size, dtype=np.int64)
    pats: dict[int, FoldWindows] = {}
    build = ws_patterns(sp, cfg.array_rows, mark)

    held_bytes = 0

    def pattern(key: int) -> FoldWindows:
        nonlocal held_bytes
        got = pats.get(key)
        if got is None:
            got = build(key)
            nbytes = got.nbytes
            while pats and held_bytes + nbytes > _PATTERN_CACHE_BYTES:   # the oldest go (sweeps run in order)
                old = pats.pop(next(iter(pats)))
                held_bytes -= old.nbytes
            pats[key] = got
            held_bytes += nbytes
        return got

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
    f = -1
    while f + 1 < folds:
        f += 1
        if period and f % period == 0:
            state = (opened[0] - f, opened[1], count)
            if state not in states:
                states[state] = (f, closes)
            else:   # the same window at the same place of a sweep: the sweeps between repeat
                f0, closes0 = states[state]
                q = (folds - f - period) // (f - f0)   # whole periods to skip, one sweep left
                if q > 0:
                    jump = q * (f - f0)
                    if closes > closes0:
                        last_close_row += jump * fold_rows
                    closes += q * (closes - closes0)
                    opened = (opened[0] + jump, opened[1])
                    last_whole = {k: v + jump for k, v in last_whole.items()}
                    f += jump
                period = 0
        key = keys[f]
        pt = pattern(key)
        n = pt.n
        if n == 0:
            continue
        base = f * fold_rows
        if first_row < 0:
            first_row = base + int(pt.rel[0])
        last_row = base + int(pt.rel[-1])
        w = last_whole.get(key)
        if w is not None and (w > opened[0] or (w == opened[0] and opened[1] == 0)):
            last_whole[key] = f   # every address of the fold is in the open window already
            continue
        shared = bool(pt.chans & chans)
        if not shared:   # the window holds none of the fold's addresses: its first demands, in order
            fresh_first = pt.firsts
        else:
            for q_pt, q_start in pending:
                mark_from(seen, q_pt, q_start)
            pending.clear()
            dirty = True
            fresh_first = (np.flatnonzero(~seen[pt.first_addrs]) if pt.distinct
                           else pt.firsts[~seen[pt.first_addrs]])
        if count + fresh_first.size < cap:
            pending.append((pt, 0))
            chans |= pt.chans
            count += fresh_first.size
            if opened[0] != f:
                last_whole[key] = f
            continue
        need = cap - count
        hit = int(fresh_first[need - 1])
        closes += 1
        last_close_row = base + int(pt.rel[hit])
        if dirty:
            seen[:] = False
            dirty = False
        pending.clear()
        count = 0
        start = hit + 1
        if pt.distinct:   # windows inside the fold: every cap demands
            k = (n - start) // cap
            if k:
                closes += k
                start += k * cap
                last_close_row = base + int(pt.rel[start - 1])
            count = n - start
        else:
            while start < n:
                hit, got_new = nth_new(pt, start, cap, mark)
                if hit < 0:
                    count = got_new
                    break
                closes += 1
                last_close_row = base + int(pt.rel[hit])
                start = hit + 1
        if count:
            pending.append((pt, start))
        chans = pt.chans if count else 0
        opened = (f, start)
    return window_trace(kb, closes, count, last_close_row, first_row, last_row, shift_at)
