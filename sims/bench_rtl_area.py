"""Area and fmax sweep of the bit-serial PE array, and the least-squares area model for hwsim.area.

    python sims/bench_rtl_area.py [--quick] [--out-csv docs/rtl_area.csv] [--out-png docs/rtl_area.png]

For bits (W = A) in 1, 2, 4, 8, 16 and arrays 1x1, 2x2, 4x4, 8x8 it exports the array, synthesizes it
with Debian's Yosys for iCE40 (``synth_ice40``), places and routes a registered serial-I/O wrapper of the
arrays up to 4x4 with nextpnr-ice40 (hx8k) for fmax, and fits LUTs / FFs / carries as functions of
W, A, acc_bits, rows and cols. It also synthesizes the ``dual`` adder style for the adder comparison and
wider accumulators (``max_steps``) so the fit can tell accumulator bits from operand bits.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Design", "designs", "run_sweep", "fit_area", "FIT_TERMS", "main"]

REPO = Path(__file__).resolve().parents[1]
BITS = (1, 2, 4, 8, 16)
SIZES = ((1, 1), (2, 2), (4, 4), (8, 8))
FMAX_MAX_PES = 16
COLUMNS = ["rows", "cols", "weight_bits", "act_bits", "acc_bits", "max_steps", "adder", "target", "luts", "ffs",
           "carries", "cells", "fmax_mhz", "logic_cells", "yosys_version", "nextpnr_version", "synth_s"]
# Physically motivated terms: per PE an acc_bits-wide adder + register and the operand gating/negation
# (W + A - 1 bits); per column the shared weight shifter (W + A - 1); per row the activation shifter (A);
# the shared controller: its step counter and limit (log2 max_steps bits each) and a constant.
FIT_TERMS = ("pe_acc", "pe_operand", "col_shift", "row_shift", "ctrl_steps", "const")


@dataclass(frozen=True, slots=True)
class Design:
    rows: int
    cols: int
    bits: int
    max_steps: int = 256
    adder: str = "single"
    act_bits: int | None = None    # None: same as ``bits`` (the weight bits)

    @property
    def a(self) -> int:
        return self.bits if self.act_bits is None else self.act_bits


# Non-square arrays with W != A: without them the column and row terms of the fit are collinear.
MIXED = ((1, 4, 8, 2), (4, 1, 2, 8), (2, 8, 8, 4), (8, 2, 4, 8), (2, 4, 16, 4), (4, 2, 4, 16), (1, 8, 4, 4),
         (8, 1, 4, 4))


def designs(quick: bool = False) -> list[Design]:
    sizes = SIZES[:2] if quick else SIZES
    bits = (2, 8) if quick else BITS
    out = [Design(r, c, b) for r, c in sizes for b in bits]
    out += [Design(r, c, b, max_steps=1 << 16) for r, c in sizes[1:3] for b in bits]   # wider accumulators
    out += [Design(1, 1, b, adder="dual") for b in bits]
    if not quick:
        out += [Design(4, 4, b, adder="dual") for b in bits]
        out += [Design(r, c, w, act_bits=a) for r, c, w, a in MIXED]
    return out


def term_matrix(w: np.ndarray, a: np.ndarray, acc: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                max_steps: np.ndarray) -> np.ndarray:
    """Same terms as ``hwsim.area`` (which derives ``max_steps`` from the accumulator width)."""
    pes = rows * cols
    steps_bits = np.ceil(np.log2(np.maximum(max_steps, 1)))
    return np.stack([pes * acc, pes * (w + a - 1), cols * (w + a - 1), rows * a, steps_bits, np.ones_like(w)], axis=1)


def fit_area(rows_: list[dict[str, object]]) -> dict[str, object]:
    """Least squares of luts / ffs / carries on :data:`FIT_TERMS` over the single-adder iCE40 rows."""
    sel = [r for r in rows_ if r["adder"] == "single" and r["target"] == "ice40"]
    def col(k: str) -> np.ndarray:
        return np.array([float(r[k]) for r in sel])  # type: ignore[arg-type]
    x = term_matrix(col("weight_bits"), col("act_bits"), col("acc_bits"), col("rows"), col("cols"), col("max_steps"))
    out: dict[str, object] = {"terms": list(FIT_TERMS), "points": len(sel)}
    for what in ("luts", "ffs", "carries"):
        y = col(what)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        pred = x @ coef
        rel = np.abs(pred - y) / np.maximum(y, 1)
        out[what] = {"coef": [round(float(c), 4) for c in coef], "max_rel_err": round(float(rel.max()), 4),
                     "mean_rel_err": round(float(rel.mean()), 4), "max_abs_err": round(float(np.abs(pred - y).max()), 1)}
    return out


def run_sweep(out_csv: Path, out_png: Path | None, quick: bool = False, build: Path | None = None,
              log: bool = True) -> list[dict[str, object]]:
    from rtl.export import component_verilog, export_array
    from rtl.params import ArrayParams
    from rtl.synth import ice40_fmax_mhz, run_yosys
    from rtl.tools import tool_version
    from rtl.wrapper import SerialIOWrapper

    build = build or REPO / "build" / "rtl_area"
    nextpnr_v = tool_version("nextpnr-ice40")
    rows_: list[dict[str, object]] = []
    for d in designs(quick):
        p = ArrayParams(d.rows, d.cols, d.bits, d.a, max_steps=d.max_steps, adder=d.adder)
        wdir = build / f"{p.name}_{d.adder}"
        exp = export_array(p, wdir, top="bs_array")
        res = run_yosys(exp.verilog, exp.top, "ice40", wdir)
        fmax, lcs = "", ""
        if d.rows * d.cols <= FMAX_MAX_PES and d.max_steps == 256 and d.act_bits is None:
            wv = wdir / "bs_array_io.v"
            wv.write_text(component_verilog(SerialIOWrapper(p), "bs_array_io"))
            try:
                f, n = ice40_fmax_mhz(wv, "bs_array_io", wdir)
                fmax, lcs = f"{f:.1f}", str(n)
            except RuntimeError as exc:   # does not fit the device: recorded as a blank
                print(f"  fmax n/a: {exc}")
        row: dict[str, object] = {"rows": d.rows, "cols": d.cols, "weight_bits": d.bits, "act_bits": d.a,
                                  "acc_bits": p.acc_bits, "max_steps": d.max_steps, "adder": d.adder,
                                  "target": "ice40", "luts": res.luts, "ffs": res.ffs, "carries": res.carries,
                                  "cells": res.cells, "fmax_mhz": fmax, "logic_cells": lcs,
                                  "yosys_version": res.yosys_version, "nextpnr_version": nextpnr_v,
                                  "synth_s": f"{res.seconds:.1f}"}
        rows_.append(row)
        if log:
            print(f"{d.rows}x{d.cols} W={d.bits:2d} A={d.a:2d} acc={p.acc_bits} {d.adder:6s}: {res.luts} LUT {res.ffs} FF "
                  f"{res.carries} carry, fmax {fmax or '-'} MHz ({res.seconds:.1f} s)", flush=True)
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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for (r, c) in sorted({(int(x["rows"]), int(x["cols"])) for x in rows_ if x["rows"] == x["cols"]}):  # type: ignore[call-overload]
        pts = sorted((int(x["weight_bits"]), int(x["luts"]), int(x["ffs"]), x["fmax_mhz"]) for x in rows_  # type: ignore[call-overload]
                     if int(x["rows"]) == r and int(x["cols"]) == c and x["adder"] == "single"  # type: ignore[call-overload]
                     and int(x["max_steps"]) == 256 and x["weight_bits"] == x["act_bits"])  # type: ignore[call-overload]
        if not pts:
            continue
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{r}x{c} LUT4")
        ax1.plot([p[0] for p in pts], [p[2] for p in pts], "x--", color=ax1.lines[-1].get_color(), label=f"{r}x{c} FF")
        fm = [(p[0], float(p[3])) for p in pts if p[3] not in ("", None)]  # type: ignore[arg-type]
        if fm:
            ax2.plot([p[0] for p in fm], [p[1] for p in fm], "o-", label=f"{r}x{c}")
    ax1.set(xscale="log", yscale="log", xlabel="bits (W = A)", ylabel="iCE40 cells", title="area vs bits (synth_ice40)")
    ax1.set_xticks(list(BITS), [str(b) for b in BITS])
    ax1.legend(fontsize=7, ncol=2)
    ax2.set(xscale="log", xlabel="bits (W = A)", ylabel="fmax (MHz)", title="fmax vs bits (nextpnr-ice40, hx8k)")
    ax2.set_xticks(list(BITS), [str(b) for b in BITS])
    ax2.legend(fontsize=7)
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
