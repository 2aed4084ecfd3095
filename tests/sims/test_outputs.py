"""Outputs are written together at the end, atomically, with the user's umask: a failure while producing
any of them leaves every existing file as it was, and no temporary file behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sims.cli import main
from sims.output import Outputs


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_simulate_writes_all_outputs_with_the_umask(tmp_path: Path, umask_027: object,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    outs = [tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"]
    rc = main(["simulate", "--arch", "edge16_serial", "--network", "small_cnn", "--json", str(outs[0]),
               "--csv", str(outs[1]), "--plot", str(outs[2])])
    assert rc == 0, capsys.readouterr().err
    for p in outs:
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, p  # 0o666 & ~0o027, not mkstemp's 0o600
    assert outs[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json", "r.png"]  # no temporaries


def test_a_failing_writer_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.csv"
    a.write_text("old a")
    b.write_text("old b")
    out = Outputs()
    out.text(a, "new a")

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    out.produced_by(b, fails)
    with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device$"):
        out.commit()
    assert a.read_text() == "old a" and b.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.csv"]


def test_report_replaces_an_earlier_report_only_when_it_succeeds(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from sims.sweep.execute import InlineBackend, run_sweep
    from sims.sweep.spec import spec_from_dict
    from sims.sweep.store import ResultStore

    db = tmp_path / "s.sqlite"
    with ResultStore(db) as st:
        run_sweep(spec_from_dict({"accelerator": "edge16_serial", "network": "small_cnn",
                                  "axes": {"rows": [8, 16]}, "metrics": ["cycles", "edp"]}), st, InlineBackend())
    rep = tmp_path / "rep"
    assert main(["report", str(db), "-o", str(rep), "--format", "md"]) == 0
    before = {p.name: p.read_bytes() for p in rep.iterdir()}
    assert {"points.csv", "report.md", "layers.png"} <= set(before)
    assert main(["report", str(db), "-o", str(rep), "--format", "md", "--point", "zzzz"]) == 2
    assert {p.name: p.read_bytes() for p in rep.iterdir()} == before
    capsys.readouterr()
