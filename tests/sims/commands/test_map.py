"""``hwsim map`` (sims/commands/map.py) and ``hwsim simulate`` with model files and schedules, end to end
(real subprocesses)."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

Cli = Callable[..., subprocess.CompletedProcess[str]]  # the run_cli fixture of conftest.py

def test_map_then_simulate_the_schedule(tmp_path: Path, run_cli: Cli) -> None:
    sched = tmp_path / "s.json"
    r = run_cli("map", "--arch", "edge16_serial", "--network", "cascade_digits", "--objective", "edp",
              "--json", str(sched), "--lut", str(tmp_path / "lut.csv"))
    assert r.returncode == 0, r.stderr
    assert "bin.conv1" in r.stdout and "default fold" in r.stdout and "mappings evaluated" in r.stdout
    assert len((tmp_path / "lut.csv").read_text().splitlines()) == 1 + 64 * 8
    a = run_cli("simulate", "--arch", "edge16_serial", "--schedule", str(sched), "--format", "json")
    b = run_cli("simulate", "--arch", "edge16_serial", "--schedule", str(sched), "--network", "cascade_digits",
              "--format", "json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)
    bad = run_cli("simulate", "--arch", "edge16_serial", "--schedule", str(sched), "--network", "small_cnn")
    assert bad.returncode == 2 and "differs from --network" in bad.stderr


def test_model_files_onnx_and_pickled_module(tmp_path: Path, run_cli: Cli) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 10))
    torch.save(model, tmp_path / "m.pt")
    r = run_cli("simulate", "--arch", "edge16_serial", "--network", str(tmp_path / "m.pt"), "--input-shape", "1,1,8,8",
              "--format", "json", "--trust-pickle")
    assert r.returncode == 0, r.stderr
    names = [la["layer"] for la in json.loads(r.stdout)["stages"][0]["layers"]]
    assert names == ["0", "4"]
    h = onnx.helper
    w = onnx.numpy_helper.from_array(np.zeros((4, 1, 3, 3), dtype=np.float32), "w")
    g = h.make_graph([h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")], "g",
                     [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
                     [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [w])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    r = run_cli("map", "--arch", "edge16_serial", "--network", str(tmp_path / "m.onnx"), "--objective", "latency")
    assert r.returncode == 0, r.stderr
    noshape = run_cli("map", "--arch", "edge16_serial", "--network", str(tmp_path / "m.pt"), "--trust-pickle")
    assert noshape.returncode == 2 and "needs an input shape" in noshape.stderr


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, run_cli: Cli) -> None:
    g = onnx.helper.make_graph([onnx.helper.make_node("LSTM", ["x"], ["y"], name="rnn")], "g",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 4])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(tmp_path / "u.onnx"))
    r = run_cli("map", "--arch", "edge16_serial", "--network", str(tmp_path / "u.onnx"))
    assert r.returncode == 2 and "unsupported operators: rnn (LSTM; MACs unknown)" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    (tmp_path / "b.yaml").write_text("conv1: {weight_bits: 12}\n")
    r = run_cli("map", "--arch", "edge16_serial", "--network", "small_cnn", "--bits", str(tmp_path / "b.yaml"))
    assert r.returncode == 2 and "conv1" in r.stderr and "weight_bits" in r.stderr


def test_quant_checkpoint_is_read_by_quant(tmp_path: Path, run_cli: Cli) -> None:
    import quant
    from quant.models import ConvNet

    m = ConvNet((1, 8, 8), 10, channels=((4, 3, 1),))
    quant.apply_specs(m, [quant.LayerSpec(2, 3), quant.LayerSpec(7, 8)])  # 7-bit DoReFa weights fit an 8-bit PE
    net = quant.save_model(tmp_path / "q.pt", m, torch.zeros(1, 1, 8, 8), name="q")
    r = run_cli("map", "--arch", "edge16_serial", "--network", str(tmp_path / "q.pt"), "--objective", "latency",
              "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    sched = json.loads((tmp_path / "s.json").read_text())
    assert [m["layer"] for m in sched["mappings"]] == [la.name for la in net.layers]
    assert sched["network"]["layers"][0]["weight_bits"] == quant.qlayers(m)[0].hw_bits().weight_bits


def test_thorough_searches_more_and_is_never_worse(run_cli: Cli) -> None:
    import re

    def run(*extra: str) -> tuple[int, float]:
        r = run_cli("map", "--arch", "edge16_serial", "--network", "small_cnn", "--objective", "edp", *extra)
        assert r.returncode == 0, r.stderr
        evaluated = int(re.search(r"search: (\d+) mappings evaluated", r.stdout).group(1))  # type: ignore[union-attr]
        edp = float(re.search(r"mapped .* EDP ([0-9.e+]+)", r.stdout).group(1))  # type: ignore[union-attr]
        return evaluated, edp

    pruned, thorough = run(), run("--thorough")
    assert thorough[0] > pruned[0]
    assert thorough[1] <= pruned[1] * 1.0001
