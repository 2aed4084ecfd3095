"""CMN: exit scores, cascade accounting, threshold choice on held-out data, pruning."""

from __future__ import annotations

import math

import pytest
import torch

from quant.cmn import cascade_outcome, choose_threshold, exit_scores, expected_compute, magnitude_prune
from quant.layers import qlayers
from quant.models import ConvNet


def test_exit_scores_by_rule() -> None:
    z = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]))
    assert torch.allclose(exit_scores(z, "confidence"), torch.tensor([0.7, 0.4], dtype=torch.float64))
    assert torch.allclose(exit_scores(z, "margin"), torch.tensor([0.5, 0.0], dtype=torch.float64))
    h = -torch.tensor([0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1),
                       2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)], dtype=torch.float64)
    assert torch.allclose(exit_scores(z, "entropy"), -h)
    with pytest.raises(ValueError, match=r"CMN.rule must be one of \['confidence', 'margin', 'entropy'\], not 'max'"):
        exit_scores(z, "max")


def test_cascade_accounting_and_threshold() -> None:
    # stage 1 confident and right on 0, 1; unsure and wrong on 2, 3; stage 2 right on all but 1
    z1 = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.1, 0.0], [0.0, 0.1]])
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([0, 1, 1, 0])
    acc, rate = cascade_outcome(z1, z2, y, "confidence", 0.9)
    assert (acc, rate) == (1.0, 0.5)
    assert cascade_outcome(z1, z2, y, "confidence", math.inf) == (0.75, 0.0)
    assert cascade_outcome(z1, z2, y, "confidence", 0.0) == (0.5, 1.0)
    ch = choose_threshold(z1, z2, y, "confidence", max_drop=0.0)
    assert ch.exit_rate == 0.5 and ch.accuracy == 1.0 and ch.target_accuracy == 0.75
    ch = choose_threshold(z1, z2, y, "margin", max_drop=0.25)
    assert ch.exit_rate == 1.0  # 0.5 >= 0.75 - 0.25: everyone may exit
    assert expected_compute(10.0, 100.0, 0.75) == (35.0, 110.0)
    with pytest.raises(ValueError, match=r"CMN.max_drop must be a number in \[0, 1\], not -0.1"):
        choose_threshold(z1, z2, y, "confidence", max_drop=-0.1)


def test_magnitude_prune_density() -> None:
    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    magnitude_prune(m, 0.25)
    ql = qlayers(m)
    assert ql[0].density == 1.0
    for la in ql[1:]:
        assert la.density == pytest.approx(0.25, abs=0.01)
        kept = la.weight.detach().abs()[la.prune_mask.bool()]
        dropped = la.weight.detach().abs()[~la.prune_mask.bool()]
        assert float(kept.min()) >= float(dropped.max())
        assert torch.count_nonzero(la.q_weight()) <= la.prune_mask.sum()
    with pytest.raises(ValueError, match=r"CMN.density must be a number in \(0, 1\], not 0"):
        magnitude_prune(m, 0)
