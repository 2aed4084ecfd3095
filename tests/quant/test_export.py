"""Export to hwsim.Network: shapes, per-layer and per-channel bits, BWA scales, cascades; simulate it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import hwsim
from quant.cmn import CascadeNet, binary_specs, int_specs
from quant.export import export, load_model, load_network, save_model
from quant.layers import LayerSpec, apply_specs, qlayers
from quant.models import ConvNet, ResNet20


def _specs() -> list[LayerSpec]:
    return [LayerSpec(8, 8, scheme="sym"), LayerSpec(3, 2, (1, 2, 3) * 5 + (3,)), LayerSpec(2, 2, scheme="bwa"),
            LayerSpec(4, 4, scheme="lsq"), LayerSpec()]


def test_export_plain_network_and_simulate() -> None:
    torch.manual_seed(0)
    m = apply_specs(ConvNet((1, 8, 8), 10, channels=((16, 3, 1), (16, 3, 2), (32, 3, 1), (32, 3, 2))), _specs())
    net = export(m, torch.rand(4, 1, 8, 8), "digits_mixed")
    assert [la.kind for la in net.layers] == [hwsim.LayerKind.CONV2D] * 4 + [hwsim.LayerKind.POOL,
                                                                             hwsim.LayerKind.LINEAR]
    pool = net.layers[4]
    assert (pool.name, pool.in_channels, pool.kernel_h, pool.kernel_w, pool.out_h, pool.act_bits) == ("mean", 32, 2, 2,
                                                                                                    1, 8)
    ls = [la for la in net.layers if la.has_macs]
    assert [(la.in_h, la.in_w, la.out_h) for la in ls[:4]] == [(8, 8, 8), (8, 8, 4), (4, 4, 4), (4, 4, 2)]
    # integer widths: DoReFa k bits -> k+1 (binary channels 2), LSQ and sym k bits
    assert ls[1].channel_weight_bits == (2, 3, 4) * 5 + (4,) and ls[1].weight_bits == 4 and ls[1].act_bits == 2
    assert ls[2].bit_scales == 2 and ls[2].weight_bits == 3 and ls[3].weight_bits == 4 and ls[0].weight_bits == 8
    assert (ls[4].weight_bits, ls[4].act_bits) == (8, 8)  # FP reported at 8 bits
    assert ls[0].out_bits == 2 and ls[3].out_bits == 8
    assert net.macs == sum(la.macs for la in ls)
    res = hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial"))
    assert res.cycles > 0 and res.macs == net.macs
    # per-channel widths: the weight memory counts each channel at its width
    assert ls[1].weight_bits_total == 16 * 9 * sum((2, 3, 4) * 5 + (4,))


def test_export_cascade_with_exit_rate() -> None:
    torch.manual_seed(0)
    s1, s2 = ConvNet((1, 8, 8), 10), ConvNet((1, 8, 8), 10)
    apply_specs(s1, binary_specs(s1))
    apply_specs(s2, int_specs(s2))
    cas = CascadeNet([s1, s2], "margin", threshold=0.3, exit_rate=0.8)
    net = export(cas, torch.rand(2, 1, 8, 8), "cascade")
    assert net.is_cascade and net.stages[0].exit_rate == 0.8 and net.stages[0].exit_rule == "margin"
    assert net.reach_probabilities() == [1.0, pytest.approx(0.2)]
    assert [la.weight_bits for la in net.stages[0].layers if la.has_macs] == [8, 2, 2, 2, 8]  # +-1: 2 bits
    res = hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial"))
    c1, c2 = (s.cycles for s in res.stages)
    assert res.expected_cycles == pytest.approx(c1 + 0.2 * c2)
    assert res.cycles == c1 + c2


def test_save_load_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = apply_specs(ConvNet((1, 8, 8), 10, channels=((16, 3, 1), (16, 3, 2), (32, 3, 1), (32, 3, 2))), _specs())
    x = torch.rand(3, 1, 8, 8)
    m.train()
    m(x)  # initialise LSQ steps
    net = save_model(tmp_path / "m.pt", m, x, "roundtrip")
    assert load_network(tmp_path / "m.pt") == net
    again = load_model(tmp_path / "m.pt")
    m.eval()
    assert torch.equal(again(x), m(x))
    with pytest.raises(ValueError, match="^" + re.escape("load_network.path must be an existing MODEL.pt file, "
                                                   f"not {str(tmp_path / 'missing.pt')!r}") + "$"):
        load_network(tmp_path / "missing.pt")


def test_resnet_exports() -> None:
    m = ResNet20((3, 32, 32), 10, width=0.25, blocks=1)
    net = export(m, torch.rand(1, 3, 32, 32))
    assert len([la for la in net.layers if la.has_macs]) == len(qlayers(m)) == 1 + 3 * 2 + 1
    kinds = [la.kind.value for la in net.layers]
    assert kinds.count("eltwise") == 3 and kinds.count("pool") == 1  # residual adds and the global average
    with pytest.raises(TypeError, match=r"^export\.example_input must be a batched tensor, not tensor\("):
        export(m, torch.rand(5))
