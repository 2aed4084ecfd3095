"""The graph normaliser both front ends share: one operator vocabulary, one cost table, one width rule.

A front end (PyTorch, ONNX) translates its graph into a list of :class:`Op` in execution order: each
names a *canonical* operator (a key of :data:`OP_COSTS`), the activation tensors it reads and writes,
and, for the operators that become layers, the :class:`hwsim.Layer` shape fields. :func:`build_layers`
then settles every width with one rule and returns the layers, so that the same model gives the same
``Network`` through either route.

**What an operator costs** (:data:`OP_COSTS`) — one of three things:

- a MAC layer: ``conv`` (``conv2d``), ``linear`` (stored weights), ``matmul`` (both operands activations:
  attention's QKᵀ and AV);
- a vector operation on the array's ``cols``-lane vector unit, with the cost of a ``pool`` layer
  (``ofmap x kernel`` operations, reads the input once) or of an ``eltwise`` layer (one operation per
  output, reads two tensors' worth). Two-tensor ``add``/``sub``/``mul``/``div`` are ``eltwise``;
  ``softmax`` (a statistics pass and a normalise pass over the row), ``layernorm`` (the same),
  ``gelu`` and ``silu`` (``x`` times a function of ``x``, as their ONNX decompositions compute) are
  one ``eltwise`` layer of the tensor's shape each;
- free: shape-only and order-preserving operators, batch norm (folded into the preceding layer),
  pointwise activations computed on the way out of a layer (ReLU, sigmoid, hard-swish, ...), scaling
  or adding a constant, quantizers, and operators that do not produce activations (shape queries,
  assertions, integer arithmetic).

**Widths.** A quantizer (``quant``) sets the width of the tensor it writes; operators marked
``keeps_width`` (pooling, reshape, flatten, transpose, permute, concat, split, slice, identity,
dropout, ReLU, ...) pass their input's width on (concat: the widest). A MAC layer's ``act_bits`` is its
explicit width (``hw_bits()``, a weight quantizer, a ``bits`` table), else the width of the tensor it
reads, else ``default_bits``; a ``matmul``'s ``weight_bits`` is the width of its second operand.
``out_bits`` (one rule for every layer): the width at which the layer's output is stored, which is the
width of the first quantizer met downstream through free and vector operators, else the widest
``act_bits`` (``weight_bits`` for a ``matmul``'s second operand) of the MAC layers that read it
through them, else 8 (a network output). A vector layer reads at the width its input is stored at.

**Losses.** An operator a front end cannot read is an :class:`Unsupported` with the MACs it would
carry (exact where its weight and output shapes are known). Without ``skip_unsupported``: one
``ValueError`` line naming the node, its op and its MACs. With it: one
:class:`UnsupportedOperatorWarning` stating the MACs lost (absolute and % of the total) and one line
per operator type with its count.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwsim.network import Layer, LayerKind

from ..bits import layer_bits_from

__all__ = ["OpCost", "OP_COSTS", "Op", "Unsupported", "UnsupportedOperatorWarning", "build_layers",
           "conv_fields", "pool_fields", "vector_fields", "gemm_fields", "matmul_fields", "mac_estimate",
           "rename_unique"]


class UnsupportedOperatorWarning(UserWarning):
    """Operators skipped by a front end because ``skip_unsupported`` was set (the message says what was lost)."""


@dataclass(frozen=True, slots=True)
class OpCost:
    """What one canonical operator costs: the layer kind it becomes (``None``: free) and whether a free
    operator passes its input's quantized width on unchanged."""

    kind: LayerKind | None
    keeps_width: bool
    why: str


_MAC, _POOL, _ELT = LayerKind.CONV2D, LayerKind.POOL, LayerKind.ELTWISE

