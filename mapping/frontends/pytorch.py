"""PyTorch front end: an ``nn.Module`` and an example input -> :class:`hwsim.Network`.

The module is traced with ``torch.fx`` (shapes by running the traced graph on the example input);
where fx cannot trace it (data-dependent control flow), forward hooks on the leaf modules and a
``TorchFunctionMode`` for the functional ops between them record the same information from one
ordinary forward pass.

What becomes a layer: ``Conv2d`` (grouped and depthwise included; dilation 1), ``Linear``, max/average
pooling (adaptive too) and ``mean`` over H, W as ``pool``; tensor + tensor and tensor * tensor
(residual adds, gating) as ``eltwise``. What is free (no layer): batch norm (folded into the preceding
conv), activations, dropout, identity, flatten/view/reshape, concatenation (an addressing matter), scalar
scaling. Anything else is an unsupported operator: listed by name in one ``ValueError``, or, with
``skip_unsupported=True``, skipped with one warning that lists them.

Bits (duck-typed, see ``quant/protocol.py``): a module with ``hw_bits()`` returning an object or mapping
with ``weight_bits``, ``act_bits`` and optionally ``channel_weight_bits`` and ``bit_scales``; a
per-layer ``bits`` table (:mod:`mapping.bits`) overrides it; otherwise ``default_bits``. A layer's
``out_bits`` is the ``act_bits`` of the next MAC layer (8 after the last); pooling and element-wise
layers carry that width too. A cascade is a module with a ``stages`` list of modules and
``exit_rate``/``exit_rates``, ``rule``/``exit_rule`` and ``threshold`` attributes.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from hwsim.network import EXIT_RULES, Layer, LayerKind, Network, Stage

from ..bits import layer_bits_from

__all__ = ["from_torch", "UnsupportedOperatorWarning"]


class UnsupportedOperatorWarning(UserWarning):
    """Operators skipped by a front end because ``skip_unsupported`` was set."""


_FREE_MODULES = ("BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "Hardtanh", "Sigmoid",
                 "Tanh", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "ELU", "Identity", "Dropout", "Dropout2d",
                 "Flatten", "Softmax", "LogSoftmax")
_FREE_FUNCS = {"relu", "relu_", "relu6", "leaky_relu", "hardtanh", "sigmoid", "tanh", "gelu", "silu",
               "hardswish", "elu", "dropout", "flatten", "view", "reshape", "contiguous", "size", "cat",
               "concat", "squeeze", "unsqueeze", "softmax", "log_softmax", "getitem", "getattr", "clone",
               "detach", "to", "float", "type_as", "batch_norm", "identity", "dim", "numel", "chunk", "split",
               "clamp", "clamp_", "clip", "round", "floor", "sign", "abs",
               # reductions and comparisons that steer control flow (no tensor goes on)
               "sum", "gt", "lt", "ge", "le", "eq", "ne", "any", "all", "item", "argmax", "max", "min", "amax"}
_ADD = {"add", "__add__", "__radd__", "add_", "__iadd__", "iadd"}
_MUL = {"mul", "__mul__", "__rmul__", "mul_", "__imul__", "imul"}
_POOL_FUNCS = {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
_POOL_MODULES = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _fname(fn: Any) -> str:
    if isinstance(fn, str):
        return fn
    return str(getattr(fn, "__name__", repr(fn)))


@dataclasses.dataclass
class _Rec:
    """One layer before bits are settled: kind, shapes, and where its bits come from."""

    name: str
    layer: dict[str, Any]
    hw: Any = None


class _Builder:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.recs: list[_Rec] = []
        self.unsupported: list[str] = []
        self.names: set[str] = set()

    def name(self, base: str) -> str:
        n, i = base or "op", 1
        while n in self.names:
            n, i = f"{base}_{i}", i + 1
        self.names.add(n)
        return n

    def conv(self, name: str, mod: Any, shape: Sequence[int]) -> None:
        if tuple(_pair(mod.dilation)) != (1, 1):
            self.unsupported.append(f"{name} (Conv2d with dilation {tuple(mod.dilation)})")
            return
        if isinstance(mod.padding, str):
            if mod.padding != "valid":
                self.unsupported.append(f"{name} (Conv2d with padding={mod.padding!r})")
                return
            pad = (0, 0)
        else:
            pad = _pair(mod.padding)
        if len(shape) != 4:
            self.unsupported.append(f"{name} (Conv2d on a {len(shape)}-D input)")
            return
        n, c, h, w = (int(x) for x in shape)
        kh, kw = _pair(mod.kernel_size)
        sh, sw = _pair(mod.stride)
        self.recs.append(_Rec(name, dict(kind=LayerKind.CONV2D, in_channels=c, out_channels=int(mod.out_channels),
                                         in_h=h, in_w=w, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                                         pad_h=pad[0], pad_w=pad[1], groups=int(mod.groups), batch=n),
                              mod if hasattr(mod, "hw_bits") else None))

    def linear(self, name: str, mod: Any, shape: Sequence[int]) -> None:
        batch = math.prod(int(x) for x in shape[:-1]) if len(shape) > 1 else 1
        self.recs.append(_Rec(name, dict(kind=LayerKind.LINEAR, in_channels=int(mod.in_features),
                                         out_channels=int(mod.out_features), batch=batch),
                              mod if hasattr(mod, "hw_bits") else None))

    def pool(self, name: str, shape: Sequence[int], out_shape: Sequence[int], kernel: Any = None, stride: Any = None,
             padding: Any = 0) -> None:
        if len(shape) != 4 or len(out_shape) != 4:
            self.unsupported.append(f"{name} (pooling on a {len(shape)}-D input)")
            return
        n, c, h, w = (int(x) for x in shape)
        oh, ow = int(out_shape[2]), int(out_shape[3])
        if kernel is None:  # adaptive / global: equal windows
            sh, sw = h // oh, w // ow
            kh, kw = h - (oh - 1) * sh, w - (ow - 1) * sw
            ph = pw = 0
        else:
            kh, kw = _pair(kernel)
            sh, sw = _pair(stride if stride not in (None, []) else kernel)
            ph, pw = _pair(padding)
        self.recs.append(_Rec(name, dict(kind=LayerKind.POOL, in_channels=c, out_channels=c, in_h=h, in_w=w,
                                         kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw,
                                         batch=n)))

    def eltwise(self, name: str, shape: Sequence[int]) -> None:
        if len(shape) == 4:
            n, c, h, w = (int(x) for x in shape)
        elif len(shape) >= 2:
            n, c, h, w = math.prod(int(x) for x in shape[:-1]), int(shape[-1]), 1, 1
        else:
            n, c, h, w = 1, int(shape[0]) if shape else 1, 1, 1
        self.recs.append(_Rec(name, dict(kind=LayerKind.ELTWISE, in_channels=c, out_channels=c, in_h=h, in_w=w,
                                         batch=n)))

    def module(self, name: str, mod: Any, in_shape: Sequence[int] | None, out_shape: Sequence[int] | None) -> None:
        import torch.nn as nn
        cls = type(mod).__name__
        if isinstance(mod, nn.Conv2d) and in_shape is not None:
            self.conv(name, mod, in_shape)
        elif isinstance(mod, nn.Linear) and in_shape is not None:
            self.linear(name, mod, in_shape)
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)) and in_shape is not None and out_shape is not None:
            self.pool(name, in_shape, out_shape, mod.kernel_size, mod.stride, mod.padding)
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and in_shape and out_shape:
            self.pool(name, in_shape, out_shape)
        elif any(isinstance(mod, getattr(nn, c)) for c in _FREE_MODULES):
            pass
        else:
            self.unsupported.append(f"{name} ({cls})")

    def function(self, name: str, fn: str, tensor_args: int, in_shape: Sequence[int] | None,
                 out_shape: Sequence[int] | None, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        if fn in _ADD or fn in _MUL:
            if tensor_args >= 2 and out_shape is not None:
                self.eltwise(name, out_shape)
        elif fn in _POOL_FUNCS and in_shape is not None and out_shape is not None:
            if fn.startswith("adaptive"):
                self.pool(name, in_shape, out_shape)
            else:
                kernel = args[1] if len(args) > 1 else kwargs.get("kernel_size")
                stride = args[2] if len(args) > 2 else kwargs.get("stride")
                pad = args[3] if len(args) > 3 else kwargs.get("padding", 0)
                self.pool(name, in_shape, out_shape, kernel, stride, pad)
        elif fn == "mean" and in_shape is not None and len(in_shape) == 4 and out_shape is not None:
            dims = args[1] if len(args) > 1 else kwargs.get("dim")
            dims = tuple(d % 4 for d in ((dims,) if isinstance(dims, int) else tuple(dims or ())))
            if sorted(dims) == [2, 3]:
                n, c = int(in_shape[0]), int(in_shape[1])
                self.pool(name, in_shape, (n, c, 1, 1))
            else:
                self.unsupported.append(f"{name} (mean over dims {dims})")
        elif fn in _FREE_FUNCS or (fn.startswith("__") and fn.endswith("__")):
            pass
        else:
            self.unsupported.append(f"{name} ({fn})")


def _hw(mod: Any) -> dict[str, Any]:
    hb = mod.hw_bits()

    def get(k: str) -> Any:
        return hb.get(k) if isinstance(hb, Mapping) else getattr(hb, k, None)

    out = {"weight_bits": get("weight_bits"), "act_bits": get("act_bits")}
    if get("channel_weight_bits") is not None:
        out["channel_weight_bits"] = tuple(get("channel_weight_bits"))
    if get("bit_scales"):
        out["bit_scales"] = get("bit_scales")
    return out


def _settle(b: _Builder, prefix: str, bits: Mapping[str, Any] | None, default_bits: tuple[int, int],
            skip_unsupported: bool) -> list[Layer]:
    if b.unsupported:
        msg = f"{b.owner}: unsupported operators: {', '.join(b.unsupported)}"
        if not skip_unsupported:
            raise ValueError(msg + " (pass skip_unsupported to skip them)")
        warnings.warn(msg + " (skipped)", UnsupportedOperatorWarning, stacklevel=3)
    if not b.recs:
        raise ValueError(f"{b.owner}: no conv, linear, pooling or element-wise layer found")
    wb, ab = default_bits
    specs = []
    for r in b.recs:
        d: dict[str, Any] = {"weight_bits": wb, "act_bits": ab}
        if r.hw is not None:
            d.update(_hw(r.hw))
        if bits is not None:
            e = layer_bits_from(bits, prefix + r.name)
            if e is not None:
                d.update(e)
                if "weight_bits" in e and "channel_weight_bits" not in e:
                    d.pop("channel_weight_bits", None)
        specs.append(d)
    mac = [i for i, r in enumerate(b.recs) if r.layer["kind"] in (LayerKind.CONV2D, LayerKind.LINEAR)]
    layers = []
    for i, (r, d) in enumerate(zip(b.recs, specs, strict=True)):
        nxt = next((specs[j]["act_bits"] for j in mac if j > i), 8)
        if r.layer["kind"] in (LayerKind.POOL, LayerKind.ELTWISE):
            given = layer_bits_from(bits, prefix + r.name) if bits is not None else None
            d = {"act_bits": nxt, "out_bits": nxt, **(given or {})}
        d.setdefault("out_bits", nxt)
        try:
            layers.append(Layer(name=prefix + r.name, **r.layer, **d))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{b.owner}: layer {prefix + r.name!r}: {exc}") from None
    return layers


def _shape(meta: Any) -> tuple[int, ...] | None:
    return tuple(int(x) for x in meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _trace_fx(module: Any, example: Any, b: _Builder) -> bool:
    """Fill ``b`` with torch.fx; False when fx cannot trace the module."""
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return hasattr(m, "hw_bits") or super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(module)
    except Exception:  # fx raises many kinds (TraceError, TypeError, ...): fall back to hooks
        return False
    gm = fx.GraphModule(module, graph)
    try:
        ShapeProp(gm).propagate(example)
    except Exception as exc:
        raise ValueError(f"{b.owner}: cannot run the model on the example input of shape "
                         f"{tuple(example.shape)}: {type(exc).__name__}: {exc}") from None

    def meta(n: Any) -> tuple[int, ...] | None:
        return _shape(n.meta.get("tensor_meta")) if isinstance(n, fx.Node) else None

    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        first = node.args[0] if node.args else None
        in_shape, out_shape = meta(first), meta(node)
        if node.op == "call_module":
            b.module(b.name(str(node.target)), gm.get_submodule(node.target), in_shape, out_shape)
        else:
            n_t = sum(1 for a in node.args if isinstance(a, fx.Node) and meta(a) is not None)
            fn = _fname(node.target)
            b.function(b.name(node.name), fn, n_t, in_shape, out_shape, node.args, node.kwargs)
    return True


def _trace_hooks(module: Any, example: Any, b: _Builder) -> None:
    """Fill ``b`` from one forward pass: hooks on leaf modules, a function mode for the ops between."""
    import torch
    from torch.overrides import TorchFunctionMode

    names = {m: n for n, m in module.named_modules()}
    depth = [0]

    def is_leaf(m: Any) -> bool:
        return hasattr(m, "hw_bits") or not any(True for _ in m.children())

    def pre(m: Any, args: Any) -> None:
        depth[0] += 1

    def post(m: Any, args: Any, out: Any) -> None:
        depth[0] -= 1
        x = args[0] if args else None
        b.module(b.name(names[m]), m, _shape(x), _shape(out))

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if depth[0] == 0:
                fn = _fname(func)
                n_t = sum(1 for a in args if isinstance(a, torch.Tensor))
                first = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if fn in _ADD or fn in _MUL or not (fn in _FREE_FUNCS or fn.startswith("__")):
                    b.function(b.name(fn), fn, n_t, _shape(first), _shape(out), args, kwargs)
            return out

    handles = []
    for m in module.modules():
        if is_leaf(m) and m is not module:
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.no_grad(), Mode():
            module(example)
    except Exception as exc:
        raise ValueError(f"{b.owner}: cannot run the model on the example input of shape "
                         f"{tuple(example.shape)}: {type(exc).__name__}: {exc}") from None
    finally:
        for h in handles:
            h.remove()


def _stage_layers(module: Any, example: Any, owner: str, prefix: str, bits: Mapping[str, Any] | None,
                  default_bits: tuple[int, int], skip_unsupported: bool) -> list[Layer]:
    b = _Builder(owner)
    was = module.training
    module.eval()
    try:
        if not _trace_fx(module, example, b):
            b = _Builder(owner)
            _trace_hooks(module, example, b)
    finally:
        module.train(was)
    return _settle(b, prefix, bits, default_bits, skip_unsupported)


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


def from_torch(module: Any, example_input: Any, *, name: str = "model", bits: Mapping[str, Any] | None = None,
               default_bits: tuple[int, int] = (8, 8), skip_unsupported: bool = False) -> Network:
    """Trace ``module`` on ``example_input`` and return its :class:`hwsim.Network` (module docstring)."""
    import torch
    from torch import nn

    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch.module must be a torch.nn.Module, not {module!r}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"from_torch.example_input must be a torch.Tensor, not {example_input!r}")
    owner = f"from_torch[{type(module).__name__}]"
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
