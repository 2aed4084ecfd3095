"""The shared graph normaliser and the operators the front ends read: the cost table, widths through
shape-only operators (QONNX, QCDQ), ReduceMean, ceil_mode, dilation, channels-last, graph-only files,
two-activation MatMul, loss reports, TorchScript, SCALE-Sim GEMM topologies, hwsim train checkpoints."""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import hwsim
from mapping.frontends import UnsupportedOperatorWarning, from_onnx, from_torch, load_model
from mapping.frontends.graph import OP_COSTS
from mapping.frontends.onnx import ONNX_OPS
from mapping.frontends.pytorch import TORCH_FUNCTION_OPS, TORCH_MODULE_OPS

QD = "qonnx.custom_op.general"


def _f(name: str, arr: np.ndarray | list) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _model(nodes: list, inits: list, x_shape: list[int], opset: int = 17, domains: tuple[str, ...] = (),
           value_info: list | None = None) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], inits,
                          value_info=value_info or [])
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(g, opset_imports=ops)


def test_every_translation_lands_in_the_one_cost_table() -> None:
    for table in (TORCH_MODULE_OPS, TORCH_FUNCTION_OPS, ONNX_OPS):
        assert set(table.values()) <= set(OP_COSTS)
    kinds = {k: c.kind for k, c in OP_COSTS.items()}
    assert kinds["conv"] is hwsim.LayerKind.CONV2D and kinds["matmul"] is hwsim.LayerKind.MATMUL
    assert {kinds[k] for k in ("softmax", "layernorm", "gelu", "silu", "add", "mul")} == {hwsim.LayerKind.ELTWISE}
    assert kinds["pool"] is hwsim.LayerKind.POOL
    assert all(kinds[k] is None for k in ("transpose", "reshape", "split", "slice", "expand", "identity", "control"))


