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

import concurrent.futures as cf
import multiprocessing
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .evaluate import _MEMO, PointResult, evaluate_chunk
from .fastsim import PRICE_OR_TILE_FIELDS
from .nsga2 import Outcome, nsga2
from .points import Point, PointResolver, grid_points, sampled_points
from .spec import SweepSpec
from .store import ResultStore

__all__ = ["Backend", "InlineBackend", "LocalBackend", "DaskBackend", "SweepSummary", "run_sweep", "make_backend"]

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


def _init_worker(spec: SweepSpec, token: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the pool
    _MEMO.get(token, spec)


def _evaluate_token(token: str, items: Items) -> list[PointResult]:
    ev = _MEMO._by_token[token]
    return ev.evaluate_many(items)


class LocalBackend:
    """A pool of ``workers`` processes (started with ``spawn``; each loads the sweep once)."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"LocalBackend.workers must be an integer >= 1, not {workers!r}")
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None

    def start(self, spec: SweepSpec, token: str) -> None:
        self._token = token
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(spec, token))

    def run(self, chunks: Sequence[Items]) -> Iterator[tuple[int, list[PointResult]]]:
        assert self._pool is not None
        pool = self._pool
        return _bounded(lambda ch: pool.submit(_evaluate_token, self._token, ch), chunks, 2 * self.workers + 1,
                        lambda fs: cf.wait(fs, return_when=cf.FIRST_COMPLETED))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


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
            self._client = Client(self.address, timeout="30s")
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


def make_backend(workers: int | None = None, scheduler: str | None = None) -> Backend:
    """``--scheduler`` -> Dask; ``--workers 0`` -> inline; otherwise a local pool (default: all cores)."""
    if scheduler is not None:
        return DaskBackend(address=scheduler)
    if workers == 0:
        return InlineBackend()
    if workers is None:
        workers = multiprocessing.cpu_count()
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
