"""USER mode's read buffers without scanning every demand: each demand's *home*, the place of its own
entry in its buffer's fetch order, in closed form; a fold whose homes all lie in the window misses nowhere.

A USER-mode read buffer holds its prefetch matrix read out in a fixed order (:func:`~hwsim.scalesim.user.
fetch_orders`), and every demand is one entry of that matrix: the OS IFMAP demand of pixel ``p`` and window
index ``k`` is the matrix entry of the same pair. The matrix is laid out by folds of the operand, ``F``
blocks of ``T`` rows by ``n`` columns, read out along anti-diagonals of the whole ``F*T x n`` matrix
(*skewed*: OS IFMAP and filter, WS IFMAP, IS filter) or row by row (WS filter, IS IFMAP), and a demand
fold covers one block (a stream) or ``R`` of its rows (a preload). So a demand's home is

* skewed: the number of valid entries of the blocks before its own, plus its index in its fold (the
  fold's demands are served in the block's own anti-diagonal order), plus a correction that depends only
  on its anti-diagonal and is non-zero only on the first and last ``n - 1`` of them, where the read-out
  interleaves the block with its neighbours (:meth:`HomeMap.corrections`);
* row by row: the valid entries before its row in the block, plus its rank in its row.

A demand whose home is in the window is a hit (its own entry is there). The window changes only at a
miss, so the folds between two misses whose homes' sets all lie in the window (bounds per fold, in closed
form) are skipped unread (:func:`replay_homes`); only the folds where the window's edge falls are built
and checked: a filter's (each address held once) by its homes alone, an IFMAP's with duplicates by its
homes and, for those outside the window, the window's addresses. Equal to
:func:`~hwsim.scalesim.user.replay_prefetches` on the same folds (tested).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from ..accelerator import Dataflow
from .config import READ_LATENCY_CYCLES, ScaleSimConfig
from .folds import fold_grid
from .members import OrderWindows
from .replay import FoldBlocks
from .streamfold import CutSlots, StreamFold
from .topology import Shape
from .user import PREPARED_BYTES, FetchOrder, Prefetches, add_prefetches, window_sets

__all__ = ["HomeMap", "home_map", "FoldCache", "prefetches_again", "replay_homes"]


@dataclass(frozen=True, slots=True)
class HomeMap:
    """A read operand's fetch matrix as folds, and where each demand fold's homes lie.

    ``cum[g]``: valid entries of the blocks before block ``g``; ``block_of[f]`` / ``lo[f]`` / ``hi[f]``:
    demand fold ``f``'s block and the range its homes lie in (``lo == hi``: no demand)."""

    sp: Shape
    cfg: ScaleSimConfig
    operand: str
    skew: bool
    folds: int       # F
    steps: int       # T, rows per block
    width: int       # n, columns
    cum: np.ndarray
    block_of: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    row_folds: int
    ends: tuple[np.ndarray, np.ndarray]   # per block: earlier blocks' entries read at or after each of
                                          # its first n - 1 diagonals, later blocks' read by its last n - 1

    def valid(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Whether the matrix entries at global rows ``rows`` and columns ``cols`` (broadcast) hold an
        address: the index along the columns within its bound, the window inside the input."""
        return entry_valid(self.sp, self.cfg, self.operand, self.steps, rows, cols)

    def corrections(self, g: int) -> np.ndarray:
        """Skewed read-out: per anti-diagonal ``j`` of block ``g`` (``T + n - 1`` of them), the valid
        entries of later blocks read before it, less those of earlier blocks read at or after it (from
        ``ends``: non-zero only on the first and last ``n - 1``)."""
        T, n = self.steps, self.width
        corr = np.zeros(T + n - 1, dtype=np.int64)
        corr[: n - 1] -= self.ends[0][g]
        corr[T: T + n - 1] += self.ends[1][g]
        return corr

    def homes(self, f: int, rel: np.ndarray) -> np.ndarray:
        """The homes of demand fold ``f``'s demands, given their rows within the fold (in service order)."""
        g = int(self.block_of[f])
        base = int(self.cum[g])
        if self.skew:
            off = 0 if self.cfg.dataflow is Dataflow.OS else self.cfg.array_rows
            return base + np.arange(rel.size, dtype=np.int64) + self.corrections(g)[rel - off]
        R = self.cfg.array_rows
        fr = f % self.row_folds
        # a preload: block rows fr*R + R - 1 - rel (bottom first), then the array's columns
        rows = self.below(g, fr * R + R - 1 - np.arange(R, dtype=np.int64))
        rank = np.arange(rel.size, dtype=np.int64) - np.searchsorted(rel, rel)
        return base + rows[rel] + rank

    def below(self, g: int, t: np.ndarray) -> np.ndarray:
        """Row-by-row read-out: valid entries of block ``g`` in its rows before ``t``."""
        sp, cfg = self.sp, self.cfg
        if self.operand == "filter":   # WS: block fc, rows k, columns filters (valid: a prefix)
            cols = min(cfg.array_cols, sp.m - g * cfg.array_cols)
            return t * cols
        # IS IFMAP: block fc, rows window indices, columns pixels
        p = g * cfg.array_cols + np.arange(cfg.array_cols, dtype=np.int64)
        p = p[p < sp.npix]
        return valid_before(sp, p[None, :], np.asarray(t)[..., None]).sum(axis=-1)

    def below_at(self, g: int, t: int) -> int:
        """:meth:`below` at one row, in plain integers where no window of the block is cut (each of its
        pixels then reads every index)."""
        sp, C = self.sp, self.cfg.array_cols
        if self.operand == "filter":
            return t * min(C, sp.m - g * C)
        pix = range(g * C, min(g * C + C, sp.npix))
        if all(sp.h - (p // sp.ew) * sp.sh >= sp.r and sp.w - (p % sp.ew) * sp.sw >= sp.s for p in pix):
            return t * len(pix)
        return int(self.below(g, np.array([t], dtype=np.int64))[0])


def rooms(sp: Shape, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kernel rows and columns of pixel ``p``'s window that lie inside the input (a window may start
    past it)."""
    orow, ocol = np.divmod(p, sp.ew)
    return (np.minimum(np.maximum(sp.h - orow * sp.sh, 0), sp.r), np.minimum(np.maximum(sp.w - ocol * sp.sw, 0), sp.s))


def valid_before(sp: Shape, p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Window indices below ``k`` (``0 <= k <= K``) that pixel ``p`` reads inside the input."""
    rr, rc = rooms(sp, p)
    kr, rem = np.divmod(k, sp.s * sp.c)
    kc, ch = np.divmod(rem, sp.c)
    inrow = np.minimum(kc, rc) * sp.c + np.where(kc < rc, ch, 0)
    return np.minimum(kr, rr) * rc * sp.c + np.where(kr < rr, inrow, 0)


def entry_valid(sp: Shape, cfg: ScaleSimConfig, operand: str, T: int, rows: np.ndarray,
                cols: np.ndarray) -> np.ndarray:
    """Whether fetch-matrix entries (global row, column) hold an address (:class:`HomeMap.valid`)."""
    R, C = cfg.array_rows, cfg.array_cols
    g, t = np.divmod(rows, T)
    flow = cfg.dataflow
    if operand == "filter":
        if flow is Dataflow.IS:   # block fr: rows filters, columns window indices fr*R + c
            return np.broadcast_to(g * R + cols < sp.window, np.broadcast_shapes(rows.shape, cols.shape))
        return np.broadcast_to(g * C + cols < sp.m, np.broadcast_shapes(rows.shape, cols.shape))
    if flow is Dataflow.WS:       # block fr: rows pixels, columns window indices fr*R + c
        p, k = t, g * R + cols
    else:                          # OS: block fr of pixels fr*R + c; IS: block fc of pixels fc*C + c
        p, k = g * (R if flow is Dataflow.OS else C) + cols, t
    inb = (p < sp.npix) & (k < sp.window)
    p, k = np.minimum(p, sp.npix - 1), np.minimum(k, sp.window - 1)
    # per pixel and per window index once (tables), gathered at full size
    lo_p, lo_k = int(p.min()), int(k.min())
    rr, rc = rooms(sp, np.arange(lo_p, int(p.max()) + 1, dtype=np.int64))
    kr, rem = np.divmod(np.arange(lo_k, int(k.max()) + 1, dtype=np.int64), sp.s * sp.c)
    p, k = p - lo_p, k - lo_k
    return inb & (kr[k] < rr[p]) & (rem[k] // sp.c < rc[p])


def home_map(sp: Shape, cfg: ScaleSimConfig, operand: str) -> HomeMap:
    """The fetch matrix's folds and every demand fold's home range, in closed form (no entry built)."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    gr = fold_grid(sp, cfg)
    rf, cf = gr.row_folds, gr.col_folds
    ifmap = operand == "ifmap"
    # (blocks, rows per block, columns, skewed) of each matrix (user.fetch_orders)
    F, T, n, skew = {
        (Dataflow.OS, "ifmap"): (rf, K, R, True), (Dataflow.OS, "filter"): (cf, K, C, True),
        (Dataflow.WS, "ifmap"): (rf, P, R, True), (Dataflow.WS, "filter"): (cf, K, C, False),
        (Dataflow.IS, "ifmap"): (cf, K, C, False), (Dataflow.IS, "filter"): (rf, M, R, True)}[(flow, operand)]
    blocks = np.arange(F, dtype=np.int64)
    if not ifmap:   # valid columns: a prefix, the same for every row of a block
        bound = K if flow is Dataflow.IS else M
        counts = T * np.clip(bound - blocks * n, 0, n)
    elif flow is Dataflow.WS:   # block fr: window indices fr*R .. ; a window index's pixels inside
        k = np.arange(K, dtype=np.int64)
        kr, rem = np.divmod(k, sp.s * sp.c)
        orow, ocol = np.arange(sp.eh, dtype=np.int64), np.arange(sp.ew, dtype=np.int64)
        rows_in = (sp.h - orow[None, :] * sp.sh > kr[:, None]).sum(axis=1)
        cols_in = (sp.w - ocol[None, :] * sp.sw > (rem // sp.c)[:, None]).sum(axis=1)
        per = np.concatenate([rows_in * cols_in, np.zeros(F * R - K, dtype=np.int64)])
        counts = per.reshape(F, R).sum(axis=1)
    else:   # blocks of n pixels, each its window's valid indices
        per = valid_before(sp, np.arange(P, dtype=np.int64), np.full(P, K, dtype=np.int64))
        counts = np.concatenate([per, np.zeros(F * n - P, dtype=np.int64)]).reshape(F, n).sum(axis=1)
    cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    f = np.arange(rf * cf, dtype=np.int64)
    fc, fr = np.divmod(f, rf)   # demand folds: column folds outer, row folds inner
    preload = not skew
    block_of = fc if (flow, operand) in ((Dataflow.OS, "filter"), (Dataflow.WS, "filter"),
                                         (Dataflow.IS, "ifmap")) else fr
    if preload:   # rows fr*R .. fr*R + R - 1 of the block: an exact range
        bnd = np.minimum(np.arange(rf + 1, dtype=np.int64) * R, T)
        if not ifmap:
            below = bnd[None, :] * np.clip(M - blocks * C, 0, C)[:, None]
        else:
            p = blocks[:, None] * C + np.arange(C, dtype=np.int64)
            inb = p < P
            below = (valid_before(sp, np.minimum(p, P - 1)[:, None, :], bnd[None, :, None])
                     * inb[:, None, :]).sum(axis=-1)
        lo = cum[block_of] + below[block_of, fr]
        hi = cum[block_of] + below[block_of, fr + 1]
    else:
        tri = n * (n - 1) // 2   # entries of neighbouring blocks interleaved with a block's own
        empty = counts[block_of] == 0
        lo = np.where(empty, 0, cum[block_of] - tri)
        hi = np.where(empty, 0, cum[block_of + 1] + tri)
    return HomeMap(sp, cfg, operand, skew, F, T, n, cum, block_of, lo, hi, rf,
                   interleaved(sp, cfg, operand, F, T, n, counts == T * n) if skew else (np.zeros(0), np.zeros(0)))


def interleaved(sp: Shape, cfg: ScaleSimConfig, operand: str, F: int, T: int, n: int,
                full: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For every block of a skewed read-out, at once: the valid entries of the ``n - 1`` rows above it
    read at or after its ``j``-th diagonal, and those of the ``n - 1`` rows below it read at or before
    its ``(T + j)``-th (``j < n - 1``; rows outside the matrix hold nothing). ``full``: which blocks hold
    an address in every entry; a block between two of them (its neighbours' rows all valid) takes the
    counts of all entries, and only the others are looked at."""
    if n == 1:
        return np.zeros((F, 0), dtype=np.int64), np.zeros((F, 0), dtype=np.int64)
    if full is not None and T >= n - 1:   # the rows above and below lie in the neighbouring blocks
        pad = np.concatenate([[False], full, [False]])
        gs = np.flatnonzero(~(pad[:-2] & pad[2:]))
    else:
        gs = np.arange(F, dtype=np.int64)
    g = gs[:, None, None]
    i = np.arange(n - 1, dtype=np.int64)[None, :, None]
    c = np.arange(n, dtype=np.int64)[None, None, :]
    slot = np.arange(gs.size, dtype=np.int64)[:, None, None] * (2 * n)
    out: list[np.ndarray] = []
    # rows above block g, by how far past its first diagonal each entry is read (-(n - 1) .. n - 2);
    # rows below, by how far past its diagonal T (0 .. 2n - 3)
    for rows, rel, lo in ((g * T - (n - 1) + i, i - (n - 1) + c, -(n - 1)), ((g + 1) * T + i, i + c, 0)):
        ok = (rows >= 0) & (rows < F * T)
        ok = ok & entry_valid(sp, cfg, operand, T, np.minimum(np.maximum(rows, 0), F * T - 1), c)
        idx = (slot + np.broadcast_to(rel - lo, ok.shape))[ok]
        hist = np.bincount(idx, minlength=gs.size * 2 * n).reshape(gs.size, 2 * n)
        every = np.bincount((rel - lo).ravel(), minlength=2 * n)[None, :]   # a block between full ones
        got = []
        for h in (every, hist):
            if out:   # below: read at or before diagonal T + j
                got.append(np.cumsum(h, axis=1)[:, : n - 1])
            else:     # above: read at or after diagonal j (offset n - 1 in the histogram)
                got.append(np.cumsum(h[:, ::-1], axis=1)[:, ::-1][:, n - 1: 2 * n - 2])
        res = np.repeat(got[0], F, axis=0)
        res[gs] = got[1]
        out.append(res)
    return out[0], out[1]


class FoldCache:
    """Demand folds built once: ``(rows within the fold, addresses, homes)`` by pattern (a pattern's
    homes are its own: folds of one pattern cover the same block), at most ``PREPARED_BYTES`` held."""

    def __init__(self, fb: FoldBlocks, hm: HomeMap) -> None:
        self.fb, self.hm = fb, hm
        self.folds: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.held = 0

    def get(self, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = self.fb.keys[f]
        got = self.folds.get(key)
        if got is None:
            rel, addrs = self.fb.block(key)
            got = (rel, addrs, self.hm.homes(f, rel))
            size = 3 * rel.nbytes
            if self.held + size > PREPARED_BYTES:
                self.folds.clear()
                self.held = 0
            self.folds[key] = got
            self.held += size
        return got


def first_missing_run(win: OrderWindows, s0: int, sf: StreamFold, i: int, j: int) -> int:
    """The first of demands ``i .. j - 1`` of ``sf`` whose address the window from set ``s0`` does not
    hold, or -1; read in growing batches, since the first miss is usually near. While the misses come
    at a run's first demand (a stem whose windows share little), that demand is looked for in the
    window's slice instead of stamping the window's addresses for it alone."""
    if win.probe and win.filled != s0:
        if not win.holds(s0, sf.addr_at(i)):
            return i
        win.probe = False
    step = 64
    start = i
    while i < j:
        e = min(j, i + step)
        q = win.first_absent(s0, sf.addrs(i, e))
        if q >= 0:
            win.probe = i + q == start
            return i + q
        i, step = e, step * 4
    return -1


def next_window(one: int, k: int, p_sets: int, n_sets: int, a_sets: int, win: OrderWindows | None,
                addr: int) -> int:
    """After ``k`` prefetches, a demand whose address's own set is ``one`` missed: the count of
    prefetches after which the window first holds the address (its own set, or another copy).

    Windows move forward by at most their own size, so past the next window the first to hold the
    address is the first to reach its first copy after that window's end (the order read once up to
    the own set, in growing chunks: a column fold's first miss may wait for dozens of windows)."""
    k1 = k + 1
    s1 = (k1 * p_sets) % n_sets
    if (one - s1) % n_sets < a_sets or (win is not None and win.holds(s1, addr)):
        return k1
    target = one if win is None else win.first_set((s1 + a_sets) % n_sets, one, addr)
    while (target - (k1 * p_sets) % n_sets) % n_sets >= a_sets:
        k1 += 1
    return k1


SHORT_STEPS = 8   # steps per array column below which a stream fold's addresses are built, not sliced


NO_CUT = np.zeros(0, dtype=np.int64)   # a filter's stream folds: no slot is cut
NO_CUT.flags.writeable = False
BOUNDS = {(Dataflow.OS, "ifmap"): "npix", (Dataflow.WS, "ifmap"): "window", (Dataflow.IS, "filter"): "window",
          (Dataflow.OS, "filter"): "m"}   # the operand index along a stream fold's columns, by its bound


def stream_fold(hm: HomeMap, f: int, fb: FoldBlocks, folds: dict[int, StreamFold], cuts: CutSlots | None,
                order: np.ndarray | None) -> StreamFold:
    """Stream fold ``f``'s demands by index in closed form (:class:`~hwsim.scalesim.streamfold.
    StreamFold`, one per block, kept in ``folds``; ``cuts``: an IFMAP's cut slots, None for a filter's,
    which has none); ``order``: the
    built fetch order where the demands' addresses are looked at (duplicates), else None. A short
    fold's addresses (fewer than ``SHORT_STEPS`` steps per column) are built (``fb``) and kept instead:
    most of its demands lie on its first and last diagonals, where they are no slice of the order."""
    g = int(hm.block_of[f])
    sf = folds.get(g)
    if sf is None:
        flow = hm.cfg.dataflow
        bound = getattr(hm.sp, BOUNDS[(flow, hm.operand)])
        w, T = min(hm.width, max(0, bound - g * hm.width)), hm.steps
        cut = cuts(g, w, T) if cuts is not None and hm.operand == "ifmap" else NO_CUT
        off = 0 if flow is Dataflow.OS else hm.cfg.array_rows
        dem = fb.block(fb.keys[f])[1] if order is not None and T < SHORT_STEPS * hm.width else None
        sf = folds[g] = StreamFold.build(g, w, T, off, int(hm.cum[g]), (-hm.ends[0][g]).tolist(),
                                         hm.ends[1][g].tolist(), hm.width, cut, order, dem)
    return sf


def stream_misses(sf: StreamFold, win: OrderWindows | None, k: int, sets: tuple[int, int, int, int],
                  misses: list[tuple[int, int]]) -> int:
    """The misses of stream fold ``sf`` (homes strictly increasing in service order) after ``k``
    prefetches, appended as ``(row within the fold, prefetches)``; returns the prefetches after it.

    The demands outside a window are runs of the fold (before its first set, past its last): each run's
    first is a miss where every address is held once; otherwise the run's demands are checked against
    the window's other copies in growing batches (a large fold: only those batches built, a demand's
    home and row closed forms: :class:`~hwsim.scalesim.streamfold.StreamFold`)."""
    eps, n_sets, a_sets, p_sets = sets
    nd, home_at, first_ge = sf.n, sf.home, sf.first_ge
    pos = 0
    while pos < nd:
        s0 = (k * p_sets) % n_sets
        at = home_at(pos) // eps
        e = s0 + a_sets
        if e <= n_sets:   # the window is sets s0 .. e - 1
            if at < s0:
                i, j = pos, first_ge(s0 * eps, pos)
            elif at < e:
                i, j = first_ge(e * eps, pos), nd
            else:
                i, j = pos, nd
        else:             # sets s0 .. N - 1 and 0 .. e - N - 1
            e -= n_sets
            if at >= s0:
                break
            if at < e:
                i = first_ge(e * eps, pos)
                j = first_ge(s0 * eps, i)
            else:
                i, j = pos, first_ge(s0 * eps, pos)
        if i >= nd:
            break
        q = i
        if win is not None:
            q = first_missing_run(win, s0, sf, i, j)
            if q < 0:
                pos = j
                continue
        addr = sf.addr_at(q) if win is not None else -1
        k1 = next_window(home_at(q) // eps, k, p_sets, n_sets, a_sets, win, addr)
        misses.append((sf.row(q), k1 - k))
        k = k1
        pos = q + 1
    return k


def prefetches_again(order: FetchOrder, kb: int) -> bool:
    """Whether a read buffer of ``kb`` kB moves its window at all (else no home is ever looked at)."""
    return window_sets(order.held if order.held is not None else order.addrs.size, kb)[3] > 0


RUN_DEMANDS = 2**18   # demands of the preloaded folds read at once where a run of them is not skipped


def run_homes(fb: FoldBlocks, hm: HomeMap, f0: int, f1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preloaded demand folds ``f0 .. f1 - 1`` at once (``FoldBlocks.span``, blocks crossed): rows from
    fold ``f0``'s first, addresses and homes (each fold's rows bottom first, then the array's columns)."""
    rows, addrs = fb.span(f0, f1)
    R = hm.cfg.array_rows
    start = np.flatnonzero(np.diff(rows, prepend=-1))           # a row's demands are consecutive
    f, rel = np.divmod(rows[start], fb.fold_rows)
    f += f0
    g = hm.block_of[f]
    t = (f % hm.row_folds) * R + R - 1 - rel                     # the block row of each demand row
    sp, cfg = hm.sp, hm.cfg
    if hm.operand == "filter":   # WS: block fc's valid columns, the same in every row
        below = t * np.clip(sp.m - g * cfg.array_cols, 0, cfg.array_cols)
    else:                        # IS IFMAP: each of the block's pixels' valid window indices below t
        p = g[:, None] * cfg.array_cols + np.arange(cfg.array_cols, dtype=np.int64)
        below = (valid_before(sp, np.minimum(p, sp.npix - 1), t[:, None]) * (p < sp.npix)).sum(axis=1)
    sizes = np.diff(np.append(start, rows.size))
    first = hm.cum[g] + below - start                            # home of a row's first demand, less its index
    return rows, addrs, np.repeat(first, sizes) + np.arange(rows.size, dtype=np.int64)


def preload_misses(hm: HomeMap, f: int, k: int, sets: tuple[int, int, int, int],
                   misses: list[tuple[int, int]]) -> int:
    """The misses of a WS filter fold after ``k`` prefetches (as :func:`stream_misses`): its rows, bottom
    first, each hold ``w`` consecutive homes (block row ``t`` at ``cum + t * w``), so each row's first
    demand outside the window is arithmetic, and so are the rows wholly inside it (skipped at once:
    rows lower in the fold hold lower homes); nothing is built."""
    eps, n_sets, a_sets, p_sets = sets
    R, C = hm.cfg.array_rows, hm.cfg.array_cols
    g, fr = int(hm.block_of[f]), f % hm.row_folds
    w = min(C, hm.sp.m - g * C)
    rows_in = min(R, hm.steps - fr * R)
    base = int(hm.cum[g])
    a = rows_in - 1
    while a >= 0:
        h, h_end = base + (fr * R + a) * w, base + (fr * R + a + 1) * w
        s0 = (k * p_sets) % n_sets
        e = s0 + a_sets
        if h >= s0 * eps and (e > n_sets or h_end <= e * eps):   # inside, as are the rows below it that
            a = -(-(s0 * eps - base) // w) - fr * R - 1          # start at or past the window's first set
            continue
        if e > n_sets and h_end <= (e - n_sets) * eps:   # inside the window's wrapped part, as is all below
            break
        while h < h_end:
            s0 = (k * p_sets) % n_sets
            at = h // eps
            e = s0 + a_sets
            if (at - s0) % n_sets < a_sets:   # inside: jump to the window's end within this row
                last = e if e <= n_sets else (e - n_sets if at < s0 else n_sets)
                h = max(h, last * eps)
                if h >= h_end or last == n_sets:
                    break
                continue
            k1 = k + 1
            while (at - (k1 * p_sets) % n_sets) % n_sets >= a_sets:
                k1 += 1
            misses.append((R - 1 - a, k1 - k))
            k = k1
            h += 1
        a -= 1
    return k


def preload_home(fb: FoldBlocks, hm: HomeMap, f0: int, rows: np.ndarray, q: int) -> int:
    """The home of demand ``q`` of preloaded folds from ``f0`` (``rows`` from fold ``f0``'s first, a
    row's demands consecutive): its block's valid entries before its row, plus its rank in the row."""
    f, rel = divmod(int(rows[q]), fb.fold_rows)
    f += f0
    g = int(hm.block_of[f])
    t = (f % hm.row_folds) * hm.cfg.array_rows + hm.cfg.array_rows - 1 - rel
    start = int(np.searchsorted(rows, rows[q]))
    return int(hm.cum[g]) + hm.below_at(g, t) + q - start


def replay_homes(fb: FoldBlocks, hm: HomeMap | None, order: FetchOrder, kb: int, bw: int) -> Prefetches:
    """SCALE-Sim's USER-mode read buffer on an operand's demand folds (``fb``, in service order), reading
    only the folds where a miss may happen: :func:`~hwsim.scalesim.user.replay_prefetches`'s result.

    ``order`` gives the fetch order's slots and valid count; its addresses are needed (and built) only
    where an address can be held more than once (an IFMAP whose windows overlap), to check the demands
    whose home is outside the window. A fold's pattern at a window's first set misses the same way each
    time (replayed from a table, as in ``replay_prefetches``). ``hm`` may be None where nothing is
    prefetched again (the order fits the window: :func:`prefetches_again`).
    """
    fetch_size = order.size
    total = kb * 1024
    active = -(-total // 2)
    cnt = order.held if order.held is not None else order.addrs.size
    eps, n_sets, a_sets, p_sets = window_sets(cnt, kb)
    first_lines = min(-(-active // bw), -(-fetch_size // bw))
    lines = -(-(total - active) // bw)
    gap = lines + READ_LATENCY_CYCLES
    rows: list[int] = []
    counts: list[int] = []
    k = 0
    if p_sets > 0:
        if hm is None:
            raise ValueError("replay_homes needs the home map of an order that is prefetched again")
        distinct = bool(order.distinct)
        cache = FoldCache(fb, hm)
        win: OrderWindows | None = None
        if not distinct:
            if order.held is not None:
                raise ValueError("an order that may hold an address twice must be built")
            win = OrderWindows(order, eps, n_sets, a_sets)

        def inside(sets: np.ndarray, s0: int) -> np.ndarray:
            """Which sets lie in the window from set ``s0``."""
            if s0 + a_sets <= n_sets:
                return (sets >= s0) & (sets < s0 + a_sets)
            return (sets >= s0) | (sets < s0 + a_sets - n_sets)

        lo_s = np.maximum(hm.lo, 0) // eps
        hi_s = np.maximum(hm.hi - 1, 0) // eps
        whole = (hm.hi - hm.lo) >= a_sets * eps   # never inside a window: always read
        empty = hm.hi <= hm.lo
        lo_s, hi_s = np.minimum(lo_s, n_sets - 1), np.minimum(hi_s, n_sets - 1)
        n_f = len(fb.keys)
        folds: dict[int, StreamFold] = {}
        cuts = CutSlots(hm.sp, hm.cfg) if hm.operand == "ifmap" and hm.skew else None
        addrs = order.addrs if win is not None else None
        plain_preload = hm.operand == "filter" and not hm.skew   # rows of w entries, all valid
        memo: dict[tuple[Hashable, int], tuple[list[tuple[int, int]], int]] = {}
        lo_l, hi_l, whole_l, empty_l = lo_s.tolist(), hi_s.tolist(), whole.tolist(), empty.tolist()
        f, run = 0, 1
        while f < n_f:
            s_in = (k * p_sets) % n_sets
            # the next fold whose homes may leave the window: a few in plain integers (it is usually
            # near), then vectorized in growing steps
            e_in = s_in + a_sets
            lim = min(n_f, f + 16)
            while f < lim and (empty_l[f] or (not whole_l[f] and (
                    (lo_l[f] >= s_in and hi_l[f] < e_in) if e_in <= n_sets
                    else (lo_l[f] >= s_in or hi_l[f] < e_in - n_sets)))):
                f += 1
            step = 64
            while lim <= f < n_f:
                end = min(n_f, f + step)
                a, b = lo_s[f:end], hi_s[f:end]
                if s_in + a_sets <= n_sets:
                    ok = (a >= s_in) & (b < s_in + a_sets)
                else:
                    e = s_in + a_sets - n_sets
                    ok = (a >= s_in) | (b < e)
                out = np.flatnonzero(~((ok & ~whole[f:end]) | empty[f:end]))
                if out.size:
                    f += int(out[0])
                    break
                f, step = end, step * 4
            if f >= n_f:
                break
            key = fb.keys[f]
            row0 = f * fb.fold_rows
            got = memo.get((key, s_in))
            if got is not None:
                for rel, c in got[0]:
                    add_prefetches(rows, counts, row0 + rel, c)
                k += got[1]
                f += 1
                continue
            k_in = k
            misses: list[tuple[int, int]] = []
            if hm.skew:   # homes increase in service order: the demands outside the window are runs
                k = stream_misses(stream_fold(hm, f, fb, folds, cuts, addrs), win, k, (eps, n_sets, a_sets, p_sets), misses)
                for rel, c in misses:
                    add_prefetches(rows, counts, row0 + rel, c)
                memo[(key, s_in)] = (misses, k - k_in)
                f += 1
                continue
            if plain_preload:   # a WS filter fold: rows of consecutive homes, found without building it
                k = preload_misses(hm, f, k, (eps, n_sets, a_sets, p_sets), misses)
                for rel, c in misses:
                    add_prefetches(rows, counts, row0 + rel, c)
                memo[(key, s_in)] = (misses, k - k_in)
                f += 1
                continue
            # a preload: a run of the block's folds at once (their homes are not in service order)
            # a run grows while its folds hold no miss (copies elsewhere in the window: an IFMAP), and
            # starts again at one fold after a miss
            f1 = min(f + run, n_f)
            if win is not None:   # duplicates: the window's bitmap decides every demand; a miss's home alone
                rel_rows, dem = fb.span(f, f1) if f1 > f + 1 else fb.block(key)
                n = dem.size
            else:
                rel_rows, dem, homes = run_homes(fb, hm, f, f1) if f1 > f + 1 else cache.get(f)
                sets = homes // eps
                n = sets.size
            pos, chunk = 0, 2048
            while pos < n:
                s0 = (k * p_sets) % n_sets
                end = min(n, pos + chunk)
                if win is not None:
                    bad = np.flatnonzero(~win.member(s0, dem[pos:end]))
                else:
                    bad = np.flatnonzero(~inside(sets[pos:end], s0))
                if bad.size == 0:
                    pos, chunk = end, chunk * 2
                    continue
                q = pos + int(bad[0])
                one = preload_home(fb, hm, f, rel_rows, q) // eps if win is not None else int(sets[q])
                k1 = next_window(one, k, p_sets, n_sets, a_sets, win, int(dem[q]))
                rel = int(rel_rows[q])
                add_prefetches(rows, counts, row0 + rel, k1 - k)
                misses.append((rel, k1 - k))
                k = k1
                pos, chunk = q + 1, 2048
            if f1 == f + 1:
                memo[(key, s_in)] = (misses, k - k_in)
            run = 1 if misses else min(8 * run, max(1, RUN_DEMANDS // max(1, n // (f1 - f))))
            f = f1
    return Prefetches(np.asarray(rows, dtype=np.int64), np.asarray(counts, dtype=np.int64), gap,
                      -first_lines, -1 + k * gap, (first_lines + k * lines) * bw)
