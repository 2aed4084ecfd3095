"""``hwsim rtl`` (sims/commands/rtl.py). The array commands: bad input is one line and exit code 2 before any
file is written; export writes Verilog and the parameters; synth reports counts with the Yosys version; a
missing tool names its install command. The core commands (``hwsim rtl run``, ``hwsim rtl export --arch``):
a small network run on the generated core under cocotb (Icarus) with the JSON keys of the issue, and
schedules the core cannot execute refused with one line, exit code 2 and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hwsim
from hwsim.schedule import LayerMapping, Schedule, Tile, default_schedule
from sims.cli import main
from sims.tb.core_runner import COUNT_KEYS, differing_counts

BASE = ["--rows", "2", "--cols", "2", "--weight-bits", "4", "--act-bits", "4"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--weight-bits", "0"], "PEArray.weight_bits must be an integer in [1, 32], not 0"),
    (["--act-bits", "x"], "PEArray.act_bits must be an integer, not 'x'"),
    (["--acc-bits", "9"], "PEArray.acc_bits must be >= 16"),
    (["--precision", "5"], "PEArray.precision must be an integer in [1, 4], not 5"),
    (["--adder", "csa"], "PEArray.adder must be one of ['single', 'dual'], not 'csa'"),
])
def test_export_rejects_bad_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                       message: str) -> None:
    out = tmp_path / "out"
    assert main(["rtl", "export", *BASE, *extra, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_export_writes_verilog_and_parameters(tmp_path: Path) -> None:
    assert main(["rtl", "export", *BASE, "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "bs_array_r2c2w4a4acc12.json").read_text())
    assert meta["params"]["acc_bits"] == 12 and meta["ports"]["acc"]["width"] == 4 * 12
    text = (tmp_path / "bs_array_r2c2w4a4acc12.v").read_text()
    assert "module bs_array_r2c2w4a4acc12(" in text and "output [47:0] acc;" in text


def test_synth_generic_reports_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["rtl", "synth", *BASE, "--target", "generic", "--build", str(tmp_path), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["yosys_version"].startswith("Yosys ") and rep["luts"] > 0
    # accumulators (acc = 4+4+8 for 256 steps), column and row shifters, controller (bit and step counters,
    # their limits, sign, busy, done)
    assert rep["ffs"] == 4 * 16 + 2 * 7 + 2 * 4 + (2 + 8 + 8 + 2 + 3)
    assert "LUT" in capsys.readouterr().out


def test_missing_tool_names_install_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from sims.cli import main; sys.exit(main(sys.argv[1:]))",
                           "rtl", "synth", *BASE, "--target", "ice40", "--build", str(tmp_path)],
                          capture_output=True, text=True, env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("hwsim: error: yosys not found; install it with: "
                                   "sudo apt-get install -y yosys   (or: make setup)")
    assert not any(tmp_path.iterdir())


def test_export_other_kinds_ports(tmp_path: Path) -> None:
    assert main(["rtl", "export", *BASE, "--kind", "serial_both", "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "bb_array_r2c2w4a4acc12.json").read_text())
    assert meta["params"]["kind"] == "serial_both" and meta["ports"]["weight_precision"]["width"] == 3
    assert "weight_precision*precision" in meta["timing"]["tile_cycles"]
    assert main(["rtl", "export", *BASE, "--kind", "parallel", "--max-steps", "16", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "par_array_r2c2w4a4acc12.json").read_text())
    assert "precision" not in meta["ports"] and "weight_precision" not in meta["ports"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--kind", "fusion"], "PEArray.kind must be one of ['serial_act', 'serial_both', 'parallel'], not 'fusion'"),
    (["--kind", "serial_act", "--weight-precision", "2"],
     "PEArray.weight_precision must be None for kind 'serial_act'"),
    (["--kind", "serial_both", "--weight-precision", "5"],
     "PEArray.weight_precision must be an integer in [1, 4], not 5"),
    (["--kind", "parallel", "--precision", "2"], "PEArray.precision must be None for kind 'parallel'"),
])
def test_export_rejects_bad_kind_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                            message: str) -> None:
    assert main(["rtl", "export", *BASE, *extra, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_sweep_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny sweep (two kinds, one 1x1 2-bit design each, one with place and route): CSV rows with the
    resolved inputs and Yosys/nextpnr versions, the fit JSON (too few designs to fit: said so), the plot."""
    csv_path, png = tmp_path / "area.csv", tmp_path / "area.png"
    rc = main(["rtl", "sweep", "--kinds", "serial_act,parallel", "--sizes", "1x1", "--bits", "2",
               "--build", str(tmp_path / "build"), "--out-csv", str(csv_path), "--out-png", str(png)])
    assert rc == 0
    import csv
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], r["rows"], r["cols"], r["weight_bits"], r["acc_bits"]) for r in rows] == [
        ("serial_act", "1", "1", "2", "12"), ("parallel", "1", "1", "2", "12")]
    assert all(int(r["luts"]) > 10 and int(r["ffs"]) > 10 and r["yosys_version"].startswith("Yosys ") for r in rows)
    assert float(rows[0]["fmax_mhz"]) > 30 and float(rows[1]["fmax_mhz"]) > 30
    fit = json.loads((tmp_path / "area_fit.json").read_text())
    assert fit["kinds"]["serial_act"]["fitted"] is False and fit["kinds"]["parallel"]["points"] == 1
    out = capsys.readouterr().out
    assert "serial_act  1x1 W= 2" in out and json.loads(out[out.index("\n{") + 1:]) == fit
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(("extra", "message"), [
    (["--sizes", "0x1"], "rtl sweep.sizes must be a comma-separated list of RxC with R, C in [1, 64], not '0x1'"),
    (["--bits", "2,x"], "rtl sweep.bits must be a comma-separated list of integers in [1, 32], not '2,x'"),
    (["--kinds", "fusion"], "rtl sweep.kinds must be a comma-separated list of ['serial_act', 'serial_both', "
                            "'parallel'], not 'fusion'"),
])
def test_sweep_rejects_bad_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                message: str) -> None:
    assert main(["rtl", "sweep", *extra, "--out-csv", str(tmp_path / "a.csv"), "--build", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not any(tmp_path.iterdir())

ARCH = """name: tiny_core
rows: 2
cols: 3
pe: {kind: serial_act, max_weight_bits: 8, max_act_bits: 8, acc_bits: 32}
dataflows: [os, ws, is]
interconnect: broadcast
ifmap_sram: {size_bytes: 2048, word_bits: 8, banks: 2}
filter_sram: {size_bytes: 2048, word_bits: 8, banks: 3}
ofmap_sram: {size_bytes: 8192, word_bits: 32, banks: 3}
dram: {bandwidth_bytes_per_cycle: 1}
"""
NET = """name: tiny_net
layers:
- {name: conv1, kind: conv2d, in_channels: 2, out_channels: 4, in_size: 6, kernel: 3, stride: 1, padding: 1}
- {name: conv2, kind: conv2d, in_channels: 4, out_channels: 4, in_size: 6, kernel: 3, stride: 2, padding: 1}
- {name: fc, kind: linear, in_channels: 36, out_channels: 5}
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    arch, net = tmp_path / "arch.yaml", tmp_path / "net.yaml"
    arch.write_text(ARCH)
    net.write_text(NET)
    return arch, net


def test_export_arch_writes_the_core(tmp_path: Path, files: tuple[Path, Path]) -> None:
    out = tmp_path / "v"
    assert main(["rtl", "export", "--arch", str(files[0]), "-o", str(out)]) == 0
    assert "module accel_core(" in (out / "accel_core.v").read_text()
    meta = json.loads((out / "accel_core.json").read_text())
    assert meta["params"]["rows"] == 2 and meta["ports"]["desc_data"]["width"] == meta["descriptor"]["bits"]


def test_run_network_equal_counts(tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The default simulator (Icarus under cocotb): the issue's JSON keys, outputs equal to golden, all twelve
    counts equal; the run says up front how many cycles it simulates (and, past ``ICARUS_SLOW_CYCLES``, that
    Verilator is faster), and the testbench prints a line per layer."""
    import sims.commands.rtl as rtl_cmd

    monkeypatch.setattr(rtl_cmd, "ICARUS_SLOW_CYCLES", 0)
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(files[0]), "--network", str(files[1]), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert list(rep) == ["layers"] and [r["name"] for r in rep["layers"]] == ["conv1", "conv2", "fc"]
    for row in rep["layers"]:
        assert set(row) == {"name", "rtl", "model", "outputs_match_golden"}
        assert list(row["rtl"]) == list(COUNT_KEYS) and list(row["model"]) == list(COUNT_KEYS)
        assert row["outputs_match_golden"] is True
        assert differing_counts(row["rtl"], row["model"]) == {}
    printed = capsys.readouterr().out
    assert "conv2" in printed and "3 conv / linear layers" in printed and "--simulator verilator runs" in printed


def _schedule(tmp_path: Path, files: tuple[Path, Path], layer: str, **change: object) -> Path:
    acc = hwsim.resolve_accelerator(str(files[0]))
    sched = default_schedule(hwsim.resolve_network(str(files[1])), acc)
    maps = []
    for m in sched.mappings:
        if m.layer == layer:
            d = {"layer": m.layer, "dataflow": m.dataflow, "tile": m.tile, "loop_order": m.loop_order,
                 "grouping": m.grouping}
            d.update(change)
            m = LayerMapping(**d)  # type: ignore[arg-type]
        maps.append(m)
    path = tmp_path / "s.json"
    path.write_text(Schedule(sched.network, tuple(maps)).to_json())
    return path


@pytest.mark.parametrize(("layer", "change", "message"), [
    ("conv2", {"dataflow": "is"}, "Layer['conv2']: dataflow 'is' is not built into the RTL core (it has ['os', 'ws'])"),
    ("conv1", {"tile": Tile(1, 4, 1, 6, 6)}, "Layer['conv1'].tile.c must be the whole reduction 2 on the RTL core"),
    ("conv2", {"tile": Tile(1, 4, 4, 3, 3)}, "conv2'].tile needs 196 bytes of ifmap_sram per buffer half"),
])
def test_run_refuses_what_the_core_cannot_execute(tmp_path: Path, files: tuple[Path, Path], layer: str,
                                                  change: dict[str, object], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A dataflow the core lacks, a split reduction, a tile over a buffer (256-byte ifmap buffer here)."""
    small = tmp_path / "small.yaml"
    small.write_text(ARCH.replace("ifmap_sram: {size_bytes: 2048", "ifmap_sram: {size_bytes: 256"))
    sched = _schedule(tmp_path, (small, files[1]), layer, **change)
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(small), "--schedule", str(sched), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_run_refuses_precision_above_the_core(tmp_path: Path, files: tuple[Path, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    arch = tmp_path / "arch4.yaml"
    arch.write_text(ARCH.replace("max_weight_bits: 8, max_act_bits: 8", "max_weight_bits: 4, max_act_bits: 8")
                    .replace("filter_sram: {size_bytes: 2048, word_bits: 8", "filter_sram: {size_bytes: 2048, word_bits: 4"))
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(files[1]), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Layer['conv1']" in err and "4" in err
    assert not out.exists()


def test_run_ws_schedule(tmp_path: Path, files: tuple[Path, Path]) -> None:
    """A schedule that puts conv2 on the weight-stationary dataflow runs and matches golden."""
    sched = _schedule(tmp_path, files, "conv2", dataflow="ws")
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(files[0]), "--schedule", str(sched), "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["layers"]}
    assert all(r["outputs_match_golden"] for r in rows.values())
    ws = rows["conv2"]
    assert ws["rtl"]["compute_cycles"] == ws["model"]["compute_cycles"]
    # the filter buffer's 3 banks fetch a WS fold's 2x3 weights in two cycles: the tile's first fold starts
    # one cycle late, in the core and in the engine (hwsim.engine.operand_wait_cycles)
    assert differing_counts(ws["rtl"], ws["model"]) == {}


UNPACKED = """name: tiny_unpacked
rows: 2
cols: 4
pe: {kind: serial_act, max_weight_bits: 8, max_act_bits: 8, acc_bits: 32}
dataflows: [os, ws]
interconnect: broadcast
ifmap_sram: {size_bytes: 8192, word_bits: 8, banks: 2, packed: false}
filter_sram: {size_bytes: 32768, word_bits: 8, banks: 4, packed: false}
ofmap_sram: {size_bytes: 32768, word_bits: 32, banks: 4, packed: false}
dram: {bandwidth_bytes_per_cycle: 4}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A PDB digits model from `hwsim train` (mixed widths: 8-bit edges, PDB's decreasing bits between)."""
    d = tmp_path_factory.mktemp("trained")
    model = d / "pdb.pt"
    assert main(["train", "pdb", "--dataset", "digits", "-o", str(model), "--epochs", "1", "--pretrain-epochs", "1",
                 "--no-progress"]) == 0
    arch = d / "arch.yaml"
    arch.write_text(UNPACKED)
    return arch, model


def test_run_trained_model_classifies_as_the_model(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """The trained model's own integers on the core (Verilator): every layer's accumulators equal to
    hwsim.golden, the test predictions equal to the model's, and all twelve counts equal to the engine's
    on every layer (unpacked buffers: the engine models the core's storage exactly)."""
    arch, model = trained
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(model), "--samples", "3", "--simulator",
                 "verilator", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    cls = rep["classification"]
    assert cls["samples"] == cls["agree"] == 3 and cls["accumulators_exact"] is True
    assert [r["name"] for r in rep["layers"]] == ["blocks.0.0", "blocks.1.0", "blocks.2.0", "blocks.3.0", "fc"]
    for row in rep["layers"]:
        assert row["outputs_match_golden"] is True
        assert list(row["rtl"]) == list(COUNT_KEYS) and differing_counts(row["rtl"], row["model"]) == {}, row["name"]
        # one element per word: the physical accesses are the words
        assert all(row["rtl_sram_accesses"][k] == row["rtl"][k] for k in row["rtl_sram_accesses"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--samples", "0"], "rtl run.samples must be an integer in [1, 359]"),
    (["--dataset", "mnist1d"], "rtl run.dataset must have inputs of shape [1, 8, 8] (the model's)"),
])
def test_run_trained_bad_input(trained: tuple[Path, Path], tmp_path: Path, argv: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    arch, model = trained
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(model), "--json", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_samples_need_a_trained_model(files: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(files[0]), "--network", str(files[1]), "--samples", "2",
                 "--json", str(out)]) == 2
    assert "rtl run: --samples and --dataset need a --network MODEL.pt" in capsys.readouterr().err
    assert not out.exists()


def test_run_trained_refuses_a_layer_above_the_core_before_building(trained: tuple[Path, Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The model's 8-bit first layer on a 4-bit core: one line naming the layer, exit 2, nothing written."""
    _, model = trained
    arch = tmp_path / "arch4.yaml"
    arch.write_text(UNPACKED.replace("max_weight_bits: 8, max_act_bits: 8", "max_weight_bits: 4, max_act_bits: 4"))
    out = tmp_path / "r.json"
    build = tmp_path / "build"
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(model), "--samples", "2", "--json", str(out),
                 "--build", str(build)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Layer['blocks.0.0']: weight_bits=8, act_bits=8 exceed the core's" in err, err
    assert not out.exists() and not build.exists()


def test_mapper_schedules_run_on_the_core_with_every_count_equal(tmp_path: Path) -> None:
    """`hwsim map` then `hwsim rtl run --schedule` on `rtl8_serial` (Verilator): small_cnn (conv 3x3 with
    stride, OS; linear, WS) and mobilenet_tiny (depthwise, pointwise, a 32768-long reduction), in the mapper's
    EDP schedules. Every layer's outputs equal golden and all twelve counts equal the engine's."""
    for net in ("small_cnn", "mobilenet_tiny"):
        sched, out = tmp_path / f"{net}.sched.json", tmp_path / f"{net}.rtl.json"
        assert main(["map", "--arch", "rtl8_serial", "--network", net, "--json", str(sched)]) == 0
        flows = {m["dataflow"] for m in json.loads(sched.read_text())["mappings"]}
        assert main(["rtl", "run", "--arch", "rtl8_serial", "--network", net, "--schedule", str(sched),
                     "--simulator", "verilator", "--json", str(out)]) == 0
        layers = json.loads(out.read_text())["layers"]
        assert [la["name"] for la in layers] == [m["layer"] for m in json.loads(sched.read_text())["mappings"]]
        assert all(la["outputs_match_golden"] and differing_counts(la["rtl"], la["model"]) == {} for la in layers), net
        assert net != "small_cnn" or flows == {"os", "ws"}


def test_the_fpga_core_runs_the_mappers_schedule_with_every_count_equal(tmp_path: Path, files: tuple[Path, Path],
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The 4x4 core built for the iCE40 HX8K (sims/specs/core_small_ice40.yaml, docs/rtl.md: one bank per
    buffer half, so port-bound; a one-byte link; buffers of one element per word and whole reductions, as
    the core) runs a small network under the mapper's EDP schedule (Verilator): outputs equal golden and
    all twelve counts equal the engine's on every layer."""
    arch = Path(__file__).resolve().parents[3] / "sims" / "specs" / "core_small_ice40.yaml"
    sched, out = tmp_path / "s.json", tmp_path / "r.json"
    assert main(["map", "--arch", str(arch), "--network", str(files[1]), "--json", str(sched)]) == 0
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(files[1]), "--schedule", str(sched),
                 "--simulator", "verilator", "--json", str(out)]) == 0
    layers = {la["name"]: la for la in json.loads(out.read_text())["layers"]}
    assert list(layers) == ["conv1", "conv2", "fc"]
    assert all(la["outputs_match_golden"] and differing_counts(la["rtl"], la["model"]) == {} for la in layers.values())
    assert capsys.readouterr().out.count("12/12") == 3


def test_a_run_the_testbench_stops_is_one_line_and_exit_1(tmp_path: Path, files: tuple[Path, Path],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A layer that does not finish on the core (the testbench's cycle limit) is the core's failure, not bad
    input: one line naming it, exit code 1, no JSON written."""
    import sims.tb.core_runner as core_runner
    from sims.tb.core_tb import CoreBenchError

    def stopped(*args: object, **kw: object) -> None:
        raise CoreBenchError("core testbench on icarus, layer 'conv1': no finish after 100 cycles")

    monkeypatch.setattr(core_runner, "run_layers", stopped)
    arch, net = files
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(arch), "--network", str(net), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == ("hwsim: error: rtl run failed on the core: core testbench on icarus, layer 'conv1': no finish "
                   "after 100 cycles\n")
    assert not out.exists()


def test_run_pgo_needs_verilator(tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """``--pgo`` is a compiled model's build option: with Icarus it is one line, exit 2, nothing written."""
    out = tmp_path / "r.json"
    assert main(["rtl", "run", "--arch", str(files[0]), "--network", str(files[1]), "--pgo", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rtl run.pgo needs --simulator verilator" in err and "'icarus'" in err
    assert not out.exists()


def test_map_for_rtl_keeps_to_what_the_core_executes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hwsim map --for-rtl` on the OS+WS 4x4 core of the FPGA builds (small_4x4_ws: one bank per buffer
    half): without it the mapper picks tiles the core refuses (an OS fold past max_steps, WS tiles wider than
    the one ofmap bank); with
    it the schedule of small_cnn runs (conv3's whole reduction of 288 steps exceeds an OS fold's max_steps,
    so it goes WS, one column), every output equal to golden and all twelve counts equal the engine's. A
    layer the core cannot run at all is one line and exit 2 before any search."""
    spec = (Path(__file__).resolve().parents[3] / "sims" / "specs" / "core_small_ice40.yaml").read_text()
    arch = tmp_path / "ws.yaml"
    arch.write_text(spec.replace("dataflows: [os]", "dataflows: [os, ws]"))
    free, kept, out = tmp_path / "free.json", tmp_path / "kept.json", tmp_path / "r.json"
    assert main(["map", "--arch", str(arch), "--network", "small_cnn", "--json", str(free)]) == 0
    assert main(["rtl", "run", "--arch", str(arch), "--schedule", str(free), "--json", str(out)]) == 2
    err = capsys.readouterr().err   # the first layer the core refuses: conv3 mapped OS past max_steps, or WS too wide
    assert ("exceeds the core's max_steps" in err or "ofmap ports (one partial sum per column" in err) and not out.exists(), err
    assert main(["map", "--arch", str(arch), "--network", "small_cnn", "--for-rtl", "--json", str(kept)]) == 0
    maps = {m["layer"]: m for m in json.loads(kept.read_text())["mappings"]}
    assert maps["conv3"]["dataflow"] == "ws" and all(m["dataflow"] == "os" or m["tile"]["m"] == 1 for m in maps.values())
    assert main(["rtl", "run", "--arch", str(arch), "--schedule", str(kept), "--simulator", "verilator",
                 "--json", str(out)]) == 0
    layers = json.loads(out.read_text())["layers"]
    assert len(layers) == 4 and all(la["outputs_match_golden"] and differing_counts(la["rtl"], la["model"]) == {}
                                    for la in layers)
    wide = tmp_path / "wide.yaml"
    wide.write_text("name: wide\nlayers:\n- {name: c, kind: conv2d, in_channels: 2, out_channels: 4, in_size: 6, "
                    "kernel: 3, weight_bits: 12}\n")
    capsys.readouterr()
    assert main(["map", "--arch", str(arch), "--network", str(wide), "--for-rtl", "--json", str(tmp_path / "w.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Layer['c']: weight_bits=12, act_bits=8 exceed the core's" in err, err
    assert not (tmp_path / "w.json").exists()
