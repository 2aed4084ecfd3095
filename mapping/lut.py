"""HAQ-style lookup tables: per-layer latency and energy for every (weight bits, activation bits) pair.

A mixed-precision search (HAQ, Wang et al., CVPR 2019) queries the hardware for the cost of each layer at
each precision. :func:`precision_lut` fills that table with :mod:`hwsim.fast`: every layer is re-costed
at uniform weight width ``w`` and activation width ``a`` under the schedule's mapping (or, where that
tile does not fit at the new widths, :func:`hwsim.schedule.default_mapping`). Pairs the PE cannot run
are NaN. Export as CSV (one row per layer and pair) or NumPy ``.npz`` (arrays ``[layer, w-1, a-1]``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.fast import layer_cost
from hwsim.network import Network
from hwsim.schedule import Schedule, default_mapping, tile_fits

__all__ = ["PrecisionLUT", "precision_lut", "LUT_COLUMNS"]

LUT_COLUMNS = ("layer", "weight_bits", "act_bits", "cycles", "latency_s", "energy_pj")


@dataclass(frozen=True)
class PrecisionLUT:
    """``cycles[i, w-1, a-1]`` and ``energy_pj[i, w-1, a-1]`` of layer ``layers[i]`` at widths (w, a)."""

    layers: tuple[str, ...]
    bits: tuple[int, ...]
    cycles: np.ndarray
    energy_pj: np.ndarray
    clock_hz: float

    def rows(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for i, name in enumerate(self.layers):
            for wi, w in enumerate(self.bits):
                for ai, a in enumerate(self.bits):
                    c = self.cycles[i, wi, ai]
                    out.append({"layer": name, "weight_bits": w, "act_bits": a, "cycles": c,
                                "latency_s": c / self.clock_hz, "energy_pj": self.energy_pj[i, wi, ai]})
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=LUT_COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(self.rows())
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        """Write ``.csv`` or ``.npz`` by suffix."""
        p = Path(path)
        if p.suffix == ".csv":
            p.write_text(self.to_csv())
        elif p.suffix == ".npz":
            np.savez(p, layers=np.array(self.layers), bits=np.array(self.bits), cycles=self.cycles,
                     energy_pj=self.energy_pj, clock_hz=self.clock_hz)
        else:
            raise ValueError(f"PrecisionLUT.save path must end in .csv or .npz, not {str(path)!r}")


def precision_lut(network: Network, acc: Accelerator, schedule: Schedule | None = None,
                  bits: Sequence[int] = tuple(range(1, 9))) -> PrecisionLUT:
    """The lookup table of ``network`` on ``acc`` for every pair of ``bits`` (see the module docstring)."""
    bits = tuple(int(b) for b in bits)
    if not bits or min(bits) < 1:
        raise ValueError(f"precision_lut.bits must be positive integers, not {bits!r}")
    layers = network.layers
    shape = (len(layers), len(bits), len(bits))
    cyc, en = np.full(shape, np.nan), np.full(shape, np.nan)
    for i, la in enumerate(layers):
        base = schedule.mapping_for(la.name) if schedule is not None else None
        for wi, w in enumerate(bits):
            for ai, a in enumerate(bits):
                if w > acc.pe.max_weight_bits or a > acc.pe.max_act_bits:
                    continue
                lw = dataclasses.replace(la, weight_bits=w, act_bits=a, channel_weight_bits=None)
                m = base if base is not None and tile_fits(lw, base.tile, acc) is None else None
                if m is None:
                    m = default_mapping(lw, acc)
                    if base is not None:
                        m = dataclasses.replace(m, dataflow=base.dataflow)
                c = layer_cost(lw, m, acc, "fast")
                cyc[i, wi, ai], en[i, wi, ai] = c.cycles, c.energy_pj
    return PrecisionLUT(tuple(la.name for la in layers), bits, cyc, en, acc.clock_hz)
