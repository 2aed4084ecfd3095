"""amaranth.sim tests of rtl.core_array.CoreArray's result registers, the values the core's drain reads: an
OS fold's accumulators from its ``done`` cycle until the next fold's last cycle, a WS step's column sums from
the cycle after its ``step_out``. Folds run back to back (each starts in the ``done`` cycle of the one
before), for every PE kind, against integer dot products."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator, SimulatorContext

from rtl.core_array import CoreArray

R, C, W, A, ACC = 2, 3, 4, 4, 16


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


@dataclass(frozen=True)
class Fold:
    """One fold's operands: per step the row activations (unsigned codes) and, for OS, the column weights;
    for WS the fold's weight of each PE."""

    ws: bool
    acts: list[list[int]]
    cols: list[list[int]] = field(default_factory=list)
    pe_w: list[int] = field(default_factory=list)


def _fold(rng: random.Random, ws: bool, steps: int) -> Fold:
    def w() -> int:
        return rng.randrange(-(1 << (W - 1)), 1 << (W - 1))

    acts = [[rng.randrange(1 << A) for _ in range(R)] for _ in range(steps)]
    if ws:
        return Fold(True, acts, pe_w=[w() for _ in range(R * C)])
    return Fold(False, acts, cols=[[w() for _ in range(C)] for _ in range(steps)])


def _expected(fold: Fold, signed_act: bool) -> list[list[int]]:
    """OS: one list, the R*C accumulators. WS: per step the C column sums."""
    def a(v: int) -> int:
        return _signed(v, A) if signed_act else v

    if not fold.ws:
        return [[sum(fold.cols[k][c] * a(fold.acts[k][r]) for k in range(len(fold.acts)))
                 for r in range(R) for c in range(C)]]
    return [[sum(fold.pe_w[r * C + c] * a(step[r]) for r in range(R)) for c in range(C)] for step in fold.acts]


@pytest.mark.parametrize("kind", ["serial_act", "serial_both", "parallel"])
def test_results_hold_each_folds_outputs_until_the_next_fold_ends(kind: str) -> None:
    rng = random.Random(7)
    signed_act = True
    folds = [_fold(rng, ws, rng.randint(1, 4)) for ws in (False, False, True, False, True, True, False)]
    wants = [_expected(f, signed_act) for f in folds]
    dut = CoreArray(R, C, W, A, acc_bits=ACC, max_steps=8, kind=kind, dataflows=("os", "ws"))
    seen: list[str] = []
    outputs = [0] * len(folds)       # os_done cycles (OS) / step_out cycles (WS) seen per fold

    async def bench(ctx: SimulatorContext) -> None:
        ctx.set(dut.act_signed, int(signed_act))
        ctx.set(dut.hold, 0)
        if kind != "parallel":
            ctx.set(dut.precision, A)
        if kind == "serial_both":
            ctx.set(dut.weight_precision, W)
        nxt, cur, step = 0, -1, 0
        expect: list[int | None] = [None] * (R * C)    # what the registers hold in this cycle
        for cycle in range(2000):
            busy = ctx.get(dut.busy)
            res = [ctx.get(x) for x in dut.results]
            bad = [j for j, e in enumerate(expect) if e is not None and res[j] != e]
            if bad:
                seen.append(f"cycle {cycle}: results {res} != {expect}")
            if cur >= 0:     # this cycle's outputs are the running (or just finished) fold's
                want = wants[cur]
                if ctx.get(dut.os_done):
                    outputs[cur] += 1
                    if res != want[0]:
                        seen.append(f"fold {cur}: results {res} != {want[0]} in its done cycle")
                if ctx.get(dut.step_out):
                    got = [ctx.get(x) for x in dut.colsum]
                    k = outputs[cur]
                    if k >= len(want) or got != want[k]:
                        seen.append(f"fold {cur}: column sums {got} at its step_out {k}, want {want[k:k + 1]}")
                    else:
                        expect[:C] = want[k]          # in the registers from the next cycle on
                    outputs[cur] += 1
                if ctx.get(dut.last) and not folds[cur].ws:
                    expect = list(want[0])
            if not busy and nxt == len(folds) and outputs[cur] > 0:
                break
            start = not busy and nxt < len(folds)
            if start:                         # back to back: a fold starts in the done cycle of the one before
                cur, step, nxt = nxt, 0, nxt + 1
                fold = folds[cur]
                ctx.set(dut.ws, int(fold.ws))
                ctx.set(dut.steps, len(fold.acts))
                for j, w in enumerate(fold.pe_w):
                    ctx.set(dut.pe_weights[j], w)
            ctx.set(dut.start, int(start))
            fold = folds[cur]
            k = min(step, len(fold.acts) - 1)      # the operands the next load latches
            for r in range(R):
                ctx.set(dut.acts[r], fold.acts[k][r])
            for c, w in enumerate(fold.cols[k] if fold.cols else []):
                ctx.set(dut.weights[c], w)
            load = ctx.get(dut.load)
            await ctx.tick()
            step += load
        else:
            seen.append("the folds did not finish within 2000 cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == []
    assert outputs == [len(w) for w in wants]     # one done per OS fold, a step_out per WS step
