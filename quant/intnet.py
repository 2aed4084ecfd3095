"""The trained model as integers, and the check that those integers *are* the model.

:func:`layer_integers` turns one quantized layer into what the hardware holds: signed integer weights
(two's complement, ``hw_bits().weight_bits`` wide), the unsigned activation codes it streams
(``act_bits`` wide) and the float scales that turn an integer accumulator back into the layer's output.
A layer's output is a sum of *terms*, each one integer dot product::

    y[o] = sum_t coef_t[o] * acc_t[o] + bias[o],   acc_t = W_t (integers) . A_t (integers)

where ``A_t`` is the activation code, or one bit plane of it (BWA on activations weighs plane i by
alpha_i), and ``W_t`` the weight integers, or one 0/1 bit plane of the weight code (BWA on weights).
Plain layers have one term: DoReFa ``W = 2c - (2^k - 1)`` with ``coef = 1 / ((2^k - 1) n_a)``; binary
``W = +-1`` with ``coef = mean|w| / n_a`` per filter; symmetric ``W = round(m t)``, ``coef = 1 / (m n_a)``;
LSQ ``W = round(clip(w / s_w))`` with ``coef = s_w s_a``. Pruned weights are the integer 0.

:func:`verify` runs the model with every quantized layer replaced by its integer form computed with
:mod:`hwsim.golden` (the oracle of the RTL), everything between those layers (batch norm, clip,
pooling, residual adds) by the model's own modules, and compares the predictions on every sample with
the model's own (its quantizers on its weights and inputs, dot products accumulated in float64, so that
float32 summation order cannot move an activation across a rounding boundary; the agreement with the
plain float32 forward is reported beside it). A layer's accumulators are *exact* when the integers fit their declared widths,
no accumulator leaves the accelerator's ``acc_bits`` (wrapping changes nothing), a few outputs per
layer recomputed bit by bit with :func:`hwsim.golden.bit_serial_dot` agree, and the dequantized
accumulators equal the float layer output to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hwsim import golden

from .layers import QConv2d, QLinear, qlayers
from .quantizers import ActQuantizer, BWAQuantizer, LSQQuantizer, WeightQuantizer

__all__ = ["layer_integers", "model_integers", "verify", "VerifyResult", "LayerCheck", "MacBackend"]


def _unit(w: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(w)
    return t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5


def _act(la: QConv2d | QLinear) -> dict[str, Any] | None:
    q = la.act_q
    if q is None:
        return None
    if isinstance(q, LSQQuantizer):
        s = float((q.step.detach().abs() + 1e-8).item())
        return {"kind": "lsq", "bits": q.bits, "step": s, "qmax": q.qp, "alpha": None}
    assert isinstance(q, BWAQuantizer | ActQuantizer)
    alpha = q.alpha_value().detach().double() if isinstance(q, BWAQuantizer) else None
    return {"kind": "unit", "bits": q.bits, "qmax": (1 << q.bits) - 1, "alpha": alpha}


def _weight_terms(la: QConv2d | QLinear) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """``[(integer weights, coef per filter), ...]`` with ``w_q = sum_t W_t * coef_t`` (activations aside)."""
    q = la.weight_q
    if q is None:
        return None
    mask = la.prune_mask
    w = (la.weight if mask is None else la.weight * mask).detach()
    m = torch.ones_like(w, dtype=torch.int64) if mask is None else mask.detach().round().to(torch.int64)
    oc = w.shape[0]
    shape = (-1,) + (1,) * (w.dim() - 1)
    if isinstance(q, LSQQuantizer):
        s = q.step.detach().abs() + 1e-8
        v = w / s
        ints = torch.where(v >= 0, 1, -1) if q.bits == 1 else torch.round(torch.clamp(v, -q.qn, q.qp))
        return [(ints.to(torch.int64) * m, torch.full((oc,), float(s), dtype=torch.float64))]
    if isinstance(q, BWAQuantizer):  # w_hat = 2 sum_k alpha_k gamma_k / n - 1
        n = (1 << q.bits) - 1
        codes = torch.round(_unit(w) * n).to(torch.int64)
        alpha = q.alpha_value().detach().double()
        terms = [(((codes >> k) & 1) * m, torch.full((oc,), 2 * float(alpha[k]) / n, dtype=torch.float64))
                 for k in range(q.bits)]
        return terms + [(-m, torch.ones(oc, dtype=torch.float64))]
    assert isinstance(q, WeightQuantizer)
    if q.symmetric:
        lv = (1 << (q.bits - 1)) - 1
        t = torch.tanh(w)
        ints = torch.round(t / t.abs().max().clamp_min(1e-12) * lv).to(torch.int64)
        return [(ints * m, torch.full((oc,), 1.0 / lv, dtype=torch.float64))]
    if q.channel_bits is None and q.bits == 1:
        scale = w.abs().flatten(1).mean(1).double()
        return [(torch.where(w >= 0, 1, -1).to(torch.int64) * m, scale)]
    bits = torch.tensor(q.channel_bits if q.channel_bits is not None else (q.bits,) * oc, dtype=torch.int64)
    levels = (torch.pow(2, bits) - 1).view(shape)
    codes = torch.round(_unit(w) * levels.to(w.dtype)).to(torch.int64)
    return [((2 * codes - levels) * m, 1.0 / (torch.pow(2.0, bits.double()) - 1.0))]


def layer_integers(la: QConv2d | QLinear, name: str) -> dict[str, Any]:
    """One layer's integer form (module docstring), as plain tensors / numbers (``torch.save``-able)."""
    hb = la.hw_bits()
    rec: dict[str, Any] = {"name": name, "kind": "conv2d" if isinstance(la, QConv2d) else "linear",
                           "weight_bits": hb.weight_bits, "act_bits": hb.act_bits,
                           "bias": None if la.bias is None else la.bias.detach().double().clone()}
    if isinstance(la, QConv2d):
        rec.update(stride=list(la.stride), padding=list(la.padding), groups=la.groups)
    act, wt = _act(la), _weight_terms(la)
    if act is None or wt is None:
        rec["integer"] = False  # full precision: no integer form
        return rec
    rec["integer"] = True
    rec["act"] = {k: v for k, v in act.items() if k != "alpha"}
    a_scale = act["step"] if act["kind"] == "lsq" else 1.0 / act["qmax"]
    planes: list[tuple[int, float]] = ([(-1, a_scale)] if act["alpha"] is None else
                                       [(i, float(act["alpha"][i]) / act["qmax"]) for i in range(act["bits"])])
    terms = []
    for w_int, coef in wt:
        small = w_int.to(torch.int8 if int(w_int.abs().max()) < 128 else torch.int32)
        for plane, ac in planes:
            terms.append({"weight": small, "plane": plane, "coef": coef.double() * ac})
    rec["terms"] = terms
    if act["alpha"] is not None:
        rec["act"]["alpha"] = act["alpha"]
    q = la.act_q if isinstance(la.act_q, BWAQuantizer) else la.weight_q
    if isinstance(q, BWAQuantizer) and q.frac_bits is not None:  # fixed-point bit weights, as stored
        rec["alpha_frac_bits"] = q.frac_bits
        rec["alpha_int"] = torch.round(q.alpha_value().detach() * (1 << q.frac_bits)).to(torch.int64)
    return rec


