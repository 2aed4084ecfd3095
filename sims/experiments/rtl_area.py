"""Area and fmax sweep of the PE array (every PE kind), and the least-squares area model for hwsim.area.

    python -m sims.experiments.rtl_area [--quick] [--fit-only] [--out-csv docs/rtl_area.csv] [--out-png docs/rtl_area.png]

For each PE kind (``serial_act``, ``serial_both``, ``parallel``), bits (W = A) in 1, 2, 4, 8, 16 and arrays
1x1, 2x2, 4x4, 8x8 it exports the array, synthesizes it with Debian's Yosys for iCE40 (``synth_ice40``),
places and routes a registered serial-I/O wrapper of the small arrays with nextpnr-ice40 (hx8k) for fmax,
and fits LUTs / FFs / carries per kind as linear functions of the terms in :data:`hwsim.area.TERMS`. It
also synthesizes wider accumulators (``max_steps``) and non-square arrays with W != A so the fit can tell
the terms apart, and the ``dual`` adder style (serial_act) for the adder comparison. The ``parallel``
8x8 16-bit array (about 80k LUTs, minutes of Yosys) is left out.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.area import FIT_YOSYS, TERMS, area_terms

__all__ = ["Design", "designs", "run_sweep", "fit_area", "main"]

REPO = Path(__file__).resolve().parents[2]
KINDS = ("serial_act", "serial_both", "parallel")
BITS = (1, 2, 4, 8, 16)
SIZES = ((1, 1), (2, 2), (4, 4), (8, 8))
FMAX_MAX_PES = {"serial_act": 16, "serial_both": 16, "parallel": 4}
COLUMNS = ["kind", "rows", "cols", "weight_bits", "act_bits", "acc_bits", "max_steps", "adder", "target", "luts",
           "ffs", "carries", "cells", "fmax_mhz", "logic_cells", "yosys_version", "nextpnr_version", "synth_s"]


@dataclass(frozen=True, slots=True)
class Design:
    rows: int
    cols: int
    bits: int
    max_steps: int = 256
    adder: str = "single"
    act_bits: int | None = None    # None: same as ``bits`` (the weight bits)
    kind: str = "serial_act"
    fmax: bool = True

    @property
    def a(self) -> int:
        return self.bits if self.act_bits is None else self.act_bits


# Non-square arrays with W != A: without them the column and row terms of the fit are collinear.
MIXED = ((1, 4, 8, 2), (4, 1, 2, 8), (2, 8, 8, 4), (8, 2, 4, 8), (2, 4, 16, 4), (4, 2, 4, 16), (1, 8, 4, 4),
         (8, 1, 4, 4))


def _too_big(kind: str, rows: int, cols: int, bits: int) -> bool:
    return kind == "parallel" and rows * cols * bits * bits > 8 * 8 * 8 * 8   # minutes of Yosys each


def designs(quick: bool = False, kinds: tuple[str, ...] = KINDS, sizes: tuple[tuple[int, int], ...] | None = None,
            bits: tuple[int, ...] | None = None, fmax: bool = True) -> list[Design]:
    """The sweep's designs. With ``sizes`` or ``bits`` given: just that grid (W = A) for each kind."""
    if sizes is not None or bits is not None:
        return [Design(r, c, b, kind=k, fmax=fmax) for k in kinds for r, c in (sizes or SIZES[:1])
                for b in (bits or BITS[:1])]
    sz = SIZES[:2] if quick else SIZES
    bs = (2, 8) if quick else BITS
    out: list[Design] = []
    for k in kinds:
        out += [Design(r, c, b, kind=k, fmax=fmax) for r, c in sz for b in bs if not _too_big(k, r, c, b)]
        out += [Design(r, c, b, max_steps=1 << 16, kind=k, fmax=False) for r, c in sz[1:3] for b in bs
                if not _too_big(k, r, c, 2 * b)]                         # wider accumulators
        if not quick:
            out += [Design(r, c, w, act_bits=a, kind=k, fmax=False) for r, c, w, a in MIXED]
        if k == "serial_act":
            out += [Design(1, 1, b, adder="dual", fmax=fmax) for b in bs]
            if not quick:
                out += [Design(4, 4, b, adder="dual", fmax=fmax) for b in bs]
    return out


