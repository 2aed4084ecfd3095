"""SCALE-Sim 3.0.0's CALC-mode read buffer, as windows of distinct addresses, and the DRAM trace
they leave.

In estimate mode a read buffer fetches each address once per *window*: the active half of the
buffer, ``SETS_PER_BUFFER / 2`` sets of ``floor(words / 100)`` addresses, filled in demand order; a
window closes at the demand that brings its last new address and the next one starts empty. The
DRAM trace follows from how many windows closed, how full the open one is and the row of the
demand that closed the last one (:func:`window_trace`). The reference feeds the demands
(:func:`~hwsim.scalesim.replay.stream_read_buffer`); the closed forms count them (:mod:`.calc`).
"""

from __future__ import annotations

from collections.abc import Callable

from .config import READ_BACKING_BW_CALC, READ_LATENCY_CYCLES, SETS_PER_BUFFER
from .report import ReadBuffer

__all__ = ["window_capacity", "window_trace", "group_windows", "first_filling", "FillSearch"]


def window_capacity(kb: int) -> int:
    """Distinct addresses one window holds: ``50 * floor(kB * 1024 / 100)``."""
    return (SETS_PER_BUFFER // 2) * (kb * 1024 // SETS_PER_BUFFER)


def window_trace(kb: int, closes: int, rest: int, last_close_row: int, first_row: int, last_row: int,
                 shift_at: Callable[[int], int]) -> ReadBuffer:
    """The buffer's DRAM trace after ``closes`` full windows and ``rest`` addresses in the open one,
    the last window closed by a demand at ``last_close_row``; demand rows ``first_row .. last_row``.

    With no window closed, SCALE-Sim prefetches the addresses' sets at cycles ``-need .. -1``;
    otherwise its trace starts one window's prefetch before the first demand and stops at the
    closing demand's cycle plus the read latency (``shift_at`` gives the stalls before a row)."""
    per_set = kb * 1024 // SETS_PER_BUFFER
    cap = window_capacity(kb)
    if closes == 0:
        sets = -(-rest // per_set)
        need = -(-(sets * per_set) // READ_BACKING_BW_CALC)
        return ReadBuffer(-need, -1, rest, first_row, last_row)
    first = first_row + shift_at(first_row)
    start = first - 1 - READ_LATENCY_CYCLES - -(-cap // READ_BACKING_BW_CALC) + 1 + READ_LATENCY_CYCLES
    stop = last_close_row + shift_at(last_close_row) + READ_LATENCY_CYCLES
    return ReadBuffer(start, stop, closes * cap + rest, first_row, last_row)


def group_windows(groups: list[tuple[int, int]], cap: int) -> tuple[int, int, int]:
    """SCALE-Sim's windows of ``cap`` distinct addresses over groups of repeated blocks: ``(windows
    closed, addresses in the open one, index of the demand that closed the last)``.

    A block of at least ``cap`` addresses comes back only after ``cap`` demands, so each of its
    demands fetches. A smaller one, repeated, fetches once unless a window closes in its first copy,
    at offset ``o``: the next window then fetches the ``size`` demands from ``o`` on (what the closed
    window held is fetched again) and nothing after."""
    cnt = closes = 0
    last = -1
    g0 = 0
    for size, times in groups:
        if size >= cap or times == 1:
            tot = cnt + size * times
            k = tot // cap
            if k:
                closes += k
                last = g0 + k * cap - cnt - 1
            cnt = tot % cap
        elif cnt + size < cap:
            cnt += size
        else:
            closes += 1
            last = g0 + cap - cnt - 1
            cnt = min(size, size * times - (cap - cnt))
        g0 += size * times
    return closes, cnt, last


def first_filling(held: Callable[[int], int], lo: int, hi: int, cap: int, guess: int) -> int:
    """The first fold ``f`` of ``lo .. hi`` after which a window holds ``cap`` addresses (``held(f)``,
    nondecreasing, reaches ``cap`` at ``hi``), looked for from ``guess`` outward in doubling steps, then
    by bisection: whole folds bring about as many new addresses each, so a guess from that rate is
    usually a fold or two off (two or three calls of ``held`` where bisection makes ``log2(hi - lo)``)."""
    g = min(max(guess, lo), hi)
    step = 1
    if held(g) >= cap:   # the answer is at or below g
        hi = g
        while hi > lo:
            probe = max(lo, hi - step)
            if held(probe) >= cap:
                hi = probe
                step *= 2
            else:
                lo = probe + 1
                break
    else:                # above g
        lo = g + 1
        while lo < hi:
            probe = min(hi, lo + step - 1)
            if held(probe) >= cap:
                hi = probe
                break
            lo = probe + 1
            step *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if held(mid) >= cap:
            hi = mid
        else:
            lo = mid + 1
    return lo


class FillSearch:
    """:func:`first_filling` over the whole folds of a sweep, guessed as the read buffers of overlapping
    windows do: as many folds as the last window that filled spanned, or, before one has, the room left
    over ``per_fold``, the new addresses a whole fold brings on average."""

    __slots__ = ("per_fold", "span")

    def __init__(self, total: int, folds: int) -> None:
        self.per_fold = max(1, total // folds)
        self.span = -1   # whole folds the last window that filled spanned (-1: none yet)

    def __call__(self, held: Callable[[int], int], fr0: int, hi: int, cap: int, held0: int) -> int:
        """The first fold of ``fr0 .. hi`` in which a window holding ``held0`` addresses before fold
        ``fr0`` fills (``held(f)``: what it holds after whole folds ``fr0 .. f``)."""
        guess = fr0 + (self.span if self.span >= 0 else (cap - held0) // self.per_fold)
        got = first_filling(held, fr0, hi, cap, guess)
        self.span = got - fr0
        return got
