"""amaranth.sim tests of rtl.array.PEArray: tiles against hwsim.golden.tile_os, cycles against hwsim.timing."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator, SimulatorContext

from hwsim.accelerator import Interconnect
from hwsim.golden import tile_os, wrap
from hwsim.timing import fold_cycles
from rtl.array import PEArray

Plan = tuple[int, int, bool, bool]   # steps, precision, signed, accumulate


def run_tiles(dut: PEArray, tiles: list[tuple[Plan, np.ndarray, np.ndarray]]) -> list[tuple[int, list[int]]]:
    """Back-to-back tiles; returns (t_done - t_start, accumulators) for each."""
    p = dut.params
    out: list[tuple[int, list[int]]] = []

    async def bench(ctx: SimulatorContext) -> None:
        cycle = 0
        for (steps, prec, signed, accumulate), acts, weights in tiles:
            while ctx.get(dut.busy):
                await ctx.tick()
                cycle += 1
            ctx.set(dut.start, 1)
            ctx.set(dut.steps, steps)
            ctx.set(dut.precision, prec)
            ctx.set(dut.act_signed, int(signed))
            ctx.set(dut.accumulate, int(accumulate))
            t_start = cycle
            k = 0
            while True:
                if ctx.get(dut.load):
                    for c in range(p.cols):
                        ctx.set(dut.weights[c], int(weights[k, c]))
                    for r in range(p.rows):
                        ctx.set(dut.acts[r], int(acts[r, k]) & ((1 << p.act_bits) - 1))
                    k += 1
                done = ctx.get(dut.done)
                if done and cycle > t_start:
                    out.append((cycle - t_start, [ctx.get(dut.acc[i]) for i in range(p.rows * p.cols)]))
                    break
                await ctx.tick()
                ctx.set(dut.start, 0)
                cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize(("rows", "cols", "wb", "ab"), [(2, 3, 4, 4), (1, 1, 8, 8), (3, 2, 16, 16), (2, 2, 1, 1)])
def test_tiles_match_golden_and_timing(rows: int, cols: int, wb: int, ab: int) -> None:
    rng = random.Random(rows * 100 + wb)
    dut = PEArray(rows, cols, wb, ab, max_steps=16)
    tiles = []
    for i in range(12):
        steps, prec, signed = rng.randint(1, 16), rng.randint(1, ab), bool(rng.getrandbits(1))
        lo, hi = (-(1 << (prec - 1)), (1 << (prec - 1)) - 1) if signed else (0, (1 << prec) - 1)
        acts = np.array([[rng.randint(lo, hi) for _ in range(steps)] for _ in range(rows)], dtype=np.int64)
        weights = np.array([[rng.randint(-(1 << (wb - 1)), (1 << (wb - 1)) - 1) for _ in range(cols)]
                            for _ in range(steps)], dtype=np.int64)
        tiles.append(((steps, prec, signed, i % 3 == 2), acts, weights))
    got = run_tiles(dut, tiles)
    assert len(got) == len(tiles)
    prev = [0] * (rows * cols)
    for ((steps, prec, _signed, accumulate), acts, weights), (cycles, acc) in zip(tiles, got, strict=True):
        want = [wrap(int(v) + (s if accumulate else 0), dut.params.acc_bits or 0)
                for v, s in zip(tile_os(acts, weights, acc_bits=dut.params.acc_bits or 0).reshape(-1), prev,
                                strict=True)]
        assert acc == want
        assert cycles == fold_cycles(Interconnect.BROADCAST, rows, cols, steps=steps, step_cycles=prec)
        prev = want
