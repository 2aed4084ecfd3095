"""``hwsim scalesim -c CONFIG.cfg -t TOPOLOGY.csv -o DIR``: SCALE-Sim's inputs in, SCALE-Sim's reports out.

Reads SCALE-Sim 3.0.0's own config and topology files unchanged and writes ``COMPUTE_REPORT.csv``,
``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv`` with its column names into ``DIR``.
In ``parallel`` mode (fixed-width MAC PEs, the only mode so far) the counts equal SCALE-Sim's, with
``InterfaceBandwidth: CALC`` or ``USER`` (docs/scalesim.md lists its conventions beside the counts
``hwsim simulate`` reports).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.scalesim import load_config, load_topology, report_csvs, simulate_topology

from ..output import atomic_write_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scalesim", help="run a SCALE-Sim config + topology, write SCALE-Sim's reports")
    p.add_argument("-c", dest="config", required=True, metavar="CONFIG.cfg", help="SCALE-Sim config file")
    p.add_argument("-t", dest="topology", required=True, metavar="TOPOLOGY.csv", help="SCALE-Sim topology file")
    p.add_argument("-o", dest="out", required=True, metavar="DIR", help="folder for the three report files")
    p.add_argument("--gemm", action="store_true", help="the topology holds GEMM rows (name, M, N, K)")
    p.add_argument("--mode", choices=("parallel",), default="parallel",
                   help="PE model: 'parallel' reproduces SCALE-Sim 3.0.0's counts exactly")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    layers = load_topology(args.topology, gemm=args.gemm)
    reports = simulate_topology(layers, cfg)
    out = Path(args.out)
    for name, text in report_csvs(reports).items():
        atomic_write_text(out / name, text)
    total = sum(r.total_cycles for r in reports)
    print(f"{len(reports)} layers, {total} cycles (SCALE-Sim convention); reports in {out}")
    return 0
