"""The array's shared tile controller: one bit counter, one precision register, one step counter.

Protocol (cycle ``t0`` is the cycle in which ``start`` is sampled high while the controller is idle):

* ``t0``: ``precision``, ``act_signed``, ``steps`` (K) and ``accumulate`` are sampled, ``load`` is high
  (the array latches the step-0 weights and activations) and, unless ``accumulate``, ``clear`` is high
  (the accumulators are zeroed at the end of ``t0``).
* ``t0 + 1 .. t0 + K*p``: ``busy``; one activation bit per cycle, LSB first, ``p`` bits per step.
  In the last bit of each step ``neg`` is high in signed mode, and ``load`` is high again unless it is
  the last step (the next step's operands are latched while the last bit is accumulated).
* ``t0 + K*p + 1``: ``done`` is high for one cycle and the accumulators hold the tile's result; the
  controller is idle again, so ``start`` may be sampled in this very cycle (back-to-back tiles).

A tile therefore takes ``t_done - t_start = 1 + K*p`` cycles: ``hwsim.timing.BROADCAST_START_CYCLES``
is the load cycle and ``BROADCAST_DRAIN_CYCLES`` is 0 (the accumulators are the output registers).
A sampled ``precision`` outside ``1..act_bits`` runs ``act_bits`` bits; ``steps`` = 0 runs one step.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import check_int

from .params import MAX_BITS, check_act_signed, check_precision

__all__ = ["TileController"]


class TileController(wiring.Component):
    """Sequencer shared by every PE of an array (see the module docstring for the cycle protocol)."""

    def __init__(self, act_bits: int, max_steps: int, precision: int | None = None,
                 act_signed: bool | None = None) -> None:
        check_int("TileController", "act_bits", act_bits, 1, MAX_BITS)
        check_int("TileController", "max_steps", max_steps, 1, 1 << 20)
        check_precision("TileController", precision, act_bits)
        check_act_signed("TileController", act_signed)
        self.act_bits, self.max_steps = act_bits, max_steps
        self.fixed_precision, self.fixed_signed = precision, act_signed
        sig = {"start": In(1), "accumulate": In(1), "steps": In(range(1, max_steps + 1)),
               "load": Out(1), "clear": Out(1), "busy": Out(1), "neg": Out(1), "done": Out(1)}
        if precision is None:
            sig["precision"] = In(range(1, act_bits + 1))
        if act_signed is None:
            sig["act_signed"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        a = self.act_bits
        cnt = Signal(range(a))
        k = Signal(range(self.max_steps))
        steps_m1 = Signal(range(self.max_steps))
        if self.fixed_precision is None:
            prec_m1 = Signal(range(a))
            p = self.precision
            prec_in = Mux((p >= 1) & (p <= a), p - 1, a - 1)
        else:
            prec_m1 = Const(self.fixed_precision - 1, range(a))
        if self.fixed_signed is None:
            sgn = Signal()
        else:
            sgn = Const(int(self.fixed_signed), 1)

        last_bit = cnt == prec_m1
        last_step = k == steps_m1
        accept = self.start & ~self.busy
        m.d.comb += [
            self.load.eq(accept | (self.busy & last_bit & ~last_step)),
            self.clear.eq(accept & ~self.accumulate),
            self.neg.eq(self.busy & sgn & last_bit),
        ]
        m.d.sync += self.done.eq(self.busy & last_bit & last_step)
        with m.If(accept):
            m.d.sync += [self.busy.eq(1), cnt.eq(0), k.eq(0),
                         steps_m1.eq(Mux(self.steps == 0, 0, self.steps - 1))]
            if self.fixed_precision is None:
                m.d.sync += prec_m1.eq(prec_in)
            if self.fixed_signed is None:
                m.d.sync += sgn.eq(self.act_signed)
        with m.Elif(self.busy):
            with m.If(last_bit):
                m.d.sync += cnt.eq(0)
                with m.If(last_step):
                    m.d.sync += self.busy.eq(0)
                with m.Else():
                    m.d.sync += k.eq(k + 1)
            with m.Else():
                m.d.sync += cnt.eq(cnt + 1)
        return m