def term_matrix(kind: str, sel: list[dict[str, object]]) -> np.ndarray:
    """Rows of :func:`hwsim.area.area_terms` (the model's own terms, so fit and model cannot drift apart)."""
    return np.array([area_terms(kind, int(r["rows"]), int(r["cols"]), int(r["weight_bits"]),  # type: ignore[call-overload]
                                int(r["act_bits"]), int(r["acc_bits"])) for r in sel], dtype=float)  # type: ignore[call-overload]


def fit_area(rows_: list[dict[str, object]]) -> dict[str, object]:
    """Least squares of luts / ffs / carries on ``hwsim.area.TERMS[kind]``, per kind, over the single-adder
    iCE40 rows, weighted by 1/count so that it minimises the relative error. A kind with fewer designs than terms is listed as not fitted."""
    out: dict[str, object] = {"yosys": FIT_YOSYS, "kinds": {}}
    kinds_out: dict[str, object] = {}
    for kind in KINDS:
        sel = [r for r in rows_ if r.get("kind", "serial_act") == kind and r["adder"] == "single"
               and r["target"] == "ice40"]
        if not sel:
            continue
        terms = TERMS[kind]
        if len(sel) < 2 * len(terms):
            kinds_out[kind] = {"terms": list(terms), "points": len(sel),
                               "fitted": False, "why": f"{len(sel)} designs, the fit needs at least {2 * len(terms)}"}
            continue
        x = term_matrix(kind, sel)
        entry: dict[str, object] = {"terms": list(terms), "points": len(sel), "fitted": True}
        for what in ("luts", "ffs", "carries"):
            y = np.array([float(r[what]) for r in sel])  # type: ignore[arg-type]
            wt = 1.0 / np.maximum(y, 1.0)   # minimise the relative error (what FIT_ERROR reports), not the absolute
            coef, *_ = np.linalg.lstsq(x * wt[:, None], y * wt, rcond=None)
            coef = np.round(coef, 4)
            pred = x @ coef
            rel = np.abs(pred - y) / np.maximum(y, 1)
            entry[what] = {"coef": [float(c) for c in coef], "max_rel_err": round(float(rel.max()), 4),
                           "mean_rel_err": round(float(rel.mean()), 4),
                           "max_abs_err": round(float(np.abs(pred - y).max()), 1)}
        kinds_out[kind] = entry
    out["kinds"] = kinds_out
    return out


def run_sweep(out_csv: Path, out_png: Path | None, quick: bool = False, build: Path | None = None,
              log: bool = True, selected: list[Design] | None = None) -> list[dict[str, object]]:
    from rtl.export import component_verilog, export_array
    from rtl.params import ArrayParams
    from rtl.synth import ice40_fmax_mhz, run_yosys
    from rtl.tools import tool_version
    from rtl.wrapper import SerialIOWrapper

    build = build or REPO / "build" / "rtl_area"
    todo = selected if selected is not None else designs(quick)
    nextpnr_v = tool_version("nextpnr-ice40") if any(d.fmax for d in todo) else ""
    rows_: list[dict[str, object]] = []
    for d in todo:
        p = ArrayParams(d.rows, d.cols, d.bits, d.a, max_steps=d.max_steps, adder=d.adder, kind=d.kind)
        wdir = build / f"{p.name}_{d.adder}"
        exp = export_array(p, wdir, top="bs_array")
        res = run_yosys(exp.verilog, exp.top, "ice40", wdir)
        fmax, lcs = "", ""
        if d.fmax and d.rows * d.cols <= FMAX_MAX_PES[d.kind] and d.max_steps == 256 and d.act_bits is None:
            wv = wdir / "bs_array_io.v"
            wv.write_text(component_verilog(SerialIOWrapper(p), "bs_array_io"))
            try:
                f, n = ice40_fmax_mhz(wv, "bs_array_io", wdir)
                fmax, lcs = f"{f:.1f}", str(n)
            except RuntimeError as exc:   # does not fit the device: recorded as a blank
                print(f"  fmax n/a: {exc}")
        row: dict[str, object] = {"kind": d.kind, "rows": d.rows, "cols": d.cols, "weight_bits": d.bits,
                                  "act_bits": d.a, "acc_bits": p.acc_bits, "max_steps": d.max_steps,
                                  "adder": d.adder, "target": "ice40", "luts": res.luts, "ffs": res.ffs,
                                  "carries": res.carries, "cells": res.cells, "fmax_mhz": fmax, "logic_cells": lcs,
                                  "yosys_version": res.yosys_version, "nextpnr_version": nextpnr_v,
                                  "synth_s": f"{res.seconds:.1f}"}
        rows_.append(row)
        if log:
            print(f"{d.kind:11s} {d.rows}x{d.cols} W={d.bits:2d} A={d.a:2d} acc={p.acc_bits} {d.adder:6s}: "
                  f"{res.luts} LUT {res.ffs} FF {res.carries} carry, fmax {fmax or '-'} MHz ({res.seconds:.1f} s)",
                  flush=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows_)
    fit = fit_area(rows_)
    out_csv.with_name(out_csv.stem + "_fit.json").write_text(json.dumps(fit, indent=2) + "\n")
    if out_png is not None:
        plot(rows_, out_png)
    return rows_


