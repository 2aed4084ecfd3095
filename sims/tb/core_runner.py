"""Builds the accelerator core for an ``hwsim.Accelerator`` and runs layers on it under cocotb.

:func:`run_layers` exports the core's Verilog (kept under ``build/cocotb/<sim>/<core>/`` so an unchanged
core is not rebuilt), writes the operands and the compiled programs to files, runs the HDL testbench
(:mod:`sims.tb.core_tb`: cocotb or a plain Verilator binary drives it) and returns what the core counted
and wrote. :func:`rtl_counts` and :func:`model_counts` put the core's
counters and ``hwsim.simulate``'s numbers under the same twelve keys; :func:`differing_counts` says which
of them differ.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.network import Layer
from hwsim.result import LayerResult
from rtl.program import CoreParams, LayerProgram, check_counts

from .runner import REPO

__all__ = ["LayerRun", "CoreRun", "run_layers", "rtl_counts", "rtl_accesses", "model_counts", "cycle_limit",
           "COUNT_KEYS", "COUNT_REL_TOL", "differing_counts", "build_core"]

COUNT_KEYS = ("cycles", "compute_cycles", "fill_cycles", "stall_cycles", "ifmap_sram_reads", "ifmap_sram_writes",
              "filter_sram_reads", "filter_sram_writes", "ofmap_sram_reads", "ofmap_sram_writes", "dram_read_bytes",
              "dram_write_bytes")


@dataclass(frozen=True, slots=True)
class LayerRun:
    name: str
    counters: dict[str, int]
    y: np.ndarray            # what the core wrote to DRAM, shaped like the layer's output
    written: np.ndarray      # how often each output element was written (1 everywhere when complete)
    incomplete_transfers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CoreRun:
    layers: tuple[LayerRun, ...]
    build_dir: Path
    driver: str = "cocotb"       # which driver ran the testbench (sims.tb.core_tb.DRIVERS)
    build_seconds: float = 0.0   # compiling the testbench and the core this time (0 when reused)
    run_seconds: float = 0.0     # simulating (after the build), wall time
    run_cpu_seconds: float = 0.0  # the simulator's CPU time (user + system) in run_seconds


def rtl_counts(counters: dict[str, int], layer: Layer, acc: Accelerator) -> dict[str, float]:
    """The core's counters under :data:`COUNT_KEYS`, in the units the engine counts.

    DRAM bits become bytes (exact, also for sub-byte elements). The core keeps one element per SRAM word
    and counts accesses; the engine counts the data moved in words of the accelerator's buffers,
    ``elements * bits / word_bits``. So each access is weighed by its element's width: activations at
    ``act_bits``, weights at ``weight_bits``, in the ofmap final results at ``out_bits`` and partial sums at
    ``pe.acc_bits``. Every output is written final once and read once by the write-back (the bench checks
    that each output arrives exactly once), so the ofmap's other accesses are partial sums. Equal to the
    physical access counts (:func:`rtl_accesses`) in a buffer that is not ``packed`` (the core's own
    storage, modelled exactly) or whose ``word_bits`` equals its elements' width.
    """
    ifm, flt, ofm = acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram
    ab, wb = ifm.stored_bits(layer.act_bits), flt.stored_bits(layer.weight_bits)
    ob, accb = ofm.stored_bits(layer.out_bits), ofm.stored_bits(acc.pe.acc_bits)
    iw, fw, ow = ifm.word_bits, flt.word_bits, ofm.word_bits
    outs = layer.ofmap_count
    c = counters
    return {"cycles": c["cycles"], "compute_cycles": c["compute_cycles"], "fill_cycles": c["fill_cycles"],
            "stall_cycles": c["stall_cycles"],
            "ifmap_sram_reads": c["ifmap_sram_reads"] * ab / iw, "ifmap_sram_writes": c["ifmap_sram_writes"] * ab / iw,
            "filter_sram_reads": c["filter_sram_reads"] * wb / fw,
            "filter_sram_writes": c["filter_sram_writes"] * wb / fw,
            "ofmap_sram_reads": (outs * ob + (c["ofmap_sram_reads"] - outs) * accb) / ow,
            "ofmap_sram_writes": (outs * ob + (c["ofmap_sram_writes"] - outs) * accb) / ow,
            "dram_read_bytes": c["dram_read_bits"] / 8, "dram_write_bytes": c["dram_write_bits"] / 8}


COUNT_REL_TOL = 1e-11
"""Relative tolerance of :func:`differing_counts`: above the rounding of a floating-point sum over 10^4 tiles
(about 1e-12 at most), below one element in any count under 6e9 words (1/16 of a 128-bit word)."""


def differing_counts(rtl: dict[str, float], model: dict[str, float]) -> dict[str, tuple[float, float]]:
    """The counts where the core (:func:`rtl_counts`) and the engine (:func:`model_counts`) differ, as
    ``{key: (rtl, model)}``. An SRAM word count is a fraction where an element is narrower than its word
    (5 elements of 8 bits are 5/3 words of 24 bits): the core's is one division of an integer bit count,
    the engine's a floating-point sum over its tiles, so the two may differ in the last bit (1.6666666666666667
    against 1.6666666666666665). Counts are equal within :data:`COUNT_REL_TOL`; integer counts (cycles, DRAM
    bytes in eighths) are compared exactly by that too, as their floats are exact."""
    return {k: (rtl[k], model[k]) for k in COUNT_KEYS
            if not math.isclose(rtl[k], model[k], rel_tol=COUNT_REL_TOL, abs_tol=0.0)}


def rtl_accesses(counters: dict[str, int]) -> dict[str, int]:
    """The core's physical SRAM accesses per buffer (one element per word), as counted."""
    return {k: counters[k] for k in COUNT_KEYS if k.endswith(("_reads", "_writes")) and "sram" in k}


