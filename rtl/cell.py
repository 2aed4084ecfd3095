"""The PEs of the broadcast array: an accumulator and its adder (bit-serial kinds) or its multiplier and adder
(``parallel``); operands and control come from outside."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import check_bool, check_choice, check_int

from .adder import mac_sum
from .params import ADDER_STYLES, MAX_ACC_BITS

__all__ = ["MacCell", "MulAccCell"]


class MacCell(wiring.Component):
    """``acc += bit * (neg ? -operand : operand)`` when ``en``.

    ``operand`` is the already shifted weight ``weight << i`` (shared by a column in the array).
    ``clear``: with ``gated_clear=False`` it zeroes the accumulator synchronously (a free synchronous
    reset on FPGA flip-flops); with ``gated_clear=True`` it zeroes the adder's base in an ``en`` cycle,
    so the first bit of a new MAC can land in the same cycle.
    """

    def __init__(self, operand_bits: int, acc_bits: int, adder: str = "single", gated_clear: bool = False) -> None:
        check_int("MacCell", "operand_bits", operand_bits, 1, MAX_ACC_BITS)
        check_int("MacCell", "acc_bits", acc_bits, operand_bits, MAX_ACC_BITS)
        check_choice("MacCell", "adder", adder, ADDER_STYLES)
        check_bool("MacCell", "gated_clear", gated_clear)
        self.adder = adder
        self.gated_clear = gated_clear
        super().__init__({
            "en": In(1), "clear": In(1), "bit": In(1), "neg": In(1),
            "operand": In(signed(operand_bits)), "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        if self.gated_clear:
            nxt = mac_sum(m, Mux(self.clear, 0, self.acc).as_signed(), self.operand, self.bit, self.neg, self.adder)
            with m.If(self.en):
                m.d.sync += self.acc.eq(nxt)
        else:
            nxt = mac_sum(m, self.acc, self.operand, self.bit, self.neg, self.adder)
            with m.If(self.clear):
                m.d.sync += self.acc.eq(0)
            with m.Elif(self.en):
                m.d.sync += self.acc.eq(nxt)
        return m


class MulAccCell(wiring.Component):
    """One PE of the ``parallel`` array: ``acc += weight * act`` (a full signed product) when ``en``;
    ``clear`` zeroes the accumulator synchronously. The array sign-extends unsigned activations, so
    ``act`` is one bit wider than the activation port."""

    def __init__(self, weight_bits: int, act_bits: int, acc_bits: int) -> None:
        check_int("MulAccCell", "weight_bits", weight_bits, 1, MAX_ACC_BITS)
        check_int("MulAccCell", "act_bits", act_bits, 1, MAX_ACC_BITS)
        check_int("MulAccCell", "acc_bits", acc_bits, weight_bits + act_bits - 1, MAX_ACC_BITS)
        super().__init__({"en": In(1), "clear": In(1), "weight": In(signed(weight_bits)),
                          "act": In(signed(act_bits)), "acc": Out(signed(acc_bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Elif(self.en):
            m.d.sync += self.acc.eq(self.acc + self.weight * self.act)
        return m
