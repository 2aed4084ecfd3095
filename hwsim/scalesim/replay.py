"""The reference: SCALE-Sim 3.0.0's demand streams, built in full, and its CALC-mode read buffers fed
with them fold by fold.

:func:`demand_streams` builds each operand's demand matrix entries (the row each is served at and its
address) in SCALE-Sim's service order, by row, then array column. USER mode replays them (its read
buffers' misses depend on the order of addresses); CALC mode's closed forms (:mod:`.layout`,
:mod:`.calc`) are tested against :func:`stream_read_buffer` and :func:`~hwsim.scalesim.timeline.run_stream`
on them. Memory grows with the layer's SRAM reads: this path is for layers of the size SCALE-Sim runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from ..accelerator import Dataflow
from .config import ScaleSimConfig
from .folds import fold_grid
from .report import ReadBuffer
from .topology import Shape
from .windows import window_capacity, window_trace

__all__ = ["Stream", "Streams", "demand_streams", "ifmap_addr", "grid", "Block", "skew_slots", "FoldBlocks", "fold_blocks",
           "IfmapParts", "ifmap_parts",
           "stream_read_buffer"]


def ifmap_addr(sp: Shape, pix: np.ndarray, k: np.ndarray, offset: int) -> np.ndarray:
    """SCALE-Sim's ifmap operand matrix entry (pixel, window index); -1 where the window leaves the input."""
    orow, ocol = np.divmod(pix, sp.ew)
    irow, icol = orow * sp.sh, ocol * sp.sw
    fr, rem = np.divmod(k, sp.s * sp.c)
    fc, ch = np.divmod(rem, sp.c)
    ok = (fr + irow < sp.h) & (fc + icol < sp.w)
    return np.where(ok, ((irow + fr) * sp.w + icol + fc) * sp.c + ch + offset, -1)


@dataclass(frozen=True, slots=True)
class Stream:
    """The valid entries of one operand's demand matrix in service order: row (cycle) and address."""

    rows: np.ndarray
    addrs: np.ndarray


def grid(*sizes: int) -> list[np.ndarray]:
    """Every index tuple of an array of ``sizes`` (C order), one flat array per axis."""
    return [a.ravel() for a in np.meshgrid(*(np.arange(n, dtype=np.int64) for n in sizes), indexing="ij")]


def make_stream(rows: np.ndarray, cols: np.ndarray, width: int, addrs: np.ndarray, keep: np.ndarray) -> Stream:
    """The ``keep`` entries of a demand matrix in service order: by row, then array column."""
    rows, cols, addrs = rows[keep], cols[keep], addrs[keep]
    order = np.argsort(rows * width + cols, kind="stable")
    return Stream(rows[order], addrs[order])


@dataclass(frozen=True, slots=True)
class Streams:
    """A layer's demand streams: ``n_rows`` rows of demands in ``folds`` folds, and each operand's
    stream (``ifmap`` and ``filter`` left empty when not asked for)."""

    n_rows: int
    folds: int
    ifmap: Stream
    filter: Stream
    ofmap: Stream


