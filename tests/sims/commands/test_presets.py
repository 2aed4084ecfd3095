"""``hwsim presets`` (sims/commands/presets.py): lists the bundled presets and prints one as YAML that
``hwsim simulate --arch FILE`` reads back to the same result (a real subprocess)."""

import subprocess
from collections.abc import Callable
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]  # the run_cli fixture of conftest.py


def test_presets_list_and_print(tmp_path: Path, run_cli: Cli) -> None:
    r = run_cli("presets")
    assert r.returncode == 0
    assert "edge16_serial" in r.stdout and "resnet18" in r.stdout
    r = run_cli("presets", "edge8_serial")
    assert r.returncode == 0
    (tmp_path / "a.yaml").write_text(r.stdout)
    r2 = run_cli("simulate", "--arch", str(tmp_path / "a.yaml"), "--network", "small_cnn")
    r3 = run_cli("simulate", "--arch", "edge8_serial", "--network", "small_cnn")
    assert r2.returncode == 0 and r2.stdout == r3.stdout
