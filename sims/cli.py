"""The ``hwsim`` command. Each sub-command lives in ``sims/commands/<name>.py`` with a ``register``
function; heavy packages (torch, amaranth, dask) are imported inside the command, never here.

Bad input (``ConfigError``, ``ValueError``, ``TypeError``, a file that cannot be read or written, a
database that cannot be opened, an input too large for memory) becomes one line on stderr and exit
code 2; Ctrl-C at any moment is one line and exit code 130. Set ``HWSIM_DEBUG=1`` to see the traceback
instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from sims import allocator

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
    "sims.commands.verify",
)


class UsageError(Exception):
    """Raised by a command for bad input that is not a spec error (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    import hwsim  # here, not at import: a Ctrl-C while numpy loads is then caught by main()

    parser = argparse.ArgumentParser(prog="hwsim", description="Co-design toolkit for low-bit NN accelerators.")
    parser.add_argument("--version", action="version", version=f"hwsim {hwsim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """The message a user sees for ``exc``: one line, bounded, naming the file where the error knows it."""
    if isinstance(exc, KeyError):
        msg = f"unknown name {exc}"
    elif isinstance(exc, MemoryError):
        msg = "out of memory; the input asks for more than this machine has (see docs/limits.md)"
    elif isinstance(exc, RecursionError):
        msg = "input nested too deeply"
    elif isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        msg = f"{where}{exc.strerror}"
    elif isinstance(exc, UnicodeDecodeError):
        msg = f"a file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    else:
        msg = str(exc) or type(exc).__name__
    lines = msg.strip().splitlines() or [type(exc).__name__]
    line = lines[0] if len(lines) == 1 else f"{lines[0]} ..."
    return line if len(line) <= 2000 else line[:1997] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    import sqlite3

    try:
        allocator.tune_allocator()   # freed arrays kept for the next pass (sims/allocator.py)
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        if argv is None:
            # The command line itself: end here with 130. A Ctrl-C that lands inside a string exec()
            # (dataclasses build their methods that way while a module imports) leaves CPython marked
            # "interrupted", and it would then die by SIGINT at shutdown although we handled it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except (UsageError, ValueError, TypeError, KeyError, OSError, sqlite3.Error, MemoryError,
            RecursionError, ImportError) as exc:  # ImportError: an optional dependency (torch, pyarrow) missing
        if os.environ.get("HWSIM_DEBUG"):
            raise
        print(f"hwsim: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
