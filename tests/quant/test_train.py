"""Training: deterministic seeds, BWA's own learning rate, resumable checkpoints, config checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from quant.layers import LayerSpec, apply_specs, qlayers
from quant.models import ConvNet
from quant.train import TrainConfig, evaluate, set_seed, train


def _model() -> ConvNet:
    set_seed(1)
    return ConvNet((1, 8, 8), 10, channels=((8, 3, 1), (8, 3, 2)))


def test_interrupted_training_resumes_exactly(digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(epochs=3, progress=False, seed=5)
    a = _model()
    train(a, digits, cfg)
    b = _model()
    ck = tmp_path / "run.ckpt"
    r1 = train(b, digits, cfg, ck, stop_after=1)  # "interrupted" after one epoch
    assert len(r1.history) == 1
    c = _model()  # a fresh process: new model, same checkpoint
    r2 = train(c, digits, cfg, ck)
    assert r2.resumed_from_epoch == 1 and len(r2.history) == 3
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        assert torch.equal(va, vc), k
    with pytest.raises(ValueError, match=r"^train\.checkpoint must come from the same config "
                       r"\{'epochs': 3, .*'seed': 6\}, not \{'epochs': 3, .*'seed': 5\} \(run\.ckpt\)$"):
        train(_model(), digits, TrainConfig(epochs=3, progress=False, seed=6), ck)


def test_bwa_alphas_move_with_their_own_lr(digits) -> None:  # type: ignore[no-untyped-def]
    m = apply_specs(_model(), [LayerSpec(8, 8), LayerSpec(2, 2, scheme="bwa"), LayerSpec(8, 8)])
    alpha0 = qlayers(m)[1].act_q.alpha.detach().clone()
    frozen = copy.deepcopy(m)
    train(frozen, digits, TrainConfig(epochs=1, progress=False, alpha_lr=1e-12))
    assert torch.allclose(qlayers(frozen)[1].act_q.alpha, alpha0, atol=1e-9)
    train(m, digits, TrainConfig(epochs=2, progress=False, alpha_lr=0.05))
    moved = qlayers(m)[1].act_q.alpha.detach()
    assert float((moved - alpha0).abs().max()) > 1e-3
    assert float(moved.min()) >= 0.0  # clamped
    assert evaluate(m, digits.test) > 0.2  # learning (chance is 0.1)


@pytest.mark.parametrize(("kwargs", "exc", "msg"), [
    ({"epochs": -1}, ValueError, r"^TrainConfig\.epochs must be an integer >= 0, not -1$"),
    ({"lr": 0}, ValueError, r"^TrainConfig\.lr must be a finite number > 0, not 0$"),
    ({"lr": float("nan")}, ValueError, r"^TrainConfig\.lr must be a finite number > 0, not nan$"),
    ({"weight_decay": float("inf")}, ValueError, r"^TrainConfig\.weight_decay must be a finite number >= 0, not inf$"),
    ({"batch_size": 1.5}, TypeError, r"^TrainConfig\.batch_size must be an integer, not 1\.5$"),
    ({"optimizer": "lbfgs"}, ValueError, r"^TrainConfig\.optimizer must be one of \['adam', 'sgd'\], not 'lbfgs'$"),
])
def test_config_rejects(kwargs, exc, msg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=msg):
        TrainConfig(**kwargs)
