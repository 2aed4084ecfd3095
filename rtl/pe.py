"""The stand-alone bit-serial PE: weights in parallel, activations one bit per cycle, LSB first.

Protocol (all inputs sampled on the rising clock edge):

* ``start`` is accepted while ``ready`` is high: when the PE is idle, or in the cycle that carries the
  last activation bit of the current MAC (back to back: one ``p``-bit MAC every ``p`` cycles).
  With it the PE samples ``weight``, ``precision`` (1..A; a value outside runs A bits), ``act_signed``
  and ``clear`` (1: this MAC starts from 0 instead of adding to the accumulator).
* The ``p`` activation bits follow in the next cycles with ``valid`` high, LSB first; cycles with
  ``valid`` low are gaps and change nothing. In signed mode the last bit weighs ``-2**(p-1)``.
* ``done`` is high for one cycle after the last bit, with ``acc`` holding the new sum
  (``hwsim.golden.bit_serial_mac``, wrapped to ``acc_bits``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .cell import MacCell
from .params import PEParams

__all__ = ["BitSerialPE"]


class BitSerialPE(wiring.Component):
    """One bit-serial MAC with its own bit counter (see the module docstring for the protocol)."""

    def __init__(self, weight_bits: int, act_bits: int, *, acc_bits: int | None = None, adder: str = "single",
                 precision: int | None = None, act_signed: bool | None = None) -> None:
        self.params = p = PEParams(weight_bits, act_bits, acc_bits, adder, precision, act_signed)
        assert p.acc_bits is not None
        sig = {"start": In(1), "clear": In(1), "weight": In(signed(weight_bits)), "valid": In(1),
               "act_bit": In(1), "ready": Out(1), "busy": Out(1), "done": Out(1), "acc": Out(signed(p.acc_bits))}
        if precision is None:
            sig["precision"] = In(range(1, act_bits + 1))
        if act_signed is None:
            sig["act_signed"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.params
        assert p.acc_bits is not None
        a = p.act_bits
        m.submodules.cell = cell = MacCell(p.operand_bits, p.acc_bits, p.adder, gated_clear=True)
        ws = Signal(signed(p.operand_bits))
        cnt = Signal(range(a))
        first = Signal()   # the next bit is the first of a MAC started with clear
        if p.precision is None:
            prec_m1 = Signal(range(a))
            pr = self.precision
            prec_in = Mux((pr >= 1) & (pr <= a), pr - 1, a - 1)
        else:
            prec_m1 = Const(p.precision - 1, range(a))
        sgn = Signal() if p.act_signed is None else Const(int(p.act_signed), 1)

        step = self.busy & self.valid
        last = step & (cnt == prec_m1)
        accept = self.start & self.ready
        m.d.comb += [
            self.ready.eq(~self.busy | last),
            cell.en.eq(step), cell.clear.eq(first), cell.bit.eq(self.act_bit),
            cell.neg.eq(sgn & (cnt == prec_m1)), cell.operand.eq(ws), self.acc.eq(cell.acc),
        ]
        m.d.sync += self.done.eq(last)
        with m.If(accept):
            m.d.sync += [self.busy.eq(1), cnt.eq(0), ws.eq(self.weight), first.eq(self.clear)]
            if p.precision is None:
                m.d.sync += prec_m1.eq(prec_in)
            if p.act_signed is None:
                m.d.sync += sgn.eq(self.act_signed)
        with m.Elif(step):
            m.d.sync += [ws.eq(ws << 1), cnt.eq(cnt + 1), first.eq(0)]
            with m.If(last):
                m.d.sync += self.busy.eq(0)
        return m