def model_integers(model: nn.Module) -> list[dict[str, Any]]:
    """:func:`layer_integers` of every quantized layer of ``model`` (a plain network), in order."""
    names = {id(m): n for n, m in model.named_modules()}
    return [layer_integers(la, names[id(la)]) for la in qlayers(model)]


@dataclass(slots=True)
class LayerCheck:
    """What :func:`verify` found for one layer (over all samples)."""

    name: str
    integer: bool = True
    widths_ok: bool = True
    no_overflow: bool = True
    bit_serial_ok: bool = True
    max_rel_error: float = 0.0
    backend_ok: bool = True   # the MAC backend's accumulators equal hwsim.golden's (True without one)

    @property
    def exact(self) -> bool:
        return self.integer and self.widths_ok and self.no_overflow and self.bit_serial_ok and \
            self.backend_ok and self.max_rel_error <= REL_TOL


REL_TOL = 1e-4
"""Dequantized accumulators vs the float layer output: |diff| <= REL_TOL * max(1, max|y|) (float32 sums)."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``agree``: predictions equal to the model's with its quantized layers accumulated in float64 (the
    reference); ``agree_float32``: equal to the plain float32 forward, whose rounding can put an activation
    on the other side of a rounding boundary than the exact integer accumulator does."""

    samples: int
    agree: int
    layers: tuple[LayerCheck, ...] = field(default_factory=tuple)
    agree_float32: int = 0

    @property
    def agreement(self) -> float:
        return self.agree / self.samples if self.samples else 0.0

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.layers)

    @property
    def ok(self) -> bool:
        return self.agree == self.samples and self.exact


