"""Data files are never a way to run code: a pickle whose payload would write a marker file is refused by
the model front end (without ``--trust-pickle``) and by the CIFAR-10 reader, and the marker never appears."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from sims.cli import main


class _Payload:
    """Unpickling this calls ``os.system`` -- what a hostile file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("command", ["simulate", "map"])
@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_model_pickle_payload_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                           suffix: str) -> None:
    marker = tmp_path / "marker"
    model = tmp_path / f"evil{suffix}"
    torch.save({"model": _Payload(marker)}, model)  # a torch zip whose data.pkl calls os.system
    rc, err = _run([command, "--arch", "edge16_serial", "--network", str(model), "--input-shape", "1,1,8,8"], capsys)
    assert not marker.exists()
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--trust-pickle" in err and "ONNX" in err and "run code" in err


def test_legacy_pickle_payload_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plain (non-zip) pickle, the format torch.save used before 1.6."""
    marker = tmp_path / "marker"
    model = tmp_path / "old.pt"
    model.write_bytes(pickle.dumps(_Payload(marker)))
    rc, err = _run(["simulate", "--arch", "edge16_serial", "--network", str(model)], capsys)
    assert not marker.exists()
    assert rc == 2 and err.count("\n") == 1 and "--trust-pickle" in err


def test_trusted_pickled_module_still_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    torch.save(model, tmp_path / "m.pt")
    argv = ["simulate", "--arch", "edge16_serial", "--network", str(tmp_path / "m.pt"), "--input-shape", "1,1,8,8"]
    rc, err = _run(argv, capsys)
    assert rc == 2 and "--trust-pickle" in err  # refused by default ...
    rc, err = _run(argv + ["--trust-pickle"], capsys)
    assert rc == 0, err  # ... read when the user vouches for the file


def test_torchscript_is_refused_without_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    path = tmp_path / "ts.pt"
    with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; users still hold such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(4, 2))), str(path))
    assert any("/code/" in n for n in zipfile.ZipFile(path).namelist())
    rc, err = _run(["map", "--arch", "edge16_serial", "--network", str(path), "--input-shape", "1,4"], capsys)
    assert rc == 2 and "TorchScript" in err and err.count("\n") == 1


def test_cifar_pickle_payload_does_not_run(tmp_path: Path) -> None:
    from quant.data import load_cifar10_dir

    marker = tmp_path / "marker"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (tmp_path / name).write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match="^" + re.escape(str(tmp_path / "data_batch_1")) + r": not a CIFAR-10 python "
                       r"batch file \(refused to load (posix|os)\.system \(a CIFAR-10 batch holds only arrays\)\)$"):
        load_cifar10_dir(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_of_every_protocol_still_load(tmp_path: Path, protocol: int) -> None:
    import numpy as np

    from quant.data import load_cifar10_dir

    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": b"b", b"labels": [i % 10 for i in range(40)],
                 b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8), b"filenames": [b"f.png"] * 40}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    splits = load_cifar10_dir(tmp_path)
    assert tuple(splits.train.x.shape[1:]) == (3, 32, 32) and len(splits.test.y) == 40
    assert float(splits.train.x.max()) <= 1.0
