"""One network per trained model: ``quant.export`` and ``mapping.frontends.from_torch`` agree.

(The test suite may import both packages; the packages never import each other.) Compared: layer names,
kinds, shapes, MACs and the widths each route reads from ``hw_bits()``; pooling and residual adds
included, and the pruning density (``weight_density``).
"""

from __future__ import annotations

import pytest
import torch

from mapping.frontends import from_torch
from quant.cmn import CascadeNet, PruneSchedule, binary_specs, int_specs
from quant.export import export
from quant.layers import LayerSpec, apply_specs, qlayers
from quant.models import MLP, ConvNet, ResNet20

FIELDS = ("name", "kind", "in_channels", "out_channels", "in_h", "in_w", "kernel_h", "kernel_w", "stride_h",
          "stride_w", "pad_h", "pad_w", "groups", "batch", "weight_bits", "act_bits", "out_bits",
          "channel_weight_bits", "bit_scales", "weight_density")


def _rows(net):  # type: ignore[no-untyped-def]
    return [tuple(getattr(la, f) for f in FIELDS) for la in net.layers]


def _mixed(m):  # type: ignore[no-untyped-def]
    n = len(qlayers(m))
    specs = [LayerSpec(8, 8, scheme="sym")] + [LayerSpec(2, 2, scheme="bwa"), LayerSpec(3, 4, scheme="lsq")] * n
    return apply_specs(m, specs[:n - 1] + [LayerSpec(8, 8, scheme="sym")])


@pytest.mark.parametrize("model", [
    lambda: ConvNet((1, 8, 8), 10),
    lambda: ConvNet((1, 1, 40), 10, channels=((8, 5, 1), (8, 5, 2)), head="flatten"),
    lambda: MLP((1, 8, 8), 10, hidden=(32, 16)),
])
def test_same_network_both_routes(model) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    m = _mixed(model())
    m.train()
    x = torch.rand(4, *m.config()["kwargs"]["in_shape"])
    m(x)  # initialise LSQ steps
    m.eval()
    a, b = export(m, x[:1]), from_torch(m, x[:1])
    assert _rows(a) == _rows(b)
    assert a.macs == b.macs and a.weight_bits_total == b.weight_bits_total


def test_same_cascade_both_routes() -> None:
    torch.manual_seed(0)
    s1, s2 = ConvNet((1, 8, 8), 10), ConvNet((1, 8, 8), 10)
    apply_specs(s1, binary_specs(s1))
    apply_specs(s2, int_specs(s2))
    cas = CascadeNet([s1, s2], "confidence", threshold=0.9, exit_rate=0.7)
    x = torch.rand(1, 1, 8, 8)
    a, b = export(cas, x), from_torch(cas, x)
    assert _rows(a) == _rows(b)
    assert [(s.exit_rate, s.exit_rule, s.threshold) for s in a.stages] == \
        [(s.exit_rate, s.exit_rule, s.threshold) for s in b.stages]


def test_resnet_residual_adds_both_routes() -> None:
    """The option-A shortcut (slicing and ``F.pad``) is free on both routes; the residual adds are layers."""
    torch.manual_seed(0)
    m = ResNet20((1, 8, 8), 10, width=0.5, blocks=1)
    apply_specs(m, [LayerSpec(8, 8, scheme="sym")] + [LayerSpec(1, 1)] * 6 + [LayerSpec(8, 8, scheme="sym")])
    m.eval()
    x = torch.rand(1, 1, 8, 8)
    a = export(m, x)
    b = from_torch(m, x)  # no unsupported operator (warnings are errors in the suite)
    assert _rows(a) == _rows(b)
    assert [la.kind.value for la in a.layers].count("eltwise") == 3


def test_density_reaches_both_routes() -> None:
    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    apply_specs(m, int_specs(m))
    PruneSchedule(0.5, 0, 1).apply(m, 0)
    x = torch.rand(1, 1, 8, 8)
    a = export(m, x)
    assert _rows(a) == _rows(from_torch(m, x))
    mac = [la for la in a.layers if la.has_macs]
    assert mac[0].weight_density == 1.0 and all(la.weight_density == pytest.approx(0.5, abs=0.01) for la in mac[1:])
