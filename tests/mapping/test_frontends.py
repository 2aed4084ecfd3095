"""Front ends: PyTorch (fx and the hooks fallback, hw_bits, cascades), ONNX, QONNX, YAML bits, SCALE-Sim CSV."""

import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import hwsim
from mapping.bits import apply_bits, load_bits
from mapping.frontends import (
    UnsupportedOperatorWarning,
    from_onnx,
    from_torch,
    load_model,
    parse_input_shape,
)
from mapping.mapper import map_network


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.dw(self.bn(self.conv(x)))) + x


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.block = Block()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(F.relu(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Branchy(Net):
    """Data-dependent control flow: torch.fx cannot trace it, the hooks fallback can."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(F.relu(self.stem(x)))
        if float(x.sum()) > -1e30:
            x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class QConv(nn.Conv2d):
    """A user's quantized conv: the duck-typed hw_bits() protocol, per-channel widths included."""

    def hw_bits(self) -> dict:
        return {"weight_bits": 4, "act_bits": 3, "channel_weight_bits": (4, 2) * (self.out_channels // 2),
                "bit_scales": 2}

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # traced through would lose hw_bits: fx keeps it a leaf
        return F.conv2d(x, torch.round(self.weight * 4) / 4, None, self.stride, self.padding)


EXPECTED = [("stem", "conv2d", 1, 8, 8, 1), ("block.conv", "conv2d", 8, 8, 4, 1), ("block.dw", "conv2d", 8, 8, 4, 8)]


def test_torch_module_with_residual_depthwise_bn_linear() -> None:
    net = from_torch(Net(), torch.zeros(1, 1, 8, 8), name="n")
    got = [(la.name, la.kind.value, la.in_channels, la.out_channels, la.in_h, la.groups) for la in net.layers]
    assert got[:3] == EXPECTED
    kinds = [la.kind.value for la in net.layers]
    assert kinds == ["conv2d", "conv2d", "conv2d", "eltwise", "pool", "linear"]  # BN folded, relu/flatten free
    pool, fc = net.layers[4], net.layers[5]
    assert (pool.kernel_h, pool.out_h) == (4, 1) and (fc.in_channels, fc.out_channels) == (8, 10)
    assert net.macs == sum(la.macs for la in net.layers) and net.layers[2].macs == 8 * 9 * 16


def test_hooks_fallback_when_fx_cannot_trace() -> None:
    net = from_torch(Branchy(), torch.zeros(1, 1, 8, 8))
    got = [(la.name, la.kind.value) for la in net.layers]
    assert [g[1] for g in got] == ["conv2d", "conv2d", "conv2d", "eltwise", "pool", "pool", "linear"]
    assert got[0][0] == "stem" and net.layers[4].kernel_h == 2 and net.layers[5].in_h == 2


def test_hw_bits_protocol_and_bits_table() -> None:
    m = Net()
    m.block.conv = QConv(8, 8, 3, padding=1, bias=False)
    net = from_torch(m, torch.zeros(1, 1, 8, 8), bits={"fc": {"weight_bits": 2, "act_bits": 5}})
    q = net.layers[1]
    assert (q.weight_bits, q.act_bits, q.bit_scales) == (4, 3, 2) and q.channel_weight_bits == (4, 2) * 4
    # stored at the widest width its readers take: block.conv reads 3 bits, the residual add (-> fc) 5
    assert net.layers[0].out_bits == 5 and net.layers[1].act_bits == 3
    assert (net.layers[-1].weight_bits, net.layers[-1].act_bits) == (2, 5)
    sched = map_network(net, hwsim.resolve_accelerator("edge16_serial"), "edp")
    assert len(sched.mappings) == len(net.layers)


def test_cascade_module_becomes_stages() -> None:
    class Cascade(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stages = nn.ModuleList([Net(), Net()])
            self.rule, self.threshold, self.exit_rate = "confidence", 0.8, 0.6

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.stages[0](x)

    net = from_torch(Cascade(), torch.zeros(1, 1, 8, 8), bits={"s1.*": {"weight_bits": 1, "act_bits": 1}})
    assert [s.name for s in net.stages] == ["stage1", "stage2"]
    s1, s2 = net.stages
    assert (s1.exit_rate, s1.exit_rule, s1.threshold) == (0.6, "confidence", 0.8)
    assert all(la.weight_bits == 1 for la in s1.layers) and all(la.weight_bits == 8 for la in s2.layers)
    res = hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial"))
    assert res.expected_cycles == pytest.approx(res.stages[0].cycles + 0.4 * res.stages[1].cycles)


def test_torch_errors_name_the_problem() -> None:
    class Weird(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.rnn = nn.GRU(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x).flatten(2).permute(2, 0, 1)
            return self.rnn(y)[0]

    with pytest.raises(ValueError, match=r"^from_torch\[Weird\]: unsupported operators: rnn \(GRU; MACs "
                       r"unknown\); pass skip_unsupported \(--skip-unsupported\) to skip them$"):
        from_torch(Weird(), torch.zeros(1, 1, 6, 6))
    with pytest.warns(UnsupportedOperatorWarning, match=r"^from_torch\[Weird\]: skipped 1 unsupported "
                      r"operators: 0 MACs lost \(0\.00 % of 576\) \(\+ 1 operators with unknown MACs\)\n"
                      r"  GRU: 1 skipped, 0 MACs \(1 with MACs unknown\)$"):
        net = from_torch(Weird(), torch.zeros(1, 1, 6, 6), skip_unsupported=True)
    assert [la.name for la in net.layers] == ["conv"]
    # the tail is torch's own message, which changes between versions; the line up to it is ours
    with pytest.raises(ValueError, match=r"^from_torch\[Net\]: cannot run the model on the example input of "
                       r"shape \(1, 3, 8, 8\): RuntimeError: "):
        from_torch(Net(), torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match=r"^from_torch\.module must be a torch\.nn\.Module, not 'net'$"):
        from_torch("net", torch.zeros(1))  # type: ignore[arg-type]


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr.astype(np.float32), name)


def _onnx_model(quant: bool = False, unknown: bool = False) -> onnx.ModelProto:
    nodes, inits = [], [_init("W1", np.zeros((8, 1, 3, 3))), _init("W2", np.zeros((8, 8, 3, 3))),
                        _init("Wfc", np.zeros((10, 8))), _init("bfc", np.zeros(10))]
    x, w1 = "x", "W1"
    if quant:
        inits += [_init("s", np.ones(1)), _init("z", np.zeros(1)), _init("b4", np.array([4.0])),
                  _init("b3", np.array([3.0]))]
        nodes += [helper.make_node("Quant", ["x", "s", "z", "b3"], ["xq"], domain="qonnx.custom_op.general"),
                  helper.make_node("BipolarQuant", ["W1", "s"], ["W1q"], domain="qonnx.custom_op.general"),
                  helper.make_node("Quant", ["W2", "s", "z", "b4"], ["W2q"], domain="qonnx.custom_op.general")]
        x, w1 = "xq", "W1q"
    nodes += [
        helper.make_node("Conv", [x, w1], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s8", "z8", "z8", "s8"], ["bn1"]),
        helper.make_node("Relu", ["bn1"], ["r1"]),
        helper.make_node("Conv", ["r1", "W2q" if quant else "W2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("GlobalAveragePool", ["a"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"]),
        helper.make_node("Gemm", ["f", "Wfc", "bfc"], ["y"], transB=1, name="fc"),
    ]
    inits += [_init("s8", np.ones(8)), _init("z8", np.zeros(8))]
    if unknown:
        nodes.append(helper.make_node("LSTM", ["y"], ["z"], name="lstm"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("z" if unknown else "y", TensorProto.FLOAT, None)],
                              inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("qonnx.custom_op.general", 1)] if quant else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_onnx_graph(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_onnx_model(), str(path))
    net = load_model(path)
    got = [(la.name, la.kind.value, la.in_channels, la.out_channels, la.in_h, la.stride_h) for la in net.layers]
    assert got == [("conv1", "conv2d", 1, 8, 8, 2), ("conv2", "conv2d", 8, 8, 4, 1), ("add", "eltwise", 8, 8, 4, 1),
                   ("gap", "pool", 8, 8, 4, 4), ("fc", "linear", 8, 10, 1, 1)]
    ref = from_torch(Net(), torch.zeros(1, 1, 8, 8))
    assert [la.macs for la in net.layers if la.has_macs][:2] == [ref.layers[0].macs, ref.layers[1].macs]


def test_qonnx_quant_nodes_give_bits() -> None:
    net = from_onnx(_onnx_model(quant=True), name="q")
    c1, c2 = net.layers[0], net.layers[1]
    assert (c1.weight_bits, c1.act_bits) == (1, 3)
    assert c2.weight_bits == 4 and net.layers[-1].weight_bits == 8


def test_onnx_unknown_ops_are_named() -> None:
    with pytest.raises(ValueError, match=r"^from_onnx\[g\]: unsupported operators: lstm \(LSTM; MACs "
                       r"unknown\); pass skip_unsupported \(--skip-unsupported\) to skip them$"):
        from_onnx(_onnx_model(unknown=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedOperatorWarning)
        net = from_onnx(_onnx_model(unknown=True), skip_unsupported=True)
    assert net.layers[-1].name == "fc"


def test_yaml_bits_and_csv_topology(tmp_path: Path) -> None:
    (tmp_path / "bits.yaml").write_text("conv1: {weight_bits: 8, act_bits: 8}\nlayer1*: {weight_bits: 4, act_bits: 3}\n")
    net = apply_bits(hwsim.resolve_network("resnet18"), load_bits(tmp_path / "bits.yaml"))
    assert all((la.weight_bits, la.act_bits) == (4, 3) for la in net.layers if la.name.startswith("layer1"))
    (tmp_path / "bad.yaml").write_text("conv1: {weight_bit: 8}\n")
    with pytest.raises(ValueError, match="^" + re.escape(f"{tmp_path / 'bad.yaml'}: unknown key "
                       "bits['conv1'].weight_bit; allowed keys: weight_bits, act_bits, out_bits, "
                       "channel_weight_bits, bit_scales") + "$"):
        load_bits(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match=r"^<bits>: bits name 'nosuch' matches no layer of 'resnet18'$"):
        apply_bits(net, {"nosuch": {"weight_bits": 2}})
    (tmp_path / "topo.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                                       "Channels, Num Filter, Strides,\nconv1, 8, 8, 3, 3, 2, 4, 1,\n"
                                       "conv2, 6, 6, 3, 3, 4, 4, 1,\n")
    csv_net = load_model(tmp_path / "topo.csv", bits={"conv2": {"weight_bits": 2}})
    assert [(la.name, la.out_h, la.weight_bits) for la in csv_net.layers] == [("conv1", 6, 8), ("conv2", 4, 2)]
    assert parse_input_shape("1,3,32,32") == (1, 3, 32, 32)
    with pytest.raises(ValueError,
                       match=r"^input shape must be comma-separated integers like 1,3,32,32, not '1,a'$"):
        parse_input_shape("1,a")


def test_quant_models_agree_with_quant_export() -> None:
    """The duck-typed front end reads quant's modules exactly as quant's own exporter does: every layer
    (pools and residual adds included), its shape and its widths, on a plain CNN and a ResNet."""
    import quant
    from quant.models import ConvNet, ResNet20

    conv = ConvNet((1, 8, 8), 10, channels=((4, 3, 1), (8, 3, 2)))
    quant.apply_specs(conv, [quant.LayerSpec(8, 8), quant.LayerSpec(4, 2, channel_weight_bits=(4, 3, 4, 2, 4, 3, 4, 2)),
                             quant.LayerSpec(7, 4)])
    res = ResNet20((3, 16, 16), 10, width=0.25, blocks=1)
    quant.apply_specs(res, [quant.LayerSpec(w, a) for w, a in ((7, 8), (4, 4), (3, 4), (2, 3), (2, 2), (4, 3),
                                                                (3, 3), (7, 8))])

    def key(la: hwsim.Layer) -> tuple:
        return (la.name, la.kind, la.in_channels, la.out_channels, la.in_h, la.stride_h, la.weight_bits, la.act_bits,
                la.out_bits, la.channel_weight_bits, la.bit_scales, la.macs)
    for m, x in ((conv, torch.zeros(1, 1, 8, 8)), (res, torch.zeros(1, 3, 16, 16))):
        ref = quant.export(m, x)
        ours = from_torch(m, x)
        assert [key(la) for la in ours.layers] == [key(la) for la in ref.layers]
    kinds = [la.kind.value for la in from_torch(res, torch.zeros(1, 3, 16, 16)).layers]
    assert kinds.count("eltwise") == 3 and kinds.count("pool") == 1