def _float64_layer(mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
    """The layer's own quantizers and weights, its dot products accumulated in float64 (the reference)."""
    assert isinstance(mod, QConv2d | QLinear)
    xq, wq = mod.q_input(inputs[0]).double(), mod.q_weight().double()
    b = None if mod.bias is None else mod.bias.double()
    y = mod._conv_forward(xq, wq, b) if isinstance(mod, QConv2d) else torch.nn.functional.linear(xq, wq, b)
    return y.to(out.dtype)


def _codes(x: torch.Tensor, act: dict[str, Any]) -> torch.Tensor:
    if act["kind"] == "lsq":
        return torch.round(torch.clamp(x / act["step"], 0, act["qmax"])).to(torch.int64)
    return torch.round(torch.clamp(x, 0, 1) * act["qmax"]).to(torch.int64)


def _mac(rec: dict[str, Any], a: np.ndarray, w: np.ndarray, acc_bits: int) -> tuple[np.ndarray, np.ndarray]:
    if rec["kind"] == "conv2d":
        kw: dict[str, Any] = {"stride": tuple(rec["stride"]), "padding": tuple(rec["padding"]),
                              "groups": rec["groups"]}
        return (golden.conv2d(a, w, acc_bits=63, **kw),
                golden.conv2d(a, w, acc_bits=acc_bits, overflow="wrap", **kw))
    return golden.linear(a, w, acc_bits=63), golden.linear(a, w, acc_bits=acc_bits, overflow="wrap")


def _spot_check(rec: dict[str, Any], a: np.ndarray, w: np.ndarray, acc: np.ndarray, acc_bits: int,
                gen: np.random.Generator, n: int = 3) -> bool:
    """A few outputs recomputed one bit-serial MAC at a time (activations unsigned, LSB first)."""
    prec = max(1, int(a.max()).bit_length())
    for _ in range(n):
        b = int(gen.integers(a.shape[0]))
        o = int(gen.integers(w.shape[0]))
        if rec["kind"] == "linear":
            ws, xs = w[o].tolist(), a[b].tolist()
            want = int(acc[b, o])
        else:
            g = rec["groups"]
            cg = w.shape[1]
            grp = o // (w.shape[0] // g)
            sh, sw = rec["stride"]
            ph, pw = rec["padding"]
            i, j = int(gen.integers(acc.shape[2])), int(gen.integers(acc.shape[3]))
            xp = np.pad(a[b, grp * cg:(grp + 1) * cg], ((0, 0), (ph, ph), (pw, pw)))
            patch = xp[:, i * sh:i * sh + w.shape[2], j * sw:j * sw + w.shape[3]]
            ws, xs = w[o].flatten().tolist(), patch.flatten().tolist()
            want = int(acc[b, o, i, j])
        if golden.bit_serial_dot(ws, xs, prec, acc_bits=acc_bits, signed_act=False) != want:
            return False
    return True


MacBackend = Callable[[dict[str, Any], np.ndarray, np.ndarray], np.ndarray]
"""Computes one term's integer accumulators ``(record, activation codes, integer weights) -> acc`` on
other hardware (e.g. the generated RTL core); :func:`verify` checks them against :mod:`hwsim.golden`."""


class _IntegerLayer:
    """A forward hook that replaces a layer's output by its integer computation and records checks."""

    def __init__(self, rec: dict[str, Any], check: LayerCheck, acc_bits: int, seed: int,
                 mac: MacBackend | None = None) -> None:
        self.rec, self.check, self.acc_bits, self.mac = rec, check, acc_bits, mac
        self.gen = np.random.default_rng(seed)

    def __call__(self, mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        rec, chk = self.rec, self.check
        if not rec["integer"]:
            chk.integer = False
            return out
        x = inputs[0].detach()
        codes = _codes(x, rec["act"])
        if int(codes.max()) >= 1 << rec["act_bits"] or int(codes.min()) < 0:
            chk.widths_ok = False
        lim = 1 << (rec["weight_bits"] - 1)
        y = torch.zeros(out.shape, dtype=torch.float64)
        shape = (1, -1) + (1,) * (out.dim() - 2)
        for t in rec["terms"]:
            w = t["weight"].to(torch.int64)
            if int(w.max()) >= lim or int(w.min()) < -lim:
                chk.widths_ok = False
            a = codes if t["plane"] < 0 else (codes >> t["plane"]) & 1
            a_np, w_np = a.numpy(), w.numpy()
            exact, wrapped = _mac(rec, a_np, w_np, self.acc_bits)
            if not np.array_equal(exact, wrapped):
                chk.no_overflow = False
            if chk.bit_serial_ok and not _spot_check(rec, a_np, w_np, wrapped, self.acc_bits, self.gen):
                chk.bit_serial_ok = False
            if self.mac is not None:
                got = np.asarray(self.mac(rec, a_np, w_np), dtype=np.int64)
                chk.backend_ok = chk.backend_ok and got.shape == wrapped.shape and bool(np.array_equal(got, wrapped))
                wrapped = got.reshape(wrapped.shape) if got.size == wrapped.size else wrapped
            y += torch.from_numpy(wrapped).double() * t["coef"].view(shape)
        if rec["bias"] is not None:
            y += rec["bias"].view(shape)
        ref = out.detach().double()
        err = float((y - ref).abs().max()) / max(1.0, float(ref.abs().max()))
        chk.max_rel_error = max(chk.max_rel_error, err)
        return y.to(out.dtype)


@torch.no_grad()
def verify(model: nn.Module, integers: list[list[dict[str, Any]]], x: torch.Tensor, acc_bits: int = 32,
           batch_size: int = 256, mac: MacBackend | None = None) -> VerifyResult:
    """Predictions of the integer network vs ``model`` on every row of ``x`` (module docstring).

    With ``mac``, every integer term's accumulators come from that backend (e.g. the RTL core), are
    compared with :mod:`hwsim.golden`'s (``LayerCheck.backend_ok``) and are what the predictions use.

    ``integers`` holds one list of layer records per stage (one stage for a plain network). A cascade
    exits by its rule and threshold applied to the integer stage-1 logits.
    """
    from .cmn import CascadeNet, exit_scores

    model.eval()
    stages = list(model.stages) if isinstance(model, CascadeNet) else [model]
    if len(stages) != len(integers):
        raise ValueError(f"verify.integers must hold {len(stages)} stage(s), not {len(integers)}")
    plan: list[tuple[nn.Module, dict[str, Any], LayerCheck]] = []
    for i, (st, recs) in enumerate(zip(stages, integers, strict=True)):
        mods = dict(st.named_modules())
        for rec in recs:
            mod = mods.get(rec["name"])
            if not isinstance(mod, QConv2d | QLinear):
                raise ValueError(f"verify.integers layer {rec['name']!r} must name a quantized layer of the model")
            plan.append((mod, rec, LayerCheck((f"s{i + 1}." if len(stages) > 1 else "") + rec["name"])))
    def predict(logits: list[torch.Tensor]) -> torch.Tensor:
        if isinstance(model, CascadeNet):
            ex = exit_scores(logits[0], model.rule) >= model.threshold
            return torch.where(ex, logits[0].argmax(1), logits[1].argmax(1))
        return logits[0].argmax(1)

    def run(hooks: list[tuple[nn.Module, Any]], xb: torch.Tensor) -> torch.Tensor:
        handles = [mod.register_forward_hook(h) for mod, h in hooks]
        try:
            return predict([st(xb) for st in stages])
        finally:
            for h in handles:
                h.remove()

    agree = agree32 = 0
    for lo in range(0, x.shape[0], batch_size):
        xb = x[lo:lo + batch_size].cpu()
        ref32 = run([], xb)
        ref = run([(mod, _float64_layer) for mod, _, _ in plan], xb)
        pred = run([(mod, _IntegerLayer(rec, chk, acc_bits, seed=lo + k, mac=mac))
                    for k, (mod, rec, chk) in enumerate(plan)], xb)
        agree += int((pred == ref).sum())
        agree32 += int((pred == ref32).sum())
    return VerifyResult(int(x.shape[0]), agree, tuple(chk for _, _, chk in plan), agree32)
