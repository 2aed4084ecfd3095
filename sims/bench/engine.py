"""Benchmark: hwsim's engine vs SCALE-Sim 3.0.0 on ResNet-18 (ImageNet shapes), 16x16 array, one core.

Measures, in one run and side by side:

* the native engine on the whole network: ``hwsim.simulate(hwsim.resolve_network('resnet18'), acc)``;
* on a few representative layers (SCALE-Sim needs a minute or more for most ResNet-18 layers):
  SCALE-Sim 3.0.0 itself (in ``.venv-scalesim``, through ``sims/scalesim_ref.py``), hwsim's SCALE-Sim
  compatibility mode (closed-form cycles, and the full three-report model), and the native engine.

The compatibility mode's cycles are checked equal to SCALE-Sim's before any ratio is reported. The
table replaces the section "## Engine vs SCALE-Sim" of docs/performance.md (other sections are kept).
Run with ``make bench``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import hwsim
from hwsim.network import Layer
from hwsim.scalesim import ScaleSimConfig, simulate_layer, stall_free_cycles
from hwsim.schedule import default_mapping
from sims.bench.doc import replace_section
from sims.bench.scalesim_files import config_text, topology_row

REPO = Path(__file__).resolve().parents[2]
SCALESIM_PY = REPO / ".venv-scalesim" / "bin" / "python"
DOC = REPO / "docs" / "performance.md"
SECTION = "## Engine vs SCALE-Sim"
# Representative layers: 1x1 strided convolutions of three stages, a 3x3 convolution, the classifier.
LAYERS = ("layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample", "layer4.1.conv1", "fc")
CFG = ScaleSimConfig(run_name="resnet18_16x16_os", array_rows=16, array_cols=16, ifmap_sram_kb=64,
                     filter_sram_kb=64, ofmap_sram_kb=64, dataflow=hwsim.Dataflow.OS)


def best_of(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Best wall time of ``repeat`` runs of ``number`` calls, per call, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def run_scalesim(layers: list[Layer], work: Path) -> tuple[list[float], list[int]]:
    if not SCALESIM_PY.exists():
        sys.exit("bench_engine: .venv-scalesim is missing; run `make bench`")
    cfg, topo = work / "arch.cfg", work / "topo.csv"
    cfg.write_text(config_text(CFG))
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\n" + "\n".join(topology_row(la) for la in layers) + "\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    done = subprocess.run([str(SCALESIM_PY), str(REPO / "sims" / "scalesim_ref.py"), "-c", str(cfg), "-t", str(topo),
                           "-o", str(work / "ref")], capture_output=True, text=True, env=env, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    rows = (Path(info["run_dir"]) / "COMPUTE_REPORT.csv").read_text().strip().splitlines()[1:]
    return info["layer_seconds"], [int(r.split(",")[2]) for r in rows]


def as_scalesim_layer(la: Layer) -> Layer:
    """What the topology row above describes, as SCALE-Sim reads it back."""
    if la.kind is hwsim.LayerKind.LINEAR:
        return hwsim.Layer(la.name, hwsim.LayerKind.CONV2D, la.in_channels, la.out_channels)
    return la


def main() -> int:
    net = hwsim.resolve_network("resnet18")
    acc = CFG.accelerator
    whole = best_of(lambda: hwsim.simulate(net, acc), repeat=5)
    res = hwsim.simulate(net, acc)
    by_name = {la.name: la for la in net.layers}
    chosen = [by_name[n] for n in LAYERS]
    with tempfile.TemporaryDirectory() as tmp:
        ss_seconds, ss_cycles = run_scalesim(chosen, Path(tmp))
    rows = []
    for la, ss_s, ss_c in zip(chosen, ss_seconds, ss_cycles, strict=True):
        sl = as_scalesim_layer(la)
        ours_c = stall_free_cycles(sl, CFG)
        full = simulate_layer(sl, CFG)
        if ours_c != ss_c or full.total_cycles != ss_c:
            sys.exit(f"bench_engine: cycle mismatch on {la.name}: SCALE-Sim {ss_c}, ours {ours_c}/{full.total_cycles}")
        t_cyc = best_of(lambda sl=sl: stall_free_cycles(sl, CFG), repeat=5, number=1000)
        t_full = best_of(lambda sl=sl: simulate_layer(sl, CFG), repeat=5, number=20)
        tracemalloc.start()
        simulate_layer(sl, CFG)
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        m = default_mapping(la, acc)
        t_nat = best_of(lambda la=la, m=m: hwsim.simulate_layer(la, m, acc), repeat=5, number=20)
        native_c = next(r.total_cycles for r in res.layers if r.layer == la.name)
        rows.append((la.name, ss_c, ss_s, t_cyc, t_full, peak_mb, t_nat, native_c))
    lines = [
        SECTION, "",
        f"`make bench` (sims/bench/engine.py), one run, one core ({platform.machine()}, Python "
        f"{platform.python_version()}); ResNet-18 at ImageNet shapes on a 16x16 array, OS, 64 kB buffers, "
        "SCALE-Sim's CALC mode. Times are best-of-n wall times.", "",
        f"Native engine, whole network (`hwsim.simulate(hwsim.resolve_network('resnet18'), acc)`, "
        f"{len(net.layers)} layers): **{whole * 1e3:.2f} ms**, {res.cycles:,} cycles.", "",
        "Per layer, side by side. *Cycles* are SCALE-Sim 3.0.0's \"Total Cycles\"; hwsim's SCALE-Sim mode "
        "reports the same number (checked before timing). *compat cycles*: `hwsim.scalesim.stall_free_cycles` "
        "(closed form); *compat reports*: `hwsim.scalesim.simulate_layer`, all three reports including DRAM "
        "traffic (*peak*: the most memory it holds at once, by `tracemalloc`); *native*: `hwsim.simulate_layer`, our physically meaningful model (its own cycle count, "
        "with padding, last column).", "",
        "| layer | cycles | SCALE-Sim | compat cycles | speed-up | compat reports | speed-up | peak | native "
        "| speed-up | native cycles |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c, ss, tc, tf, pk, tn, nc in rows:
        lines.append(f"| {name} | {c:,} | {ss:.1f} s | {tc * 1e6:.1f} us | {ss / tc:,.0f}x | {tf * 1e3:.2f} ms | "
                     f"{ss / tf:,.0f}x | {pk:.2f} MB | {tn * 1e6:.0f} us | {ss / tn:,.0f}x | {nc:,} |")
    section = "\n".join(lines) + "\n"
    print(section)
    replace_section(DOC, SECTION[3:], section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
