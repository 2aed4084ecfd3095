"""Quantized layers, the hw_bits protocol, and BWA's bit-exact equivalence with the uniform model."""

from __future__ import annotations

import copy

import pytest
import torch

from quant.layers import LayerSpec, QConv2d, apply_specs, qlayers
from quant.models import ConvNet, ResNet20, build_model
from quant.protocol import HardwareQuantized, HWBits


def _net() -> ConvNet:
    torch.manual_seed(0)
    return ConvNet((1, 8, 8), 10)


def test_bwa_model_at_init_is_bit_exact_uniform_model(digits) -> None:  # type: ignore[no-untyped-def]
    fp = _net()
    x = digits.test.x[:64]
    for on in ("act", "weight", "both"):
        uni, bwa = copy.deepcopy(fp), copy.deepcopy(fp)
        n = len(qlayers(fp))
        apply_specs(uni, [LayerSpec(8, 8)] + [LayerSpec(2, 2)] * (n - 2) + [LayerSpec(8, 8)])
        apply_specs(bwa, [LayerSpec(8, 8)] + [LayerSpec(2, 2, scheme="bwa", bwa_on=on)] * (n - 2) + [LayerSpec(8, 8)])
        uni.eval(), bwa.eval()
        assert torch.equal(uni(x), bwa(x)), on
        # and a moved alpha changes the output
        la = qlayers(bwa)[2]
        with torch.no_grad():
            (la.weight_q if on == "weight" else la.act_q).alpha[1] += 0.5
        assert not torch.equal(uni(x), bwa(x))


def test_hw_bits_protocol() -> None:
    la = QConv2d(3, 4, 3)
    assert isinstance(la, HardwareQuantized)
    assert la.hw_bits() == HWBits(8, 8, None, 0, True)
    la.set_spec(LayerSpec(3, 2, (1, 3, 2, 3)))  # DoReFa integers 2c - (2^k - 1): k+1 bits (binary +-1: 2)
    assert la.hw_bits() == HWBits(4, 2, (2, 4, 3, 4), 0, False)
    la.set_spec(LayerSpec(8, 8, scheme="sym"))  # zero-capable symmetric codes: k bits
    assert (la.hw_bits().weight_bits, la.hw_bits().act_bits) == (8, 8)
    la.set_spec(LayerSpec(1, 1))
    assert la.hw_bits().weight_bits == 2
    la.set_spec(LayerSpec(4, 4, scheme="lsq"))
    assert la.hw_bits().weight_bits == 4
    la.set_prune_mask((torch.arange(la.weight.numel()).view_as(la.weight) % 4 == 0).float())
    assert la.hw_bits().weight_density == pytest.approx(0.25)
    la.set_spec(LayerSpec(4, 2, scheme="bwa", bwa_on="act"))
    assert la.hw_bits().bit_scales == 2
    la.set_spec(LayerSpec(4, 2, scheme="bwa", bwa_on="both"))
    assert la.hw_bits().bit_scales == 8


@pytest.mark.parametrize(("kwargs", "exc", "msg"), [
    ({"weight_bits": 0}, ValueError, r"^LayerSpec\.weight_bits must be an integer in \[1, 16\], not 0$"),
    ({"act_bits": 33}, ValueError, r"^LayerSpec\.act_bits must be an integer in \[1, 16\], not 33$"),
    ({"weight_bits": 2.5}, TypeError, r"^LayerSpec\.weight_bits must be an integer, not 2\.5$"),
    ({"scheme": "apot"}, ValueError, r"^LayerSpec\.scheme must be one of \['dorefa', 'lsq', 'bwa', 'sym'\], not 'apot'$"),
    ({"weight_bits": 3, "channel_weight_bits": (1, 2)}, ValueError,
     r"^LayerSpec\.weight_bits must equal max\(channel_weight_bits\)=2, not 3$"),
])
def test_layer_spec_rejects(kwargs, exc, msg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=msg):
        LayerSpec(**kwargs)


def test_hwbits_rejects() -> None:
    with pytest.raises(ValueError, match=r"^HWBits\.weight_bits must equal max\(channel_weight_bits\)=4, not 2$"):
        HWBits(2, 8, (4, 1))


def test_models_rebuild_from_config_and_groups() -> None:
    for m in (ConvNet((1, 1, 40), 10, head="flatten"), ResNet20((3, 32, 32), 10, width=0.25, blocks=1)):
        again = build_model(m.config())
        assert [tuple(p.shape) for p in again.parameters()] == [tuple(p.shape) for p in m.parameters()]
        idx = [i for g, _ in m.groups() for i in g]
        assert idx == list(range(len(qlayers(m))))  # groups cover every layer once, in order
    with pytest.raises(ValueError, match=r"^ConvNet\.in_shape must be \(channels, height, width\) of positive ints, "
                       r"not \(8, 8\)$"):
        ConvNet((8, 8), 10)  # type: ignore[arg-type]
