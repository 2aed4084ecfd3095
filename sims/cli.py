"""The ``hwsim`` command. Each sub-command lives in ``sims/commands/<name>.py`` with a ``register``
function; heavy packages (torch, amaranth, dask) are imported inside the command, never here.

Bad input (``ConfigError``, ``ValueError``, ``TypeError``, a missing file) becomes one line on stderr
and exit code 2; set ``HWSIM_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import hwsim

__all__ = ["main", "COMMANDS"]

COMMANDS: tuple[str, ...] = (
    "sims.commands.presets",
    "sims.commands.simulate",
    "sims.commands.map",
    "sims.commands.demo",
    "sims.commands.rtl",
    "sims.commands.sweep",
    "sims.commands.scalesim",
    "sims.commands.train",
)


class UsageError(Exception):
    """Raised by a command for bad input that is not a spec error (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwsim", description="Co-design toolkit for low-bit NN accelerators.")
    parser.add_argument("--version", action="version", version=f"hwsim {hwsim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        if os.environ.get("HWSIM_DEBUG"):
            raise
        msg = str(exc) if not isinstance(exc, KeyError) else f"unknown name {exc}"
        print(f"hwsim: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
