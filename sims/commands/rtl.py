"""``hwsim rtl export|synth|sweep``: Verilog of the PE array (every PE kind), Yosys area / nextpnr fmax, area sweep.

Parameters are validated (``rtl.params.ArrayParams``) before anything is built or written; Amaranth,
Yosys and nextpnr are only touched inside the commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtl.params import MAX_BITS, MAX_DIM, PE_KINDS, ArrayParams
from rtl.tools import ToolNotFoundError

__all__ = ["register"]

_DESIGN_INTS = (("rows", True), ("cols", True), ("weight_bits", True), ("act_bits", True), ("acc_bits", False),
                ("max_steps", False), ("precision", False), ("weight_precision", False))


def _design_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("design")
    g.add_argument("--kind", default="serial_act",
                   help="PE kind: serial_act (default; activations bit-serial), serial_both (both operands "
                        "bit-serial) or parallel (one full product per cycle)")
    g.add_argument("--rows", required=True, help="PE rows R")
    g.add_argument("--cols", required=True, help="PE columns C")
    g.add_argument("--weight-bits", required=True, help="weight bits W (serial_both: runtime precision 1..W)")
    g.add_argument("--act-bits", required=True, help="activation bits A (serial kinds: runtime precision 1..A)")
    g.add_argument("--acc-bits", help="accumulator bits (default: the worst case of a max-steps tile)")
    g.add_argument("--max-steps", default="256", help="longest reduction K of one tile (default 256)")
    g.add_argument("--adder", default="single", help="single (one carry chain, default) or dual")
    g.add_argument("--precision", help="fix the activation precision (no precision port)")
    g.add_argument("--weight-precision", help="serial_both: fix the weight precision (no weight_precision port)")
    g.add_argument("--act-signed", choices=("runtime", "signed", "unsigned"), default="runtime",
                   help="activation sign mode: a runtime port (default) or fixed")


def _params(args: argparse.Namespace) -> ArrayParams:
    values: dict[str, object] = {}
    for name, required in _DESIGN_INTS:
        raw = getattr(args, name)
        if raw is None and not required:
            continue
        try:
            values[name] = int(raw)
        except ValueError:
            raise ValueError(f"PEArray.{name} must be an integer, not {raw!r}") from None
    signed = {"runtime": None, "signed": True, "unsigned": False}[args.act_signed]
    return ArrayParams(adder=args.adder, act_signed=signed, kind=args.kind, **values)  # type: ignore[arg-type]


def _amaranth() -> None:
    try:
        import amaranth  # noqa: F401
    except ImportError:
        raise ToolNotFoundError("amaranth") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rtl", help="Verilog export, synthesis and area sweep of the bit-serial PE array")
    rsub = p.add_subparsers(dest="rtl_command", required=True, metavar="RTL_COMMAND")

    e = rsub.add_parser("export", help="write the array's Verilog and its parameters (JSON)")
    _design_args(e)
    e.add_argument("-o", "--out", required=True, help="output directory")
    e.add_argument("--top", help="top module name (default: encodes the parameters)")
    e.set_defaults(func=run_export)

    s = rsub.add_parser("synth", help="Yosys synthesis (LUT/FF/carry counts) and, for ice40, nextpnr fmax")
    _design_args(s)
    s.add_argument("--target", required=True, help="ice40, xc7 or generic")
    s.add_argument("--no-fmax", action="store_true", help="ice40: skip nextpnr place and route")
    s.add_argument("--build", default="build/rtl_synth", help="work directory (default build/rtl_synth)")
    s.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    s.set_defaults(func=run_synth)

    w = rsub.add_parser("sweep", help="area/fmax sweep over PE kinds, bits and array sizes; CSV, plot and area fit")
    w.add_argument("--out-csv", default="docs/rtl_area.csv")
    w.add_argument("--out-png", default="docs/rtl_area.png")
    w.add_argument("--quick", action="store_true", help="a small subset")
    w.add_argument("--kinds", help=f"comma-separated PE kinds (default: all of {','.join(PE_KINDS)})")
    w.add_argument("--sizes", help="comma-separated RxC arrays, e.g. 1x1,2x2: sweep just this grid (W = A)")
    w.add_argument("--bits", help="comma-separated bit widths (W = A), e.g. 2,8: sweep just this grid")
    w.add_argument("--no-fmax", action="store_true", help="skip nextpnr place and route")
    w.add_argument("--build", help="work directory (default build/rtl_area)")
    w.set_defaults(func=run_sweep)


def run_export(args: argparse.Namespace) -> int:
    params = _params(args)
    _amaranth()
    from rtl.export import export_array

    out = export_array(params, Path(args.out), top=args.top)
    print(f"wrote {out.verilog} and {out.params_json} (top module {out.top})")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from hwsim.errors import check_choice
    from rtl.synth import TARGETS
    from rtl.tools import require_tool

    params = _params(args)
    check_choice("rtl synth", "target", args.target, TARGETS)
    require_tool("yosys")
    if args.target == "ice40" and not args.no_fmax:
        require_tool("nextpnr-ice40")
    _amaranth()
    from rtl.export import component_verilog, export_array
    from rtl.synth import ice40_fmax_mhz, run_yosys
    from rtl.tools import tool_version
    from rtl.wrapper import SerialIOWrapper

    work = Path(args.build) / params.name
    exp = export_array(params, work, top="bs_array")
    res = run_yosys(exp.verilog, exp.top, args.target, work)
    report: dict[str, object] = {"params": params.to_dict()} | res.to_dict()
    print(f"{params.name} [{args.target}, {res.yosys_version}]: {res.luts} LUT, {res.ffs} FF, "
          f"{res.carries} carry, {res.cells} cells ({res.seconds:.1f} s)")
    if args.target == "ice40" and not args.no_fmax:
        wv = work / "bs_array_io.v"
        wv.write_text(component_verilog(SerialIOWrapper(params), "bs_array_io"))
        fmax, lcs = ice40_fmax_mhz(wv, "bs_array_io", work)
        report |= {"fmax_mhz": fmax, "logic_cells": lcs, "nextpnr_version": tool_version("nextpnr-ice40"),
                   "fmax_of": "registered serial-I/O wrapper, hx8k ct256, seed 1"}
        print(f"fmax {fmax:.1f} MHz on iCE40 hx8k ({lcs} logic cells incl. the serial I/O wrapper)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _int_list(owner: str, raw: str, lo: int, hi: int) -> list[int]:
    out = []
    for item in raw.split(","):
        try:
            v = int(item)
        except ValueError:
            v = lo - 1
        if not lo <= v <= hi:
            raise ValueError(f"{owner} must be a comma-separated list of integers in [{lo}, {hi}], not {raw!r}")
        out.append(v)
    return out


def _sweep_grid(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...] | None,
                                                     tuple[int, ...] | None]:
    kinds = tuple(PE_KINDS)
    if args.kinds is not None:
        kinds = tuple(args.kinds.split(","))
        if not kinds or any(k not in PE_KINDS for k in kinds):
            raise ValueError(f"rtl sweep.kinds must be a comma-separated list of {list(PE_KINDS)}, not {args.kinds!r}")
    sizes = None
    if args.sizes is not None:
        sizes_l = []
        for item in args.sizes.split(","):
            parts = item.lower().split("x")
            ok = len(parts) == 2 and all(p.isdigit() and 1 <= int(p) <= MAX_DIM for p in parts)
            if not ok:
                raise ValueError(f"rtl sweep.sizes must be a comma-separated list of RxC with R, C in "
                                 f"[1, {MAX_DIM}], not {args.sizes!r}")
            sizes_l.append((int(parts[0]), int(parts[1])))
        sizes = tuple(sizes_l)
    bits = None if args.bits is None else tuple(_int_list("rtl sweep.bits", args.bits, 1, MAX_BITS))
    return kinds, sizes, bits


def run_sweep(args: argparse.Namespace) -> int:
    from rtl.tools import require_tool

    kinds, sizes, bits = _sweep_grid(args)
    require_tool("yosys")
    if not args.no_fmax:
        require_tool("nextpnr-ice40")
    _amaranth()
    from sims.bench_rtl_area import designs, fit_area
    from sims.bench_rtl_area import run_sweep as sweep

    selected = designs(args.quick, kinds, sizes, bits, fmax=not args.no_fmax)
    rows = sweep(Path(args.out_csv), Path(args.out_png), build=Path(args.build) if args.build else None,
                 selected=selected)
    print(json.dumps(fit_area(rows), indent=2))
    return 0