def demand_streams(sp: Shape, cfg: ScaleSimConfig, reads: bool = True) -> Streams:
    """The layer's demand streams on ``cfg``'s array (the read operands' only with ``reads``)."""
    ifm = fil = Stream(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    g = fold_grid(sp, cfg)
    rf, cf, T, fold_rows = g.row_folds, g.col_folds, g.steps, g.fold_rows

    def filt(k: np.ndarray, m: np.ndarray) -> np.ndarray:
        return m * K + k + cfg.filter_offset

    def ofm(p: np.ndarray, m: np.ndarray) -> np.ndarray:
        return p * M + m + cfg.ofmap_offset

    if flow is Dataflow.OS:
        if reads:
            fc, fr, t, c = grid(cf, rf, T, R)
            p = fr * R + c
            a = ifmap_addr(sp, np.minimum(p, P - 1), t, cfg.ifmap_offset)
            base = (fc * rf + fr) * fold_rows
            ifm = make_stream(base + t + c, c, R, a, (p < P) & (a >= 0))
            fc, fr, t, c = grid(cf, rf, T, C)
            m = fc * C + c
            fil = make_stream((fc * rf + fr) * fold_rows + t + c, c, C, filt(t, m), m < M)
        fc, fr, r, c = grid(cf, rf, R, C)
        p, m = fr * R + r, fc * C + c
        out = make_stream((fc * rf + fr) * fold_rows + T - 1 + (R - 1 - r) + c, c, C, ofm(p, m), (p < P) & (m < M))
    elif flow is Dataflow.WS:
        if reads:
            fc, fr, t, c = grid(cf, rf, T, R)
            k = fr * R + c
            a = ifmap_addr(sp, t, np.minimum(k, K - 1), cfg.ifmap_offset)
            ifm = make_stream((fc * rf + fr) * fold_rows + R + t + c, c, R, a, (k < K) & (a >= 0))
            fc, fr, r, c = grid(cf, rf, R, C)
            k, m = fr * R + r, fc * C + c
            fil = make_stream((fc * rf + fr) * fold_rows + R - 1 - r, c, C, filt(k, m), (k < K) & (m < M))
        fc, fr, t, c = grid(cf, rf, T, C)
        m = fc * C + c
        out = make_stream((fc * rf + fr) * fold_rows + 2 * R - 1 + t + c, c, C, ofm(t, m), m < M)
    else:
        if reads:
            fc, fr, r, c = grid(cf, rf, R, C)
            k, p = fr * R + r, fc * C + c
            a = ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset)
            ifm = make_stream((fc * rf + fr) * fold_rows + R - 1 - r, c, C, a, (k < K) & (p < P) & (a >= 0))
            fc, fr, t, c = grid(cf, rf, T, R)
            k = fr * R + c
            fil = make_stream((fc * rf + fr) * fold_rows + R + t + c, c, R, filt(k, t), k < K)
        fc, fr, t, c = grid(cf, rf, T, C)
        p = fc * C + c
        out = make_stream((fc * rf + fr) * fold_rows + 2 * R - 1 + t + c, c, C, ofm(p, t), p < P)
    return Streams(g.demand_rows, g.folds, ifm, fil, out)




# ---- CALC mode read buffers, fold by fold ------------------------------------------------------

Block = tuple[np.ndarray, np.ndarray]   # a fold's (rows within the fold, addresses) in service order


