"""Design points: which points a sweep visits, and the key and resolved inputs of each.

A point is a *genome*: one index into every axis of :attr:`SweepSpec.axes`. Its key is the sha256 of
the canonical JSON of its resolved inputs -- the full accelerator spec, the network's hash, the bit
schedule, the mapper objective, the metrics and constraints asked for and the model versions -- so
the same design point has the same key in any sweep, and a store never holds it twice.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import hwsim
from hwsim.io import accelerator_to_dict

from .metrics import METRICS
from .spec import SweepSpec

__all__ = ["Point", "PointResolver", "EVAL_VERSION", "grid_points", "sampled_points", "decode"]

EVAL_VERSION = "1"
"""Bumped when the sweep's evaluation changes results (so old rows no longer count as done)."""

Genome = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Point:
    index: int
    genome: Genome
    key: str


def _versions(spec: SweepSpec) -> dict[str, Any]:
    v: dict[str, Any] = {"hwsim": hwsim.__version__, "sweep_eval": EVAL_VERSION}
    if any(METRICS[m].needs == "area" for m in spec.metrics):
        mod = importlib.import_module("hwsim.area")
        v["area_model"] = str(getattr(mod, "MODEL_VERSION", getattr(mod, "__version__", "unversioned")))
    return v


class PointResolver:
    """Turns genomes into keys and the resolved-input columns a store records."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.axes = spec.axes
        self.n_acc = len(spec.acc_axes)
        self._base = accelerator_to_dict(spec.base)
        self._acc_json: dict[Genome, str] = {}
        acc_hash = None
        if "accuracy" in spec.metrics:
            acc_hash = hashlib.sha256(json.dumps(spec.accuracy).encode()).hexdigest()
        self.versions = _versions(spec)
        self._evaluation = json.dumps({"metrics": list(spec.metrics), "constraints": [str(c) for c in spec.constraints],
                                       "accuracy_table": acc_hash, "versions": self.versions}, sort_keys=True)
        self._sched_json = [json.dumps(s.to_dict(), sort_keys=True) for s in spec.schedules]
        self.versions_json = json.dumps(self.versions, sort_keys=True)

    def accelerator_json(self, genome: Genome) -> str:
        part = genome[:self.n_acc]
        s = self._acc_json.get(part)
        if s is None:
            d = json.loads(json.dumps(self._base))
            for ax, i in zip(self.spec.acc_axes, part, strict=True):
                v = ax.values[i]
                *head, last = ax.name.split(".")
                tgt = d
                for h in head:
                    tgt = tgt[h]
                tgt[last] = list(v) if isinstance(v, tuple) else v
            s = self._acc_json[part] = json.dumps(d, sort_keys=True)
        return s

    def key(self, genome: Genome) -> str:
        n, s, o = genome[self.n_acc:]
        net = self.spec.networks[n]
        text = (f'{{"accelerator":{self.accelerator_json(genome)},"network":"{net.hash}",'
                f'"schedule":{self._sched_json[s]},"objective":{json.dumps(self.spec.objectives[o])},'
                f'"evaluation":{self._evaluation}}}')
        return hashlib.sha256(text.encode()).hexdigest()

    def point(self, index: int, genome: Genome) -> Point:
        return Point(index, genome, self.key(genome))

    def inputs(self, genome: Genome) -> dict[str, Any]:
        """The resolved-input columns of a point's row."""
        n, s, o = genome[self.n_acc:]
        net = self.spec.networks[n]
        return {
            "network": net.label, "network_hash": net.hash, "schedule": self.spec.schedules[s].label,
            "schedule_json": self._sched_json[s], "objective": self.spec.objectives[o],
            "axes_json": json.dumps({a.name: a.labels[i] for a, i in zip(self.axes, genome, strict=True)}),
            "accelerator_json": self.accelerator_json(genome), "versions_json": self.versions_json,
        }


def decode(flat: int, sizes: Sequence[int]) -> Genome:
    """Mixed-radix decoding of a grid index (the last axis varies fastest)."""
    out = []
    for n in reversed(sizes):
        flat, r = divmod(flat, n)
        out.append(r)
    return tuple(reversed(out))


def grid_points(spec: SweepSpec) -> Iterator[Genome]:
    """Every point of the grid, the last axis (objective, schedule, network, ...) varying fastest."""
    return itertools.product(*(range(len(a)) for a in spec.axes))


def sampled_points(spec: SweepSpec) -> list[Genome]:
    """``random``: distinct grid points drawn uniformly; ``lhs``: a Latin hypercube over the axes'
    indices (each axis's range cut into ``samples`` strata, one sample per stratum), duplicates dropped."""
    sizes = [len(a) for a in spec.axes]
    rng = random.Random(spec.search.seed)
    n = spec.search.samples
    if spec.search.mode == "random":
        return [decode(i, sizes) for i in rng.sample(range(math.prod(sizes)), n)]
    cols = []
    for size in sizes:
        perm = list(range(n))
        rng.shuffle(perm)
        cols.append([min(size - 1, int((p + rng.random()) / n * size)) for p in perm])
    seen: set[Genome] = set()
    out = []
    for g in zip(*cols, strict=True):
        if g not in seen:
            seen.add(g)
            out.append(tuple(g))
    return out
