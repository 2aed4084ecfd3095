"""``hwsim map --arch ARCH --network MODEL --objective latency|energy|edp``: search the best tiling.

Prints one row per layer (dataflow, loop order, tile, cycles, energy) and the totals next to the default
fold's; ``--json`` writes the schedule (``hwsim simulate --schedule`` reads it back), ``--lut`` the
per-layer (weight bits, activation bits) lookup table as CSV or ``.npz``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import hwsim

if TYPE_CHECKING:
    from mapping.mapper import TileFilter

from ..output import Outputs, check_output_path, strict_json
from .simulate import add_model_options, load_network_arg


def register(sub: argparse._SubParsersAction) -> None:
    from mapping.mapper import DEFAULT_MAX_MAPSPACE, OBJECTIVES

    p = sub.add_parser("map", help="choose dataflow, loop order and tiles per layer (latency, energy or EDP)")
    p.add_argument("--arch", required=True, help="accelerator YAML file or bundled preset name")
    p.add_argument("--network", required=True, help="network preset, YAML, or model file (.onnx, .csv, .pt)")
    p.add_argument("--objective", choices=OBJECTIVES, default="edp", help="what to minimise (default: edp)")
    p.add_argument("--json", metavar="SCHEDULE.json", help="write the chosen schedule as JSON")
    p.add_argument("--lut", metavar="OUT.csv|OUT.npz", help="write the per-layer precision lookup table")
    p.add_argument("--grouping", choices=("grouped", "naive", "best"), default="grouped",
                   help="precision groups for per-channel weight bits (default: grouped)")
    p.add_argument("--max-mapspace", type=int, default=DEFAULT_MAX_MAPSPACE,
                   help=f"fitting tiles evaluated per layer and dataflow (default: {DEFAULT_MAX_MAPSPACE})")
    p.add_argument("--thorough", action="store_true",
                   help="search every fitting tile, not only the maximal ones and a sample (slower; docs/mapping.md)")
    p.add_argument("--for-rtl", action="store_true",
                   help="keep to what the generated RTL core (`hwsim rtl run`) executes: its dataflows, whole "
                        "reductions, tiles in its one-element-per-word buffers, fold steps and ofmap banks")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mapping.lut import precision_lut
    from mapping.mapper import LayerChoice, map_network

    if args.json:
        check_output_path(args.json, "--json")
    if args.lut:
        check_output_path(args.lut, "--lut", (".csv", ".npz"))
    if args.json and args.lut and Path(args.json).resolve() == Path(args.lut).resolve():
        raise ValueError("--json and --lut must name different files")
    acc = hwsim.resolve_accelerator(args.arch)
    net = load_network_arg(args.network, args.input_shape, args.bits, args.skip_unsupported,
                           args.trust_pickle)
    keep = _core_filter(net, acc) if args.for_rtl else None
    t0 = time.perf_counter()
    choices: list[LayerChoice] = []
    sched = map_network(net, acc, args.objective, max_mapspace=args.max_mapspace, grouping=args.grouping,
                        choices=choices, prune=not args.thorough, keep=keep)
    took = time.perf_counter() - t0
    res = hwsim.simulate(sched, acc)
    base = hwsim.simulate(net, acc)
    print(f"{'layer':<24} {'flow':<4} {'order':<6} {'tile n,m,c,p,q':<20} {'cycles':>12} {'energy_uJ':>10}")
    for m, la in zip(sched.mappings, res.layers, strict=True):
        t = m.tile
        tile = f"{t.n},{t.m},{t.c},{t.p},{t.q}"
        print(f"{m.layer:<24} {m.dataflow.value:<4} {m.loop_order:<6} {tile:<20} {la.total_cycles:>12} "
              f"{la.energy.total_pj / 1e6:>10.3f}")
    for label, r in (("mapped", res), ("default fold", base)):
        print(f"{label:<13} cycles {r.expected_cycles:>14.0f}  energy {r.expected_energy.total_pj / 1e6:>12.3f} uJ  "
              f"EDP {r.expected_cycles * r.expected_energy.total_pj:.4g} pJ*cycles")
    print(f"search: {sum(c.evaluated for c in choices)} mappings evaluated in {took:.2f} s")
    outputs = Outputs()
    if args.json:
        outputs.text(args.json, strict_json(sched.to_json(), "map --json"))
    if args.lut:
        lut = precision_lut(net, acc, sched)
        outputs.produced_by(args.lut, lambda tmp: lut.save(str(tmp)))
    outputs.commit()
    return 0


def _core_filter(net: hwsim.Network, acc: hwsim.Accelerator) -> TileFilter:
    """``--for-rtl``: the generated core's limits as the mapper's tile filter (``rtl.program.core_tiles``),
    after every conv / linear layer is checked to run on the core at all (one line naming the first that
    cannot)."""
    from rtl.program import CoreParams, check_layer, core_tiles

    core = CoreParams.from_accelerator(acc)
    for la in net.layers:
        if la.has_macs:
            check_layer(core, la)
    return lambda layer, flow, tiles: core_tiles(core, layer, flow, tiles)
