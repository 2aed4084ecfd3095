"""CMN: cascaded mixed-precision networks (Geng et al., ICIP 2020), project reading.

Stage 1 is a binary network (1-bit weights and activations; first and last layers at 8 bits, the usual
BNN practice) and always runs. Stage 2 is an 8-bit network with zero-capable symmetric weight codes
(``sym``), pruned *during* its quantization-aware training by a gradual magnitude schedule
(:class:`PruneSchedule`, Zhu & Gupta 2017) down to ``density``; it runs on the same raw input, only
when stage 1 is not confident. Stage 1 may be distilled from the trained stage 2 (``train(teacher=)``).

Exit scores (higher = more confident): ``confidence`` = max softmax, ``margin`` = p1 - p2, ``entropy`` =
minus the softmax entropy. An input exits at stage 1 when its score >= threshold tau, chosen on the
validation split (never the test split) by one of two rules:

* ``budget`` (:func:`choose_threshold_budget`, label-free): tau is the validation quantile of the
  confidence that sends to stage 2 as many inputs as a cycle budget allows: with stage costs C1, C2
  (simulated cycles), ``C1 + q C2 <= budget C2`` gives the fraction ``q = budget - C1/C2``;
* ``accuracy`` (:func:`choose_threshold`): the lowest tau whose cascade accuracy on the validation split
  is at least stage 2's minus ``max_drop`` (on a few hundred samples this over-fits the split).

Compute: expected ``C1 + (1 - r) C2`` and worst case ``C1 + C2`` (r = exit rate), in BOPs
(``MACs x b_w x b_a``) or in simulated cycles / energy (:func:`quant.export.export` writes the stages
with their exit rate and each layer's ``weight_density``, and ``hwsim.simulate`` reports both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .layers import LayerSpec, qlayers

__all__ = ["EXIT_RULES", "CascadeNet", "exit_scores", "cascade_outcome", "choose_threshold", "ThresholdChoice",
           "expected_compute", "magnitude_prune", "binary_specs", "int_specs", "threshold_curve",
           "choose_threshold_budget", "PruneSchedule", "check_budget"]

EXIT_RULES = ("confidence", "margin", "entropy")


def _check_rule(rule: object) -> str:
    if rule not in EXIT_RULES:
        raise ValueError(f"CMN.rule must be one of {list(EXIT_RULES)}, not {rule!r}")
    return str(rule)


def exit_scores(logits: torch.Tensor, rule: str) -> torch.Tensor:
    """Confidence of each row of ``logits`` under ``rule`` (higher = exit sooner)."""
    _check_rule(rule)
    p = torch.softmax(logits.double(), dim=1)
    if rule == "confidence":
        return p.max(1).values
    if rule == "margin":
        top = p.topk(2, dim=1).values
        return top[:, 0] - top[:, 1]
    return (p * torch.log(p.clamp_min(1e-300))).sum(1)


def cascade_outcome(logits1: torch.Tensor, logits2: torch.Tensor, y: torch.Tensor, rule: str,
                    threshold: float) -> tuple[float, float]:
    """``(accuracy, exit_rate)`` of the two-stage cascade at ``threshold``."""
    ex = exit_scores(logits1, rule) >= threshold
    pred = torch.where(ex, logits1.argmax(1), logits2.argmax(1))
    return float((pred == y).double().mean()), float(ex.double().mean())


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """The exit threshold picked on held-out data, with what it achieved there, so a report can show the
    choice next to its goal: the fraction of inputs that exit at stage 1, the cascade's accuracy, and
    ``target_accuracy`` (the accuracy rule's floor ``acc(stage 2) - max_drop``; the budget rule's stage-2
    accuracy; NaN when the budget rule was given no labels, as is ``accuracy``)."""

    threshold: float
    exit_rate: float
    accuracy: float
    target_accuracy: float


def choose_threshold(logits1: torch.Tensor, logits2: torch.Tensor, y: torch.Tensor, rule: str = "confidence",
                     max_drop: float = 0.005) -> ThresholdChoice:
    """The lowest tau (most exits) whose cascade accuracy on this (held-out) split is at least
    ``acc(stage 2) - max_drop``; ``+inf`` (nobody exits) when no tau qualifies."""
    _check_rule(rule)
    if isinstance(max_drop, bool) or not isinstance(max_drop, int | float) or not 0.0 <= max_drop <= 1.0:
        raise ValueError(f"CMN.max_drop must be a number in [0, 1], not {max_drop!r}")
    target = float((logits2.argmax(1) == y).double().mean()) - max_drop
    s = exit_scores(logits1, rule)
    for tau in torch.unique(s).tolist():  # ascending: first qualifying tau exits the most
        acc, rate = cascade_outcome(logits1, logits2, y, rule, tau)
        if acc >= target - 1e-12:
            return ThresholdChoice(float(tau), rate, acc, target)
    acc, _ = cascade_outcome(logits1, logits2, y, rule, math.inf)
    return ThresholdChoice(math.inf, 0.0, acc, target)


def check_budget(budget: object) -> float:
    """A compute budget: a fraction of the last stage's cycles in (0, 1]."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0.0 < budget <= 1.0:
        raise ValueError(f"CMN.budget must be a number in (0, 1], not {budget!r}")
    return float(budget)


