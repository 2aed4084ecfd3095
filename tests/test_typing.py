"""The core packages type-check (DESIGN: mypy on the core packages)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_packages_type_check() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "hwsim", "mapping", "rtl", "quant"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
