"""Quantizers: exact levels on exhaustive small domains, codes that decode exactly, STE gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.quantizers import (
    BWAQuantizer,
    LSQQuantizer,
    act_codes,
    bit_planes,
    dorefa_act,
    dorefa_weight,
    quantize_unit,
    round_ste,
    sign_ste,
    weight_codes,
)


@pytest.mark.parametrize("bits", range(1, 9))
def test_act_quantizer_exhaustive(bits: int) -> None:
    n = 2**bits - 1
    # every level is a fixed point; every point of a fine grid goes to its nearest level
    levels = torch.arange(n + 1, dtype=torch.float32) / n
    assert torch.equal(dorefa_act(levels, bits), levels)
    x = torch.linspace(-0.5, 1.5, 4001)
    q = dorefa_act(x, bits)
    assert torch.all(torch.isin(q, levels))  # only levels come out ...
    nearest = (x.clamp(0, 1).view(-1, 1) - levels.view(1, -1)).abs().min(1).values
    assert torch.all((q - x.clamp(0, 1)).abs() <= nearest + 1e-6)  # ... and the nearest one
    assert len(torch.unique(q)) == n + 1
    codes = act_codes(x, bits)
    assert int(codes.min()) == 0 and int(codes.max()) == n
    assert torch.equal(codes.float() / n, q)


@pytest.mark.parametrize("bits", range(2, 9))
def test_weight_quantizer_levels_and_codes(bits: int) -> None:
    n = 2**bits - 1
    w = torch.linspace(-3, 3, 2001).view(1, -1)
    q = dorefa_weight(w, bits)
    codes = weight_codes(w, bits)
    assert torch.equal(2 * (codes.float() / n) - 1, q)
    assert len(torch.unique(q)) <= n + 1
    assert float(q.min()) == -1.0 and float(q.max()) == 1.0
    assert torch.all(q[:, 1:] >= q[:, :-1])  # monotone


def test_binary_weight_per_filter_scale() -> None:
    w = torch.tensor([[0.5, -1.5, 0.0, 2.0], [-0.1, 0.1, 0.3, -0.3]])
    q = dorefa_weight(w, 1)
    assert torch.equal(q, torch.tensor([[1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, -1.0]]) *
                       torch.tensor([[1.0], [0.2]]))
    assert torch.equal(weight_codes(w, 1), torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0]]))


def test_per_channel_widths_match_per_layer_quantizer_rows() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3)
    q = dorefa_weight(w, (1, 2, 3, 8))
    # normalisation is per layer, so each multi-bit row equals the layer quantizer at that width
    for i, b in enumerate((2, 3, 8), start=1):
        assert torch.equal(q[i], dorefa_weight(w, b)[i])
    # one convention for every width: a 1-bit channel is 2 Q_1(u) - 1 = +-1 on the same normalisation,
    # not sign(w) * mean|w| beside [-1, 1] channels
    assert torch.equal(q[0], torch.where(w[0] >= 0, 1.0, -1.0))
    assert float(q.abs().max()) == 1.0


def test_ste_gradients() -> None:
    x = torch.tensor([0.2, 0.7, 1.3, -0.4], requires_grad=True)
    round_ste(x * 3).sum().backward()
    assert torch.equal(x.grad, torch.full((4,), 3.0))
    x.grad = None
    dorefa_act(x, 2).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0, 0.0, 0.0]))  # clip passes inside [0, 1] only
    x.grad = None
    sign_ste(torch.stack([x[0], x[2] * 1.0, x[3]])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 0.0, 0.0, 1.0]))  # hard-tanh window
    w = torch.randn(3, 5, requires_grad=True)
    quantize_unit(torch.sigmoid(w), 3).sum().backward()
    assert torch.allclose(w.grad, torch.sigmoid(w) * (1 - torch.sigmoid(w)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=1, max_size=40))
def test_bwa_initial_equals_uniform(bits: int, xs: list[float]) -> None:
    x = torch.tensor(xs, dtype=torch.float32)
    assert torch.equal(BWAQuantizer(bits)(x), dorefa_act(x, bits))
    if bits >= 2:
        w = x.view(1, -1)
        assert torch.equal(BWAQuantizer(bits, weight=True)(w), dorefa_weight(w, bits))


def test_bwa_alpha_gradient_is_bit_plane() -> None:
    q = BWAQuantizer(3)
    x = torch.tensor([0.0, 1 / 7, 5 / 7, 1.0])
    q(x).sum().backward()
    planes = bit_planes(act_codes(x, 3), 3)
    assert torch.allclose(q.alpha.grad, planes.sum(0) / 7)
    with torch.no_grad():
        q.alpha.copy_(torch.tensor([1.0, 3.0, 3.0]))
    assert torch.allclose(q(x), torch.tensor([0.0, 1.0, 4.0, 7.0]) / 7)  # non-uniform levels


def test_lsq_levels_and_step_gradient() -> None:
    q = LSQQuantizer(2, signed=True)
    v = torch.linspace(-2, 2, 101)
    out = q(v)
    s = float(q.step.detach())
    assert set(torch.round(out / s).tolist()) <= {-2.0, -1.0, 0.0, 1.0}
    out.sum().backward()
    assert q.step.grad is not None and float(q.step.grad) != 0.0
    u = LSQQuantizer(3, signed=False)
    assert float(u(torch.rand(50)).detach().min()) >= 0.0


@pytest.mark.parametrize("bad", [0, 17, -1])
def test_bad_bits_rejected(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"^BWAQuantizer\.bits must be an integer in \[1, 16\], not {bad}$"):
        BWAQuantizer(bad)


def test_bad_bits_type_rejected() -> None:
    with pytest.raises(TypeError, match=r"^act_codes\.bits must be an integer, not 2\.0$"):
        act_codes(torch.zeros(2), 2.0)  # type: ignore[arg-type]
