"""The accumulate step of a bit-serial MAC: ``acc + bit * (neg ? -x : x)``, in two RTL styles.

``single`` folds the subtraction of the MSB term into one carry chain with the classic
``~x + 1`` trick, the ``+1`` as the chain's carry input::

    base + (x_g ^ n) + n  =  base + (n ? ~x_g + 1 : x_g)

(``x_g = bit ? x : 0``, ``n = neg & bit``). Yosys maps a one-bit third addend to the carry input of
the same chain (the same cells as writing the carry in through an extra low bit, ``{base, 1} + {x_g ^ n,
n}``), and simulators compute it at the accumulator's width instead of one bit wider. ``dual`` writes an
adder and a subtractor and picks one with a multiplexer. On iCE40 the single chain uses about half the
LUTs and carries (docs/rtl.md).
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value

__all__ = ["extend", "mac_sum", "mac_value"]


def extend(value: Value, width: int) -> Value:
    """``value`` sign- or zero-extended to ``width`` bits, as a multiplexer between two constant fillings
    selected by the sign bit. The same wires after synthesis as Amaranth's own extension, which the Verilog
    backend writes as one concatenated copy of the sign bit per bit, each a separate operation in a
    simulator's every cycle."""
    n = len(value)
    if width <= n or not value.shape().signed:
        return value
    low = value.as_unsigned()
    return Mux(value[n - 1], Cat(low, C((1 << (width - n)) - 1, width - n)), Cat(low, C(0, width - n))).as_signed()


def mac_value(base: Value, operand: Value, bit: Value, neg: Value, style: str) -> Value:
    """``base + (bit ? (neg ? -operand : operand) : 0)`` as an expression (at least ``len(base)`` bits wide;
    the low ``len(base)`` bits are the wrapped sum)."""
    width = len(base)
    gated = Mux(bit, extend(operand, width), 0).as_signed()       # sign-extended, gated partial product
    n = neg & bit
    if style == "single":
        ones = Mux(n, C((1 << width) - 1, width), C(0, width))     # n in every bit (see extend)
        return base.as_unsigned() + (gated.as_unsigned() ^ ones) + n
    if style == "dual":
        return Mux(n, base - gated, base + gated)
    raise ValueError(f"mac_sum.style must be one of ['single', 'dual'], not {style!r}")


def mac_sum(m: Module, base: Value, operand: Value, bit: Value, neg: Value, style: str) -> Signal:
    """:func:`mac_value` wrapped to ``len(base)`` bits (unsigned view), as a signal of that width, so that
    the adder is as wide as the accumulator once Yosys' ``wreduce`` has dropped the carry-out bits nothing
    reads (rtl.export). Call it outside any ``m.If``: a combinational signal assigned under a condition is
    gated by it in every cycle."""
    out = Signal(len(base))
    m.d.comb += out.eq(mac_value(base, operand, bit, neg, style))
    return out
