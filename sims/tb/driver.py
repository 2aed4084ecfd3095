"""Drives tiles into the exported array: start when idle, then each step's operands after each ``load``.

All writes happen on falling clock edges; the DUT samples on rising edges.
"""

from __future__ import annotations

from typing import Any

from cocotb.triggers import FallingEdge

from .model import BenchConfig, Tile

__all__ = ["TileDriver", "pack"]


def pack(values: list[int], bits: int) -> int:
    """Flat packed vector of two's-complement fields, element 0 in the least significant bits."""
    mask = (1 << bits) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


class TileDriver:
    def __init__(self, dut: Any, cfg: BenchConfig) -> None:
        self.dut = dut
        self.cfg = cfg

    def idle_inputs(self) -> None:
        d = self.dut
        d.start.value = 0
        d.accumulate.value = 0
        d.steps.value = 1
        if self.cfg.kind != "parallel":
            d.precision.value = 1
        if self.cfg.kind == "serial_both":
            d.weight_precision.value = 1
        d.act_signed.value = 0
        d.weights.value = 0
        d.acts.value = 0

    def _operands(self, tile: Tile, k: int) -> None:
        self.dut.weights.value = pack([int(w) for w in tile.weights[k]], self.cfg.weight_bits)
        self.dut.acts.value = pack([int(a) for a in tile.acts[:, k]], self.cfg.act_bits)

    async def send(self, tile: Tile) -> None:
        """Offer ``start`` in the first cycle the array is idle (the ``done`` cycle when back to back)."""
        d, plan = self.dut, tile.plan
        while True:
            await FallingEdge(d.clk)
            if int(d.busy.value) == 0:
                break
        d.start.value = 1
        d.steps.value = plan.steps
        if self.cfg.kind != "parallel":
            d.precision.value = plan.precision
        if self.cfg.kind == "serial_both":
            d.weight_precision.value = self.cfg.weight_precision(plan)
        d.act_signed.value = int(plan.signed)
        d.accumulate.value = int(plan.accumulate)
        self._operands(tile, 0)
        await FallingEdge(d.clk)
        d.start.value = 0
        for k in range(1, plan.steps):
            self._operands(tile, k)
            while int(d.load.value) == 0:   # `load` depends only on registers while busy
                await FallingEdge(d.clk)
            await FallingEdge(d.clk)
