"""Quantizer modules: uniform (DoReFa), binary, LSQ, and bit-weight adjustment (BWA).

Every quantizer maps a float tensor to the float values that the integer codes stand for, with a
straight-through estimator (STE) for rounding and sign. ``*_codes`` functions return the integer codes
themselves (what the hardware stores or streams), and a test checks that decoding them gives back the
quantized values exactly.

Conventions (docs/methods.md):
* activations are clipped to [0, 1] and quantized to ``Q_k(a) = round((2^k-1) a) / (2^k-1)``;
* weights, k >= 2 (DoReFa): ``2 Q_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1``;
* weights, k = 1: ``sign(w) * mean|w|`` per output channel (XNOR-Net's per-filter scale; sign(0) = +1);
* per-channel widths in one layer (class-based quantization) use one convention for every width:
  ``2 Q_k(u) - 1`` on the layer's tanh normalisation, so a 1-bit channel is ``+-1`` like the
  extreme levels of its multi-bit neighbours (no per-filter mean|w| beside [-1, 1] channels);
* zero-capable symmetric weights (``sym_weight``): ``round(m t) / m`` with ``t = tanh(w) / max|tanh w|``
  and ``m = 2^(k-1) - 1``: k-bit two's-complement integers in ``[-m, m]`` that include 0, so a pruned
  weight is a stored code. DoReFa's ``2c - (2^k - 1)`` integers are odd and need k+1 bits.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .protocol import check_bits

__all__ = [
    "round_ste", "sign_ste", "quantize_unit", "act_codes", "dorefa_act", "weight_codes", "dorefa_weight",
    "binary_weight", "sym_weight", "sym_codes", "fixed_point", "ActQuantizer", "WeightQuantizer", "LSQQuantizer", "BWAQuantizer", "bit_planes",
]

class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return g

class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)  # hard-tanh STE (BinaryConnect)

def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward."""
    return _RoundSTE.apply(x)

