"""ONNX / QONNX front end: a model file (or ``onnx.ModelProto``) -> :class:`hwsim.Network`.

Shapes come from ``onnx.shape_inference`` (the graph input must have a static shape). Layers: ``Conv``
(``group`` honoured, dilation 1), ``Gemm`` and ``MatMul`` with a constant weight (``linear``), ``MaxPool``,
``AveragePool``, ``GlobalAveragePool``, ``GlobalMaxPool`` (``pool``), ``Add``/``Mul``/``Sum`` of two
tensors (``eltwise``). Free: ``BatchNormalization`` (folded), activations, ``Flatten``/``Reshape``/
``Transpose``/``Squeeze``/``Unsqueeze``/``Identity``/``Dropout``/``Concat``, ``Constant``, ``Cast``, ``Softmax``.

QONNX (``Quant`` with a constant ``bitwidth`` input, ``BipolarQuant`` = 1 bit, any domain): a quantizer
on a weight initializer gives that layer's ``weight_bits``; a quantizer on an activation gives the
``act_bits`` of the layers consuming it (and the ``out_bits`` of the layer producing its input).
Widths not given by a quantizer are ``default_bits``; a ``bits`` table (:mod:`mapping.bits`) overrides.
Anything else is an unsupported operator, named in one ``ValueError`` (or skipped with a warning
listing them when ``skip_unsupported`` is set).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.network import Layer, LayerKind, Network

from ..bits import layer_bits_from
from .pytorch import UnsupportedOperatorWarning

__all__ = ["from_onnx"]

_FREE = {"BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
         "Gelu", "Elu", "Selu", "Softmax", "LogSoftmax", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
         "Identity", "Dropout", "Concat", "Constant", "Cast", "Shape", "Gather"}
_QUANT = {"Quant", "BipolarQuant"}


def _attrs(node: Any) -> dict[str, Any]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def from_onnx(model: Any, *, name: str | None = None, bits: Mapping[str, Any] | None = None,
              default_bits: tuple[int, int] = (8, 8), skip_unsupported: bool = False) -> Network:
    """Read an ONNX / QONNX model (a path or a ``ModelProto``) into a :class:`hwsim.Network`."""
    import onnx
    from onnx import numpy_helper, shape_inference

    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"from_onnx.model must be an existing .onnx file, not {str(model)!r}")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf decode errors have no common base class
            raise ValueError(f"{path}: not an ONNX model: {exc}") from None
        name = name or path.stem
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"from_onnx.model must be a path or an onnx.ModelProto, not {model!r}")
    owner = f"from_onnx[{name or model.graph.name or 'model'}]"
    # quantizers pass shapes through: infer shapes on a copy where they are identities
    plain = onnx.ModelProto()
    plain.CopyFrom(model)
    for n in plain.graph.node:
        if n.op_type in _QUANT:
            x, y = n.input[0], n.output[0]
            n.Clear()
            n.CopyFrom(onnx.helper.make_node("Identity", [x], [y]))
    try:
        inferred = shape_inference.infer_shapes(plain)
    except Exception as exc:
        raise ValueError(f"{owner}: shape inference failed: {exc}") from None
    g = model.graph
    gi = inferred.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            v = _attrs(n).get("value")
            if v is not None:
                consts[n.output[0]] = numpy_helper.to_array(v)
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in list(gi.input) + list(gi.value_info) + list(gi.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    for k, v in consts.items():
        shapes.setdefault(k, tuple(v.shape))

    # QONNX quantizers: output tensor -> (bits, input tensor)
    quant: dict[str, tuple[int, str]] = {}
    for n in g.node:
        if n.op_type in _QUANT:
            if n.op_type == "BipolarQuant":
                qb = 1
            else:
                bw = consts.get(n.input[3]) if len(n.input) > 3 else None
                if bw is None:
                    raise ValueError(f"{owner}: Quant node {n.name or n.output[0]!r} needs a constant bitwidth input")
                qb = int(math.ceil(float(bw.reshape(-1)[0])))
            quant[n.output[0]] = (qb, n.input[0])
            shapes.setdefault(n.output[0], shapes.get(n.input[0], ()))

    def source(t: str) -> str:
        while t in quant:
            t = quant[t][1]
        return t

    def bits_of(t: str) -> int | None:
        return quant[t][0] if t in quant else None

    unsupported: list[str] = []
    recs: list[tuple[str, dict[str, Any], dict[str, int], str]] = []  # name, shape fields, bits, output
    used: set[str] = set()

    def uname(n: Any, i: int) -> str:
        base = n.name or f"{n.op_type.lower()}{i}"
        nm, j = base, 1
        while nm in used:
            nm, j = f"{base}_{j}", j + 1
        used.add(nm)
        return nm

    def shp(t: str) -> tuple[int, ...] | None:
        return shapes.get(t) or shapes.get(source(t))

    for i, n in enumerate(g.node):
        op = n.op_type
        if op in _QUANT or op in _FREE:
            continue
        nm = uname(n, i)
        a = _attrs(n)
        x = n.input[0] if n.input else ""
        xs, ys = shp(x), shp(n.output[0]) if n.output else None
        b: dict[str, int] = {}
        if (x_bits := bits_of(x)) is not None:
            b["act_bits"] = x_bits
        if op == "Conv":
            w = n.input[1]
            ws = shp(w)
            if xs is None or ws is None or len(xs) != 4:
                unsupported.append(f"{nm} (Conv without a static 4-D input shape)")
                continue
            if any(d != 1 for d in a.get("dilations", [1, 1])):
                unsupported.append(f"{nm} (Conv with dilations {a['dilations']})")
                continue
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
                unsupported.append(f"{nm} (Conv with auto_pad {a['auto_pad']!r})")
                continue
            pads = list(a.get("pads", [0, 0, 0, 0]))
            strides = list(a.get("strides", [1, 1]))
            if pads[0] != pads[2] or pads[1] != pads[3]:
                unsupported.append(f"{nm} (Conv with asymmetric pads {pads})")
                continue
            if (w_bits := bits_of(w)) is not None:
                b["weight_bits"] = w_bits
            recs.append((nm, dict(kind=LayerKind.CONV2D, in_channels=xs[1], out_channels=ws[0], in_h=xs[2],
                                  in_w=xs[3], kernel_h=ws[2], kernel_w=ws[3], stride_h=strides[0],
                                  stride_w=strides[1], pad_h=pads[0], pad_w=pads[1], groups=int(a.get("group", 1)),
                                  batch=xs[0]), b, n.output[0]))
        elif op in ("Gemm", "MatMul"):
            w = n.input[1]
            ws = shp(w)
            if source(w) not in consts or ws is None or len(ws) != 2 or xs is None:
                unsupported.append(f"{nm} ({op} without a constant 2-D weight)")
                continue
            trans = op == "Gemm" and int(a.get("transB", 0)) == 1
            k_in, n_out = (ws[1], ws[0]) if trans else (ws[0], ws[1])
            if (w_bits := bits_of(w)) is not None:
                b["weight_bits"] = w_bits
            recs.append((nm, dict(kind=LayerKind.LINEAR, in_channels=k_in, out_channels=n_out,
                                  batch=math.prod(xs[:-1]) if len(xs) > 1 else 1), b, n.output[0]))
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
            if xs is None or len(xs) != 4:
                unsupported.append(f"{nm} ({op} without a static 4-D input shape)")
                continue
            if op.startswith("Global"):
                k, s, p = [xs[2], xs[3]], [1, 1], [0, 0, 0, 0]
            else:
                k = list(a["kernel_shape"])
                s = list(a.get("strides", [1, 1]))
                p = list(a.get("pads", [0, 0, 0, 0]))
            recs.append((nm, dict(kind=LayerKind.POOL, in_channels=xs[1], out_channels=xs[1], in_h=xs[2], in_w=xs[3],
                                  kernel_h=k[0], kernel_w=k[1], stride_h=s[0], stride_w=s[1], pad_h=p[0], pad_w=p[1],
                                  batch=xs[0]), b, n.output[0]))
        elif op in ("Add", "Mul", "Sum"):
            tensors = [t for t in n.input if source(t) not in consts]
            if len(tensors) < 2:
                continue  # bias / scalar scaling: free
            if ys is None:
                unsupported.append(f"{nm} ({op} without a static output shape)")
                continue
            if len(ys) == 4:
                nb, c, h, w_ = ys
            else:
                nb, c, h, w_ = (math.prod(ys[:-1]) if len(ys) > 1 else 1), ys[-1], 1, 1
            recs.append((nm, dict(kind=LayerKind.ELTWISE, in_channels=c, out_channels=c, in_h=h, in_w=w_, batch=nb),
                         b, n.output[0]))
        else:
            unsupported.append(f"{nm} ({op})")

    if unsupported:
        msg = f"{owner}: unsupported operators: {', '.join(unsupported)}"
        if not skip_unsupported:
            raise ValueError(msg + " (pass skip_unsupported to skip them)")
        warnings.warn(msg + " (skipped)", UnsupportedOperatorWarning, stacklevel=2)
    if not recs:
        raise ValueError(f"{owner}: no conv, linear, pooling or element-wise layer found")

    # out_bits: the width of a quantizer applied to the layer's output, else the next MAC layer's act_bits
    consumers_q = {quant[q][1]: quant[q][0] for q in quant}
    wb, ab = default_bits
    layers = []
    for i, (nm, shape, b, out) in enumerate(recs):
        d: dict[str, Any] = {"weight_bits": wb, "act_bits": ab, **b}
        nxt = next((r[2].get("act_bits", ab) for r in recs[i + 1:] if r[1]["kind"] in (LayerKind.CONV2D,
                                                                                       LayerKind.LINEAR)), 8)
        d["out_bits"] = consumers_q.get(out, nxt)
        if bits is not None:
            e = layer_bits_from(bits, nm)
            if e is not None:
                d.update(e)
        try:
            layers.append(Layer(name=nm, **shape, **d))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{owner}: layer {nm!r}: {exc}") from None
    return Network.single(name or g.name or "model", layers)
