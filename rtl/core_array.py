"""The accelerator core's PE array: one set of PEs for both dataflows the core runs.

GEMM placement (``hwsim.kinds.DATAFLOW_AXES``):

* **OS** (rows <- output pixels, columns <- filters, time <- the reduction): row ``r``'s activation and
  column ``c``'s weight are broadcast and every PE accumulates over the fold's steps, as in
  :class:`rtl.array.PEArray` (the tile array verified on its own), whose per-kind structure this follows.
* **WS** (rows <- the reduction, columns <- filters, time <- output pixels): at fold start PE ``(r, c)``
  latches its own weight ``pe_weights[r*C + c]``; every step it computes one product (the first bit of a
  step restarts it) and a column adder tree sums the ``R`` products of each column. ``colsum`` holds those
  sums in the cycles where ``step_out`` is high: the first cycle of the next step and the ``done`` cycle.

``results`` holds a fold's outputs for the drain while the next fold computes: an OS fold's ``R*C``
accumulators, loaded in its last cycle with the values the accumulators take at its end (so they are there
in the ``done`` cycle itself), and after a WS step its ``C`` column sums (the first ``C``), loaded in the
``step_out`` cycle. They change only then, so they keep a fold's outputs until the next fold's end.

A PE is one accumulator for both modes, so a core with OS and WS holds one array, not two:

* ``serial_act``: OS adds ``bit * (weight << i)`` (a column shift register, LSB first); WS uses Horner's
  rule, MSB first: ``acc = 2*acc + bit*weight`` with the PE's fold weight itself as the operand (no
  shift register per PE); the first bit, the sign bit of a signed activation, is subtracted.
* ``serial_both``: weight bit ``j`` times activation bit ``i``: the one-hot ``1 << (i+j)`` gated by the
  weight's current bit, from a shift register per column (OS) or per PE (WS).
* ``parallel``: ``acc + w*a`` (OS), ``w*a`` (WS).

All arithmetic wraps at ``acc_bits``, so the order of the terms does not change a result. The mode is
sampled with ``start`` (``ws``) and kept for the fold: ``os_done`` and ``step_out`` report the fold's own
mode even when the fold ends after the phase that started it. One :class:`rtl.control.TileController`
sequences both modes: a fold takes ``1 + steps*s`` cycles.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .adder import extend, mac_sum, mac_value
from .control import TileController
from .params import ArrayParams

__all__ = ["CoreArray"]


class CoreArray(wiring.Component):
    """``rows x cols`` PEs of one kind running the folds of ``dataflows`` (``os``, ``ws`` or both)."""

    def __init__(self, rows: int, cols: int, weight_bits: int, act_bits: int, *, acc_bits: int, max_steps: int,
                 kind: str, dataflows: tuple[str, ...]) -> None:
        self.params = ArrayParams(rows, cols, weight_bits, act_bits, acc_bits, max_steps, "single", None, None,
                                  kind, None, owner="CoreArray")
        if not dataflows or set(dataflows) - {"os", "ws"}:
            raise ValueError(f"CoreArray.dataflows must be a non-empty subset of ['os', 'ws'], not {dataflows!r}")
        self.has_os, self.has_ws = "os" in dataflows, "ws" in dataflows
        sig: dict[str, object] = {
            "start": In(1), "ws": In(1), "steps": In(range(1, max_steps + 1)), "act_signed": In(1), "hold": In(1),
            "weights": In(data.ArrayLayout(signed(weight_bits), cols)),
            "acts": In(data.ArrayLayout(unsigned(act_bits), rows)),
            "load": Out(1), "busy": Out(1), "adv": Out(1), "want_load": Out(1), "last": Out(1),
            "os_done": Out(1), "step_out": Out(1),
        }
        if kind != "parallel":
            sig["precision"] = In(range(1, act_bits + 1))
        if kind == "serial_both":
            sig["weight_precision"] = In(range(1, weight_bits + 1))
        super().__init__(sig)
        # The per-PE values are lists of signals, not array-layout ports: a port is one wide vector that a
        # simulator packs and unpacks element by element in every cycle (about 1,100 instructions per
        # cycle of the 16x16 core under Verilator); the parent reads and drives these signals directly.
        self.pe_weights = [Signal(signed(weight_bits), name=f"pe_weight{i}") for i in range(rows * cols)]
        self.accs = [Signal(signed(acc_bits), name=f"acc{i}", reset_less=True) for i in range(rows * cols)]
        self.colsum = [Signal(signed(acc_bits), name=f"colsum{c}") for c in range(cols)]
        self.results = [Signal(signed(acc_bits), name=f"res{i}", reset_less=True) for i in range(rows * cols)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.params
        R, Cc, W, A = p.rows, p.cols, p.weight_bits, p.act_bits
        ab = p.acc_bits
        assert ab is not None
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
        accept = self.start & ~ctrl.busy
        mode: Value
        if self.has_os and self.has_ws:
            mode = Signal(name="mode_ws")
            with m.If(accept):
                m.d.sync += mode.eq(self.ws)
            accumulate: Value = self.ws
        else:
            mode = accumulate = C(int(self.has_ws), 1)
        m.d.comb += [ctrl.start.eq(self.start), ctrl.accumulate.eq(accumulate), ctrl.steps.eq(self.steps),
                     ctrl.act_signed.eq(self.act_signed), ctrl.hold.eq(self.hold),
                     self.load.eq(ctrl.load), self.busy.eq(ctrl.busy), self.adv.eq(ctrl.adv),
                     self.want_load.eq(ctrl.want_load),
                     self.last.eq(ctrl.last), self.os_done.eq(ctrl.done & ~mode)]
        have_prev = Signal()      # WS: a step has computed, so the first bit of the next one outputs its sums
        with m.If(accept):
            m.d.sync += have_prev.eq(0)
        with m.Elif(ctrl.load):
            m.d.sync += have_prev.eq(1)
        m.d.comb += self.step_out.eq(mode & (ctrl.done | (ctrl.adv & ctrl.first & have_prev)))

        # data registers without reset (each is written before it is read): a reset would be one more condition
        # per register in every simulated cycle
        wst = [Signal(signed(W), name=f"wst{i}", reset_less=True) for i in range(R * Cc)] if self.has_ws else []
        with m.If(accept):
            m.d.sync += [wst[i].eq(self.pe_weights[i]) for i in range(len(wst))]
        accs = self.accs
        {"serial_act": self._serial_act, "serial_both": self._serial_both,
         "parallel": self._parallel}[p.kind](m, ctrl, mode, accept, wst, accs)
        for c in range(Cc):      # every partial sum wrapped to acc_bits: exact, and no sign extensions
            total: Value = accs[c]
            for r in range(1, R):
                total = (total + accs[r * Cc + c])[:ab].as_signed()
            m.d.comb += self.colsum[c].eq(total)
            if self.has_ws:       # the sum itself, not colsum: a simulator then adds it up only when read
                with m.If(self.step_out):
                    m.d.sync += self.results[c].eq(total)
        return m

    @staticmethod
    def _reg(m: Module, ctrl: TileController, name: str, shape: object, value: Value,
             step: Callable[[Signal], Value] | None = None, when: Value | None = None) -> Signal:
        """A register loaded with ``value`` at every ``load``, else set to ``step(reg)`` when ``when``."""
        reg = Signal(shape, name=name)
        with m.If(ctrl.load):
            m.d.sync += reg.eq(value)
        if step is not None:
            with m.Elif(when):
                m.d.sync += reg.eq(step(reg))
        return reg

    def _result(self, m: Module, ctrl: TileController, mode: Value, i: int, nxt: Value) -> None:
        """``results[i]`` takes ``nxt``, the accumulator's next value, in an OS fold's last cycle (see the
        module docstring): loaded from the adder, not the accumulator, so the drain needs no multiplexer
        between the accumulators in the ``done`` cycle and a copy of them afterwards."""
        with m.If(ctrl.last & ~mode):
            m.d.sync += self.results[i].eq(nxt)

    def _pes(self, m: Module, ctrl: TileController, mode: Value, accs: list[Signal],
             operands: list[Value], bits: list[Value], neg: Value, horner: bool) -> None:
        """The bit-serial PEs: ``acc = base + bit * (neg ? -operand : operand)`` when the array advances;
        ``base`` is 0 at a WS step's first bit, ``2*acc`` in a WS step with ``horner``, else ``acc``. OS
        folds are zeroed at their start (``clear``)."""
        ab = self.params.acc_bits
        assert ab is not None
        restart = Signal(name="ws_restart")
        m.d.comb += restart.eq(mode & ctrl.first)
        for i, acc in enumerate(accs):
            r = i // self.params.cols
            if horner and self.has_ws:
                base: Value = Mux(restart, 0, Mux(mode, (acc << 1)[:ab], acc.as_unsigned()))[:ab].as_signed()
            else:
                base = Mux(restart, 0, acc).as_signed() if self.has_ws else acc
            nxt = mac_sum(m, base, operands[i], bits[r], neg, "single")
            with m.If(ctrl.clear):
                m.d.sync += acc.eq(0)
            with m.Elif(ctrl.adv):
                m.d.sync += acc.eq(nxt)
            # the sum written again: Yosys merges the two copies, and a simulator computes this one only
            # in the cycles that load it (the accumulator's copy stays inlined in its own update)
            self._result(m, ctrl, mode, i, mac_value(base, operands[i], bits[r], neg, "single"))

    def _serial_act(self, m: Module, ctrl: TileController, mode: Value, accept: Value, wst: list[Signal],
                    accs: list[Signal]) -> None:
        p = self.params
        R, Cc, A = p.rows, p.cols, p.act_bits
        lsb = [self._reg(m, ctrl, f"ashift{r}", A, self.acts[r], lambda sr: sr >> 1, ctrl.adv) for r in range(R)]
        bits: list[Value] = [sr[0] for sr in lsb]
        neg: Value = ctrl.neg
        if self.has_ws:       # Horner: the activation MSB first, its p bits moved to the top of the register
            prec = Mux((self.precision >= 1) & (self.precision <= A), self.precision, A)
            up = Signal(range(A + 1), name="ws_align")
            m.d.comb += up.eq(A - prec)
            msb = [self._reg(m, ctrl, f"hshift{r}", A, (self.acts[r] << up)[:A], lambda sr: (sr << 1)[:A], ctrl.adv)
                   for r in range(R)]
            bits = []
            for r in range(R):
                b = Signal(name=f"bit{r}")
                m.d.comb += b.eq(Mux(mode, msb[r][-1], lsb[r][0]))
                bits.append(b)
            neg = Signal(name="neg")
            m.d.comb += neg.eq(Mux(mode, ctrl.sign & ctrl.first, ctrl.neg))
        col: list[Value] = []
        if self.has_os:
            col = [self._reg(m, ctrl, f"wshift{c}", signed(p.operand_bits), self.weights[c], lambda ws: ws << 1, ctrl.adv)
                   for c in range(Cc)]
        ab = p.acc_bits
        assert ab is not None
        colx = [Signal(signed(ab), name=f"wshift{c}_x") for c in range(len(col))]   # a column's operand
        m.d.comb += [x.eq(extend(c, ab)) for x, c in zip(colx, col, strict=True)]  # extended once, not per PE
        operands: list[Value] = []
        for i in range(R * Cc):
            if self.has_os and self.has_ws:
                op = Signal(signed(ab), name=f"op{i}")
                m.d.comb += op.eq(Mux(mode, extend(wst[i], ab), colx[i % Cc]))
                operands.append(op)
            else:
                operands.append(wst[i] if self.has_ws else colx[i % Cc])
        self._pes(m, ctrl, mode, accs, operands, bits, neg, horner=True)

    def _serial_both(self, m: Module, ctrl: TileController, mode: Value, accept: Value, wst: list[Signal],
                     accs: list[Signal]) -> None:
        p = self.params
        R, Cc, W, A = p.rows, p.cols, p.weight_bits, p.act_bits
        width = W + A - 1       # positions i + j = 0 .. W+A-2
        onehot = Signal(width)
        m.d.comb += onehot.eq(C(1, width) << (ctrl.a_idx + ctrl.w_idx))

        def gate(name: str, weight: Value) -> Signal:
            wsr = self._reg(m, ctrl, f"{name}_bits", W, weight, lambda r: r >> 1, ctrl.w_next)
            g = Signal(width, name=f"{name}_onehot")
            m.d.comb += g.eq(Mux(wsr[0], onehot, 0))
            return g

        col = [gate(f"w{c}", self.weights[c]) for c in range(Cc)] if self.has_os else []
        pe = [gate(f"pe{i}", Mux(accept, self.pe_weights[i], wst[i])) for i in range(len(wst))]
        operands: list[Value] = []
        for i in range(R * Cc):
            if self.has_os and self.has_ws:
                op = Signal(width, name=f"op{i}")
                m.d.comb += op.eq(Mux(mode, pe[i], col[i % Cc]))
                operands.append(op)
            else:
                operands.append(pe[i] if self.has_ws else col[i % Cc])
        areg = [self._reg(m, ctrl, f"areg{r}", A, self.acts[r]) for r in range(R)]
        bits: list[Value] = [ar.bit_select(ctrl.a_idx, 1) for ar in areg]
        self._pes(m, ctrl, mode, accs, [o.as_unsigned() for o in operands], bits, ctrl.neg, horner=False)

    def _parallel(self, m: Module, ctrl: TileController, mode: Value, accept: Value, wst: list[Signal],
                  accs: list[Signal]) -> None:
        p = self.params
        R, Cc, W, A = p.rows, p.cols, p.weight_bits, p.act_bits
        col = [self._reg(m, ctrl, f"wreg{c}", signed(W), self.weights[c])
               for c in range(Cc)] if self.has_os else []
        areg = [self._reg(m, ctrl, f"areg{r}", A, self.acts[r]) for r in range(R)]
        aext = [Cat(ar, ctrl.sign & ar[-1]).as_signed() for ar in areg]   # two's complement or zero-extended
        for i, acc in enumerate(accs):
            r, c = divmod(i, Cc)
            if self.has_os and self.has_ws:
                w: Value = Mux(mode, wst[i], col[c])
                base: Value = Mux(mode, 0, acc)
            else:
                w, base = (wst[i], C(0, 1)) if self.has_ws else (col[c], acc)
            nxt = base + w * aext[r]
            with m.If(ctrl.clear):
                m.d.sync += acc.eq(0)
            with m.Elif(ctrl.adv):
                m.d.sync += acc.eq(nxt)
            self._result(m, ctrl, mode, i, nxt)