def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` (with sign(0) = +1) forward, ``1[|x| <= 1]`` backward."""
    return _SignSTE.apply(x)

def _levels(bits: int | torch.Tensor) -> int | torch.Tensor:
    if isinstance(bits, torch.Tensor):
        return torch.pow(2.0, bits.to(torch.float32)) - 1.0
    return (1 << bits) - 1

def quantize_unit(x: torch.Tensor, bits: int | torch.Tensor) -> torch.Tensor:
    """``Q_k(x) = round((2^k-1) x) / (2^k-1)`` for x in [0, 1]; ``bits`` may be a broadcastable tensor."""
    n = _levels(bits)
    return round_ste(x * n) / n

def act_codes(a: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integer codes in ``[0, 2^k-1]`` of ``dorefa_act(a, bits)`` (int64)."""
    check_bits("act_codes", "bits", bits)
    return torch.round(torch.clamp(a, 0, 1) * _levels(bits)).to(torch.int64)

def dorefa_act(a: torch.Tensor, bits: int) -> torch.Tensor:
    """``Q_k(clip(a, 0, 1))``; the clip passes gradients inside [0, 1] only."""
    return quantize_unit(torch.clamp(a, 0, 1), bits)

def _unit_weight(w: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(w)
    return t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5

def binary_weight(w: torch.Tensor) -> torch.Tensor:
    """``sign(w) * mean|w|`` with one scale per output channel (dim 0)."""
    scale = w.detach().abs().flatten(1).mean(1).view(-1, *([1] * (w.dim() - 1)))
    return sign_ste(w) * scale

def _sym_levels(owner: str, bits: int) -> int:
    check_bits(owner, "bits", bits, lo=2)
    return (1 << (bits - 1)) - 1


def sym_codes(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed integer codes in ``[-(2^(k-1)-1), 2^(k-1)-1]`` of :func:`sym_weight` (int64; 0 included)."""
    m = _sym_levels("sym_codes", bits)
    t = torch.tanh(w)
    return torch.round(t / t.abs().max().clamp_min(1e-12) * m).to(torch.int64)


def sym_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Zero-capable symmetric weights ``round(m t) / m`` (module docstring); STE for the rounding."""
    m = _sym_levels("sym_weight", bits)
    t = torch.tanh(w)
    return round_ste(t / t.abs().max().clamp_min(1e-12) * m) / m


def fixed_point(x: torch.Tensor, frac_bits: int | None) -> torch.Tensor:
    """``round(x 2^f) / 2^f`` with an STE (``None``: ``x`` unchanged): BWA's fixed-point bit weights."""
    if frac_bits is None:
        return x
    check_bits("fixed_point", "frac_bits", frac_bits, lo=0)
    return round_ste(x * (1 << frac_bits)) / (1 << frac_bits)


def weight_codes(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes of ``dorefa_weight(w, bits)``: offset binary in ``[0, 2^k-1]`` (k=1: 0 = -, 1 = +)."""
    check_bits("weight_codes", "bits", bits)
    if bits == 1:
        return (w >= 0).to(torch.int64)
    return torch.round(_unit_weight(w) * _levels(bits)).to(torch.int64)

def dorefa_weight(w: torch.Tensor, bits: int | tuple[int, ...]) -> torch.Tensor:
    """DoReFa weights; ``bits`` may give one width per output channel (mixed 1-bit channels allowed)."""
    if isinstance(bits, int):
        if bits == 1:
            return binary_weight(w)
        return 2 * quantize_unit(_unit_weight(w), bits) - 1
    shape = (-1,) + (1,) * (w.dim() - 1)
    b = torch.tensor(bits, dtype=torch.float32, device=w.device).view(shape)
    return 2 * quantize_unit(_unit_weight(w), b) - 1  # one convention for every width (1 bit: +-1)

def bit_planes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """``codes`` (int64, >= 0) split into ``bits`` {0,1} float planes on a new last axis, LSB first."""
    shifts = torch.arange(bits, device=codes.device)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(torch.float32)

class ActQuantizer(nn.Module):
    """DoReFa activation quantizer ``Q_k(clip(a, 0, 1))``."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits("ActQuantizer", "bits", bits)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return dorefa_act(a, self.bits)

class WeightQuantizer(nn.Module):
    """DoReFa weight quantizer (k = 1: binary with per-filter scale); optional per-channel widths;
    ``symmetric=True``: the zero-capable k-bit :func:`sym_weight` instead."""

    def __init__(self, bits: int, channel_bits: tuple[int, ...] | None = None, symmetric: bool = False) -> None:
        super().__init__()
        self.bits = check_bits("WeightQuantizer", "bits", bits, lo=2 if symmetric else 1)
        self.channel_bits = channel_bits
        self.symmetric = bool(symmetric)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return sym_weight(w, self.bits)
        if self.channel_bits is not None:
            return dorefa_weight(w, self.channel_bits)
        return dorefa_weight(w, self.bits)

class _GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g * ctx.scale, None

class LSQQuantizer(nn.Module):
    """Learned step size quantization (Esser et al., ICLR 2020).

    ``v_hat = round(clip(v/s, -Q_N, Q_P)) * s``; signed: Q_N = 2^(b-1), Q_P = 2^(b-1)-1; unsigned: Q_N = 0,
    Q_P = 2^b-1. ``s`` is initialised on the first training batch to ``2 mean|v| / sqrt(Q_P)`` and its
    gradient scaled by ``1/sqrt(N Q_P)``. Signed 1-bit is taken as {-1, 0} * s -> we use Q_N = Q_P = 1
    ({-s, 0, s} would need 2 bits), i.e. a binary quantizer ``sign(v) * s``.
    """

    initialized: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, bits: int, signed: bool) -> None:
        super().__init__()
        self.bits = check_bits("LSQQuantizer", "bits", bits)
        self.signed = bool(signed)
        if signed:
            self.qn, self.qp = (1 << (bits - 1), (1 << (bits - 1)) - 1) if bits > 1 else (1, 1)
        else:
            self.qn, self.qp = 0, (1 << bits) - 1
        self.step = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            with torch.no_grad():
                self.step.copy_(2 * v.detach().abs().mean() / math.sqrt(self.qp) + 1e-8)
                self.initialized.fill_(True)
        g = 1.0 / math.sqrt(v.numel() * self.qp)
        s = _GradScale.apply(self.step, g).abs() + 1e-8
        if self.signed and self.bits == 1:
            return sign_ste(v / s) * s
        return round_ste(torch.clamp(v / s, -self.qn, self.qp)) * s

class BWAQuantizer(nn.Module):
    """Bit-weight adjustment: uniform b-bit codes, reconstructed with trainable per-bit scales.

    The code ``c = sum_i beta_i 2^i`` is the uniform DoReFa code (activations: of clip(a, 0, 1); weights:
    offset binary of the tanh-normalised weight), so the hardware stores and streams plain b-bit
    integers. Reconstruction replaces 2^i by ``alpha_i``: ``a_hat = sum_i alpha_i beta_i / (2^b-1)``
    (weights: ``2 a_hat - 1``). ``alpha_i`` starts at 2^i, where the result equals the uniform quantizer
    bit for bit. Gradients: d/d alpha_i = beta_i / (2^b-1) exactly; the input gets the uniform STE.
    ``frac_bits=f`` stores each alpha_i as a fixed-point number ``A_i / 2^f`` (integer A_i, rounded with
    an STE in every forward pass): the hardware then applies it with an integer multiply and a shift.
    """

    def __init__(self, bits: int, weight: bool = False, frac_bits: int | None = None) -> None:
        super().__init__()
        self.bits = check_bits("BWAQuantizer", "bits", bits)
        if weight and bits == 1:
            raise ValueError("BWAQuantizer.bits must be >= 2 for weights (1-bit weights are binary), not 1")
        if frac_bits is not None:
            check_bits("BWAQuantizer", "frac_bits", frac_bits, lo=0)
        self.weight = bool(weight)
        self.frac_bits = frac_bits
        self.alpha = nn.Parameter(torch.pow(2.0, torch.arange(bits, dtype=torch.float32)))

    def alpha_value(self) -> torch.Tensor:
        """The bit weights as the forward pass uses them (fixed point when ``frac_bits`` is set)."""
        return fixed_point(self.alpha, self.frac_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = (1 << self.bits) - 1
        u = _unit_weight(x) if self.weight else torch.clamp(x, 0, 1)
        codes = torch.round(u.detach() * n).to(torch.int64)
        planes = bit_planes(codes, self.bits)
        q = (planes * self.alpha_value()).sum(-1) / n
        q = q + (u - u.detach())  # STE for the input; adds an exact zero in the forward pass
        return 2 * q - 1 if self.weight else q
