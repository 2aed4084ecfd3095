"""End-to-end recipes shared by ``hwsim train`` and the experiments: FP pre-training, then one method.

Every method starts from the same pretrained FP model and fine-tunes with the same
:class:`~quant.train.TrainConfig` (quantization-aware training), so methods differ only in their bits.
:class:`MethodConfig` is validated when it is built, i.e. before any training starts.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import hwsim

from .cmn import (
    EXIT_RULES,
    CascadeNet,
    PruneSchedule,
    binary_specs,
    check_budget,
    choose_threshold,
    choose_threshold_budget,
    int_specs,
)
from .cq import calibrate_bn, class_importance, cq_search, cq_specs, mean_bits, reassign
from .data import DataSplits
from .layers import SCHEMES, LayerSpec, apply_specs, qlayers
from .models import QNet, default_arch
from .pdb import FIRST_LAST, check_schedule, pdb_groups, pdb_specs, separability, separability_schedule
from .protocol import check_bits
from .train import TrainConfig, predict_logits, set_seed, train

__all__ = ["METHODS", "CMN_RULES", "MethodConfig", "pretrain", "build_quantized", "run_method", "stage_cycles"]

METHODS = ("fp", "uniform", "pdb", "bwa", "cq", "cmn")
CALIB_SAMPLES = 512
"""Training samples used to re-estimate BatchNorm statistics of a freshly quantized network (CQ)."""
CQ_CHUNK = 0.1
"""Fraction of a layer's filters lowered by one bit per accepted step of CQ's greedy search."""
CMN_RULES = ("budget",) + EXIT_RULES
"""``budget``: the label-free compute-budget rule on the confidence score; the others: the accuracy-target
rule (:func:`quant.cmn.choose_threshold`) on that score."""


@dataclass(frozen=True, slots=True)
class MethodConfig:
    """What to quantize and how.

    * ``uniform``: ``bits=(k,)`` for all layers between the edges (``first_last``), ``scheme`` dorefa|lsq;
    * ``pdb``: ``bits`` = the group schedule, or ``None`` for the separability heuristic on [b_min, b_max];
      ``order="increasing"`` allows a non-decreasing schedule (ablation only);
    * ``bwa``: ``bits=(k,)``, BWA on ``bwa_on`` (act|weight|both);
    * ``cq``: per-filter widths in [b_min, b_max] at mean ``budget_bits``, activations ``act_bits``;
      ``cq_assign`` = score|random|inverted (the controls keep each layer's bit histogram);
    * ``cmn``: binary stage + ``stage2_bits`` stage (zero-capable codes, gradually pruned to ``density``
      during QAT); ``rule`` ``budget`` (default: tau = the validation quantile that keeps the expected
      cycles on ``arch`` at ``budget`` of stage 2's) or an accuracy-target rule with ``max_drop``;
      ``distill``: stage 1 learns from the trained stage 2 for ``stage1_epochs`` (None: twice the
      fine-tuning epochs; a binary net distilled for as long as the 8-bit one falls short on MNIST-1D).
    * ``bwa``: ``alpha_frac_bits`` stores the bit weights as fixed point (None: float).
    """

    method: str
    bits: tuple[int, ...] | None = None
    scheme: str = "dorefa"
    first_last: str = "8bit"
    weights_only: bool = False
    order: str = "decreasing"
    input_bits: int | None = None
    b_min: int = 1
    b_max: int = 4
    budget_bits: float = 2.0
    act_bits: int = 8
    cq_assign: str = "score"
    cq_threshold: str | float = "mean"
    bwa_on: str = "act"
    rule: str = "budget"
    max_drop: float = 0.005
    density: float = 1.0
    stage2_bits: int = 8
    budget: float = 0.35
    distill: bool = True
    stage1_epochs: int | None = None
    arch: str = "edge16_serial"
    alpha_frac_bits: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"MethodConfig.method must be one of {list(METHODS)}, not {self.method!r}")
        if self.bits is not None:
            if not isinstance(self.bits, tuple | list) or not self.bits:
                raise TypeError(f"MethodConfig.bits must be a non-empty tuple of ints, not {self.bits!r}")
            object.__setattr__(self, "bits", tuple(self.bits))
            for i, b in enumerate(self.bits):
                check_bits("MethodConfig", f"bits[{i}]", b)
        if self.method in ("uniform", "bwa") and (self.bits is None or len(self.bits) != 1):
            raise ValueError(f"MethodConfig.bits must be one width for {self.method}, not {self.bits!r}")
        if self.method == "pdb" and self.bits is not None and self.order == "decreasing":
            check_schedule(self.bits, len(self.bits), decreasing=True)
        if self.scheme not in SCHEMES[:2]:
            raise ValueError(f"MethodConfig.scheme must be one of {list(SCHEMES[:2])}, not {self.scheme!r}")
        if self.first_last not in FIRST_LAST:
            raise ValueError(f"MethodConfig.first_last must be one of {list(FIRST_LAST)}, not {self.first_last!r}")
        if self.order not in ("decreasing", "increasing", "any"):
            raise ValueError(f"MethodConfig.order must be one of ['decreasing', 'increasing', 'any'], "
                             f"not {self.order!r}")
        for f in ("b_min", "b_max", "act_bits", "stage2_bits"):
            check_bits("MethodConfig", f, getattr(self, f))
        if self.input_bits is not None:
            check_bits("MethodConfig", "input_bits", self.input_bits)
        if self.b_min > self.b_max:
            raise ValueError(f"MethodConfig.b_min must be <= b_max={self.b_max}, not {self.b_min!r}")
        if self.method == "cq" and not self.b_min <= self.budget_bits <= self.b_max:
            raise ValueError(f"MethodConfig.budget_bits must be a number in [{self.b_min}, {self.b_max}], "
                             f"not {self.budget_bits!r}")
        if self.cq_assign not in ("score", "random", "inverted"):
            raise ValueError(f"MethodConfig.cq_assign must be one of ['score', 'random', 'inverted'], "
                             f"not {self.cq_assign!r}")
        if self.bwa_on not in ("act", "weight", "both"):
            raise ValueError(f"MethodConfig.bwa_on must be one of ['act', 'weight', 'both'], not {self.bwa_on!r}")
        if self.method == "bwa" and self.bwa_on != "act" and self.bits == (1,):
            raise ValueError("MethodConfig.bits must be >= 2 for BWA on weights, not (1,)")
        if self.rule not in CMN_RULES:
            raise ValueError(f"MethodConfig.rule must be one of {list(CMN_RULES)}, not {self.rule!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, int | float) or not 0.0 < self.budget <= 1.0:
            raise ValueError(f"MethodConfig.budget must be a number in (0, 1], not {self.budget!r}")
        if self.stage1_epochs is not None:
            check_bits("MethodConfig", "stage1_epochs", self.stage1_epochs, lo=1, hi=10_000)
        if self.alpha_frac_bits is not None:
            check_bits("MethodConfig", "alpha_frac_bits", self.alpha_frac_bits, lo=0)
        if not 0.0 <= self.max_drop <= 1.0:
            raise ValueError(f"MethodConfig.max_drop must be a number in [0, 1], not {self.max_drop!r}")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"MethodConfig.density must be a number in (0, 1], not {self.density!r}")


def pretrain(data: DataSplits, cfg: TrainConfig, checkpoint: str | Path | None = None,
             model: QNet | None = None) -> QNet:
    """The FP model (``default_arch`` for the data unless given), trained with ``cfg``."""
    set_seed(cfg.seed)
    m = model if model is not None else default_arch(data.in_shape, data.num_classes)
    train(m, data, cfg, checkpoint, desc=f"fp {data.name}")
    return m


def _edge(mc: MethodConfig) -> LayerSpec:
    """First / last layers: 8-bit edges use zero-capable symmetric codes (8-bit integers) under DoReFa."""
    scheme = "sym" if mc.scheme == "dorefa" else mc.scheme
    return {"fp": LayerSpec(), "8bit": LayerSpec(8, 8, scheme=scheme), "same": LayerSpec()}[mc.first_last]


def _uniform_specs(model: QNet, mc: MethodConfig, bits: int, scheme: str, bwa_on: str = "act") -> list[LayerSpec]:
    groups = pdb_groups(model, mc.first_last)
    inner = {i for g in groups for i in g}
    n = len(qlayers(model))
    spec = LayerSpec(bits, 8 if mc.weights_only else bits, scheme=scheme, bwa_on=bwa_on,
                     alpha_frac_bits=mc.alpha_frac_bits if scheme == "bwa" else None)
    specs = [spec if i in inner else _edge(mc) for i in range(n)]
    if mc.first_last == "same" and mc.input_bits is not None:
        specs[0] = replace(specs[0], act_bits=mc.input_bits)
    return specs


def build_quantized(mc: MethodConfig, data: DataSplits, fp_model: QNet,
                    cache: dict[Any, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A copy of ``fp_model`` set up for the method (scores and searches run here), not yet fine-tuned.

    ``cache`` (a dict the caller keeps per FP model): CQ's score and search depend only on the FP model
    and the search settings, so the random / inverted controls reuse the score run's search from it."""
    info: dict[str, Any] = {"method": mc.method}
    if mc.method == "fp":
        return copy.deepcopy(fp_model), info
    if mc.method == "cmn":
        s1, s2 = copy.deepcopy(fp_model), copy.deepcopy(fp_model)
        apply_specs(s1, binary_specs(s1))
        apply_specs(s2, int_specs(s2, mc.stage2_bits))
        return CascadeNet([s1, s2], "confidence" if mc.rule == "budget" else mc.rule), info
    m = copy.deepcopy(fp_model)
    if mc.method == "uniform":
        assert mc.bits is not None
        return apply_specs(m, _uniform_specs(m, mc, mc.bits[0], mc.scheme)), info
    if mc.method == "bwa":
        assert mc.bits is not None
        return apply_specs(m, _uniform_specs(m, mc, mc.bits[0], "bwa", mc.bwa_on)), info
    if mc.method == "pdb":
        groups = pdb_groups(m, mc.first_last)
        scores = separability(fp_model, data.train.x, data.train.y)
        all_groups = [g for g, _ in fp_model.groups()]
        js = [scores[all_groups.index(g)] for g in groups]
        info["separability"] = scores
        if mc.bits is None:
            sched = separability_schedule(js, mc.b_max, mc.b_min)
        else:
            sched = check_schedule(mc.bits, len(groups), decreasing=mc.order == "decreasing")
            if mc.order == "increasing" and any(b < a for a, b in zip(sched, sched[1:], strict=False)):
                raise ValueError(f"PDB.schedule must be non-decreasing for order='increasing', not {sched!r}")
        info["schedule"] = list(sched)
        specs = pdb_specs(m, sched, mc.first_last, mc.weights_only, mc.scheme, decreasing=False,
                          input_bits=mc.input_bits)
        return apply_specs(m, specs), info
    # cq
    layers = [i for g in pdb_groups(m, mc.first_last) for i in g]
    edge = _edge(mc)
    calib = data.train.x[:CALIB_SAMPLES]
    key = ("cq", id(fp_model), mc.first_last, mc.scheme, mc.cq_threshold, mc.budget_bits, mc.b_min, mc.b_max,
           mc.act_bits)
    if cache is not None and key in cache:
        imp, bits, stats = cache[key]
        bits = [b.clone() for b in bits]
    else:
        # score on the calibrated network: edges quantized, BN statistics re-estimated for them
        apply_specs(m, [edge if i not in layers else LayerSpec() for i in range(len(qlayers(m)))])
        calibrate_bn(m, calib)
        imp = class_importance(m, data.train, data.num_classes, layers, threshold=mc.cq_threshold)
        stats = {}
        bits = cq_search(m, imp, data.val, mc.budget_bits, mc.b_min, mc.b_max, mc.act_bits, chunk=CQ_CHUNK,
                         calib=calib, stats=stats)
        if cache is not None:
            cache[key] = (imp, [b.clone() for b in bits], stats)
    info["search"] = stats
    info["score_bits"] = [b.tolist() for b in bits]
    if mc.cq_assign != "score":
        bits = reassign(imp, bits, mc.cq_assign, mc.seed)
    apply_specs(m, cq_specs(m, imp.layers, bits, mc.act_bits, edge))
    calibrate_bn(m, calib)  # every assignment (score, random, inverted) starts fine-tuning calibrated
    info["mean_bits"] = mean_bits(m, imp.layers, bits)
    info["score"] = [s.tolist() for s in imp.score]
    return m, info


def stage_cycles(model: nn.Module, example: torch.Tensor, arch: str | hwsim.Accelerator) -> int:
    """Simulated cycles of one plain network on ``arch`` (a preset name or an accelerator)."""
    from .export import export

    acc = hwsim.resolve_accelerator(arch) if isinstance(arch, str) else arch
    return int(hwsim.simulate(export(model, example), acc).cycles)


def run_method(mc: MethodConfig, data: DataSplits, fp_model: QNet, cfg: TrainConfig,
               checkpoint_dir: str | Path | None = None,
               cache: dict[Any, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the method's model from ``fp_model``, fine-tune it, and (CMN) pick the threshold on val."""
    set_seed(cfg.seed)
    model, info = build_quantized(mc, data, fp_model, cache)
    ck = (lambda tag: Path(checkpoint_dir) / f"{tag}.ckpt") if checkpoint_dir is not None else (lambda tag: None)
    if isinstance(model, CascadeNet):
        s1, s2 = model.stages
        prune = PruneSchedule(mc.density, 0, max(1, round(2 * cfg.epochs / 3))) if mc.density < 1.0 else None
        train(s2, data, cfg, ck("cmn_stage2"), desc="cmn stage2", prune=prune)
        cfg1 = replace(cfg, epochs=mc.stage1_epochs if mc.stage1_epochs is not None else 2 * cfg.epochs)
        train(s1, data, cfg1, ck("cmn_stage1"), desc="cmn stage1", teacher=s2 if mc.distill else None)
        z1v, z2v = predict_logits(s1, data.val), predict_logits(s2, data.val)
        if mc.rule == "budget":
            c1, c2 = (stage_cycles(st, data.train.x[:1], mc.arch) for st in (s1, s2))
            ch = choose_threshold_budget(z1v, model.rule, check_budget(mc.budget), c1 / c2, z2v, data.val.y)
            info.update(stage_cycles=[c1, c2])
        else:
            ch = choose_threshold(z1v, z2v, data.val.y, mc.rule, mc.max_drop)
        model.threshold, model.exit_rate = ch.threshold, ch.exit_rate
        info.update(threshold=ch.threshold if math.isfinite(ch.threshold) else None, val_exit_rate=ch.exit_rate,
                    val_accuracy=ch.accuracy, rule=mc.rule, score=model.rule,
                    density=[la.density for la in qlayers(s2)])
        return model, info
    if mc.method != "fp":
        train(model, data, cfg, ck(mc.method), desc=mc.method)
    return model, info