def choose_threshold_budget(logits1: torch.Tensor, rule: str, budget: float, cost_ratio: float,
                            logits2: torch.Tensor | None = None, y: torch.Tensor | None = None) -> ThresholdChoice:
    """The label-free budget rule (module docstring): the fraction ``q = budget - cost_ratio`` (cost_ratio =
    C1 / C2) of the least confident inputs of this split goes to stage 2; tau is the score of the first
    input that exits. ``logits2``/``y`` only fill in the accuracy of the choice on this split."""
    _check_rule(rule)
    check_budget(budget)
    s = torch.sort(exit_scores(logits1, rule)).values
    q = max(0.0, budget - float(cost_ratio))
    m = int(math.floor(q * len(s) + 1e-9))  # inputs allowed to stage 2
    # exit iff score >= s[m]: at most m inputs (fewer on ties) go on
    tau = -math.inf if m == 0 else (math.inf if m >= len(s) else float(s[m]))
    rate = float((exit_scores(logits1, rule) >= tau).double().mean())
    acc = target = math.nan
    if logits2 is not None and y is not None:
        acc, _ = cascade_outcome(logits1, logits2, y, rule, tau)
        target = float((logits2.argmax(1) == y).double().mean())
    return ThresholdChoice(tau, rate, acc, target)


