"""Quantized convolution and linear layers that carry their bit spec and report it (``hw_bits``).

A :class:`LayerSpec` says how one layer is quantized: weight width (or one width per output channel),
width of the activations entering it, and the scheme (``dorefa``, ``sym``, ``lsq`` or ``bwa``). ``None``
widths mean full precision. ``sym`` is DoReFa's activations with zero-capable symmetric k-bit weights
(:func:`quant.quantizers.sym_weight`), what pruned layers and 8-bit edge layers use.

``hw_bits()`` reports the width of the *integers* the hardware stores: DoReFa's k-bit weights are the
odd integers ``2c - (2^k - 1)``, k+1 bits in two's complement (a binary layer's +-1: 2 bits); ``sym``
and LSQ weights are k-bit integers (LSQ's 1-bit +-1 again 2). Activation codes are unsigned k-bit. The same layer object holds an FP or a quantized layer, so a quantized model is
built by giving a pretrained FP model new specs (:func:`apply_specs`) and fine-tuning it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .protocol import HWBits, check_bits
from .quantizers import ActQuantizer, BWAQuantizer, LSQQuantizer, WeightQuantizer

__all__ = ["LayerSpec", "SCHEMES", "BWA_ON", "QConv2d", "QLinear", "QLayer", "apply_specs", "qlayers", "FP_HW_BITS"]

SCHEMES = ("dorefa", "lsq", "bwa", "sym")
BWA_ON = ("act", "weight", "both")
FP_HW_BITS = 8
"""Width at which an unquantized (FP) layer is reported to the hardware (the accelerators' maximum)."""


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """How one layer is quantized. ``weight_bits``/``act_bits`` of ``None`` mean full precision."""

    weight_bits: int | None = None
    act_bits: int | None = None
    channel_weight_bits: tuple[int, ...] | None = None
    scheme: str = "dorefa"
    bwa_on: str = "act"
    alpha_frac_bits: int | None = None
    """BWA only: store the bit weights as fixed-point numbers with this many fraction bits (None: float)."""

    def __post_init__(self) -> None:
        if self.weight_bits is not None:
            check_bits("LayerSpec", "weight_bits", self.weight_bits)
        if self.act_bits is not None:
            check_bits("LayerSpec", "act_bits", self.act_bits)
        if self.scheme not in SCHEMES:
            raise ValueError(f"LayerSpec.scheme must be one of {list(SCHEMES)}, not {self.scheme!r}")
        if self.bwa_on not in BWA_ON:
            raise ValueError(f"LayerSpec.bwa_on must be one of {list(BWA_ON)}, not {self.bwa_on!r}")
        if self.channel_weight_bits is not None:
            cwb = tuple(self.channel_weight_bits)
            object.__setattr__(self, "channel_weight_bits", cwb)
            for i, b in enumerate(cwb):
                check_bits("LayerSpec", f"channel_weight_bits[{i}]", b)
            if self.weight_bits != max(cwb, default=None):
                raise ValueError(f"LayerSpec.weight_bits must equal max(channel_weight_bits)="
                                 f"{max(cwb, default=None)}, not {self.weight_bits!r}")
            if self.scheme != "dorefa":
                raise ValueError(f"LayerSpec.scheme must be 'dorefa' with per-channel bits, not {self.scheme!r}")
        if self.scheme == "bwa" and self.bwa_on in ("weight", "both") and self.weight_bits == 1:
            raise ValueError("LayerSpec.weight_bits must be >= 2 for BWA on weights, not 1")
        if self.scheme == "sym" and self.weight_bits == 1:
            raise ValueError("LayerSpec.weight_bits must be >= 2 for symmetric (zero-capable) weights, not 1")
        if self.alpha_frac_bits is not None:
            check_bits("LayerSpec", "alpha_frac_bits", self.alpha_frac_bits, lo=0)
            if self.scheme != "bwa":
                raise ValueError(f"LayerSpec.alpha_frac_bits must be None unless scheme is 'bwa', not "
                                 f"{self.alpha_frac_bits!r}")

    def int_weight_bits(self, bits: int | None = None) -> int:
        """Two's-complement width of this layer's stored weight integers (module docstring)."""
        b = self.weight_bits if bits is None else bits
        if b is None:
            return FP_HW_BITS
        if self.scheme == "dorefa" or (self.scheme == "bwa" and self.bwa_on == "act"):
            return b + 1
        if self.scheme == "lsq":
            return max(b, 2)
        return b  # sym: k-bit; BWA weights: the k-bit code's planes, 0/1 each (see quant.intnet)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["channel_weight_bits"] is not None:
            d["channel_weight_bits"] = list(d["channel_weight_bits"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        d = dict(d)
        if d.get("channel_weight_bits") is not None:
            d["channel_weight_bits"] = tuple(d["channel_weight_bits"])
        return cls(**d)


class _QMixin:
    """Shared by :class:`QConv2d` and :class:`QLinear`: quantizers built from the spec, mask, hw_bits."""

    spec: LayerSpec
    weight: torch.Tensor
    last_input_shape: tuple[int, ...] | None

    def _init_q(self) -> None:
        self.spec = LayerSpec()
        self.act_q: nn.Module | None = None
        self.weight_q: nn.Module | None = None
        self.register_buffer("prune_mask", None)  # type: ignore[attr-defined]
        self.last_input_shape = None

    def set_spec(self, spec: LayerSpec) -> None:
        if not isinstance(spec, LayerSpec):
            raise TypeError(f"{type(self).__name__}.spec must be a LayerSpec, not {spec!r}")
        self.spec = spec
        dev = self.weight.device
        a, w = spec.act_bits, spec.weight_bits
        act_q: nn.Module | None = None
        weight_q: nn.Module | None = None
        if spec.scheme == "lsq":
            act_q = LSQQuantizer(a, signed=False) if a is not None else None
            weight_q = LSQQuantizer(w, signed=True) if w is not None else None
        else:
            bwa_a = spec.scheme == "bwa" and spec.bwa_on in ("act", "both")
            bwa_w = spec.scheme == "bwa" and spec.bwa_on in ("weight", "both")
            if a is not None:
                act_q = BWAQuantizer(a, frac_bits=spec.alpha_frac_bits) if bwa_a else ActQuantizer(a)
            if w is not None:
                weight_q = (BWAQuantizer(w, weight=True, frac_bits=spec.alpha_frac_bits) if bwa_w
                            else WeightQuantizer(w, spec.channel_weight_bits, symmetric=spec.scheme == "sym"))
        self.act_q = act_q.to(dev) if act_q is not None else None
        self.weight_q = weight_q.to(dev) if weight_q is not None else None

    def set_prune_mask(self, mask: torch.Tensor | None) -> None:
        if mask is not None and mask.shape != self.weight.shape:
            raise ValueError(f"{type(self).__name__}.prune_mask must have shape {tuple(self.weight.shape)}, "
                             f"not {tuple(mask.shape)}")
        self.prune_mask = None if mask is None else mask.to(self.weight.device, torch.float32)

    def q_weight(self) -> torch.Tensor:
        w = self.weight if self.prune_mask is None else self.weight * self.prune_mask
        w = self.weight_q(w) if self.weight_q is not None else w
        return w if self.prune_mask is None else w * self.prune_mask

    def q_input(self, x: torch.Tensor) -> torch.Tensor:
        self.last_input_shape = tuple(x.shape)
        return self.act_q(x) if self.act_q is not None else x

    @property
    def density(self) -> float:
        """Fraction of weights kept by magnitude pruning (1.0 when unpruned)."""
        return 1.0 if self.prune_mask is None else float(self.prune_mask.mean())

    def hw_bits(self) -> HWBits:
        """The protocol of :mod:`quant.protocol`: this layer's precision as the hardware runs it (integer
        widths, see the module docstring; density of the pruning mask)."""
        s = self.spec
        w = s.int_weight_bits()
        a = s.act_bits if s.act_bits is not None else FP_HW_BITS
        cwb = None if s.channel_weight_bits is None else tuple(s.int_weight_bits(b) for b in s.channel_weight_bits)
        scales = 0
        if s.scheme == "bwa":
            wb = s.weight_bits if s.weight_bits is not None else FP_HW_BITS
            scales = {"act": a if s.act_bits else 0, "weight": wb if s.weight_bits else 0,
                      "both": (a if s.act_bits else 1) * (wb if s.weight_bits else 1)}[s.bwa_on]
        return HWBits(w, a, cwb, scales, s.weight_bits is None and s.act_bits is None, self.density)


class QConv2d(_QMixin, nn.Conv2d):
    """``nn.Conv2d`` whose input activations and weights are quantized as its :class:`LayerSpec` says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_q()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.q_input(x), self.q_weight(), self.bias)


class QLinear(_QMixin, nn.Linear):
    """``nn.Linear`` whose input activations and weights are quantized as its :class:`LayerSpec` says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_q()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.q_input(x), self.q_weight(), self.bias)


QLayer = QConv2d | QLinear


def qlayers(model: nn.Module) -> list[QConv2d | QLinear]:
    """The quantizable layers of ``model`` in definition (= execution, for our models) order."""
    return [m for m in model.modules() if isinstance(m, QConv2d | QLinear)]


def apply_specs(model: nn.Module, specs: list[LayerSpec] | tuple[LayerSpec, ...]) -> nn.Module:
    """Give each quantizable layer of ``model`` its spec (one per layer, in order); returns ``model``."""
    layers = qlayers(model)
    specs = list(specs)
    if len(specs) != len(layers):
        raise ValueError(f"apply_specs.specs must have one entry per quantizable layer ({len(layers)}), "
                         f"not {len(specs)}")
    for la, s in zip(layers, specs, strict=True):
        la.set_spec(s)
    return model