def test_qonnx_widths_survive_pool_reshape_flatten() -> None:
    """The Brevitas CNN shape: Quant -> Conv -> Relu -> Quant(3) -> MaxPool -> Conv -> Quant(2) -> Reshape ->
    Flatten -> Gemm. Every MAC layer reads the width of the quantizer before the shape-only operators."""
    s, z = _f("s", [1.0]), _f("z", [0.0])
    inits = [s, z, _f("b4", [4.0]), _f("b3", [3.0]), _f("b2", [2.0]), _f("W1", np.zeros((4, 1, 3, 3))),
             _f("W2", np.zeros((8, 4, 3, 3))), _f("Wfc", np.zeros((10, 32))),
             numpy_helper.from_array(np.array([1, 8, 2, 2], dtype=np.int64), "shp")]
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b4"], ["xq"], domain=QD),
        helper.make_node("BipolarQuant", ["W1", "s"], ["W1q"], domain=QD),
        helper.make_node("Conv", ["xq", "W1q"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Quant", ["r1", "s", "z", "b3"], ["q1"], domain=QD),
        helper.make_node("MaxPool", ["q1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Quant", ["W2", "s", "z", "b2"], ["W2q"], domain=QD),
        helper.make_node("Conv", ["p1", "W2q"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Quant", ["c2", "s", "z", "b2"], ["q2"], domain=QD),
        helper.make_node("MaxPool", ["q2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="pool2"),
        helper.make_node("Reshape", ["p2", "shp"], ["rs"]),
        helper.make_node("Flatten", ["rs"], ["fl"]),
        helper.make_node("Gemm", ["fl", "Wfc"], ["y"], transB=1, name="fc"),
    ]
    net = from_onnx(_model(nodes, inits, [1, 1, 8, 8], domains=(QD,)))
    by = {la.name: la for la in net.layers}
    assert (by["conv1"].weight_bits, by["conv1"].act_bits, by["conv1"].out_bits) == (1, 4, 3)
    assert (by["pool1"].act_bits, by["pool1"].out_bits) == (3, 3)
    assert (by["conv2"].weight_bits, by["conv2"].act_bits, by["conv2"].out_bits) == (2, 3, 2)
    assert (by["fc"].act_bits, by["fc"].weight_bits) == (2, 8)


def test_qcdq_widths() -> None:
    """QuantizeLinear (int8) -> Clip(-8, 7) -> DequantizeLinear is a 4-bit activation; a weight quantized to
    [-2, 1] is 2-bit, an int8 weight clipped to [-4, 3] 3-bit; a uint8 QuantizeLinear clipped to [0, 15]
    after a ReLU stores the conv's output at 4 bits; a plain uint8 QuantizeLinear is 8-bit."""
    inits = [_f("sc", 0.1), numpy_helper.from_array(np.array(0, dtype=np.int8), "zp"),
             numpy_helper.from_array(np.array(0, dtype=np.uint8), "zu"), _f("lo", -8.0), _f("hi", 7.0),
             _f("wlo", -2.0), _f("whi", 1.0), _f("W", np.zeros((4, 1, 3, 3))),
             numpy_helper.from_array(np.zeros((4, 4, 1, 1), dtype=np.int8), "W2"),
             numpy_helper.from_array(np.array(-4, dtype=np.int8), "w2lo"),
             numpy_helper.from_array(np.array(3, dtype=np.int8), "w2hi"),
             numpy_helper.from_array(np.array(0, dtype=np.uint8), "u0"),
             numpy_helper.from_array(np.array(15, dtype=np.uint8), "u15")]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sc", "zp"], ["xq"]),
        helper.make_node("Clip", ["xq", "lo", "hi"], ["xc"]),
        helper.make_node("DequantizeLinear", ["xc", "sc", "zp"], ["xd"]),
        helper.make_node("QuantizeLinear", ["W", "sc", "zp"], ["wq"]),
        helper.make_node("Clip", ["wq", "wlo", "whi"], ["wc"]),
        helper.make_node("DequantizeLinear", ["wc", "sc", "zp"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["cr"]),
        helper.make_node("QuantizeLinear", ["cr", "sc", "zu"], ["cq"]),
        helper.make_node("Clip", ["cq", "u0", "u15"], ["cc"]),
        helper.make_node("DequantizeLinear", ["cc", "sc", "zu"], ["cd"]),
        helper.make_node("Clip", ["W2", "w2lo", "w2hi"], ["w2c"]),  # Brevitas: integer weights, clipped
        helper.make_node("DequantizeLinear", ["w2c", "sc", "zp"], ["w2d"]),
        helper.make_node("Conv", ["cd", "w2d"], ["c2"], name="conv2"),
        helper.make_node("QuantizeLinear", ["c2", "sc", "zu"], ["c2q"]),
        helper.make_node("DequantizeLinear", ["c2q", "sc", "zu"], ["y"]),
    ]
    net = from_onnx(_model(nodes, inits, [1, 1, 6, 6], opset=19))
    c1, c2 = net.layers
    assert (c1.act_bits, c1.weight_bits, c1.out_bits) == (4, 2, 4)
    assert (c2.act_bits, c2.weight_bits, c2.out_bits) == (4, 3, 8)


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean_is_a_global_pool(opset: int) -> None:
    """torch.onnx.export's default exporter writes the global average pool as ReduceMean (axes as an
    attribute before opset 18, as an input from 18)."""
    inits = [_f("W", np.zeros((8, 3, 3, 3))), _f("Wfc", np.zeros((10, 8)))]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([-1, -2], dtype=np.int64), "axes"))
        rm = helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=0, name="gap")
    else:
        rm = helper.make_node("ReduceMean", ["c"], ["m"], axes=[2, 3], keepdims=0, name="gap")
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"), rm,
             helper.make_node("Gemm", ["m", "Wfc"], ["y"], transB=1, name="fc")]
    net = from_onnx(_model(nodes, inits, [1, 3, 6, 6], opset=opset))
    assert [la.kind.value for la in net.layers] == ["conv2d", "pool", "linear"]
    gap = net.layers[1]
    assert (gap.kernel_h, gap.kernel_w, gap.out_h, gap.out_w, gap.in_channels) == (6, 6, 1, 1, 8)


@pytest.mark.parametrize("size", [7, 8, 10])
def test_ceil_mode_pools_are_sized_by_the_real_output(size: int) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(4, 4, 1),
                          nn.AvgPool2d(2, 2, ceil_mode=True, padding=1), nn.Conv2d(4, 4, 1))
    x = torch.zeros(1, 3, size, size)
    want = [t.shape[-1] for t in (model[:2](x), model[:4](x))]
    net = from_torch(model, x)
    pools = [la for la in net.layers if la.kind is hwsim.LayerKind.POOL]
    assert [p.out_h for p in pools] == want and [p.out_w for p in pools] == want
    convs = [la for la in net.layers if la.has_macs]
    assert [c.in_h for c in convs[1:]] == want  # the pooled size feeds the next conv


def test_dilated_and_same_padded_convs_have_exact_macs() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=2, dilation=2), nn.Conv2d(8, 8, 3, padding="same", dilation=3,
                                                                               groups=4),
                          nn.Conv2d(8, 4, (3, 5), stride=2, dilation=(2, 1), padding=(1, 2)))
    x = torch.zeros(1, 3, 13, 11)
    net = from_torch(model, x)
    outs = [model[:i + 1](x).shape for i in range(3)]
    for la, m, o in zip(net.layers, model, outs, strict=True):
        assert (la.out_h, la.out_w) == tuple(o[2:])
        assert la.macs == math.prod(o) * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False)
    assert [la.macs for la in from_onnx(onnx.load_from_string(buf.getvalue())).layers] == [la.macs for la in net.layers]


