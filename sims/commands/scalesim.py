"""``hwsim scalesim -c CONFIG.cfg -t TOPOLOGY.csv -o DIR``: SCALE-Sim's inputs in, SCALE-Sim's reports out.

Reads SCALE-Sim 3.0.0's own config and topology files unchanged and writes ``COMPUTE_REPORT.csv``,
``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv`` with its column names into ``DIR``.
In ``parallel`` mode (fixed-width MAC PEs, the only mode so far) the counts equal SCALE-Sim's, with
``InterfaceBandwidth: CALC`` or ``USER`` (docs/scalesim.md lists its conventions beside the counts
``hwsim simulate`` reports).
"""

from __future__ import annotations

import argparse
import sys

from hwsim.io import check_network_limits, read_text
from hwsim.scalesim import load_config, load_topology, report_csvs, simulate_topology

from ..output import Outputs, check_output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scalesim", help="run a SCALE-Sim config + topology, write SCALE-Sim's reports")
    p.add_argument("-c", dest="config", required=True, metavar="CONFIG.cfg", help="SCALE-Sim config file")
    p.add_argument("-t", dest="topology", required=True, metavar="TOPOLOGY.csv", help="SCALE-Sim topology file")
    p.add_argument("-o", dest="out", required=True, metavar="DIR", help="folder for the three report files")
    p.add_argument("--gemm", action="store_true", help="the topology holds GEMM rows (name, M, N, K)")
    p.add_argument("--mode", choices=("parallel",), default="parallel",
                   help="PE model: 'parallel' reproduces SCALE-Sim 3.0.0's counts exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (drawn only when stderr is a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out, "-o")
    read_text(args.config, "SCALE-Sim config file")  # a missing or non-UTF-8 file, named, before any work
    read_text(args.topology, "SCALE-Sim topology file")
    cfg = load_config(args.config)
    layers = load_topology(args.topology, gemm=args.gemm)
    check_network_limits(layers, args.topology)
    from tqdm import tqdm

    with tqdm(total=len(layers), unit="layer", disable=args.no_progress or not sys.stderr.isatty(),
              desc="scalesim") as bar:
        reports = simulate_topology(layers, cfg, progress=lambda done: bar.update(done - bar.n))
    outputs = Outputs()
    for name, text in report_csvs(reports).items():
        outputs.text(out / name, text)
    outputs.commit()
    total = sum(r.total_cycles for r in reports)
    print(f"{len(reports)} layers, {total} cycles (SCALE-Sim convention); reports in {out}")
    return 0
