"""Whole-network totals for thousands of accelerators, exactly as :func:`hwsim.simulate` computes them.

Most of a sweep's points share work: identical layer shapes repeat inside a network, a layer's tile
stays the same over many buffer sizes, and fields such as SRAM sizes, banks, leakage or the clock
only change the *price* of the counted events. :class:`LayerCostCache` therefore keeps, per
``(layer shape and widths, mapping, array core)``, the cycles and event counts of
:func:`hwsim.simulate_layer`, and prices them per point:

* SRAM energy = accesses x the buffer's per-access energy, DRAM energy = bytes x pJ/byte,
  leakage = cycles x pJ/cycle (the same products the engine forms in ``_finish``);
* everything else (MAC, operand network, bit-scale energy; cycles) is reused as computed.

The "array core" is every accelerator field that the engine reads besides those prices and the
buffer sizes: rows, cols, PE spec, interconnect, DRAM bandwidth, buffer word widths, energy table.
Buffer sizes enter through the tile only (and through the prices). A test checks the totals
against ``hwsim.simulate`` on random points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from hwsim.accelerator import Accelerator
from hwsim.engine import simulate_layer
from hwsim.network import Layer, Network
from hwsim.schedule import LayerMapping, Schedule, default_mapping

from .metrics import SimTotals

__all__ = ["LayerCostCache", "NetPlan", "PRICE_OR_TILE_FIELDS"]

PRICE_OR_TILE_FIELDS = frozenset(
    [f"{b}.{f}" for b in ("ifmap_sram", "filter_sram", "ofmap_sram") for f in ("size_bytes", "banks", "read_pj",
                                                                            "write_pj")]
    + ["leakage_mw", "clock_hz", "dram.energy_pj_per_byte"])
"""Accelerator fields that change only a layer's tile or the price of its events, never the cached
layer costs of a given tile: points that differ only in these share :class:`LayerCostCache` entries."""

_LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(Layer) if f.name != "name")


@dataclass(frozen=True, slots=True)
class NetPlan:
    """A network prepared for the cache: its layers, their shape ids and their stages' reach probabilities."""

    plan_id: int
    layers: tuple[Layer, ...]
    layer_ids: tuple[int, ...]
    stage_of: tuple[int, ...]
    reach: tuple[float, ...]


class LayerCostCache:
    """Per-process memo of layer costs (bounded: cleared when it holds ``max_entries`` layer results)."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self._ids: dict[object, int] = {}
        self._tiles: dict[tuple[int, tuple[object, ...]], tuple[int, LayerMapping]] = {}
        self._costs: dict[tuple[int, int, int], tuple[float, ...]] = {}
        self._agg: dict[tuple[object, ...], tuple[tuple[float, ...], ...]] = {}
        self.layer_sims = 0

    def _id(self, key: object) -> int:
        i = self._ids.get(key)
        if i is None:
            i = self._ids[key] = len(self._ids)
        return i

    def plan(self, net: Network) -> NetPlan:
        layers = net.layers
        ids = tuple(self._id(("layer",) + tuple(getattr(la, f) for f in _LAYER_FIELDS)) for la in layers)
        stage_of = tuple(k for k, s in enumerate(net.stages) for _ in s.layers)
        return NetPlan(self._id(("plan", ids, stage_of)), layers, ids, stage_of, tuple(net.reach_probabilities()))

    def _mapping_id(self, m: LayerMapping) -> int:
        return self._id(("map", m.dataflow, m.tile, m.loop_order, m.grouping))

    def _layer_cost(self, core_id: int, layer: Layer, layer_id: int, mapping: LayerMapping, map_id: int,
                    acc: Accelerator) -> tuple[float, ...]:
        key = (core_id, layer_id, map_id)
        c = self._costs.get(key)
        if c is None:
            if len(self._costs) >= self.max_entries:
                self._costs.clear()
                self._agg.clear()
            r = simulate_layer(layer, mapping, acc)
            self.layer_sims += 1
            e, t = r.energy, r.traffic
            c = self._costs[key] = (
                float(r.total_cycles), e.mac_pj + e.noc_pj + e.scale_pj,
                t.ifmap_sram_reads + t.ifmap_sram_writes, t.filter_sram_reads + t.filter_sram_writes,
                t.ofmap_sram_reads, t.ofmap_sram_writes, t.dram_read_bytes + t.dram_write_bytes)
        return c

    def totals(self, plan: NetPlan, acc: Accelerator, schedule: Schedule | None = None) -> SimTotals:
        """Totals of ``plan`` on ``acc`` under ``schedule`` (``None``: hwsim's default schedule)."""
        core_id = self._id(("core", acc.rows, acc.cols, acc.pe, acc.interconnect,
                            acc.dram.bandwidth_bytes_per_cycle, acc.ifmap_sram.word_bits,
                            acc.filter_sram.word_bits, acc.ofmap_sram.word_bits, acc.energy))
        if schedule is None:
            tile_key: tuple[object, ...] = (acc.ifmap_sram.size_bytes, acc.filter_sram.size_bytes,
                                            acc.ofmap_sram.size_bytes, acc.pe.acc_bits, acc.dataflows[0],
                                            acc.pe.kind)  # everything default_mapping reads
            agg_key: tuple[object, ...] = (plan.plan_id, core_id, tile_key)
        else:
            maps = [(self._mapping_id(m), m) for m in schedule.mappings]
            agg_key = (plan.plan_id, core_id, tuple(i for i, _ in maps))
        per_stage = self._agg.get(agg_key)
        if per_stage is None:
            sums = [[0.0] * 7 for _ in plan.reach]
            for i, (la, lid, st) in enumerate(zip(plan.layers, plan.layer_ids, plan.stage_of, strict=True)):
                if schedule is None:
                    hit = self._tiles.get((lid, tile_key))
                    if hit is None:
                        m = default_mapping(la, acc)
                        hit = self._tiles[(lid, tile_key)] = (self._mapping_id(m), m)
                    mid, m = hit
                    if m.layer != la.name:
                        m = dataclasses.replace(m, layer=la.name)
                else:
                    mid, m = maps[i]
                c = self._layer_cost(core_id, la, lid, m, mid, acc)
                s = sums[st]
                for j in range(7):
                    s[j] += c[j]
            per_stage = self._agg[agg_key] = tuple(tuple(s) for s in sums)
        return _price(per_stage, plan.reach, acc)


def _price(per_stage: Sequence[tuple[float, ...]], reach: Sequence[float], acc: Accelerator) -> SimTotals:
    e_if = acc.ifmap_sram.read_energy_pj
    e_f = acc.filter_sram.read_energy_pj
    e_or, e_ow = acc.ofmap_sram.read_energy_pj, acc.ofmap_sram.write_energy_pj
    e_d, e_l = acc.dram_pj_per_byte, acc.leakage_pj_per_cycle
    worst_c = exp_c = worst_e = exp_e = comp = sram = dram = leak = 0.0
    for (cyc, fixed, a_if, a_f, a_or, a_ow, b_d), p in zip(per_stage, reach, strict=True):
        s = a_if * e_if + a_f * e_f + a_or * e_or + a_ow * e_ow
        d = b_d * e_d
        lk = cyc * e_l
        tot = fixed + s + d + lk
        worst_c += cyc
        exp_c += p * cyc
        worst_e += tot
        exp_e += p * tot
        comp += p * fixed
        sram += p * s
        dram += p * d
        leak += p * lk
    return SimTotals(acc.clock_hz, int(worst_c), exp_c, worst_e, exp_e, comp, sram, dram, leak)
