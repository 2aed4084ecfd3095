"""``hwsim simulate`` (sims/commands/simulate.py) end to end, as a user runs it (a real subprocess)."""

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]  # the run_cli fixture of conftest.py

def test_simulate_writes_json_csv_plot(tmp_path: Path, run_cli: Cli) -> None:
    out = tmp_path / "o"
    r = run_cli("simulate", "--arch", "edge16_serial", "--network", "resnet20", "--json", str(out / "r.json"),
              "--csv", str(out / "r.csv"), "--plot", str(out / "r.png"))
    assert r.returncode == 0, r.stderr
    assert "layer1.0.conv1" in r.stdout and "total (worst case)" in r.stdout
    data = json.loads((out / "r.json").read_text())
    layers = data["stages"][0]["layers"]
    assert data["totals"]["worst_case"]["cycles"] == sum(la["total_cycles"] for la in layers)
    with (out / "r.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["layer"] for r in rows] == [la["layer"] for la in layers]
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cascade_prints_expected_and_worst_case(run_cli: Cli) -> None:
    r = run_cli("simulate", "--arch", "edge16_serial", "--network", "cascade_digits", "--format", "json")
    assert r.returncode == 0
    t = json.loads(r.stdout)["totals"]
    assert t["expected"]["cycles"] < t["worst_case"]["cycles"]


@pytest.mark.parametrize("yaml_text,needle", [
    ("name: a\nrows: 4\ncols: 4\nbogus: 1\n", "unknown key accelerator.bogus"),
    ("name: a\nrows: -4\ncols: 4\n", "Accelerator.rows must be an integer in [1, 4096], not -4"),
    ("name: [a\n", "malformed YAML"),
])
def test_bad_accelerator_is_one_line_exit_2_nothing_written(tmp_path: Path, yaml_text: str, needle: str,
                                                            run_cli: Cli) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml_text)
    out = tmp_path / "out.json"
    r = run_cli("simulate", "--arch", str(spec), "--network", "small_cnn", "--json", str(out))
    assert r.returncode == 2
    assert needle in r.stderr and str(spec) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_network_with_too_many_bits_is_rejected(tmp_path: Path, run_cli: Cli) -> None:
    net = tmp_path / "n.yaml"
    net.write_text("name: n\nlayers:\n- {name: c1, kind: conv2d, in_channels: 3, out_channels: 8, in_size: 8, "
                   "kernel: 3, weight_bits: 12}\n")
    r = run_cli("simulate", "--arch", "edge16_serial", "--network", str(net))
    assert r.returncode == 2
    assert "Layer['c1'].weight_bits must be an integer in [1, 8], not 12" in r.stderr


def test_buffer_too_small_is_rejected(tmp_path: Path, run_cli: Cli) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\nrows: 4\ncols: 4\nifmap_sram: {size_bytes: 8}\n")
    r = run_cli("simulate", "--arch", str(spec), "--network", "small_cnn")
    assert r.returncode == 2
    assert "buffers too small" in r.stderr and "ifmap_sram" in r.stderr
