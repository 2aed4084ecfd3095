"""Host side of the core's HDL testbench (``core_tb.v``): writes a run's files, builds the testbench
with the core, runs it under one of three drivers and reads what it wrote.

Drivers of the same testbench (:data:`DRIVERS`):

* ``cocotb`` on Icarus or Verilator: :mod:`sims.tb.core_bench` starts cocotb's clock (it runs in the
  simulator's GPI layer, not in Python), releases reset and waits for ``done``; no Python runs per cycle.
* ``binary``: Verilator only, a plain ``--cc --exe`` model with a small C++ main
  (``core_tb_main.cpp``) that toggles the clock. It skips VPI and ``--public-flat-rw``, which keep
  Verilator from optimising the design, and is the fast one for large runs (docs/performance.md).

The testbench is built once per core and per capacity (how many descriptors, transfers, index entries,
tensor words and outputs one layer may have; a run that needs more builds a larger one); the data of a
run are read from files at run time, so a new network does not rebuild the core.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtl.program import COUNTERS, LayerProgram
from rtl.tools import verilator_bin_dir

from . import runner as _runner
from .runner import REPO, build_hdl, ensure_simulator, verilator_make_flags

__all__ = ["DRIVERS", "TB_SOURCE", "MAIN_SOURCE", "TB_COUNTERS", "Capacity", "CoreBenchError", "LayerOut",
           "core_ports", "capacity_for", "write_run", "read_run", "build_binary", "run_core_tb",
           "TbRun", "DEFAULT_CAPACITY", "PGO_TRAIN_LAYERS", "PGO_TRAIN_CYCLES", "PGO_FLAGS"]

DRIVERS = ("cocotb", "binary")
TB_SOURCE = Path(__file__).with_name("core_tb.v")
MAIN_SOURCE = Path(__file__).with_name("core_tb_main.cpp")
# the order in which core_tb.v writes the counters (its `counters` line)
TB_COUNTERS = ("cycles", "compute_cycles", "fill_cycles", "stall_cycles", "ifmap_sram_reads", "ifmap_sram_writes",
               "filter_sram_reads", "filter_sram_writes", "ofmap_sram_reads", "ofmap_sram_writes", "dram_read_bits",
               "dram_write_bits")
KINDS = {"x": 0, "w": 1, "y": 2}


class CoreBenchError(AssertionError):
    """The testbench reported an error (its DRAM model's checks, a cycle limit) or did not finish."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """Per-layer storage of the testbench (parameters of ``core_tb``): entries of each table."""

    desc: int
    xfer: int
    idx: int
    ten: int
    y: int

    def parameters(self) -> dict[str, int]:
        return {"DESC_DEPTH": self.desc, "XFER_DEPTH": self.xfer, "IDX_DEPTH": self.idx, "TEN_DEPTH": self.ten,
                "Y_DEPTH": self.y}

    def tag(self) -> str:
        return "_".join(f"{k[0]}{v.bit_length() - 1}" for k, v in zip("dxity", self.astuple(), strict=True))

    def astuple(self) -> tuple[int, int, int, int, int]:
        return (self.desc, self.xfer, self.idx, self.ten, self.y)


# Default capacities: Icarus keeps its arrays 4-state and per word, so its default is small; Verilator's
# (about 30 MB) holds every layer of the networks in hwsim's presets that the core accepts.
DEFAULT_CAPACITY = {"icarus": Capacity(1 << 10, 1 << 12, 1 << 16, 1 << 16, 1 << 16),
                    "verilator": Capacity(1 << 14, 1 << 16, 1 << 22, 1 << 20, 1 << 20)}


@dataclass(frozen=True, slots=True)
class LayerOut:
    """What the testbench reports for one layer."""

    counters: dict[str, int]
    y: np.ndarray            # flat, signed per the program's out_signed
    written: np.ndarray      # flat
    incomplete_transfers: tuple[int, ...]


def core_ports(verilog: str) -> dict[str, int]:
    """Widths of the core's ports that parameterise the testbench, read from its exported Verilog."""
    out = {}
    for port, param in (("desc_data", "DESC_BITS"), ("ext_rdata", "LINK_BITS"), ("ext_tag", "TAG_BITS"),
                        ("cycles", "COUNT_BITS")):
        m = re.search(rf"^\s*(?:input|output)\s+\[(\d+):0\]\s+{port}\s*;", verilog, re.M)
        if m is None:
            raise ValueError(f"accel_core.{port} must be a vector port of the exported core, not missing")
        out[param] = int(m.group(1)) + 1
    return out


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _needs(prog: LayerProgram) -> tuple[int, int, int, int, int]:
    la = prog.layer
    n_idx = sum(int(t.indices.size) for t in prog.transfers)
    return (len(prog.phases), len(prog.transfers), n_idx, la.ifmap_count + la.weight_count, la.ofmap_count)


def capacity_for(sim: str, programs: list[LayerProgram]) -> Capacity:
    """The default capacity for ``sim``, grown (to powers of two) where a layer of ``programs`` needs more."""
    need = [max(col) for col in zip(*(_needs(p) for p in programs), strict=True)] if programs else [0] * 5
    base = DEFAULT_CAPACITY[sim].astuple()
    return Capacity(*(max(b, _pow2(n)) for b, n in zip(base, need, strict=True)))


def _write_words(path: Path, values: np.ndarray | list[int], bits: int) -> None:
    """Non-negative words of ``bits`` bits, each ``ceil(bits/8)`` bytes, most significant first: what
    ``$fread`` loads into a memory of that width (about 5x fewer simulator instructions than parsing the
    same words with ``$readmemh``, docs/rtl.md)."""
    nbytes = -(-bits // 8)
    if nbytes in (4, 8):
        np.asarray(values, dtype=np.uint64).astype(f">u{nbytes}").tofile(path)
    else:
        path.write_bytes(b"".join(int(v).to_bytes(nbytes, "big") for v in values))


def write_run(run_dir: Path, programs: list[tuple[LayerProgram, np.ndarray, np.ndarray]], max_cycles: int,
              desc_bits: int) -> None:
    """The files ``core_tb.v`` reads (its header comment describes them), one layer at a time, descriptors
    of ``desc_bits``; progress lines on (a line per finished layer: the binary's driver shows the slow ones,
    cocotb's all)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_words(run_dir / "run.bin", [len(programs), int(max_cycles), 1], 64)
    for li, (prog, x, w) in enumerate(programs):
        la = prog.layer
        xf = np.asarray(x, dtype=np.int64).reshape(-1)
        wf = np.asarray(w, dtype=np.int64).reshape(-1)
        if xf.size != la.ifmap_count or wf.size != la.weight_count:
            raise ValueError(f"run_layers.programs[{li}] operands must have {la.ifmap_count} and {la.weight_count} "
                             f"elements for layer {la.name!r}, not {xf.size} and {wf.size}")
        ten = np.concatenate([xf, wf])
        if ten.size and (ten.min() < -(1 << 31) or ten.max() >= 1 << 31):
            raise ValueError(f"run_layers.programs[{li}] operands must fit 32-bit integers for layer {la.name!r}")
        entries, tables, off = [], [], 0
        for t in prog.transfers:
            ix = np.asarray(t.indices, dtype=np.int64) + (xf.size if t.tensor == "w" else 0)
            entries.append((KINDS[t.tensor] << 64) | (ix.size << 32) | off)
            tables.append(ix)
            off += ix.size
        idx = np.concatenate(tables) if tables else np.zeros(0, dtype=np.int64)
        descs = prog.descriptors()
        _write_words(run_dir / f"l{li}.hdr.bin", [len(descs), len(entries), idx.size, ten.size, la.ofmap_count, 0, 0,
                                                  0], 64)
        _write_words(run_dir / f"l{li}.desc.bin", descs, desc_bits)
        _write_words(run_dir / f"l{li}.xfer.bin", entries, 96)
        _write_words(run_dir / f"l{li}.idx.bin", idx, 32)
        _write_words(run_dir / f"l{li}.ten.bin", ten & 0xFFFFFFFF, 32)


def _read_mem(path: Path) -> np.ndarray:
    """Values of a ``$writememh`` file (address and comment lines skipped)."""
    words = [ln.strip() for ln in path.read_text().splitlines()]
    return np.array([int(w, 16) for w in words if w and not w.startswith(("@", "//"))], dtype=np.int64)


def read_run(run_dir: Path, programs: list[tuple[LayerProgram, np.ndarray, np.ndarray]], sim: str) -> list[LayerOut]:
    """Parse ``results.txt`` and the output files; raise :class:`CoreBenchError` on a reported error."""
    if TB_COUNTERS != COUNTERS:
        raise RuntimeError(f"core_tb.v writes the counters {TB_COUNTERS}, the core has {COUNTERS}")
    res = run_dir / "results.txt"
    if not res.exists():
        raise CoreBenchError(f"core testbench on {sim} wrote no results; see {run_dir}")
    counters: dict[int, dict[str, int]] = {}
    incomplete: dict[int, tuple[int, ...]] = {}
    for line in res.read_text().splitlines():
        word = line.split()
        if not word:
            continue
        if word[0] == "error":
            li = int(word[1])
            name = programs[li][0].layer.name if li < len(programs) else f"#{li}"
            raise CoreBenchError(f"core testbench on {sim}, layer {name!r}: {' '.join(word[2:])} (files in {run_dir})")
        if word[0] == "counters":
            counters[int(word[1])] = dict(zip(TB_COUNTERS, map(int, word[2:]), strict=True))
        elif word[0] == "incomplete":
            incomplete[int(word[1])] = tuple(int(t) for t in word[2:])
    if len(counters) != len(programs):
        raise CoreBenchError(f"core testbench on {sim} finished {len(counters)} of {len(programs)} layers; "
                             f"see {run_dir}")
    out = []
    for li, (prog, _, _) in enumerate(programs):
        ob = prog.layer.out_bits
        y = _read_mem(run_dir / f"l{li}.y.hex")
        if prog.out_signed:
            y = np.where(y >= 1 << (ob - 1), y - (1 << ob), y)
        out.append(LayerOut(counters[li], y, _read_mem(run_dir / f"l{li}.wc.hex"), incomplete[li]))
    return out


def _stamp(*parts: str) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def _jobs() -> int:
    return 2 if (os.cpu_count() or 1) > 2 else 1


PGO_TRAIN_LAYERS = 4          # layers of the run a profile-guided build's training run simulates at most
PGO_TRAIN_CYCLES = 200_000    # and cycles of each (the training stops at the first layer that needs more)
PGO_FLAGS = ("-fprofile-use", "-fprofile-correction", "-Wno-missing-profile")


def _verilator_build(args: list[str], bdir: Path, what: str) -> None:
    """Run one ``verilator --build`` (the precompiled-header workaround, ccache where there is one); a failure
    keeps its log in ``bdir`` and raises, ``what`` naming the build in the message."""
    env = dict(os.environ, MAKEFLAGS=verilator_make_flags(os.environ.get("MAKEFLAGS")))
    if shutil.which("ccache"):
        env.setdefault("OBJCACHE", "ccache")
    proc = subprocess.run(args, cwd=bdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        (bdir / "build.log").write_text(proc.stdout + proc.stderr)
        raise CoreBenchError(f"verilator build of the core testbench{what} failed (exit {proc.returncode}); see "
                             f"{bdir / 'build.log'}")


def _train(exe: Path, run_dir: Path, train_dir: Path) -> None:
    """Run the instrumented ``exe`` on the first :data:`PGO_TRAIN_LAYERS` layers of ``run_dir`` (its files,
    linked), each cut at :data:`PGO_TRAIN_CYCLES` cycles: the profile the final build is optimised for."""
    shutil.rmtree(train_dir, ignore_errors=True)
    train_dir.mkdir(parents=True)
    n = min(int(np.fromfile(run_dir / "run.bin", dtype=">u8")[0]), PGO_TRAIN_LAYERS)
    for li in range(n):
        for f in run_dir.glob(f"l{li}.*.bin"):
            (train_dir / f.name).symlink_to(f.resolve())
    _write_words(train_dir / "run.bin", [n, PGO_TRAIN_CYCLES, 0], 64)
    # exit 1: the testbench stopped a layer at the cycle cut, which is expected here
    proc = subprocess.run([str(exe), f"+hwsim_dir={train_dir}"], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise CoreBenchError(f"the profiling run of the core testbench exited {proc.returncode}: "
                             f"{(proc.stdout + proc.stderr)[-2000:]}")
    shutil.rmtree(train_dir, ignore_errors=True)


def build_binary(core_v: Path, bdir: Path, parameters: dict[str, int],
                 train: Path | None = None) -> tuple[Path, float]:
    """Build the plain Verilator model of the testbench and the core into ``bdir`` (skipped when nothing
    changed); returns the executable and the seconds the build took (0 when reused).

    With ``train`` (a run directory written by :func:`write_run`) the build is profile-guided (GCC's
    ``-fprofile-generate`` / ``-fprofile-use``): an instrumented model first runs a short part of that run
    (:func:`_train`), then the model is compiled again for the branches and calls the profile found hot.
    The simulated behaviour is the same; the speed-up is in docs/performance.md. ``bdir`` then holds the
    profile-guided model only."""
    ensure_simulator("verilator")
    exe = bdir / "Vcore_tb"
    args = [str(verilator_bin_dir() / "verilator"), "--cc", "--exe", "--build", "-j", str(_jobs()),
            *_runner.verilator_args(), "-MAKEFLAGS", _runner.VERILATOR_OPT_FAST, "--top-module", "core_tb", "-Mdir", str(bdir / "obj"), "-o", str(exe),
            *[f"-G{k}={v}" for k, v in sorted(parameters.items())], str(TB_SOURCE), str(core_v), str(MAIN_SOURCE)]
    pgo = ["pgo", *PGO_FLAGS] if train is not None else []
    stamp = _stamp(" ".join(args[1:] + pgo), _runner.machine_id(), core_v.read_text(), TB_SOURCE.read_text(), MAIN_SOURCE.read_text())
    stamp_file = bdir / "build.stamp"
    if exe.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return exe, 0.0
    bdir.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    if train is None:
        _verilator_build(args, bdir, "")
    else:
        obj = bdir / "obj"
        shutil.rmtree(obj, ignore_errors=True)   # no objects or profile of an earlier build
        gen = ["-CFLAGS", "-fprofile-generate", "-LDFLAGS", "-fprofile-generate"]
        _verilator_build(args[:1] + gen + args[1:], bdir, " (instrumented for profiling)")
        _train(exe, train, bdir / "train")
        for f in [*obj.glob("*.o"), *obj.glob("*.a"), exe]:   # the same sources compiled again, the profile kept
            f.unlink()
        use = [a for flag in PGO_FLAGS for a in ("-CFLAGS", flag)]
        _verilator_build(args[:1] + use + args[1:], bdir, " (profile-guided)")
    stamp_file.write_text(stamp)
    return exe, time.perf_counter() - t0


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process' finished children: a simulator's own time, which other
    jobs on a shared machine stretch less than its wall time."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_binary(exe: Path, run_dir: Path) -> None:
    tail: list[str] = []
    # the model's stdout is a pipe here, block-buffered by C stdio: stdbuf makes each progress line arrive
    # when the testbench prints it
    line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    with subprocess.Popen([*line_buffered, str(exe), f"+hwsim_dir={run_dir}"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        last = time.perf_counter()
        for line in proc.stdout:
            tail = (tail + [line])[-20:]
            if line.startswith("core_tb: layer"):
                now = time.perf_counter()
                if now - last > 2.0:   # a progress line only for layers that took a while
                    print(line.rstrip(), f"({now - last:.1f} s)", file=sys.stderr, flush=True)
                last = now
    if proc.returncode not in (0, 1):    # 1: the testbench reported an error (read from results.txt)
        raise CoreBenchError(f"core testbench binary exited {proc.returncode}: {''.join(tail)[-2000:]}")


def _run_cocotb(sim: str, runner: Any, bdir: Path, run_dir: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        runner.test(hdl_toplevel="core_tb", hdl_toplevel_lang="verilog", test_module="sims.tb.core_bench",
                    build_dir=bdir, test_dir=run_dir,
                    extra_env=env, plusargs=[f"+hwsim_dir={run_dir}"], waves=bool(os.environ.get("HWSIM_WAVES")))
    except SystemExit as exc:   # the test failed: the testbench's results file says why (read_run)
        if not (run_dir / "results.txt").exists():
            raise CoreBenchError(f"core bench failed on {sim} (exit {exc.code}); see {run_dir / 'results.xml'}") \
                from None


@dataclass(frozen=True, slots=True)
class TbRun:
    layers: list[LayerOut]
    build_dir: Path
    build_s: float
    run_s: float
    run_cpu_s: float = 0.0   # CPU time (user + system) of the simulator's processes during run_s


def run_core_tb(sim: str, driver: str, core_v: Path, bdir: Path,
                programs: list[tuple[LayerProgram, np.ndarray, np.ndarray]], max_cycles: int,
                keep: bool = False, pgo: bool = False) -> TbRun:
    """Run ``programs`` on the core in ``core_v`` under ``driver``; returns a :class:`TbRun`. The run's
    files are removed afterwards unless it failed, ``keep`` is set or ``HWSIM_KEEP_RUNS`` is set. ``pgo``
    (the ``binary`` driver): a profile-guided model (:func:`build_binary`), built apart from the plain one."""
    if driver not in DRIVERS:
        raise ValueError(f"run_layers.driver must be one of {list(DRIVERS)}, not {driver!r}")
    if driver == "binary" and sim != "verilator":
        raise ValueError(f"run_layers.driver 'binary' needs sim 'verilator', not {sim!r}")
    if pgo and driver != "binary":
        raise ValueError(f"run_layers.pgo needs driver 'binary' (a Verilator model), not {driver!r}")
    params = core_ports(core_v.read_text())
    cap = capacity_for(sim, [p for p, _, _ in programs])
    params.update(cap.parameters())
    tdir = bdir / f"tb_{driver}{'_pgo' if pgo else ''}_{cap.tag()}"
    tdir.mkdir(parents=True, exist_ok=True)
    runs = bdir / "runs"
    runs.mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=runs))
    write_run(run_dir, programs, max_cycles, params["DESC_BITS"])
    t0 = time.perf_counter()
    if driver == "binary":
        exe, build_s = build_binary(core_v, tdir, params, train=run_dir if pgo else None)
        t1, c1 = time.perf_counter(), _children_cpu_s()
        _run_binary(exe, run_dir)
    else:
        runner, built = build_hdl(sim, [core_v, TB_SOURCE], "core_tb", tdir, parameters=params, report=True)
        t1, c1 = time.perf_counter(), _children_cpu_s()
        build_s = t1 - t0 if built else 0.0
        _run_cocotb(sim, runner, tdir, run_dir)
    run_s, run_cpu_s = time.perf_counter() - t1, _children_cpu_s() - c1
    layers = read_run(run_dir, programs, sim)   # raises (keeping the files) on a reported error
    if not (keep or os.environ.get("HWSIM_KEEP_RUNS")):
        shutil.rmtree(run_dir, ignore_errors=True)
    return TbRun(layers, tdir, build_s, run_s, run_cpu_s)
