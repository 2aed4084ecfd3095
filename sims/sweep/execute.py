"""Running a sweep: points are cut into chunks, evaluated by a backend, and stored as they finish.

Backends (one interface: ``run(chunks)`` yields each chunk's results as it completes):

* :class:`InlineBackend` -- in the driver process (``--workers 0``; tests, debugging);
* :class:`LocalBackend` -- a pool of worker processes on this machine (the default; no server);
* :class:`DaskBackend` -- a ``dask.distributed`` cluster (``--scheduler tcp://HOST:PORT`` or a client).

The driver is the only writer: it commits each finished chunk to the :class:`ResultStore` at once,
skips points whose key is already stored (resume), and on Ctrl-C cancels the queued chunks, waits for
none of them, and leaves the store with every finished chunk.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from .evaluate import _MEMO, PointResult, evaluate_chunk
from .fastsim import PRICE_OR_TILE_FIELDS
from .nsga2 import Outcome, nsga2
from .points import Point, PointResolver, grid_points, sampled_points
from .spec import SweepSpec
from .store import ResultStore

__all__ = ["Backend", "InlineBackend", "LocalBackend", "DaskBackend", "SweepSummary", "run_sweep", "make_backend",
           "SweepAborted", "usable_cpus", "check_scheduler"]

Items = list[tuple[str, tuple[int, ...]]]


class Backend(Protocol):
    def start(self, spec: SweepSpec, token: str) -> None: ...
    def run(self, chunks: Sequence[Items]) -> Iterator[tuple[int, list[PointResult]]]: ...
    def close(self) -> None: ...


class InlineBackend:
    """Evaluate in the driver process."""

    workers = 1

    def start(self, spec: SweepSpec, token: str) -> None:
        self._spec, self._token = spec, token

    def run(self, chunks: Sequence[Items]) -> Iterator[tuple[int, list[PointResult]]]:
        for i, ch in enumerate(chunks):
            yield i, evaluate_chunk(self._spec, self._token, ch)

    def close(self) -> None:
        pass


PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process gets when its parent dies."""
MAX_CRASH_RETRIES = 1
"""Times a chunk whose worker died is run again (alone) before its points are stored as failed."""
MAX_CONSECUTIVE_CRASHES = 3
"""Isolated chunks in a row whose worker died before the sweep stops (workers that cannot start)."""


class SweepAborted(RuntimeError):
    """The backend cannot evaluate anything (every worker dies); finished chunks stay stored."""


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker exit when the driver dies, even by ``kill -9``: ``PR_SET_PDEATHSIG`` on Linux,
    and everywhere a daemon thread that polls ``os.getppid()``."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="hwsim-parent-watch", daemon=True).start()


def _init_worker(spec: SweepSpec, token: str, parent_pid: int | None = None) -> None:
    # The driver handles Ctrl-C. SIGINT was blocked when this process was spawned (so a Ctrl-C during
    # start-up stays pending instead of raising KeyboardInterrupt in an import); ignoring it discards
    # the pending one, then it is unblocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    _MEMO.get(token, spec)


def _evaluate_token(token: str, items: Items) -> list[PointResult]:
    ev = _MEMO._by_token[token]
    return ev.evaluate_many(items)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back (delivered afterwards, not lost) while worker processes may be spawned: they
    inherit the blocked mask, so Ctrl-C never interrupts their start-up."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _failed(items: Items, why: str) -> list[PointResult]:
    return [PointResult(key, "failed", why, {}, None, 0.0) for key, _ in items]


