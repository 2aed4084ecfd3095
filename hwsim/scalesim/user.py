"""USER mode's read buffers: SCALE-Sim 3.0.0's prefetching IFMAP and filter buffers at the user's
bandwidths, replayed on the demand streams (which demands miss depends on addresses only; what a miss
costs, on the cycle it happens at: :func:`read_stall`, called by :func:`~hwsim.scalesim.timeline.run_stream`).

Quirks reproduced (docs/scalesim.md, "USER mode"): the read bandwidths are the ``[layout]`` bank
bandwidths; a buffer holds its "prefetch matrix" (anti-diagonal read-out for OS IFMAP / filter, WS
IFMAP and IS filter) cut into sets; prefetches run back to back from the previous one's completion;
a late prefetch's lateness counts twice and an early one moves the row's service cycle back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..accelerator import Dataflow
from .config import READ_LATENCY_CYCLES, SETS_PER_BUFFER, ScaleSimConfig
from .folds import fold_grid
from .replay import Block, Stream, ifmap_parts
from .topology import Shape

__all__ = ["FetchOrder", "window_sets", "distinct_ifmap", "held_addresses", "fetch_orders", "Prefetches", "Chunk", "user_prefetches", "replay_prefetches", "read_stall", "skewed",
           "rollout", "rollout_sorted"]


PREPARED_BYTES = 64 * 2**20   # demand patterns a USER-mode read buffer keeps checked at once


@dataclass(frozen=True, slots=True)
class FetchOrder:
    """The order in which a USER-mode read buffer holds addresses: the valid ``addrs`` of its prefetch
    matrix in order, ``size``, the matrix's slots with its null ones, and whether each address is held
    once (``None``: not known; a filter's always is)."""

    addrs: np.ndarray
    size: int
    distinct: bool | None = None
    held: int | None = None   # valid addresses where ``addrs`` is left empty: the order fits the active
                              # half, so no address of it is ever looked at


def add_prefetches(rows: list[int], counts: list[int], row: int, count: int) -> None:
    """Record ``count`` prefetches at demand row ``row`` (rows come in order; one row's are summed)."""
    if rows and rows[-1] == row:
        counts[-1] += count
    else:
        rows.append(row)
        counts.append(count)


def window_sets(held: int, kb: int) -> tuple[int, int, int, int]:
    """A read buffer of ``kb`` kB holding ``held`` addresses: addresses per set, sets, sets in the active
    window, sets a new prefetch moves it by (0: the whole order fits the window, nothing is prefetched
    again)."""
    total = kb * 1024
    active = -(-total // 2)
    eps = -(-total // SETS_PER_BUFFER)
    n_sets = held // eps + 1
    a_sets = min(-(-active // eps), n_sets)
    return eps, n_sets, a_sets, min(-(-(total - active) // eps), n_sets - a_sets)


def held_addresses(sp: Shape) -> tuple[int, int]:
    """How many valid addresses the IFMAP and filter prefetch matrices hold: every (pixel, window index)
    pair once, less those whose window runs past the input; every filter entry once."""
    rows = sum(max(0, min(sp.r, sp.h - e * sp.sh)) for e in range(sp.eh))   # a window may start past it
    cols = sum(max(0, min(sp.s, sp.w - e * sp.sw)) for e in range(sp.ew))
    return rows * cols * sp.c, sp.window * sp.m


def skewed(vals: np.ndarray, fill: int) -> np.ndarray:
    """``vals`` (``m x n``) with column ``c`` shifted down by ``c`` rows into ``m + n - 1`` rows, ``fill``
    in the corners, read row by row: the anti-diagonals in :func:`rollout`'s order with ``fill`` between
    them (a fetch order whose null slots are ``-1`` drops them together with its own)."""
    m, n = vals.shape
    skew = np.full((m + n - 1, n), fill, dtype=vals.dtype)
    for c in range(n):
        skew[c: c + m, c] = vals[:, c]
    return skew.ravel()


def rollout(vals: np.ndarray) -> np.ndarray:
    """A matrix read out along its anti-diagonals (first to last), each from its lowest row up:
    :func:`skewed` without the corners. No entry's place is computed (:func:`rollout_sorted`, the
    definition, is tested equal)."""
    m, n = vals.shape
    mask = np.zeros((m + n - 1, n), dtype=bool)
    for c in range(n):
        mask[c: c + m, c] = True
    return skewed(vals, 0)[mask.ravel()]


def rollout_sorted(vals: np.ndarray) -> np.ndarray:
    """:func:`rollout` by its definition: the entries sorted by anti-diagonal, then row from the lowest."""
    m, n = vals.shape
    r, c = np.divmod(np.arange(m * n, dtype=np.int64), n)
    return vals.ravel()[np.argsort((r + c) * m + (m - 1 - r), kind="stable")]


def skew_view(lead: int, t: int, n: int, fill: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """:func:`skewed` of a ``lead * t x n`` matrix not yet computed: the flat read-out (``fill`` in its
    corners) and a writable ``lead x t x n`` view of the matrix's places in it (entry ``(r, c)`` at
    ``(r + c) * n + c``), so the entries are written once, where they are read out."""
    m = lead * t
    flat: np.ndarray = np.empty((m + n - 1) * n, dtype=dtype)
    col = np.arange(n, dtype=np.int64)
    head = flat[: (n - 1) * n].reshape(n - 1, n)
    head[col[None, :] > col[: n - 1, None]] = fill           # rows d < n - 1: columns past d
    tail = flat[m * n:].reshape(n - 1, n)
    tail[col[None, :] <= col[: n - 1, None]] = fill          # rows m + j: columns up to j
    it = flat.itemsize
    return flat, as_strided(flat, shape=(lead, t, n), strides=(t * n * it, n * it, (n + 1) * it), writeable=True)


def skew_valid(flat: np.ndarray, m: int, n: int) -> np.ndarray:
    """The entries of :func:`skew_view`'s read-out of an ``m x n`` matrix with no null entry: its
    corners' entries moved next to its full middle rows, which are left in place (a view of ``flat``,
    no copy of the ``m - n + 1`` full rows)."""
    if m < 2 * n:   # the corners overlap or are most of it
        return flat[flat >= 0]
    col = np.arange(n, dtype=np.int64)
    tri = n * (n - 1) // 2
    head = flat[: (n - 1) * n].reshape(n - 1, n)[col[None, :] <= col[: n - 1, None]]
    tail = flat[m * n:].reshape(n - 1, n)[col[None, :] > col[: n - 1, None]]
    flat[(n - 1) * n - tri: (n - 1) * n] = head
    flat[m * n: m * n + tri] = tail
    return flat[(n - 1) * n - tri: m * n + tri]


def ifmap_dtype(sp: Shape, cfg: ScaleSimConfig) -> type:
    """The narrowest of int32 and int64 that holds every IFMAP address (half the memory traffic)."""
    return np.int32 if sp.h * sp.w * sp.c + cfg.ifmap_offset < 2**31 - 1 else np.int64


def ifmap_matrix(sp: Shape, cfg: ScaleSimConfig, out: np.ndarray, pixels_across: bool) -> bool:
    """Write an IFMAP prefetch matrix of ``F x T x n`` (blocks, rows, columns) into ``out``: with
    ``pixels_across`` (OS, IS) pixel ``f*n + c`` at window index ``t``, else (WS) pixel ``t`` at window
    index ``f*n + c``. Each entry is its pixel's window corner plus its index's offset, added at full
    size once; -1 at columns past the operand and where the window leaves the input, set only on the
    pixels whose window the input's edge cuts. Returns whether any entry was set to -1."""
    F, T, n = out.shape
    ip = ifmap_parts(sp, cfg)
    across = np.arange(F, dtype=np.int64)[:, None] * n + np.arange(n, dtype=np.int64)
    bound = sp.npix if pixels_across else sp.window
    ac = np.minimum(across, bound - 1)
    if pixels_across:
        np.add(ip.pbase[ac][:, None, :].astype(out.dtype), ip.koff[:T][None, :, None].astype(out.dtype), out=out)
        cut = np.flatnonzero((ip.room_r < sp.r) | (ip.room_c < sp.s))   # pixels whose window is cut
        f_i, c_i = np.divmod(cut, n)
        sub = out[f_i, :, c_i]
        ok = (ip.kr[None, :T] < ip.room_r[cut, None]) & (ip.kc[None, :T] < ip.room_c[cut, None])
        out[f_i, :, c_i] = np.where(ok, sub, -1)
    else:
        np.add(ip.koff[ac][:, None, :].astype(out.dtype), ip.pbase[:T][None, :, None].astype(out.dtype), out=out)
        cut = np.flatnonzero((ip.room_r[:T] < sp.r) | (ip.room_c[:T] < sp.s))
        sub = out[:, cut, :]
        ok = ((ip.kr[ac][:, None, :] < ip.room_r[cut][None, :, None])
              & (ip.kc[ac][:, None, :] < ip.room_c[cut][None, :, None]))
        out[:, cut, :] = np.where(ok, sub, -1)
    f_i, c_i = np.nonzero(across >= bound)
    out[f_i, :, c_i] = -1
    return bool(cut.size or f_i.size)


def distinct_ifmap(sp: Shape) -> bool:
    """Whether no two (pixel, window index) pairs read one input element: neighbouring windows share
    nothing along either axis (stride at least the kernel, or one output along it)."""
    return (sp.sh >= sp.r or sp.eh == 1) and (sp.sw >= sp.s or sp.ew == 1)


def fetch_orders(sp: Shape, cfg: ScaleSimConfig, lazy: bool = False) -> tuple[FetchOrder, FetchOrder]:
    """The order in which SCALE-Sim's USER-mode IFMAP and filter buffers hold addresses (its "prefetch
    matrices"); with ``lazy``, an order that holds each address once is not built either (its demands'
    places in it have a closed form: :mod:`.homes`)."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    g = fold_grid(sp, cfg)
    rf, cf = g.row_folds, g.col_folds   # the matrices are laid out by the dataflow's own folds

    def filt(k: np.ndarray, m: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, m * K + k + cfg.filter_offset, -1)

    def axes(*sizes: int) -> list[np.ndarray]:
        """One index array per axis of an array of ``sizes``, shaped to broadcast (addresses are
        computed on the small axes and added up only at full size)."""
        return [np.arange(n, dtype=np.int64).reshape([n if i == j else 1 for j in range(len(sizes))])
                for i, n in enumerate(sizes)]

    flow = cfg.dataflow

    # each matrix's slots (null ones included) and its build; a skewed read-out (the anti-diagonals)
    # is laid out with -1 in its corners, dropped with the null slots
    def i_mat() -> np.ndarray:   # the valid entries (a null one only where some entry is null)
        if flow is Dataflow.IS:
            flat: np.ndarray = np.empty(cf * K * C, dtype=ifmap_dtype(sp, cfg))
            null = ifmap_matrix(sp, cfg, flat.reshape(cf, K, C), True)
            return flat[flat >= 0] if null else flat
        lead, t = (rf, K) if flow is Dataflow.OS else (rf, P)
        flat, view = skew_view(lead, t, R, -1, ifmap_dtype(sp, cfg))
        if ifmap_matrix(sp, cfg, view, flow is Dataflow.OS):
            return flat[flat >= 0]
        return skew_valid(flat, lead * t, R)

    def f_mat() -> np.ndarray:
        if flow is Dataflow.IS:
            fr, t, c = axes(rf, M, R)
            mat = skewed(filt(fr * R + c, t, fr * R + c < K).reshape(rf * M, R), -1)
        else:
            fc, t, c = axes(cf, K, C)
            mat = filt(t, fc * C + c, fc * C + c < M)
            mat = skewed(mat.reshape(cf * K, C), -1) if flow is Dataflow.OS else mat.ravel()
        return mat[mat >= 0]

    i_size = {Dataflow.OS: rf * K * R, Dataflow.WS: rf * P * R, Dataflow.IS: cf * K * C}[flow]
    f_size = rf * M * R if flow is Dataflow.IS else cf * K * C
    out = []
    for build, size, held, kb in ((i_mat, i_size, held_addresses(sp)[0], cfg.ifmap_sram_kb),
                                  (f_mat, f_size, held_addresses(sp)[1], cfg.filter_sram_kb)):
        distinct = True if build is f_mat else (True if lazy and distinct_ifmap(sp) else None)
        if window_sets(held, kb)[3] == 0 or (lazy and distinct):   # never looked at
            out.append(FetchOrder(np.zeros(0, dtype=np.int64), size, distinct, held))
        else:
            out.append(FetchOrder(build(), size, distinct))
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class Prefetches:
    """A USER-mode read buffer's DRAM side: rows whose demands trigger new prefetches (and how many),
    the cycles from one prefetch's completion to the next, and its DRAM trace's start/stop/reads."""

    rows: np.ndarray
    counts: np.ndarray
    gap: int
    dram_start: int
    dram_stop: int
    dram_reads: int


Chunk = tuple[Hashable, int, Callable[[], Block]]   # (pattern or None, first row, its (rows from it, addresses))


def user_prefetches(stream: Stream, order: FetchOrder, kb: int, bw: int) -> Prefetches:
    """Replay SCALE-Sim's USER-mode read buffer on the demand ``stream`` (:func:`replay_prefetches` on
    one chunk, checked demand by demand: the reference)."""
    return replay_prefetches([(None, 0, lambda: (stream.rows, stream.addrs))], order, kb, bw)


def replay_prefetches(chunks: Iterable[Chunk], order: FetchOrder, kb: int, bw: int) -> Prefetches:
    """Replay SCALE-Sim's USER-mode read buffer on its demands, given as consecutive chunks ``(pattern,
    first row, build)`` in service order, ``build()`` giving the chunk's demands (rows from its first,
    addresses), called only when they are read (fold by fold: the whole stream is never held).

    The buffer cuts its fetch order into ``N`` sets of ``ceil(words / 100)`` addresses (duplicates
    included); the active half is a cyclic window of ``A`` sets that advances by ``P`` sets at each new
    prefetch. A demand whose address is in no set of the window triggers new prefetches until it is.
    Which demands miss depends on addresses only, so it is found here once; what a miss costs depends
    on the cycle it happens at, found by :func:`read_stall`.

    A chunk's pattern (a hashable, or None) names its demands. The window is a function of its first
    set alone, so a chunk whose pattern was fed before at the same first set misses at the same demands
    by as many prefetches: those are replayed, the chunk unread. Folds repeat their patterns (an OS
    IFMAP row fold once per column fold), so most demands are never looked at.
    """
    fetch, fetch_size = order.addrs, order.size
    total = kb * 1024
    active = -(-total // 2)
    prefetch = total - active
    cnt = fetch.size if order.held is None else order.held
    eps, n_sets, a_sets, p_sets = window_sets(cnt, kb)
    if p_sets > 0 and order.held is not None:
        raise ValueError(f"a fetch order of {cnt} addresses, more than a {kb} kB buffer's active half, was not built")
    first_lines = min(-(-active // bw), -(-fetch_size // bw))
    lines = -(-prefetch // bw)
    rows: list[int] = []
    counts: list[int] = []
    k = 0
    if p_sets > 0:
        base = int(fetch.min()) if cnt else 0
        span = int(fetch.max()) - base + 1 if cnt else 1
        elems = fetch - base
        # a filter's fetch order holds each address once: a demand is then read as the set holding its
        # address, in the window when that set is; otherwise as its address, in the window when some
        # set of the window holds it (``outside`` marks the others)
        held_times = None if order.distinct else np.bincount(elems, minlength=span)
        unique = order.distinct if order.distinct is not None else (
            cnt == 0 or held_times is None or int(held_times.max()) == 1)
        if unique:
            set_of = np.full(span, -1, dtype=np.int64)
            set_of[elems] = np.arange(cnt, dtype=np.int64) // eps
        else:
            outside = np.ones(span, dtype=bool)

        def holds(s0: int, a: int) -> bool:
            """Whether the window from set ``s0`` holds address ``a`` (relative to the base): its slice
            of the fetch order read, no index of the whole order built."""
            s1 = s0 + a_sets
            if s1 <= n_sets:
                return bool(np.any(elems[s0 * eps: min(s1 * eps, cnt)] == a))
            return bool(np.any(elems[s0 * eps:] == a) or np.any(elems[: min((s1 - n_sets) * eps, cnt)] == a))

        def off_window(seg: np.ndarray, s0: int) -> np.ndarray:
            """Which demands of ``seg`` (sets, or addresses) the window from set ``s0`` does not hold."""
            if not unique:
                return outside[seg]
            if s0 + a_sets <= n_sets:
                return (seg < s0) | (seg >= s0 + a_sets)
            return (seg < s0) & (seg >= s0 + a_sets - n_sets)

        # a pattern's rows and demands (sets, or addresses relative to the base), checked
        prepared: dict[Hashable, Block] = {}
        held = 0
        # (pattern, first set of the window) -> the misses of a fold fed at that window: (row within the
        # fold, prefetches) of each, and the prefetches in all
        memo: dict[tuple[Hashable, int], tuple[list[tuple[int, int]], int]] = {}

        def fill(s0: int, on: bool) -> None:
            """Mark (or unmark) the addresses of the window whose first set is ``s0``."""
            if unique:
                return
            s1 = s0 + a_sets
            if s1 <= n_sets:
                outside[elems[s0 * eps: min(s1 * eps, cnt)]] = not on
            else:
                outside[elems[s0 * eps:]] = not on
                outside[elems[: min((s1 - n_sets) * eps, cnt)]] = not on

        filled = 0   # the window ``outside`` leaves out
        fill(0, True)
        for pattern, row0, build in chunks:
            s_in = (k * p_sets) % n_sets
            got = None if pattern is None else memo.get((pattern, s_in))
            if got is not None:   # this pattern was fed at this window before: the same misses again
                for rel, c in got[0]:
                    add_prefetches(rows, counts, row0 + rel, c)
                k += got[1]
                continue
            prep = None if pattern is None else prepared.get(pattern)
            if prep is None:
                dem_rows, addrs = build()
                dem = addrs - base
                if dem.size and (int(dem.min()) < 0 or int(dem.max()) >= span):
                    bad_at = int(np.flatnonzero((dem < 0) | (dem >= span))[0])
                    raise ValueError(f"address {int(addrs[bad_at])} is demanded but never fetched")
                if unique:
                    dem = set_of[dem]
                    if dem.size and int(dem.min()) < 0:
                        bad_at = int(np.flatnonzero(dem < 0)[0])
                        raise ValueError(f"address {int(addrs[bad_at])} is demanded but never fetched")
                prep = (dem_rows, dem)
                if pattern is not None:
                    size = dem_rows.nbytes + dem.nbytes
                    if held + size > PREPARED_BYTES:
                        prepared.clear()
                        held = 0
                    prepared[pattern] = prep
                    held += size
            dem_rows, dem = prep
            k_in = k
            misses: list[tuple[int, int]] = []
            if dem.size and filled != s_in:
                fill(filled, False)
                fill(s_in, True)
                filled = s_in
            n = dem.size
            pos, chunk = 0, 4096
            while pos < n:
                end = min(n, pos + chunk)
                bad = np.flatnonzero(off_window(dem[pos:end], (k * p_sets) % n_sets))
                if bad.size == 0:
                    pos, chunk = end, chunk * 2
                    continue
                q = pos + int(bad[0])
                k1 = k + 1
                if unique:   # one place: plain integers
                    one = int(dem[q])
                    while (one - k1 * p_sets) % n_sets >= a_sets:
                        k1 += 1
                else:   # every set is in some window (the window moves by at most its own size)
                    a = int(dem[q])
                    if held_times is not None and held_times[a] == 0:
                        raise ValueError(f"address {a + base} is demanded but never fetched")
                    while not holds((k1 * p_sets) % n_sets, a):
                        k1 += 1
                s1 = (k1 * p_sets) % n_sets
                fill(filled, False)
                fill(s1, True)
                filled = s1
                rel = int(dem_rows[q])
                add_prefetches(rows, counts, row0 + rel, k1 - k)
                misses.append((rel, k1 - k))
                k = k1
                pos, chunk = q + 1, 4096
            if pattern is not None:
                memo[(pattern, s_in)] = (misses, k - k_in)
    gap = lines + READ_LATENCY_CYCLES
    return Prefetches(np.asarray(rows, dtype=np.int64), np.asarray(counts, dtype=np.int64), gap,
                       -first_lines, -1 + k * gap, (first_lines + k * lines) * bw)


def read_stall(pf: Prefetches, done: int, count: int, cyc: int) -> int:
    """Stall of a demand row at cycle ``cyc`` whose reads trigger ``count`` new prefetches after
    ``done`` earlier ones. SCALE-Sim issues prefetches back to back from the previous one's
    completion (whatever the demand cycle), and a late one adds its lateness twice; an early one
    moves the row's service cycle back to the prefetch's completion."""
    t = cyc + READ_LATENCY_CYCLES
    if count <= 4:
        for i in range(done + 1, done + count + 1):
            lp = -1 + i * pf.gap
            t = lp if lp <= t else 2 * lp - t
        return t - cyc - READ_LATENCY_CYCLES
    # the lateness d of each prefetch (its completion less the service cycle before it) follows
    # d -> gap if d <= 0 else gap - d, which repeats with period 2 from the third prefetch on; the row
    # ends at the last completion plus its lateness where that is positive
    gap = pf.gap
    d = -1 + (done + 1) * gap - t
    seq = [d]
    for _ in range(3):
        seq.append(gap if seq[-1] <= 0 else gap - seq[-1])
    last = seq[2 + (count - 3) % 2]
    return -1 + (done + count) * gap + max(last, 0) - cyc - READ_LATENCY_CYCLES


