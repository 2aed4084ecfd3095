"""Benchmark: hwsim's SCALE-Sim mode against SCALE-Sim 3.0.0 on every ResNet-18 layer, and a large GEMM.

Measures, in one run and side by side:

* SCALE-Sim 3.0.0 itself (in ``.venv-scalesim``, through ``sims/scalesim_ref.py``; its own per-layer
  wall time, report writing excluded) on every distinct conv / linear layer shape of ResNet-18 at
  ImageNet shapes (the 7x7 stem, the 3x3 layers, the strided 1x1 layers and the classifier), 16x16
  array, 64 kB buffers, CALC mode, in each dataflow asked for (OS, WS and IS by default);
* ``hwsim.scalesim.simulate_layer`` on the same layers: every number of the three reports (best of n);
  every column of the three CSV files is compared with SCALE-Sim's before any ratio is reported;
* an 8192 x 4096 x 2048 GEMM topology (``--gemm``: M, N, K) through ``load_topology``,
  ``simulate_topology`` and ``report_csvs`` for each dataflow: wall time and peak traced memory.

Each dataflow's table replaces its section "## SCALE-Sim mode vs SCALE-Sim (OS)" (WS, IS) of
docs/performance.md, and the GEMM (run for all three dataflows unless ``--no-gemm``) the section
"## SCALE-Sim mode: a large GEMM"; other sections are kept. ``--mode user`` runs the same layers with
``InterfaceBandwidth: USER`` instead (10 words per cycle for the OFMAP drain and both read buffers, the
bandwidths of the CALC runs' config), into "## SCALE-Sim mode vs SCALE-Sim (USER, OS)" (WS, IS), without
the GEMM::

    python -m sims.bench.scalesim [--mode calc|user] [--dataflows os ws is] [--layers NAME ...] [--no-gemm]
                                  [--no-doc] [--log FILE]
    python -m sims.bench.scalesim [--mode user] --from-log FILE [FILE ...] [--retime]
                                  # the sections again from runs cut short (ours re-measured with --retime)

SCALE-Sim takes about 15-35 minutes per dataflow on these layers in CALC mode (more on a loaded machine),
73 minutes for OS in USER mode (40 of them on layer4.0.conv2); it runs layer by layer, so ``--log``, which
appends each measured row as a JSON line as soon as it is known, keeps the layers of a run stopped early
(``--from-log`` writes their sections, naming the shapes not reached). ``--dataflows`` with no value runs
only the GEMM.
"""

from __future__ import annotations

import argparse
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
from hwsim.scalesim import (
    REPORT_FILES,
    ScaleSimConfig,
    load_topology,
    report_csvs,
    simulate_layer,
    simulate_topology,
)
from hwsim.scalesim.simulate import simulate_user_fed
from sims.allocator import ALLOCATOR_ENV, SETTING_TEXT, tune_allocator
from sims.bench.doc import replace_section
from sims.bench.scalesim_files import config_text, topology_row

REPO = Path(__file__).resolve().parents[2]
SCALESIM_PY = REPO / ".venv-scalesim" / "bin" / "python"
DOC = REPO / "docs" / "performance.md"
SECTION = "SCALE-Sim mode vs SCALE-Sim"   # one section per dataflow: "SCALE-Sim mode vs SCALE-Sim (OS)", ...
GEMM_SECTION = "SCALE-Sim mode: a large GEMM"


USER_BANDWIDTH = 10   # words/cycle of the OFMAP drain (``Bandwidth``) in USER mode; the read buffers take
                      # their [layout] bank bandwidth, 10 in config_text (the CALC-mode read rate)


def bench_config(flow: hwsim.Dataflow, user: bool = False) -> ScaleSimConfig:
    """The benchmark's array: 16x16, 64 kB buffers, CALC mode (or USER mode at 10 words per cycle)."""
    return ScaleSimConfig(run_name=f"resnet18_16x16_{flow.value}", array_rows=16, array_cols=16, ifmap_sram_kb=64,
                          filter_sram_kb=64, ofmap_sram_kb=64, dataflow=flow, user_bandwidth=user,
                          bandwidths=(USER_BANDWIDTH,) if user else ())


