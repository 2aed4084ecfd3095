"""The cocotb test of the accelerator core: a thin driver of the HDL testbench ``core_tb.v``, which holds
the DRAM model, the descriptor feed and every check (run by :mod:`sims.tb.core_tb`, the run's files in
the directory of the ``+hwsim_dir=DIR`` plusarg).

It starts the clock (cocotb 2's clock runs in the simulator's GPI layer), holds reset for two cycles and
waits for the testbench's ``done``: no Python runs per cycle. The testbench writes the counters and the
outputs itself; this test only fails when the testbench reports an error, quoting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


@cocotb.test()
async def layers(dut: Any) -> None:
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    if not int(dut.done.value):
        await RisingEdge(dut.done)
    if int(dut.failed.value):
        results = Path(str(cocotb.plusargs["hwsim_dir"])) / "results.txt"
        errors = [line for line in results.read_text().splitlines() if line.startswith("error")]
        raise AssertionError(f"core testbench: {errors[-1] if errors else 'failed'}")
