"""Pareto fronts: non-dominated points of a set of objective vectors (every objective minimised;
negate one to maximise it)."""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask", "nondominated_fronts", "crowding_distance"]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of an ``(n, k)`` array (duplicates of a front point stay)."""
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(v.T[::-1])  # by the first objective, ties by the next ones
    front: list[np.ndarray] = []
    for i in order:
        p = v[i]
        if front:
            f = np.asarray(front)
            if np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)):
                continue
        front.append(p)
        mask[i] = True
    return mask


def nondominated_fronts(values: np.ndarray) -> list[list[int]]:
    """Indices of the rows by front (Deb et al.'s fast non-dominated sort), first front first."""
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    le = np.all(v[:, None, :] <= v[None, :, :], axis=2)
    lt = np.any(v[:, None, :] < v[None, :, :], axis=2)
    dom = le & lt  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.nonzero(dom[i])[0]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (boundary points get infinity)."""
    v = np.asarray(values, dtype=float)
    n, k = v.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(v[:, j], kind="stable")
        span = v[order[-1], j] - v[order[0], j]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (v[order[2:], j] - v[order[:-2], j]) / span
    return d
