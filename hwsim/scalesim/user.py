"""USER mode's read buffers: SCALE-Sim 3.0.0's prefetching IFMAP and filter buffers at the user's
bandwidths, replayed on the demand streams (which demands miss depends on addresses only; what a miss
costs, on the cycle it happens at: :func:`read_stall`, called by :func:`~hwsim.scalesim.timeline.run_stream`).

Quirks reproduced (docs/scalesim.md, "USER mode"): the read bandwidths are the ``[layout]`` bank
bandwidths; a buffer holds its "prefetch matrix" (anti-diagonal read-out for OS IFMAP / filter, WS
IFMAP and IS filter) cut into sets; prefetches run back to back from the previous one's completion;
a late prefetch's lateness counts twice and an early one moves the row's service cycle back.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from ..accelerator import Dataflow
from .config import READ_LATENCY_CYCLES, SETS_PER_BUFFER, ScaleSimConfig
from .folds import fold_grid
from .replay import Stream, ifmap_addr
from .topology import Shape

__all__ = ["FetchOrder", "fetch_orders", "Prefetches", "Chunk", "user_prefetches", "replay_prefetches", "read_stall", "rollout",
           "rollout_sorted"]


@dataclass(frozen=True, slots=True)
class FetchOrder:
    """The order in which a USER-mode read buffer holds addresses: the valid ``addrs`` of its prefetch
    matrix in order, and ``size``, the matrix's slots with its null ones."""

    addrs: np.ndarray
    size: int


def rollout(vals: np.ndarray) -> np.ndarray:
    """A matrix read out along its anti-diagonals (first to last), each from its lowest row up.

    Each entry's place is counted, not sorted: the entries of the diagonals before its own, plus its
    rows below the diagonal's lowest one (:func:`rollout_sorted`, the definition, is tested equal)."""
    m, n = vals.shape
    d = np.arange(m + n - 1, dtype=np.int64)
    lengths = np.minimum(d, m - 1) - np.maximum(d - n + 1, 0) + 1
    start = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths[:-1])]) + np.minimum(d, m - 1)
    r = np.arange(m, dtype=np.int64)[:, None]
    place = start[r + np.arange(n, dtype=np.int64)] - r
    out = np.empty(m * n, dtype=vals.dtype)
    out[place.ravel()] = vals.ravel()
    return out


def rollout_sorted(vals: np.ndarray) -> np.ndarray:
    """:func:`rollout` by its definition: the entries sorted by anti-diagonal, then row from the lowest."""
    m, n = vals.shape
    r, c = np.divmod(np.arange(m * n, dtype=np.int64), n)
    return vals.ravel()[np.argsort((r + c) * m + (m - 1 - r), kind="stable")]


