"""``hwsim demo``: the main job on built-in defaults (what the README's first command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

import hwsim

from ..layer_report import format_table, plot_layers, write_csv
from ..output import atomic_write_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on bundled defaults")
    p.add_argument("--out", default="out/demo", help="directory for the reports (default: out/demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    acc = hwsim.resolve_accelerator("edge16_serial")
    net = hwsim.resolve_network("resnet18")
    res = hwsim.simulate(net, acc)
    print(format_table(res))
    atomic_write_text(out / "resnet18_edge16_serial.json", res.to_json())
    write_csv(res, out / "resnet18_edge16_serial.csv")
    plot_layers(res, out / "resnet18_edge16_serial.png")
    print(f"\nreports written to {out}/")
    return 0
