"""Reference for the array benches: values from ``hwsim.golden``, cycles from ``hwsim.timing``.

Plain Python and numpy; no cocotb import, so pytest and the bench share it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np

from hwsim.accelerator import Interconnect, PEKind, PESpec
from hwsim.golden import bit_serial_both_dot, bit_serial_dot, tile_os, wrap
from hwsim.timing import fold_cycles, pe_step

__all__ = ["BenchConfig", "TilePlan", "Tile", "make_tile", "expected_acc", "expected_cycles"]


@dataclass(frozen=True, slots=True)
class TilePlan:
    """What one tile streams: ``steps`` (K) reduction steps at ``precision`` activation bits and, for the
    ``serial_both`` kind, ``weight_precision`` weight bits (None: the array's full ``weight_bits``)."""

    steps: int
    precision: int
    signed: bool
    accumulate: bool = False
    weight_precision: int | None = None


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Everything a bench run needs; travels to the simulator process as JSON in one variable."""

    rows: int
    cols: int
    weight_bits: int
    act_bits: int
    acc_bits: int
    max_steps: int
    plans: tuple[TilePlan, ...]
    seed: int
    results_path: str
    kind: str = "serial_act"

    def to_json(self) -> str:
        d = {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]
        d["plans"] = [[p.steps, p.precision, p.signed, p.accumulate, p.weight_precision] for p in self.plans]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> BenchConfig:
        d = json.loads(text)
        d["plans"] = tuple(TilePlan(int(k), int(p), bool(s), bool(a), None if wp is None else int(wp))
                           for k, p, s, a, wp in d["plans"])
        return cls(**d)

    def weight_precision(self, plan: TilePlan) -> int:
        """Bits of the tile's weights: the plan's for ``serial_both``, else the array's ``weight_bits``."""
        if self.kind == "serial_both" and plan.weight_precision is not None:
            return plan.weight_precision
        return self.weight_bits


@dataclass(frozen=True, slots=True)
class Tile:
    plan: TilePlan
    acts: np.ndarray      # rows x K, each a p-bit (signed or unsigned) integer
    weights: np.ndarray   # K x cols, signed weight_bits integers


def make_tile(cfg: BenchConfig, plan: TilePlan, rng: random.Random) -> Tile:
    """Random operands, biased towards the extremes (they exercise the MSB term and the wrap)."""
    p, wb = plan.precision, cfg.weight_precision(plan)
    if cfg.kind == "parallel":   # full-width operands: the precision only bounds the values
        p = min(p, cfg.act_bits)
    alo, ahi = (-(1 << (p - 1)), (1 << (p - 1)) - 1) if plan.signed else (0, (1 << p) - 1)
    wlo, whi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1

    def pick(lo: int, hi: int) -> int:
        r = rng.random()
        return lo if r < 0.15 else hi if r < 0.3 else rng.randint(lo, hi)

    acts = np.array([[pick(alo, ahi) for _ in range(plan.steps)] for _ in range(cfg.rows)], dtype=np.int64)
    weights = np.array([[pick(wlo, whi) for _ in range(cfg.cols)] for _ in range(plan.steps)], dtype=np.int64)
    return Tile(plan, acts.reshape(cfg.rows, plan.steps), weights.reshape(plan.steps, cfg.cols))


def expected_acc(cfg: BenchConfig, tile: Tile, previous: list[int]) -> list[int]:
    """PE ``(r, c)`` at index ``r*cols + c``: the kind's step-by-step oracle (``bit_serial_dot``,
    ``bit_serial_both_dot``; exact products wrapped for ``parallel``), cross-checked against ``tile_os``."""
    out = []
    plan = tile.plan
    for r in range(cfg.rows):
        for c in range(cfg.cols):
            start = previous[r * cfg.cols + c] if plan.accumulate else 0
            ws, acts = [int(w) for w in tile.weights[:, c]], [int(a) for a in tile.acts[r]]
            if cfg.kind == "serial_both":
                v = bit_serial_both_dot(ws, acts, cfg.weight_precision(plan), plan.precision, cfg.acc_bits,
                                        plan.signed, start)
            elif cfg.kind == "parallel":
                v = wrap(start + sum(w * a for w, a in zip(ws, acts, strict=True)), cfg.acc_bits)
            else:
                v = bit_serial_dot(ws, acts, plan.precision, cfg.acc_bits, plan.signed, start)
            out.append(v)
    if cfg.weight_bits + cfg.act_bits + tile.plan.steps.bit_length() < 60:
        flat = tile_os(tile.acts, tile.weights, acc_bits=cfg.acc_bits).reshape(-1)
        starts = previous if tile.plan.accumulate else [0] * len(out)
        alt = [wrap(int(v) + s, cfg.acc_bits) for v, s in zip(flat, starts, strict=True)]
        if alt != out:
            raise AssertionError("golden models disagree: bit_serial_dot vs tile_os")
    return out


def expected_cycles(cfg: BenchConfig, plan: TilePlan) -> int:
    """hwsim's prediction for one tile on the broadcast array: ``pe_step`` of the kind, then ``fold_cycles``."""
    wp, ap = cfg.weight_precision(plan), plan.precision
    # a plan may ask for more bits than the array has (a bench that must fail): size the spec to the plan
    wmax, amax = max(wp, cfg.weight_bits), max(ap, cfg.act_bits)
    pe = PESpec(kind=PEKind(cfg.kind), max_weight_bits=wmax, max_act_bits=amax, acc_bits=wmax + amax)
    step_cycles, _ = pe_step(pe, wp, ap)
    return fold_cycles(Interconnect.BROADCAST, cfg.rows, cfg.cols, steps=plan.steps, step_cycles=step_cycles)
