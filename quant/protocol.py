"""The hardware-bits protocol: what a quantized PyTorch module tells a mapper about its precision.

Any module (ours or a user's) that a front end should map at reduced precision implements::

    def hw_bits(self) -> HWBits: ...

The front end (``mapping.frontends``) calls it on every module that has it; a module without it is
mapped at the front end's default precision. Fields of :class:`HWBits`:

* ``weight_bits`` -- width of the stored weight codes (the widest channel when per-channel widths vary);
* ``act_bits`` -- width of the activation codes *entering* the module (what a serial array streams);
* ``channel_weight_bits`` -- ``None``, or one width per output channel (class-based quantization);
  ``max(channel_weight_bits) == weight_bits``;
* ``bit_scales`` -- extra per-bit-plane scale multiplies per output value (bit-weight adjustment: one
  per non-uniformly weighted bit plane), 0 for a plain uniform quantizer;
* ``full_precision`` -- True when the module is not quantized at all; the widths then say how the
  hardware runs it anyway (8 bits by default);
* ``weight_density`` -- fraction of the weights that are non-zero after pruning, in (0, 1]
  (``hwsim.Layer.weight_density``).

The answer depends only on the module's configuration, never on data, and must not change during a
forward pass. This module imports nothing of torch so that a mapper can use the type without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["HWBits", "HardwareQuantized", "MAX_BITS", "check_bits"]

MAX_BITS = 16
"""Widest code a quantized module may carry (weights or activations)."""


def check_bits(owner: str, field: str, value: object, lo: int = 1, hi: int = MAX_BITS) -> int:
    """``value`` if it is an int in ``[lo, hi]``, else ``TypeError``/``ValueError`` in the project's grammar."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{field} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{owner}.{field} must be an integer in [{lo}, {hi}], not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class HWBits:
    """Precision of one quantized module as the hardware sees it (see the module docstring)."""

    weight_bits: int
    act_bits: int
    channel_weight_bits: tuple[int, ...] | None = None
    bit_scales: int = 0
    full_precision: bool = False
    weight_density: float = 1.0

    def __post_init__(self) -> None:
        d = self.weight_density
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0.0 < d <= 1.0:
            raise ValueError(f"HWBits.weight_density must be a number in (0, 1], not {d!r}")
        check_bits("HWBits", "weight_bits", self.weight_bits)
        check_bits("HWBits", "act_bits", self.act_bits)
        if isinstance(self.bit_scales, bool) or not isinstance(self.bit_scales, int) or self.bit_scales < 0:
            raise ValueError(f"HWBits.bit_scales must be an integer >= 0, not {self.bit_scales!r}")
        if self.channel_weight_bits is not None:
            cwb = tuple(self.channel_weight_bits)
            object.__setattr__(self, "channel_weight_bits", cwb)
            if not cwb:
                raise ValueError("HWBits.channel_weight_bits must be None or non-empty, not ()")
            for i, b in enumerate(cwb):
                check_bits("HWBits", f"channel_weight_bits[{i}]", b)
            if max(cwb) != self.weight_bits:
                raise ValueError(f"HWBits.weight_bits must equal max(channel_weight_bits)={max(cwb)}, "
                                 f"not {self.weight_bits!r}")


@runtime_checkable
class HardwareQuantized(Protocol):
    """A module that reports its hardware precision (``isinstance(m, HardwareQuantized)`` works)."""

    def hw_bits(self) -> HWBits: ...
