"""Export a trained model to the ``hwsim.Network`` IR, and save / load ``MODEL.pt`` files.

``export(model, example_input)`` runs one sample through the model to learn every quantized layer's
input shape, then writes one IR layer per quantized conv / linear layer (``QConv2d`` / ``QLinear``) in
execution order, with the widths of its ``hw_bits()`` (per-output-channel weight widths and BWA's
per-bit-plane scales included). Unquantized layers are written at 8 bits (``FP_HW_BITS``). A layer's
``out_bits`` is the input width of the next layer (8 after the last). Pooling, batch norm (folded into
the next scale) and residual adds are not written: the IR carries the MAC layers. A
:class:`~quant.cmn.CascadeNet` becomes a two-stage cascade whose first stage carries the rule, the
threshold and the measured exit rate.

A ``MODEL.pt`` file is a dict (loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "hwsim.quant/1", "config": model.config() + specs, "state_dict": ...,
     "network": hwsim.io.network_to_dict(export(...)), "meta": {...}}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

import hwsim
from hwsim.io import network_from_dict, network_to_dict

from .cmn import CascadeNet
from .layers import LayerSpec, QConv2d, QLinear, apply_specs, qlayers
from .models import QNet, build_model

__all__ = ["export", "save_model", "load_model", "load_network", "FORMAT"]

FORMAT = "hwsim.quant/1"


class _LayerCommon(TypedDict):
    """The :class:`hwsim.Layer` fields that convolutions and linear layers export alike."""

    name: str
    weight_bits: int
    act_bits: int
    out_bits: int
    channel_weight_bits: tuple[int, ...] | None
    bit_scales: int


def _layers(model: nn.Module, x: torch.Tensor, prefix: str) -> list[hwsim.Layer]:
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        model(x[:1].to(dev))
    model.train(was)
    ql = qlayers(model)
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for k, la in enumerate(ql):
        hb = la.hw_bits()
        nxt = ql[k + 1].hw_bits().act_bits if k + 1 < len(ql) else 8
        if la.last_input_shape is None:
            raise ValueError(f"export.model layer {names[id(la)]!r} must run on the example input, but it did not")
        name = f"{prefix}{names[id(la)]}"
        common: _LayerCommon = {"name": name, "weight_bits": hb.weight_bits, "act_bits": hb.act_bits, "out_bits": nxt,
                  "channel_weight_bits": hb.channel_weight_bits, "bit_scales": hb.bit_scales}
        if isinstance(la, QConv2d):
            _, c, h, w = la.last_input_shape
            if isinstance(la.padding, str):
                raise ValueError(f"export.model layer {names[id(la)]!r} padding must be explicit integers, "
                                 f"not {la.padding!r}")
            out.append(hwsim.Layer(kind=hwsim.LayerKind.CONV2D, in_channels=c, out_channels=la.out_channels,
                                   in_h=h, in_w=w, kernel_h=la.kernel_size[0], kernel_w=la.kernel_size[1],
                                   stride_h=la.stride[0], stride_w=la.stride[1], pad_h=la.padding[0],
                                   pad_w=la.padding[1], groups=la.groups, **common))
        else:
            assert isinstance(la, QLinear)
            out.append(hwsim.Layer(kind=hwsim.LayerKind.LINEAR, in_channels=la.in_features,
                                   out_channels=la.out_features, **common))
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
    torch.save({"format": FORMAT, "config": _full_config(model), "state_dict": state,
                "network": network_to_dict(net), "meta": dict(meta or {})}, p)
    return net


def _read(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"load_network.path must be an existing MODEL.pt file, not {str(path)!r}")
    d = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"load_network.path must be a {FORMAT} model file, not {str(path)!r}")
    return d


def _build(cfg: dict[str, Any]) -> nn.Module:
    if cfg.get("arch") == "cascade":
        return CascadeNet([_build(s) for s in cfg["stages"]], cfg["rule"], cfg["threshold"], cfg["exit_rate"])
    m = build_model(cfg)
    apply_specs(m, [LayerSpec.from_dict(s) for s in cfg["specs"]])
    return m


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the trained model saved by :func:`save_model` (eval mode, CPU)."""
    d = _read(path)
    m = _build(d["config"])
    for la in qlayers(m):  # masks are buffers that exist only when pruned
        key = [n for n, mm in m.named_modules() if mm is la][0] + ".prune_mask"
        if key in d["state_dict"]:
            la.set_prune_mask(d["state_dict"][key])
    m.load_state_dict(d["state_dict"])
    return m.eval()


def load_network(path: str | Path) -> hwsim.Network:
    """The ``hwsim.Network`` stored in a ``MODEL.pt`` written by :func:`save_model` (no torch model built)."""
    d = _read(path)
    return network_from_dict(d["network"], source=str(path))
