"""The weight-stationary array of the accelerator core: every PE keeps its own weight for a whole fold.

GEMM placement (``hwsim.kinds.DATAFLOW_AXES`` for WS): rows <- the reduction K, columns <- filters N,
time <- output pixels P. At fold start (the load cycle) PE ``(r, c)`` latches ``pe_weights[r*C + c]``;
at every step the activation of row ``r`` (pixel t's reduction element ``k0 + r``) is broadcast along
the row, each PE computes its product (bit-serially for ``serial_act`` / ``serial_both``, in one cycle
for ``parallel``; the first bit of a step restarts the accumulator), and a column adder tree sums the R
products of each column. ``colsum`` holds those sums in the cycles where ``step_out`` is high: the first
cycle of the next step and the ``done`` cycle. The sequencer is :class:`rtl.control.TileController`
(``steps`` = P), so a fold takes ``1 + P*s`` cycles, the same protocol as the output-stationary array.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cell import MacCell
from .control import TileController
from .params import ArrayParams

__all__ = ["WSArray"]


class WSArray(wiring.Component):
    def __init__(self, rows: int, cols: int, weight_bits: int, act_bits: int, *, acc_bits: int, max_steps: int,
                 kind: str) -> None:
        self.params = ArrayParams(rows, cols, weight_bits, act_bits, acc_bits, max_steps, "single", None, None,
                                  kind, None, owner="WSArray")
        sig: dict[str, object] = {
            "start": In(1), "steps": In(range(1, max_steps + 1)), "act_signed": In(1), "hold": In(1),
            "pe_weights": In(data.ArrayLayout(signed(weight_bits), rows * cols)),
            "acts": In(data.ArrayLayout(unsigned(act_bits), rows)),
            "load": Out(1), "busy": Out(1), "done": Out(1), "want_load": Out(1), "last": Out(1), "adv": Out(1),
            "step_out": Out(1), "colsum": Out(data.ArrayLayout(signed(acc_bits), cols)),
        }
        if kind != "parallel":
            sig["precision"] = In(range(1, act_bits + 1))
        if kind == "serial_both":
            sig["weight_precision"] = In(range(1, weight_bits + 1))
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.params
        R, Cc, W, A = p.rows, p.cols, p.weight_bits, p.act_bits
        acc_bits = p.acc_bits
        assert acc_bits is not None
        if p.kind == "parallel":
            ctrl = TileController(1, p.max_steps, 1, None, stall=True)
        elif p.kind == "serial_both":
            ctrl = TileController(A, p.max_steps, None, None, weight_bits=W, stall=True)
            m.d.comb += ctrl.weight_precision.eq(self.weight_precision)
        else:
            ctrl = TileController(A, p.max_steps, None, None, stall=True)
        m.submodules.ctrl = ctrl
        if p.kind != "parallel":
            m.d.comb += ctrl.precision.eq(self.precision)
        m.d.comb += [ctrl.start.eq(self.start), ctrl.accumulate.eq(1), ctrl.steps.eq(self.steps),
                     ctrl.act_signed.eq(self.act_signed), ctrl.hold.eq(self.hold),
                     self.load.eq(ctrl.load), self.busy.eq(ctrl.busy), self.done.eq(ctrl.done),
                     self.want_load.eq(ctrl.want_load), self.last.eq(ctrl.last), self.adv.eq(ctrl.adv)]
        accept = self.start & ~ctrl.busy
        have_prev = Signal()
        with m.If(accept):
            m.d.sync += have_prev.eq(0)
        with m.Elif(ctrl.load):
            m.d.sync += have_prev.eq(1)
        m.d.comb += self.step_out.eq(ctrl.done | (ctrl.adv & ctrl.first & have_prev))

        wreg = [Signal(signed(W), name=f"wst{i}") for i in range(R * Cc)]
        with m.If(accept):
            m.d.sync += [wreg[i].eq(self.pe_weights[i]) for i in range(R * Cc)]
        w_now = [Mux(accept, self.pe_weights[i], wreg[i]) for i in range(R * Cc)]   # the fold's weights
        areg = [Signal(A, name=f"wsa{r}") for r in range(R)]
        for r in range(R):
            with m.If(ctrl.load):
                m.d.sync += areg[r].eq(self.acts[r])
        accs: list[Value] = []
        if p.kind == "parallel":
            for i in range(R * Cc):
                r = i // Cc
                acc = Signal(signed(acc_bits), name=f"wsp{i}")
                act = Cat(areg[r], ctrl.sign & areg[r][-1]).as_signed()
                with m.If(ctrl.adv):
                    m.d.sync += acc.eq(wreg[i] * act)
                accs.append(acc)
        elif p.kind == "serial_act":
            asr = [Signal(A, name=f"wsr{r}") for r in range(R)]   # activation bits, LSB first
            for r in range(R):
                with m.If(ctrl.load):
                    m.d.sync += asr[r].eq(self.acts[r])
                with m.Elif(ctrl.adv):
                    m.d.sync += asr[r].eq(asr[r] >> 1)
            for i in range(R * Cc):
                r = i // Cc
                ws = Signal(signed(p.operand_bits), name=f"wss{i}")
                with m.If(ctrl.load):
                    m.d.sync += ws.eq(w_now[i])
                with m.Elif(ctrl.adv):
                    m.d.sync += ws.eq(ws << 1)
                cell = MacCell(p.operand_bits, acc_bits, "single", gated_clear=True)
                m.submodules[f"pe_{i}"] = cell
                m.d.comb += [cell.en.eq(ctrl.adv), cell.clear.eq(ctrl.first), cell.neg.eq(ctrl.neg),
                             cell.bit.eq(asr[r][0]),
                             cell.operand.eq(ws)]
                accs.append(cell.acc)
        else:
            width = W + A - 1
            onehot = Signal(width)
            m.d.comb += onehot.eq(C(1, width) << (ctrl.a_idx + ctrl.w_idx))
            for i in range(R * Cc):
                r = i // Cc
                wsr = Signal(W, name=f"wsb{i}")
                with m.If(ctrl.load):
                    m.d.sync += wsr.eq(w_now[i])
                with m.Elif(ctrl.w_next):
                    m.d.sync += wsr.eq(wsr >> 1)
                cell = MacCell(p.operand_bits, acc_bits, "single", gated_clear=True)
                m.submodules[f"pe_{i}"] = cell
                m.d.comb += [cell.en.eq(ctrl.adv), cell.clear.eq(ctrl.first), cell.neg.eq(ctrl.neg),
                             cell.bit.eq(areg[r].bit_select(ctrl.a_idx, 1)),
                             cell.operand.eq(Mux(wsr[0], onehot, 0))]
                accs.append(cell.acc)
        for c in range(Cc):
            total: Value = C(0, 1)
            for r in range(R):
                total = total + accs[r * Cc + c]
            m.d.comb += self.colsum[c].eq(total[:acc_bits])
        return m

