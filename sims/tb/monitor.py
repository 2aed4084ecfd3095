"""Watches the array on every rising edge: when a tile starts, when it is done, and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cocotb.triggers import RisingEdge

__all__ = ["Completion", "TileMonitor", "unpack"]


def unpack(word: int, bits: int, count: int) -> list[int]:
    """Inverse of :func:`sims.tb.driver.pack` for signed fields."""
    out = []
    for i in range(count):
        v = (word >> (i * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


@dataclass(frozen=True, slots=True)
class Completion:
    start_cycle: int
    done_cycle: int
    acc: tuple[int, ...]

    @property
    def cycles(self) -> int:
        return self.done_cycle - self.start_cycle


@dataclass
class TileMonitor:
    """Counts rising edges; at each one reads the values of the cycle that edge ends."""

    dut: Any
    acc_bits: int
    n_pe: int
    completions: list[Completion] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    async def run(self) -> None:
        d = self.dut
        cycle = 0
        while True:
            await RisingEdge(d.clk)
            if int(d.start.value) and not int(d.busy.value):
                self._starts.append(cycle)
            if int(d.done.value):
                if not self._starts:
                    raise AssertionError(f"done at cycle {cycle} without a started tile")
                acc = unpack(d.acc.value.to_unsigned(), self.acc_bits, self.n_pe)
                self.completions.append(Completion(self._starts.pop(0), cycle, tuple(acc)))
            cycle += 1