def plot(rows_: list[dict[str, object]], out_png: Path) -> None:
    """LUT4 vs bits and fmax vs bits of the square arrays (W = A, 256-step accumulators), per PE kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    styles = {"serial_act": "o-", "serial_both": "s--", "parallel": "^:"}
    colors = {1: "C0", 2: "C1", 4: "C2", 8: "C3"}
    for kind in KINDS:
        for (r, c) in SIZES:
            pts = sorted((int(x["weight_bits"]), int(x["luts"]), x["fmax_mhz"]) for x in rows_  # type: ignore[call-overload]
                         if x.get("kind", "serial_act") == kind and int(x["rows"]) == r  # type: ignore[call-overload]
                         and int(x["cols"]) == c and x["adder"] == "single"  # type: ignore[call-overload]
                         and int(x["max_steps"]) == 256 and x["weight_bits"] == x["act_bits"])  # type: ignore[call-overload]
            if not pts:
                continue
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], styles[kind], color=colors[r], label=f"{kind} {r}x{c}")
            fm = [(p[0], float(p[2])) for p in pts if p[2] not in ("", None)]  # type: ignore[arg-type]
            if fm:
                ax2.plot([p[0] for p in fm], [p[1] for p in fm], styles[kind], color=colors[r], label=f"{kind} {r}x{c}")
    ax1.set(xscale="log", yscale="log", xlabel="bits (W = A)", ylabel="iCE40 LUT4", title="area vs bits (synth_ice40)")
    ax2.set(xscale="log", xlabel="bits (W = A)", ylabel="fmax (MHz)", title="fmax vs bits (nextpnr-ice40, hx8k)")
    for ax in (ax1, ax2):
        ax.set_xticks(list(BITS), [str(b) for b in BITS])
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small subset (a smoke run)")
    ap.add_argument("--fit-only", action="store_true", help="refit and replot an existing CSV, no synthesis")
    ap.add_argument("--out-csv", type=Path, default=REPO / "docs" / "rtl_area.csv")
    ap.add_argument("--out-png", type=Path, default=REPO / "docs" / "rtl_area.png")
    args = ap.parse_args(argv)
    if not args.fit_only:
        run_sweep(args.out_csv, args.out_png, args.quick)
    with args.out_csv.open() as fh:
        rows_: list[dict[str, object]] = list(csv.DictReader(fh))
    fit = fit_area(rows_)
    args.out_csv.with_name(args.out_csv.stem + "_fit.json").write_text(json.dumps(fit, indent=2) + "\n")
    if args.fit_only:
        plot(rows_, args.out_png)
    print(json.dumps(fit, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
