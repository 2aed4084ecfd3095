"""Benchmark of the mapper: mixed-precision ResNet-18 on the 16x16 bit-serial ``edge16_serial``, EDP.

Measures, on one core: the time to map the whole network; the schedule's EDP against the default fold
(:func:`hwsim.schedule.default_schedule`) on the same array, both simulated by the engine; per layer,
the mapper's fast-model objective against exhaustive search (every tile, order and dataflow) where
that finishes within ``--exhaustive-points``; mappings evaluated per second next to MAESTRO's published
rate; the time to export the 64-pair precision lookup table. ``--write-docs`` replaces the section
"## Fast path and mapper" of docs/performance.md (other sections are kept), with the fast-path
figures of :mod:`sims.bench.fast`.

Also, ``run_large``: the time to map ResNet-50 and DenseNet-121 (built layer by layer, :func:`resnet50`,
:func:`densenet121`) with and without mapspace pruning, into the section "## Mapping time on large
networks" of docs/mapping.md.

``python -m sims.bench.mapper [--json OUT] [--write-docs] [--large-only]``
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
from sims.bench.doc import replace_section

from . import fast as bench_fast

__all__ = ["PDB_BITS", "mixed_resnet18", "resnet50", "densenet121", "run", "run_large", "main"]

PDB_BITS = {"conv1": (8, 8), "layer1": (4, 4), "layer2": (4, 4), "layer3": (3, 4), "layer4": (2, 4),
            "avgpool": (8, 4), "fc": (8, 8)}
"""(weight bits, activation bits) per stage: first and last layers at 8 bits, the body lower, deeper
stages narrower (the shape of the per-layer allocations PDB-style training produces)."""

MAESTRO_DESIGNS_PER_S = 1.7e5
"""MAESTRO's reported analysis rate (Kwon et al., MICRO 2019 / IEEE Micro 2020): ~1.7 x 10^5 designs/s."""

ROOT = Path(__file__).resolve().parents[2]
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


