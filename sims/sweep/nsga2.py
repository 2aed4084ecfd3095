"""A small NSGA-II (Deb et al., IEEE TEC 2002) over the sweep's discrete axes.

A genome is one index per axis. Variation: binary tournament on (rank, crowding), uniform crossover,
and per-axis random-reset mutation with probability 1/len(axes). Constraints use Deb's constrained
domination: feasible points rank before infeasible ones, and failed points (or points missing an
objective) come last. Everything is driven by ``seed`` and the evaluated metrics, so a search that
is killed and rerun against the same store replays the same generations and re-uses stored points.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import METRICS
from .pareto import crowding_distance, nondominated_fronts

__all__ = ["Outcome", "nsga2"]

Genome = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the search needs to know of an evaluated genome."""

    ok: bool
    feasible: bool
    metrics: dict[str, float | None]


def _rank(genomes: Sequence[Genome], outs: Sequence[Outcome], objectives: Sequence[str]
          ) -> tuple[list[int], list[float]]:
    """``(rank, crowding)`` of every genome; lower rank is better."""
    n = len(genomes)
    rank = [0] * n
    crowd = [0.0] * n
    sign = np.array([-1.0 if METRICS[o].goal == "max" else 1.0 for o in objectives])
    classes: list[list[int]] = [[], [], []]
    for i, o in enumerate(outs):
        vals = [o.metrics.get(m) for m in objectives] if o.ok else [None]
        if not o.ok or any(v is None for v in vals):
            classes[2].append(i)
        else:
            classes[0 if o.feasible else 1].append(i)
    base = 0
    for cls in classes[:2]:
        if not cls:
            continue
        v = np.array([[outs[i].metrics[m] for m in objectives] for i in cls], dtype=float) * sign
        fronts = nondominated_fronts(v)
        for r, front in enumerate(fronts):
            cd = crowding_distance(v[front])
            for j, c in zip(front, cd, strict=True):
                rank[cls[j]] = base + r
                crowd[cls[j]] = float(c)
        base += len(fronts)
    for i in classes[2]:
        rank[i] = base
    return rank, crowd


def _select(genomes: list[Genome], outs: list[Outcome], objectives: Sequence[str], k: int) -> list[int]:
    rank, crowd = _rank(genomes, outs, objectives)
    order = sorted(range(len(genomes)), key=lambda i: (rank[i], -crowd[i], i))
    return order[:k]


def nsga2(sizes: Sequence[int], population: int, generations: int, seed: int, objectives: Sequence[str],
          evaluate: Callable[[list[Genome]], list[Outcome]]) -> tuple[list[Genome], list[Outcome]]:
    """Run the search; ``evaluate`` maps genomes to outcomes (in order). Returns the final population."""
    rng = random.Random(seed)
    total = 1
    for s in sizes:
        total *= s
    pop: list[Genome] = []
    seen: set[Genome] = set()
    while len(pop) < min(population, total):
        g = tuple(rng.randrange(s) for s in sizes)
        if g not in seen:
            seen.add(g)
            pop.append(g)
    outs = evaluate(pop)
    pm = 1.0 / max(1, len(sizes))
    for _ in range(generations):
        rank, crowd = _rank(pop, outs, objectives)

        def tournament(pop: list[Genome] = pop, rank: list[int] = rank, crowd: list[float] = crowd) -> Genome:
            a, b = rng.randrange(len(pop)), rng.randrange(len(pop))
            return pop[a] if (rank[a], -crowd[a]) <= (rank[b], -crowd[b]) else pop[b]

        children: list[Genome] = []
        while len(children) < population:
            p1, p2 = tournament(), tournament()
            c1, c2 = list(p1), list(p2)
            for j in range(len(sizes)):
                if rng.random() < 0.5:
                    c1[j], c2[j] = c2[j], c1[j]
            for c in (c1, c2):
                for j, s in enumerate(sizes):
                    if s > 1 and rng.random() < pm:
                        c[j] = rng.randrange(s)
                children.append(tuple(c))
        child_outs = evaluate(children)
        merged: dict[Genome, Outcome] = dict(zip(pop, outs, strict=True))
        for g, o in zip(children, child_outs, strict=True):
            merged.setdefault(g, o)
        cand = list(merged)
        cand_outs = [merged[g] for g in cand]
        keep = _select(cand, cand_outs, objectives, population)
        pop = [cand[i] for i in keep]
        outs = [cand_outs[i] for i in keep]
    return pop, outs
