"""A sweep killed with SIGKILL at a random moment and restarted ends with exactly the rows of an
uninterrupted run."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sims.cli import main
from sims.sweep.store import ResultStore

SPEC = {
    "name": "resume", "accelerator": "edge16_serial", "network": "resnet20",
    "axes": {"rows": [4, 8, 16, 32], "cols": [4, 8, 16, 32], "pe.kind": ["serial_act", "parallel", "fusion"],
             "ifmap_sram.size_bytes": [16384, 65536],
             "schedule": [{"kind": "uniform", "bits": 8}, {"kind": "uniform", "bits": 4},
                          {"kind": "pdb", "bits": [8, 6, 4]}]},
    "metrics": ["cycles", "energy_pj", "edp"], "chunk_size": 8,
}


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with ResultStore(db, readonly=True) as st:
        return sorted(tuple(r[c] for c in r if c not in ("elapsed_s", "finished_at")) for r in st.rows())


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _sweep_cmd(spec: Path, db: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "sims.cli", "sweep", str(spec), "--db", str(db), "--workers", str(workers),
            "--no-progress"]


def test_kill_9_then_resume_gives_the_same_rows(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    ref = tmp_path / "ref.sqlite"
    assert main(["sweep", str(spec), "--db", str(ref), "--workers", "0", "--no-progress"]) == 0
    want = _rows(ref)
    assert len(want) == 4 * 4 * 3 * 2 * 3
    rng = random.Random(os.getpid())
    for workers in (0, 1):
        db = tmp_path / f"killed{workers}.sqlite"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
        proc = subprocess.Popen(_sweep_cmd(spec, db, workers), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        # wait until some rows are committed, then kill at a random moment after that
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and _count(db) == 0:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        partial = _count(db)
        assert 0 < partial < len(want)
        assert main(["sweep", str(spec), "--db", str(db), "--workers", "0", "--no-progress"]) == 0
        assert _rows(db) == want

