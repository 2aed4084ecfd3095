"""Where the cycles go: SCALE-Sim's OFMAP write buffer (drains of half the buffer in lines of
``ArrayWidth`` words, one line per cycle, a stall when an output meets a full buffer during a drain),
with USER mode's read-buffer stalls, on a demand stream (:func:`run_stream`, the reference) or on a
layout of folds (:func:`run_layout`, CALC mode's fast path: a few lookups per drain)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .layout import Layout
from .replay import Stream
from .report import OfmapDram
from .user import Prefetches, read_stall

__all__ = ["Timeline", "LineQueue", "ReadBuffers", "run_stream", "Stalls", "DrainPeriods", "run_layout", "PROGRESS_DRAINS"]

PROGRESS_DRAINS = 2048   # drains between two progress reports of run_layout


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where the stalls fell: ``shift[r]`` cycles before demand row ``r`` (``shift[-1]``: all of them),
    each buffer's own stall on the rows it stalled, and the OFMAP buffer's DRAM trace."""

    shift: np.ndarray
    write_stalls: dict[int, int]
    read_stalls: tuple[dict[int, int], ...]
    ofmap_dram: OfmapDram

    def shift_at(self, row: int) -> int:
        return int(self.shift[row])

    def row_cycle(self, row: int) -> int:
        return row + int(self.shift[row])


