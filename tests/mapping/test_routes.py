"""The routes agree: torchvision-style architectures (built in :mod:`archs` with torch alone) through
torch.fx, the hooks fallback and ``torch.onnx.export`` give the same layers, MACs equal to an
independent count (forward hooks; attention analytically), and the same cycles and energy."""

from __future__ import annotations

import importlib.util
import io
import warnings

import onnx
import pytest
import torch
from archs import ARCHS
from torch import nn

import hwsim
from mapping.frontends import from_onnx, from_torch
from mapping.mapper import map_network
from sims.bench.frontends import hook_macs  # the benchmark's reference count, one implementation

EXPORTERS = ["legacy"] + (["dynamo"] if importlib.util.find_spec("onnxscript") is not None else [])
"""``torch.onnx.export(dynamo=False)`` always; the default (dynamo) exporter where its onnxscript is installed."""


def _key(la: hwsim.Layer) -> tuple:
    return (la.kind.value, la.in_channels, la.out_channels, la.in_h, la.in_w, la.kernel_h, la.kernel_w, la.stride_h,
            la.stride_w, la.pad_h, la.pad_w, la.groups, la.batch, la.macs, la.weight_bits, la.act_bits, la.out_bits)


def _export(model: nn.Module, x: torch.Tensor, exporter: str) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(model, (x,), buf, dynamo=False)
        else:
            torch.onnx.export(model, (x,), buf, dynamo=True, optimize=True)
    return onnx.load_from_string(buf.getvalue())


class Untraceable(nn.Module):
    """Data-dependent control flow around a model: fx cannot trace it, so the hooks fallback reads it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.m = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > -1e30:
            return self.m(x)
        return x


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_routes_give_the_same_network(arch: str) -> None:
    cls, shape = ARCHS[arch]
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.randn(shape)
    ref = hook_macs(model, x)
    fx_net = from_torch(model, x, name=arch)
    hooks_net = from_torch(Untraceable(model), x, name=arch)
    assert fx_net.macs == ref and hooks_net.macs == ref
    assert [_key(la) for la in hooks_net.layers] == [_key(la) for la in fx_net.layers]
    acc = hwsim.resolve_accelerator("edge16_serial")
    base = hwsim.simulate(fx_net, acc)
    for exporter in EXPORTERS:
        onnx_net = from_onnx(_export(model, x, exporter), name=arch)
        assert onnx_net.macs == ref, exporter
        assert sorted(_key(la) for la in onnx_net.layers) == sorted(_key(la) for la in fx_net.layers), exporter
        res = hwsim.simulate(onnx_net, acc)
        assert res.expected_cycles == pytest.approx(base.expected_cycles, rel=0.02)
        assert res.expected_energy.total_pj == pytest.approx(base.expected_energy.total_pj, rel=0.02)


def test_free_operators_are_not_unsupported() -> None:
    """transpose, permute, floordiv, expand, _assert, chunk, LayerNorm, softmax, GELU: no warning, no error."""
    for arch in ("channel_shuffle", "attention", "convnext"):
        cls, shape = ARCHS[arch]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            from_torch(cls().eval(), torch.zeros(shape))


@pytest.mark.parametrize("acc_name", ["systolic32", "edge16_serial", "loom16", "bitfusion16"])
def test_attention_maps_and_simulates_on_every_pe_kind(acc_name: str) -> None:
    cls, shape = ARCHS["attention"]
    net = from_torch(cls().eval(), torch.zeros(shape))
    mm = [la for la in net.layers if la.kind is hwsim.LayerKind.MATMUL]
    assert len(mm) == 4 and all(not la.has_stored_weights and la.weight_bits_total == 0 for la in mm)
    qk = mm[0]  # batch 2 x 4 heads, 17 tokens, head width 4: (17 x 4) @ (4 x 17) per group
    assert (qk.groups, qk.batch, qk.in_channels // qk.groups, qk.out_channels // qk.groups) == (8, 17, 4, 17)
    acc = hwsim.resolve_accelerator(acc_name)
    sched = map_network(net, acc, "latency")
    res = hwsim.simulate(sched, acc)
    assert sum(r.macs for r in res.stages[0].layers) == net.macs