def cycle_limit(results: list[LayerResult]) -> int:
    """The testbench's per-layer cycle bound for layers the engine costs as ``results``: twice the longest
    plus 10,000, so a layer that runs past it hangs rather than runs slowly."""
    return 2 * max(int(r.total_cycles) for r in results) + 10_000


def model_counts(res: LayerResult) -> dict[str, float]:
    """``hwsim.simulate``'s numbers for a layer under :data:`COUNT_KEYS`."""
    t = res.traffic
    return {"cycles": res.total_cycles, "compute_cycles": res.compute_cycles, "fill_cycles": res.fill_cycles,
            "stall_cycles": res.stall_cycles, "ifmap_sram_reads": t.ifmap_sram_reads,
            "ifmap_sram_writes": t.ifmap_sram_writes, "filter_sram_reads": t.filter_sram_reads,
            "filter_sram_writes": t.filter_sram_writes, "ofmap_sram_reads": t.ofmap_sram_reads,
            "ofmap_sram_writes": t.ofmap_sram_writes, "dram_read_bytes": t.dram_read_bytes,
            "dram_write_bytes": t.dram_write_bytes}


def build_core(sim: str, params: CoreParams, build_root: Path | None = None) -> tuple[Path, Path]:
    """Export the core's Verilog for ``params`` into ``build/cocotb/<sim>/<core>/src`` (reused while the
    parameters, the rtl package's sources and the exporting class are unchanged); returns (Verilog file,
    build dir). The testbench builds on it are made and cached by :mod:`sims.tb.core_tb`."""
    import rtl
    from rtl.core import AccelCore
    from rtl.export import component_verilog

    root = (build_root or REPO / "build" / "cocotb").resolve()
    digest = hashlib.sha1(repr(params).encode()).hexdigest()[:10]
    bdir = root / sim / f"{params.name}_{digest}"
    src = bdir / "src" / "accel_core.v"
    h = hashlib.sha1(repr((params, AccelCore.__module__, AccelCore.__qualname__, component_verilog.__module__,
                           component_verilog.__qualname__)).encode())
    for f in sorted(Path(rtl.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    stamp, stamp_file = h.hexdigest(), bdir / "src" / "export.stamp"
    if src.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return src, bdir
    text = component_verilog(AccelCore(params), "accel_core")
    src.parent.mkdir(parents=True, exist_ok=True)
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    stamp_file.write_text(stamp)
    return src, bdir


def run_layers(sim: str, acc: Accelerator, programs: list[tuple[LayerProgram, np.ndarray, np.ndarray]],
               build_root: Path | None = None, max_cycles: int = 2_000_000, *, driver: str | None = None,
               pgo: bool = False) -> CoreRun:
    """Run each ``(program, x, w)`` (integer operands in PyTorch layouts) on the core for ``acc``, one
    layer after another, in the HDL testbench ``sims/tb/core_tb.v`` (the DRAM model and its checks).

    ``driver``: ``cocotb`` (Icarus or Verilator, :mod:`sims.tb.core_bench`) or ``binary`` (a plain Verilator
    model, several times faster than Verilator under cocotb, docs/performance.md); by default ``binary`` on
    Verilator and ``cocotb`` on Icarus. ``pgo`` (``binary`` only): a profile-guided build of the model,
    1.1-1.3x faster to run on the 16x16 core, its build 3-4x as long (:func:`sims.tb.core_tb.build_binary`;
    cached like the plain one). ``max_cycles`` bounds each layer. Raises
    :class:`sims.tb.core_tb.CoreBenchError` (an ``AssertionError``) with the testbench's message when it
    reports an error."""
    from .core_tb import run_core_tb

    params = CoreParams.from_accelerator(acc)
    for prog, _, _ in programs:
        check_counts(params, prog, max_cycles)
    src, bdir = build_core(sim, params, build_root)
    drv = driver or ("binary" if sim == "verilator" else "cocotb")
    tb = run_core_tb(sim, drv, src, bdir, programs, max_cycles, pgo=pgo)
    out = []
    for (prog, _, _), r in zip(programs, tb.layers, strict=True):
        la = prog.layer
        shape = (la.batch, la.out_channels, la.out_h, la.out_w)
        out.append(LayerRun(la.name, r.counters, r.y.reshape(shape), r.written.reshape(shape),
                            r.incomplete_transfers))
    return CoreRun(tuple(out), tb.build_dir, drv, tb.build_s, tb.run_s, tb.run_cpu_s)
