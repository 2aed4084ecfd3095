"""``hwsim train``: a short run writes MODEL.pt that loads back to a hwsim.Network; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import hwsim
from quant.export import load_network
from quant.recipes import MethodConfig
from sims.cli import main


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
    assert msg in err and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


def test_method_config_rejects_increasing_pdb() -> None:
    with pytest.raises(ValueError, match=r"^PDB\.schedule must be non-increasing, not \(1, 2\)$"):
        MethodConfig("pdb", bits=(1, 2))
    with pytest.raises(ValueError, match=r"^MethodConfig\.method must be one of "
                       r"\['fp', 'uniform', 'pdb', 'bwa', 'cq', 'cmn'\], not 'haq'$"):
        MethodConfig("haq")
