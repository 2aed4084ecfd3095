"""The bit-exact golden model: the one oracle for hwsim's functional mode, ``amaranth.sim`` tests and the
cocotb test benches.

Conventions (the RTL implements exactly these):

* Activations are streamed LSB first, one bit per cycle, ``precision`` bits in all. In signed mode
  the activation is a ``precision``-bit two's-complement number, so its MSB carries weight
  ``-2**(precision-1)``: the PE *subtracts* the weight at the last bit. In unsigned mode every bit
  carries ``+2**i``.
* Weights are signed two's-complement integers of up to ``weight_bits`` bits.
* The accumulator is ``acc_bits`` wide. ``overflow="wrap"`` (what the hardware does) keeps the low
  ``acc_bits`` bits as two's complement after every addition, which equals wrapping the exact sum once
  at the end. ``overflow="saturate"`` clamps the final exact sum to the accumulator range instead.
* Scalar functions use Python integers (unbounded, exact). Array functions use numpy ``int64``: they
  are exact while ``weight_bits + act_bits + ceil(log2(K)) <= 63``, and raise otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import check_choice, check_int

__all__ = [
    "wrap", "saturate", "act_bits_lsb_first", "act_value", "bit_serial_mac", "bit_serial_dot", "tile_os",
    "conv2d", "linear", "check_act_range", "acc_bits_needed", "bit_serial_both_mac", "bit_serial_both_dot",
]


def wrap(value: int, bits: int) -> int:
    """Two's-complement wrap of ``value`` to ``bits`` bits."""
    m = 1 << bits
    v = value & (m - 1)
    return v - m if v >= m >> 1 else v