OP_COSTS: dict[str, OpCost] = {
    # MAC layers
    "conv": OpCost(LayerKind.CONV2D, False, "convolution (grouped/depthwise; dilated as its exact-MAC equivalent)"),
    "linear": OpCost(LayerKind.LINEAR, False, "fully connected: activation x stored weight"),
    "matmul": OpCost(LayerKind.MATMUL, False, "activation x activation (attention QK^T, AV)"),
    # vector operations
    "pool": OpCost(_POOL, True, "max/avg/global/adaptive pooling, mean over H and W: kernel ops per output"),
    "add": OpCost(_ELT, False, "two-tensor add (residual)"),
    "sub": OpCost(_ELT, False, "two-tensor subtract"),
    "mul": OpCost(_ELT, False, "two-tensor multiply (gating, squeeze-excite)"),
    "div": OpCost(_ELT, False, "two-tensor divide"),
    "softmax": OpCost(_ELT, False, "statistics pass + normalise pass over each row"),
    "layernorm": OpCost(_ELT, False, "statistics pass + normalise pass (affine folded)"),
    "gelu": OpCost(_ELT, False, "x * Phi(x): one multiply of two tensors, as in its ONNX decomposition"),
    "silu": OpCost(_ELT, False, "x * sigmoid(x): one multiply of two tensors, as in its ONNX decomposition"),
    # free, width kept
    "reshape": OpCost(None, True, "shape only"),
    "transpose": OpCost(None, True, "order only (an addressing matter)"),
    "concat": OpCost(None, True, "an addressing matter"),
    "split": OpCost(None, True, "an addressing matter"),
    "slice": OpCost(None, True, "an addressing matter"),
    "expand": OpCost(None, True, "broadcast: an addressing matter"),
    "pad": OpCost(None, True, "zero padding: an addressing matter"),
    "identity": OpCost(None, True, "identity, dropout, stochastic depth at inference"),
    "relu": OpCost(None, True, "ReLU / ReLU6 / clip: applied on the way out, width kept"),
    "dequant": OpCost(None, True, "dequantize: the stored integers keep their width"),
    # free, width not kept
    "quant": OpCost(None, False, "quantizer: sets the width of its output"),
    "batchnorm": OpCost(None, False, "folded into the preceding layer"),
    "activation": OpCost(None, False, "pointwise activation applied on the way out of a layer"),
    "scale": OpCost(None, False, "scaling / shifting by a constant: folded"),
    "cast": OpCost(None, False, "type conversion"),
    "control": OpCost(None, False, "no activation produced: shape queries, assertions, integer arithmetic"),
}


@dataclass(slots=True)
class Op:
    """One operator of a front end's graph, in the shared vocabulary."""

    name: str
    op: str
    """A key of :data:`OP_COSTS`."""
    inputs: tuple[str, ...] = ()
    """Activation tensors read (ids unique within the graph); for ``matmul``: (A, B)."""
    outputs: tuple[str, ...] = ()
    fields: dict[str, Any] | None = None
    """The :class:`hwsim.Layer` shape fields, for operators that become a layer."""
    bits: dict[str, Any] = field(default_factory=dict)
    """Explicit widths (``hw_bits()``, a weight quantizer): weight_bits, act_bits, channel_weight_bits, ..."""
    width: int | None = None
    """For ``quant``: the width of the tensor it writes."""


