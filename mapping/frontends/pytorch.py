"""PyTorch front end: an ``nn.Module`` and an example input -> :class:`hwsim.Network`.

The module is traced with ``torch.fx`` (shapes by running the traced graph on the example input);
where fx cannot trace it (data-dependent control flow), forward hooks on the leaf modules and a
``TorchFunctionMode`` for the functional ops between them record the same graph from one ordinary
forward pass. A TorchScript module is read through its graph (:func:`from_torchscript`).

Every module and function is translated into the shared operator vocabulary of
:mod:`mapping.frontends.graph`, whose one cost table decides what becomes a layer (``Conv2d`` with any
groups, dilation or padding; ``Linear``; ``MultiheadAttention`` as its projections, two ``matmul`` layers
and a softmax; matmuls of two activations; pooling, ``mean`` over H and W; two-tensor arithmetic;
LayerNorm, softmax, GELU, SiLU) and what is free. Tensors computed from parameters alone (a class
token expanded, a positional embedding) are constants, not activations.

Bits (duck-typed, see ``quant/protocol.py``): a module with ``hw_bits()`` returning an object or mapping
with ``weight_bits``, ``act_bits`` and optionally ``channel_weight_bits`` and ``bit_scales``; a
per-layer ``bits`` table (:mod:`mapping.bits`) overrides it; otherwise ``default_bits``; ``out_bits`` by
the normaliser's one rule. A cascade is a module with a ``stages`` list of modules and
``exit_rate``/``exit_rates``, ``rule``/``exit_rule`` and ``threshold`` attributes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hwsim.network import EXIT_RULES, Layer, Network, Stage

from .graph import (
    Op,
    Unsupported,
    UnsupportedOperatorWarning,
    build_layers,
    conv_fields,
    gemm_fields,
    mac_estimate,
    matmul_fields,
    pool_fields,
    rename_unique,
    vector_fields,
)

__all__ = ["from_torch", "UnsupportedOperatorWarning", "TORCH_MODULE_OPS", "TORCH_FUNCTION_OPS"]

TORCH_MODULE_OPS: dict[str, str] = {
    **dict.fromkeys(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"), "batchnorm"),
    **dict.fromkeys(("ReLU", "ReLU6", "Hardtanh"), "relu"),
    **dict.fromkeys(("LeakyReLU", "PReLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "ELU", "SELU", "CELU",
                     "Mish", "Softplus", "LogSoftmax"), "activation"),
    **dict.fromkeys(("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                     "StochasticDepth"), "identity"),
    **dict.fromkeys(("Flatten", "Unflatten"), "reshape"),
    "Permute": "transpose",
    **dict.fromkeys(("Softmax", "Softmax2d"), "softmax"),
    **dict.fromkeys(("LayerNorm", "LayerNorm2d", "GroupNorm", "RMSNorm"), "layernorm"),
    "GELU": "gelu", "SiLU": "silu",
    **dict.fromkeys(("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"), "pad"),
    **dict.fromkeys(("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"), "expand"),
    **dict.fromkeys(("PixelShuffle", "PixelUnshuffle", "ChannelShuffle"), "transpose"),
}
"""Module classes (by name, so that subclasses such as torchvision's ``LayerNorm2d`` count) with a fixed
canonical operator; ``Conv2d``, ``Linear``, pooling and ``MultiheadAttention`` have their own readers."""

TORCH_FUNCTION_OPS: dict[str, str] = {
    **dict.fromkeys(("relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clip"), "relu"),
    **dict.fromkeys(("leaky_relu", "sigmoid", "sigmoid_", "tanh", "hardswish", "hardsigmoid", "elu", "mish",
                     "softplus", "log_softmax", "round", "floor", "sign", "abs", "erf", "exp", "sqrt", "rsqrt",
                     "pow", "__pow__", "neg", "__neg__"), "activation"),
    **dict.fromkeys(("dropout", "identity", "stochastic_depth", "contiguous", "clone", "detach", "alias"),
                    "identity"),
    **dict.fromkeys(("flatten", "view", "reshape", "squeeze", "unsqueeze", "unflatten", "view_as", "reshape_as"),
                    "reshape"),
    **dict.fromkeys(("transpose", "permute", "t", "swapaxes", "movedim"), "transpose"),
    **dict.fromkeys(("cat", "concat", "concatenate", "stack"), "concat"),
    **dict.fromkeys(("chunk", "split", "unbind", "tensor_split"), "split"),
    **dict.fromkeys(("getitem", "__getitem__", "select", "narrow", "index_select"), "slice"),
    **dict.fromkeys(("expand", "expand_as", "repeat"), "expand"),
    "pad": "pad",
    **dict.fromkeys(("interpolate", "upsample"), "expand"),
    **dict.fromkeys(("pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "roll", "flip"), "transpose"),
    **dict.fromkeys(("to", "float", "half", "type_as", "type", "double"), "cast"),
    "batch_norm": "batchnorm",
    **dict.fromkeys(("softmax", "_softmax"), "softmax"),
    **dict.fromkeys(("layer_norm", "group_norm", "rms_norm"), "layernorm"),
    "gelu": "gelu", "silu": "silu",
    **dict.fromkeys(("add", "__add__", "__radd__", "add_", "__iadd__", "iadd"), "add"),
    **dict.fromkeys(("sub", "__sub__", "__rsub__", "sub_", "__isub__", "isub", "rsub"), "sub"),
    **dict.fromkeys(("mul", "__mul__", "__rmul__", "mul_", "__imul__", "imul"), "mul"),
    **dict.fromkeys(("div", "__truediv__", "__rtruediv__", "div_", "truediv", "__itruediv__"), "div"),
    **dict.fromkeys(("size", "dim", "numel", "getattr", "_assert", "floordiv", "__floordiv__", "item", "eq",
                     "ne", "gt", "lt", "ge", "le", "any", "all", "argmax", "sum", "max", "min", "amax",
                     "is_floating_point", "_assert_async", "sym_size", "__eq__", "__ne__", "__gt__", "__lt__",
                     "__ge__", "__le__", "__bool__", "__len__", "__format__", "__index__", "__int__", "__float__",
                     "tolist", "shape", "device", "dtype", "get_device", "requires_grad_"), "control"),
}
"""Functions and tensor methods (by name) with a fixed canonical operator; ``add``/``sub``/``mul``/``div``
become layers only on two activations (with a constant they are a free ``scale``)."""

_ARITH = ("add", "sub", "mul", "div")
_POOL_FUNCS = {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "max_pool2d_with_indices"}
_MATMUL_FUNCS = {"matmul", "__matmul__", "bmm", "__rmatmul__"}


def _fname(fn: Any) -> str:
    if isinstance(fn, str):
        return fn
    return str(getattr(fn, "__name__", repr(fn)))


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, key: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(key, default)


def _hw(mod: Any) -> dict[str, Any]:
    hb = mod.hw_bits()

    def get(k: str) -> Any:
        return hb.get(k) if isinstance(hb, Mapping) else getattr(hb, k, None)

    out = {"weight_bits": get("weight_bits"), "act_bits": get("act_bits")}
    if get("channel_weight_bits") is not None:
        out["channel_weight_bits"] = tuple(get("channel_weight_bits"))
    if get("bit_scales"):
        out["bit_scales"] = get("bit_scales")
    if get("weight_density") is not None and float(get("weight_density")) != 1.0:
        out["weight_density"] = float(get("weight_density"))
    return out


Shape = tuple[int, ...]


class _Graph:
    """Collects :class:`Op` values; ``ins``/``outs`` are ``(tensor id, shape)`` of activation tensors."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.ops: list[Op] = []
        self.unsupported: list[Unsupported] = []
        self.names: set[str] = set()

    def add(self, name: str, op: str, ins: Sequence[tuple[str, Shape | None]], outs: Sequence[tuple[str, Any]],
            fields: dict[str, Any] | None = None, bits: dict[str, Any] | None = None) -> None:
        self.ops.append(Op(rename_unique(name, self.names), op, tuple(t for t, _ in ins),
                           tuple(t for t, _ in outs), fields, bits or {}))

    def skip(self, name: str, op: str, macs: int | None, why: str = "") -> None:
        self.unsupported.append(Unsupported(name, op, macs, why))

    # ---- modules -----------------------------------------------------------------------------------------
    def module(self, name: str, mod: Any, ins: list[tuple[str, Shape | None]], outs: list[tuple[str, Any]],
               args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> None:
        import torch.nn as nn
        kwargs = kwargs or {}
        cls = type(mod).__name__
        xs = ins[0][1] if ins else None
        ys = outs[0][1] if outs else None
        hw = _hw(mod) if hasattr(mod, "hw_bits") else None
        if not ins:  # computed from parameters and constants alone
            self.add(name, "control", ins, outs)
        elif isinstance(mod, nn.Conv2d):
            if xs is None or ys is None or len(xs) != 4 or len(ys) != 4:
                self.skip(name, cls, mac_estimate(tuple(mod.weight.shape), ys), "not on a 4-D input")
                return
            if isinstance(mod.padding, str):
                pads: tuple[int, ...] = (0, 0, 0, 0)  # 'same'/'valid': sized by the real output
            else:
                ph, pw = mod.padding
                pads = (ph, pw, ph, pw)
            self.add(name, "conv", ins[:1], outs, conv_fields(xs, ys, mod.kernel_size, mod.stride, pads,
                                                              mod.dilation, mod.groups), hw)
        elif isinstance(mod, nn.Linear):
            if xs is None:
                self.skip(name, cls, None, "input shape unknown")
                return
            self.add(name, "linear", ins[:1], outs, gemm_fields(xs, mod.in_features, mod.out_features), hw)
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            self._pool(name, cls, ins, outs, mod.kernel_size, mod.stride, mod.padding)
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            self._pool(name, cls, ins, outs)
        elif isinstance(mod, nn.MultiheadAttention):
            self._mha(name, mod, ins, outs, args, kwargs)
        elif any(c.__name__ in TORCH_MODULE_OPS for c in type(mod).__mro__):
            op = next(TORCH_MODULE_OPS[c.__name__] for c in type(mod).__mro__ if c.__name__ in TORCH_MODULE_OPS)
            self.add(name, op, ins, outs, vector_fields(ys) if op in _VECTOR and ys else None)
        else:
            w = getattr(mod, "weight", None)
            self.skip(name, cls, mac_estimate(tuple(w.shape), ys) if w is not None and hasattr(w, "shape") else None)

    def _pool(self, name: str, what: str, ins: list[tuple[str, Shape | None]], outs: list[tuple[str, Any]],
              kernel: Any = None, stride: Any = None, padding: Any = 0) -> None:
        xs = ins[0][1] if ins else None
        ys = outs[0][1] if outs else None
        if isinstance(ys, tuple) and ys and isinstance(ys[0], tuple):
            ys = ys[0]  # (values, indices)
        if xs is None or ys is None or len(xs) != 4 or len(ys) != 4:
            self.skip(name, what, 0, "not on a 4-D input")
            return
        ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
        self.add(name, "pool", ins[:1], outs, pool_fields(xs, ys, kernel, stride, (ph, pw, ph, pw)))

    def _mha(self, name: str, mod: Any, ins: list[tuple[str, Shape | None]], outs: list[tuple[str, Any]],
             args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """``nn.MultiheadAttention``: in-projection (one 3E-wide linear for self-attention), QKᵀ and AV as
        ``matmul`` layers (groups = batch x heads), the softmax between, and the out-projection."""
        shapes = [s for _, s in ins]
        if len(ins) < 3 or any(s is None or len(s) != 3 for s in shapes[:3]):
            self.skip(name, "MultiheadAttention", None, "needs 3-D query, key and value")
            return
        (q, qs), (k, ks), (v, vs) = ins[:3]
        assert qs is not None and ks is not None and vs is not None
        if mod.batch_first:
            n, lq, e = qs
            s_len = ks[1]
        else:
            lq, n, e = qs
            s_len = ks[0]
        h = mod.num_heads
        hd = e // h
        g = n * h
        if q == k == v and mod._qkv_same_embed_dim:
            self.add(f"{name}.in_proj", "linear", [(q, qs)], [(f"{name}#qkv", None)], gemm_fields(qs, e, 3 * e))
            tq = tk = tv = f"{name}#qkv"
        else:
            tq, tk, tv = f"{name}#q", f"{name}#k", f"{name}#v"
            self.add(f"{name}.q_proj", "linear", [(q, qs)], [(tq, None)], gemm_fields(qs, e, e))
            self.add(f"{name}.k_proj", "linear", [(k, ks)], [(tk, None)], gemm_fields(ks, ks[-1], e))
            self.add(f"{name}.v_proj", "linear", [(v, vs)], [(tv, None)], gemm_fields(vs, vs[-1], e))
        self.add(f"{name}.qk", "matmul", [(tq, None), (tk, None)], [(f"{name}#s", None)],
                 matmul_fields((g, lq, hd), (g, hd, s_len)))
        self.add(f"{name}.softmax", "softmax", [(f"{name}#s", None)], [(f"{name}#p", None)],
                 vector_fields((n, h, lq, s_len)))
        self.add(f"{name}.av", "matmul", [(f"{name}#p", None), (tv, None)], [(f"{name}#o", None)],
                 matmul_fields((g, lq, s_len), (g, s_len, hd)))
        self.add(f"{name}.out_proj", "linear", [(f"{name}#o", None)], outs[:1], gemm_fields(qs, e, e))

    # ---- functions ---------------------------------------------------------------------------------------
    def function(self, name: str, fn: str, ins: list[tuple[str, Shape | None]], outs: list[tuple[str, Any]],
                 args: Sequence[Any], kwargs: Mapping[str, Any], weights: Sequence[Shape | None] = ()) -> None:
        """``ins``: activation tensors; ``weights``: shapes of the constant tensor arguments (parameters)."""
        ys = outs[0][1] if outs else None
        if not outs or not isinstance(ys, tuple):
            self.add(name, "control", ins, outs)
            return
        if not ins:
            self.add(name, "control", ins, outs)  # constants only: a constant
            return
        xs = ins[0][1]
        op = TORCH_FUNCTION_OPS.get(fn)
        if op in _ARITH:
            if len(ins) >= 2 and ys and not isinstance(ys[0], tuple):
                self.add(name, op, ins, outs, vector_fields(ys))
            else:
                self.add(name, "scale", ins, outs)
        elif op is not None:
            self.add(name, op, ins, outs, vector_fields(ys) if op in _VECTOR and ys else None)
        elif fn in _POOL_FUNCS:
            if fn.startswith("adaptive"):
                self._pool(name, fn, ins, outs)
            else:
                self._pool(name, fn, ins, outs, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                           _arg(args, kwargs, 3, "padding", 0))
        elif fn == "mean":
            dims = _arg(args, kwargs, 1, "dim")
            rank = len(xs) if xs else 0
            dims = tuple(int(d) % rank for d in ((dims,) if isinstance(dims, int) else tuple(dims or ()))) if rank else ()
            if rank == 4 and sorted(dims) == [2, 3] and xs is not None:
                self.add(name, "pool", ins[:1], outs, pool_fields(xs, (xs[0], xs[1], 1, 1)))
            else:
                self.skip(name, f"mean over dims {dims}", 0)
        elif fn == "conv2d" and weights and weights[0] is not None and xs is not None and len(xs) == 4:
            pad = _arg(args, kwargs, 4, "padding", 0)
            pad = (0, 0) if isinstance(pad, str) else ((pad, pad) if isinstance(pad, int) else tuple(pad))
            self.add(name, "conv", ins[:1], outs, conv_fields(xs, ys, weights[0][2:], _arg(args, kwargs, 3, "stride", 1),
                                                              (pad[0], pad[1], pad[0], pad[1]),
                                                              _arg(args, kwargs, 5, "dilation", 1),
                                                              _arg(args, kwargs, 6, "groups", 1)))
        elif fn == "linear" and weights and weights[0] is not None and xs is not None:
            w = weights[0]
            self.add(name, "linear", ins[:1], outs, gemm_fields(xs, w[1], w[0]))
        elif fn in _MATMUL_FUNCS and len(ins) >= 2 and xs is not None and ins[1][1] is not None:
            self.add(name, "matmul", ins[:2], outs, matmul_fields(xs, ins[1][1]))
        elif fn in _MATMUL_FUNCS and weights and weights[0] is not None and xs is not None:
            self.add(name, "linear", ins[:1], outs, gemm_fields(xs, weights[0][-2], weights[0][-1]))
        elif fn == "scaled_dot_product_attention" and len(ins) >= 3 and all(s is not None for _, s in ins[:3]):
            (q, qs), (k, ks), (v, vs) = ins[:3]
            assert qs is not None and ks is not None and vs is not None
            kt = (*ks[:-2], ks[-1], ks[-2])
            self.add(f"{name}.qk", "matmul", [(q, qs), (k, kt)], [(f"{name}#s", None)], matmul_fields(qs, kt))
            ss = (*qs[:-1], ks[-2])
            self.add(f"{name}.softmax", "softmax", [(f"{name}#s", ss)], [(f"{name}#p", None)], vector_fields(ss))
            self.add(f"{name}.av", "matmul", [(f"{name}#p", ss), (v, vs)], outs, matmul_fields(ss, vs))
        else:
            self.skip(name, fn, mac_estimate(weights[0] if weights else None, ys))


_VECTOR = {"softmax", "layernorm", "gelu", "silu"}


def _shape(meta: Any) -> Any:
    """A tensor's shape, a tuple of shapes for a tuple of tensors, None for anything else."""
    if meta is None:
        return None
    if hasattr(meta, "shape"):  # a tensor, or fx's TensorMetadata (a NamedTuple)
        return tuple(int(x) for x in meta.shape)
    if isinstance(meta, (tuple, list)):
        parts = [_shape(m) for m in meta]  # (output, None) of attention without weights: keep the output
        return tuple(parts) if any(p is not None for p in parts) else None
    return None


def _flat_nodes(a: Any) -> Iterator[Any]:
    if isinstance(a, (list, tuple)):
        for x in a:
            yield from _flat_nodes(x)
    elif isinstance(a, dict):
        for x in a.values():
            yield from _flat_nodes(x)
    else:
        yield a


def _trace_fx(module: Any, example: Any, g: _Graph) -> bool:
    """Fill ``g`` with torch.fx; False when fx cannot trace the module."""
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return (hasattr(m, "hw_bits") or type(m).__name__ in TORCH_MODULE_OPS
                    or super().is_leaf_module(m, qualname))

    try:
        graph = Tracer().trace(module)
    except Exception:  # fx raises many kinds (TraceError, TypeError, ...): fall back to hooks
        return False
    gm = fx.GraphModule(module, graph)
    try:
        ShapeProp(gm).propagate(example)
    except Exception as exc:
        raise ValueError(f"{g.owner}: cannot run the model on the example input of shape "
                         f"{tuple(example.shape)}: {type(exc).__name__}: {exc}") from None
    consts: set[str] = set()

    def meta(n: Any) -> Any:
        return _shape(n.meta.get("tensor_meta")) if isinstance(n, fx.Node) else None

    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        if node.op == "placeholder":
            continue
        if node.op == "get_attr":
            consts.add(node.name)
            continue
        arg_nodes = [a for a in _flat_nodes((node.args, node.kwargs)) if isinstance(a, fx.Node)]
        ins = [(a.name, meta(a)) for a in dict.fromkeys(arg_nodes) if a.name not in consts and meta(a) is not None]
        weights = [meta(a) for a in arg_nodes if a.name in consts]
        outs = [(node.name, meta(node))]
        if not ins and node.op != "call_module":
            consts.add(node.name)
            continue
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            ordered = [(a.name, meta(a)) for a in arg_nodes if a.name not in consts and meta(a) is not None]
            g.module(str(node.target), mod, ordered, outs, node.args, node.kwargs)
        else:
            fn = _fname(node.target)
            if fn in ("getitem", "__getitem__") and ins and isinstance(ins[0][1], tuple) and ins[0][1] \
                    and isinstance(ins[0][1][0], tuple):
                idx = node.args[1] if len(node.args) > 1 else 0
                part = ins[0][1][idx] if isinstance(idx, int) and idx < len(ins[0][1]) else None
                ins = [(ins[0][0], part)]
            g.function(node.name, fn, ins, outs, node.args, node.kwargs, weights)
    return True


def _trace_hooks(module: Any, example: Any, g: _Graph) -> None:
    """Fill ``g`` from one forward pass: hooks on leaf modules, a function mode for the ops between."""
    import torch
    from torch.overrides import TorchFunctionMode

    names = {m: n for n, m in module.named_modules()}
    depth = [0]
    live: dict[int, Any] = {id(example): example}  # tensors seen, kept alive so that ids stay unique
    params = {id(p) for p in module.parameters()} | {id(b) for b in module.buffers()}

    version: dict[int, str] = {id(example): "input"}

    def tid(t: Any) -> str:
        return version.get(id(t), f"t{id(t)}")

    def tensors(a: Any) -> list[Any]:
        return [x for x in _flat_nodes(a) if isinstance(x, torch.Tensor)]

    def split(args: Any) -> tuple[list[tuple[str, Shape | None]], list[Shape | None]]:
        ins: list[tuple[str, Shape | None]] = []
        weights: list[Shape | None] = []
        for t in tensors(args):
            if id(t) in live and id(t) not in params:
                ins.append((tid(t), tuple(t.shape)))
            else:
                weights.append(tuple(t.shape))
        return ins, weights

    def record_outs(out: Any) -> list[tuple[str, Any]]:
        ts = tensors(out)
        for t in ts:  # a fresh name per write: an in-place op (x += y, relu_) must not read its own output
            live[id(t)] = t
            version[id(t)] = f"t{len(version)}"
        if isinstance(out, torch.Tensor):
            return [(tid(out), tuple(out.shape))]
        return [(tid(ts[0]), tuple(tuple(t.shape) for t in ts))] if ts else []

    def is_leaf(m: Any) -> bool:
        return (hasattr(m, "hw_bits") or type(m).__name__ in TORCH_MODULE_OPS
                or isinstance(m, torch.nn.MultiheadAttention) or not any(True for _ in m.children()))

    def under_leaf(m: Any) -> bool:
        return any(is_leaf(p) and p is not m and any(c is m for c in p.modules()) for p in leaves)

    def pre(m: Any, args: Any, kwargs: Any) -> None:
        depth[0] += 1

    def post(m: Any, args: Any, kwargs: Any, out: Any) -> None:
        depth[0] -= 1
        if depth[0]:
            return
        ins, _ = split((args, kwargs))
        ordered = ins
        g.module(names[m], m, ordered, record_outs(out), args, kwargs)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if depth[0] == 0:
                fn = _fname(func)
                ins, weights = split((args, kwargs))
                if not ins:
                    return out
                if fn == "__get__" or fn == "shape":
                    return out
                outs = record_outs(out)
                g.function(fn, fn, ins, outs, args, kwargs, weights)
            return out

    leaves = [m for m in module.modules() if m is not module and is_leaf(m)]
    handles = []
    for m in leaves:
        if under_leaf(m):
            continue
        handles += [m.register_forward_pre_hook(pre, with_kwargs=True),
                    m.register_forward_hook(post, with_kwargs=True)]
    try:
        with torch.no_grad(), Mode():
            module(example)
    except Exception as exc:
        raise ValueError(f"{g.owner}: cannot run the model on the example input of shape "
                         f"{tuple(example.shape)}: {type(exc).__name__}: {exc}") from None
    finally:
        for h in handles:
            h.remove()


def _stage_layers(module: Any, example: Any, owner: str, prefix: str, bits: Mapping[str, Any] | None,
                  default_bits: tuple[int, int], skip_unsupported: bool) -> list[Layer]:
    g = _Graph(owner)
    was = module.training
    module.eval()
    try:
        if not _trace_fx(module, example, g):
            g = _Graph(owner)
            _trace_hooks(module, example, g)
    finally:
        module.train(was)
    return build_layers(g.ops, g.unsupported, owner=owner, prefix=prefix, bits=bits, default_bits=default_bits,
                        skip_unsupported=skip_unsupported)


def _cascade_stages(module: Any) -> list[Any] | None:
    stages = getattr(module, "stages", None)
    if stages is None or not (hasattr(module, "exit_rate") or hasattr(module, "exit_rates")):
        return None
    return list(stages)


def _exit_rates(module: Any, n_stages: int) -> list[Any]:
    """A cascade's ``exit_rates`` (or ``[exit_rate]``), padded with 1.0 to one per stage."""
    rates = getattr(module, "exit_rates", None)
    if rates is None:
        rates = [float(module.exit_rate)] + [1.0] * (n_stages - 1)
    return list(rates) + [1.0] * (n_stages - len(list(rates)))


def _check_input(owner: str, module: Any, example: Any) -> None:
    """A wrong-rank example input: one line naming the rank the first layer wants."""
    import torch.nn as nn
    first = next((m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if isinstance(first, nn.Conv2d) and example.dim() not in (3, 4):
        raise ValueError(f"{owner}: input shape must be N,C,H,W (4 values) for a model starting with Conv2d, "
                         f"not {tuple(example.shape)!r}")


def from_torch(module: Any, example_input: Any, *, name: str = "model", bits: Mapping[str, Any] | None = None,
               default_bits: tuple[int, int] = (8, 8), skip_unsupported: bool = False) -> Network:
    """Trace ``module`` on ``example_input`` and return its :class:`hwsim.Network` (module docstring)."""
    import torch
    from torch import nn

    if isinstance(module, torch.jit.ScriptModule):
        from .torchscript import from_torchscript
        return from_torchscript(module, example_input, name=name, bits=bits, default_bits=default_bits,
                                skip_unsupported=skip_unsupported)
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch.module must be a torch.nn.Module, not {module!r}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"from_torch.example_input must be a torch.Tensor, not {example_input!r}")
    owner = f"from_torch[{type(module).__name__}]"
    _check_input(owner, module, example_input)
    stages = _cascade_stages(module)
    if stages is None:
        return Network.single(name, _stage_layers(module, example_input, owner, "", bits, default_bits,
                                                  skip_unsupported))
    rates = _exit_rates(module, len(stages))
    rule = getattr(module, "exit_rule", getattr(module, "rule", "confidence"))
    if rule not in EXIT_RULES:
        raise ValueError(f"{owner}.exit_rule must be one of {list(EXIT_RULES)}, not {rule!r}")
    thr = getattr(module, "threshold", None)
    thr = float(thr) if thr is not None and math.isfinite(float(thr)) else None
    out = []
    for i, st in enumerate(stages):
        last = i == len(stages) - 1
        layers = _stage_layers(st, example_input, f"{owner}.stages[{i}]", f"s{i + 1}.", bits, default_bits,
                               skip_unsupported)
        out.append(Stage(f"stage{i + 1}", tuple(layers), exit_rate=1.0 if last else float(rates[i]),
                         exit_rule="none" if last else rule, threshold=None if last else thr))
    return Network(name, tuple(out))
