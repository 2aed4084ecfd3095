"""PDB: progressively decreasing bitwidth (Chu et al., Pattern Recognition 2021), project reading.

1. Split the network into ordered groups (``model.groups()``: one per layer, or one per ResNet stage).
   The first and last layers follow an explicit policy ``first_last``: ``"fp"`` (unquantized),
   ``"8bit"``, or ``"same"`` (they are groups like the others and get the schedule's first/last width).
2. Measure the class separability of each group's output features on the trained FP model: the Fisher
   ratio ``J = tr(S_B) / tr(S_W)`` of globally average-pooled features.
3. Map separability to bits by its magnitude on a log scale: fit the non-decreasing sequence closest
   (least squares, pool-adjacent-violators) to ``log J_g``, so a dip in separability is averaged with
   its neighbours instead of hidden by a running minimum, then
   ``b_g = round(b_max - (b_max - b_min) * r_g)`` with ``r_g = (L_g - L_1) / (L_G - L_1)`` of the fitted
   ``L``: equal separability *ratios* cost equal bits, and the schedule is non-increasing by
   construction.
4. Weights and the activations *entering* a layer get the group's width (``weights_only`` keeps
   activations at 8 bits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .layers import LayerSpec, qlayers
from .protocol import check_bits

__all__ = ["FIRST_LAST", "fisher_ratio", "separability", "separability_schedule", "isotonic", "check_schedule",
           "pdb_specs", "pdb_groups", "weight_memory_bits"]

FIRST_LAST = ("fp", "8bit", "same")


def fisher_ratio(features: torch.Tensor, labels: torch.Tensor) -> float:
    """``tr(S_B) / tr(S_W)``: between-class over within-class scatter of ``features`` (N x D, or
    N x C x H x W, pooled over H, W first)."""
    f = features.detach().double()
    if f.dim() > 2:
        f = f.flatten(2).mean(2)
    y = torch.as_tensor(labels)
    if f.shape[0] != y.shape[0]:
        raise ValueError(f"fisher_ratio.labels must have {f.shape[0]} entries, not {y.shape[0]}")
    mu = f.mean(0)
    sb = sw = 0.0
    for c in torch.unique(y):
        fc = f[y == c]
        mc = fc.mean(0)
        sb += fc.shape[0] * float(((mc - mu) ** 2).sum())
        sw += float(((fc - mc) ** 2).sum())
    if sw == 0.0:
        return math.inf if sb > 0 else 0.0
    return sb / sw


@torch.no_grad()
def separability(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> list[float]:
    """Fisher ratio of each group's output features (``model.groups()``), in group order."""
    mods = [m for _, m in model.groups()]  # type: ignore[operator]
    feats: list[list[torch.Tensor]] = [[] for _ in mods]
    hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: feats[k].append(o.detach().cpu()))
             for k, m in enumerate(mods)]
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        for i in range(0, len(y), batch_size):
            model(x[i:i + batch_size].to(dev))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return [fisher_ratio(torch.cat(f), y) for f in feats]


def separability_schedule(scores: Sequence[float], b_max: int, b_min: int) -> tuple[int, ...]:
    """The heuristic of the module docstring: separability scores -> a non-increasing bit schedule."""
    check_bits("PDB", "b_max", b_max)
    check_bits("PDB", "b_min", b_min)
    if b_min > b_max:
        raise ValueError(f"PDB.b_min must be <= b_max={b_max}, not {b_min!r}")
    if not scores:
        raise ValueError("PDB.scores must be a non-empty list, not []")
    fit = isotonic([math.log(max(float(j), 1e-12)) for j in scores])
    lo, hi = fit[0], fit[-1]
    out = []
    for v in fit:
        r = 0.0 if hi <= lo else (v - lo) / (hi - lo)
        out.append(min(max(round(b_max - (b_max - b_min) * r), b_min), b_max))
    return tuple(out)


def isotonic(values: Sequence[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    return [b[0] / b[1] for b in blocks for _ in range(int(b[1]))]


def check_schedule(schedule: object, n_groups: int, decreasing: bool = True) -> tuple[int, ...]:
    """A bit schedule: ``n_groups`` ints in [1, 16], non-increasing unless ``decreasing=False``."""
    if not isinstance(schedule, tuple | list):
        raise TypeError(f"PDB.schedule must be a list of bitwidths, not {schedule!r}")
    sched = tuple(schedule)
    for i, b in enumerate(sched):
        check_bits("PDB", f"schedule[{i}]", b)
    if len(sched) != n_groups:
        raise ValueError(f"PDB.schedule must have one bitwidth per group ({n_groups}), not {sched!r}")
    if decreasing and any(b > a for a, b in zip(sched, sched[1:], strict=False)):
        raise ValueError(f"PDB.schedule must be non-increasing, not {sched!r}")
    return sched


def pdb_groups(model: nn.Module, first_last: str) -> list[list[int]]:
    """Indices (into ``qlayers(model)``) of the groups that the schedule covers under ``first_last``."""
    if first_last not in FIRST_LAST:
        raise ValueError(f"PDB.first_last must be one of {list(FIRST_LAST)}, not {first_last!r}")
    groups = [g for g, _ in model.groups()]  # type: ignore[operator]
    return groups if first_last == "same" else groups[1:-1]


def pdb_specs(model: nn.Module, schedule: Sequence[int], first_last: str = "8bit", weights_only: bool = False,
              scheme: str = "dorefa", decreasing: bool = True, input_bits: int | None = None) -> list[LayerSpec]:
    """Per-layer specs for a group schedule (``decreasing=False`` allows any order, for ablations).

    With ``first_last="same"`` the image entering the first layer is quantized to the first group's
    width (an all-1-bit net sees a binarised image) unless ``input_bits`` fixes it.
    """
    if input_bits is not None:
        check_bits("PDB", "input_bits", input_bits)
    groups = pdb_groups(model, first_last)
    sched = check_schedule(schedule, len(groups), decreasing)
    n = len(qlayers(model))
    edge = {"fp": LayerSpec(), "8bit": LayerSpec(8, 8, scheme="sym" if scheme == "dorefa" else scheme),
            "same": None}[first_last]
    specs: list[LayerSpec | None] = [edge] * n
    for g, b in zip(groups, sched, strict=True):
        for i in g:
            specs[i] = LayerSpec(b, 8 if weights_only else b, scheme=scheme)
    if first_last == "same" and input_bits is not None:
        s0 = specs[0]
        assert s0 is not None
        specs[0] = LayerSpec(s0.weight_bits, input_bits, scheme=scheme)
    assert all(s is not None for s in specs)
    return specs  # type: ignore[return-value]


def weight_memory_bits(model: nn.Module, layers: Sequence[int] | None = None, fp_bits: int = 32) -> int:
    """``sum_l N_l b_l`` over the given layers (all by default); per-channel widths counted per channel."""
    total = 0
    ql = qlayers(model)
    for i in (range(len(ql)) if layers is None else layers):
        la = ql[i]
        s = la.spec
        per_filter = la.weight[0].numel()
        if s.channel_weight_bits is not None:
            total += per_filter * sum(s.channel_weight_bits)
        else:
            total += la.weight.numel() * (s.weight_bits if s.weight_bits is not None else fp_bits)
    return total
