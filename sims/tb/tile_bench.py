"""The cocotb test of the exported array (run by :mod:`sims.tb.runner`, configured by ``HWSIM_TB_CONFIG``).

Tiles are sent back to back; the monitor records start/done cycles and the accumulators; the checker
compares with ``hwsim.golden`` and ``hwsim.timing.fold_cycles``. Measured cycles go to a JSON file.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from .checker import check
from .driver import TileDriver
from .model import BenchConfig, expected_cycles, make_tile
from .monitor import TileMonitor


@cocotb.test()
async def tiles_back_to_back(dut: Any) -> None:
    cfg = BenchConfig.from_json(os.environ["HWSIM_TB_CONFIG"])
    rng = random.Random(cfg.seed)
    tiles = [make_tile(cfg, plan, rng) for plan in cfg.plans]
    Clock(dut.clk, 10, unit="ns").start()
    driver = TileDriver(dut, cfg)
    driver.idle_inputs()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    monitor = TileMonitor(dut, cfg.acc_bits, cfg.rows * cfg.cols)
    watch = cocotb.start_soon(monitor.run())
    for tile in tiles:
        await driver.send(tile)
    budget = max(expected_cycles(cfg, p) for p in cfg.plans) + 4
    for _ in range(budget):
        if len(monitor.completions) == len(tiles):
            break
        await FallingEdge(dut.clk)
    watch.cancel()
    with open(cfg.results_path, "w") as fh:
        json.dump([{"start": c.start_cycle, "done": c.done_cycle, "cycles": c.cycles} for c in monitor.completions],
                  fh)
    problems = check(cfg, tiles, monitor.completions)
    assert not problems, "; ".join(str(p) for p in problems[:5])
