"""``hwsim simulate --arch ARCH --network NET``: per-layer cycles, utilisation and energy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import hwsim
from hwsim.network import Network

from ..layer_report import format_table, plot_layers, write_csv
from ..output import atomic_write_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate a network on an accelerator, layer by layer")
    p.add_argument("--arch", required=True, help="accelerator YAML file or bundled preset name")
    p.add_argument("--network", required=True, help="network YAML file or bundled preset name")
    p.add_argument("--json", metavar="OUT", help="write the full result as JSON")
    p.add_argument("--csv", metavar="OUT", help="write one CSV row per layer")
    p.add_argument("--plot", metavar="OUT.png", help="write a per-layer stacked-bar plot")
    p.add_argument("--format", choices=("table", "json"), default="table", help="what to print on stdout")
    p.set_defaults(func=run)


def load_network_arg(spec: str) -> Network:
    """A network from a YAML file or a bundled preset name."""
    return hwsim.resolve_network(spec)


def run(args: argparse.Namespace) -> int:
    acc = hwsim.resolve_accelerator(args.arch)
    net = load_network_arg(args.network)
    res = hwsim.simulate(net, acc)
    if args.json:
        atomic_write_text(Path(args.json), res.to_json())
    if args.csv:
        write_csv(res, args.csv)
    if args.plot:
        plot_layers(res, args.plot)
    print(res.to_json() if args.format == "json" else format_table(res))
    return 0
