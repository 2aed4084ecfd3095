"""amaranth.sim tests of rtl.pe.BitSerialPE against hwsim.golden (exhaustive small widths, long random runs)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from amaranth.sim import Simulator, SimulatorContext

from hwsim.golden import act_bits_lsb_first, bit_serial_mac
from rtl.pe import BitSerialPE


@dataclass(frozen=True)
class Mac:
    weight: int
    act: int
    precision: int
    signed: bool
    clear: bool


def _schedule(dut: BitSerialPE, macs: list[Mac], rng: random.Random | None, gap_rate: float,
              back_to_back: bool) -> list[dict[str, int]]:
    """Per-cycle input values: a start cycle per MAC (fused with the previous last bit when back to back)."""
    cycles: list[dict[str, int]] = []
    last_bit_cycle = False
    for mac in macs:
        fields = {"start": 1, "weight": mac.weight, "clear": int(mac.clear)}
        if dut.params.precision is None:
            fields["precision"] = mac.precision
        if dut.params.act_signed is None:
            fields["act_signed"] = int(mac.signed)
        if back_to_back and last_bit_cycle:
            cycles[-1].update(fields)
        else:
            cycles.append(dict(fields, valid=0))
        for bit in act_bits_lsb_first(mac.act, mac.precision):
            while rng is not None and rng.random() < gap_rate:
                cycles.append({"valid": 0, "act_bit": rng.getrandbits(1)})
            cycles.append({"valid": 1, "act_bit": bit})
        last_bit_cycle = True
    cycles.append({"valid": 0})
    return cycles


def run_pe(dut: BitSerialPE, macs: list[Mac], rng: random.Random | None = None, gap_rate: float = 0.0,
           back_to_back: bool = True) -> tuple[list[int], int]:
    """Simulate ``macs``; returns the accumulator seen with each ``done`` and the number of cycles run."""
    cycles = _schedule(dut, macs, rng, gap_rate, back_to_back)
    seen: list[int] = []
    defaults = {"start": 0, "clear": 0, "valid": 0, "act_bit": 0}

    async def bench(ctx: SimulatorContext) -> None:
        for values in cycles:
            for name, v in (defaults | values).items():
                ctx.set(getattr(dut, name), v)
            if values.get("start"):
                assert ctx.get(dut.ready) == 1, "start offered while the PE is not ready"
            await ctx.tick()
            if ctx.get(dut.done):
                seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen, len(cycles)


def expected(macs: list[Mac], acc_bits: int) -> list[int]:
    acc, out = 0, []
    for mac in macs:
        acc = bit_serial_mac(mac.weight, mac.act, mac.precision, 0 if mac.clear else acc, acc_bits, mac.signed)
        out.append(acc)
    return out


def act_range(precision: int, signed: bool) -> range:
    return range(-(1 << (precision - 1)), 1 << (precision - 1)) if signed else range(1 << precision)


@pytest.mark.parametrize(("wb", "ab"), list(itertools.product(range(1, 5), range(1, 5))))
def test_exhaustive_small_widths(wb: int, ab: int) -> None:
    """Every weight, activation, precision and sign mode for W, A <= 4, one MAC each (cleared)."""
    dut = BitSerialPE(wb, ab, acc_bits=wb + ab)
    macs = [Mac(w, a, p, s, True)
            for s in (True, False) for p in range(1, ab + 1) for a in act_range(p, s)
            for w in range(-(1 << (wb - 1)), 1 << (wb - 1))]
    seen, n_cycles = run_pe(dut, macs)
    assert seen == expected(macs, wb + ab)
    # back to back: one start cycle, then exactly p cycles per MAC, plus the trailing idle cycle
    assert n_cycles == 1 + sum(m.precision for m in macs) + 1


def test_exhaustive_dual_adder_4x4() -> None:
    dut = BitSerialPE(4, 4, acc_bits=8, adder="dual")
    macs = [Mac(w, a, p, s, True) for s in (True, False) for p in range(1, 5) for a in act_range(p, s)
            for w in range(-8, 8)]
    assert run_pe(dut, macs)[0] == expected(macs, 8)


def _random_macs(rng: random.Random, n: int, wb: int, ab: int, signed: bool | None, precision: int | None,
                 clear_rate: float) -> list[Mac]:
    macs = []
    for _ in range(n):
        p = precision if precision is not None else rng.randint(1, ab)
        s = signed if signed is not None else bool(rng.getrandbits(1))
        a = rng.choice(act_range(p, s))
        w = rng.randint(-(1 << (wb - 1)), (1 << (wb - 1)) - 1)
        macs.append(Mac(w, a, p, s, rng.random() < clear_rate))
    return macs


@pytest.mark.parametrize(("wb", "ab", "adder", "gap_rate"),
                         [(8, 8, "single", 0.0), (8, 8, "dual", 0.2), (16, 16, "single", 0.0), (16, 4, "single", 0.1)])
def test_random_long_runs_wrap(wb: int, ab: int, adder: str, gap_rate: float) -> None:
    """1200 random MACs into an accumulator just wide enough for one product, so it wraps many times."""
    rng = random.Random(wb * 1000 + ab * 10 + len(adder))
    acc_bits = wb + ab
    dut = BitSerialPE(wb, ab, acc_bits=acc_bits, adder=adder)
    macs = _random_macs(rng, 1200, wb, ab, None, None, clear_rate=0.002)
    seen, _ = run_pe(dut, macs, rng, gap_rate)
    want = expected(macs, acc_bits)
    assert seen == want
    exact = 0
    for mac in macs:  # the run really wrapped: the unbounded sum left the accumulator's range
        exact = (0 if mac.clear else exact) + mac.weight * mac.act
        if not -(1 << (acc_bits - 1)) <= exact < 1 << (acc_bits - 1):
            break
    else:
        pytest.fail("the random run never overflowed the accumulator")


@pytest.mark.parametrize(("precision", "signed"), [(3, True), (5, False), (1, True)])
def test_fixed_precision_and_mode(precision: int, signed: bool) -> None:
    """Fixed precision / sign mode: no port for them, same arithmetic."""
    dut = BitSerialPE(6, 5, precision=precision, act_signed=signed)
    assert "precision" not in dut.signature.members and "act_signed" not in dut.signature.members
    rng = random.Random(precision)
    macs = _random_macs(rng, 200, 6, 5, signed, precision, clear_rate=0.05)
    assert run_pe(dut, macs, rng, 0.1, back_to_back=False)[0] == expected(macs, dut.params.acc_bits or 0)


def test_out_of_range_runtime_precision_runs_max_bits() -> None:
    """A sampled precision of 0 runs all A bits instead of hanging the PE."""
    dut = BitSerialPE(4, 3, acc_bits=10)
    macs = [Mac(5, -3, 3, True, True)]
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        ctx.set(dut.start, 1)
        ctx.set(dut.clear, 1)
        ctx.set(dut.weight, 5)
        ctx.set(dut.precision, 0)
        ctx.set(dut.act_signed, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for bit in act_bits_lsb_first(-3, 3):
            ctx.set(dut.valid, 1)
            ctx.set(dut.act_bit, bit)
            await ctx.tick()
        ctx.set(dut.valid, 0)
        seen.append(ctx.get(dut.done))
        seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [1, expected(macs, 10)[0]]
