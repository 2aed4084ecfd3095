"""The array's shared tile controller: bit counter(s), precision and sign registers, one step counter.

Protocol (cycle ``t0`` is the cycle in which ``start`` is sampled high while the controller is idle):

* ``t0``: ``precision``, ``act_signed``, ``steps`` (K) and ``accumulate`` (and, for ``serial_both``,
  ``weight_precision``) are sampled, ``load`` is high (the array latches the step-0 weights and
  activations) and, unless ``accumulate``, ``clear`` is high (the accumulators are zeroed at the end of ``t0``).
* ``t0 + 1 .. t0 + K*s``: ``busy``; ``s`` cycles per step. ``serial_act``: one activation bit per cycle,
  LSB first, ``s = p``. ``serial_both``: weight bit ``j`` (outer, ``w_idx``) times activation bit ``i``
  (inner, ``a_idx``), ``s = pw * p``; ``w_next`` is high in the cycle after which the weight moves to its
  next bit. In the last cycle of each step ``load`` is high again unless it is the last step (the next
  step's operands are latched while the last bit is accumulated). ``neg`` is high when the cycle's partial
  product is subtracted: the activation's MSB in signed mode (``serial_act``), exactly one of the weight's
  MSB and the signed activation's MSB (``serial_both``; weights are always signed).
* ``t0 + K*s + 1``: ``done`` is high for one cycle and the accumulators hold the tile's result; the
  controller is idle again, so ``start`` may be sampled in this very cycle (back-to-back tiles).

A tile therefore takes ``t_done - t_start = 1 + K*s`` cycles: ``hwsim.timing.BROADCAST_START_CYCLES``
is the load cycle and ``BROADCAST_DRAIN_CYCLES`` is 0 (the accumulators are the output registers). The
``parallel`` array uses this controller with one fixed 1-bit "precision" (``s = 1``).
A sampled precision outside its range runs the maximum; ``steps`` = 0 runs one step.

``stall=True`` (the accelerator core) adds ``hold``: while it is high a busy controller freezes (no bit is
accumulated, nothing advances), so a step boundary can wait for operands; ``want_load`` says the array
would load the next step's operands this cycle, ``last`` that this is a tile's final busy cycle, ``adv``
that a busy array advances and ``first`` that this cycle carries a step's first bit.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import check_int

from .params import MAX_BITS, check_act_signed, check_precision

__all__ = ["TileController"]


class TileController(wiring.Component):
    """Sequencer shared by every PE of an array (see the module docstring for the cycle protocol).

    ``weight_bits=None``: one bit counter (``serial_act``, and ``parallel`` with ``act_bits=1``).
    ``weight_bits=W``: a second, outer counter over the weight's bits (``serial_both``), with a runtime
    ``weight_precision`` port unless ``weight_precision`` fixes it.
    """

    def __init__(self, act_bits: int, max_steps: int, precision: int | None = None,
                 act_signed: bool | None = None, *, weight_bits: int | None = None,
                 weight_precision: int | None = None, stall: bool = False) -> None:
        check_int("TileController", "act_bits", act_bits, 1, MAX_BITS)
        check_int("TileController", "max_steps", max_steps, 1, 1 << 20)
        check_precision("TileController", precision, act_bits)
        check_act_signed("TileController", act_signed)
        if weight_bits is not None:
            check_int("TileController", "weight_bits", weight_bits, 1, MAX_BITS)
            if weight_precision is not None:
                check_int("TileController", "weight_precision", weight_precision, 1, weight_bits)
        elif weight_precision is not None:
            raise ValueError(f"TileController.weight_precision must be None without weight_bits, "
                             f"not {weight_precision!r}")
        self.act_bits, self.max_steps = act_bits, max_steps
        self.fixed_precision, self.fixed_signed = precision, act_signed
        self.weight_bits, self.fixed_weight_precision = weight_bits, weight_precision
        self.stall = stall
        sig = {"start": In(1), "accumulate": In(1), "steps": In(range(1, max_steps + 1)),
               "load": Out(1), "clear": Out(1), "busy": Out(1), "neg": Out(1), "done": Out(1), "sign": Out(1)}
        if precision is None:
            sig["precision"] = In(range(1, act_bits + 1))
        if act_signed is None:
            sig["act_signed"] = In(1)
        if stall:
            sig |= {"hold": In(1), "want_load": Out(1), "last": Out(1), "adv": Out(1), "first": Out(1)}
        if weight_bits is not None:
            sig |= {"a_idx": Out(range(act_bits)), "w_idx": Out(range(weight_bits)), "w_next": Out(1)}
            if weight_precision is None:
                sig["weight_precision"] = In(range(1, weight_bits + 1))
        super().__init__(sig)

    @staticmethod
    def _limit(bits: int, fixed: int | None, port: Value | None) -> tuple[Value, Value | None]:
        """(register or constant holding precision - 1, value to load into it at start)."""
        if fixed is not None:
            return Const(fixed - 1, range(bits)), None
        assert port is not None
        reg = Signal(range(bits))
        return reg, Mux((port >= 1) & (port <= bits), port - 1, bits - 1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        a = self.act_bits
        cnt = Signal(range(a))
        k = Signal(range(self.max_steps))
        steps_m1 = Signal(range(self.max_steps))
        prec_m1, prec_in = self._limit(a, self.fixed_precision,
                                       self.precision if self.fixed_precision is None else None)
        sgn = Signal() if self.fixed_signed is None else Const(int(self.fixed_signed), 1)
        serial_w = self.weight_bits is not None
        hold = self.hold if self.stall else Const(0, 1)
        adv = self.busy & ~hold          # the array advances this cycle (``hold`` freezes a busy array)

        last_a = cnt == prec_m1
        if serial_w:
            assert self.weight_bits is not None
            wcnt = Signal(range(self.weight_bits))
            wprec_m1, wprec_in = self._limit(self.weight_bits, self.fixed_weight_precision,
                                             self.weight_precision if self.fixed_weight_precision is None else None)
            last_w = wcnt == wprec_m1
            last_bit = last_a & last_w
            first_bit = (cnt == 0) & (wcnt == 0)
            m.d.comb += [self.a_idx.eq(cnt), self.w_idx.eq(wcnt), self.w_next.eq(adv & last_a & ~last_w),
                         self.neg.eq(self.busy & (last_w ^ (sgn & last_a)))]
        else:
            last_bit = last_a
            first_bit = cnt == 0
            m.d.comb += self.neg.eq(self.busy & sgn & last_bit)
        last_step = k == steps_m1
        accept = self.start & ~self.busy
        if self.stall:
            m.d.comb += [self.want_load.eq(self.busy & last_bit & ~last_step),
                         self.last.eq(adv & last_bit & last_step), self.adv.eq(adv),
                         self.first.eq(self.busy & first_bit)]
        m.d.comb += [
            self.load.eq(accept | (adv & last_bit & ~last_step)),
            self.clear.eq(accept & ~self.accumulate),
            self.sign.eq(sgn),
        ]
        m.d.sync += self.done.eq(adv & last_bit & last_step)
        with m.If(accept):
            m.d.sync += [self.busy.eq(1), cnt.eq(0), k.eq(0),
                         steps_m1.eq(Mux(self.steps == 0, 0, self.steps - 1))]
            if prec_in is not None:
                m.d.sync += prec_m1.eq(prec_in)
            if self.fixed_signed is None:
                m.d.sync += sgn.eq(self.act_signed)
            if serial_w:
                m.d.sync += wcnt.eq(0)
                if wprec_in is not None:
                    m.d.sync += wprec_m1.eq(wprec_in)
        with m.Elif(adv):
            with m.If(last_a):
                m.d.sync += cnt.eq(0)
                if serial_w:
                    with m.If(last_w):
                        m.d.sync += wcnt.eq(0)
                    with m.Else():
                        m.d.sync += wcnt.eq(wcnt + 1)
                with m.If(last_bit):
                    with m.If(last_step):
                        m.d.sync += self.busy.eq(0)
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
            with m.Else():
                m.d.sync += cnt.eq(cnt + 1)
        return m
