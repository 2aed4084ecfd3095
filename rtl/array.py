"""The output-stationary PE array with broadcast operands and one shared tile controller.

PE ``(r, c)`` computes ``sum_k acts[r, k] * weights[k, c]`` (``hwsim.golden.tile_os``). At step ``k``
the activation of row ``r`` is broadcast bit-serially along the row (one wire) and the weight of column
``c`` down the column. Each column keeps one shift register holding ``weight << i`` that all its PEs
share, each row one activation shift register; a PE is just an accumulator and its adder
(:class:`rtl.cell.MacCell`). Cycle protocol: :mod:`rtl.control`.

Ports (``R`` rows, ``C`` cols; in Verilog the arrays are flat packed vectors, element 0 in the LSBs):
``start``, ``accumulate``, ``steps`` (K, 1..max_steps), ``precision`` (1..A, when not fixed),
``act_signed`` (when not fixed), ``weights`` (C x signed W, step k's row of the weight matrix),
``acts`` (R x A bits, step k's column of the activation matrix, two's complement in the low ``p`` bits)
in; ``load`` (the operands are sampled at the end of this cycle), ``busy``, ``done`` and
``acc`` (R*C x signed acc_bits, PE ``(r, c)`` at index ``r*C + c``) out.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cell import MacCell
from .control import TileController
from .params import ArrayParams

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``rows x cols`` bit-serial PEs (weights parallel, activations serial), broadcast, output stationary."""

    def __init__(self, rows: int, cols: int, weight_bits: int, act_bits: int, *, acc_bits: int | None = None,
                 max_steps: int = 256, adder: str = "single", precision: int | None = None,
                 act_signed: bool | None = None) -> None:
        self.params = p = ArrayParams(rows, cols, weight_bits, act_bits, acc_bits, max_steps, adder,
                                      precision, act_signed)
        assert p.acc_bits is not None
        sig = {"start": In(1), "accumulate": In(1), "steps": In(range(1, max_steps + 1)),
               "weights": In(data.ArrayLayout(signed(weight_bits), cols)),
               "acts": In(data.ArrayLayout(unsigned(act_bits), rows)),
               "load": Out(1), "busy": Out(1), "done": Out(1),
               "acc": Out(data.ArrayLayout(signed(p.acc_bits), rows * cols))}
        if precision is None:
            sig["precision"] = In(range(1, act_bits + 1))
        if act_signed is None:
            sig["act_signed"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.params
        assert p.acc_bits is not None
        m.submodules.ctrl = ctrl = TileController(p.act_bits, p.max_steps, p.precision, p.act_signed)
        m.d.comb += [ctrl.start.eq(self.start), ctrl.accumulate.eq(self.accumulate), ctrl.steps.eq(self.steps),
                     self.load.eq(ctrl.load), self.busy.eq(ctrl.busy), self.done.eq(ctrl.done)]
        if p.precision is None:
            m.d.comb += ctrl.precision.eq(self.precision)
        if p.act_signed is None:
            m.d.comb += ctrl.act_signed.eq(self.act_signed)

        shifted = []
        for c in range(p.cols):
            ws = Signal(signed(p.operand_bits), name=f"wshift{c}")
            with m.If(ctrl.load):
                m.d.sync += ws.eq(self.weights[c])
            with m.Elif(ctrl.busy):
                m.d.sync += ws.eq(ws << 1)
            shifted.append(ws)
        bits = []
        for r in range(p.rows):
            sr = Signal(p.act_bits, name=f"ashift{r}")
            with m.If(ctrl.load):
                m.d.sync += sr.eq(self.acts[r])
            with m.Elif(ctrl.busy):
                m.d.sync += sr.eq(sr >> 1)
            bits.append(sr[0])
        for r in range(p.rows):
            for c in range(p.cols):
                cell = MacCell(p.operand_bits, p.acc_bits, p.adder)
                m.submodules[f"pe_{r}_{c}"] = cell
                m.d.comb += [cell.en.eq(ctrl.busy), cell.clear.eq(ctrl.clear), cell.neg.eq(ctrl.neg),
                             cell.bit.eq(bits[r]), cell.operand.eq(shifted[c]),
                             self.acc[r * p.cols + c].eq(cell.acc)]
        return m
