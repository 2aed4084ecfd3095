"""Metric functions: what a sweep measures at every design point.

A :class:`Metric` is a name, a unit, a goal (``min``/``max``) and a function of a
:class:`PointView`. Simulation metrics read the point's :class:`SimTotals` (expected values over a
cascade's exits; ``worst_*`` when every stage runs); ``area_*`` call the fitted FPGA area model
(``hwsim.area.fpga_area``) when the installation has it, and are empty (None, with a note in the row's
``error`` column) where the model refuses the accelerator, e.g. a PE kind it was not fitted on; ``accuracy`` looks the point's network and
bit schedule up in an accuracy table (see :func:`load_accuracy_table`).
"""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError
from hwsim.network import Network

__all__ = ["Metric", "SimTotals", "PointView", "METRICS", "area_model", "load_accuracy_table", "metric_names"]


@dataclass(frozen=True, slots=True)
class SimTotals:
    """Whole-network totals of one point. ``expected_*`` weight each cascade stage by the probability
    that an input reaches it; for a plain network they equal the worst case."""

    clock_hz: float
    worst_cycles: int
    expected_cycles: float
    worst_energy_pj: float
    expected_energy_pj: float
    compute_pj: float
    sram_pj: float
    dram_pj: float
    leakage_pj: float


class PointView:
    """What a metric function sees: the resolved accelerator and network, and lazily computed costs."""

    __slots__ = ("acc", "network", "network_label", "schedule_label", "_totals", "_area", "_accuracy", "notes")

    def __init__(self, acc: Accelerator, network: Network, network_label: str, schedule_label: str,
                 totals: Callable[[], SimTotals], accuracy: dict[tuple[str, str], float]) -> None:
        self.acc = acc
        self.network = network
        self.network_label = network_label
        self.schedule_label = schedule_label
        self._totals: Any = totals
        self._area: Any = None
        self._accuracy = accuracy
        self.notes: list[str] = []

    @property
    def totals(self) -> SimTotals:
        if callable(self._totals):
            self._totals = self._totals()
        return self._totals

    @property
    def area(self) -> Any:
        if self._area is None:
            fn = area_model()
            if fn is None:
                raise ValueError("area metrics need hwsim.area.fpga_area, which this installation lacks")
            try:
                self._area = fn(self.acc)
            except ValueError as exc:  # outside the fitted model's domain (e.g. a PE kind it was not fitted on)
                self._area = _NO_AREA
                self.notes.append(f"area: {exc}")
        return self._area

    @property
    def accuracy(self) -> float | None:
        return self._accuracy.get((self.network_label, self.schedule_label))


class _NoArea:
    luts = ffs = carries = None


_NO_AREA = _NoArea()


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    goal: str
    needs: str
    fn: Callable[[PointView], float | None]
    doc: str


def area_model() -> Callable[[Accelerator], Any] | None:
    """``hwsim.area.fpga_area`` if the installation has the fitted area model, else ``None``."""
    try:
        mod = importlib.import_module("hwsim.area")
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, "fpga_area", None)
    return fn if callable(fn) else None


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _latency(p: PointView, cycles: float) -> float:
    return cycles / p.totals.clock_hz


_LIST = [
    Metric("cycles", "cycles", "min", "sim", lambda p: p.totals.expected_cycles,
           "expected cycles per inference (worst case for a plain network)"),
    Metric("worst_cycles", "cycles", "min", "sim", lambda p: p.totals.worst_cycles,
           "cycles when every cascade stage runs"),
    Metric("latency_s", "s", "min", "sim", lambda p: _latency(p, p.totals.expected_cycles),
           "expected latency per inference"),
    Metric("worst_latency_s", "s", "min", "sim", lambda p: _latency(p, p.totals.worst_cycles),
           "latency when every cascade stage runs"),
    Metric("energy_pj", "pJ", "min", "sim", lambda p: p.totals.expected_energy_pj,
           "expected energy per inference"),
    Metric("worst_energy_pj", "pJ", "min", "sim", lambda p: p.totals.worst_energy_pj,
           "energy when every cascade stage runs"),
    Metric("edp", "pJ*s", "min", "sim",
           lambda p: p.totals.expected_energy_pj * _latency(p, p.totals.expected_cycles),
           "energy-delay product (expected energy x expected latency)"),
    Metric("energy_compute_pj", "pJ", "min", "sim", lambda p: p.totals.compute_pj,
           "expected MAC + operand network + bit-scale energy"),
    Metric("energy_sram_pj", "pJ", "min", "sim", lambda p: p.totals.sram_pj, "expected SRAM energy"),
    Metric("energy_dram_pj", "pJ", "min", "sim", lambda p: p.totals.dram_pj, "expected DRAM energy"),
    Metric("energy_leakage_pj", "pJ", "min", "sim", lambda p: p.totals.leakage_pj, "expected leakage energy"),
    Metric("area_luts", "LUT", "min", "area", lambda p: _num(p.area.luts), "fitted FPGA area: LUTs"),
    Metric("area_ffs", "FF", "min", "area", lambda p: _num(p.area.ffs), "fitted FPGA area: flip-flops"),
    Metric("area_carries", "CARRY", "min", "area", lambda p: _num(p.area.carries), "fitted FPGA area: carry cells"),
    Metric("accuracy", "", "max", "accuracy", lambda p: p.accuracy,
           "top-1 accuracy of the trained model for (network, schedule), from the accuracy table"),
]
METRICS: dict[str, Metric] = {m.name: m for m in _LIST}


def metric_names() -> list[str]:
    return list(METRICS)


_ACC_COLUMNS = ("network", "schedule", "accuracy")


def load_accuracy_table(path: Path) -> dict[tuple[str, str], float]:
    """A CSV with columns ``network,schedule,accuracy`` (accuracy in [0, 1]; schedule = its label)."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    out: dict[tuple[str, str], float] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if sorted(cols) != sorted(_ACC_COLUMNS):
            raise ConfigError(f"{path}: accuracy table must have columns {', '.join(_ACC_COLUMNS)}, not {cols!r}")
        for i, row in enumerate(reader, start=2):
            try:
                v = float(row["accuracy"])
            except ValueError:
                raise ConfigError(f"{path}: line {i}: accuracy must be a number, not {row['accuracy']!r}") from None
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{path}: line {i}: accuracy must be in [0, 1], not {v!r}")
            k = (row["network"], row["schedule"])
            if k in out:
                raise ConfigError(f"{path}: line {i}: repeated entry for network {k[0]!r}, schedule {k[1]!r}")
            out[k] = v
    return out
