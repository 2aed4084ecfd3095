"""The README's main command, end to end at the smallest size (one epoch per training)."""

import json
import sqlite3
from pathlib import Path

import pytest

from sims.cli import main
from sims.tb.core_runner import differing_counts


def test_demo_runs_the_whole_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --out, as `make demo` passes it
    out = Path("out") / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--pretrain-epochs", "1", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"uniform", "pdb", "cmn"}
    assert all(0.1 < m["accuracy"] <= 1 for m in summary["models"].values())
    sims = summary["simulations"]
    assert len(sims) == 9
    cmn = [s for s in sims if s["model"] == "cmn"]
    assert all(s["expected_cycles"] <= s["worst_cycles"] for s in cmn)
    rtl = summary["rtl"]   # the trained PDB model on the RTL core: predictions, accumulators, all twelve counts
    assert rtl["model"] == "pdb" and rtl["agree"] == rtl["samples"] > 0 and rtl["accumulators_exact"]
    assert len(rtl["layers"]) == 5 and all(r["outputs_match_golden"] and differing_counts(r["rtl"], r["model"]) == {} for r in rtl["layers"])
    with sqlite3.connect(out / "sweep" / "results.sqlite") as db:
        assert db.execute("select count(*) from points where status = 'ok'").fetchone()[0] == 108
    html = Path(summary["report"]).read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert (out / "resnet18_edge16_serial.png").stat().st_size > 10_000
    assert main(["demo", "--out", str(out), "--epochs", "0"]) == 2
