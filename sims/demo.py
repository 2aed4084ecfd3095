"""The end-to-end demo on built-in defaults: train -> map -> simulate -> run on the RTL core -> sweep -> report.

Every step is the real thing at a small size (the shipped 8x8 digits, a few epochs, an 8x8 RTL core), so the
whole chain runs in a few minutes on two CPU cores. Each step prints what it did and how long it took.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import hwsim
from hwsim.io import network_to_dict

from .layer_report import format_table, plot_layers, write_csv
from .output import atomic_write_text

__all__ = ["DemoConfig", "run_demo"]

ACCELERATORS = ("edge16_serial", "loom16", "bitfusion16")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    out: Path
    pretrain_epochs: int = 10
    epochs: int = 6
    seed: int = 0
    rtl_arch: str = "rtl8_serial"
    rtl_simulator: str = "verilator"
    rtl_samples: int = 359   # the whole digits test set
    accelerators: tuple[str, ...] = ACCELERATORS
    methods: tuple[str, ...] = ("uniform", "pdb", "cmn")
    progress: bool = True
    log: Callable[[str], None] = field(default=print)


@contextmanager
def _step(cfg: DemoConfig, title: str) -> Iterator[None]:
    cfg.log(f"\n== {title}")
    t0 = time.perf_counter()
    yield
    cfg.log(f"   ({time.perf_counter() - t0:.1f} s)")


def _train(cfg: DemoConfig) -> dict[str, dict[str, Any]]:
    """Train the methods on digits (one shared FP pre-training); returns name -> {network, accuracy, path}."""
    import torch

    from quant.data import load_dataset
    from quant.export import save_model
    from quant.recipes import MethodConfig, pretrain, run_method
    from quant.train import TrainConfig, evaluate

    torch.set_num_threads(2)
    data = load_dataset("digits")
    pre = TrainConfig(epochs=cfg.pretrain_epochs, seed=cfg.seed, progress=cfg.progress)
    ft = TrainConfig(epochs=cfg.epochs, seed=cfg.seed, progress=cfg.progress)
    fp = pretrain(data, pre)
    cfg.log(f"   FP model: test accuracy {evaluate(fp, data.test):.2%}")
    settings = {"uniform": {"bits": (4,)}, "pdb": {"bits": None}, "cmn": {}}
    models: dict[str, dict[str, Any]] = {}
    for method in cfg.methods:
        mc = MethodConfig(method, seed=cfg.seed, **settings[method])  # type: ignore[arg-type]
        model, info = run_method(mc, data, fp, ft, None)
        acc = evaluate(model, data.test)
        path = cfg.out / "models" / f"{method}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        net = save_model(path, model, data.test.x[:1], name=f"{method}_digits", meta={"test_accuracy": acc})
        extra = ", ".join(f"{k}={info[k]}" for k in ("schedule", "threshold", "val_exit_rate") if k in info)
        cfg.log(f"   {method:8s} test accuracy {acc:.2%}  weight memory {net.weight_bits_total / 8192:.1f} KiB"
                f"{'  ' + extra if extra else ''}")
        models[method] = {"network": net, "accuracy": acc, "path": path}
    return models


def _map_and_simulate(cfg: DemoConfig, models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from mapping import map_network

    rows = []
    cfg.log(f"   {'model':8s} {'accelerator':14s} {'acc %':>6s} {'exp. cycles':>12s} {'worst cycles':>12s} "
            f"{'exp. energy nJ':>14s}")
    for name, m in models.items():
        for arch in cfg.accelerators:
            acc = hwsim.resolve_accelerator(arch)
            sched = map_network(m["network"], acc, "edp")
            res = hwsim.simulate(sched, acc)
            rows.append({"model": name, "accelerator": arch, "accuracy": m["accuracy"],
                         "expected_cycles": res.expected_cycles, "worst_cycles": res.cycles,
                         "expected_energy_pj": res.expected_energy.total_pj})
            cfg.log(f"   {name:8s} {arch:14s} {100 * m['accuracy']:6.2f} {res.expected_cycles:12,.0f} "
                    f"{res.cycles:12,d} {res.expected_energy.total_pj / 1e3:14.1f}")
    # The classic view: a big network, layer by layer, mapped for EDP.
    acc = hwsim.resolve_accelerator(cfg.accelerators[0])
    net = hwsim.resolve_network("resnet18")
    res = hwsim.simulate(map_network(net, acc, "edp"), acc)
    stem = cfg.out / f"resnet18_{acc.name}"
    atomic_write_text(stem.with_suffix(".json"), res.to_json())
    write_csv(res, stem.with_suffix(".csv"))
    plot_layers(res, stem.with_suffix(".png"))
    cfg.log(format_table(res, net))
    return rows


def _run_on_core(cfg: DemoConfig, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The trained PDB model on the generated RTL core (``sims.tb.trained``): every conv / linear layer's
    accumulators computed by the RTL, the test predictions against the model's, and the core's twelve
    counts per layer against ``hwsim.simulate`` for the same layer and mapping."""
    from quant.data import load_dataset
    from quant.export import load_trained
    from sims.tb.core_runner import differing_counts
    from sims.tb.trained import run_trained

    name = "pdb" if "pdb" in models else next(iter(models))
    acc = hwsim.resolve_accelerator(cfg.rtl_arch)
    x = load_dataset("digits").test.x[:cfg.rtl_samples]
    quiet = {"COCOTB_LOG_LEVEL": "WARNING", "GPI_LOG_LEVEL": "WARNING"}
    saved = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    try:
        res = run_trained(cfg.rtl_simulator, acc, load_trained(models[name]["path"]), x, build_root=cfg.out / "rtl_build",
                          log=cfg.log, driver="binary" if cfg.rtl_simulator == "verilator" else "cocotb")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cfg.log(f"   {name} model on the {acc.name} core ({cfg.rtl_simulator}): {res.agree}/{res.samples} test "
            f"predictions equal to the model's; accumulators equal to hwsim.golden: "
            f"{'yes' if res.accumulators_exact else 'NO'}")
    cfg.log(f"   {'layer':12s} {'RTL cycles':>11s} {'hwsim cycles':>12s} {'RTL stall':>10s} {'hwsim stall':>11s} "
            f"{'DRAM B (RTL)':>12s} {'equal counts':>12s}")
    for r in res.layers:
        same = len(r.rtl) - len(differing_counts(r.rtl, r.model))
        cfg.log(f"   {r.name:12s} {r.rtl['cycles']:11,.0f} {r.model['cycles']:12,.0f} {r.rtl['stall_cycles']:10,.0f} "
                f"{r.model['stall_cycles']:11,.0f} {r.rtl['dram_read_bytes'] + r.rtl['dram_write_bytes']:12,.0f} "
                f"{same:9d}/{len(r.rtl)}")
    return {"model": name, "accelerator": acc.name, "simulator": cfg.rtl_simulator, "samples": res.samples,
            "agree": res.agree, "accumulators_exact": res.accumulators_exact,
            "layers": [{"name": r.name, "rtl": r.rtl, "model": r.model,
                        "outputs_match_golden": r.outputs_match_golden} for r in res.layers]}


