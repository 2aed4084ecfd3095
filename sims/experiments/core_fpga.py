"""FPGA builds of the generated accelerator core (``rtl/core.py``): Yosys synthesis and nextpnr place and
route on iCE40 and ECP5, the results in ``docs/core_fpga.json`` / ``docs/core_fpga.csv``.

    python -m sims.experiments.core_fpga [--only NAME,...] [--build build/core_fpga]

Each point is one accelerator, one target and one part (``POINTS``); a run replaces the points it ran
in the JSON and keeps the others, so the slow ECP5 builds can be run on their own. The tools are the
preferred ones of :func:`rtl.tools.find_tool` (the PyPI WebAssembly Yosys and nextpnr); every record
keeps their versions, the part, the seed and the wall times. ``--table`` prints the markdown table of
``docs/rtl.md``'s section "FPGA builds of the accelerator core" from the JSON.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hwsim
from hwsim.accelerator import Accelerator, Dataflow
from hwsim.area import CORE_TERMS, bram_count, buffer_memories, core_terms, fpga_area

__all__ = ["Point", "POINTS", "accelerator_of", "run_points", "write_csv", "table", "fit_core", "main"]

REPO = Path(__file__).resolve().parents[2]
JSON_OUT = REPO / "docs" / "core_fpga.json"
CSV_OUT = REPO / "docs" / "core_fpga.csv"
SMALL = "sims/specs/core_small_ice40.yaml"
TINY = {"name": "tiny_1x2", "rows": 1, "cols": 2,
        "pe": {"kind": "serial_act", "max_weight_bits": 4, "max_act_bits": 4, "acc_bits": 16},
        "dataflows": ["os"], "interconnect": "broadcast",
        "ifmap_sram": {"size_bytes": 512, "word_bits": 8, "packed": False},
        "filter_sram": {"size_bytes": 512, "word_bits": 8, "packed": False},
        "ofmap_sram": {"size_bytes": 1024, "word_bits": 16, "packed": False}, "dram": {"bandwidth_bytes_per_cycle": 1},
        "clock_hz": 1.0e8}


@dataclass(frozen=True, slots=True)
class Point:
    """One build: ``arch`` (a preset, a YAML path, or ``tiny``), optional changes (``rows``/``cols``/``banks``),
    the target and part, and whether to place and route."""

    name: str
    arch: str
    target: str
    device: str
    place: bool = True
    rows: int | None = None
    banks: int | None = None
    timeout_s: float = 2400.0
    abc9: bool = True      # False: the 16x16 cores, whose ABC9 step exhausts the WebAssembly Yosys' stack
    memories_only: bool = False   # True: Yosys only up to its memory mapping (a core that cannot fit)
    dataflows: tuple[str, ...] | None = None   # instead of the accelerator's own
    pnr_flags: tuple[str, ...] = ()   # extra nextpnr options (recorded in the build's ``pnr_flags``)
    # False: buffers with one element per word of the spec (``packed: false``, name suffix ``_wide``): the
    # FPGA-sized build, one port per bank; a packed spec's core has ``word_bits / bits`` narrow ports per
    # bank instead (hwsim.area.core_buffer), each block RAM replicated per read port (hwsim.area.BufferMemory)
    packed: bool | None = None


POINTS = (
    Point("tiny_1x2", "tiny", "ice40", "hx8k"),
    Point("small_2x2", SMALL, "ice40", "hx8k", rows=2),
    Point("small_4x4", SMALL, "ice40", "hx8k"),
    Point("small_4x4_up5k", SMALL, "ice40", "up5k"),
    Point("small_4x4_ecp5", SMALL, "ecp5", "lfe5u-25f"),
    Point("edge8_serial", "edge8_serial", "ice40", "hx8k", place=False, packed=False),
    Point("small_4x4_ws", SMALL, "ice40", "hx8k", place=False, dataflows=("os", "ws")),
    # nextpnr's default HeAP placer took 28 min to a legal placement of this 96 %-full part and its annealing
    # refinement did not end within 110 min (docs/rtl.md); the electrostatic placer and router2 instead
    Point("edge16_serial_1bank", "edge16_serial", "ecp5", "lfe5u-85f", banks=1, abc9=False,
          pnr_flags=("--placer", "static", "--router", "router2"), packed=False),
    # two banks per half, each half split into a memory per bank (rtl.core.BankedMemory) for block RAM; its
    # logic packs to 97 % of the part's TRELLIS_COMB
    Point("edge16_serial", "edge16_serial", "ecp5", "lfe5u-85f", abc9=False, timeout_s=7200.0,
          pnr_flags=("--placer", "static", "--router", "router2"), packed=False),
)


def accelerator_of(pt: Point) -> Accelerator:
    """The accelerator a point builds (a square ``rows`` x ``rows`` array, or one port per buffer half)."""
    if pt.arch == "tiny":
        from hwsim.io import accelerator_from_dict

        acc = accelerator_from_dict(TINY, "core_fpga.TINY")
    else:
        acc = hwsim.resolve_accelerator(REPO / pt.arch if pt.arch.endswith(".yaml") else pt.arch)
    if pt.rows is not None:
        acc = dataclasses.replace(acc, name=f"{acc.name}_{pt.rows}x{pt.rows}", rows=pt.rows, cols=pt.rows)
    if pt.dataflows is not None:
        acc = dataclasses.replace(acc, name=f"{acc.name}_{'_'.join(pt.dataflows)}",
                                  dataflows=tuple(Dataflow(d) for d in pt.dataflows))
    if pt.packed is False:
        acc = dataclasses.replace(acc, name=f"{acc.name}_wide", **{
            f"{b}_sram": dataclasses.replace(getattr(acc, f"{b}_sram"), packed=False)
            for b in ("ifmap", "filter", "ofmap")})
    if pt.banks is not None:
        acc = dataclasses.replace(acc, name=f"{acc.name}_{pt.banks}bank", **{
            f"{b}_sram": dataclasses.replace(getattr(acc, f"{b}_sram"), banks=pt.banks)
            for b in ("ifmap", "filter", "ofmap")})
    return acc


def memory_mapping(accelerator: Accelerator, core: Any, target: str, workdir: Path,
                   timeout_s: float) -> dict[str, Any]:
    """Yosys ``synth_<target>`` up to its block-RAM / LUT-RAM mapping: where each buffer half went, and the
    memory bits left unmapped (each becomes one flip-flop in ``map_ffram``)."""
    from rtl.synth import _memories, _run, core_verilog
    from rtl.tools import find_tool, tool_version

    yosys = find_tool("yosys")
    wd = workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "core_io.v").write_text(core_verilog(core, "core_io"))
    script = ("read_verilog core_io.v; hierarchy -top core_io; setattr -mod -set keep_hierarchy 1 *.core; flatten; "
              f"synth_{target} -top core_io -run begin:map_ffram; tee -q -o stat.json stat -json")
    rc, log, secs = _run([yosys, "-l", "yosys.log", "-q", "-p", script], wd, timeout_s)
    if rc != 0:
        raise RuntimeError(f"yosys failed on core {core.name} ({target}): {log.strip().splitlines()[-1:]}")
    mems = _memories((wd / "yosys.log").read_text(errors="replace"))
    ff = {m["memory"] for m in mems if m["mapped_to"] == "FF"}
    geo = {f"{m.buffer}_h{i % 2}": m.depth * m.width for i, m in enumerate(buffer_memories(accelerator))}
    return {"memories": mems, "unmapped_memories": len(ff), "unmapped_memory_bits": sum(geo.get(n, 0) for n in ff),
            "yosys_version": tool_version(yosys), "synth_s": round(secs, 1)}


def run_point(pt: Point, build: Path, pnr_timeout_s: float | None = None) -> dict[str, Any]:
    from rtl.program import CoreParams
    from rtl.synth import build_core

    acc = accelerator_of(pt)
    core = CoreParams.from_accelerator(acc)
    rec: dict[str, Any] = {"point": pt.name, "arch": acc.name, "rows": acc.rows, "cols": acc.cols,
                           "kind": acc.pe.kind.value, "weight_bits": core.weight_bits, "act_bits": core.act_bits,
                           "acc_bits": core.acc_bits, "dataflows": list(core.dataflows),
                           "buffers": {b: dataclasses.asdict(core.geometry(b)) for b in ("ifmap", "filter", "ofmap")},
                           "bram_predicted": bram_count(acc, pt.target), "date": time.strftime("%Y-%m-%d")}
    t0 = time.perf_counter()
    if pt.memories_only:
        rec |= {"target": pt.target, "device": pt.device, **memory_mapping(acc, core, pt.target,
                                                                          build / pt.name, pt.timeout_s)}
        rec["status"] = (f"memory mapping only: {rec['unmapped_memories']} buffer halves not mappable to block RAM, "
                         f"{rec['unmapped_memory_bits']} bits as flip-flops")
        rec["wall_s"] = round(time.perf_counter() - t0, 1)
        return rec
    try:
        res = build_core(core, pt.target, build / pt.name, device=pt.device, place=pt.place,
                         timeout_s=pt.timeout_s, abc9=pt.abc9, pnr_timeout_s=pnr_timeout_s, pnr_flags=pt.pnr_flags)
    except RuntimeError as exc:
        from rtl.synth import _memories

        log = build / pt.name / "yosys.log"
        rec |= {"target": pt.target, "device": pt.device, "status": str(exc)[:400],
                "wall_s": round(time.perf_counter() - t0, 1),
                "memories": _memories(log.read_text(errors="replace")) if log.exists() else []}
        return rec
    status = {True: "ok", False: "does not fit", None: "place and route not finished" if pt.place else "ok"}
    rec |= res.to_dict() | {"status": status[res.fits],
                            "wall_s": round(time.perf_counter() - t0, 1)}
    return rec


def run_points(names: list[str] | None, build: Path, out_json: Path = JSON_OUT,
               pnr_timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Run the selected points (all without ``names``), one at a time; merge them into ``out_json``."""
    todo = [p for p in POINTS if names is None or p.name in names]
    if names is not None and len(todo) != len(names):
        known = [p.name for p in POINTS]
        raise ValueError(f"core_fpga.only must be a comma-separated list of {known}, not {','.join(names)!r}")
    old = json.loads(out_json.read_text())["builds"] if out_json.exists() else []
    by_name = {r["point"]: r for r in old}
    for pt in todo:
        print(f"[core_fpga] {pt.name}: {pt.target} {pt.device}{'' if pt.place else ' (synthesis only)'} ...",
              flush=True)
        rec = run_point(pt, build, pnr_timeout_s)
        by_name[pt.name] = rec
        print(f"[core_fpga] {pt.name}: {rec.get('status')} luts={rec.get('luts')} ffs={rec.get('ffs')} "
              f"bram={rec.get('bram')}/{rec.get('bram_predicted')} fmax={rec.get('fmax_mhz')} "
              f"wall={rec.get('wall_s')} s", flush=True)
        rows = [by_name[p.name] for p in POINTS if p.name in by_name]
        out_json.write_text(json.dumps({"builds": rows}, indent=1) + "\n")
    rows = [by_name[p.name] for p in POINTS if p.name in by_name]
    write_csv(rows, out_json.with_suffix(".csv"))
    return rows


