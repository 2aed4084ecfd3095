"""``sims.allocator``: the heap setting the ``hwsim`` command starts with and the SCALE-Sim benchmark
gives both of its processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sims import allocator, cli
from sims.bench import scalesim as bench


def test_the_setting_is_taken_on_this_machine() -> None:
    assert sys.platform.startswith("linux")   # the machines this project runs on: glibc
    assert allocator.tune_allocator() is True
    assert allocator.ALLOCATOR_ENV == {"MALLOC_TRIM_THRESHOLD_": str(64 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}


def test_the_command_sets_it_before_it_parses_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(allocator, "tune_allocator", lambda: calls.append("tuned") or True)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == ["tuned"]


def test_scalesim_runs_under_the_same_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def fake_run(cmd: list[str], **kw: object) -> object:
        env = kw["env"]
        assert isinstance(env, dict)
        seen.update(env)
        raise subprocess.CalledProcessError(1, cmd)
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    monkeypatch.setattr(bench, "SCALESIM_PY", Path(sys.executable))
    with pytest.raises(subprocess.CalledProcessError):
        bench.run_scalesim(bench.TOPO_HEAD, tmp_path)
    assert {k: seen[k] for k in allocator.ALLOCATOR_ENV} == allocator.ALLOCATOR_ENV