class LocalBackend:
    """A pool of ``workers`` processes (started with ``spawn``; each loads the sweep once).

    A worker that dies (the OOM killer, a segfault) breaks the pool: it is restarted, and the chunks that
    were in flight run again one at a time; a chunk whose worker dies again has its points stored as
    failed, and the sweep goes on. Workers exit when the driver dies."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"LocalBackend.workers must be an integer >= 1, not {workers!r}")
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self.restarts = 0

    def start(self, spec: SweepSpec, token: str) -> None:
        self._spec, self._token = spec, token
        self._new_pool()

    def _new_pool(self) -> None:
        with _sigint_blocked():
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker,
                                                initargs=(self._spec, self._token, os.getpid()))

    def _submit(self, items: Items) -> cf.Future[list[PointResult]]:
        assert self._pool is not None
        with _sigint_blocked():  # a submit may spawn a worker
            try:
                return self._pool.submit(_evaluate_token, self._token, items)
            except BrokenProcessPool as exc:  # broke since the last wait: handled like a crash in flight
                f: cf.Future[list[PointResult]] = cf.Future()
                f.set_exception(exc)
                return f

    def run(self, chunks: Sequence[Items]) -> Iterator[tuple[int, list[PointResult]]]:
        inflight = 2 * self.workers + 1
        todo = collections.deque(range(len(chunks)))
        suspects: collections.deque[int] = collections.deque()
        attempts: collections.Counter[int] = collections.Counter()
        pending: dict[cf.Future[list[PointResult]], int] = {}
        crashes_in_a_row = 0
        try:
            while todo or suspects or pending:
                if suspects:
                    if not pending:
                        i = suspects.popleft()
                        pending[self._submit(chunks[i])] = i
                else:
                    while todo and len(pending) < inflight:
                        i = todo.popleft()
                        pending[self._submit(chunks[i])] = i
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                crashed: list[int] = []
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    done, _ = cf.wait(list(pending))  # every other one fails or finishes now
                for f in done:
                    i = pending.pop(f)
                    if isinstance(f.exception(), BrokenProcessPool):
                        crashed.append(i)
                    else:
                        crashes_in_a_row = 0
                        yield i, f.result()
                if not crashed:
                    continue
                isolated = len(crashed) == 1 and attempts[crashed[0]] > 0
                crashes_in_a_row = crashes_in_a_row + 1 if isolated else 0
                self._restart()
                for i in sorted(crashed):
                    attempts[i] += 1
                    if attempts[i] > MAX_CRASH_RETRIES:
                        yield i, _failed(chunks[i], "worker process died while evaluating this chunk (killed, "
                                                    "e.g. by the OOM killer, or crashed)")
                    else:
                        suspects.append(i)
                if crashes_in_a_row >= MAX_CONSECUTIVE_CRASHES:
                    raise SweepAborted(f"{crashes_in_a_row} chunks in a row lost their worker process; "
                                       "the workers cannot run (out of memory?); finished points are stored")
        finally:
            for f in pending:
                f.cancel()

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.restarts += 1
        self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


SCHEDULER_TIMEOUT_S = 10
"""How long ``--scheduler`` may take to answer before the sweep is refused (seconds)."""
_ADDRESS_RE = re.compile(r"^(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def check_scheduler(address: str) -> None:
    """Fail fast with one line: ``address`` must read ``tcp://HOST:PORT`` (or ``tls://``) and accept a TCP
    connection within :data:`SCHEDULER_TIMEOUT_S` seconds."""
    m = _ADDRESS_RE.match(address)
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"--scheduler must read tcp://HOST:PORT (or tls://HOST:PORT), not {address!r}")
    host = m.group(2).strip("[]")
    try:
        socket.create_connection((host, int(m.group(3))), timeout=SCHEDULER_TIMEOUT_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ValueError(f"--scheduler {address}: cannot reach the Dask scheduler ({why})") from None


class DaskBackend:
    """Chunks as tasks on a ``dask.distributed`` cluster; the sweep spec is scattered to every worker once."""

    def __init__(self, address: str | None = None, client: Any = None) -> None:
        if (address is None) == (client is None):
            raise ValueError("DaskBackend needs exactly one of address or client")
        self.address, self._client, self._own = address, client, client is None
        self.workers = 1

    def start(self, spec: SweepSpec, token: str) -> None:
        from distributed import Client

        if self._client is None:
            try:
                self._client = Client(self.address, timeout=f"{SCHEDULER_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"--scheduler {self.address}: cannot connect to the Dask scheduler "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        self.workers = max(1, sum(self._client.nthreads().values()))
        self._token = token
        [self._spec_future] = self._client.scatter([spec], broadcast=True)

    def run(self, chunks: Sequence[Items]) -> Iterator[tuple[int, list[PointResult]]]:
        from distributed import wait

        client = self._client
        return _bounded(lambda ch: client.submit(evaluate_chunk, self._spec_future, self._token, ch, pure=False),
                        chunks, 2 * self.workers + 1, lambda fs: wait(fs, return_when="FIRST_COMPLETED"))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.cancel(self._spec_future)
            except AttributeError:
                pass
            if self._own:
                self._client.close()
            self._client = None


def _bounded(submit: Any, chunks: Sequence[Items], inflight: int, wait: Any
             ) -> Iterator[tuple[int, list[PointResult]]]:
    """Keep at most ``inflight`` chunks submitted; yield ``(chunk index, results)`` as they finish."""
    pending: dict[Any, int] = {}
    it = iter(enumerate(chunks))
    try:
        for i, ch in it:
            pending[submit(ch)] = i
            if len(pending) >= inflight:
                break
        while pending:
            done, _ = wait(list(pending))
            for f in done:
                i = pending.pop(f)
                yield i, f.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending[submit(nxt[1])] = nxt[0]
    finally:
        for f in pending:
            f.cancel()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_backend(workers: int | None = None, scheduler: str | None = None) -> Backend:
    """``--scheduler`` -> Dask; ``--workers 0`` -> inline; otherwise a local pool (default: all usable
    cores; more workers than cores are capped to the cores, with a warning)."""
    if scheduler is not None:
        check_scheduler(scheduler)  # before the caller opens or creates anything
        return DaskBackend(address=scheduler)
    if workers == 0:
        return InlineBackend()
    cpus = usable_cpus()
    if workers is None:
        workers = cpus
    elif workers > cpus:
        print(f"hwsim: warning: --workers {workers} is more than the {cpus} usable CPU cores; using {cpus}",
              file=sys.stderr)
        workers = cpus
    return LocalBackend(workers)


@dataclass(frozen=True, slots=True)
class SweepSummary:
    sweep_id: str
    points: int
    already_done: int
    evaluated: int
    failed: int
    infeasible: int
    elapsed_s: float

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def __str__(self) -> str:
        return (f"sweep {self.sweep_id}: {self.points} points, {self.already_done} already stored, "
                f"{self.evaluated} evaluated ({self.failed} failed, {self.infeasible} infeasible) in "
                f"{self.elapsed_s:.1f} s ({self.points_per_s:,.0f} points/s)")


class _Driver:
    def __init__(self, spec: SweepSpec, store: ResultStore, backend: Backend, progress: bool) -> None:
        self.spec, self.store, self.backend = spec, store, backend
        self.resolver = PointResolver(spec)
        self.sid = store.register_sweep(spec)
        self.progress = progress
        self.already = self.evaluated = self.failed = self.infeasible = 0
        self.started = False

    def run_points(self, points: Sequence[Point], desc: str) -> None:
        from tqdm import tqdm

        done = self.store.done_keys([p.key for p in points])
        todo: list[Point] = []
        seen: set[str] = set()
        for p in points:
            if p.key in done or p.key in seen:
                self.already += p.key in done and p.key not in seen
                seen.add(p.key)
                continue
            seen.add(p.key)
            todo.append(p)
        if not todo:
            return
        if not self.started:
            self.backend.start(self.spec, self.sid)
            self.started = True
        chunks_pts = self._chunks(todo)
        chunks = [[(p.key, p.genome) for p in ch] for ch in chunks_pts]
        with tqdm(total=len(todo), unit="pt", desc=desc, disable=not self.progress, smoothing=0.1) as bar:
            for i, results in self.backend.run(chunks):
                rows = []
                for p, r in zip(chunks_pts[i], results, strict=True):
                    rows.append(self.store.row(r, self.sid, p.index, self.resolver.inputs(p.genome)))
                    self.failed += r.status == "failed"
                    self.infeasible += r.feasible is False
                self.store.write(rows)
                self.evaluated += len(rows)
                bar.update(len(rows))

    def _chunks(self, todo: list[Point]) -> list[list[Point]]:
        """Chunks of about ``chunk_size`` points that keep points sharing cached layer costs together
        (same accelerator apart from buffer sizes and prices, same network and schedule), so that
        workers with separate caches rarely simulate the same layer twice."""
        shared = [i for i, a in enumerate(self.spec.acc_axes) if a.name not in PRICE_OR_TILE_FIELDS]
        n = len(self.spec.acc_axes)

        def group(p: Point) -> tuple[int, ...]:
            return tuple(p.genome[i] for i in shared) + p.genome[n:n + 2]

        groups: dict[tuple[int, ...], list[Point]] = {}
        for p in todo:
            groups.setdefault(group(p), []).append(p)
        cs = self.spec.chunk_size
        chunks: list[list[Point]] = []
        cur: list[Point] = []
        for pts in groups.values():
            for i in range(0, len(pts), cs):
                part = pts[i:i + cs]
                if cur and len(cur) + len(part) > cs:
                    chunks.append(cur)
                    cur = []
                cur += part
        if cur:
            chunks.append(cur)
        return chunks

    def outcomes(self, points: Sequence[Point]) -> list[Outcome]:
        got = self.store.metrics_for([p.key for p in points])
        out = []
        for p in points:
            status, feasible, metrics = got[p.key]
            out.append(Outcome(status == "ok", bool(feasible), metrics))
        return out


def run_sweep(spec: SweepSpec, store: ResultStore, backend: Backend | None = None, progress: bool = False,
              retry_failed: bool = False) -> SweepSummary:
    """Evaluate every point of ``spec`` not yet in ``store``; see the module docstring."""
    backend = backend or InlineBackend()
    t0 = time.perf_counter()
    drv = _Driver(spec, store, backend, progress)
    if retry_failed:
        store.delete_failed(drv.sid)
    total = 0
    try:
        if spec.search.mode == "nsga2":
            counter = [0]

            def evaluate(genomes: list[tuple[int, ...]]) -> list[Outcome]:
                pts = []
                for g in genomes:
                    pts.append(drv.resolver.point(counter[0], g))
                    counter[0] += 1
                drv.run_points(pts, f"nsga2 gen {counter[0] // max(1, spec.search.population) - 1}")
                return drv.outcomes(pts)

            s = spec.search
            nsga2([len(a) for a in spec.axes], s.population, s.generations, s.seed, s.objectives, evaluate)
            total = counter[0]
        else:
            genomes = grid_points(spec) if spec.search.mode == "grid" else sampled_points(spec)
            points = [drv.resolver.point(i, g) for i, g in enumerate(genomes)]
            total = len(points)
            drv.run_points(points, spec.name)
    finally:
        backend.close()
    return SweepSummary(drv.sid, total, drv.already, drv.evaluated, drv.failed, drv.infeasible,
                        time.perf_counter() - t0)
