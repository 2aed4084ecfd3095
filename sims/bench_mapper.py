"""Benchmark of the mapper: mixed-precision ResNet-18 on the 16x16 bit-serial ``edge16_serial``, EDP.

Measures, on one core: the time to map the whole network; the schedule's EDP against the default fold
(:func:`hwsim.schedule.default_schedule`) on the same array, both simulated by the engine; per layer,
the mapper's fast-model objective against exhaustive search (every tile, order and dataflow) where
that finishes within ``--exhaustive-points``; mappings evaluated per second next to MAESTRO's published
rate; the time to export the 64-pair precision lookup table. ``--write-docs`` replaces the section
"## Fast path and mapper" of docs/performance.md (other sections are kept), with the fast-path
figures of :mod:`sims.bench_fast`.

``python -m sims.bench_mapper [--json OUT] [--write-docs]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import hwsim
from hwsim.network import Network, Stage
from mapping.lut import precision_lut
from mapping.mapper import LayerChoice, exhaustive_layer, map_layer, map_network
from sims.benchdoc import replace_section

from . import bench_fast

__all__ = ["PDB_BITS", "mixed_resnet18", "run", "main"]

PDB_BITS = {"conv1": (8, 8), "layer1": (4, 4), "layer2": (4, 4), "layer3": (3, 4), "layer4": (2, 4),
            "avgpool": (8, 4), "fc": (8, 8)}
"""(weight bits, activation bits) per stage: first and last layers at 8 bits, the body lower, deeper
stages narrower (the shape of the per-layer allocations PDB-style training produces)."""

MAESTRO_DESIGNS_PER_S = 1.7e5
"""MAESTRO's reported analysis rate (Kwon et al., MICRO 2019 / IEEE Micro 2020): ~1.7 x 10^5 designs/s."""

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Fast path and mapper"


def mixed_resnet18() -> Network:
    net = hwsim.resolve_network("resnet18")

    def bits(la: hwsim.Layer) -> hwsim.Layer:
        for prefix, (w, a) in PDB_BITS.items():
            if la.name.startswith(prefix):
                return dataclasses.replace(la, weight_bits=w, act_bits=a, out_bits=a)
        return la
    return Network(net.name + "_pdb", tuple(Stage(s.name, tuple(bits(la) for la in s.layers), s.exit_rate,
                                                  s.exit_rule, s.threshold) for s in net.stages))


def run(exhaustive_points: int = 20_000_000) -> dict[str, object]:
    acc = hwsim.resolve_accelerator("edge16_serial")
    net = mixed_resnet18()
    t0 = time.perf_counter()
    choices: list[LayerChoice] = []
    sched = map_network(net, acc, "edp", choices=choices)
    map_s = time.perf_counter() - t0
    distinct = {dataclasses.replace(la, name="x", inputs=()): c.evaluated
                for la, c in zip(net.layers, choices, strict=True) if la.has_macs}
    evaluated = sum(distinct.values())  # identical layers are searched once
    got, base = hwsim.simulate(sched, acc), hwsim.simulate(net, acc)
    t0 = time.perf_counter()
    lut = precision_lut(net, acc, sched)
    lut_s = time.perf_counter() - t0
    layers = []
    seen: set[hwsim.Layer] = set()
    for la in net.layers:
        key = dataclasses.replace(la, name="x", inputs=())
        if not la.has_macs or key in seen:
            continue
        seen.add(key)
        t0 = time.perf_counter()
        ch = map_layer(la, acc, "edp")
        t_map = time.perf_counter() - t0
        t0 = time.perf_counter()
        ex = exhaustive_layer(la, acc, "edp", max_points=exhaustive_points)
        t_ex = time.perf_counter() - t0
        row = {"layer": la.name, "mapper_fast_edp": ch.fast_objective, "mapper_points": ch.evaluated,
               "mapper_s": t_map, "engine_edp": ch.cost.edp}
        if ex is not None:
            row.update(exhaustive_fast_edp=ex[0], exhaustive_points=ex[2], exhaustive_s=t_ex,
                       mapper_vs_exhaustive=ch.fast_objective / ex[0])
        layers.append(row)
    return {
        "map_seconds": map_s, "mappings_evaluated": evaluated, "mappings_per_s": evaluated / map_s,
        "maestro_designs_per_s": MAESTRO_DESIGNS_PER_S,
        "mapped": {"cycles": got.cycles, "energy_pj": got.energy.total_pj, "edp": got.cycles * got.energy.total_pj},
        "default_fold": {"cycles": base.cycles, "energy_pj": base.energy.total_pj,
                         "edp": base.cycles * base.energy.total_pj},
        "lut_seconds": lut_s, "lut_entries": int(lut.cycles.size), "layers": layers,
        "exhaustive_budget": exhaustive_points,
        "fast": bench_fast.run(), "machine": f"{platform.processor() or platform.machine()}, python "
                                             f"{platform.python_version()}",
    }