def test_channels_last_qonnx_conv() -> None:
    """A QONNX channels-last Conv reads NHWC tensors (weights stay OIHW)."""
    cl = "qonnx.custom_op.channels_last"
    inits = [_f("W", np.zeros((8, 4, 3, 3)))]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 3, 1]),
             helper.make_node("Conv", ["xt", "W"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2], domain=cl, name="conv")]
    vi = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 6, 8])]
    net = from_onnx(_model(nodes, inits, [1, 4, 10, 12], domains=(cl,), value_info=vi))
    la = net.layers[0]
    assert (la.in_channels, la.in_h, la.in_w, la.out_channels, la.out_h, la.out_w) == (4, 10, 12, 8, 5, 6)


def test_graph_only_onnx_reads_every_shape(tmp_path: Path) -> None:
    """Weights in an external data file that is absent (as workload collections ship them)."""
    from onnx.external_data_helper import convert_model_to_external_data
    inits = [_f("W", np.ones((16, 3, 3, 3))), _f("Wfc", np.ones((10, 16 * 8 * 8)))]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"]), helper.make_node("Gemm", ["f", "Wfc"], ["y"], transB=1, name="fc")]
    m = _model(nodes, inits, [1, 3, 8, 8])
    full = from_onnx(m)
    convert_model_to_external_data(m, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(m, str(tmp_path / "g.onnx"))
    (tmp_path / "w.bin").unlink()
    got = load_model(tmp_path / "g.onnx")
    assert [(la.name, la.macs) for la in got.layers] == [(la.name, la.macs) for la in full.layers]
    assert got.macs == 16 * 27 * 64 + 10 * 1024


def test_matmul_of_two_activations_is_a_matmul_layer() -> None:
    s, z = _f("s", [1.0]), _f("z", [0.0])
    inits = [s, z, _f("b4", [4.0]), _f("b6", [6.0]), _f("Wq", np.zeros((16, 16))), _f("Wk", np.zeros((16, 16)))]
    nodes = [helper.make_node("MatMul", ["x", "Wq"], ["q"], name="q_proj"),
             helper.make_node("MatMul", ["x", "Wk"], ["k"], name="k_proj"),
             helper.make_node("Quant", ["q", "s", "z", "b4"], ["qq"], domain=QD),
             helper.make_node("Quant", ["k", "s", "z", "b6"], ["kq"], domain=QD),
             helper.make_node("Transpose", ["kq"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["qq", "kt"], ["y"], name="qk")]
    net = from_onnx(_model(nodes, inits, [3, 10, 16], domains=(QD,)))
    qk = net.layers[-1]
    assert qk.kind is hwsim.LayerKind.MATMUL and (qk.groups, qk.batch) == (3, 10)
    assert (qk.act_bits, qk.weight_bits) == (4, 6) and qk.macs == 3 * 10 * 16 * 10
    assert net.layers[1].out_bits == 6  # k is stored at the width the matmul reads it


def test_unreadable_mac_operators_name_node_op_and_macs() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.c1 = nn.Conv1d(4, 8, 3)
            self.c2 = nn.Conv1d(8, 8, 1)
            self.rnn = nn.GRU(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c2(self.c1(self.conv(x).flatten(2)))
            return self.rnn(y.permute(2, 0, 1))[0]

    x = torch.zeros(1, 1, 6, 6)
    with pytest.raises(ValueError, match=r"^from_torch\[M\]: unsupported operators: c1 \(Conv1d; 1,344 MACs\) and "
                                         r"2 more; pass skip_unsupported \(--skip-unsupported\) to skip them$"):
        from_torch(M(), x)
    with pytest.warns(UnsupportedOperatorWarning) as rec:
        net = from_torch(M(), x, skip_unsupported=True)
    conv = 16 * 9 * 4
    lost = 14 * 8 * 12 + 14 * 8 * 8  # c1: 14 outputs x 8 filters x 4*3 taps; c2: x 8*1
    msg = str(rec[0].message).splitlines()
    assert msg[0] == (f"from_torch[M]: skipped 3 unsupported operators: {lost:,} MACs lost "
                      f"({100 * lost / (lost + conv):.2f} % of {lost + conv:,}) (+ 1 operators with unknown MACs)")
    assert msg[1:] == [f"  Conv1d: 2 skipped, {lost:,} MACs", "  GRU: 1 skipped, 0 MACs (1 with MACs unknown)"]
    assert net.macs == conv


def test_torchscript_is_read_through_its_graph_when_trusted(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, but users still have the files
        torch.jit.trace(model, torch.zeros(1, 3, 8, 8)).save(str(tmp_path / "ts.pt"))
    with pytest.raises(ValueError, match="^" + re.escape(f"{tmp_path / 'ts.pt'}: a TorchScript module "
                       "runs the file's code when read; not read. Export it to ONNX (torch.onnx.export), or pass "
                       "--trust-pickle to read it through its graph") + "$"):
        load_model(tmp_path / "ts.pt", input_shape=(1, 3, 8, 8))
    net = load_model(tmp_path / "ts.pt", input_shape=(1, 3, 8, 8), trust_pickle=True)
    ref = from_torch(model, torch.zeros(1, 3, 8, 8))
    assert [la.kind for la in net.layers] == [la.kind for la in ref.layers] and net.macs == ref.macs


def test_scalesim_gemm_topology_and_repeated_names(tmp_path: Path) -> None:
    (tmp_path / "gemm.csv").write_text("Layer, M, N, K,\nattn, 128, 64, 32,\nattn, 128, 32, 64,\nffn, 128, 256, 64,\n")
    net = load_model(tmp_path / "gemm.csv")
    assert [(la.name, la.kind.value, la.batch, la.out_channels, la.in_channels) for la in net.layers] == [
        ("attn", "linear", 128, 64, 32), ("attn_1", "linear", 128, 32, 64), ("ffn", "linear", 128, 256, 64)]
    (tmp_path / "conv.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                                       "Channels, Num Filter, Strides,\nc, 8, 8, 3, 3, 2, 4, 1,\nc, 6, 6, 3, 3, 4, 4, 1,\n")
    assert [la.name for la in load_model(tmp_path / "conv.csv").layers] == ["c", "c_1"]


def test_hwsim_train_checkpoint_is_a_model(tmp_path: Path) -> None:
    """``load_model`` reads the network quant's exporter stored in the checkpoint (no 'state_dict' error)."""
    import quant
    from quant.models import ConvNet

    m = ConvNet((1, 8, 8), 10, channels=((4, 3, 1),))
    quant.apply_specs(m, [quant.LayerSpec(2, 3), quant.LayerSpec(8, 8)])
    saved = quant.save_model(tmp_path / "q.pt", m, torch.zeros(1, 1, 8, 8), name="q")
    assert load_model(tmp_path / "q.pt") == saved
    assert load_model(tmp_path / "q.pt") == from_torch(m, torch.zeros(1, 1, 8, 8), name="q")


def test_torch_matmul_of_activations_and_sdpa_match_onnx() -> None:
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(8, 24)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            p = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
            return torch.nn.functional.scaled_dot_product_attention(q, k, p @ v)

    x = torch.zeros(2, 5, 8)
    net = from_torch(Attn(), x)
    mm = [la for la in net.layers if la.kind is hwsim.LayerKind.MATMUL]
    assert len(mm) == 4 and all(la.macs == 2 * 5 * 8 * 5 for la in mm)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Attn(), (x,), buf, dynamo=False)
    other = from_onnx(onnx.load_from_string(buf.getvalue()))
    assert sorted((la.kind.value, la.macs) for la in other.layers if la.has_macs) == \
        sorted((la.kind.value, la.macs) for la in net.layers if la.has_macs)


def test_wrong_rank_input_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^from_torch\[Sequential\]: input shape must be N,C,H,W \(4 values\) for a "
                                         r"model starting with Conv2d, not \(8, 8\)$"):
        from_torch(nn.Sequential(nn.Conv2d(1, 4, 3)), torch.zeros(8, 8))


def test_shapes_inference_cannot_give_come_from_one_reference_run() -> None:
    """A reshape whose shape goes through float arithmetic (which data propagation does not follow), on a
    symbolic batch dimension: the shapes come from one ``onnx.reference`` run on zeros, batch taken as 1."""
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    inits = [_f("W", np.zeros((8, 3, 3, 3))), _f("Wfc", np.zeros((8 * 6 * 6, 10))), _f("one", [1.0]),
             i64("i0", [0]), i64("i1", [1]), i64("m1", [-1])]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Shape", ["c"], ["s"]), helper.make_node("Slice", ["s", "i0", "i1"], ["n"]),
             helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["nf", "one"], ["nf2"]),
             helper.make_node("Floor", ["nf2"], ["nf3"]), helper.make_node("Cast", ["nf3"], ["ni"], to=TensorProto.INT64),
             helper.make_node("Concat", ["ni", "m1"], ["shape"], axis=0), helper.make_node("Reshape", ["c", "shape"], ["r"]),
             helper.make_node("MatMul", ["r", "Wfc"], ["y"], name="fc")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    assert not any(v.name == "r" and all(d.dim_value for d in v.type.tensor_type.shape.dim)
                   for v in inferred.graph.value_info)  # inference alone leaves the reshape unknown
    net = from_onnx(m)
    assert [(la.name, la.kind.value, la.batch, la.in_channels, la.macs) for la in net.layers] == [
        ("conv", "conv2d", 1, 3, 8 * 27 * 36), ("fc", "linear", 1, 288, 2880)]