class LineQueue:
    """The write buffer's queue of DRAM lines: outputs close into segments of ``bw``-word lines, the last
    line of a segment possibly part-filled (SCALE-Sim pads it when it drains), and its drains."""

    __slots__ = ("bw", "lines_per_drain", "first_line", "full", "rem", "n_lines", "start", "pointer", "drained",
                 "first_drain", "last_end", "writes")

    def __init__(self, bw: int, lines_per_drain: int) -> None:
        self.bw = bw
        self.lines_per_drain = lines_per_drain
        self.pointer = 0                  # next line to drain
        self.drained = 0                  # words SCALE-Sim believes drained (padding included)
        self.first_drain: int | None = None
        self.last_end = 0
        self.writes = 0
        self.first_line: list[int] = []   # first line of each segment
        self.full: list[int] = []         # its full lines
        self.rem: list[int] = []          # valid words in its last, partly filled line (0: none)
        self.n_lines = 0
        self.start = 0                    # first output not yet in a segment

    def close(self, upto: int) -> None:
        """Outputs ``[start, upto)`` become lines."""
        cnt = upto - self.start
        if cnt <= 0:
            return
        self.first_line.append(self.n_lines)
        self.full.append(cnt // self.bw)
        self.rem.append(cnt % self.bw)
        self.n_lines += cnt // self.bw + (1 if cnt % self.bw else 0)
        self.start = upto

    def words(self, q: int) -> int:
        """Valid words in line ``q``."""
        k = bisect.bisect_right(self.first_line, q) - 1
        return self.rem[k] if self.rem[k] and q == self.first_line[k] + self.full[k] else self.bw

    @property
    def pending(self) -> bool:
        return self.pointer < self.n_lines

    def drain_at(self, at: int) -> int:
        """One drain from cycle ``at``, a line per cycle (SCALE-Sim's write port has no latency); returns
        its last cycle."""
        end = min(self.pointer + self.lines_per_drain, self.n_lines)
        lines = end - self.pointer
        words = lines * self.bw - (self.bw - self.words(end - 1))
        self.writes += words
        self.drained += words
        self.pointer = end
        self.first_drain = at if self.first_drain is None else min(self.first_drain, at)
        self.last_end = max(self.last_end, at + lines - 1)  # a final drain may start before a running one ends
        return at + lines - 1

    def dram(self) -> OfmapDram:
        """The drains' DRAM trace so far."""
        return OfmapDram(self.first_drain if self.first_drain is not None else 0, self.last_end, self.writes)


class ReadBuffers:
    """The USER-mode read buffers inside the memory loop: each one's prefetches served so far (``done``),
    its count of prefetches per row and the stall it charged each row (``stall``). Both memory loops
    (:func:`run_stream`, :func:`run_layout`) serve rows through :meth:`serve`."""

    def __init__(self, reads: tuple[Prefetches, ...]) -> None:
        self.reads = reads
        self.stall: tuple[dict[int, int], ...] = tuple({} for _ in reads)
        self.done = [0] * len(reads)
        self.counts = [dict(zip(pf.rows.tolist(), pf.counts.tolist(), strict=True)) for pf in reads]

    def serve(self, row: int, cycle: int) -> int:
        """Serve every buffer's prefetches due at ``row``, whose service cycle is ``cycle``; the row's
        stall, the largest of its buffers' stalls."""
        worst = 0
        for b, pf in enumerate(self.reads):
            cnt = self.counts[b].get(row, 0)
            if cnt:
                x = read_stall(pf, self.done[b], cnt, cycle)
                self.done[b] += cnt
                self.stall[b][row] = x
                worst = max(worst, x)
        return worst


def run_stream(stream: Stream, kb: int, bw: int, n_rows: int, reads: tuple[Prefetches, ...] = ()) -> Timeline:
    """SCALE-Sim's memory loop: the OFMAP write buffer (drains of half the buffer in lines of ``bw``
    words, one line per cycle) together with the read buffers' prefetch stalls (USER mode). A row's
    stall is the largest of its buffers' stalls."""
    total = kb * 1024
    drain = total - math.ceil(total * 0.5)
    lines_per_drain = -(-drain // bw)
    n = stream.rows.size
    orow = stream.rows
    cyc = orow.astype(np.int64).copy()
    shift = np.zeros(n_rows + 1, dtype=np.int64)
    wstall: dict[int, int] = {}
    rb = ReadBuffers(reads)
    # the rows at which some read buffer prefetches, in order, with each buffer's count there
    ev_rows = np.unique(np.concatenate([pf.rows for pf in reads])) if reads else np.zeros(0, np.int64)
    ev = 0
    queue = LineQueue(bw, lines_per_drain)
    drain_end = 0
    j0 = 0

    def read_row(row: int) -> None:
        """The read buffers' stalls on ``row``; later rows move by what exceeds its write stall."""
        extra = rb.serve(row, row + int(shift[row])) - wstall.get(row, 0)
        if extra > 0:
            shift[row + 1:] += extra
            cyc[int(np.searchsorted(orow, row, side="right")):] += extra

    while True:
        event_row = n_rows
        stall_at = drain_from = -1
        if j0 < n:
            ja = int(np.searchsorted(cyc, drain_end, side="left"))
            jb = drain + queue.drained  # element index whose store makes occupancy exceed ``drain``
            jfull = total + queue.drained - 1  # element index whose store leaves no free space
            j = max(j0, ja, jb)
            if j0 <= jfull < min(j, n) and cyc[jfull] < drain_end:
                stall_at, event_row = jfull, int(orow[jfull])
            elif j < n:
                drain_from, event_row = j, int(orow[j])
        if ev < ev_rows.size and ev_rows[ev] < event_row:
            read_row(int(ev_rows[ev]))
            ev += 1
            continue
        if stall_at >= 0:
            stall = drain_end - int(cyc[stall_at])
            cyc[stall_at:] += stall
            shift[event_row + 1:] += stall
            wstall[event_row] = wstall.get(event_row, 0) + stall
            j0 = stall_at + 1
        elif drain_from >= 0:
            queue.close(drain_from + 1)
            drain_end = queue.drain_at(int(cyc[drain_from]))
            j0 = drain_from + 1
        else:
            break
    queue.close(n)
    last = n_rows - 1
    at = last + int(shift[last]) + wstall.get(last, 0)  # SCALE-Sim empties the buffer after the last row
    while queue.pending:
        at = queue.drain_at(at) + 1
    return Timeline(shift, wstall, rb.stall, queue.dram())


@dataclass(frozen=True, slots=True)
class Stalls:
    """The stalls on a layout: ``(row, cycles)`` in row order, rows after a stalled row served that much
    later (the OFMAP buffer's write stalls, and in USER mode what the read buffers' stalls add), each
    buffer's own stalls on the rows it stalled, and the OFMAP buffer's DRAM trace."""

    rows: list[int]
    cum: list[int]              # cum[i]: cycles of the first i stalls
    write_stalls: dict[int, int]
    ofmap_dram: OfmapDram
    read_stalls: tuple[dict[int, int], ...] = ()

    def shift_at(self, row: int) -> int:
        return self.cum[bisect.bisect_left(self.rows, row)]

    def row_cycle(self, row: int) -> int:
        return row + self.shift_at(row)


class DrainPeriods:
    """Whole periods of drains, applied at once, where the drain loop's events no longer depend on rows:
    in CALC mode on a layout whose rows hold at most ``bw`` demands (an array column writes an output a
    cycle, a drain moves ``bw`` words a cycle), the ``drained`` words after a drain span at least as
    many rows as the drain takes cycles, so every drain starts at the demand that fills the buffer
    (``drain + drained``), after the last one ended, and none stalls. Each drain then follows from the
    queue alone: once the queue's state relative to the next drain's demand recurs, the drains since
    repeat to near the layout's end (one period with lines that fill exactly; a few with part-filled
    ones). Only the last one's row is looked up, for its cycle. Gives up after ``TRIES`` drains
    without a recurrence."""

    TRIES = 64

    __slots__ = ("n", "marks")

    def __init__(self, n: int) -> None:
        self.n = n
        self.marks: dict[tuple[object, ...], tuple[int, ...]] | None = {}

    def after(self, q: LineQueue, j0: int) -> int | None:
        """After a drain, the loop at demand ``j0``: None (go on), or the demand after the last of whole
        periods of drains applied to ``q``."""
        if self.marks is None:
            return None
        k = max(bisect.bisect_right(q.first_line, q.pointer) - 1, 0)
        pend = tuple((q.first_line[x] - q.pointer, q.full[x], q.rem[x]) for x in range(k, len(q.first_line)))
        key = (j0 - q.drained, q.n_lines - q.pointer, pend)   # (the queue's outputs end at j0: q.start)
        now = (j0, q.drained, q.writes, q.pointer, q.n_lines, len(q.first_line))
        before = self.marks.get(key)
        self.marks[key] = now
        if before is None:
            if len(self.marks) >= self.TRIES:
                self.marks = None
            return None
        d = [a - b for a, b in zip(now, before, strict=True)]   # one period's change of each
        m = (self.n - 1 - j0) // d[0] - 1   # periods to apply, the last drains left to the loop
        if m < 1:
            return None
        fl, full, rem = q.first_line[before[5]:], q.full[before[5]:], q.rem[before[5]:]
        for r in range(1, m + 1):   # the segments the periods close, each moved on by the lines before it
            q.first_line.extend(x + r * d[4] for x in fl)
            q.full.extend(full)
            q.rem.extend(rem)
        q.drained += m * d[1]
        q.writes += m * d[2]
        q.pointer += m * d[3]
        q.n_lines += m * d[4]
        q.start += m * d[0]
        self.marks = None   # too near the end for another period
        return j0 + m * d[0]


def run_layout(out: Layout, kb: int, bw: int, n_rows: int, progress: Callable[[float], None] | None = None,
               reads: tuple[Prefetches, ...] = ()) -> Stalls:
    """:func:`run_stream` on a layout instead of a stream: the same drains and stalls, found with a
    handful of lookups per drain and per prefetching row. Demands at and after ``j0`` are served ``late``
    cycles after their row, plus the ``pending`` read stalls of rows before theirs (a read stall moves
    only the rows after its own; once ``j0`` is past that row it joins ``late``). ``progress(fraction)``
    is told how far the drains have come every ``PROGRESS_DRAINS`` drains (a large GEMM drains ~10^5
    times). Where drains follow from the queue alone, whole periods of them are applied at once
    (:class:`DrainPeriods`)."""
    total = kb * 1024
    drain = total - math.ceil(total * 0.5)
    lines_per_drain = -(-drain // bw)
    n = out.n
    rows: list[int] = []
    cum = [0]
    wstall: dict[int, int] = {}
    rb = ReadBuffers(reads)
    ev_rows = sorted(set().union(*(pf.rows.tolist() for pf in reads))) if reads else []
    ev = 0
    late = 0
    # read stalls not yet in ``late``: rows pend_rows[h:] (increasing), demands of later rows served
    # pend_cum[i + 1] - pend_cum[i] cycles later for the i-th; searched by bisection, not walked
    pend_rows: list[int] = []
    pend_cum = [0]
    pend_key: list[int] = []   # pend_rows[i] + pend_cum[i]: nondecreasing
    h = 0
    queue = LineQueue(bw, lines_per_drain)
    drain_end = j0 = 0
    tick = 0
    r0 = -1   # the row of demand j0, found once per j0
    known: dict[int, int] = {}   # demand -> row, for the demands looked up since j0 last moved
    periods = DrainPeriods(n) if not reads and 0 < out.per_row <= bw else None

    def row_of(j: int) -> int:
        r = known.get(j)
        if r is None:
            r = known[j] = out.row_of(j)
        return r

    def add_stall(row: int, cycles: int) -> None:
        if rows and rows[-1] == row:
            cum[-1] += cycles
        else:
            rows.append(row)
            cum.append(cum[-1] + cycles)

    def cycle(r: int) -> int:
        """The cycle a demand at or after ``j0`` is served at, from its row ``r``."""
        return r + late + pend_cum[bisect.bisect_left(pend_rows, r, h)] - pend_cum[h]

    def first_at(x: int) -> int:
        """The first demand at or after ``j0`` served at cycle ``x`` or later (``n``: none). Rows up to
        the i-th pending row are served ``late`` plus the stalls pending before it after their row; the
        first pending row whose rows reach ``x`` is found by bisection over the keys."""
        i = bisect.bisect_left(pend_key, x - late + pend_cum[h], h)
        r = x - late - (pend_cum[i] - pend_cum[h])
        if i > h:
            r = max(r, pend_rows[i - 1] + 1)
        return max(j0, out.count_below(r))

    def read_row(row: int) -> bool:
        """The read buffers' stalls on ``row``; later rows move by what exceeds its write stall (True:
        they moved)."""
        extra = rb.serve(row, row + cum[bisect.bisect_left(rows, row)]) - wstall.get(row, 0)
        if extra > 0:
            add_stall(row, extra)
            pend_key.append(row + pend_cum[-1])
            pend_rows.append(row)
            pend_cum.append(pend_cum[-1] + extra)
        return extra > 0

    while True:
        event_row = n_rows
        stall_at = drain_from = -1
        if j0 < n:
            tick += 1
            if progress is not None and tick % PROGRESS_DRAINS == 0:
                progress(j0 / n)
            if h < len(pend_rows):
                if r0 < 0:
                    r0 = row_of(j0)
                while h < len(pend_rows) and pend_rows[h] < r0:
                    late += pend_cum[h + 1] - pend_cum[h]
                    h += 1
            ja = first_at(drain_end)
            jb = drain + queue.drained   # demand whose store makes occupancy exceed ``drain``
            jfull = total + queue.drained - 1   # demand whose store leaves no free space
            j = max(j0, ja, jb)
            r_full = row_of(jfull) if j0 <= jfull < min(j, n) else -1
            if r_full >= 0 and cycle(r_full) < drain_end:
                stall_at, event_row = jfull, r_full
            elif j < n:
                drain_from, event_row = j, row_of(j)
        if ev < len(ev_rows) and ev_rows[ev] < event_row:
            # prefetching rows before the next drain event; a read stall delays the rows after its own,
            # which can move that event only where it is a drain waiting for the last one to end
            # (``ja``: served later, a demand reaches that cycle sooner) or a write stall (its demand,
            # served later, may no longer meet a running drain)
            fixed = drain_from >= 0 and ja < j
            while ev < len(ev_rows) and ev_rows[ev] < event_row:
                ev += 1
                if read_row(ev_rows[ev - 1]) and not fixed:
                    break
            continue
        if stall_at >= 0:
            stall = drain_end - cycle(event_row)
            late += stall
            add_stall(event_row, stall)
            wstall[event_row] = wstall.get(event_row, 0) + stall
            j0 = stall_at + 1
        elif drain_from >= 0:
            queue.close(drain_from + 1)
            at = cycle(event_row)
            drain_end = queue.drain_at(at)
            j0 = drain_from + 1
            moved = None if periods is None else periods.after(queue, j0)
            if moved is not None:   # the periods' last drain, at demand moved - 1, is as long as this one
                span = drain_end - at
                j0, at = moved, cycle(row_of(moved - 1))
                drain_end = at + span
                queue.last_end = max(queue.last_end, drain_end)
                if progress is not None:
                    progress(j0 / n)
        else:
            break
        r0 = -1
        known.clear()
    queue.close(n)
    last = n_rows - 1
    at = last + cum[bisect.bisect_left(rows, last)] + wstall.get(last, 0)
    while queue.pending:
        at = queue.drain_at(at) + 1
    return Stalls(rows, cum, wstall, queue.dram(), rb.stall)
