"""The ``hwsim`` command as a user runs it: ``run_cli(*args)`` is a real subprocess of ``python -m sims.cli``
(in the repository root unless ``cwd`` says otherwise), shared by the command tests of this folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sims.cli", *args], capture_output=True, text=True, cwd=cwd)

    return run
