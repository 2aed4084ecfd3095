"""cocotb benches (sims/tb) on the EXPORTED Verilog: a broad matrix on Icarus, long random runs on
Verilator, and the cycle agreement with hwsim.timing.fold_cycles (the protocol is in rtl/control.py)."""

from __future__ import annotations

import random

import pytest

from hwsim.accelerator import Interconnect, PEKind, PESpec
from hwsim.timing import BROADCAST_DRAIN_CYCLES, BROADCAST_START_CYCLES, fold_cycles, pe_step
from rtl.params import ArrayParams
from sims.tb.checker import check
from sims.tb.model import BenchConfig, TilePlan, make_tile
from sims.tb.monitor import Completion
from sims.tb.runner import run_tile_bench


def _plans(rng: random.Random, n: int, max_steps: int, act_bits: int, accumulate_rate: float) -> list[TilePlan]:
    return [TilePlan(rng.randint(1, max_steps), rng.randint(1, act_bits), bool(rng.getrandbits(1)),
                     i > 0 and rng.random() < accumulate_rate) for i in range(n)]


ICARUS_MATRIX = [  # rows, cols, W, A, max_steps
    (1, 1, 4, 4, 8), (2, 3, 8, 8, 32), (3, 2, 3, 5, 64), (4, 4, 2, 2, 4), (2, 2, 16, 16, 16), (1, 4, 1, 1, 8),
]


@pytest.mark.parametrize(("rows", "cols", "wb", "ab", "max_steps"), ICARUS_MATRIX)
def test_icarus_matrix(rows: int, cols: int, wb: int, ab: int, max_steps: int) -> None:
    rng = random.Random(rows * 1000 + cols * 100 + wb * 10 + ab)
    params = ArrayParams(rows, cols, wb, ab, max_steps=max_steps)
    # every precision in both sign modes, then random tiles (some accumulating onto the previous result)
    plans = [TilePlan(rng.randint(1, max_steps), p, s) for p in range(1, ab + 1) for s in (True, False)]
    plans += _plans(rng, 10, max_steps, ab, 0.4)
    plans.append(TilePlan(max_steps, ab, True))   # the longest tile at full precision
    run = run_tile_bench("icarus", params, plans, seed=rng.randint(0, 1 << 30))
    assert list(run.cycles) == [fold_cycles(Interconnect.BROADCAST, rows, cols, steps=p.steps, step_cycles=p.precision)
                                for p in plans]


def test_cycle_agreement_with_hwsim_timing() -> None:
    """The RTL takes exactly BROADCAST_START_CYCLES + K*p + BROADCAST_DRAIN_CYCLES cycles per tile."""
    params = ArrayParams(3, 4, 8, 8, max_steps=64)
    plans = [TilePlan(k, p, s, a) for k, p, s, a in
             [(1, 1, True, False), (1, 8, False, False), (2, 3, True, True), (7, 5, False, False),
              (16, 8, True, True), (64, 1, True, False), (64, 8, True, True), (33, 2, False, False)]]
    run = run_tile_bench("icarus", params, plans, seed=7)
    predicted = [fold_cycles(Interconnect.BROADCAST, 3, 4, steps=p.steps, step_cycles=p.precision) for p in plans]
    assert list(run.cycles) == predicted
    assert [BROADCAST_START_CYCLES + p.steps * p.precision + BROADCAST_DRAIN_CYCLES for p in plans] == predicted


KIND_MATRIX = [  # kind, rows, cols, W, A, max_steps
    ("serial_both", 1, 1, 4, 4, 4), ("serial_both", 2, 3, 8, 8, 8), ("serial_both", 3, 2, 3, 5, 16),
    ("serial_both", 1, 4, 1, 1, 8), ("parallel", 2, 3, 8, 8, 64), ("parallel", 3, 2, 16, 4, 16),
    ("parallel", 2, 2, 1, 1, 8),
]


@pytest.mark.parametrize(("kind", "rows", "cols", "wb", "ab", "max_steps"), KIND_MATRIX)
def test_icarus_other_kinds(kind: str, rows: int, cols: int, wb: int, ab: int, max_steps: int) -> None:
    """serial_both: every weight x activation precision in both sign modes, then random tiles (some
    accumulating) and the longest tile; parallel: both sign modes, random tiles, the longest tile."""
    rng = random.Random(rows * 1000 + cols * 100 + wb * 10 + ab)
    params = ArrayParams(rows, cols, wb, ab, max_steps=max_steps, kind=kind)
    wps = range(1, wb + 1) if kind == "serial_both" else [wb]
    aps = range(1, ab + 1) if kind == "serial_both" else [ab]
    plans = [TilePlan(rng.randint(1, max_steps), p, s, False, wp) for wp in wps for p in aps for s in (True, False)]
    plans += [TilePlan(rng.randint(1, max_steps), rng.randint(1, ab), bool(rng.getrandbits(1)),
                       i > 0 and rng.random() < 0.4, rng.randint(1, wb)) for i in range(10)]
    plans.append(TilePlan(max_steps, ab, True, False, wb))
    run = run_tile_bench("icarus", params, plans, seed=rng.randint(0, 1 << 30))
    step = {"serial_both": lambda p: (p.weight_precision or wb) * p.precision, "parallel": lambda p: 1}[kind]
    assert list(run.cycles) == [fold_cycles(Interconnect.BROADCAST, rows, cols, steps=p.steps, step_cycles=step(p))
                                for p in plans]


