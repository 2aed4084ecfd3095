"""amaranth.sim tests of rtl.array.PEArray, every PE kind: tiles against hwsim.golden, cycles against
hwsim.timing (``pe_step`` of the kind, then ``fold_cycles``)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from amaranth.sim import Simulator, SimulatorContext

from hwsim.accelerator import Interconnect, PEKind, PESpec
from hwsim.golden import bit_serial_both_mac, tile_os, wrap
from hwsim.timing import fold_cycles, pe_step
from rtl.array import PEArray

Plan = tuple[int, int, bool, bool, int]   # steps, act precision, signed, accumulate, weight precision
Tile = tuple[Plan, np.ndarray, np.ndarray]


def run_tiles(dut: PEArray, tiles: list[Tile]) -> list[tuple[int, list[int]]]:
    """Back-to-back tiles; returns (t_done - t_start, accumulators) for each."""
    p = dut.params
    ports = dut.signature.members
    out: list[tuple[int, list[int]]] = []

    async def bench(ctx: SimulatorContext) -> None:
        cycle = 0
        for (steps, prec, signed, accumulate, wprec), acts, weights in tiles:
            while ctx.get(dut.busy):
                await ctx.tick()
                cycle += 1
            ctx.set(dut.start, 1)
            ctx.set(dut.steps, steps)
            if "precision" in ports:
                ctx.set(dut.precision, prec)
            if "weight_precision" in ports:
                ctx.set(dut.weight_precision, wprec)
            if "act_signed" in ports:
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


def predicted_cycles(dut: PEArray, plan: Plan) -> int:
    p = dut.params
    steps, prec, _signed, _acc, wprec = plan
    pe = PESpec(kind=PEKind(p.kind), max_weight_bits=p.weight_bits, max_act_bits=p.act_bits,
                acc_bits=p.weight_bits + p.act_bits)
    step_cycles, macs = pe_step(pe, wprec, prec)
    assert macs == 1
    return fold_cycles(Interconnect.BROADCAST, p.rows, p.cols, steps=steps, step_cycles=step_cycles)


def _range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def random_tiles(dut: PEArray, rng: random.Random, n: int, max_k: int) -> list[Tile]:
    p = dut.params
    tiles = []
    for i in range(n):
        steps, prec, signed = rng.randint(1, max_k), rng.randint(1, p.act_bits), bool(rng.getrandbits(1))
        wprec = rng.randint(1, p.weight_bits) if p.kind == "serial_both" else p.weight_bits
        alo, ahi = _range(prec, signed)
        wlo, whi = _range(wprec, True)
        acts = np.array([[rng.randint(alo, ahi) for _ in range(steps)] for _ in range(p.rows)], dtype=np.int64)
        weights = np.array([[rng.randint(wlo, whi) for _ in range(p.cols)] for _ in range(steps)], dtype=np.int64)
        tiles.append(((steps, prec, signed, i % 3 == 2, wprec), acts, weights))
    return tiles


def check_tiles(dut: PEArray, tiles: list[Tile]) -> None:
    acc_bits = dut.params.acc_bits or 0
    got = run_tiles(dut, tiles)
    assert len(got) == len(tiles)
    prev = [0] * (dut.params.rows * dut.params.cols)
    for (plan, acts, weights), (cycles, acc) in zip(tiles, got, strict=True):
        want = [wrap(int(v) + (s if plan[3] else 0), acc_bits)
                for v, s in zip(tile_os(acts, weights, acc_bits=acc_bits).reshape(-1), prev, strict=True)]
        assert acc == want
        assert cycles == predicted_cycles(dut, plan)
        prev = want


@pytest.mark.parametrize("kind", ["serial_act", "serial_both", "parallel"])
@pytest.mark.parametrize(("rows", "cols", "wb", "ab"), [(2, 3, 4, 4), (1, 1, 8, 8), (3, 2, 16, 16), (2, 2, 1, 1)])
def test_tiles_match_golden_and_timing(kind: str, rows: int, cols: int, wb: int, ab: int) -> None:
    rng = random.Random(rows * 100 + wb)
    dut = PEArray(rows, cols, wb, ab, max_steps=16, kind=kind)
    n, max_k = (6, 6) if kind == "serial_both" and wb >= 8 else (12, 16)   # pw*pa cycles per step
    check_tiles(dut, random_tiles(dut, rng, n, max_k))


@pytest.mark.parametrize(("wb", "ab"), list(itertools.product(range(1, 5), range(1, 5))))
def test_serial_both_exhaustive_small_widths(wb: int, ab: int) -> None:
    """Every weight (one per column), activation, both precisions and sign mode for W, A <= 4, one MAC per
    PE per tile, into an accumulator of exactly W + A bits; values against bit_serial_both_mac and the
    exact product, cycles against pe_step(serial_both) = pw * pa per step."""
    cols = 1 << wb
    dut = PEArray(1, cols, wb, ab, max_steps=1, kind="serial_both")
    assert dut.params.acc_bits == wb + ab
    tiles: list[Tile] = []
    for signed, wprec, prec in itertools.product((True, False), range(1, wb + 1), range(1, ab + 1)):
        wlo, whi = _range(wprec, True)
        ws = [wlo + c % (whi - wlo + 1) for c in range(cols)]
        alo, ahi = _range(prec, signed)
        for a in range(alo, ahi + 1):
            tiles.append(((1, prec, signed, False, wprec), np.array([[a]]), np.array([ws])))
    got = run_tiles(dut, tiles)
    assert len(got) == len(tiles)
    for (plan, acts, weights), (cycles, acc) in zip(tiles, got, strict=True):
        _k, prec, signed, _acc, wprec = plan
        a = int(acts[0, 0])
        want = [bit_serial_both_mac(int(w), a, wprec, prec, 0, wb + ab, signed) for w in weights[0]]
        assert want == [int(w) * a for w in weights[0]]
        assert acc == want, (plan, a)
        assert cycles == 1 + wprec * prec == predicted_cycles(dut, plan)


@pytest.mark.parametrize(("wb", "ab"), [(1, 1), (2, 3), (3, 2), (4, 4)])
def test_parallel_exhaustive_small_widths(wb: int, ab: int) -> None:
    """Every weight x activation (signed and unsigned) in one cycle per step, accumulator of W + A bits."""
    cols = 1 << wb
    dut = PEArray(1, cols, wb, ab, max_steps=1, kind="parallel")
    ws = list(range(-(1 << (wb - 1)), 1 << (wb - 1)))
    tiles: list[Tile] = [((1, ab, signed, False, wb), np.array([[a]]), np.array([ws]))
                         for signed in (True, False) for a in range(_range(ab, signed)[0], _range(ab, signed)[1] + 1)]
    got = run_tiles(dut, tiles)
    for (plan, acts, _w), (cycles, acc) in zip(tiles, got, strict=True):
        assert acc == [w * int(acts[0, 0]) for w in ws]
        assert cycles == 2 == predicted_cycles(dut, plan)


def test_serial_both_fixed_precisions() -> None:
    """Fixed weight / activation precision and sign mode: no ports for them, same arithmetic and cycles."""
    dut = PEArray(2, 2, 6, 5, max_steps=8, kind="serial_both", precision=3, weight_precision=4, act_signed=True)
    ports = dut.signature.members
    assert not {"precision", "weight_precision", "act_signed"} & set(ports)
    rng = random.Random(5)
    tiles = []
    for i in range(6):
        k = rng.randint(1, 8)
        acts = np.array([[rng.randint(-4, 3) for _ in range(k)] for _ in range(2)], dtype=np.int64)
        weights = np.array([[rng.randint(-8, 7) for _ in range(2)] for _ in range(k)], dtype=np.int64)
        tiles.append(((k, 3, True, i % 2 == 1, 4), acts, weights))

    got = run_tiles(dut, tiles)
    prev = [0] * 4
    for (plan, acts, weights), (cycles, acc) in zip(tiles, got, strict=True):
        want = [int(v) + (s if plan[3] else 0) for v, s in zip((acts @ weights).reshape(-1), prev, strict=True)]
        assert acc == want and cycles == 1 + plan[0] * 12
        prev = want