@dataclass(frozen=True, slots=True)
class PruneSchedule:
    """Gradual magnitude pruning (Zhu & Gupta 2017): density ``1 -> density`` over epochs
    ``[start, end)`` as ``d_t = d + (1 - d)(1 - p)^3`` (p = progress), then fixed; the first layer kept."""

    density: float
    start: int = 0
    end: int = 1
    skip_first: bool = True

    def __post_init__(self) -> None:
        d = self.density
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0.0 < d <= 1.0:
            raise ValueError(f"PruneSchedule.density must be a number in (0, 1], not {d!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"PruneSchedule.end must be > start={self.start} >= 0, not {self.end!r}")

    def at(self, epoch: int) -> float:
        """Density to prune to at the start of ``epoch`` (0-based); reached at epoch ``end - 1``."""
        if epoch < self.start:
            return 1.0
        p = min(1.0, (epoch - self.start + 1) / (self.end - self.start))
        return self.density + (1.0 - self.density) * (1.0 - p) ** 3

    @torch.no_grad()
    def apply(self, model: nn.Module, epoch: int) -> float:
        """Update the masks for ``epoch``: per layer keep the largest ``at(epoch)`` fraction of the weights
        still kept (pruned weights stay pruned); returns that density."""
        d = self.at(epoch)
        for i, la in enumerate(qlayers(model)):
            if d >= 1.0 or (self.skip_first and i == 0):
                continue
            w = la.weight.abs() * (la.prune_mask if la.prune_mask is not None else 1.0)
            k = max(1, int(round(d * w.numel())))
            thr = torch.topk(w.flatten(), k).values[-1]
            la.set_prune_mask(((w >= thr) & (w > 0)).float())
        return d


def threshold_curve(logits1: torch.Tensor, logits2: torch.Tensor, y: torch.Tensor, rule: str,
                    thresholds: list[float]) -> list[tuple[float, float, float]]:
    """``[(tau, accuracy, exit_rate), ...]`` over the given thresholds."""
    return [(t, *cascade_outcome(logits1, logits2, y, rule, t)) for t in thresholds]


def expected_compute(c1: float, c2: float, exit_rate: float) -> tuple[float, float]:
    """``(expected, worst_case)`` cost of the cascade: ``C1 + (1 - r) C2`` and ``C1 + C2``."""
    if not 0.0 <= exit_rate <= 1.0:
        raise ValueError(f"CMN.exit_rate must be a number in [0, 1], not {exit_rate!r}")
    return c1 + (1.0 - exit_rate) * c2, c1 + c2


def binary_specs(model: nn.Module, edge_bits: int = 8) -> list[LayerSpec]:
    """Stage 1: 1-bit weights and activations inside, ``edge_bits`` for the first and last layers."""
    n = len(qlayers(model))
    edge = LayerSpec(edge_bits, edge_bits, scheme="sym")
    return [edge if i in (0, n - 1) else LayerSpec(1, 1) for i in range(n)]


def int_specs(model: nn.Module, bits: int = 8, scheme: str = "sym") -> list[LayerSpec]:
    """Every layer at ``bits`` weights and activations (zero-capable symmetric weight codes by default)."""
    return [LayerSpec(bits, bits, scheme=scheme)] * len(qlayers(model))


@torch.no_grad()
def magnitude_prune(model: nn.Module, density: float, skip_first: bool = True) -> None:
    """Keep the ``density`` fraction of largest-magnitude weights in each layer (first layer kept whole)."""
    if isinstance(density, bool) or not isinstance(density, int | float) or not 0.0 < density <= 1.0:
        raise ValueError(f"CMN.density must be a number in (0, 1], not {density!r}")
    for i, la in enumerate(qlayers(model)):
        if density >= 1.0 or (skip_first and i == 0):
            la.set_prune_mask(None)
            continue
        w = la.weight.abs().flatten()
        k = max(1, int(round(density * w.numel())))
        thr = torch.topk(w, k).values[-1]
        la.set_prune_mask((la.weight.abs() >= thr).float())


class CascadeNet(nn.Module):
    """Two (or more) networks on the same input; ``forward`` gives each input the logits of the stage it
    exits at. ``exit_rate`` holds the measured fraction leaving stage 1 (set by the caller)."""

    def __init__(self, stages: list[nn.Module], rule: str = "confidence", threshold: float = math.inf,
                 exit_rate: float = 0.0) -> None:
        super().__init__()
        if len(stages) != 2:
            raise ValueError(f"CascadeNet.stages must hold 2 networks, not {len(stages)}")
        self.stages = nn.ModuleList(stages)
        self.rule = _check_rule(rule)
        self.threshold = float(threshold)
        self.exit_rate = float(exit_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z1 = self.stages[0](x)
        ex = exit_scores(z1, self.rule) >= self.threshold
        if bool(ex.all()):
            return z1
        z2 = self.stages[1](x)
        return torch.where(ex.unsqueeze(1), z1, z2.to(z1.dtype))

    def config(self) -> dict[str, Any]:
        return {"arch": "cascade", "stages": [s.config() for s in self.stages],  # type: ignore[operator]
                "rule": self.rule, "threshold": self.threshold, "exit_rate": self.exit_rate}
