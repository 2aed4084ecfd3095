"""Sweeps survive what happens to real runs: a worker killed mid-chunk (as the OOM killer does), the
driver killed with ``kill -9`` (no worker may outlive it), Ctrl-C at any moment (one line, exit code
130, no traceback from any process), and more workers asked for than there are cores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sims.sweep import execute
from sims.sweep.execute import InlineBackend, LocalBackend, make_backend, run_sweep, usable_cpus
from sims.sweep.points import PointResolver, grid_points
from sims.sweep.spec import spec_from_dict
from sims.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[3]
SPEC = spec_from_dict({"accelerator": "edge16_serial", "network": "small_cnn",
                       "axes": {"rows": [8, 16, 32], "cols": [8, 16], "pe.kind": ["serial_act", "parallel"]},
                       "metrics": ["cycles", "energy_pj"], "chunk_size": 3})

# Evaluates like the real worker function, but a worker handed the chunk holding CRASH_KEY kills itself
# with SIGKILL (always, or only the first time): a real process death, seen by the real pool.
CRASHY = '''
import os, signal
from pathlib import Path
from sims.sweep.evaluate import _MEMO

def evaluate(token, items):
    if any(k == os.environ["HWSIM_TEST_CRASH_KEY"] for k, _ in items):
        flag = Path(os.environ["HWSIM_TEST_CRASH_DIR"]) / "crashed"
        if os.environ["HWSIM_TEST_CRASH_MODE"] == "always" or not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    return _MEMO._by_token[token].evaluate_many(items)
'''


def _rows(db: Path) -> dict[str, tuple[Any, ...]]:
    with ResultStore(db, readonly=True) as st:
        return {r["key"]: (r["status"], r["error"], r["metrics_json"]) for r in st.rows()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, ...]]:
    db = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    with ResultStore(db) as st:
        run_sweep(SPEC, st, InlineBackend())
    return _rows(db)


@pytest.mark.parametrize("mode", ["once", "always"])
def test_a_killed_worker_does_not_abort_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
                                                  reference: dict[str, tuple[Any, ...]]) -> None:
    (tmp_path / "crashy_eval.py").write_text(CRASHY)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get the parent's sys.path
    import crashy_eval  # type: ignore[import-not-found]

    resolver = PointResolver(SPEC)
    target = resolver.key(list(grid_points(SPEC))[4])
    monkeypatch.setenv("HWSIM_TEST_CRASH_KEY", target)
    monkeypatch.setenv("HWSIM_TEST_CRASH_DIR", str(tmp_path))
    monkeypatch.setenv("HWSIM_TEST_CRASH_MODE", mode)
    monkeypatch.setattr(execute, "_evaluate_token", crashy_eval.evaluate)
    backend = LocalBackend(2)
    with ResultStore(tmp_path / "s.sqlite") as st:
        summary = run_sweep(SPEC, st, backend)
    got = _rows(tmp_path / "s.sqlite")
    assert summary.points == summary.evaluated == len(reference) == len(got) == 12
    failed = {k for k, (status, _, _) in got.items() if status == "failed"}
    if mode == "once":  # retried alone on a fresh pool: every row as in an uninterrupted run
        assert backend.restarts == 1 and not failed
        assert got == reference
    else:  # the chunk that kills its worker twice is stored as failed; every other point is as usual
        assert backend.restarts == 2
        assert target in failed and len(failed) <= SPEC.chunk_size and summary.failed == len(failed)
        assert all("worker process died" in (got[k][1] or "") for k in failed)
        assert {k: v for k, v in got.items() if k not in failed} == {k: v for k, v in reference.items()
                                                                         if k not in failed}


def test_more_workers_than_cores_are_capped(capsys: pytest.CaptureFixture[str]) -> None:
    backend = make_backend(10_000)
    assert isinstance(backend, LocalBackend) and backend.workers == usable_cpus()
    err = capsys.readouterr().err
    assert f"--workers 10000 is more than the {usable_cpus()} usable CPU cores" in err and err.count("\n") == 1


# ---- the driver as a user runs it (subprocesses) ---------------------------------------------------------

BIG_SPEC = textwrap.dedent("""\
    accelerator: edge16_serial
    network: resnet20
    axes:
      rows: {range: [4, 64], step: 4}
      cols: {range: [4, 64], step: 4}
      pe.kind: [serial_act, parallel, fusion]
      schedule: [{kind: uniform, bits: 8}, {kind: uniform, bits: 4}, {kind: pdb, bits: [8, 6, 4, 2]}]
    metrics: [cycles, energy_pj]
    chunk_size: 16
    """)


def _session(sid: int) -> list[int]:
    """Processes of session ``sid`` (the driver's, started with ``start_new_session``) still alive."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    """The driver, its stderr in ``err.txt`` (a file, not a pipe: an orphaned worker holding a pipe open
    would make the test hang instead of fail)."""
    (tmp_path / "big.yaml").write_text(BIG_SPEC)
    with open(tmp_path / "err.txt", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "sims.cli", "sweep", str(tmp_path / "big.yaml"), "--db",
                                 str(tmp_path / "s.sqlite"), "--workers", "2"], cwd=ROOT, text=True,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def _wait_for_workers(proc: subprocess.Popen[str], tmp_path: Path, n: int = 2, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while len(_session(proc.pid)) < 1 + n:  # the driver, the resource tracker may come too
        assert proc.poll() is None, (tmp_path / "err.txt").read_text()
        assert time.monotonic() - t0 < timeout, "workers did not start"
        time.sleep(0.05)


def _reap(sid: int, timeout: float = 10.0) -> list[int]:
    t0 = time.monotonic()
    while (left := _session(sid)) and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
    for pid in left:  # leave nothing behind even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_driver_leaves_no_process(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    _wait_for_workers(proc, tmp_path)
    time.sleep(0.5)  # workers busy with chunks
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _reap(proc.pid) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("when", ["start-up", "workers running"])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path: Path, when: str) -> None:
    proc = _start(tmp_path)
    if when == "start-up":
        time.sleep(0.3)
    else:
        _wait_for_workers(proc, tmp_path)
        time.sleep(0.3)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    try:
        proc.wait(timeout=60)
    finally:
        left = _reap(proc.pid)
    err = (tmp_path / "err.txt").read_text()
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "interrupted" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert left == []
    if when == "workers running":  # what was stored is intact and resumable
        with ResultStore(tmp_path / "s.sqlite", readonly=True) as st:
            rows = st.rows()
        assert all(json.loads(r["metrics_json"]) for r in rows if r["status"] == "ok")


def test_a_reachable_scheduler_address_runs_the_sweep(tmp_path: Path,
                                                     reference: dict[str, tuple[Any, ...]]) -> None:
    """``--scheduler tcp://HOST:PORT`` passes the fast reachability check and gives the inline rows."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        backend = make_backend(scheduler=cluster.scheduler_address)
        with ResultStore(tmp_path / "d.sqlite") as st:
            run_sweep(SPEC, st, backend)
    assert _rows(tmp_path / "d.sqlite") == reference
