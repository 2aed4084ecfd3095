"""CQ: class-based quantization (Sun et al., DATE 2023), project reading.

1. **Score.** For each class c, the samples of class c are run forward and the cross-entropy on their
   true label back-propagated. For every filter (conv output channel) or neuron f of a layer,
   ``T[c, f] = mean_x |sum_positions a_f(x) * dL/da_f(x)|`` (first-order Taylor, Molchanov et al.).
   Filter f *matters for* class c when ``T[c, f] >= theta_{l,c}``: the layer's mean over its filters
   (``threshold="mean"``) or a quantile of them (``threshold=q``). The score is
   ``s_f = #{c : f matters for c}`` in ``0..C``. ``binarize=True`` gives the Class-Aware-Pruning variant
   ``T[c, f] = max_positions mean_x 1[|a * dL/da| > eps]``.
2. **Search.** All filters start at ``b_max``. Within a layer, filters are ranked by ``(s_f, sum_c T)``;
   a step lowers by one bit the ``chunk`` least important filters still above ``b_min``, so widths stay
   monotone in importance. Each round tries that step in every layer and takes the one that raises the
   validation loss least per weight bit saved (weights quantized, no retraining), until the
   weight-count-weighted mean width is at most ``budget_bits``.
3. **Fine-tune** the per-filter-width network (caller: :func:`quant.train.train`).

Both the score and every candidate of the search are evaluated on a *calibrated* network: BatchNorm's
running statistics are re-estimated (:func:`calibrate_bn`, on training samples) after the weights are
quantized, because DoReFa maps the largest weight to +-1 and leaves FP statistics 2-9x off (an
uncalibrated 8-bit net scores near chance). Search budget: one calibration and one validation pass
per layer per round; the number of candidates evaluated is returned in ``cq_search(..., stats=)``.

:func:`reassign` builds the controls: the same per-layer bit histogram assigned at random, or inverted
(most important filters get the fewest bits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split, check_classes
from .layers import LayerSpec, qlayers
from .protocol import check_bits

__all__ = ["ClassImportance", "class_importance", "cq_search", "reassign", "cq_specs", "mean_bits", "REASSIGN",
           "calibrate_bn"]

REASSIGN = ("random", "inverted")


@dataclass(frozen=True, slots=True)
class ClassImportance:
    """Per scored layer: ``taylor`` (classes x filters) and ``score`` (filters, counts in 0..C)."""

    layers: tuple[int, ...]
    taylor: tuple[torch.Tensor, ...]
    score: tuple[torch.Tensor, ...]

    def order(self, k: int) -> torch.Tensor:
        """Filters of the k-th scored layer, least important first (score, then summed Taylor)."""
        s, t = self.score[k].double(), self.taylor[k].sum(0).double()
        key = s * (t.max() + 1.0) * 2 + t  # lexicographic on (score, taylor)
        return torch.argsort(key, stable=True)


def class_importance(model: nn.Module, split: Split, num_classes: int, layers: list[int] | None = None,
                     samples_per_class: int = 64, threshold: str | float = "mean", binarize: bool = False,
                     eps: float = 1e-12) -> ClassImportance:
    """The score of the module docstring for the layers ``layers`` (indices into ``qlayers(model)``)."""
    check_classes("CQ.data", split.y, num_classes)
    if not (threshold == "mean" or (isinstance(threshold, float) and 0.0 < threshold < 1.0)):
        raise ValueError(f"CQ.threshold must be 'mean' or a quantile in (0, 1), not {threshold!r}")
    if isinstance(samples_per_class, bool) or not isinstance(samples_per_class, int) or samples_per_class < 1:
        raise ValueError(f"CQ.samples_per_class must be an integer >= 1, not {samples_per_class!r}")
    ql = qlayers(model)
    idx = list(range(len(ql))) if layers is None else list(layers)
    acts: dict[int, torch.Tensor] = {}

    def keep(k: int) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            out.retain_grad()
            acts[k] = out
        return hook

    hooks = [ql[i].register_forward_hook(keep(k)) for k, i in enumerate(idx)]
    taylor = [torch.zeros(num_classes, ql[i].weight.shape[0], dtype=torch.float64) for i in idx]
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        for c in range(num_classes):
            sel = torch.nonzero(split.y == c).flatten()[:samples_per_class]
            x, y = split.x[sel].to(dev), split.y[sel].to(dev)
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y, reduction="sum").backward()
            for k in range(len(idx)):
                a, g = acts[k], acts[k].grad
                assert g is not None
                prod = (a * g).detach()
                if binarize:
                    t = (prod.abs() > eps).double().mean(0)
                    t = t.flatten(1).max(1).values if t.dim() > 1 else t
                else:
                    t = (prod.flatten(2).sum(2) if prod.dim() > 2 else prod).abs().double().mean(0)
                taylor[k][c] = t.cpu()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was)
    scores = []
    for t in taylor:
        theta = t.mean(1, keepdim=True) if threshold == "mean" else torch.quantile(t, float(threshold), dim=1,
                                                                                    keepdim=True)
        scores.append(((t >= theta) & (t > 0)).sum(0))
    return ClassImportance(tuple(idx), tuple(taylor), tuple(scores))


def mean_bits(model: nn.Module, layers: list[int] | tuple[int, ...], bits: list[torch.Tensor]) -> float:
    """Weight-count-weighted mean width of per-filter ``bits`` over ``layers``."""
    ql = qlayers(model)
    num = sum(float(b.double().sum()) * ql[i].weight[0].numel() for i, b in zip(layers, bits, strict=True))
    den = sum(ql[i].weight.numel() for i in layers)
    return num / den


def cq_specs(model: nn.Module, layers: tuple[int, ...], bits: list[torch.Tensor] | list[tuple[int, ...]],
             act_bits: int = 8, edge: LayerSpec | None = None) -> list[LayerSpec]:
    """Per-layer specs: per-filter widths on ``layers``, ``edge`` (default 8-bit) elsewhere."""
    edge = edge if edge is not None else LayerSpec(8, 8, scheme="sym")
    specs = [edge] * len(qlayers(model))
    for i, b in zip(layers, bits, strict=True):
        cwb = tuple(int(v) for v in cast(Sequence[Any], b))  # a tensor row or a tuple of widths
        specs[i] = LayerSpec(max(cwb), act_bits, cwb)
    return specs


@torch.no_grad()
def calibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Re-estimate every BatchNorm's running mean / variance on ``x`` (cumulative average, train-mode
    forward passes, no gradient); the weights are untouched and the model is left in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    dev = next(model.parameters()).device
    model.train()
    try:
        for i in range(0, x.shape[0], batch_size):
            model(x[i:i + batch_size].to(dev))
    finally:
        for m, mo in zip(bns, saved, strict=True):
            m.momentum = mo
        model.eval()


@torch.no_grad()
def _val_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(model(x), y))


def cq_search(model: nn.Module, imp: ClassImportance, val: Split, budget_bits: float, b_min: int = 1,
              b_max: int = 4, act_bits: int = 8, chunk: float = 0.05, max_samples: int = 512,
              calib: torch.Tensor | None = None, stats: dict[str, int] | None = None) -> list[torch.Tensor]:
    """Greedy search of the module docstring; returns per-filter widths of the scored layers.

    ``calib``: inputs for BatchNorm re-estimation before every evaluation (None: no re-estimation).
    ``stats`` (a dict) receives ``candidates`` (networks evaluated) and ``rounds``.
    Leaves ``model``'s scored layers quantized with the result (and calibrated).
    """
    check_bits("CQ", "b_min", b_min)
    check_bits("CQ", "b_max", b_max)
    check_bits("CQ", "act_bits", act_bits)
    if b_min > b_max:
        raise ValueError(f"CQ.b_min must be <= b_max={b_max}, not {b_min!r}")
    if isinstance(budget_bits, bool) or not isinstance(budget_bits, int | float) or not b_min <= budget_bits <= b_max:
        raise ValueError(f"CQ.budget_bits must be a number in [{b_min}, {b_max}], not {budget_bits!r}")
    if not 0.0 < chunk <= 1.0:
        raise ValueError(f"CQ.chunk must be a number in (0, 1], not {chunk!r}")
    ql = qlayers(model)
    dev = next(model.parameters()).device
    x, y = val.x[:max_samples].to(dev), val.y[:max_samples].to(dev)
    bits = [torch.full((ql[i].weight.shape[0],), b_max, dtype=torch.int64) for i in imp.layers]
    orders = [imp.order(k) for k in range(len(imp.layers))]
    was = model.training
    model.eval()

    def set_layer(k: int, b: torch.Tensor) -> None:
        cwb = tuple(int(v) for v in b)
        ql[imp.layers[k]].set_spec(LayerSpec(max(cwb), act_bits, cwb))

    def lowered(k: int) -> torch.Tensor | None:
        b = bits[k].clone()
        cand = [int(f) for f in orders[k] if b[f] > b_min]
        if not cand:
            return None
        n = max(1, math.ceil(chunk * len(b)))
        for f in cand[:n]:
            b[f] -= 1
        return b

    def loss_now() -> float:
        if calib is not None:
            calibrate_bn(model, calib)
        return _val_loss(model, x, y)

    for k in range(len(bits)):
        set_layer(k, bits[k])
    base = loss_now()
    n_cand = n_rounds = 0
    while mean_bits(model, imp.layers, bits) > budget_bits + 1e-9:
        best: tuple[float, int, torch.Tensor, float] | None = None
        n_rounds += 1
        for k in range(len(bits)):
            b = lowered(k)
            if b is None:
                continue
            set_layer(k, b)
            loss = loss_now()
            n_cand += 1
            set_layer(k, bits[k])
            saved = float((bits[k] - b).sum()) * ql[imp.layers[k]].weight[0].numel()
            cost = (loss - base) / saved
            if best is None or cost < best[0]:
                best = (cost, k, b, loss)
        if best is None:
            break
        _, k, b, base = best
        bits[k] = b
        set_layer(k, b)
    if calib is not None:
        calibrate_bn(model, calib)
    if stats is not None:
        stats.update(candidates=n_cand, rounds=n_rounds)
    model.train(was)
    return bits


def reassign(imp: ClassImportance, bits: list[torch.Tensor], mode: str, seed: int = 0) -> list[torch.Tensor]:
    """Controls with each layer's bit histogram kept: ``random`` permutation or ``inverted`` ranking."""
    if mode not in REASSIGN:
        raise ValueError(f"CQ.reassign must be one of {list(REASSIGN)}, not {mode!r}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, b in enumerate(bits):
        if mode == "random":
            out.append(b[torch.randperm(len(b), generator=gen)])
            continue
        order = imp.order(k)  # least important first
        new = torch.empty_like(b)
        new[order.flip(0)] = torch.sort(b).values  # most important gets the fewest bits
        out.append(new)
    return out
