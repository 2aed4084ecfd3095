"""Evaluating design points: a chunk of genomes in, one result row per point out.

An :class:`Evaluator` holds what the points of one sweep share -- the base accelerator, the networks
with each bit schedule applied, and a :class:`~sims.sweep.fastsim.LayerCostCache` -- so a task that
evaluates a chunk of points pays for network loading and layer simulation once. Worker processes keep
one evaluator per sweep (:func:`evaluate_chunk` looks it up by the sweep's token), so the cache also
carries over from chunk to chunk. A point that raises is returned as ``failed`` with its error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwsim.accelerator import Accelerator
from hwsim.network import Network

from .fastsim import LayerCostCache, NetPlan
from .metrics import METRICS, PointView
from .spec import DEFAULT_OBJECTIVE, SweepSpec, mapper

__all__ = ["Evaluator", "PointResult", "evaluate_chunk", "build_accelerator"]

Genome = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PointResult:
    key: str
    status: str
    error: str | None
    metrics: dict[str, float | None]
    feasible: bool | None
    elapsed_s: float

    def metrics_json(self) -> str:
        return json.dumps({k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
                           for k, v in self.metrics.items()}, sort_keys=True)


def build_accelerator(base: Accelerator, overrides: Sequence[tuple[str, Any]]) -> Accelerator:
    """``base`` with ``(dotted_path, value)`` overrides applied through ``dataclasses.replace``."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, v in overrides:
        if "." in path:
            g, f = path.split(".", 1)
            nested.setdefault(g, {})[f] = v
        else:
            top[path] = v
    for g, fields in nested.items():
        top[g] = dataclasses.replace(getattr(base, g), **fields)
    return dataclasses.replace(base, **top) if top else base


class Evaluator:
    """Evaluates genomes of one sweep spec (see the module docstring)."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.cache = LayerCostCache()
        self.n_acc = len(spec.acc_axes)
        self._accs: dict[Genome, Accelerator | Exception] = {}
        self._variants: dict[tuple[int, int], tuple[Network, NetPlan] | Exception] = {}
        self._accuracy = dict(spec.accuracy)
        self._mapper = mapper() if any(o != DEFAULT_OBJECTIVE for o in spec.objectives) else None
        self._metrics = [METRICS[m] for m in spec.metrics]

    def accelerator(self, part: Genome) -> Accelerator:
        a = self._accs.get(part)
        if a is None:
            try:
                a = build_accelerator(self.spec.base, [(ax.name, ax.values[i])
                                                        for ax, i in zip(self.spec.acc_axes, part, strict=True)])
            except (TypeError, ValueError) as exc:
                a = exc
            if len(self._accs) > 100_000:
                self._accs.clear()
            self._accs[part] = a
        if isinstance(a, Exception):
            raise a
        return a

    def variant(self, n: int, s: int) -> tuple[Network, NetPlan]:
        v = self._variants.get((n, s))
        if v is None:
            try:
                net = self.spec.schedules[s].apply(self.spec.networks[n].network)
                v = (net, self.cache.plan(net))
            except (TypeError, ValueError) as exc:
                v = exc
            self._variants[(n, s)] = v
        if isinstance(v, Exception):
            raise v
        return v

    def evaluate(self, key: str, genome: Genome) -> PointResult:
        t0 = time.perf_counter()
        try:
            acc = self.accelerator(genome[:self.n_acc])
            n, s, o = genome[self.n_acc:]
            net, plan = self.variant(n, s)
            objective = self.spec.objectives[o]
            if objective == DEFAULT_OBJECTIVE:
                def totals() -> Any:
                    return self.cache.totals(plan, acc)
            else:
                map_fn = self._mapper
                assert map_fn is not None  # the spec checked that objectives other than default have one

                def totals() -> Any:
                    return self.cache.totals(plan, acc, map_fn(net, acc, objective))
            view = PointView(acc, net, self.spec.networks[n].label, self.spec.schedules[s].label, totals,
                             self._accuracy)
            metrics = {m.name: m.fn(view) for m in self._metrics}
        except Exception as exc:  # a failing design point is recorded with its error; the sweep goes on
            return PointResult(key, "failed", f"{type(exc).__name__}: {exc}", {}, None, time.perf_counter() - t0)
        feasible = all(c.holds(metrics.get(c.metric)) for c in self.spec.constraints)
        return PointResult(key, "ok", "; ".join(view.notes) or None, metrics, feasible, time.perf_counter() - t0)

    def evaluate_many(self, items: Sequence[tuple[str, Genome]]) -> list[PointResult]:
        return [self.evaluate(k, g) for k, g in items]


class _EvaluatorMemo:
    """The evaluators of this process, by sweep token (a few at most: one per sweep being run)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._by_token: dict[str, Evaluator] = {}

    def get(self, token: str, spec: SweepSpec) -> Evaluator:
        ev = self._by_token.get(token)
        if ev is None:
            if len(self._by_token) >= self.size:
                self._by_token.pop(next(iter(self._by_token)))
            ev = self._by_token[token] = Evaluator(spec)
        return ev


_MEMO = _EvaluatorMemo()


def evaluate_chunk(spec: SweepSpec, token: str, items: Sequence[tuple[str, Genome]]) -> list[PointResult]:
    """The task a backend runs: evaluate a chunk of ``(key, genome)`` items of the sweep ``token``."""
    return _MEMO.get(token, spec).evaluate_many(items)
