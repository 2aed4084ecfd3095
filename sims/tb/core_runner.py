"""Builds the accelerator core for an ``hwsim.Accelerator`` and runs layers on it under cocotb.

:func:`run_layers` exports the core's Verilog (kept under ``build/cocotb/<sim>/<core>/`` so an unchanged
core is not rebuilt), writes the operands and the compiled programs, runs :mod:`sims.tb.core_bench`
and returns what the core counted and wrote. :func:`rtl_counts` and :func:`model_counts` put the core's
counters and ``hwsim.simulate``'s numbers under the same twelve keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.network import Layer
from hwsim.result import LayerResult
from hwsim.schedule import LayerMapping
from rtl.program import CoreParams, LayerProgram

from .runner import REPO, build_hdl

__all__ = ["LayerRun", "CoreRun", "run_layers", "rtl_counts", "model_counts", "COUNT_KEYS", "build_core",
           "expected_rtl"]

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


def rtl_counts(counters: dict[str, int]) -> dict[str, float]:
    """The core's counters under :data:`COUNT_KEYS` (DRAM bits as bytes, exact)."""
    out: dict[str, float] = {k: counters[k] for k in COUNT_KEYS if k in counters}
    out["dram_read_bytes"] = counters["dram_read_bits"] / 8
    out["dram_write_bytes"] = counters["dram_write_bits"] / 8
    return {k: out[k] for k in COUNT_KEYS}


def model_counts(res: LayerResult) -> dict[str, float]:
    """``hwsim.simulate``'s numbers for a layer under :data:`COUNT_KEYS`."""
    t = res.traffic
    return {"cycles": res.total_cycles, "compute_cycles": res.compute_cycles, "fill_cycles": res.fill_cycles,
            "stall_cycles": res.stall_cycles, "ifmap_sram_reads": t.ifmap_sram_reads,
            "ifmap_sram_writes": t.ifmap_sram_writes, "filter_sram_reads": t.filter_sram_reads,
            "filter_sram_writes": t.filter_sram_writes, "ofmap_sram_reads": t.ofmap_sram_reads,
            "ofmap_sram_writes": t.ofmap_sram_writes, "dram_read_bytes": t.dram_read_bytes,
            "dram_write_bytes": t.dram_write_bytes}


def build_core(sim: str, params: CoreParams, build_root: Path | None = None) -> tuple[object, Path]:
    """Export and build the core for ``params`` (reused when unchanged); returns (runner, build dir)."""
    from rtl.core import AccelCore
    from rtl.export import component_verilog

    root = (build_root or REPO / "build" / "cocotb").resolve()
    digest = hashlib.sha1(repr(params).encode()).hexdigest()[:10]
    bdir = root / sim / f"{params.name}_{digest}"
    src = bdir / "src" / "accel_core.v"
    text = component_verilog(AccelCore(params), "accel_core")
    src.parent.mkdir(parents=True, exist_ok=True)
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = build_hdl(sim, [src], "accel_core", bdir)
    return runner, bdir


def run_layers(sim: str, acc: Accelerator, programs: list[tuple[LayerProgram, np.ndarray, np.ndarray]],
               build_root: Path | None = None, max_cycles: int = 2_000_000) -> CoreRun:
    """Run each ``(program, x, w)`` (integer operands in PyTorch layouts) on the core for ``acc``."""
    params = CoreParams.from_accelerator(acc)
    runner, bdir = build_core(sim, params, build_root)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for li, (prog, x, w) in enumerate(programs):
        key = f"l{li}"
        arrays[f"{key}_x"] = np.asarray(x, dtype=np.int64).reshape(-1)
        arrays[f"{key}_w"] = np.asarray(w, dtype=np.int64).reshape(-1)
        for ti, t in enumerate(prog.transfers):
            arrays[f"{key}_t{ti}"] = t.indices
        la = prog.layer
        layers.append({"name": la.name, "key": key, "descriptors": [f"{d:x}" for d in prog.descriptors()],
                       "transfers": [t.tensor for t in prog.transfers], "y_size": la.ofmap_count,
                       "out_signed": prog.out_signed})
    tag = hashlib.sha1(json.dumps(layers).encode()).hexdigest()[:10]
    npz = bdir / f"run_{tag}.npz"
    np.savez(npz, **arrays)
    results = bdir / f"run_{tag}.json"
    cfg = bdir / f"run_{tag}.cfg.json"
    cfg.write_text(json.dumps({"arrays": str(npz), "layers": layers, "results_path": str(results),
                               "max_cycles": max_cycles}))
    env = {"HWSIM_CORE_CONFIG": str(cfg), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        xml = runner.test(hdl_toplevel="accel_core", test_module="sims.tb.core_bench",  # type: ignore[attr-defined]
                          build_dir=bdir, test_dir=bdir, extra_env=env,
                          waves=bool(os.environ.get("HWSIM_WAVES")))
    except SystemExit as exc:
        raise AssertionError(f"core bench failed on {sim} (exit {exc.code}); see {bdir / 'results.xml'}") from None
    text = Path(xml).read_text()
    if "<failure" in text or "<error" in text:
        raise AssertionError(f"core bench failed on {sim}; see {xml}")
    out = []
    for (prog, _, _), r in zip(programs, json.loads(results.read_text()), strict=True):
        la = prog.layer
        shape = (la.batch, la.out_channels, la.out_h, la.out_w)
        out.append(LayerRun(r["name"], r["counters"], np.asarray(r["y"], dtype=np.int64).reshape(shape),
                            np.asarray(r["written"], dtype=np.int64).reshape(shape),
                            tuple(r["incomplete_transfers"])))
    return CoreRun(tuple(out), bdir)


def expected_rtl(layer: Layer, mapping: LayerMapping, acc: Accelerator, model: dict[str, float]) -> dict[str, float]:
    """What the core should count, derived from the engine's numbers under the core's conventions: one
    element per ifmap/filter word (the engine counts ``elements * bits / word_bits``) and one result or
    partial sum per ofmap word (the engine packs ``out_bits`` results into its words). Neither reads zero
    padding. Cycles and DRAM bytes are the engine's own."""
    core = CoreParams.from_accelerator(acc)
    ab, wb = layer.act_bits, layer.weight_bits
    iw, fw = acc.ifmap_sram.word_bits, acc.filter_sram.word_bits
    out = dict(model)
    out["ifmap_sram_reads"] = model["ifmap_sram_reads"] * iw / ab  # neither reads zero padding
    out["ifmap_sram_writes"] = model["ifmap_sram_writes"] * iw / ab
    out["filter_sram_reads"] = model["filter_sram_reads"] * fw / wb
    out["filter_sram_writes"] = model["filter_sram_writes"] * fw / wb
    # the core keeps one result or partial sum per ofmap word: every output is written once per reduction
    # fold (WS: ceil(K/rows) row folds, OS: one) and read once per later fold and once by the write-back
    kf = -(-(layer.in_channels // layer.groups) * layer.kernel_h * layer.kernel_w // core.rows) \
        if mapping.dataflow.value == "ws" else 1
    out["ofmap_sram_writes"] = out["ofmap_sram_reads"] = layer.ofmap_count * kf
    return out
