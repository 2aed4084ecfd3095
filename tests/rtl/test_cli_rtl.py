"""``hwsim rtl``: bad input is one line and exit code 2 before any file is written; export writes Verilog
and the parameters; synth reports counts with the Yosys version; a missing tool names its install command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sims.cli import main

BASE = ["--rows", "2", "--cols", "2", "--weight-bits", "4", "--act-bits", "4"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--weight-bits", "0"], "PEArray.weight_bits must be an integer in [1, 32], not 0"),
    (["--act-bits", "x"], "PEArray.act_bits must be an integer, not 'x'"),
    (["--acc-bits", "9"], "PEArray.acc_bits must be >= 16"),
    (["--precision", "5"], "PEArray.precision must be an integer in [1, 4], not 5"),
    (["--adder", "csa"], "PEArray.adder must be one of ['single', 'dual'], not 'csa'"),
])
def test_export_rejects_bad_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                       message: str) -> None:
    out = tmp_path / "out"
    assert main(["rtl", "export", *BASE, *extra, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_export_writes_verilog_and_parameters(tmp_path: Path) -> None:
    assert main(["rtl", "export", *BASE, "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "bs_array_r2c2w4a4acc12.json").read_text())
    assert meta["params"]["acc_bits"] == 12 and meta["ports"]["acc"]["width"] == 4 * 12
    text = (tmp_path / "bs_array_r2c2w4a4acc12.v").read_text()
    assert "module bs_array_r2c2w4a4acc12(" in text and "output [47:0] acc;" in text


def test_synth_generic_reports_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["rtl", "synth", *BASE, "--target", "generic", "--build", str(tmp_path), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["yosys_version"].startswith("Yosys ") and rep["luts"] > 0
    # accumulators (acc = 4+4+8 for 256 steps), column and row shifters, controller (bit and step counters,
    # their limits, sign, busy, done)
    assert rep["ffs"] == 4 * 16 + 2 * 7 + 2 * 4 + (2 + 8 + 8 + 2 + 3)
    assert "LUT" in capsys.readouterr().out


def test_missing_tool_names_install_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from sims.cli import main; sys.exit(main(sys.argv[1:]))",
                           "rtl", "synth", *BASE, "--target", "ice40", "--build", str(tmp_path)],
                          capture_output=True, text=True, env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("hwsim: error: yosys not found; install it with: "
                                   "sudo apt-get install -y yosys   (or: make setup)")
    assert not any(tmp_path.iterdir())
