"""The output-stationary PE array with broadcast operands and one shared tile controller.

PE ``(r, c)`` computes ``sum_k acts[r, k] * weights[k, c]`` (``hwsim.golden.tile_os``). At step ``k``
the activation of row ``r`` is broadcast along the row and the weight of column ``c`` down the column.
Three PE kinds (``kind``, as ``hwsim.accelerator.PEKind``) share the controller (:mod:`rtl.control`,
cycle protocol there) and the ports:

* ``serial_act`` (Stripes): each column keeps one shift register holding ``weight << i`` that all its
  PEs share, each row an activation shift register whose LSB is broadcast; a PE is an accumulator and
  its adder (:class:`rtl.cell.MacCell`). ``p`` cycles per step.
* ``serial_both`` (Loom / BISMO order): weight bit ``j`` (outer) times activation bit ``i`` (inner) per
  cycle, ``pw * p`` cycles per step. One shared one-hot ``1 << (i+j)``; each column gates it with its
  current weight bit (a shift register over the weight), each row selects activation bit ``i``; a PE is
  the same ``MacCell``, adding or subtracting the gated one-hot when its row's bit is set.
* ``parallel``: each column and row registers its operand; a PE is a full ``W x (A+1)`` signed multiplier
  and an accumulator (:class:`rtl.cell.MulAccCell`). One cycle per step; no precision ports.

Ports (``R`` rows, ``C`` cols; in Verilog the arrays are flat packed vectors, element 0 in the LSBs):
``start``, ``accumulate``, ``steps`` (K, 1..max_steps), ``precision`` (1..A, bit-serial kinds, when not
fixed), ``weight_precision`` (1..W, ``serial_both``, when not fixed), ``act_signed`` (when not fixed),
``weights`` (C x signed W, step k's row of the weight matrix; ``serial_both`` reads the low ``pw`` bits as a
``pw``-bit two's-complement number), ``acts`` (R x A bits, step k's column of the activation matrix,
two's complement in the low ``p`` bits) in; ``load`` (the operands are sampled at the end of this cycle),
``busy``, ``done`` and ``acc`` (R*C x signed acc_bits, PE ``(r, c)`` at index ``r*C + c``) out.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cell import MacCell, MulAccCell
from .control import TileController
from .params import ArrayParams

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``rows x cols`` PEs of one kind (``serial_act``, ``serial_both`` or ``parallel``), broadcast,
    output stationary."""

    def __init__(self, rows: int, cols: int, weight_bits: int, act_bits: int, *, acc_bits: int | None = None,
                 max_steps: int = 256, adder: str = "single", precision: int | None = None,
                 act_signed: bool | None = None, kind: str = "serial_act",
                 weight_precision: int | None = None, stall: bool = False) -> None:
        self.params = p = ArrayParams(rows, cols, weight_bits, act_bits, acc_bits, max_steps, adder,
                                      precision, act_signed, kind, weight_precision)
        assert p.acc_bits is not None
        sig = {"start": In(1), "accumulate": In(1), "steps": In(range(1, max_steps + 1)),
               "weights": In(data.ArrayLayout(signed(weight_bits), cols)),
               "acts": In(data.ArrayLayout(unsigned(act_bits), rows)),
               "load": Out(1), "busy": Out(1), "done": Out(1),
               "acc": Out(data.ArrayLayout(signed(p.acc_bits), rows * cols))}
        if precision is None and kind != "parallel":
            sig["precision"] = In(range(1, act_bits + 1))
        if weight_precision is None and kind == "serial_both":
            sig["weight_precision"] = In(range(1, weight_bits + 1))
        if act_signed is None:
            sig["act_signed"] = In(1)
        self.stall = stall
        if stall:   # used by the accelerator core (rtl.core): a step may wait for its operands
            sig |= {"hold": In(1), "want_load": Out(1), "last": Out(1)}
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.params
        assert p.acc_bits is not None
        if p.kind == "parallel":
            ctrl = TileController(1, p.max_steps, 1, p.act_signed, stall=self.stall)
        elif p.kind == "serial_both":
            ctrl = TileController(p.act_bits, p.max_steps, p.precision, p.act_signed, weight_bits=p.weight_bits,
                                  weight_precision=p.weight_precision, stall=self.stall)
        else:
            ctrl = TileController(p.act_bits, p.max_steps, p.precision, p.act_signed, stall=self.stall)
        m.submodules.ctrl = ctrl
        m.d.comb += [ctrl.start.eq(self.start), ctrl.accumulate.eq(self.accumulate), ctrl.steps.eq(self.steps),
                     self.load.eq(ctrl.load), self.busy.eq(ctrl.busy), self.done.eq(ctrl.done)]
        for port in ("precision", "weight_precision", "act_signed"):
            if port in self.signature.members:
                m.d.comb += getattr(ctrl, port).eq(getattr(self, port))
        self._adv = ctrl.busy
        if self.stall:
            m.d.comb += [ctrl.hold.eq(self.hold), self.want_load.eq(ctrl.want_load), self.last.eq(ctrl.last)]
            self._adv = ctrl.adv
        {"serial_act": self._serial_act, "serial_both": self._serial_both,
         "parallel": self._parallel}[p.kind](m, ctrl)
        return m

    def _serial_act(self, m: Module, ctrl: TileController) -> None:
        p = self.params
        assert p.acc_bits is not None
        shifted = []
        for c in range(p.cols):
            ws = Signal(signed(p.operand_bits), name=f"wshift{c}")
            with m.If(ctrl.load):
                m.d.sync += ws.eq(self.weights[c])
            with m.Elif(self._adv):
                m.d.sync += ws.eq(ws << 1)
            shifted.append(ws)
        bits = []
        for r in range(p.rows):
            sr = Signal(p.act_bits, name=f"ashift{r}")
            with m.If(ctrl.load):
                m.d.sync += sr.eq(self.acts[r])
            with m.Elif(self._adv):
                m.d.sync += sr.eq(sr >> 1)
            bits.append(sr[0])
        self._cells(m, ctrl, shifted, bits)

    def _serial_both(self, m: Module, ctrl: TileController) -> None:
        p = self.params
        width = p.weight_bits + p.act_bits - 1       # positions i + j = 0 .. W+A-2
        onehot = Signal(width)
        m.d.comb += onehot.eq(C(1, width) << (ctrl.a_idx + ctrl.w_idx))
        gated = []
        for c in range(p.cols):
            wsr = Signal(p.weight_bits, name=f"wbits{c}")   # bit 0 is the current weight bit j
            with m.If(ctrl.load):
                m.d.sync += wsr.eq(self.weights[c])
            with m.Elif(ctrl.w_next):
                m.d.sync += wsr.eq(wsr >> 1)
            g = Signal(width, name=f"wonehot{c}")
            m.d.comb += g.eq(Mux(wsr[0], onehot, 0))
            gated.append(g)
        bits = []
        for r in range(p.rows):
            ar = Signal(p.act_bits, name=f"areg{r}")
            with m.If(ctrl.load):
                m.d.sync += ar.eq(self.acts[r])
            bits.append(ar.bit_select(ctrl.a_idx, 1))
        self._cells(m, ctrl, gated, bits)

    def _cells(self, m: Module, ctrl: TileController, operands: list[Signal], bits: list[object]) -> None:
        p = self.params
        assert p.acc_bits is not None
        for r in range(p.rows):
            for c in range(p.cols):
                cell = MacCell(p.operand_bits, p.acc_bits, p.adder)
                m.submodules[f"pe_{r}_{c}"] = cell
                m.d.comb += [cell.en.eq(self._adv), cell.clear.eq(ctrl.clear), cell.neg.eq(ctrl.neg),
                             cell.bit.eq(bits[r]), cell.operand.eq(operands[c]),
                             self.acc[r * p.cols + c].eq(cell.acc)]

    def _parallel(self, m: Module, ctrl: TileController) -> None:
        p = self.params
        assert p.acc_bits is not None
        wregs = []
        for c in range(p.cols):
            wr = Signal(signed(p.weight_bits), name=f"wreg{c}")
            with m.If(ctrl.load):
                m.d.sync += wr.eq(self.weights[c])
            wregs.append(wr)
        aext = []
        for r in range(p.rows):
            ar = Signal(p.act_bits, name=f"areg{r}")
            with m.If(ctrl.load):
                m.d.sync += ar.eq(self.acts[r])
            aext.append(Cat(ar, ctrl.sign & ar[-1]).as_signed())   # two's complement or zero-extended
        for r in range(p.rows):
            for c in range(p.cols):
                cell = MulAccCell(p.weight_bits, p.act_bits + 1, p.acc_bits)
                m.submodules[f"pe_{r}_{c}"] = cell
                m.d.comb += [cell.en.eq(self._adv), cell.clear.eq(ctrl.clear), cell.weight.eq(wregs[c]),
                             cell.act.eq(aext[r]), self.acc[r * p.cols + c].eq(cell.acc)]