def scalesim_config_text(cfg: ScaleSimConfig) -> str:
    """SCALE-Sim's config for ``cfg``: ``config_text`` (CALC mode), switched to USER mode when asked."""
    text = config_text(cfg)
    if not cfg.user_bandwidth:
        return text
    if (cfg.bandwidths, cfg.ifmap_read_words_per_cycle, cfg.filter_read_words_per_cycle) != ((10,), 10, 10):
        raise ValueError(f"bench_scalesim: USER mode runs at 10 words per cycle, not {cfg.bandwidths!r}")
    user = text.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
    assert user != text and "Bandwidth : 10\n" in user and "IfmapSRAMBankBandwidth: 10\n" in user
    return user


CFG = bench_config(hwsim.Dataflow.OS)
GEMM_MNK = (8192, 4096, 2048)
TARGET_SPEEDUP = 10_000


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# the header of a one-layer SCALE-Sim topology file (each layer is run and read back through one)
TOPO_HEAD = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
             "Strides,\n")


def time_ours(la: Layer, cfg: ScaleSimConfig) -> tuple[float, float]:
    """Ours on ``la``: the best of 7 calls in seconds, and the most memory one call holds in MB (a further
    call under ``tracemalloc``, which slows it)."""
    t = best_of(lambda: simulate_layer(la, cfg), repeat=7)
    tracemalloc.start()
    simulate_layer(la, cfg)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return t, peak


def resnet18_layers() -> list[tuple[Layer, list[str]]]:
    """Every distinct SCALE-Sim shape among ResNet-18's conv and linear layers, with the names of the
    layers that have it (first one first)."""
    net = hwsim.resolve_network("resnet18")
    shapes: dict[str, tuple[Layer, list[str]]] = {}
    for la in net.layers:
        if la.kind not in (hwsim.LayerKind.CONV2D, hwsim.LayerKind.LINEAR):
            continue
        key = topology_row(la).split(",", 1)[1]
        if key in shapes:
            shapes[key][1].append(la.name)
        else:
            shapes[key] = (la, [la.name])
    return list(shapes.values())


def parse(text: str) -> tuple[list[str], list[list[float]]]:
    lines = [ln.rstrip().rstrip(",") for ln in text.strip().splitlines()]
    return [h.strip() for h in lines[0].split(",")], [[float(x) for x in ln.split(",")] for ln in lines[1:]]


def mismatches(ours: dict[str, str], ref_dir: Path) -> list[str]:
    """Every cell of the three reports where ours differs from SCALE-Sim's (relative 1e-12)."""
    bad = []
    for name in REPORT_FILES:
        head, rows = parse(ours[name])
        ref_head, ref_rows = parse((ref_dir / name).read_text())
        if head != ref_head or len(rows) != len(ref_rows):
            bad.append(f"{name}: header or row count differs")
            continue
        for row, ref in zip(rows, ref_rows, strict=True):
            for col, a, b in zip(head, row, ref, strict=True):
                if abs(a - b) > 1e-12 * max(abs(a), abs(b)):
                    bad.append(f"{name} layer {row[0]:.0f} {col}: ours {a}, SCALE-Sim {b}")
    return bad