def skew_slots(w: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slots ``(a < t, c < w)`` of a skewed block in service order (by diagonal ``d = a + c``, then
    column ``c``): ``(d, a, c)`` of each; the first and last few diagonals are partly filled."""
    col = np.arange(w, dtype=np.int64)
    d = np.arange(t + w - 1, dtype=np.int64)
    lo_c, hi_c = np.maximum(d - t + 1, 0), np.minimum(d, w - 1)
    if t >= w:   # the middle diagonals are full: build them without a mask
        c = np.concatenate([col[: k + 1] for k in range(w - 1)] + [np.tile(col, t - w + 1)]
                           + [col[k:] for k in range(1, w)])
    else:
        c = np.concatenate([np.arange(lo, hi + 1, dtype=np.int64)
                            for lo, hi in zip(lo_c.tolist(), hi_c.tolist(), strict=True)])
    rel = np.repeat(d, hi_c - lo_c + 1)
    return rel, rel - c, c


@dataclass(frozen=True, slots=True)
class FoldKeys(Sequence[tuple[int, int]]):
    """Each demand fold's pattern ``(fr, fc)`` (column folds outer, row folds inner), 0 along the fold
    index an operand's demands do not depend on: found by index, not listed (thousands of folds)."""

    row_folds: int
    col_folds: int
    by_fr: bool   # the same in every column fold
    by_fc: bool   # the same in every row fold

    def __len__(self) -> int:
        return self.row_folds * self.col_folds

    @overload
    def __getitem__(self, f: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, f: slice) -> list[tuple[int, int]]: ...

    def __getitem__(self, f: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        n = self.row_folds * self.col_folds
        if isinstance(f, slice):
            return [self[i] for i in range(*f.indices(n))]
        if f < 0:
            f += n
        if not 0 <= f < n:
            raise IndexError(f)
        fc, fr = divmod(f, self.row_folds)
        return (0 if self.by_fc else fr, 0 if self.by_fr else fc)


@dataclass(frozen=True, slots=True)
class FoldBlocks:
    """One read operand's demands, fold by fold: ``fold_rows`` rows per fold, the pattern ``keys[f]`` of
    each fold, ``block(pattern)``, the fold's ``(rows within the fold, addresses)`` in service order, and
    ``span(f0, f1)``, folds ``f0 .. f1 - 1`` at once (rows from fold ``f0``'s first row), built by
    broadcasting over the folds: the blocks of those folds concatenated."""

    fold_rows: int
    keys: FoldKeys
    block: Callable[[tuple[int, int]], Block]
    span: Callable[[int, int], Block]
    ends: Callable[[tuple[int, int]], tuple[int, int] | None]   # rows of a fold's first and last demand


@dataclass(frozen=True, slots=True)
class IfmapParts:
    """An IFMAP address as pixel ``p``'s window corner ``pbase[p]`` plus window index ``k``'s offset
    ``koff[k]``; the input rows and columns from each pixel's corner (``room_r``, ``room_c``: a window
    is cut where they are below the kernel's), each index's kernel row and column (``kr``, ``kc``)."""

    pbase: np.ndarray
    koff: np.ndarray
    room_r: np.ndarray
    room_c: np.ndarray
    kr: np.ndarray
    kc: np.ndarray


def ifmap_parts(sp: Shape, cfg: ScaleSimConfig) -> IfmapParts:
    """Every pixel's and window index's part of an IFMAP address (:class:`IfmapParts`)."""
    orow, ocol = np.divmod(np.arange(sp.npix, dtype=np.int64), sp.ew)
    room_r, room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw
    pbase = ((sp.h - room_r) * sp.w + sp.w - room_c) * sp.c + cfg.ifmap_offset
    kr, rem = np.divmod(np.arange(sp.window, dtype=np.int64), sp.s * sp.c)
    kc, ch = np.divmod(rem, sp.c)
    return IfmapParts(pbase, (kr * sp.w + kc) * sp.c + ch, room_r, room_c, kr, kc)


def fold_blocks(sp: Shape, cfg: ScaleSimConfig, operand: str) -> FoldBlocks:
    """One read operand's demands, fold by fold (:class:`FoldBlocks`).

    Folds repeat (all OS IFMAP folds of one row fold demand the same addresses at the same rows, and
    so on), so a pattern is built once; within a fold, demands are ordered by row, then array column,
    a permutation of the fold's operand block found once.
    """
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    g = fold_grid(sp, cfg)
    rf, cf, T, fold_rows = g.row_folds, g.col_folds, g.steps, g.fold_rows
    preload = (flow, operand) in ((Dataflow.WS, "filter"), (Dataflow.IS, "ifmap"))
    # the fold's slots in service order (by row, then array column), generated in that order
    width = C if preload or (flow, operand) == (Dataflow.OS, "filter") else R

    def grid(w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row in fold, a, c)`` of the slots of array columns ``c < w``, in service order."""
        if preload:  # a block of R x C loaded, bottom row first, before the stream
            a = np.repeat(np.arange(R - 1, -1, -1, dtype=np.int64), w)
            c = np.tile(np.arange(w, dtype=np.int64), R)
            return R - 1 - a, a, c
        # a stream of T steps skewed over the array's rows (ifmap, IS filter) or columns (OS filter)
        rel, a, c = skew_slots(w, T)
        return rel + (0 if flow is Dataflow.OS else R), a, c

    by_fr = (flow, operand) in ((Dataflow.OS, "ifmap"), (Dataflow.WS, "ifmap"), (Dataflow.IS, "filter"))
    by_fc = (flow, operand) == (Dataflow.OS, "filter")
    keys = FoldKeys(rf, cf, by_fr, by_fc)
    # a slot's address is part_a[a] + part_c[c]: one operand index runs along a, the other along c
    ifmap = operand == "ifmap"
    # some window runs past the input (the last pixel's rooms)
    partial = ifmap and (sp.h - (sp.eh - 1) * sp.sh < sp.r or sp.w - (sp.ew - 1) * sp.sw < sp.s)
    kinds = {(Dataflow.OS, "ifmap"): ("k", "p"), (Dataflow.WS, "ifmap"): ("p", "k"),
             (Dataflow.IS, "ifmap"): ("k", "p"), (Dataflow.OS, "filter"): ("k", "m"),
             (Dataflow.WS, "filter"): ("k", "m"), (Dataflow.IS, "filter"): ("m", "k")}[(flow, operand)]
    bounds = {"p": P, "k": K, "m": M}
    n_a, n_c = (R, C) if preload else (T, width)

    # pixel p, window index k: the pixel's window corner plus the index's offset (IfmapParts), and the
    # first block's parts along a; built at the first fold built (a fold's ends need none of them)
    pbase = koff = room_r = room_c = kr = kc = pa0 = ia0 = np.zeros(0, dtype=np.int64)
    ready = False

    def need() -> None:
        nonlocal pbase, koff, room_r, room_c, kr, kc, pa0, ia0, ready
        if ready:
            return
        ready = True
        if ifmap:
            ip = ifmap_parts(sp, cfg)
            pbase, koff, room_r, room_c, kr, kc = ip.pbase, ip.koff, ip.room_r, ip.room_c, ip.kr, ip.kc
        pa0, _, ia0 = part(kinds[0], 0, n_a)

    def part(kind: str, start: int | np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Address parts, validity and (clipped) indices of operand indices ``start .. start + n - 1``
        (one row per start when ``start`` is an array of them), once ``need()`` has run (it does not
        call it: two closures calling each other are a reference cycle, holding the parts until the
        garbage collector runs)."""
        idx = np.asarray(start, dtype=np.int64)[..., None] + np.arange(n, dtype=np.int64)
        if idx.ndim == 2 and np.ndim(start) == 0:
            idx = idx[0]
        ok = idx < bounds[kind]
        idx = np.minimum(idx, bounds[kind] - 1)
        if kind == "p":
            return pbase[idx], ok, idx
        if kind == "k":
            return (koff[idx] if ifmap else idx), ok, idx
        return idx * K + cfg.filter_offset, ok, idx

    grids: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def block(pattern: tuple[int, int]) -> Block:
        need()
        fr, fc = pattern
        starts = {"p": fc * C if flow is Dataflow.IS else fr * R, "k": fr * R, "m": fc * C}
        pc, okc, ic = part(kinds[1], starts[kinds[1]], n_c)
        # valid columns are a prefix; streams take only those (their a index always starts at 0)
        w = n_c if preload else int(np.count_nonzero(okc))
        if w not in grids:
            rel, a, c = grid(w)
            grids[w] = (rel, a, c, None if preload else pa0[a])
        rel, a, c, slots_a = grids[w]
        if slots_a is None:
            pa, oka, ia = part(kinds[0], starts[kinds[0]], n_a)
            addr = pa[a] + pc[c]
            keep = None if oka.all() and okc.all() else oka[a] & okc[c]
        else:   # the full middle diagonals hold every column in turn: add the column parts by broadcasting
            ia, keep = ia0, None
            h0 = w * (w - 1) // 2
            h1 = slots_a.size - h0
            addr = np.empty_like(slots_a)
            if T >= w:
                np.add(slots_a[h0:h1].reshape(-1, w), pc[:w], out=addr[h0:h1].reshape(-1, w))
                np.add(slots_a[:h0], pc[c[:h0]], out=addr[:h0])
                np.add(slots_a[h1:], pc[c[h1:]], out=addr[h1:])
            else:
                np.add(slots_a, pc[c], out=addr)
        if ifmap and partial:
            inside = inside_at(ia[a], ic[c])
            keep = inside if keep is None else keep & inside
        if keep is None:
            return rel, addr
        return rel[keep], addr[keep]

    def inside_at(along_a: np.ndarray, along_c: np.ndarray) -> np.ndarray:
        """Whether slots whose operand indices along ``a`` and ``c`` are these read inside the input."""
        p, k = (along_a, along_c) if kinds[0] == "p" else (along_c, along_a)
        return (kr[k] < room_r[p]) & (kc[k] < room_c[p])

    def ends(pattern: tuple[int, int]) -> tuple[int, int] | None:
        """Rows (within the fold) of the fold's first and last demand, None without any: a stream's in
        closed form from its columns' valid runs (a window is cut only at the input's edge)."""
        fr, fc = pattern
        starts = {"p": fc * C if flow is Dataflow.IS else fr * R, "k": fr * R, "m": fc * C}
        cut = ifmap and partial
        if preload:   # valid a and c are prefixes; the block's rows R - 1 - a, bottom (a = R - 1) first
            if cut:
                rel = block(pattern)[0]
                return (int(rel[0]), int(rel[-1])) if rel.size else None
            n_in = min(R, max(0, bounds[kinds[0]] - starts[kinds[0]]))
            w_in = min(C, max(0, bounds[kinds[1]] - starts[kinds[1]]))
            return (R - n_in, R - 1) if n_in and w_in else None
        w = min(n_c, max(0, bounds[kinds[1]] - starts[kinds[1]]))
        if not cut:   # every slot of the valid columns is a demand: diagonals 0 .. T + w - 2
            off = 0 if flow is Dataflow.OS else R
            return (off, off + T + w - 2) if w and T else None
        # a window cut by the input's edge: each column's valid a run from 0 (the first pixel / window
        # index of the column's reads inside) to its largest, so the first demand is at the first valid
        # column's diagonal 0 + c and the last at the largest a + c
        c = np.arange(w, dtype=np.int64)
        if flow is Dataflow.OS:   # columns pixels, a window indices within the pixel's rooms
            orow, ocol = np.divmod(starts["p"] + c, sp.ew)
            rr, rc = np.minimum(sp.h - orow * sp.sh, sp.r), np.minimum(sp.w - ocol * sp.sw, sp.s)
            a_hi = ((rr - 1) * sp.s + rc) * sp.c - 1
        else:                     # WS: columns window indices, a the pixels (output rows, columns) reading them
            k = starts["k"] + c
            kr_, rem = np.divmod(k, sp.s * sp.c)
            rr = np.clip((sp.h - kr_ + sp.sh - 1) // sp.sh, 0, sp.eh)
            rc = np.clip((sp.w - rem // sp.c + sp.sw - 1) // sp.sw, 0, sp.ew)
            a_hi = (rr - 1) * sp.ew + rc - 1
        ok = np.flatnonzero((rr > 0) & (rc > 0))
        if not ok.size:
            return None
        off = 0 if flow is Dataflow.OS else R
        return off + int(ok[0]), off + int((a_hi[ok] + ok).max())

    def span(f0: int, f1: int) -> Block:
        """Folds ``f0 .. f1 - 1``: ``block`` with a leading axis of folds (one pass of numpy for a run
        of folds, instead of one call per fold). A slot's parts are per-fold values of its row and its
        column broadcast over the slots, gathered only in a stream's partly filled first and last
        diagonals."""
        need()
        f = np.arange(f0, f1, dtype=np.int64)
        fcs, frs = np.divmod(f, rf)   # keys run over the row folds within each column fold
        fr = np.zeros_like(frs) if by_fc else frs
        fc = np.zeros_like(fcs) if by_fr else fcs
        starts = {"p": fc * C if flow is Dataflow.IS else fr * R, "k": fr * R, "m": fc * C}
        pc, okc, ic = part(kinds[1], starts[kinds[1]], n_c)   # one row per fold
        base = (f - f0) * fold_rows
        nf = f.size
        if preload:   # slot (i, c): row R - 1 - i of the block, array column c
            pa, oka, ia = part(kinds[0], starts[kinds[0]], n_a)
            rows_a = (slice(None), slice(None, None, -1), None)
            cols = (slice(None), None, slice(None))
            addr = pa[rows_a] + pc[cols]
            keep = oka[rows_a] & okc[cols]
            if ifmap and partial:
                p_a, k_c = (ia[rows_a], ic[cols]) if kinds[0] == "p" else (ic[cols], ia[rows_a])
                keep = keep & (kr[k_c] < room_r[p_a]) & (kc[k_c] < room_c[p_a])
            rows = base[:, None, None] + np.arange(R, dtype=np.int64)[:, None]
            rows = np.broadcast_to(rows, addr.shape)
            if keep.all():
                return rows.ravel(), addr.ravel()
            return rows[keep], addr[keep]
        # a stream's valid columns are a prefix: folds of one width at a time, in order
        widths = np.count_nonzero(okc, axis=1)
        cuts = np.flatnonzero(np.diff(widths)) + 1
        rows_out, addr_out = [], []
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), nf], strict=True):
            w = int(widths[lo])
            if w not in grids:
                rel, a, c = grid(w)
                grids[w] = (rel, a, c, pa0[a])
            rel, a, c, slots_a = grids[w]
            addr = spread(pc[lo:hi, :w], c, w, T)
            addr += slots_a
            rows = base[lo:hi, None] + rel
            if ifmap and partial:
                along_c, along_a = ic[lo:hi, :w], ia0[a]
                if kinds[0] == "p":   # the slot's pixel along a, its window index along c
                    inside = ((spread(kr[along_c], c, w, T) < room_r[along_a])
                              & (spread(kc[along_c], c, w, T) < room_c[along_a]))
                else:                 # the window index along a, the pixel along c
                    inside = ((kr[along_a] < spread(room_r[along_c], c, w, T))
                              & (kc[along_a] < spread(room_c[along_c], c, w, T)))
                rows, addr = rows[inside], addr[inside]
            rows_out.append(rows.ravel())
            addr_out.append(addr.ravel())
        return np.concatenate(rows_out), np.concatenate(addr_out)

    return FoldBlocks(fold_rows, keys, block, span, ends)


def spread(v: np.ndarray, c: np.ndarray, w: int, t: int) -> np.ndarray:
    """Per-fold values ``v`` (folds x ``w`` array columns) at every slot of a skewed block of ``t`` steps
    whose slots' columns are ``c`` (:func:`skew_slots`): broadcast over its full middle diagonals (each
    holds every column in turn), gathered only in the partly filled first and last ones."""
    if t < w:
        return v[:, c]
    h0 = w * (w - 1) // 2
    h1 = c.size - h0
    out = np.empty((v.shape[0], c.size), dtype=v.dtype)
    out[:, h0:h1].reshape(v.shape[0], -1, w)[:] = v[:, None, :]
    out[:, :h0] = v[:, c[:h0]]
    out[:, h1:] = v[:, c[h1:]]
    return out


def stream_read_buffer(sp: Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                       shift_at: Callable[[int], int]) -> ReadBuffer:
    """An estimate-mode read buffer's DRAM trace and demand rows, from its demands fed fold by fold and
    demand by demand (the reference CALC mode's closed forms are tested against).

    The buffer fetches each address once per window of ``cap`` distinct addresses taken in demand
    order; a window closes when full and the next starts empty. Folds are fed one by one (memory of
    one fold), and a fold whose pattern was wholly demanded inside the open window is skipped: it
    adds no new address.
    """
    cap = window_capacity(kb)
    fb = fold_blocks(sp, cfg, operand)
    fold_rows, keys, block = fb.fold_rows, fb.keys, fb.block
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    seen: np.ndarray | None = None
    mark: np.ndarray | None = None
    lo = 0 if operand == "ifmap" else cfg.filter_offset   # addresses are kept relative to lo
    ramp = np.zeros(0, dtype=np.int64)   # 0, 1, 2, ...: each pattern's demand indices
    count = 0           # distinct addresses in the open window
    opened = (0, 0)     # (fold, index in fold) where the open window started
    last_whole: dict[tuple[int, int], int] = {}   # pattern -> last fold fed whole
    closes = 0
    last_close_row = -1
    first_row = last_row = -1
    f = -1
    while f + 1 < len(keys):
        f += 1
        key = keys[f]
        if key not in cache:
            rel, addr = block(key)
            if ramp.size < addr.size:
                ramp = np.arange(addr.size, dtype=np.int64)
            cache[key] = (rel, addr - lo if lo else addr, ramp[: addr.size])
        rel, a, idx = cache[key]
        if a.size == 0:
            continue
        base = f * fold_rows
        if first_row < 0:
            first_row = base + int(rel[0])
        last_row = base + int(rel[-1])
        g = last_whole.get(key)
        if g is not None and (g > opened[0] or (g == opened[0] and opened[1] == 0)):
            last_whole[key] = f
            continue
        if seen is None:
            hi = (sp.h * sp.w * sp.c + cfg.ifmap_offset) if operand == "ifmap" else cfg.filter_offset + sp.window * sp.m
            seen = np.zeros(hi - lo, dtype=bool)
            mark = np.zeros(hi - lo, dtype=np.int64)
        assert mark is not None
        start = 0
        while start < a.size:
            sub, sidx = a[start:], idx[: a.size - start]
            mark[sub[::-1]] = sidx[::-1]
            new = (mark[sub] == sidx) & ~seen[sub]
            cs = np.cumsum(new)
            if count + int(cs[-1]) < cap:
                seen[sub[new]] = True
                count += int(cs[-1])
                break
            hit = int(np.searchsorted(cs, cap - count))
            closes += 1
            last_close_row = base + int(rel[start + hit])
            seen[:] = False
            count = 0
            start += hit + 1
            opened = (f, start)
        if opened[0] != f:  # no window closed inside this fold: all of it is in the open window
            last_whole[key] = f
    return window_trace(kb, closes, count, last_close_row, first_row, last_row, shift_at)
