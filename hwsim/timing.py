"""Latency of one array fold: the single source of truth for cycles (a PE's step is
:func:`hwsim.kinds.pe_step`, re-exported here).

The engine, the fast path and the mapper call these functions; the RTL tests measure the generated
hardware and assert that it takes exactly :func:`fold_cycles` cycles for a tile.
"""

from __future__ import annotations

from .accelerator import Interconnect
from .kinds import pe_step

__all__ = ["pe_step", "fold_overhead_cycles", "fold_cycles", "BROADCAST_START_CYCLES", "BROADCAST_DRAIN_CYCLES"]

# Broadcast (bit-serial RTL) array, as built by rtl/array.py and measured on its exported Verilog by
# tests/rtl (cocotb, Icarus and Verilator). A tile of K steps at precision p takes
# t_done - t_start = BROADCAST_START_CYCLES + K*p + BROADCAST_DRAIN_CYCLES cycles, where t_start is the
# cycle in which `start` is sampled high and t_done the cycle in which `done` is high; that is also the
# start-to-start period of back-to-back tiles, because `start` is accepted in the `done` cycle.
# * start (1): the cycle that samples `start` latches step 0's weights and activations and the precision;
#   the first activation bit is accumulated in the next cycle. Later steps are latched during the last bit
#   of the step before, so they cost no extra cycle.
# * drain (0): the accumulators are the array's output registers; `done` rises at the same clock edge
#   that accumulates the last bit, so the results are readable in the `done` cycle.
BROADCAST_START_CYCLES = 1
BROADCAST_DRAIN_CYCLES = 0


def fold_overhead_cycles(interconnect: Interconnect, rows: int, cols: int) -> int:
    """Cycles of one fold that are not spent streaming operands (fill + drain).

    * ``systolic``: SCALE-Sim's analytical model (Samajdar et al., ISPASS 2020, eq. 1): a fold takes
      ``2*R + C + T - 2`` cycles for T streamed steps on an R x C array, so the overhead is ``2R + C - 2``.
    * ``broadcast``: start + drain of the bit-serial RTL controller (protocol: the constants' comment above).
    """
    if interconnect is Interconnect.SYSTOLIC:
        return 2 * rows + cols - 2
    return BROADCAST_START_CYCLES + BROADCAST_DRAIN_CYCLES


def fold_cycles(interconnect: Interconnect, rows: int, cols: int, steps: int, step_cycles: int) -> int:
    """Cycles of one fold that streams ``steps`` operand steps of ``step_cycles`` cycles each."""
    return fold_overhead_cycles(interconnect, rows, cols) + steps * step_cycles