def fetch_orders(sp: Shape, cfg: ScaleSimConfig) -> tuple[FetchOrder, FetchOrder]:
    """The order in which SCALE-Sim's USER-mode IFMAP and filter buffers hold addresses (its "prefetch
    matrices")."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    g = fold_grid(sp, cfg)
    rf, cf = g.row_folds, g.col_folds   # the matrices are laid out by the dataflow's own folds

    def filt(k: np.ndarray, m: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, m * K + k + cfg.filter_offset, -1)

    def ifm(p: np.ndarray, k: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset), -1)

    def axes(*sizes: int) -> list[np.ndarray]:
        """One index array per axis of an array of ``sizes``, shaped to broadcast (addresses are
        computed on the small axes and added up only at full size)."""
        return [np.arange(n, dtype=np.int64).reshape([n if i == j else 1 for j in range(len(sizes))])
                for i, n in enumerate(sizes)]

    flow = cfg.dataflow
    if flow is Dataflow.OS:
        fr, t, c = axes(rf, K, R)
        i_mat = rollout(ifm(fr * R + c, t, fr * R + c < P).reshape(rf * K, R))
        fc, t, c = axes(cf, K, C)
        f_mat = rollout(filt(t, fc * C + c, fc * C + c < M).reshape(cf * K, C))
    elif flow is Dataflow.WS:
        fr, t, c = axes(rf, P, R)
        i_mat = rollout(ifm(t, fr * R + c, fr * R + c < K).reshape(rf * P, R))
        fc, t, c = axes(cf, K, C)
        f_mat = filt(t, fc * C + c, fc * C + c < M).ravel()
    else:
        fc, k, c = axes(cf, K, C)
        i_mat = ifm(fc * C + c, k, fc * C + c < P).ravel()
        fr, t, c = axes(rf, M, R)
        f_mat = rollout(filt(fr * R + c, t, fr * R + c < K).reshape(rf * M, R))
    return FetchOrder(i_mat[i_mat >= 0], i_mat.size), FetchOrder(f_mat[f_mat >= 0], f_mat.size)


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


Chunk = tuple[np.ndarray, int, np.ndarray, Hashable]   # (rows from base, base row, addresses, pattern or None)


def user_prefetches(stream: Stream, order: FetchOrder, kb: int, bw: int) -> Prefetches:
    """Replay SCALE-Sim's USER-mode read buffer on the demand ``stream`` (:func:`replay_prefetches` on
    one chunk, checked demand by demand: the reference)."""
    return replay_prefetches([(stream.rows, 0, stream.addrs, None)], order, kb, bw)


def replay_prefetches(chunks: Iterable[Chunk], order: FetchOrder, kb: int, bw: int) -> Prefetches:
    """Replay SCALE-Sim's USER-mode read buffer on its demands, given as consecutive chunks ``(rows
    from base, base, addresses, pattern)`` in service order (fold by fold: the whole stream is never held).

    The buffer cuts its fetch order into ``N`` sets of ``ceil(words / 100)`` addresses (duplicates
    included); the active half is a cyclic window of ``A`` sets that advances by ``P`` sets at each new
    prefetch. A demand whose address is in no set of the window triggers new prefetches until it is.
    Which demands miss depends on addresses only, so it is found here once; what a miss costs depends
    on the cycle it happens at, found by :func:`read_stall`.

    A chunk's pattern (a hashable, or None) names its addresses: a chunk whose pattern was once fed
    whole without a miss at the same window position misses nothing again (the window only moves at a
    miss), so it is skipped unread. Folds repeat their patterns (an OS IFMAP row fold once per column
    fold), so most demands are never looked at.
    """
    fetch, fetch_size = order.addrs, order.size
    total = kb * 1024
    active = -(-total // 2)
    prefetch = total - active
    eps = -(-total // SETS_PER_BUFFER)
    cnt = fetch.size
    n_sets = cnt // eps + 1
    a_sets = min(-(-active // eps), n_sets)
    p_sets = min(-(-prefetch // eps), n_sets - a_sets)
    first_lines = min(-(-active // bw), -(-fetch_size // bw))
    lines = -(-prefetch // bw)
    rows: list[int] = []
    counts: list[int] = []
    k = 0
    if p_sets > 0:
        base = int(fetch.min()) if cnt else 0
        span = int(fetch.max()) - base + 1 if cnt else 1
        elems = fetch - base
        inwin = np.zeros(span, dtype=bool)
        by_addr = np.argsort(elems, kind="stable")
        sorted_elems = elems[by_addr]
        clean: set[tuple[Hashable, int]] = set()   # (pattern, first set of the window): fed whole, no miss

        def window(k: int) -> list[slice]:
            s0 = (k * p_sets) % n_sets
            s1 = s0 + a_sets
            if s1 <= n_sets:
                return [slice(s0 * eps, min(s1 * eps, cnt))]
            return [slice(s0 * eps, cnt), slice(0, min((s1 - n_sets) * eps, cnt))]

        def fill(k: int, on: bool) -> None:
            for sl in window(k):
                inwin[elems[sl]] = on

        fill(0, True)
        for dem_rows, row0, addrs, pattern in chunks:
            if addrs.size == 0:
                continue
            state = (pattern, (k * p_sets) % n_sets)
            if pattern is not None and state in clean:
                continue
            k_in = k
            dem = addrs - base
            if int(dem.min()) < 0 or int(dem.max()) >= span:
                bad_at = int(np.flatnonzero((dem < 0) | (dem >= span))[0])
                raise ValueError(f"address {int(addrs[bad_at])} is demanded but never fetched")
            n = dem.size
            pos, chunk = 0, 4096
            while pos < n:
                end = min(n, pos + chunk)
                bad = np.flatnonzero(~inwin[dem[pos:end]])
                if bad.size == 0:
                    pos, chunk = end, chunk * 2
                    continue
                q = pos + int(bad[0])
                a = int(dem[q])
                lo, hi = np.searchsorted(sorted_elems, [a, a + 1])
                if lo == hi:
                    raise ValueError(f"address {a + base} is demanded but never fetched")
                sets = by_addr[lo:hi] // eps
                k1 = k + 1
                while not np.any((sets - k1 * p_sets) % n_sets < a_sets):
                    k1 += 1
                fill(k, False)
                fill(k1, True)
                row = row0 + int(dem_rows[q])
                if rows and rows[-1] == row:
                    counts[-1] += k1 - k
                else:
                    rows.append(row)
                    counts.append(k1 - k)
                k = k1
                pos, chunk = q + 1, 4096
            if pattern is not None and k == k_in:
                clean.add(state)
    gap = lines + READ_LATENCY_CYCLES
    return Prefetches(np.asarray(rows, dtype=np.int64), np.asarray(counts, dtype=np.int64), gap,
                       -first_lines, -1 + k * gap, (first_lines + k * lines) * bw)


def read_stall(pf: Prefetches, done: int, count: int, cyc: int) -> int:
    """Stall of a demand row at cycle ``cyc`` whose reads trigger ``count`` new prefetches after
    ``done`` earlier ones. SCALE-Sim issues prefetches back to back from the previous one's
    completion (whatever the demand cycle), and a late one adds its lateness twice; an early one
    moves the row's service cycle back to the prefetch's completion."""
    t = cyc + READ_LATENCY_CYCLES
    for i in range(done + 1, done + count + 1):
        lp = -1 + i * pf.gap
        t = lp if lp <= t else 2 * lp - t
    return t - cyc - READ_LATENCY_CYCLES


