"""CQ: Taylor scores by hand, class counting, search under a budget, the controls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quant.cq import class_importance, cq_search, mean_bits, reassign
from quant.data import Split
from quant.layers import LayerSpec, QLinear, apply_specs


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = QLinear(2, 3, bias=False)
        self.l2 = QLinear(3, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(self.l1(x))


def test_taylor_score_matches_hand_computation() -> None:
    m = _Tiny()
    with torch.no_grad():
        m.l1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        m.l2.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]))
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([0, 1])
    imp = class_importance(m, Split(x, y), 2, layers=[0])
    # class 0: a = (2, 0, 0); dL/da = W2^T (p - e0)
    for c in range(2):
        a = m.l1(x[c:c + 1])
        p = torch.softmax(m.l2(a), 1)
        g = (p - nn.functional.one_hot(y[c:c + 1], 2)) @ m.l2.weight
        assert torch.allclose(imp.taylor[0][c].float(), (a * g).abs()[0].detach(), atol=1e-6)
    # filter 2 has zero activation: it matters for no class; filter 0 for class 0, filter 1 for class 1
    assert imp.score[0].tolist() == [1, 1, 0]


def test_empty_class_rejected(digits) -> None:  # type: ignore[no-untyped-def]
    keep = digits.train.y != 3
    with pytest.raises(ValueError, match=r"^CQ\.data must hold at least one sample of every class, not none of "
                                         r"classes \[3\]$"):
        class_importance(_Tiny(), Split(digits.train.x[keep], digits.train.y[keep]), 10)


def test_search_meets_budget_and_controls_keep_histogram(digits) -> None:  # type: ignore[no-untyped-def]
    from quant.models import ConvNet

    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    apply_specs(m, [LayerSpec(8, 8)] * 5)
    layers = [1, 2, 3]
    imp = class_importance(m, digits.train, 10, layers, samples_per_class=8)
    assert all(int(s.max()) <= 10 for s in imp.score)
    bits = cq_search(m, imp, digits.val, 2.0, 1, 4, chunk=0.25, max_samples=64)
    mb = mean_bits(m, imp.layers, bits)
    assert mb <= 2.0 and mb > 1.5
    for k, b in enumerate(bits):  # widths monotone in importance inside each layer
        ranked = b[imp.order(k)]
        assert torch.all(ranked[1:] >= ranked[:-1])
    inv = reassign(imp, bits, "inverted")
    rnd = reassign(imp, bits, "random", seed=1)
    for b, bi, br in zip(bits, inv, rnd, strict=True):
        assert sorted(b.tolist()) == sorted(bi.tolist()) == sorted(br.tolist())
    for k, bi in enumerate(inv):
        ranked = bi[imp.order(k)]
        assert torch.all(ranked[1:] <= ranked[:-1])
    with pytest.raises(ValueError, match=r"^CQ\.budget_bits must be a number in \[1, 4\], not 5\.0$"):
        cq_search(m, imp, digits.val, 5.0, 1, 4)
    with pytest.raises(ValueError, match=r"^CQ\.reassign must be one of \['random', 'inverted'\], not 'shuffle'$"):
        reassign(imp, bits, "shuffle")