@pytest.mark.parametrize("kind", ["serial_both", "parallel"])
def test_cycle_agreement_other_kinds(kind: str) -> None:
    """Same start / drain constants for every kind: a tile takes BROADCAST_START_CYCLES + K*s +
    BROADCAST_DRAIN_CYCLES with s = pe_step's cycles (w*a for serial_both, 1 for parallel)."""
    params = ArrayParams(3, 4, 8, 8, max_steps=64, kind=kind)
    plans = [TilePlan(k, p, s, a, wp) for k, p, s, a, wp in
             [(1, 1, True, False, 1), (1, 8, False, False, 8), (2, 3, True, True, 5), (7, 5, False, False, 2),
              (16, 8, True, True, 8), (64, 1, True, False, 1), (64, 2, True, True, 3), (33, 2, False, False, 7)]]
    run = run_tile_bench("icarus", params, plans, seed=11)
    pe = PESpec(kind=PEKind(kind), max_weight_bits=8, max_act_bits=8, acc_bits=32)
    predicted = [fold_cycles(Interconnect.BROADCAST, 3, 4, steps=p.steps,
                             step_cycles=pe_step(pe, p.weight_precision or 8, p.precision)[0]) for p in plans]
    assert list(run.cycles) == predicted
    s = {"serial_both": lambda p: (p.weight_precision or 8) * p.precision, "parallel": lambda p: 1}[kind]
    assert [BROADCAST_START_CYCLES + p.steps * s(p) + BROADCAST_DRAIN_CYCLES for p in plans] == predicted


def _wrapped(cfg: BenchConfig) -> bool:
    """Whether some PE's exact running sum left the accumulator's range during the run."""
    rng = random.Random(cfg.seed)
    exact = [0] * (cfg.rows * cfg.cols)
    lim = 1 << (cfg.acc_bits - 1)
    for plan in cfg.plans:
        tile = make_tile(cfg, plan, rng)
        prod = (tile.acts @ tile.weights).reshape(-1)
        exact = [(e if plan.accumulate else 0) + int(v) for e, v in zip(exact, prod, strict=True)]
        if any(not -lim <= e < lim for e in exact):
            return True
    return False


@pytest.mark.parametrize(("kind", "rows", "cols", "bits", "n_tiles"),
                         [("serial_act", 2, 2, 16, 160), ("serial_act", 3, 2, 8, 160), ("serial_both", 2, 2, 6, 160)])
def test_verilator_long_random_runs(kind: str, rows: int, cols: int, bits: int, n_tiles: int) -> None:
    """>= 1000 MACs per PE, accumulated across tiles into a worst-case-sized accumulator until it wraps."""
    rng = random.Random(bits)
    params = ArrayParams(rows, cols, bits, bits, max_steps=8, kind=kind)
    wp = (lambda i: bits if i % 4 else rng.randint(1, bits)) if kind == "serial_both" else (lambda i: None)
    plans = [TilePlan(8, bits if i % 4 else rng.randint(1, bits), True, i > 0, wp(i)) for i in range(n_tiles)]
    assert sum(p.steps for p in plans) >= 1000
    seed = 12345
    cfg = BenchConfig(rows, cols, bits, bits, params.acc_bits or 0, 8, tuple(plans), seed, "", kind)
    assert _wrapped(cfg), "choose a seed whose run wraps the accumulator"
    run = run_tile_bench("verilator", params, plans, seed=seed)
    assert len(run.cycles) == n_tiles


def test_checker_flags_wrong_values_and_cycles() -> None:
    """The checker is not vacuous: one wrong accumulator and one extra cycle are both reported."""
    cfg = BenchConfig(1, 2, 4, 4, 12, 8, (TilePlan(3, 4, True),), 1, "")
    tile = make_tile(cfg, cfg.plans[0], random.Random(1))
    from sims.tb.model import expected_acc
    good = expected_acc(cfg, tile, [0, 0])
    right = Completion(10, 10 + fold_cycles(Interconnect.BROADCAST, 1, 2, steps=3, step_cycles=4), tuple(good))
    assert check(cfg, [tile], [right]) == []
    bad_value = Completion(right.start_cycle, right.done_cycle, (good[0] + 1, good[1]))
    late = Completion(right.start_cycle, right.done_cycle + 1, tuple(good))
    assert "acc" in str(check(cfg, [tile], [bad_value])[0])
    assert "cycles" in str(check(cfg, [tile], [late])[0])
    assert "completed" in str(check(cfg, [tile], [])[0])


def test_bench_fails_on_a_wrong_expectation() -> None:
    """A precision above the array's max is run as act_bits bits by the RTL, so a model that expects the
    wider product disagrees: the bench must fail and the runner must raise."""
    params = ArrayParams(1, 2, 4, 4, max_steps=4)
    with pytest.raises(AssertionError, match=r"^cocotb bench failed on icarus( \(exit \d+\))?; see .*results\.xml$"):
        run_tile_bench("icarus", params, [TilePlan(2, 6, True)], seed=3)