@dataclass(frozen=True, slots=True)
class Unsupported:
    """An operator the front end cannot read, with the MACs it would carry (``None``: unknown)."""

    name: str
    op: str
    macs: int | None = None
    why: str = ""


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def conv_fields(in_shape: Sequence[int], out_shape: Sequence[int], kernel: Any, stride: Any = 1,
                pads: Sequence[int] = (0, 0, 0, 0), dilation: Any = 1, groups: int = 1) -> dict[str, Any]:
    """Layer fields of a 2-D convolution (NCHW shapes; ``pads`` as top, left, bottom, right).

    The IR has no dilation and only symmetric padding; a dilated or asymmetrically padded convolution
    is written as the ``kernel`` convolution with the same output size and MACs, reading the
    ``(out - 1) * stride + kernel`` rows and columns of one dilation phase (padding none).
    """
    n, c, h, w = (int(x) for x in in_shape)
    co, oh, ow = int(out_shape[1]), int(out_shape[2]), int(out_shape[3])
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    t, left, b, r = (int(x) for x in pads)
    base = dict(kind=LayerKind.CONV2D, in_channels=c, out_channels=co, kernel_h=kh, kernel_w=kw, stride_h=sh,
                stride_w=sw, groups=int(groups), batch=n)
    plain = (_pair(dilation) == (1, 1) and t == b and left == r
             and (h + 2 * t - kh) // sh + 1 == oh and (w + 2 * left - kw) // sw + 1 == ow)
    if plain:
        return {**base, "in_h": h, "in_w": w, "pad_h": t, "pad_w": left}
    return {**base, "in_h": (oh - 1) * sh + kh, "in_w": (ow - 1) * sw + kw, "pad_h": 0, "pad_w": 0}


def pool_fields(in_shape: Sequence[int], out_shape: Sequence[int], kernel: Any = None, stride: Any = None,
                pads: Sequence[int] = (0, 0, 0, 0)) -> dict[str, Any]:
    """Layer fields of a pooling layer; ``kernel=None``: adaptive/global (equal windows over H, W).

    A ``ceil_mode`` pool (or one with asymmetric pads) is sized by its real output: the input is
    taken as the rows and columns its windows cover, so ``out_h``/``out_w`` are the model's.
    """
    n, c, h, w = (int(x) for x in in_shape)
    oh, ow = int(out_shape[-2]), int(out_shape[-1])
    if kernel is None:
        sh, sw = max(1, h // oh), max(1, w // ow)
        kh, kw = h - (oh - 1) * sh, w - (ow - 1) * sw
        ph = pw = 0
    else:
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride not in (None, [], ()) else kernel)
        t, left, b, r = (int(x) for x in pads)
        ph, pw = min(t, b), min(left, r)
    d = dict(kind=LayerKind.POOL, in_channels=c, out_channels=c, kernel_h=kh, kernel_w=kw, stride_h=sh,
             stride_w=sw, pad_h=ph, pad_w=pw, batch=n)
    ih = max(h, (oh - 1) * sh + kh - 2 * ph)
    iw = max(w, (ow - 1) * sw + kw - 2 * pw)
    if (ih + 2 * ph - kh) // sh + 1 != oh:
        ih = (oh - 1) * sh + kh - 2 * ph
    if (iw + 2 * pw - kw) // sw + 1 != ow:
        iw = (ow - 1) * sw + kw - 2 * pw
    return {**d, "in_h": ih, "in_w": iw}


def vector_fields(shape: Sequence[int]) -> dict[str, Any]:
    """Layer fields of an ``eltwise`` vector operation on a tensor of ``shape`` (rank 4: NCHW; else the
    last axis is the channel and the others the batch)."""
    s = [int(x) for x in shape]
    if len(s) == 4:
        n, c, h, w = s
    elif len(s) >= 2:
        n, c, h, w = math.prod(s[:-1]), s[-1], 1, 1
    else:
        n, c, h, w = 1, (s[0] if s else 1), 1, 1
    return dict(kind=LayerKind.ELTWISE, in_channels=c, out_channels=c, in_h=h, in_w=w, batch=n)


def gemm_fields(in_shape: Sequence[int], k_in: int, n_out: int) -> dict[str, Any]:
    """A ``linear`` layer on an input of ``in_shape`` (every axis but the last is a row)."""
    batch = math.prod(int(x) for x in in_shape[:-1]) if len(in_shape) > 1 else 1
    return dict(kind=LayerKind.LINEAR, in_channels=int(k_in), out_channels=int(n_out), batch=batch)


def matmul_fields(a_shape: Sequence[int], b_shape: Sequence[int]) -> dict[str, Any]:
    """``A (..., M, K) @ B (..., K, N)`` of two activations: groups = the broadcast leading axes (batch x
    heads), batch = M rows, in_channels = groups x K, out_channels = groups x N. A 2-D ``B`` is shared by
    every row of ``A``: one group of ``prod(A[:-1])`` rows."""
    a = [int(x) for x in a_shape]
    b = [int(x) for x in b_shape]
    k, n = b[-2], b[-1]
    if len(b) == 2 or len(a) < 2:
        return dict(kind=LayerKind.MATMUL, in_channels=k, out_channels=n, batch=math.prod(a[:-1]) if a[:-1] else 1)
    lead_a, lead_b = a[:-2], b[:-2]
    width = max(len(lead_a), len(lead_b))
    lead_a = [1] * (width - len(lead_a)) + lead_a
    lead_b = [1] * (width - len(lead_b)) + lead_b
    g = math.prod(max(x, y) for x, y in zip(lead_a, lead_b, strict=True))
    return dict(kind=LayerKind.MATMUL, in_channels=g * k, out_channels=g * n, batch=a[-2], groups=g)


def mac_estimate(weight_shape: Sequence[int] | None, out_shape: Sequence[int] | None) -> int | None:
    """MACs of an unread weighted operator: output elements x weights per output channel (exact for
    N-d convolutions and linear layers); ``None`` when a shape is unknown."""
    if not weight_shape or not out_shape or len(weight_shape) < 2:
        return None
    per_out = math.prod(int(x) for x in weight_shape) // int(weight_shape[0])
    return math.prod(int(x) for x in out_shape) * per_out


def _layer_macs(fields: Mapping[str, Any]) -> int:
    try:
        return Layer(name="x", **fields).macs
    except (TypeError, ValueError):
        return 0


def _fmt(n: int) -> str:
    return f"{n:,}"


def _report(owner: str, unsupported: Sequence[Unsupported], ops: Sequence[Op], skip: bool) -> None:
    if not unsupported:
        return
    read = sum(_layer_macs(o.fields) for o in ops if o.fields is not None and OP_COSTS[o.op].kind in
               (LayerKind.CONV2D, LayerKind.LINEAR, LayerKind.MATMUL))
    known = [u.macs for u in unsupported if u.macs is not None]
    lost = sum(known)
    unknown = len(unsupported) - len(known)

    def one(u: Unsupported) -> str:
        m = "MACs unknown" if u.macs is None else f"{_fmt(u.macs)} MACs"
        return f"{u.name} ({u.op}{', ' + u.why if u.why else ''}; {m})"

    if not skip:
        first = one(unsupported[0])
        more = f" and {len(unsupported) - 1} more" if len(unsupported) > 1 else ""
        raise ValueError(f"{owner}: unsupported operators: {first}{more}; pass skip_unsupported "
                         "(--skip-unsupported) to skip them")
    total = read + lost
    pct = 100.0 * lost / total if total else 0.0
    by_op = Counter(u.op for u in unsupported)
    macs_by_op: dict[str, int] = Counter()
    unknown_by_op: dict[str, int] = Counter()
    for u in unsupported:
        macs_by_op[u.op] += u.macs or 0
        unknown_by_op[u.op] += u.macs is None
    lines = [f"  {op}: {cnt} skipped, {_fmt(macs_by_op[op])} MACs"
             + (f" ({unknown_by_op[op]} with MACs unknown)" if unknown_by_op[op] else "")
             for op, cnt in sorted(by_op.items())]
    extra = f" (+ {unknown} operators with unknown MACs)" if unknown else ""
    warnings.warn(f"{owner}: skipped {len(unsupported)} unsupported operators: {_fmt(lost)} MACs lost "
                  f"({pct:.2f} % of {_fmt(total)}){extra}\n" + "\n".join(lines),
                  UnsupportedOperatorWarning, stacklevel=4)


def build_layers(ops: Sequence[Op], unsupported: Sequence[Unsupported], *, owner: str, prefix: str = "",
                 bits: Mapping[str, Any] | None = None, default_bits: tuple[int, int] = (8, 8),
                 skip_unsupported: bool = False) -> list[Layer]:
    """The layers of a normalised graph, every width settled by the rule of the module docstring."""
    for o in ops:
        if o.op not in OP_COSTS:
            raise ValueError(f"{owner}: operator {o.name!r} has no entry in OP_COSTS: {o.op!r}")
    _report(owner, unsupported, ops, skip_unsupported)
    layer_ops = [o for o in ops if o.fields is not None and OP_COSTS[o.op].kind is not None]
    if not layer_ops:
        raise ValueError(f"{owner}: no conv, linear, matmul, pooling or element-wise layer found")
    wb, ab = default_bits
    # 1. forward widths: quantizers set them, keeps_width operators pass them on
    width: dict[str, int] = {}
    for o in ops:
        cost = OP_COSTS[o.op]
        if o.op == "quant" and o.width is not None:
            w: int | None = o.width
        elif cost.keeps_width and cost.kind is None or o.op == "pool":
            known = [width[t] for t in o.inputs if t in width]
            w = max(known) if known else None
        else:
            w = None
        if w is not None:
            for t in o.outputs:
                width[t] = w
    # 2. per-layer explicit and read widths
    spec: dict[int, dict[str, Any]] = {}
    for o in layer_ops:
        kind = OP_COSTS[o.op].kind
        d: dict[str, Any] = {}
        if kind in (LayerKind.CONV2D, LayerKind.LINEAR, LayerKind.MATMUL):
            d["act_bits"] = width.get(o.inputs[0], ab) if o.inputs else ab
            if kind is LayerKind.MATMUL:
                d["weight_bits"] = width.get(o.inputs[1], ab) if len(o.inputs) > 1 else ab
            else:
                d["weight_bits"] = wb
            d.update(o.bits)
        if bits is not None:
            e = layer_bits_from(bits, prefix + o.name)
            if e is not None:
                d.update(e)
                if "weight_bits" in e and "channel_weight_bits" not in e:
                    d.pop("channel_weight_bits", None)
        spec[id(o)] = d
    # 3. out_bits: the width a tensor is stored at, from its readers (walked backwards)
    readers: dict[str, list[tuple[Op, int]]] = {}
    for o in ops:
        for i, t in enumerate(o.inputs):
            readers.setdefault(t, []).append((o, i))
    stored: dict[str, int] = {}
    visiting: set[str] = set()

    def demand(t: str) -> int | None:
        if t in stored:
            return stored[t]
        if t in visiting:  # a malformed graph that reads its own output
            return None
        visiting.add(t)
        got: list[int] = []
        for r, i in readers.get(t, ()):
            kind = OP_COSTS[r.op].kind
            if r.op == "quant" and r.width is not None:
                got.append(r.width)
            elif kind in (LayerKind.CONV2D, LayerKind.LINEAR, LayerKind.MATMUL) and r.fields is not None:
                d = spec[id(r)]
                got.append(int(d["weight_bits"] if kind is LayerKind.MATMUL and i == 1 else d["act_bits"]))
            else:
                got += [x for x in (demand(u) for u in r.outputs) if x is not None]
        visiting.discard(t)
        val = max(got) if got else None
        if val is not None:
            stored[t] = val
        return val

    for o in reversed(ops):  # fill from the back so recursion stays shallow
        for t in o.outputs:
            demand(t)
    layers = []
    for o in layer_ops:
        d = dict(spec[id(o)])
        out = o.outputs[0] if o.outputs else ""
        given = bits is not None and layer_bits_from(bits, prefix + o.name) or {}
        if "out_bits" not in given:
            d["out_bits"] = width.get(out) if o.op == "pool" and out in width else (demand(out) or 8)
        if OP_COSTS[o.op].kind in (LayerKind.POOL, LayerKind.ELTWISE) and "act_bits" not in given:
            reads = [width.get(t) or demand(t) for t in o.inputs]
            known = [x for x in reads if x]
            d["act_bits"] = max(known) if known else d["out_bits"]
        try:
            layers.append(Layer(name=prefix + o.name, **o.fields, **d))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{owner}: layer {prefix + o.name!r}: {exc}") from None
    return layers


def rename_unique(name: str, used: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``, ... when taken; records the result in ``used``."""
    base = name or "op"
    n, i = base, 1
    while n in used:
        n, i = f"{base}_{i}", i + 1
    used.add(n)
    return n

