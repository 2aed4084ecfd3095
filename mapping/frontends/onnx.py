"""ONNX / QONNX front end: a model file (or ``onnx.ModelProto``) -> :class:`hwsim.Network`.

Shapes come from ``onnx.shape_inference`` with data propagation; a symbolic input dimension is taken
as 1; where shapes are still unknown and the weights are present, the graph is run once on zeros
with ``onnx.reference`` to learn them. A graph-only file (weights in external data files that are
absent) is read with ``load_external_data=False``: every shape is in the graph.

Every node is translated into the shared operator vocabulary of :mod:`mapping.frontends.graph`
(:data:`ONNX_OPS`, plus readers for ``Conv`` (groups, dilations, any pads; the channels-last QONNX
variant), ``Gemm``/``MatMul`` (constant second operand: ``linear``; two activations: ``matmul``),
pooling (``MaxPool``/``AveragePool`` with ``ceil_mode``, the global ones, ``ReduceMean`` over H and W),
two-activation ``Add``/``Sub``/``Mul``/``Div``/``Sum``, ``Softmax``, ``LayerNormalization``, ``Gelu``),
whose one cost table decides layers and costs. Tensors computed from initializers and constants alone
(or from ``Shape``) are constants, not activations.

Widths: QONNX ``Quant`` (constant ``bitwidth``) and ``BipolarQuant`` (1 bit), and QCDQ
``QuantizeLinear`` (the width of its integer type; a ``Clip`` right after it, or on an integer weight
initializer, narrows it to the range's width, as Brevitas writes sub-8-bit QCDQ) set the width of the
tensor they write; ``DequantizeLinear``
keeps it. On a weight, the quantizer's width (or the integer type of a quantized initializer) is the
layer's ``weight_bits``. The normaliser propagates activation widths and settles ``out_bits``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.network import Network

from .graph import (
    Op,
    Unsupported,
    build_layers,
    conv_fields,
    gemm_fields,
    mac_estimate,
    matmul_fields,
    pool_fields,
    rename_unique,
    vector_fields,
)

__all__ = ["from_onnx", "ONNX_OPS"]

ONNX_OPS: dict[str, str] = {
    "BatchNormalization": "batchnorm", "InstanceNormalization": "layernorm", "GroupNormalization": "layernorm",
    **dict.fromkeys(("Relu", "Clip"), "relu"),
    **dict.fromkeys(("LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu",
                     "Mish", "Softplus", "LogSoftmax", "Erf", "Exp", "Sqrt", "Reciprocal", "Pow", "Neg", "Abs",
                     "Round", "Floor", "Ceil", "Sign"), "activation"),
    **dict.fromkeys(("Flatten", "Reshape", "Squeeze", "Unsqueeze"), "reshape"),
    "Transpose": "transpose", "Concat": "concat", "Split": "split",
    **dict.fromkeys(("Slice", "Gather", "GatherElements"), "slice"),
    **dict.fromkeys(("Expand", "Tile", "Resize", "Upsample"), "expand"),
    **dict.fromkeys(("DepthToSpace", "SpaceToDepth"), "transpose"),
    "Pad": "pad",
    **dict.fromkeys(("Identity", "Dropout"), "identity"),
    **dict.fromkeys(("Cast", "CastLike"), "cast"),
    **dict.fromkeys(("Shape", "Size", "Constant", "ConstantOfShape", "Range", "Equal", "Less", "Greater", "Where",
                     "Not", "And", "Or", "Mod", "NonZero", "Max", "Min"), "control"),
    "Softmax": "softmax", "LayerNormalization": "layernorm", "Gelu": "gelu",
    "DequantizeLinear": "dequant",
}
"""ONNX op types with a fixed canonical operator (the others have readers, see the module docstring)."""

_QUANT = {"Quant", "BipolarQuant", "QuantizeLinear"}
_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Sum": "add"}
_VECTOR = {"softmax", "layernorm", "gelu"}
_INT_BITS = {"INT8": 8, "UINT8": 8, "INT4": 4, "UINT4": 4, "INT16": 16, "UINT16": 16, "INT32": 32, "UINT32": 32,
             "INT2": 2, "UINT2": 2, "FLOAT8E4M3FN": 8, "FLOAT8E5M2": 8}


def _attrs(node: Any) -> dict[str, Any]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _load(path: Path) -> Any:
    """The model, with external weights loaded where their files exist (graph-only otherwise)."""
    import onnx
    from onnx import external_data_helper as ext

    model = onnx.load(str(path), load_external_data=False)
    base = path.parent
    for t in ext._get_all_tensors(model):
        if ext.uses_external_data(t):
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc is not None and (base / loc).is_file():
                ext.load_external_data_for_tensor(t, str(base))
                t.data_location = onnx.TensorProto.DEFAULT
    return model


def _has_data(t: Any) -> bool:
    from onnx import external_data_helper as ext
    return not ext.uses_external_data(t)


def _static_inputs(model: Any) -> None:
    """Symbolic (or missing) graph-input dimensions are taken as 1."""
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                d.Clear()
                d.dim_value = 1


SMALL_CONST = 4096
"""Initializers up to this many elements are read as values (bit widths, clip bounds, shapes, axes);
larger ones (weights) only by their dims."""


def _plain(model: Any, *, keep_data: bool) -> Any:
    """A copy for shape work: QONNX quantizers as identities (they keep shapes), symbolic input dimensions
    as 1, and, without ``keep_data``, the large initializers as dims alone (copying a VGG's half gigabyte
    of weights into shape inference buys nothing)."""
    import onnx

    src = model.graph
    m = onnx.ModelProto()
    m.ir_version = model.ir_version
    m.opset_import.extend(model.opset_import)
    m.functions.extend(model.functions)
    g = m.graph
    g.name = src.name
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    for t in src.initializer:
        if keep_data or math.prod(t.dims) <= SMALL_CONST:
            g.initializer.append(t)
        else:
            g.initializer.append(onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims))
    for n in src.node:
        if n.op_type in ("Quant", "BipolarQuant"):
            g.node.append(onnx.helper.make_node("Identity", [n.input[0]], [n.output[0]], name=n.name))
        else:
            g.node.append(n)
    _static_inputs(m)
    return m


def _shapes_of(model: Any) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    return out


def _run_for_shapes(model: Any, missing: set[str]) -> dict[str, tuple[int, ...]]:
    """Shapes of ``missing`` tensors by running the graph once on zeros (``onnx.reference``)."""
    import numpy as np
    import onnx
    from onnx import helper, reference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for t in sorted(missing - have):
        m.graph.output.append(helper.make_empty_tensor_value_info(t))
    inits = {t.name for t in m.graph.initializer}
    feeds = {}
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        feeds[vi.name] = np.zeros(dims, dtype=dtype)
    try:
        sess = reference.ReferenceEvaluator(m)
        names = [o.name for o in m.graph.output]
        vals = sess.run(names, feeds)
    except Exception:  # the reference runtime lacks an op, or a custom op: shapes stay unknown
        return {}
    return {n: tuple(int(x) for x in np.shape(v)) for n, v in zip(names, vals, strict=True)
            if n in missing and hasattr(v, "shape")}


def _width_of_clip(consts: Mapping[str, Any], node: Any) -> int | None:
    """The width of the integer range a ``Clip`` with constant bounds keeps."""
    if len(node.input) < 3 or node.input[1] not in consts or node.input[2] not in consts:
        return None
    lo, hi = float(consts[node.input[1]].reshape(-1)[0]), float(consts[node.input[2]].reshape(-1)[0])
    if hi <= lo or not (lo.is_integer() and hi.is_integer()):
        return None
    return max(1, math.ceil(math.log2(hi - lo + 1)))


def from_onnx(model: Any, *, name: str | None = None, bits: Mapping[str, Any] | None = None,  # noqa: C901 (67 branches: one per ONNX operator; to split into a dispatch table)
              default_bits: tuple[int, int] = (8, 8), skip_unsupported: bool = False) -> Network:
    """Read an ONNX / QONNX model (a path or a ``ModelProto``) into a :class:`hwsim.Network`."""
    import onnx
    from onnx import numpy_helper, shape_inference

    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"from_onnx.model must be an existing .onnx file, not {str(model)!r}")
        try:
            model = _load(path)
        except Exception as exc:  # protobuf decode errors have no common base class
            raise ValueError(f"{path}: not an ONNX model: {type(exc).__name__}: {exc}") from None
        name = name or path.stem
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"from_onnx.model must be a path or an onnx.ModelProto, not {model!r}")
    owner = f"from_onnx[{name or model.graph.name or 'model'}]"
    try:
        inferred = shape_inference.infer_shapes(_plain(model, keep_data=False), data_prop=True)
    except Exception as exc:
        raise ValueError(f"{owner}: shape inference failed: {exc}") from None
    g = model.graph
    shapes = _shapes_of(inferred)
    inits = {t.name: t for t in g.initializer}
    consts: dict[str, Any] = {k: numpy_helper.to_array(t) for k, t in inits.items()
                              if _has_data(t) and math.prod(t.dims) <= SMALL_CONST}
    for n in g.node:
        if n.op_type == "Constant":
            v = _attrs(n).get("value")
            if v is not None:
                consts[n.output[0]] = numpy_helper.to_array(v)
    for k, t in inits.items():
        shapes.setdefault(k, tuple(int(d) for d in t.dims))
    for k, v in consts.items():
        shapes.setdefault(k, tuple(v.shape))
    # activations: tensors that depend on a graph input through operators other than shape queries
    act: set[str] = {vi.name for vi in g.input if vi.name not in inits}
    for n in g.node:
        if n.op_type not in ("Shape", "Size", "Constant", "ConstantOfShape") and any(t in act for t in n.input):
            act.update(o for o in n.output if o)
    # run for the shapes a layer needs and inference could not give
    need: set[str] = set()
    for n in g.node:
        if n.op_type in ("Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                         "ReduceMean", "Add", "Sub", "Mul", "Div", "Sum", "Softmax", "LayerNormalization", "Gelu"):
            need.update(t for t in list(n.input[:2]) + list(n.output[:1]) if t and t in act and t not in shapes)
    if need and all(_has_data(t) for t in g.initializer):
        plain = _plain(model, keep_data=True)
        if not any(n.domain not in ("", "ai.onnx") for n in plain.graph.node):
            shapes.update(_run_for_shapes(plain, need))

    # width sources: QONNX Quant / BipolarQuant / QCDQ; a Clip after QuantizeLinear narrows
    qwidth: dict[str, int] = {}
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type == "BipolarQuant":
            qwidth[n.output[0]] = 1
        elif n.op_type == "Quant":
            bw = consts.get(n.input[3]) if len(n.input) > 3 else None
            if bw is None:
                raise ValueError(f"{owner}: Quant node {n.name or n.output[0]!r} needs a constant bitwidth input")
            qwidth[n.output[0]] = int(math.ceil(float(bw.reshape(-1)[0])))
        elif n.op_type == "QuantizeLinear":
            zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
            dt = "UINT8"
            if zp is not None and zp in inits:
                dt = onnx.TensorProto.DataType.Name(inits[zp].data_type)
            elif zp is not None and zp in consts:
                dt = {"int8": "INT8", "uint8": "UINT8", "int16": "INT16", "uint16": "UINT16",
                      "int32": "INT32"}.get(str(consts[zp].dtype), "UINT8")
            out_dt = _attrs(n).get("output_dtype")
            if out_dt:
                dt = onnx.TensorProto.DataType.Name(out_dt)
            qwidth[n.output[0]] = _INT_BITS.get(dt, 8)
        elif n.op_type == "Clip" and n.input and (
                (n.input[0] in producer and producer[n.input[0]].op_type == "QuantizeLinear")
                or (n.input[0] in inits and onnx.TensorProto.DataType.Name(inits[n.input[0]].data_type) in _INT_BITS)):
            w = _width_of_clip(consts, n)
            if w is not None:  # the integer range it keeps; the QuantizeLinear before it stores that width
                qwidth[n.output[0]] = min(w, qwidth.get(n.input[0], w))
                if n.input[0] in qwidth:
                    qwidth[n.input[0]] = qwidth[n.output[0]]

    def weight_source(t: str) -> str:
        """Follow a weight back through quantizers, dequantizers, transposes and casts."""
        seen = 0
        while t in producer and seen < 16 and t not in inits:
            p = producer[t]
            if p.op_type not in ("Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear", "Transpose",
                                 "Cast", "Identity", "Clip", "Reshape", "Constant"):
                break
            if p.op_type == "Constant":
                break
            t = p.input[0]
            seen += 1
        return t

    def weight_bits(t: str) -> int | None:
        """The width of a weight: the first quantizer on its way, else its integer initializer type."""
        seen = 0
        while seen < 16:
            if t in qwidth:
                return qwidth[t]
            if t in inits:
                return _INT_BITS.get(onnx.TensorProto.DataType.Name(inits[t].data_type))
            p = producer.get(t)
            if p is None or not p.input:
                return None
            t = p.input[0]
            seen += 1
        return None

    ops: list[Op] = []
    unsupported: list[Unsupported] = []
    used: set[str] = set()

    def shp(t: str) -> tuple[int, ...] | None:
        return shapes.get(t)

    for i, n in enumerate(g.node):
        op = n.op_type
        nm = rename_unique(n.name or f"{op.lower()}{i}", used)
        a = _attrs(n)
        ins = tuple(t for t in n.input if t and t in act)
        outs = tuple(o for o in n.output if o)
        if not ins:
            continue  # a constant (or shape arithmetic): no activation produced
        x = n.input[0]
        xs = shp(x)
        ys = shp(outs[0]) if outs else None
        channels_last = n.domain.endswith("channels_last")

        def add(kind: str, fields: dict[str, Any] | None = None, bits_: dict[str, Any] | None = None,
                inputs: tuple[str, ...] | None = None, _nm: str = nm, _ins: tuple[str, ...] = ins,
                _outs: tuple[str, ...] = outs) -> None:
            ops.append(Op(_nm, kind, _ins if inputs is None else inputs, _outs, fields, bits_ or {}))

        def nchw(s: tuple[int, ...] | None, _cl: bool = channels_last) -> tuple[int, ...] | None:
            return (s[0], s[-1], *s[1:-1]) if _cl and s is not None and len(s) == 4 else s

        if op in _QUANT:
            ops.append(Op(nm, "quant", ins[:1], outs[:1], None, {}, qwidth.get(outs[0])))
        elif op == "Clip" and outs[0] in qwidth:
            ops.append(Op(nm, "quant", ins[:1], outs[:1], None, {}, qwidth[outs[0]]))
        elif op == "Conv":
            w = n.input[1]
            ws = shp(w)
            xs4, ys4 = nchw(xs), nchw(ys)
            if w in act:
                unsupported.append(Unsupported(nm, op, None, "weights computed at run time"))
                continue
            if xs4 is None or ws is None or len(xs4) != 4 or len(ws) != 4 or ys4 is None:
                unsupported.append(Unsupported(nm, op, mac_estimate(ws, ys), "no static 4-D shapes"))
                continue
            k = a.get("kernel_shape", ws[2:])
            strides = a.get("strides", [1, 1])
            dil = a.get("dilations", [1, 1])
            pads = list(a.get("pads", [0, 0, 0, 0]))
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else str(auto)
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                pads = [1, 0, 0, 0]  # not symmetric by construction: sized by the real output below
            b: dict[str, Any] = {}
            if (wbits := weight_bits(w)) is not None:
                b["weight_bits"] = wbits
            add("conv", conv_fields(xs4, ys4, k, strides, (pads[0], pads[1], pads[2], pads[3]), dil,
                                    int(a.get("group", 1))), b, ins[:1])
        elif op in ("Gemm", "MatMul"):
            if len(n.input) < 2:
                unsupported.append(Unsupported(nm, op, None, "one operand"))
                continue
            w = n.input[1]
            ws = shp(w)
            if xs is None or ws is None:
                unsupported.append(Unsupported(nm, op, mac_estimate(ws, ys), "no static shapes"))
                continue
            if w in act:
                a_s = (xs[1], xs[0]) if op == "Gemm" and int(a.get("transA", 0)) else xs
                b_s = (ws[1], ws[0]) if op == "Gemm" and int(a.get("transB", 0)) else ws
                add("matmul", matmul_fields(a_s, b_s), None, (x, w) if x in act else (w, w))
                continue
            if len(ws) != 2:
                unsupported.append(Unsupported(nm, op, mac_estimate(ws, ys), "constant operand not 2-D"))
                continue
            trans = op == "Gemm" and int(a.get("transB", 0)) == 1
            k_in, n_out = (ws[1], ws[0]) if trans else (ws[0], ws[1])
            rows = (xs[1], xs[0]) if op == "Gemm" and int(a.get("transA", 0)) else xs
            b = {}
            if (wbits := weight_bits(w)) is not None:
                b["weight_bits"] = wbits
            add("linear", gemm_fields(rows, k_in, n_out), b, ins[:1])
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"):
            xs4, ys4 = nchw(xs), nchw(ys)
            if xs4 is None or ys4 is None or len(xs4) != 4 or len(ys4) != 4:
                unsupported.append(Unsupported(nm, op, 0, "no static 4-D shapes"))
                continue
            if op.startswith("Global"):
                add("pool", pool_fields(xs4, ys4), None, ins[:1])
            else:
                pads = list(a.get("pads", [0, 0, 0, 0]))
                add("pool", pool_fields(xs4, ys4, a["kernel_shape"], a.get("strides", [1, 1]), pads), None, ins[:1])
        elif op in ("ReduceMean", "ReduceMax"):
            axes = a.get("axes")
            if axes is None and len(n.input) > 1 and n.input[1] in consts:
                axes = [int(v) for v in consts[n.input[1]].reshape(-1)]
            rank = len(xs) if xs else 0
            axes_n = sorted(int(v) % rank for v in axes) if axes is not None and rank else []
            if rank == 4 and axes_n == [2, 3] and xs is not None:
                add("pool", pool_fields(xs, (xs[0], xs[1], 1, 1)), None, ins[:1])
            else:
                unsupported.append(Unsupported(nm, f"{op} over axes {axes_n}", 0))
        elif op in _ARITH:
            if len(ins) >= 2 and ys is not None:
                add(_ARITH[op], vector_fields(ys))
            elif len(ins) >= 2:
                unsupported.append(Unsupported(nm, op, 0, "no static output shape"))
            else:
                add("scale")
        elif op in ONNX_OPS:
            kind = ONNX_OPS[op]
            if kind in _VECTOR:
                if ys is None:
                    unsupported.append(Unsupported(nm, op, 0, "no static output shape"))
                    continue
                add(kind, vector_fields(ys), None, ins[:1])
            else:
                add(kind)
        else:
            w_in = next((t for t in n.input[1:] if t in inits), None)
            unsupported.append(Unsupported(nm, op, mac_estimate(shp(w_in) if w_in else None, ys)))
    layers = build_layers(ops, unsupported, owner=owner, bits=bits, default_bits=default_bits,
                          skip_unsupported=skip_unsupported)
    return Network.single(name or g.name or "model", layers)