def _conv(name: str, cin: int, cout: int, hw: int, k: int, s: int = 1, p: int | None = None) -> hwsim.Layer:
    return hwsim.Layer(name, hwsim.LayerKind.CONV2D, cin, cout, hw, hw, k, k, s, s, k // 2 if p is None else p,
                       k // 2 if p is None else p)


def _pool(name: str, c: int, hw: int, k: int, s: int, p: int = 0) -> hwsim.Layer:
    return hwsim.Layer(name, hwsim.LayerKind.POOL, c, c, hw, hw, k, k, s, s, p, p)


def resnet50() -> Network:
    """ResNet-50 at 224x224 (He et al. 2016, torchvision's v1.5: stride on the 3x3), layer by layer."""
    layers = [_conv("conv1", 3, 64, 224, 7, 2), _pool("maxpool", 64, 112, 3, 2, 1)]
    cin, hw = 64, 56
    for stage, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            n = f"layer{stage}.{b}"
            out_hw = hw // s
            layers += [_conv(f"{n}.conv1", cin, width, hw, 1), _conv(f"{n}.conv2", width, width, hw, 3, s),
                       _conv(f"{n}.conv3", width, 4 * width, out_hw, 1)]
            if b == 0:
                layers.append(_conv(f"{n}.downsample", cin, 4 * width, hw, 1, s, 0))
            layers.append(hwsim.Layer(f"{n}.add", hwsim.LayerKind.ELTWISE, 4 * width, 4 * width, out_hw, out_hw))
            cin, hw = 4 * width, out_hw
    layers += [_pool("avgpool", 2048, 7, 7, 1), hwsim.Layer("fc", hwsim.LayerKind.LINEAR, 2048, 1000)]
    return Network.single("resnet50", layers)


def densenet121() -> Network:
    """DenseNet-121 at 224x224 (Huang et al. 2017: growth 32, blocks 6-12-24-16, bottleneck 4x32)."""
    layers = [_conv("features.conv0", 3, 64, 224, 7, 2), _pool("features.pool0", 64, 112, 3, 2, 1)]
    c, hw = 64, 56
    for blk, n_layers in enumerate((6, 12, 24, 16), start=1):
        for i in range(n_layers):
            n = f"features.denseblock{blk}.denselayer{i + 1}"
            layers += [_conv(f"{n}.conv1", c, 128, hw, 1), _conv(f"{n}.conv2", 128, 32, hw, 3)]
            c += 32
        if blk < 4:
            n = f"features.transition{blk}"
            layers += [_conv(f"{n}.conv", c, c // 2, hw, 1), _pool(f"{n}.pool", c // 2, hw, 2, 2)]
            c, hw = c // 2, hw // 2
    layers += [_pool("avgpool", c, hw, hw, 1), hwsim.Layer("classifier", hwsim.LayerKind.LINEAR, c, 1000)]
    return Network.single("densenet121", layers)


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


LARGE_SECTION = "## Mapping time on large networks"
LARGE_NETWORKS = {"resnet50": resnet50, "densenet121": densenet121}


def run_large(accelerators: tuple[str, ...] = ("edge16_serial", "systolic32")) -> list[dict[str, object]]:
    """``map_network`` (EDP) on ResNet-50 and DenseNet-121, with the pruned mapspace (default) and without:
    wall time, distinct MAC layers, and the schedule's EDP (engine) against the default fold."""
    rows: list[dict[str, object]] = []
    for acc_name in accelerators:
        acc = hwsim.resolve_accelerator(acc_name)
        for net_name, build in LARGE_NETWORKS.items():
            net = build()
            base = hwsim.simulate(net, acc)
            base_edp = base.cycles * base.energy.total_pj
            distinct = len({dataclasses.replace(la, name="x", inputs=()) for la in net.layers if la.has_macs})
            row: dict[str, object] = {"network": net_name, "accelerator": acc_name, "layers": len(net.layers),
                                      "distinct_mac_layers": distinct, "macs": net.macs}
            for prune in (True, False):
                t0, c0 = time.perf_counter(), time.process_time()
                sched = map_network(net, acc, "edp", prune=prune)
                dt, dc = time.perf_counter() - t0, time.process_time() - c0
                got = hwsim.simulate(sched, acc)
                row["pruned" if prune else "unpruned"] = {
                    "map_s": dt, "map_cpu_s": dc, "edp_gain_over_default": base_edp / (got.cycles * got.energy.total_pj)}
            rows.append(row)
    return rows


def _large_section(rows: list[dict[str, object]], machine: str) -> str:
    lines = [LARGE_SECTION, "",
             "Measured by `python -m sims.bench.mapper --write-docs` on one core (`taskset -c N`; "
             f"{machine}). Networks built layer by layer from the papers (`sims.bench.mapper.resnet50`, "
             "`densenet121`: the MACs equal torchvision's, see the table above), 8-bit, objective EDP. "
             "*Pruned* is the default mapspace (maximal fitting tiles plus a seeded 2 % sample, sweeps over "
             "balanced and array-aligned extents); *unpruned* is `map_network(..., prune=False)`.", "",
             "Times are the process's CPU time (wall time in brackets: on a shared machine it includes waiting).", "",
             "| network | accelerator | layers (distinct MAC) | map time, pruned | EDP gain over the default fold, "
             "pruned | map time, unpruned | EDP gain, unpruned |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        p, u = r["pruned"], r["unpruned"]
        assert isinstance(p, dict) and isinstance(u, dict)
        lines.append(f"| {r['network']} | {r['accelerator']} | {r['layers']} ({r['distinct_mac_layers']}) | "
                     f"{p['map_cpu_s']:.1f} s ({p['map_s']:.1f} s) | {p['edp_gain_over_default']:.3f}x | "
                     f"{u['map_cpu_s']:.1f} s ({u['map_s']:.1f} s) | {u['edp_gain_over_default']:.3f}x |")
    lines.append("")
    return "\n".join(lines)


def _section(r: dict) -> str:
    m, d, f = r["mapped"], r["default_fold"], r["fast"]
    lines = [SECTION, "",
             "Measured by `python -m sims.bench.mapper --write-docs` pinned to one core (`taskset -c N`), which also runs",
             "`sims/bench/fast.py`. Network: ResNet-18 (preset `resnet18`) with PDB-like bits per stage",
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
    ap.add_argument("--large-only", action="store_true",
                    help="only the large-network rows (docs/mapping.md), not the ResNet-18 section")
    args = ap.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    r = None if args.large_only else run(args.exhaustive_points)
    if r is not None:
        print(_section(r))
    large = _large_section(run_large(), machine)
    print(large)
    if args.json and r is not None:
        Path(args.json).write_text(json.dumps(r, indent=1))
    if args.write_docs:
        if r is not None:
            write_docs(r)
        replace_section(ROOT / "docs" / "mapping.md", LARGE_SECTION[3:], large, title="# Mapping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