def run_scalesim(topo_text: str, work: Path, config: ScaleSimConfig = CFG) -> tuple[list[float], Path]:
    """SCALE-Sim 3.0.0 on the topology, one process, one thread: per-layer seconds and its reports' folder."""
    if not SCALESIM_PY.exists():
        sys.exit("bench_scalesim: .venv-scalesim is missing; run `make .venv-scalesim/.installed`")
    work.mkdir(parents=True, exist_ok=True)
    cfg, topo = work / "arch.cfg", work / "topo.csv"
    cfg.write_text(scalesim_config_text(config))
    topo.write_text(topo_text)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", **ALLOCATOR_ENV)
    done = subprocess.run([str(SCALESIM_PY), str(REPO / "sims" / "scalesim_ref.py"), "-c", str(cfg), "-t", str(topo),
                           "-o", str(work / "ref")], capture_output=True, text=True, env=env, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    return info["layer_seconds"], Path(info["run_dir"])


def gemm_run(flow: hwsim.Dataflow, work: Path) -> tuple[float, float, int]:
    """The large GEMM through the ``--gemm`` path: seconds (an untraced call), peak traced MB (a second
    call under ``tracemalloc``, which slows Python several-fold), total cycles."""
    m, n, k = GEMM_MNK
    topo = work / "gemm.csv"
    topo.write_text(f"Layer, M, N, K,\ngemm, {m}, {n}, {k},\n")
    cfg = ScaleSimConfig(run_name="gemm", array_rows=16, array_cols=16, ifmap_sram_kb=64, filter_sram_kb=64,
                         ofmap_sram_kb=64, dataflow=flow)

    def run() -> int:
        reports = simulate_topology(load_topology(topo, gemm=True), cfg)
        report_csvs(reports)
        return reports[0].total_cycles

    t0 = time.perf_counter()
    cycles = run()
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, cycles


Row = tuple[hwsim.Dataflow, list[str], int, float, float, float]   # flow, names, cycles, SCALE-Sim s, ours s, MB


def measure(flow: hwsim.Dataflow, chosen: list[tuple[Layer, list[str]]], work: Path,
            log: Path | None, user: bool = False) -> tuple[list[Row], float]:
    """One dataflow side by side, layer by layer (a run stopped early keeps the layers done): SCALE-Sim
    on the layer's one-row topology, every column compared, then ours timed on the layer."""
    cfg = bench_config(flow, user)
    rows: list[Row] = []
    t_ref = 0.0
    for la0, names in chosen:
        topo_text = TOPO_HEAD + topology_row(la0) + "\n"
        t0 = time.perf_counter()
        ss_seconds, ref_dir = run_scalesim(topo_text, work / flow.value / la0.name, cfg)
        t_ref += time.perf_counter() - t0
        (work / "ours.csv").write_text(topo_text)
        layers = load_topology(work / "ours.csv")   # as SCALE-Sim reads it back (fc: a 1x1 conv)
        bad = mismatches(report_csvs(simulate_topology(layers, cfg)), ref_dir)
        if bad:
            sys.exit(f"bench_scalesim: {flow.value} {la0.name} reports differ from SCALE-Sim's:\n" + "\n".join(bad[:20]))
        la, ss_s = layers[0], ss_seconds[0]
        rep = simulate_layer(la, cfg)
        t_ours, peak = time_ours(la, cfg)
        rows.append((flow, names, rep.total_cycles, ss_s, t_ours, peak))
        print(f"{flow.value} {la.name}: SCALE-Sim {ss_s:.1f} s, ours {t_ours * 1e3:.2f} ms, {ss_s / t_ours:,.0f}x",
              flush=True)
        if log is not None:   # SCALE-Sim's three reports kept, so that a later --from-log --retime checks them
            with log.open("a") as fh:
                fh.write(json.dumps({"mode": "user" if user else "calc", "dataflow": flow.value, "layer": la.name, "cycles": rep.total_cycles,
                                     "scalesim_s": ss_s, "ours_s": t_ours, "peak_mb": peak,
                                     "load": os.getloadavg()[0], "heap": ALLOCATOR_ENV,
                                     "ref": {name: (ref_dir / name).read_text() for name in REPORT_FILES}}) + "\n")
    return rows, t_ref


def mismatches_text(ours: dict[str, str], ref: dict[str, str]) -> list[str]:
    """``mismatches`` against SCALE-Sim's reports kept as text (a log's ``ref``)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in ref.items():
            (Path(tmp) / name).write_text(text)
        return mismatches(ours, Path(tmp))


def retime(entry: dict, user: bool) -> tuple[dict, str]:
    """A logged row with ours measured again by the current code (best of 7, peak by ``tracemalloc``),
    after checking its reports: against SCALE-Sim's kept in the row, or, for a row logged without them,
    against the fold-fed replay (``simulate_user_fed``, the path whose reports that run compared with
    SCALE-Sim's). Returns the row and which check was made."""
    flow = hwsim.Dataflow(entry["dataflow"])
    cfg = bench_config(flow, user)
    la0 = next(la for la, _ in resnet18_layers() if la.name == entry["layer"])
    topo = TOPO_HEAD + topology_row(la0) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.csv").write_text(topo)
        la = load_topology(Path(tmp) / "t.csv")[0]
    rep = simulate_layer(la, cfg)
    if rep.total_cycles != entry["cycles"]:
        sys.exit(f"bench_scalesim: {flow.value} {la.name}: {rep.total_cycles} cycles, the log has {entry['cycles']}")
    if "ref" in entry:
        bad, how = mismatches_text(report_csvs([rep]), entry["ref"]), "SCALE-Sim's reports kept in the log"
    else:
        if not user:
            sys.exit(f"bench_scalesim: {flow.value} {la.name}: a CALC-mode row without reports cannot be rechecked")
        bad = [] if simulate_user_fed(la, cfg) == rep else ["the report differs from the fold-fed replay's"]
        how = "the fold-fed replay the run compared with SCALE-Sim's"
    if bad:
        sys.exit(f"bench_scalesim: {flow.value} {la.name} reports differ:\n" + "\n".join(bad[:20]))
    t, peak = time_ours(la, cfg)
    return dict(entry, ours_s=t, peak_mb=peak, load=os.getloadavg()[0]), how


def from_log(paths: list[Path], user: bool = False, again: bool = False, write: bool = True) -> None:
    """Rewrite the sections from ``--log`` files of earlier runs (runs cut short, or the shapes of one
    dataflow measured in several runs; a later file's row of a layer replaces an earlier one's): the
    rows as measured, SCALE-Sim's time as the sum of its layers' times. With ``again`` (``--retime``),
    ours is measured again by the current code, its reports checked first (:func:`retime`)."""
    entries: dict[tuple[str, str, str], dict] = {}
    for path in paths:
        for ln in path.read_text().splitlines():
            if ln.strip():
                e = json.loads(ln)
                if "layer" in e:
                    entries[(e.get("mode", "calc"), e["dataflow"], e["layer"])] = e
    chosen = {la.name: names for la, names in resnet18_layers()}
    n_layers = sum(len(v) for v in chosen.values())
    order = list(chosen)
    for flow in hwsim.Dataflow:
        mine = sorted((e for (mode, df, _), e in entries.items()
                       if df == flow.value and mode == ("user" if user else "calc")),
                      key=lambda e: order.index(e["layer"]))
        if not mine:
            continue
        checks: set[str] = set()
        ss_loads = [e["load"] for e in mine]   # as logged: the load while SCALE-Sim ran the layer
        if again:
            redone = []
            for e in mine:
                row, how = retime(e, user)
                redone.append(row)
                checks.add(how)
                print(f"{flow.value} {e['layer']}: SCALE-Sim {e['scalesim_s']:.1f} s, ours {row['ours_s'] * 1e3:.2f} ms "
                      f"(logged {e['ours_s'] * 1e3:.2f} ms), {e['scalesim_s'] / row['ours_s']:,.0f}x", flush=True)
            mine = redone
        rows: list[Row] = [(flow, chosen[e["layer"]], e["cycles"], e["scalesim_s"], e["ours_s"], e["peak_mb"])
                           for e in mine]
        done = {e["layer"] for e in mine}
        missing = [names for first, names in chosen.items() if first not in done]
        runs = "one run" if len(paths) == 1 else f"{len(paths)} runs"
        note = (f"{runs}, written from {'its' if len(paths) == 1 else 'their'} `--log` (`--from-log`"
                + (": some shapes were not run to their end" if missing else "") + ")"
                + ("; *ours* measured again in this rewrite by the current code (`--retime`), every column of "
                   "its reports first checked equal to " + " or ".join(sorted(checks))
                   + f"; SCALE-Sim's layers ran under load averages of {min(ss_loads):.1f}-{max(ss_loads):.1f}, "
                   "ours under the load given at the end, so where that is lower the ratios favour ours"
                   if again else "") + " (")
        heap = all(e.get("heap") == ALLOCATOR_ENV for e in mine)   # SCALE-Sim ran under the setting
        section = flow_section(flow, rows, len(chosen), n_layers, sum(r[3] for r in rows),
                               mine[-1]["load"], "the sum of its layers' times", user, missing, heap).replace(
            "one run (", note, 1)
        print(section)
        if write:
            replace_section(DOC, section_name(flow, user), section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataflows", nargs="*", choices=[f.value for f in hwsim.Dataflow],
                    default=[f.value for f in hwsim.Dataflow],
                    help="dataflows to run side by side (default: all; none: only the GEMM)")
    ap.add_argument("--layers", nargs="*", help="only these layers, no GEMM (a quick check; the doc is not written)")
    ap.add_argument("--no-doc", action="store_true", help="print the table, do not rewrite docs/performance.md")
    ap.add_argument("--no-gemm", action="store_true", help="leave out the large GEMM (all three dataflows)")
    ap.add_argument("--log", type=Path, help="append each measured row to this file (JSON lines)")
    ap.add_argument("--from-log", type=Path, nargs="+",
                    help="only rewrite the doc's sections from earlier runs' --log files (later files win)")
    ap.add_argument("--retime", action="store_true",
                    help="with --from-log: measure ours again with the current code, its reports checked first")
    ap.add_argument("--mode", choices=["calc", "user"], default="calc",
                    help="SCALE-Sim's InterfaceBandwidth: CALC (default) or USER (10 words per cycle; no GEMM)")
    args = ap.parse_args(argv)
    user = args.mode == "user"
    tune_allocator()   # as the hwsim command does; SCALE-Sim's process gets the same (run_scalesim)
    if args.from_log is not None:
        from_log(args.from_log, user, args.retime, not args.no_doc)
        return 0
    flows = [hwsim.Dataflow(f) for f in args.dataflows]
    chosen = resnet18_layers()
    if args.layers:
        chosen = [(la, names) for la, names in chosen if la.name in args.layers]
    n_layers = sum(len(names) for _, names in chosen)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for flow in flows:   # each dataflow's section is written as soon as it is measured
            rows, t_ref = measure(flow, chosen, work, args.log, user)
            section = flow_section(flow, rows, len(chosen), n_layers, t_ref, os.getloadavg()[0], "its run took",
                                   user)
            print(section)
            if not args.no_doc and not args.layers:
                replace_section(DOC, section_name(flow, user), section)
        gemm = [] if args.layers or args.no_gemm or user else [(flow, *gemm_run(flow, work)) for flow in hwsim.Dataflow]
        if args.log is not None:
            with args.log.open("a") as fh:
                for flow, s, pk, cyc in gemm:
                    fh.write(json.dumps({"gemm": flow.value, "seconds": s, "peak_mb": pk, "cycles": cyc}) + "\n")
    if gemm:
        section = gemm_section(gemm)
        print(section)
        if not args.no_doc:
            replace_section(DOC, GEMM_SECTION, section)
    return 0


def section_name(flow: hwsim.Dataflow, user: bool) -> str:
    """The doc section of one dataflow's table: "SCALE-Sim mode vs SCALE-Sim (OS)", "... (USER, OS)"."""
    return f"{SECTION} ({'USER, ' if user else ''}{flow.value.upper()})"


def flow_section(flow: hwsim.Dataflow, rows: list[Row], n_shapes: int, n_layers: int, t_ref: float, load: float,
                 ref_label: str, user: bool = False, missing: list[list[str]] | None = None, heap: bool = True) -> str:
    """The section of one dataflow's side-by-side table; ``missing``: the shapes (their layers' names) a
    run cut short did not reach, named in the text; ``heap``: whether SCALE-Sim ran under the heap
    setting ours runs under (runs logged before it was made did not)."""
    missing = missing or []
    mode = ("USER mode (`InterfaceBandwidth: USER`: the OFMAP buffer drains and both read buffers prefetch "
            f"at {USER_BANDWIDTH} words per cycle, stalling the array; *cycles* include the stalls)"
            if user else "CALC mode")
    quiet = ("" if user else " (the quiet run of \"Engine vs SCALE-Sim\" measured 84 us per cycle on "
             "layer4.1.conv1, OS)")
    lines = [
        f"## {section_name(flow, user)}", "",
        f"`python -m sims.bench.scalesim {'--mode user ' if user else ''}--dataflows {flow.value}` "
        "(sims/bench/scalesim.py), one run "
        f"({platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores shared with other "
        f"jobs; load average at the end {load:.1f}). SCALE-Sim 3.0.0 and hwsim's SCALE-Sim mode side "
        + (f"by side on every distinct conv / linear layer shape of ResNet-18 at ImageNet shapes ({n_shapes} shapes "
           f"covering all {n_layers} such layers)" if not missing else
           f"by side on {len(rows)} of the {n_shapes} distinct conv / linear layer shapes of ResNet-18 at ImageNet "
           f"shapes (covering {sum(len(r[1]) for r in rows)} of its {n_layers} such layers; not measured: "
           f"{', '.join(names[0] for names in missing)}: no SCALE-Sim run of theirs finished in the logged "
           "runs)")
        + f", 16x16 {flow.value.upper()} array, 64 kB buffers, {mode}. "
        "*SCALE-Sim*: its own wall time for the layer (`sims/scalesim_ref.py`, reports excluded; "
        f"{ref_label} {t_ref:.0f} s). *ours*: `hwsim.scalesim.simulate_layer`, every number of the three reports, best of 7 "
        "(*peak*: the most memory it holds at once, by `tracemalloc`). "
        + ("Both processes run" if heap else "Ours runs (SCALE-Sim's process did not, in this log)")
        + f" with the heap setting of `sims/allocator.py` ({SETTING_TEXT}), as the `hwsim` command does. "
        "Every column of the three report files "
        "was checked equal to SCALE-Sim's before timing. SCALE-Sim's time per simulated cycle "
        f"(*SCALE-Sim / cycle*) ranged over {min(r[3] / r[2] for r in rows) * 1e6:.0f}–"
        f"{max(r[3] / r[2] for r in rows) * 1e6:.0f} us here; on a machine with other jobs it grows with "
        "their load while ours, a best of 7 short calls, grows less, so the ratios hold for this run's "
        f"conditions{quiet}.", "",
        "| layer (and the layers of the same shape) | cycles | SCALE-Sim | SCALE-Sim / cycle | ours | speed-up | peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, names, cycles, ss, t, pk in rows:
        label = names[0] + (f" (+{len(names) - 1}: {', '.join(names[1:])})" if len(names) > 1 else "")
        lines.append(f"| {label} | {cycles:,} | {ss:.1f} s | {ss / cycles * 1e6:.0f} us | {t * 1e3:.2f} ms | "
                     f"{ss / t:,.0f}x | {pk:.2f} MB |")
    low = min(r[3] / r[4] for r in rows)
    below = [r[1][0] for r in rows if r[3] / r[4] < TARGET_SPEEDUP]
    lines += ["", f"Lowest speed-up: {low:,.0f}x. "
              + (f"Below the {TARGET_SPEEDUP:,}x target: {', '.join(below)}." if below
                 else f"Every layer is at least {TARGET_SPEEDUP:,}x faster.")]
    return "\n".join(lines) + "\n"


def gemm_section(gemm: list[tuple[hwsim.Dataflow, float, float, int]]) -> str:
    """The section of the large GEMM's time and memory."""
    lines = [f"## {GEMM_SECTION}", "",
             f"`python -m sims.bench.scalesim` (sims/bench/scalesim.py; load average at the end "
             f"{os.getloadavg()[0]:.1f}): a GEMM topology {GEMM_MNK[0]} x {GEMM_MNK[1]} x {GEMM_MNK[2]} (M x N x K, "
             "`--gemm`), 16x16 array, 64 kB buffers, CALC mode: `load_topology`, `simulate_topology` and "
             "`report_csvs`; *wall time* of one call, *peak traced memory* of a second call under `tracemalloc` "
             "(SCALE-Sim was not run on it). Target: 30 s and 500 MB.", "",
             "| dataflow | wall time | peak traced memory | cycles |", "|---|---:|---:|---:|"]
    for flow, s, pk, cyc in gemm:
        lines.append(f"| {flow.value} | {s:.2f} s | {pk:.1f} MB | {cyc:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
