"""``hwsim verify``: every method's trained integers reproduce its PyTorch model through hwsim.golden.

Tiny real runs (digits, one epoch of pre-training and one of fine-tuning) so the suite stays fast; a
tampered integer weight must make the check fail, and a file that is not a checkpoint exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sims.cli import main

torch.set_num_threads(1)

FAST = ["--dataset", "digits", "--epochs", "1", "--pretrain-epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("verify")
    runs = {"uniform": ["--bits", "2"], "pdb": ["--bits", "auto"], "bwa": ["--bits", "2", "--alpha-frac-bits", "4"],
            "cq": ["--bits", "2"], "cmn": ["--density", "0.5"]}
    out = {}
    for method, extra in runs.items():
        p = root / f"{method}.pt"
        assert main(["train", method, "-o", str(p), *FAST, *extra]) == 0
        out[method] = p
    return out


@pytest.mark.parametrize("method", ["uniform", "pdb", "bwa", "cq", "cmn"])
def test_verify_agrees_on_every_test_sample(trained: dict[str, Path], method: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["verify", str(trained[method]), "--dataset", "digits", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["samples"] == 359 and res["agree"] == 359 and res["accumulators_exact"] is True
    assert all(la["integer"] and la["widths_ok"] and la["no_overflow"] and la["bit_serial_ok"] for la in res["layers"])
    assert len(res["layers"]) == (10 if method == "cmn" else 5)
    assert main(["verify", str(trained[method]), "--dataset", "digits"]) == 0
    text = capsys.readouterr().out
    assert "359/359 test predictions agree (100.00 %)" in text and "every accumulator exact (32-bit): yes" in text


def test_tampered_integer_weight_fails(trained: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    d = torch.load(trained["uniform"], weights_only=True)
    term = d["integers"]["stages"][0][1]["terms"][0]
    w = term["weight"].clone()
    w.view(-1)[: w.numel() // 4] *= -1  # a quarter of the second layer's weights flipped
    term["weight"] = w
    bad = tmp_path / "tampered.pt"
    torch.save(d, bad)
    capsys.readouterr()
    assert main(["verify", str(bad), "--dataset", "digits"]) == 1
    out = capsys.readouterr().out
    assert "every accumulator exact (32-bit): no" in out and "blocks.1.0: float mismatch" in out


def test_too_narrow_width_is_reported(trained: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    d = torch.load(trained["uniform"], weights_only=True)
    d["integers"]["stages"][0][1]["weight_bits"] = 2  # DoReFa 2-bit integers are +-1, +-3: they need 3 bits
    bad = tmp_path / "narrow.pt"
    torch.save(d, bad)
    capsys.readouterr()
    assert main(["verify", str(bad), "--dataset", "digits"]) == 1
    assert "blocks.1.0: integer out of its width" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["text", "other_dict", "pickle"])
def test_not_a_checkpoint_exits_2(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.pt"
    if content == "text":
        p.write_text("not a model\n")
    elif content == "other_dict":
        torch.save({"format": "something else", "state_dict": {}}, p)
    else:
        torch.save(torch.nn.Linear(2, 2), p)  # a pickled module: never unpickled as code
    assert main(["verify", str(p), "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "verify.path must be a hwsim.quant/1 model file written by `hwsim train`" in err[0]
    assert str(p) in err[0]


def test_missing_file_and_wrong_dataset_exit_2(trained: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "none.pt"), "--dataset", "digits"]) == 2
    assert "verify.path must be an existing MODEL.pt file" in capsys.readouterr().err
    assert main(["verify", str(trained["uniform"]), "--dataset", "mnist1d"]) == 2
    assert "verify.dataset must have inputs of shape [1, 8, 8]" in capsys.readouterr().err
