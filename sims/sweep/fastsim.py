"""Whole-network totals for thousands of accelerators, exactly as :func:`hwsim.simulate` computes them.

Most of a sweep's points share work: identical layer shapes repeat inside a network, a layer's tile
stays the same over many buffer sizes, and fields such as SRAM sizes, banks, leakage or the clock
only change the *price* of the counted events. :class:`LayerCostCache` therefore keeps, per
``(layer shape and widths, mapping, array core)``, the cycles and event counts of
:func:`hwsim.simulate_layer`, and prices them per point:

the layers' :class:`hwsim.result.Events` summed per stage, and prices them per point with
:func:`hwsim.cost.price`, the one pricing function the engine uses too.

The "array core" is every accelerator field that the engine's counts depend on besides the buffer
sizes: rows, cols, PE spec, interconnect, DRAM bandwidth, buffer word widths and banks (the SRAM
ports). Buffer sizes enter through the tile only (and through the prices). A test checks the totals
against ``hwsim.simulate`` on random points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from hwsim.accelerator import Accelerator
from hwsim.cost import price
from hwsim.energy import EnergyTable
from hwsim.engine import simulate_layer
from hwsim.network import Layer, Network
from hwsim.result import Events
from hwsim.schedule import LayerMapping, Schedule, default_mapping

from .metrics import SimTotals

__all__ = ["LayerCostCache", "NetPlan", "PRICE_OR_TILE_FIELDS"]

PRICE_OR_TILE_FIELDS = frozenset(
    [f"{b}.{f}" for b in ("ifmap_sram", "filter_sram", "ofmap_sram") for f in ("size_bytes", "read_pj", "write_pj")]
    + ["leakage_mw", "clock_hz", "dram.energy_pj_per_byte"] + [f"energy.{f.name}" for f in dataclasses.fields(EnergyTable)])
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
        self._costs: dict[tuple[int, int, int], Events] = {}
        self._agg: dict[tuple[object, ...], tuple[Events, ...]] = {}
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
                    acc: Accelerator) -> Events:
        key = (core_id, layer_id, map_id)
        c = self._costs.get(key)
        if c is None:
            if len(self._costs) >= self.max_entries:
                self._costs.clear()
                self._agg.clear()
            c = self._costs[key] = simulate_layer(layer, mapping, acc).events
            self.layer_sims += 1
        return c

    def totals(self, plan: NetPlan, acc: Accelerator, schedule: Schedule | None = None) -> SimTotals:
        """Totals of ``plan`` on ``acc`` under ``schedule`` (``None``: hwsim's default schedule)."""
        core_id = self._id(("core", acc.rows, acc.cols, acc.pe, acc.interconnect,
                            acc.dram.bandwidth_bytes_per_cycle)
                           + tuple((b.word_bits, b.banks, b.packed) for b in (acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram)))
        if schedule is None:
            tile_key: tuple[object, ...] = (acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram, acc.pe.acc_bits,
                                            acc.split_reduction,
                                            acc.dataflows[0], acc.pe.kind)  # everything default_mapping reads
            agg_key: tuple[object, ...] = (plan.plan_id, core_id, tile_key)
        else:
            maps = [(self._mapping_id(m), m) for m in schedule.mappings]
            agg_key = (plan.plan_id, core_id, tuple(i for i, _ in maps))
        per_stage = self._agg.get(agg_key)
        if per_stage is None:
            sums = [Events() for _ in plan.reach]
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
                sums[st] = sums[st] + self._layer_cost(core_id, la, lid, m, mid, acc)
            per_stage = self._agg[agg_key] = tuple(sums)
        return _price(per_stage, plan.reach, acc)


def _price(per_stage: Sequence[Events], reach: Sequence[float], acc: Accelerator) -> SimTotals:
    worst_c = exp_c = worst_e = exp_e = comp = sram = dram = leak = 0.0
    for ev, p in zip(per_stage, reach, strict=True):
        e = price(ev, acc)
        worst_c += ev.cycles
        exp_c += p * ev.cycles
        worst_e += e.total_pj
        exp_e += p * e.total_pj
        comp += p * (e.mac_pj + e.noc_pj + e.scale_pj)
        sram += p * e.sram_pj
        dram += p * e.dram_pj
        leak += p * e.leakage_pj
    return SimTotals(acc.clock_hz, int(worst_c), exp_c, worst_e, exp_e, comp, sram, dram, leak)