CSV_COLUMNS = ["point", "arch", "target", "device", "package", "rows", "cols", "kind", "weight_bits", "act_bits",
               "acc_bits", "dataflows", "luts", "ffs", "bram", "bram_predicted", "dsp", "carries", "lutram",
               "wrapper_luts", "wrapper_ffs", "fits", "util_logic", "util_bram", "fmax_mhz", "critical_path", "seed",
               "yosys_version", "nextpnr_version", "synth_s", "pnr_s", "wall_s", "status"]


def _util(rec: dict[str, Any], key: str) -> str:
    u = rec.get("utilisation", {}).get(key)
    return f"{u['used']}/{u['available']}" if u else ""


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            logic = "logic_cells" if r.get("target") == "ice40" else "luts"
            flat = {k: r.get(k, "") for k in CSV_COLUMNS}
            flat |= {"dataflows": "+".join(r.get("dataflows", [])), "wrapper_luts": r.get("wrapper", {}).get("luts", ""),
                     "wrapper_ffs": r.get("wrapper", {}).get("ffs", ""), "util_logic": _util(r, logic),
                     "util_bram": _util(r, "bram")}
            if isinstance(flat["fmax_mhz"], float):
                flat["fmax_mhz"] = round(flat["fmax_mhz"], 2)
            w.writerow({k: ("" if v is None else v) for k, v in flat.items()})


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the builds (docs/rtl.md)."""
    out = ["| build | array | part | LUT | FF | BRAM (model) | DSP | carry | fits: logic, BRAM | fmax MHz | "
           "Yosys s | nextpnr s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "unmapped_memories" in r:
            out.append(f"| {r['point']} | {r['rows']}x{r['cols']} | {r['target']} {r['device']} | "
                       f"{r['status']} | | 0 ({r['bram_predicted']}) | | | | | {r['synth_s']:.0f} | |")
            continue
        if "luts" not in r:
            out.append(f"| {r['point']} | {r['rows']}x{r['cols']} | {r['target']} {r['device']} | "
                       f"{r['status']} | | | | | | | | |")
            continue
        logic = "logic_cells" if r["target"] == "ice40" else "luts"
        fits = "—" if r["fits"] is None else (f"{'yes' if r['fits'] else 'NO'}: {_util(r, logic)}, "
                                              f"{_util(r, 'bram')}")
        if r["fits"] is None and r.get("utilisation"):
            fits = f"P&R not finished; packed: {_util(r, logic)}, {_util(r, 'bram')}"
        fmax = "—" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.1f}"
        pnr = "—" if r["fits"] is None else f"{r['pnr_s']:.0f}"
        out.append(f"| {r['point']} | {r['rows']}x{r['cols']} | {r['target']} {r['device']} {r['package']} | "
                   f"{r['luts']} | {r['ffs']} | {r['bram']} ({r['bram_predicted']}) | {r['dsp']} | {r['carries']} | "
                   f"{fits} | {fmax} | {r['synth_s']:.0f} | {pnr} |")
    return "\n".join(out)


def _fit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The builds the core model is fitted on: iCE40, synthesised, OS-only cores, no DSP mapping."""
    return [r for r in rows if r.get("target") == "ice40" and "luts" in r and r["dataflows"] == ["os"]
            and r.get("device") != "up5k"]