def _sweep(cfg: DemoConfig, models: dict[str, dict[str, Any]]) -> Path:
    from sims.sweep.execute import make_backend, run_sweep
    from sims.sweep.spec import load_sweep_spec
    from sims.sweep.store import ResultStore

    sdir = cfg.out / "sweep"
    sdir.mkdir(parents=True, exist_ok=True)
    nets = {}
    acc_rows = io.StringIO()
    wr = csv.writer(acc_rows)
    wr.writerow(["network", "schedule", "accuracy"])
    for name, m in models.items():
        p = sdir / f"{name}.yaml"
        atomic_write_text(p, yaml.safe_dump(network_to_dict(m["network"]), sort_keys=False))
        nets[name] = p.name
        wr.writerow([p.name, "network", m["accuracy"]])
    atomic_write_text(sdir / "accuracy.csv", acc_rows.getvalue())
    spec = {
        "name": "demo", "accelerator": "edge16_serial",
        "axes": {"network": list(nets.values()), "rows": [4, 8, 16], "cols": [4, 8, 16],
                 "pe.kind": ["serial_act", "serial_both"], "ifmap_sram.size_bytes": [8192, 65536]},
        "metrics": ["cycles", "worst_cycles", "latency_s", "energy_pj", "edp", "area_luts", "accuracy"],
        "accuracy": {"table": "accuracy.csv"},
    }
    spec_path = sdir / "demo_sweep.yaml"
    atomic_write_text(spec_path, yaml.safe_dump(spec, sort_keys=False))
    db = sdir / "results.sqlite"
    with ResultStore(db) as store:
        summary = run_sweep(load_sweep_spec(spec_path), store, make_backend(0), progress=cfg.progress)
    cfg.log(f"   {summary}")
    return db


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the whole chain; returns a summary that is also written to ``out/summary.json``."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _step(cfg, "1. train uniform 4-bit, PDB and cascade (CMN) networks on the 8x8 digits"):
        models = _train(cfg)
    with _step(cfg, f"2. map (EDP) and simulate on {', '.join(cfg.accelerators)}"):
        sims_rows = _map_and_simulate(cfg, models)
    with _step(cfg, f"3. run the trained model on the generated RTL core ({cfg.rtl_arch}, {cfg.rtl_simulator}) "
                    f"against the model and hwsim"):
        rtl = _run_on_core(cfg, models)
    with _step(cfg, "4. sweep array size x PE kind x buffer x model"):
        db = _sweep(cfg, models)
    with _step(cfg, "5. write the report"):
        from sims.sweep.report import write_report
        from sims.sweep.store import ResultStore

        with ResultStore(db, readonly=True) as store:
            report = write_report(store, cfg.out / "report")
        cfg.log(f"   {report}")
    summary = {"models": {k: {"accuracy": v["accuracy"], "path": str(v["path"])} for k, v in models.items()},
               "simulations": sims_rows, "rtl": rtl, "sweep_db": str(db), "report": str(report),
               "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(cfg.out / "summary.json", json.dumps(summary, indent=1))
    cfg.log(f"\ndemo finished in {summary['seconds']} s; everything is in {cfg.out}/ (open {report})")
    return summary
