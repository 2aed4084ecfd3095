"""``hwsim sweep`` and ``hwsim report`` (sims/commands/sweep.py): a sweep, its HTML and Markdown reports,
and a spec error turned into one line with exit code 2."""

from pathlib import Path
from typing import Any

import yaml

from sims.cli import main

SPEC = {"name": "cli", "accelerator": "edge16_serial", "network": "resnet20", "chunk_size": 8,
        "axes": {"rows": [8, 16], "schedule": [{"kind": "uniform", "bits": 8}, {"kind": "uniform", "bits": 4},
                                               {"kind": "pdb", "bits": [8, 6, 4]}]},
        "metrics": ["cycles", "energy_pj", "edp"]}


def test_cli_sweep_report_and_errors(tmp_path: Path, capsys: Any) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    db = tmp_path / "r.sqlite"
    assert main(["sweep", str(spec), "--db", str(db), "--workers", "0", "--no-progress"]) == 0
    assert "6 evaluated" in capsys.readouterr().out
    assert main(["report", str(db), "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Pareto" in html
    assert main(["report", str(db), "-o", str(tmp_path / "md"), "--format", "md"]) == 0
    assert (tmp_path / "md" / "layers.png").stat().st_size > 0 and (tmp_path / "md" / "points.csv").exists()
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "axes": {"rowz": [8]}}))
    assert main(["sweep", str(bad), "--db", str(db), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"hwsim: error: {bad}: unknown axis axes.rowz; allowed axes: ")
