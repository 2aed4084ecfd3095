"""``hwsim demo``: the main job on built-in defaults (what the README's first command runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, map, simulate, verify RTL, sweep and report on bundled defaults")
    p.add_argument("--out", default="out/demo", help="directory for everything the demo writes (default: out/demo)")
    p.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs per method (default 6)")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="full-precision pre-training epochs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (drawn only when stderr is a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoConfig, run_demo
    from ..output import check_output_dir

    for name in ("epochs", "pretrain_epochs"):
        if getattr(args, name) < 1:
            raise ValueError(f"demo.{name} must be an integer >= 1, not {getattr(args, name)!r}")
    check_output_dir(args.out, "demo --out")
    run_demo(DemoConfig(Path(args.out), pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, seed=args.seed,
                        progress=not args.no_progress and sys.stderr.isatty()))
    return 0
