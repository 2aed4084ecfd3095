"""CMN: exit scores, cascade accounting, threshold choice on held-out data, pruning."""

from __future__ import annotations

import math
import re

import pytest
import torch

from quant.cmn import (
    PruneSchedule,
    cascade_outcome,
    choose_threshold,
    choose_threshold_budget,
    exit_scores,
    expected_compute,
    int_specs,
    magnitude_prune,
)
from quant.layers import apply_specs, qlayers
from quant.models import ConvNet


def test_exit_scores_by_rule() -> None:
    z = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]))
    assert torch.allclose(exit_scores(z, "confidence"), torch.tensor([0.7, 0.4], dtype=torch.float64))
    assert torch.allclose(exit_scores(z, "margin"), torch.tensor([0.5, 0.0], dtype=torch.float64))
    h = -torch.tensor([0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1),
                       2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)], dtype=torch.float64)
    assert torch.allclose(exit_scores(z, "entropy"), -h)
    with pytest.raises(ValueError, match=r"^CMN\.rule must be one of \['confidence', 'margin', 'entropy'\], not 'max'$"):
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
    with pytest.raises(ValueError, match=r"^CMN\.max_drop must be a number in \[0, 1\], not -0\.1$"):
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
    with pytest.raises(ValueError, match=r"^CMN\.density must be a number in \(0, 1\], not 0$"):
        magnitude_prune(m, 0)


def test_budget_rule_sends_at_most_the_budget_to_stage2() -> None:
    torch.manual_seed(0)
    z1 = torch.randn(200, 10) * 3
    conf = exit_scores(z1, "confidence")
    for budget, ratio in ((0.35, 0.2), (0.5, 0.1), (1.0, 0.0)):
        ch = choose_threshold_budget(z1, "confidence", budget, ratio)
        sent = float((conf < ch.threshold).double().mean())
        assert sent <= budget - ratio + 1e-12 and sent >= budget - ratio - 1 / 200  # as many as allowed
        assert ch.exit_rate == pytest.approx(1 - sent)
    # stage 1 alone already costs the budget: nobody goes on
    assert choose_threshold_budget(z1, "confidence", 0.2, 0.3).exit_rate == 1.0
    # ties: all inputs at the quantile exit, so the budget still holds
    zt = torch.zeros(10, 3)
    assert choose_threshold_budget(zt, "confidence", 0.5, 0.0).exit_rate == 1.0
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(ValueError, match=rf"^CMN\.budget must be a number in \(0, 1\], not {re.escape(repr(bad))}$"):
            choose_threshold_budget(z1, "confidence", bad, 0.1)  # type: ignore[arg-type]


def test_gradual_pruning_schedule_is_monotone_and_reaches_density() -> None:
    sch = PruneSchedule(0.5, 0, 4)
    ds = [sch.at(e) for e in range(6)]
    assert ds[0] < 1.0 and all(b <= a for a, b in zip(ds, ds[1:], strict=False))
    assert ds[3] == pytest.approx(0.5) and ds[5] == pytest.approx(0.5)
    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    masks = []
    for e in range(4):
        sch.apply(m, e)
        masks.append([la.prune_mask.clone() for la in qlayers(m)[1:]])
        with torch.no_grad():  # training moves weights; pruned ones must stay pruned
            for la in qlayers(m):
                la.weight.add_(0.01 * torch.randn_like(la.weight))
    assert qlayers(m)[0].prune_mask is None  # first layer kept whole
    for prev, cur in zip(masks, masks[1:], strict=False):
        for a, b in zip(prev, cur, strict=True):
            assert bool((b <= a).all())
    for la in qlayers(m)[1:]:
        assert la.density == pytest.approx(0.5, abs=0.01)
        assert la.hw_bits().weight_density == pytest.approx(la.density)
    with pytest.raises(ValueError, match=r"^PruneSchedule\.density must be a number in \(0, 1\], not 0$"):
        PruneSchedule(0)


def test_pruned_sym_stage_exports_zero_codes_and_density(digits) -> None:  # type: ignore[no-untyped-def]
    import hwsim
    from quant.export import export
    from quant.intnet import model_integers

    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    apply_specs(m, int_specs(m, 8))
    dense = export(m, digits.test.x[:1])
    PruneSchedule(0.5, 0, 1).apply(m, 0)
    net = export(m, digits.test.x[:1])
    mac = [la for la in net.layers if la.has_macs]
    assert [la.weight_density for la in mac][0] == 1.0
    assert all(la.weight_density == pytest.approx(0.5, abs=0.01) for la in mac[1:])
    assert all(la.weight_bits == 8 for la in mac)  # zero-capable symmetric codes: 8-bit integers
    ints = model_integers(m)
    for rec, la in zip(ints[1:], qlayers(m)[1:], strict=True):
        w = rec["terms"][0]["weight"]
        assert int(w.abs().max()) <= 127 and torch.equal(w == 0, la.prune_mask == 0)
    acc = hwsim.resolve_accelerator("edge16_serial")
    r_dense, r_pruned = hwsim.simulate(dense, acc), hwsim.simulate(net, acc)
    assert net.weight_bits_total < dense.weight_bits_total  # stored compressed
    assert r_pruned.energy.total_pj < r_dense.energy.total_pj  # the simulator sees the pruning
