"""Costs that add up: energy breakdowns, memory traffic, per-layer and per-network results.

All are immutable values; ``a + b`` adds costs and ``a * x`` scales them (for a cascade's expected cost).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

__all__ = ["Energy", "Traffic", "Events", "LayerResult", "StageResult", "SimResult"]


class _Additive:
    """Field-wise ``+`` and scalar ``*`` for dataclasses whose fields are all numbers."""

    __slots__ = ()

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        names: tuple[str, ...] = type(self).__slots__  # the dataclass's fields, in order (slots=True)
        return type(self)(*(getattr(self, f) + getattr(other, f) for f in names))

    def __mul__(self, k: float) -> Self:
        names: tuple[str, ...] = type(self).__slots__
        return type(self)(*(getattr(self, f) * k for f in names))

    __rmul__ = __mul__

    @classmethod
    def zero(cls) -> Self:
        return cls(*(0 for _ in fields(cls)))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Energy(_Additive):
    """Energy breakdown in picojoules."""

    mac_pj: float = 0.0
    ifmap_sram_pj: float = 0.0
    filter_sram_pj: float = 0.0
    ofmap_sram_pj: float = 0.0
    dram_pj: float = 0.0
    noc_pj: float = 0.0
    scale_pj: float = 0.0
    leakage_pj: float = 0.0

    @property
    def sram_pj(self) -> float:
        return self.ifmap_sram_pj + self.filter_sram_pj + self.ofmap_sram_pj

    @property
    def total_pj(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True, slots=True)
class Traffic(_Additive):
    """SRAM accesses in words of each buffer, DRAM traffic in bytes."""

    ifmap_sram_reads: float = 0
    ifmap_sram_writes: float = 0
    filter_sram_reads: float = 0
    filter_sram_writes: float = 0
    ofmap_sram_reads: float = 0
    ofmap_sram_writes: float = 0
    dram_read_bytes: float = 0
    dram_write_bytes: float = 0


@dataclass(frozen=True, slots=True)
class Events:
    """What a layer does, before any price: the one record the engine, the fast path and the sweep
    cache produce, and :func:`hwsim.cost.price` turns into :class:`Energy` (DESIGN rule 4).

    ``macs`` holds ``(weight_bits, act_bits, count)`` per operand-width pair (``count`` is the MACs
    with a non-zero weight: pruned weights are gated); ``vector_op_bits`` is pooling / element-wise
    work (operations x bits); ``scale_ops`` the BWA bit-plane scale multiplies; ``noc_bytes`` the
    operand bytes delivered to PEs. Counts may be numpy arrays (the fast path prices a batch).
    ``stall_cycles`` includes ``port_stall_cycles`` (waiting on an SRAM port); the rest waits on DRAM."""

    compute_cycles: float = 0
    fill_cycles: float = 0
    stall_cycles: float = 0
    port_stall_cycles: float = 0
    traffic: Traffic = Traffic()
    macs: tuple[tuple[int, int, float], ...] = ()
    vector_op_bits: float = 0
    scale_ops: float = 0
    noc_bytes: float = 0

    @property
    def cycles(self) -> float:
        return self.compute_cycles + self.fill_cycles + self.stall_cycles

    def __add__(self, other: Events) -> Events:
        if type(other) is not type(self):
            return NotImplemented
        macs: dict[tuple[int, int], float] = {}
        for w, a, n in self.macs + other.macs:
            macs[(w, a)] = macs.get((w, a), 0) + n
        return Events(self.compute_cycles + other.compute_cycles, self.fill_cycles + other.fill_cycles,
                      self.stall_cycles + other.stall_cycles, self.port_stall_cycles + other.port_stall_cycles,
                      self.traffic + other.traffic, tuple((w, a, n) for (w, a), n in sorted(macs.items())),
                      self.vector_op_bits + other.vector_op_bits, self.scale_ops + other.scale_ops,
                      self.noc_bytes + other.noc_bytes)


@dataclass(frozen=True, slots=True)
class LayerResult:
    layer: str
    dataflow: str
    weight_bits: int
    act_bits: int
    macs: int
    compute_cycles: int
    fill_cycles: int
    stall_cycles: int
    mapping_efficiency: float
    """Fraction of the PEs that the folds cover (spatial mapping only)."""
    utilisation: float
    """Useful MAC-steps / (total cycles x PEs x MACs a PE can do per cycle at this precision)."""
    folds: int
    dram_tiles: int
    traffic: Traffic
    energy: Energy
    port_stall_cycles: int = 0
    """The part of ``stall_cycles`` spent waiting on an SRAM port (banks x word_bits per cycle)."""
    events: Events = Events()
    """The counted events this result was priced from (``hwsim.cost.price(events, acc) == energy``)."""

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.fill_cycles + self.stall_cycles

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["events"]
        d["total_cycles"] = self.total_cycles
        d["energy"]["total_pj"] = self.energy.total_pj
        return d


@dataclass(frozen=True, slots=True)
class StageResult:
    name: str
    reach_probability: float
    layers: tuple[LayerResult, ...]

    @property
    def cycles(self) -> int:
        return sum(la.total_cycles for la in self.layers)

    @property
    def energy(self) -> Energy:
        return sum((la.energy for la in self.layers), Energy.zero())

    @property
    def macs(self) -> int:
        return sum(la.macs for la in self.layers)


@dataclass(frozen=True, slots=True)
class SimResult:
    accelerator: str
    network: str
    clock_hz: float
    stages: tuple[StageResult, ...]

    @property
    def layers(self) -> tuple[LayerResult, ...]:
        return tuple(la for s in self.stages for la in s.layers)

    # Worst case: every stage runs (an input that never exits early).
    @property
    def cycles(self) -> int:
        return sum(s.cycles for s in self.stages)

    @property
    def energy(self) -> Energy:
        return sum((s.energy for s in self.stages), Energy.zero())

    # Expected: stage k runs with the probability that an input reaches it.
    @property
    def expected_cycles(self) -> float:
        return sum(s.reach_probability * s.cycles for s in self.stages)

    @property
    def expected_energy(self) -> Energy:
        return sum((s.energy * s.reach_probability for s in self.stages), Energy.zero())

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def expected_latency_s(self) -> float:
        return self.expected_cycles / self.clock_hz

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator, "network": self.network, "clock_hz": self.clock_hz,
            "totals": {"worst_case": {"cycles": self.cycles, "latency_s": self.latency_s,
                                      "energy": {**asdict(self.energy), "total_pj": self.energy.total_pj}},
                       "expected": {"cycles": self.expected_cycles, "latency_s": self.expected_latency_s,
                                    "energy": {**asdict(self.expected_energy),
                                               "total_pj": self.expected_energy.total_pj}},
                       "macs": self.macs},
            "stages": [{"name": s.name, "reach_probability": s.reach_probability, "cycles": s.cycles,
                        "energy_pj": s.energy.total_pj,
                        "layers": [{**la.to_dict(), "latency_s": la.total_cycles / self.clock_hz} for la in s.layers]}
                       for s in self.stages],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)