def saturate(value: int, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return min(max(value, lo), hi)


def check_act_range(act: int, precision: int, signed: bool, owner: str = "golden") -> None:
    lo, hi = ((-(1 << (precision - 1)), (1 << (precision - 1)) - 1) if signed else (0, (1 << precision) - 1))
    if not lo <= act <= hi:
        kind = "a signed" if signed else "an unsigned"
        raise ValueError(f"{owner}.act must be {kind} {precision}-bit integer in [{lo}, {hi}], not {act!r}")


def act_bits_lsb_first(act: int, precision: int) -> list[int]:
    """The bits a PE sees, in stream order (LSB first); two's complement for negative values."""
    return [(act >> i) & 1 for i in range(precision)]


def act_value(bits: list[int], signed: bool) -> int:
    """Inverse of :func:`act_bits_lsb_first`: the MSB weighs ``-2**(p-1)`` in signed mode."""
    p = len(bits)
    v = sum(b << i for i, b in enumerate(bits))
    if signed and p and bits[-1]:
        v -= 1 << p
    return v


def bit_serial_mac(weight: int, act: int, precision: int, acc: int = 0, acc_bits: int = 32,
                   signed_act: bool = True) -> int:
    """One bit-serial multiply-accumulate, step by step as the PE does it: ``acc + weight * act``."""
    check_int("bit_serial_mac", "precision", precision, 1, 64)
    check_act_range(act, precision, signed_act, "bit_serial_mac")
    for i, bit in enumerate(act_bits_lsb_first(act, precision)):
        if bit:
            term = weight << i
            acc = acc - term if (signed_act and i == precision - 1) else acc + term
        acc = wrap(acc, acc_bits)
    return acc


def bit_serial_dot(weights: list[int], acts: list[int], precision: int, acc_bits: int = 32,
                   signed_act: bool = True, acc: int = 0) -> int:
    """A chain of bit-serial MACs into one accumulator (what one PE computes over a reduction)."""
    for w, a in zip(weights, acts, strict=True):
        acc = bit_serial_mac(w, a, precision, acc, acc_bits, signed_act)
    return acc


def bit_serial_both_mac(weight: int, act: int, weight_precision: int, act_precision: int, acc: int = 0,
                        acc_bits: int = 32, signed_act: bool = True) -> int:
    """One MAC with *both* operands bit-serial (Loom / BISMO order), step by step: ``acc + weight * act``.

    The weight is a signed ``weight_precision``-bit two's-complement number (its MSB weighs
    ``-2**(weight_precision-1)``); the activation is as in :func:`bit_serial_mac`. Weight bit ``j`` is the
    outer loop, activation bit ``i`` the inner one: ``weight_precision * act_precision`` steps, each adding
    ``w_j * a_i * 2**(i+j)``, subtracted when exactly one of the two bits is a signed MSB. The
    accumulator wraps to ``acc_bits`` after every step.
    """
    check_int("bit_serial_both_mac", "weight_precision", weight_precision, 1, 64)
    check_int("bit_serial_both_mac", "act_precision", act_precision, 1, 64)
    lo, hi = -(1 << (weight_precision - 1)), (1 << (weight_precision - 1)) - 1
    if not lo <= weight <= hi:
        raise ValueError(f"bit_serial_both_mac.weight must be a signed {weight_precision}-bit integer in "
                         f"[{lo}, {hi}], not {weight!r}")
    check_act_range(act, act_precision, signed_act, "bit_serial_both_mac")
    abits = act_bits_lsb_first(act, act_precision)
    for j, wbit in enumerate(act_bits_lsb_first(weight, weight_precision)):
        w_msb = j == weight_precision - 1
        for i, abit in enumerate(abits):
            if wbit and abit:
                term = 1 << (i + j)
                negative = w_msb != (signed_act and i == act_precision - 1)
                acc = acc - term if negative else acc + term
            acc = wrap(acc, acc_bits)
    return acc


def bit_serial_both_dot(weights: list[int], acts: list[int], weight_precision: int, act_precision: int,
                        acc_bits: int = 32, signed_act: bool = True, acc: int = 0) -> int:
    """A chain of :func:`bit_serial_both_mac` into one accumulator (one PE over a reduction)."""
    for w, a in zip(weights, acts, strict=True):
        acc = bit_serial_both_mac(w, a, weight_precision, act_precision, acc, acc_bits, signed_act)
    return acc


def acc_bits_needed(weight_bits: int, act_bits: int, k: int) -> int:
    """Accumulator width that can never overflow a K-long dot product of signed operands."""
    return weight_bits + act_bits + max(0, math.ceil(math.log2(k))) if k > 1 else weight_bits + act_bits


def _finish(exact: np.ndarray, acc_bits: int, overflow: str) -> np.ndarray:
    check_choice("golden", "overflow", overflow, ("wrap", "saturate"))
    if overflow == "saturate":
        return np.clip(exact, -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1)
    m = np.int64(1) << np.int64(acc_bits) if acc_bits < 63 else None
    if m is None:
        return exact
    v = exact & (m - 1)
    return np.where(v >= (m >> 1), v - m, v)


def _check_exact(owner: str, a: np.ndarray, w: np.ndarray, k: int) -> None:
    def bits(x: np.ndarray) -> int:
        return int(np.max(np.abs(x))).bit_length() + 1 if x.size else 1
    if bits(a) + bits(w) + max(1, math.ceil(math.log2(max(k, 1)))) > 63:
        raise ValueError(f"{owner}: operands too wide for exact int64 accumulation over K={k}; "
                         "use the scalar functions")


def tile_os(acts: np.ndarray, weights: np.ndarray, acc_bits: int = 32, overflow: str = "wrap") -> np.ndarray:
    """An output-stationary PE-array tile: ``acts`` (rows x K) times ``weights`` (K x cols).

    PE (r, c) accumulates ``sum_k acts[r, k] * weights[k, c]`` in an ``acc_bits`` accumulator.
    """
    a = np.asarray(acts, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"tile_os: acts (rows x K) and weights (K x cols) must agree, not {a.shape} and {w.shape}")
    _check_exact("tile_os", a, w, a.shape[1])
    return _finish(a @ w, acc_bits, overflow)


def conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
           groups: int = 1, acc_bits: int = 32, overflow: str = "wrap") -> np.ndarray:
    """Integer convolution, NCHW activations and MCRS weights (PyTorch layout), zero padding."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, r, s = w.shape
    if c != cg * groups or m % groups:
        raise ValueError(f"conv2d: channels must agree: x has {c}, weights {cg} x groups={groups}, filters {m}")
    sh, sw = stride
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - r) // sh + 1
    ow = (wd + 2 * pw - s) // sw + 1
    _check_exact("conv2d", x, w, cg * r * s)
    out = np.zeros((n, m, oh, ow), dtype=np.int64)
    mg = m // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        # im2col: (n, oh, ow, cg*r*s)
        cols = np.empty((n, oh, ow, cg, r, s), dtype=np.int64)
        for i in range(r):
            for j in range(s):
                cols[..., i, j] = xs[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw].transpose(0, 2, 3, 1)
        wg = w[g * mg:(g + 1) * mg].reshape(mg, -1)
        out[:, g * mg:(g + 1) * mg] = (cols.reshape(n, oh, ow, -1) @ wg.T).transpose(0, 3, 1, 2)
    return _finish(out, acc_bits, overflow)


def linear(x: np.ndarray, w: np.ndarray, acc_bits: int = 32, overflow: str = "wrap") -> np.ndarray:
    """Integer fully connected layer: ``x`` (batch x in) times ``w.T`` with ``w`` (out x in), PyTorch layout."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1]} features, weights expect {w.shape[1]}")
    _check_exact("linear", x, w, w.shape[1])
    return _finish(x @ w.T, acc_bits, overflow)