def fit_core(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Least squares (weighted by 1/count, i.e. relative error) of what the core adds to its PE array:
    ``measured - hwsim.area.fpga_area(acc)`` in LUTs, FFs and carries over :data:`hwsim.area.CORE_TERMS`.
    Also the leave-one-out error (each build predicted by the fit of the others), the honest figure for
    so few builds."""
    import numpy as np

    pts = _fit_rows(rows)
    out: dict[str, Any] = {"terms": list(CORE_TERMS), "points": [r["point"] for r in pts],
                           "yosys": sorted({r["yosys_version"] for r in pts})}
    if len(pts) < len(CORE_TERMS) + 1:
        out["fitted"] = False
        return out
    accs = {r["point"]: accelerator_of(next(p for p in POINTS if p.name == r["point"])) for r in pts}
    X = np.array([core_terms(accs[r["point"]]) for r in pts], dtype=float)
    for what in ("luts", "ffs", "carries"):
        arr = np.array([getattr(fpga_area(accs[r["point"]]), what) for r in pts], dtype=float)
        y = np.array([r[what] for r in pts], dtype=float)
        wgt = 1.0 / y

        def solve(idx: list[int], X: Any = X, y: Any = y, arr: Any = arr, wgt: Any = wgt) -> Any:
            coef, *_ = np.linalg.lstsq(X[idx] * wgt[idx, None], (y[idx] - arr[idx]) * wgt[idx], rcond=None)
            return coef

        coef = solve(list(range(len(pts))))
        pred = arr + X @ coef
        loo = []
        for i in range(len(pts)):
            c = solve([j for j in range(len(pts)) if j != i])
            loo.append(abs(arr[i] + X[i] @ c - y[i]) / y[i])
        rel = np.abs(pred - y) / y
        out[what] = {"coef": [round(float(c), 4) for c in coef], "max_rel_err": round(float(rel.max()), 4),
                     "mean_rel_err": round(float(rel.mean()), 4), "loo_max_rel_err": round(float(max(loo)), 4)}
    out["fitted"] = True
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", help=f"comma-separated points of {[p.name for p in POINTS]}")
    ap.add_argument("--build", default=str(REPO / "build" / "core_fpga"))
    ap.add_argument("--out-json", default=str(JSON_OUT))
    ap.add_argument("--table", action="store_true", help="print the markdown table of the JSON and stop")
    ap.add_argument("--fit", action="store_true", help="print the core model's fit of the JSON and stop")
    ap.add_argument("--pnr-timeout", type=float, help="stop nextpnr after this many seconds (default: the point's)")
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.out_json).read_text())["builds"]))
        return 0
    if args.fit:
        print(json.dumps(fit_core(json.loads(Path(args.out_json).read_text())["builds"]), indent=1))
        return 0
    rows = run_points(args.only.split(",") if args.only else None, Path(args.build), Path(args.out_json),
                      args.pnr_timeout)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