def _section(r: dict) -> str:
    m, d, f = r["mapped"], r["default_fold"], r["fast"]
    lines = [SECTION, "",
             "Measured by `python -m sims.bench_mapper --write-docs` pinned to one core (`taskset -c N`), which also runs",
             "`sims/bench_fast.py`. Network: ResNet-18 (preset `resnet18`) with PDB-like bits per stage",
             f"{', '.join(f'{k} w{w}a{a}' for k, (w, a) in PDB_BITS.items())}; accelerator `edge16_serial`",
             "(16x16 Stripes-style bit-serial array); objective EDP.", "",
             "| quantity | value |", "|---|---|",
             f"| fast path, batched evaluations/s (one layer, dataflow, order, tile each) | {f['batch_evals_per_s']:,.0f} |",
             f"| fast path, single `layer_cost` calls/s (fast / engine) | {f['single_calls_per_s']['fast']:,.0f} / "
             f"{f['single_calls_per_s']['engine']:,.0f} |",
             f"| mapping the whole network | {r['map_seconds']:.2f} s |",
             f"| mappings evaluated (distinct layers) | {r['mappings_evaluated']:,} |",
             f"| mappings evaluated per second | {r['mappings_per_s']:,.0f} (MAESTRO reports ~1.7e5 designs/s) |",
             f"| mapped schedule: cycles, energy, EDP | {m['cycles']:,}, {m['energy_pj'] / 1e6:,.1f} uJ, {m['edp']:.4g} |",
             f"| default fold: cycles, energy, EDP | {d['cycles']:,}, {d['energy_pj'] / 1e6:,.1f} uJ, {d['edp']:.4g} |",
             f"| EDP improvement over the default fold | {d['edp'] / m['edp']:.3f}x |",
             f"| precision lookup table, {r['lut_entries']:,} entries (layers x 64 pairs) | {r['lut_seconds']:.2f} s |",
             "", "Per distinct layer: the mapper's best fast-model EDP against exhaustive search (every tile",
             f"extent, loop order and dataflow), where that has at most {r['exhaustive_budget']:.3g} fitting points:",
             "",
             "| layer | mapper points | mapper s | exhaustive points | exhaustive s | mapper / exhaustive |",
             "|---|---|---|---|---|---|"]
    for la in r["layers"]:
        if "exhaustive_fast_edp" in la:
            lines.append(f"| {la['layer']} | {la['mapper_points']:,} | {la['mapper_s']:.2f} | "
                         f"{la['exhaustive_points']:,} | {la['exhaustive_s']:.1f} | {la['mapper_vs_exhaustive']:.6f} |")
        else:
            lines.append(f"| {la['layer']} | {la['mapper_points']:,} | {la['mapper_s']:.2f} | "
                         f"(> {r['exhaustive_budget']:.3g}, not run) | | |")
    lines.append("")
    return "\n".join(lines)


def write_docs(r: dict, path: Path = ROOT / "docs" / "performance.md") -> None:
    replace_section(path, SECTION[3:].strip(), _section(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    ap.add_argument("--exhaustive-points", type=int, default=20_000_000)
    args = ap.parse_args(argv)
    r = run(args.exhaustive_points)
    print(_section(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    if args.write_docs:
        write_docs(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
