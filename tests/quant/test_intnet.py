"""The integer form of each quantized layer decodes to the layer's own quantized weights, fits its
exported width, and a model built from those integers matches the float model (quant.intnet)."""

from __future__ import annotations

import pytest
import torch

from quant.cmn import PruneSchedule
from quant.intnet import model_integers, verify
from quant.layers import LayerSpec, QConv2d, apply_specs
from quant.models import ConvNet
from quant.quantizers import fixed_point

SPECS = [LayerSpec(8, 8, scheme="sym"), LayerSpec(4, 4), LayerSpec(1, 1), LayerSpec(3, 3, scheme="lsq"),
         LayerSpec(2, 2, (1, 2) * 8), LayerSpec(3, 2, scheme="bwa", bwa_on="weight", alpha_frac_bits=3)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.scheme}{s.weight_bits}")
def test_terms_decode_to_the_quantized_weights(spec: LayerSpec) -> None:
    torch.manual_seed(0)
    la = QConv2d(3, 16, 3, bias=False)
    la.set_spec(spec)
    la.train()
    la(torch.rand(2, 3, 5, 5))  # LSQ initialises its steps on the first batch
    rec = model_integers(torch.nn.Sequential(la))[0]
    lim = 1 << (rec["weight_bits"] - 1)
    wq = la.q_weight().detach().double()
    act = rec["act"]
    s_a = act["step"] if act["kind"] == "lsq" else 1.0 / act["qmax"]
    dec = sum(t["weight"].double() * (t["coef"] / s_a).view(-1, 1, 1, 1) for t in rec["terms"])
    assert torch.allclose(dec, wq, atol=1e-6)
    for t in rec["terms"]:
        assert int(t["weight"].max()) < lim and int(t["weight"].min()) >= -lim


def test_dorefa_integers_are_odd_and_need_k_plus_1_bits() -> None:
    torch.manual_seed(0)
    la = QConv2d(4, 8, 3, bias=False)
    la.set_spec(LayerSpec(2, 2))
    w = model_integers(torch.nn.Sequential(la))[0]["terms"][0]["weight"]
    assert set(w.unique().tolist()) <= {-3, -1, 1, 3} and int(w.abs().max()) == 3
    assert la.hw_bits().weight_bits == 3


def test_bwa_fixed_point_alphas_are_exported_as_integers() -> None:
    la = QConv2d(2, 4, 1, bias=False)
    la.set_spec(LayerSpec(2, 3, scheme="bwa", alpha_frac_bits=2))
    with torch.no_grad():
        la.act_q.alpha.copy_(torch.tensor([1.1, 2.3, 3.9]))  # type: ignore[union-attr]
    rec = model_integers(torch.nn.Sequential(la))[0]
    assert rec["alpha_int"].tolist() == [4, 9, 16] and rec["alpha_frac_bits"] == 2
    assert torch.equal(fixed_point(torch.tensor([1.1, 2.3]), 2), torch.tensor([1.0, 2.25]))


def test_verify_detects_a_wrong_scale(digits) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    apply_specs(m, [LayerSpec(8, 8, scheme="sym"), LayerSpec(2, 2), LayerSpec(2, 2), LayerSpec(2, 2),
                    LayerSpec(8, 8, scheme="sym")])
    PruneSchedule(0.5, 0, 1).apply(m, 0)
    m.train()
    m(digits.train.x[:256])  # move BN statistics off their initial values
    m.eval()
    ints = model_integers(m)
    ok = verify(m, [ints], digits.test.x[:128])
    assert ok.ok and ok.samples == 128 and all(c.exact for c in ok.layers)
    ints[4]["terms"][0]["coef"] = ints[4]["terms"][0]["coef"] * 1.01  # classifier scale 1 % off
    bad = verify(m, [ints], digits.test.x[:128])
    assert not bad.exact and not bad.layers[4].exact and bad.layers[0].exact
