"""Training and fine-tuning: deterministic, with a tqdm progress bar and resumable checkpoints.

Determinism: the model is initialised under ``torch.manual_seed(seed)`` by the caller
(:func:`set_seed`); each epoch shuffles with its own generator seeded by ``(seed, epoch)``, so an
interrupted run that resumes from its checkpoint (saved atomically after every epoch) continues
exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .data import DataSplits, Split, batches
from .quantizers import BWAQuantizer

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "predict_logits", "set_seed", "pick_device"]

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training or fine-tuning run. ``alpha_lr`` is BWA's own learning rate for the bit weights,
    ``alpha_min`` the lower clamp applied to them after each step (``None``: no clamp)."""

    epochs: int = 15
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    optimizer: str = "adam"
    alpha_lr: float = 1e-2
    alpha_min: float | None = 0.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for f, lo in (("epochs", 0), ("batch_size", 1), ("seed", 0)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"TrainConfig.{f} must be an integer, not {v!r}")
            if v < lo:
                raise ValueError(f"TrainConfig.{f} must be an integer >= {lo}, not {v!r}")
        for f in ("lr", "alpha_lr", "weight_decay"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"TrainConfig.{f} must be a number, not {v!r}")
            if not math.isfinite(v) or v < 0 or (f != "weight_decay" and v == 0):
                rule = "a finite number >= 0" if f == "weight_decay" else "a finite number > 0"
                raise ValueError(f"TrainConfig.{f} must be {rule}, not {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {list(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"TrainConfig.device must be one of ['auto', 'cpu', 'cuda'], not {self.device!r}")


@dataclass(slots=True)
class TrainResult:
    """What :func:`train` did: one ``{"epoch", "loss", "val_acc"}`` record per epoch (those of a resumed
    checkpoint included) and the epoch it resumed from (0 for a fresh run). Mutable: :func:`train` fills it
    as it goes, and its history is saved with each checkpoint."""

    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) on every sample of ``split``, on the CPU."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = torch.cat([model(x.to(dev)).cpu() for x, _ in batches(split, batch_size)])
    model.train(was)
    return out


def evaluate(model: nn.Module, split: Split) -> float:
    """Top-1 accuracy in [0, 1]."""
    return float((predict_logits(model, split).argmax(1) == split.y).float().mean())


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    alphas = [m.alpha for m in model.modules() if isinstance(m, BWAQuantizer)]
    ids = {id(p) for p in alphas}
    rest = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": cfg.lr}]
    if alphas:
        groups.append({"params": alphas, "lr": cfg.alpha_lr, "weight_decay": 0.0})
    return groups


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _kd_loss(z: torch.Tensor, zt: torch.Tensor, y: torch.Tensor, weight: float, temp: float) -> torch.Tensor:
    """Hinton et al.'s distillation: ``(1 - w) CE + w T^2 KL(softmax(zt/T) || softmax(z/T))``."""
    kl = F.kl_div(F.log_softmax(z / temp, 1), F.log_softmax(zt / temp, 1), reduction="batchmean", log_target=True)
    return (1.0 - weight) * F.cross_entropy(z, y) + weight * temp * temp * kl


def train(model: nn.Module, data: DataSplits, cfg: TrainConfig, checkpoint: str | Path | None = None,
          desc: str = "train", stop_after: int | None = None, teacher: nn.Module | None = None,
          kd_weight: float = 0.7, kd_temperature: float = 4.0, prune: Any = None) -> TrainResult:
    """Train ``model`` in place (cross-entropy, cosine learning-rate decay) and return the history.

    With ``checkpoint``, the state after every epoch is saved there; if the file exists, training
    resumes after its last epoch (the file must come from the same model and config).
    ``stop_after`` ends the run after that many epochs of this call (a time budget; run again to go on).
    ``teacher`` (a trained model, eval mode, frozen) turns the loss into :func:`_kd_loss`; ``prune`` (a
    :class:`quant.cmn.PruneSchedule`) updates the pruning masks at the start of every epoch, so pruning
    and quantization-aware training are optimised together.
    """
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"train.cfg must be a TrainConfig, not {cfg!r}")
    if not 0.0 <= kd_weight <= 1.0 or kd_temperature <= 0:
        raise ValueError(f"train.kd_weight must be in [0, 1] and kd_temperature > 0, not {kd_weight!r}, "
                         f"{kd_temperature!r}")
    dev = pick_device(cfg.device)
    model.to(dev)
    groups = _param_groups(model, cfg)
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(groups, momentum=0.9, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    result = TrainResult()
    start = 0
    ck = Path(checkpoint) if checkpoint is not None else None
    fingerprint = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "device")}
    if ck is not None and ck.is_file():
        state = torch.load(ck, map_location=dev, weights_only=True)
        if state["config"] != fingerprint:
            raise ValueError(f"train.checkpoint must come from the same config {fingerprint!r}, "
                             f"not {state['config']!r} ({ck.name})")
        for name, mod in model.named_modules():  # pruning masks are buffers that exist once pruned
            key = f"{name}.prune_mask" if name else "prune_mask"
            if key in state["model"] and hasattr(mod, "set_prune_mask"):
                mod.set_prune_mask(state["model"][key])
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        result.history = list(state["history"])
        start = result.resumed_from_epoch = int(state["epoch"])
    alphas = [m.alpha for m in model.modules() if isinstance(m, BWAQuantizer)]
    bar = tqdm(range(start, cfg.epochs), desc=desc, disable=not cfg.progress, leave=False,
               initial=start, total=cfg.epochs)
    done_here = 0
    for epoch in bar:
        if stop_after is not None and done_here >= stop_after:
            break
        done_here += 1
        if prune is not None:
            prune.apply(model, epoch)
        model.train()
        if teacher is not None:
            teacher.to(dev).eval()
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        tot, n = 0.0, 0
        for x, y in batches(data.train, cfg.batch_size, gen):
            x, y = x.to(dev), y.to(dev)
            if teacher is None:
                loss = F.cross_entropy(model(x), y)
            else:
                with torch.no_grad():
                    zt = teacher(x)
                loss = _kd_loss(model(x), zt, y, kd_weight, kd_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if cfg.alpha_min is not None:
                with torch.no_grad():
                    for a in alphas:
                        a.clamp_(min=cfg.alpha_min)
            tot += float(loss.detach()) * len(y)
            n += len(y)
        sched.step()
        val = evaluate(model, data.val)
        result.history.append({"epoch": epoch + 1, "loss": tot / max(n, 1), "val_acc": val})
        bar.set_postfix(loss=f"{tot / max(n, 1):.3f}", val=f"{val:.3f}")
        if ck is not None:
            _save_atomic({"epoch": epoch + 1, "config": fingerprint, "model": model.state_dict(),
                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                          "history": result.history}, ck)
    bar.close()
    return result
