"""Export a trained model to the ``hwsim.Network`` IR, and save / load ``MODEL.pt`` files.

``export(model, example_input)`` traces the model with ``torch.fx`` on one sample and writes, in
execution order, one IR layer per quantized conv / linear layer (``QConv2d`` / ``QLinear``) with the
widths of its ``hw_bits()`` (the integer widths; per-output-channel weight widths, BWA's per-bit-plane
scales and the pruning density as ``weight_density`` included), one ``pool`` layer per global average
(``x.mean((2, 3))``) and one ``eltwise`` layer per tensor + tensor (residual add), exactly as
``mapping.frontends.from_torch`` names and shapes them. Unquantized layers are written at 8 bits
(``FP_HW_BITS``). ``out_bits`` follows the front end's one rule: the widest ``act_bits`` of the
quantized layers that read the output through free and vector ops (8 for the network output); a
pooling / element-wise layer reads at the width its inputs are stored at. Batch norm, clips, flatten, slicing and padding
are free. A :class:`~quant.cmn.CascadeNet` becomes a two-stage cascade whose first stage carries the
rule, the threshold and the measured exit rate.

A ``MODEL.pt`` file is a dict (loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "hwsim.quant/1", "config": model.config() + specs, "state_dict": ...,
     "network": hwsim.io.network_to_dict(export(...)), "integers": {"stages": [[layer, ...], ...]},
     "meta": {...}}

``integers`` is :func:`quant.intnet.model_integers` per stage: the integer weights, activation-code
widths and scales that ``hwsim verify`` runs through ``hwsim.golden``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

import hwsim
from hwsim.io import network_from_dict, network_to_dict

from .cmn import CascadeNet
from .intnet import model_integers
from .layers import LayerSpec, QConv2d, QLinear, apply_specs, qlayers
from .models import QNet, build_model

__all__ = ["export", "save_model", "load_model", "load_network", "load_trained", "TrainedModel", "FORMAT"]

FORMAT = "hwsim.quant/1"


class _LayerCommon(TypedDict):
    """The :class:`hwsim.Layer` fields that convolutions and linear layers export alike."""

    name: str
    weight_bits: int
    act_bits: int
    out_bits: int
    channel_weight_bits: tuple[int, ...] | None
    bit_scales: int
    weight_density: float
    batch: int


_ADD = {"add", "__add__", "__radd__", "add_", "__iadd__", "iadd"}
_MUL = {"mul", "__mul__", "__rmul__", "mul_", "__imul__", "imul"}


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, QConv2d | QLinear) or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, Any, tuple[int, ...], dict[str, int]]]:
    """``[(kind, name, module, in_shape, widths), ...]`` of the MAC, pooling and element-wise ops in execution
    order (torch.fx; shapes from running the traced graph on ``x``). ``widths`` holds ``out_bits`` (the
    width the output is stored at: the widest ``act_bits`` of the quantized layers that read it through
    free and vector ops, else 8) and, for pooling / element-wise ops, ``act_bits`` (the widest storage
    width of their inputs), the rule of ``mapping.frontends``' graph normaliser."""
    from torch.fx.passes.shape_prop import ShapeProp

    gm = torch.fx.GraphModule(model, _Tracer().trace(model))
    ShapeProp(gm).propagate(x)

    def shape(n: Any) -> tuple[int, ...] | None:
        meta = n.meta.get("tensor_meta") if isinstance(n, torch.fx.Node) else None
        return tuple(int(v) for v in meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def qmod(n: torch.fx.Node) -> Any:
        m = gm.get_submodule(str(n.target)) if n.op == "call_module" else None
        return m if isinstance(m, QConv2d | QLinear) else None

    stored: dict[torch.fx.Node, int | None] = {}

    def demand(n: torch.fx.Node) -> int | None:
        if n in stored:
            return stored[n]
        stored[n] = None  # guards against cycles
        got = []
        for u in n.users:
            q = qmod(u)
            if q is not None:
                got.append(q.hw_bits().act_bits)
            elif u.op != "output":
                d = demand(u)
                if d is not None:
                    got.append(d)
        stored[n] = max(got) if got else None
        return stored[n]

    for node in reversed(list(gm.graph.nodes)):  # from the back: shallow recursion
        demand(node)
    ops: list[tuple[str, str, Any, tuple[int, ...], dict[str, int]]] = []
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        first = node.args[0] if node.args else None
        ins, outs = shape(first), shape(node)
        out_bits = demand(node) or 8
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            if isinstance(mod, QConv2d | QLinear) and ins is not None and outs is not None:
                ops.append(("mac", str(node.target), mod, ins, {"out_bits": out_bits}))
            elif isinstance(mod, nn.Conv2d | nn.Linear):
                raise ValueError(f"export.model layer {node.target!r} must be a QConv2d/QLinear, not "
                                 f"{type(mod).__name__}")
            continue
        fn = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        tensors = [a for a in node.args if shape(a) is not None]
        reads = [d for d in (demand(a) for a in tensors) if d is not None]
        widths = {"out_bits": out_bits, "act_bits": max(reads) if reads else out_bits}
        if (fn in _ADD or fn in _MUL) and len(tensors) >= 2 and outs is not None:
            ops.append(("eltwise", node.name, None, outs, widths))
        elif fn == "mean" and ins is not None and len(ins) == 4 and outs is not None:
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            dims = tuple(d % 4 for d in ((dims,) if isinstance(dims, int) else tuple(dims or ())))
            if sorted(dims) != [2, 3]:
                raise ValueError(f"export.model op {node.name!r} must average over H and W, not dims {dims}")
            ops.append(("pool", node.name, None, ins, widths))
    return ops


def _layers(model: nn.Module, x: torch.Tensor, prefix: str) -> list[hwsim.Layer]:
    """IR layers of a plain model: one per quantized conv / linear, pooling and element-wise op."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        with torch.no_grad():
            ops = _trace(model, x[:1].to(dev))
    finally:
        model.train(was)
    hbs = {id(op[2]): op[2].hw_bits() for op in ops if op[0] == "mac"}
    out = []
    for kind, name, la, ins, widths in ops:
        nxt = widths["out_bits"]
        full = f"{prefix}{name}"
        if kind == "pool":
            n, c, h, w = ins
            out.append(hwsim.Layer(name=full, kind=hwsim.LayerKind.POOL, in_channels=c, out_channels=c, in_h=h,
                                   in_w=w, kernel_h=h, kernel_w=w, stride_h=h, stride_w=w, batch=n,
                                   act_bits=widths["act_bits"], out_bits=nxt))
            continue
        if kind == "eltwise":
            n, c, h, w = ins if len(ins) == 4 else (math.prod(ins[:-1]), ins[-1], 1, 1)
            out.append(hwsim.Layer(name=full, kind=hwsim.LayerKind.ELTWISE, in_channels=c, out_channels=c,
                                   in_h=h, in_w=w, batch=n, act_bits=widths["act_bits"], out_bits=nxt))
            continue
        hb = hbs[id(la)]
        batch = ins[0] if isinstance(la, QConv2d) else math.prod(ins[:-1])
        common: _LayerCommon = {"name": full, "weight_bits": hb.weight_bits, "act_bits": hb.act_bits,
                                "out_bits": nxt, "channel_weight_bits": hb.channel_weight_bits,
                                "bit_scales": hb.bit_scales, "weight_density": hb.weight_density, "batch": batch}
        if isinstance(la, QConv2d):
            _, c, h, w = ins
            if isinstance(la.padding, str):
                raise ValueError(f"export.model layer {name!r} padding must be explicit integers, "
                                 f"not {la.padding!r}")
            out.append(hwsim.Layer(kind=hwsim.LayerKind.CONV2D, in_channels=c, out_channels=la.out_channels,
                                   in_h=h, in_w=w, kernel_h=la.kernel_size[0], kernel_w=la.kernel_size[1],
                                   stride_h=la.stride[0], stride_w=la.stride[1], pad_h=la.padding[0],
                                   pad_w=la.padding[1], groups=la.groups, **common))
        else:
            out.append(hwsim.Layer(kind=hwsim.LayerKind.LINEAR, in_channels=la.in_features,
                                   out_channels=la.out_features, **common))
    if not any(o[0] == "mac" for o in ops):
        raise ValueError(f"export.model must contain QConv2d/QLinear layers, not {type(model).__name__}")
    return out


def export(model: nn.Module, example_input: torch.Tensor, name: str = "model") -> hwsim.Network:
    """The model as a ``hwsim.Network`` (see the module docstring)."""
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise TypeError(f"export.example_input must be a batched tensor, not {example_input!r}")
    if isinstance(model, CascadeNet):
        s1, s2 = model.stages
        rule = model.rule
        thr = model.threshold if math.isfinite(model.threshold) else None
        stages = (hwsim.Stage("stage1", tuple(_layers(s1, example_input, "s1.")), exit_rate=model.exit_rate,
                              exit_rule=rule, threshold=thr),
                  hwsim.Stage("stage2", tuple(_layers(s2, example_input, "s2."))))
        return hwsim.Network(name, stages)
    if not qlayers(model):
        raise ValueError(f"export.model must contain QConv2d/QLinear layers, not {type(model).__name__}")
    return hwsim.Network.single(name, _layers(model, example_input, ""))


def _full_config(model: nn.Module) -> dict[str, Any]:
    if isinstance(model, CascadeNet):
        cfg = model.config()
        cfg["stages"] = [_full_config(s) for s in model.stages]
        return cfg
    if not isinstance(model, QNet):
        raise TypeError(f"save_model.model must be a quant model (QNet or CascadeNet), not {type(model).__name__}")
    cfg = model.config()
    cfg["specs"] = [la.spec.to_dict() for la in qlayers(model)]
    return cfg


def save_model(path: str | Path, model: nn.Module, example_input: torch.Tensor, name: str = "model",
               meta: dict[str, Any] | None = None) -> hwsim.Network:
    """Write ``MODEL.pt`` (weights, rebuild config, exported network); returns the network."""
    net = export(model, example_input, name)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    stages = list(model.stages) if isinstance(model, CascadeNet) else [model]
    was = model.training
    model.cpu().eval()
    ints = {"stages": [model_integers(st) for st in stages]}
    model.train(was)
    torch.save({"format": FORMAT, "config": _full_config(model), "state_dict": state,
                "network": network_to_dict(net), "integers": ints, "meta": dict(meta or {})}, p)
    return net


def _read(path: str | Path, owner: str = "load_network") -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{owner}.path must be an existing MODEL.pt file, not {str(path)!r}")
    try:  # weights_only: plain tensors and containers, never code
        d = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- any unreadable file is the same user error
        d = None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"{owner}.path must be a {FORMAT} model file written by `hwsim train`, not {str(path)!r}")
    return d


def _build(cfg: dict[str, Any]) -> nn.Module:
    if cfg.get("arch") == "cascade":
        return CascadeNet([_build(s) for s in cfg["stages"]], cfg["rule"], cfg["threshold"], cfg["exit_rate"])
    m = build_model(cfg)
    apply_specs(m, [LayerSpec.from_dict(s) for s in cfg["specs"]])
    return m


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the trained model saved by :func:`save_model` (eval mode, CPU)."""
    return _model_from(_read(path))


def _model_from(d: dict[str, Any]) -> nn.Module:
    m = _build(d["config"])
    for la in qlayers(m):  # masks are buffers that exist only when pruned
        key = [n for n, mm in m.named_modules() if mm is la][0] + ".prune_mask"
        if key in d["state_dict"]:
            la.set_prune_mask(d["state_dict"][key])
    m.load_state_dict(d["state_dict"])
    return m.eval()


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """Everything a ``MODEL.pt`` holds, read from the file once (what ``hwsim verify`` and ``hwsim rtl run``
    check): the rebuilt ``model``, its exported integers per cascade stage (``stages``), its ``meta`` and its
    ``network``."""

    path: str
    model: nn.Module
    stages: list[list[dict[str, Any]]]
    meta: dict[str, Any]
    network: hwsim.Network


def load_trained(path: str | Path) -> TrainedModel:
    """Read a ``MODEL.pt`` written by :func:`save_model` with its exported integers (one ``torch.load``)."""
    d = _read(path, "verify")
    ints = d.get("integers")
    if not isinstance(ints, dict) or not isinstance(ints.get("stages"), list):
        raise ValueError(f"verify.path must be a model file with exported integers (written by this version "
                         f"of `hwsim train`), not {str(path)!r}")
    try:
        model = _model_from(d)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"verify.path must hold a model that rebuilds from its config, not {str(path)!r} "
                         f"({type(exc).__name__})") from None
    return TrainedModel(str(path), model, ints["stages"], dict(d.get("meta", {})),
                        network_from_dict(d["network"], source=str(path)))


def load_network(path: str | Path) -> hwsim.Network:
    """The ``hwsim.Network`` stored in a ``MODEL.pt`` written by :func:`save_model` (no torch model built)."""
    d = _read(path)
    return network_from_dict(d["network"], source=str(path))
