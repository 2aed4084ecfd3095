"""``hwsim sweep SPEC.yaml --db results.sqlite`` and ``hwsim report results.sqlite -o report/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a co-design sweep (resumable; results in SQLite)")
    p.add_argument("spec", help="sweep spec YAML (see docs/sweeps.md)")
    p.add_argument("--db", required=True, help="SQLite results file (created, or resumed if it exists)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: all cores; 0: evaluate in this process)")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="run on a dask.distributed cluster, e.g. tcp://HOST:8786, instead of local workers")
    p.add_argument("--retry-failed", action="store_true", help="re-evaluate points stored as failed")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (one is drawn only when stderr is a terminal)")
    p.set_defaults(func=run_sweep_cmd)

    r = sub.add_parser("report", help="Pareto plots, per-layer breakdowns and an HTML/Markdown report of a sweep")
    r.add_argument("db", help="SQLite results file written by 'hwsim sweep'")
    r.add_argument("-o", "--out", required=True, help="output directory")
    r.add_argument("--point", metavar="KEY", default=None,
                   help="point (key or key prefix) for the per-layer breakdown (default: lowest EDP)")
    r.add_argument("--format", choices=("html", "md"), default="html", help="report format (default: html)")
    r.add_argument("--parquet", action="store_true", help="also export points.parquet (needs pyarrow)")
    r.set_defaults(func=run_report_cmd)


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from sims.sweep.execute import SweepAborted, make_backend, run_sweep
    from sims.sweep.spec import load_sweep_spec
    from sims.sweep.store import ResultStore

    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be an integer >= 0, not {args.workers!r}")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers and --scheduler must not both be given (a cluster brings its own workers)")
    spec = load_sweep_spec(args.spec)
    backend = make_backend(args.workers, args.scheduler)
    with ResultStore(args.db) as store:
        try:
            summary = run_sweep(spec, store, backend, progress=not args.no_progress and sys.stderr.isatty(),
                                retry_failed=args.retry_failed)
        except KeyboardInterrupt:
            print(f"hwsim: sweep interrupted; {store.count()} points are stored in {args.db}; "
                  f"rerun the same command to resume", file=sys.stderr)
            return 130
        except SweepAborted as exc:
            print(f"hwsim: error: sweep stopped: {exc}; {store.count()} points are stored in {args.db}",
                  file=sys.stderr)
            return 1
    print(summary)
    return 0


def run_report_cmd(args: argparse.Namespace) -> int:
    from sims.sweep.report import write_report
    from sims.sweep.store import ResultStore

    if not Path(args.db).is_file():
        raise FileNotFoundError(f"{args.db}: file not found")
    with ResultStore(args.db, readonly=True) as store:
        path = write_report(store, Path(args.out), point=args.point, fmt=args.format, parquet=args.parquet)
    print(f"report written to {path}")
    return 0
