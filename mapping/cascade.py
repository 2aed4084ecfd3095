"""Cascades: the exit-threshold sweep that trades accuracy for expected compute.

Input: per-sample confidences and correctness of every stage (arrays of shape ``(S, N)`` for S stages
and N samples, e.g. the max softmax probability and ``argmax == label``). A sample leaves after the
first stage whose confidence is ``>= threshold`` (the last stage takes everything left). For each
threshold the sweep reports the accuracy, the per-stage exit rates (of the inputs *reaching* a stage,
as :class:`hwsim.Stage` defines them) and the expected and worst-case cycles and energy of the
cascade, from the per-stage costs of a simulated schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwsim.network import Network, Stage
from hwsim.result import SimResult

__all__ = ["CascadePoint", "threshold_sweep", "with_exit_rates"]


@dataclass(frozen=True, slots=True)
class CascadePoint:
    """One threshold of :func:`threshold_sweep`: the cascade's accuracy and what it costs on the hardware, so
    a threshold can be chosen by accuracy against compute. ``exit_rates[j]`` is the fraction of the inputs
    reaching stage ``j`` that exit there (the last stage takes all), the form ``Stage.exit_rate`` holds;
    ``expected_*`` weigh each stage by the fraction of inputs that reach it, ``worst_*`` run every stage."""

    threshold: float
    accuracy: float
    exit_rates: tuple[float, ...]
    expected_cycles: float
    expected_energy_pj: float
    worst_cycles: int
    worst_energy_pj: float


def _arrays(confidences: Sequence[Sequence[float]] | np.ndarray, correct: Sequence[Sequence[bool]] | np.ndarray,
            n_stages: int) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64)
    corr = np.asarray(correct, dtype=bool)
    if conf.ndim != 2 or conf.shape != corr.shape:
        raise ValueError(f"threshold_sweep.confidences and .correct must be arrays of equal shape (stages, samples), "
                         f"not {conf.shape} and {corr.shape}")
    if conf.shape[0] != n_stages or conf.shape[1] == 0:
        raise ValueError(f"threshold_sweep.confidences must have one row per stage ({n_stages}) and samples, "
                         f"not shape {conf.shape}")
    return conf, corr


def threshold_sweep(result: SimResult, confidences: Sequence[Sequence[float]] | np.ndarray,
                    correct: Sequence[Sequence[bool]] | np.ndarray, thresholds: Sequence[float]
                    ) -> list[CascadePoint]:
    """The accuracy / compute curve of a cascade over ``thresholds`` (see the module docstring)."""
    k = len(result.stages)
    conf, corr = _arrays(confidences, correct, k)
    cyc = np.array([s.cycles for s in result.stages], dtype=np.float64)
    en = np.array([s.energy.total_pj for s in result.stages], dtype=np.float64)
    n = conf.shape[1]
    out = []
    for thr in thresholds:
        exits = conf >= float(thr)
        exits[-1] = True
        exit_at = np.argmax(exits, axis=0)  # first stage that is confident enough
        acc = float(corr[exit_at, np.arange(n)].mean())
        reach = np.array([(exit_at >= j).mean() for j in range(k)])
        left = np.array([(exit_at == j).mean() for j in range(k)])
        rates = tuple(float(left[j] / reach[j]) if reach[j] > 0 else 0.0 for j in range(k))
        out.append(CascadePoint(float(thr), acc, rates, float(reach @ cyc), float(reach @ en), int(cyc.sum()),
                                float(en.sum())))
    return out


def with_exit_rates(network: Network, exit_rates: Sequence[float]) -> Network:
    """``network`` with the stages' exit rates replaced (e.g. by a point of :func:`threshold_sweep`)."""
    if len(exit_rates) != len(network.stages):
        raise ValueError(f"with_exit_rates exit_rates must have {len(network.stages)} entries, not {len(exit_rates)}")
    stages = tuple(dataclasses.replace(s, exit_rate=float(r)) for s, r in zip(network.stages, exit_rates, strict=True))
    return Network(network.name, tuple(Stage(s.name, s.layers, s.exit_rate, s.exit_rule, s.threshold) for s in stages))
