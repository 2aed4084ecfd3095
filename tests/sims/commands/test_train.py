"""``hwsim train`` (sims/commands/train.py): a short run writes MODEL.pt that loads back to a hwsim.Network;
``--report R.json`` holds the summary fields for every method; bad input exits 2 before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hwsim
from quant.export import load_network
from sims.cli import main

torch.set_num_threads(1)

FAST = ["--dataset", "digits", "--epochs", "1", "--pretrain-epochs", "1", "--no-progress"]


@pytest.mark.parametrize(("method", "bits"), [("pdb", "4,2,2"), ("cmn", None)])
def test_train_writes_loadable_model(tmp_path: Path, method: str, bits: str | None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    argv = ["train", method, "--dataset", "digits", "-o", str(out), "--epochs", "1", "--pretrain-epochs", "1",
            "--no-progress", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(argv + (["--bits", bits] if bits else [])) == 0
    assert '"test_accuracy"' in capsys.readouterr().out
    net = load_network(out)
    assert isinstance(net, hwsim.Network) and net.is_cascade == (method == "cmn")
    if method == "pdb":
        assert [la.weight_bits for la in net.layers if la.has_macs] == [8, 5, 3, 3, 8]  # DoReFa k bits: k+1
    assert hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial")).cycles > 0


@pytest.mark.parametrize(("argv", "msg"), [
    (["pdb", "--bits", "2,4,3"], "PDB.schedule must be non-increasing, not (2, 4, 3)"),
    (["uniform", "--bits", "0"], "MethodConfig.bits[0] must be an integer in [1, 16], not 0"),
    (["uniform", "--bits", "x"], "train.bits must be comma-separated integers, not 'x'"),
    (["cq", "--bits", "9"], "MethodConfig.budget_bits must be a number in [1, 4], not 9.0"),
    (["uniform", "--dataset", "/no/such/dir"], "Dataset.spec must be 'digits', 'mnist1d' or an existing directory"),
])
def test_bad_input_exits_2_before_training(tmp_path: Path, argv: list[str], msg: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", *argv[:1], "-o", str(tmp_path / "m.pt"), "--no-progress"]
    if "--dataset" not in argv:
        base += ["--dataset", "digits"]
    assert main(base + argv[1:]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: {msg}") and err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "m.pt").exists()


def test_cmn_report(tmp_path: Path) -> None:
    rep = tmp_path / "r.json"
    assert main(["train", "cmn", "-o", str(tmp_path / "m.pt"), "--report", str(rep), "--seed", "3",
                 "--stage1-epochs", "1", *FAST]) == 0
    r = json.loads(rep.read_text())
    assert (r["method"], r["dataset"], r["seed"], r["rule"], r["budget"]) == ("cmn", "digits", 3, "budget", 0.35)
    assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["reference_accuracy"] <= 1.0
    assert r["worst_cycles_fraction"] > 1.0 > r["expected_cycles_fraction"] > 0.0
    assert r["exit_rates"][0] + r["exit_rates"][1] == pytest.approx(1.0)
    # the expected fraction is stage 1's share plus the stage-2 share of the inputs that go on
    c1_share = r["worst_cycles_fraction"] - 1.0
    assert r["expected_cycles_fraction"] == pytest.approx(c1_share + r["exit_rates"][1], rel=1e-6)
    assert r["threshold"] is None or 0.0 <= r["threshold"] <= 1.0


@pytest.mark.parametrize(("method", "extra"), [("uniform", ["--bits", "2"]), ("pdb", ["--bits", "4,2,2"]),
                                               ("bwa", ["--bits", "2"]), ("cq", ["--bits", "2.5"])])
def test_report_for_other_methods(tmp_path: Path, method: str, extra: list[str]) -> None:
    rep = tmp_path / "sub" / "r.json"
    assert main(["train", method, "-o", str(tmp_path / "m.pt"), "--report", str(rep), *FAST, *extra]) == 0
    r = json.loads(rep.read_text())
    assert (r["method"], r["dataset"], r["seed"]) == (method, "digits", 0) and 0.0 <= r["accuracy"] <= 1.0
    assert "expected_cycles_fraction" not in r


@pytest.mark.parametrize(("argv", "msg"), [
    (["--budget", "0"], "train.budget must be a number in (0, 1], not 0.0"),
    (["--budget", "1.5"], "train.budget must be a number in (0, 1], not 1.5"),
    (["--density", "0"], "train.density must be a number in (0, 1], not 0.0"),
    (["--density", "2"], "train.density must be a number in (0, 1], not 2.0"),
    (["--report", "r.txt"], "train.report must end in .json"),
])
def test_bad_report_input_exits_2(tmp_path: Path, argv: list[str], msg: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    assert main(["train", "cmn", "-o", str(out), *FAST, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hwsim: error: {msg}")
    assert not out.exists()
