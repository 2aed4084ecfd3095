"""A registered serial I/O shell around the PE array so that it fits an FPGA package for place and route.

The array has ``cols*W + rows*A`` operand inputs and ``rows*cols*acc_bits`` result outputs, far more
than any iCE40 package has pins. The shell registers every array input and output: operands are shifted
in ``io_bits`` per cycle, results are captured on ``done`` and shifted out ``io_bits`` per cycle. Only
timing (fmax) is measured on it; area is reported for the bare array.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import check_int

from .export import build_array
from .params import ArrayParams

__all__ = ["SerialIOWrapper"]


class SerialIOWrapper(wiring.Component):
    def __init__(self, params: ArrayParams, io_bits: int = 8) -> None:
        check_int("SerialIOWrapper", "io_bits", io_bits, 1, 64)
        self.params, self.io_bits = params, io_bits
        sig = {"sin": In(io_bits), "shift_in": In(1), "shift_out": In(1), "start": In(1), "accumulate": In(1),
               "steps": In(range(1, params.max_steps + 1)), "sout": Out(io_bits), "done": Out(1), "busy": Out(1),
               "load": Out(1)}
        if params.precision is None and params.kind != "parallel":
            sig["precision"] = In(range(1, params.act_bits + 1))
        if params.weight_precision is None and params.kind == "serial_both":
            sig["weight_precision"] = In(range(1, params.weight_bits + 1))
        if params.act_signed is None:
            sig["act_signed"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p, io = self.params, self.io_bits
        assert p.acc_bits is not None
        m.submodules.array = arr = build_array(p)
        n_w, n_a, n_o = p.cols * p.weight_bits, p.rows * p.act_bits, p.rows * p.cols * p.acc_bits
        ireg = Signal(n_w + n_a)
        oreg = Signal(n_o)
        with m.If(self.shift_in):
            m.d.sync += ireg.eq(Cat(ireg[io:], self.sin) if n_w + n_a > io else self.sin)
        ctrl = ["start", "accumulate", "steps"] + [n for n in ("precision", "weight_precision", "act_signed")
                                                   if n in self.signature.members]
        for name in ctrl:   # registered control inputs
            r = Signal.like(getattr(self, name), name=f"{name}_r")
            m.d.sync += r.eq(getattr(self, name))
            m.d.comb += getattr(arr, name).eq(r)
        m.d.comb += [arr.weights.as_value().eq(ireg[:n_w]), arr.acts.as_value().eq(ireg[n_w:])]
        with m.If(arr.done):
            m.d.sync += oreg.eq(arr.acc.as_value())
        with m.Elif(self.shift_out):
            m.d.sync += oreg.eq(oreg >> io)
        m.d.comb += self.sout.eq(oreg[:io])
        m.d.sync += [self.done.eq(arr.done), self.busy.eq(arr.busy), self.load.eq(arr.load)]
        return m
