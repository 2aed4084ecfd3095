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


def test_export_other_kinds_ports(tmp_path: Path) -> None:
    assert main(["rtl", "export", *BASE, "--kind", "serial_both", "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "bb_array_r2c2w4a4acc12.json").read_text())
    assert meta["params"]["kind"] == "serial_both" and meta["ports"]["weight_precision"]["width"] == 3
    assert "weight_precision*precision" in meta["timing"]["tile_cycles"]
    assert main(["rtl", "export", *BASE, "--kind", "parallel", "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "par_array_r2c2w4a4acc12.json").read_text())
    assert "precision" not in meta["ports"] and "weight_precision" not in meta["ports"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--kind", "fusion"], "PEArray.kind must be one of ['serial_act', 'serial_both', 'parallel'], not 'fusion'"),
    (["--kind", "serial_act", "--weight-precision", "2"],
     "PEArray.weight_precision must be None for kind 'serial_act'"),
    (["--kind", "serial_both", "--weight-precision", "5"],
     "PEArray.weight_precision must be an integer in [1, 4], not 5"),
    (["--kind", "parallel", "--precision", "2"], "PEArray.precision must be None for kind 'parallel'"),
])
def test_export_rejects_bad_kind_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                            message: str) -> None:
    assert main(["rtl", "export", *BASE, *extra, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_sweep_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny sweep (two kinds, one 1x1 2-bit design each, one with place and route): CSV rows with the
    resolved inputs and Yosys/nextpnr versions, the fit JSON (too few designs to fit: said so), the plot."""
    csv_path, png = tmp_path / "area.csv", tmp_path / "area.png"
    rc = main(["rtl", "sweep", "--kinds", "serial_act,parallel", "--sizes", "1x1", "--bits", "2",
               "--build", str(tmp_path / "build"), "--out-csv", str(csv_path), "--out-png", str(png)])
    assert rc == 0
    import csv
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], r["rows"], r["cols"], r["weight_bits"], r["acc_bits"]) for r in rows] == [
        ("serial_act", "1", "1", "2", "12"), ("parallel", "1", "1", "2", "12")]
    assert all(int(r["luts"]) > 10 and int(r["ffs"]) > 10 and r["yosys_version"].startswith("Yosys ") for r in rows)
    assert float(rows[0]["fmax_mhz"]) > 30 and float(rows[1]["fmax_mhz"]) > 30
    fit = json.loads((tmp_path / "area_fit.json").read_text())
    assert fit["kinds"]["serial_act"]["fitted"] is False and fit["kinds"]["parallel"]["points"] == 1
    out = capsys.readouterr().out
    assert "serial_act  1x1 W= 2" in out and json.loads(out[out.index("\n{") + 1:]) == fit
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(("extra", "message"), [
    (["--sizes", "0x1"], "rtl sweep.sizes must be a comma-separated list of RxC with R, C in [1, 64], not '0x1'"),
    (["--bits", "2,x"], "rtl sweep.bits must be a comma-separated list of integers in [1, 32], not '2,x'"),
    (["--kinds", "fusion"], "rtl sweep.kinds must be a comma-separated list of ['serial_act', 'serial_both', "
                            "'parallel'], not 'fusion'"),
])
def test_sweep_rejects_bad_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                message: str) -> None:
    assert main(["rtl", "sweep", *extra, "--out-csv", str(tmp_path / "a.csv"), "--build", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not any(tmp_path.iterdir())
