"""``hwsim rtl export|synth|sweep|run``: Verilog of the PE array (every PE kind) or of the accelerator core,
Yosys area / nextpnr fmax, area sweep, and whole networks run on the core under cocotb.

Parameters are validated (``rtl.params.ArrayParams``) before anything is built or written; Amaranth,
Yosys and nextpnr are only touched inside the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rtl.params import MAX_BITS, MAX_DIM, PE_KINDS, ArrayParams
from rtl.tools import ToolNotFoundError

__all__ = ["register"]

ICARUS_SLOW_CYCLES = 500_000   # a run this long under Icarus takes minutes: say that Verilator is faster

_DESIGN_INTS = (("rows", True), ("cols", True), ("weight_bits", True), ("act_bits", True), ("acc_bits", False),
                ("max_steps", False), ("precision", False), ("weight_precision", False))


def _design_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("design")
    g.add_argument("--kind", default="serial_act",
                   help="PE kind: serial_act (default; activations bit-serial), serial_both (both operands "
                        "bit-serial) or parallel (one full product per cycle)")
    g.add_argument("--rows", help="PE rows R (required without --arch)")
    g.add_argument("--cols", help="PE columns C (required without --arch)")
    g.add_argument("--weight-bits", help="weight bits W (serial_both: runtime precision 1..W; required without --arch)")
    g.add_argument("--act-bits", help="activation bits A (serial kinds: runtime precision 1..A; required without "
                                      "--arch)")
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
        if raw is None:
            raise ValueError(f"rtl {args.rtl_command}: --{name.replace('_', '-')} is required (or --arch for the "
                             f"accelerator core)" if args.rtl_command == "export" else
                             f"rtl {args.rtl_command}: --{name.replace('_', '-')} is required")
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

    e = rsub.add_parser("export", help="write the array's (or, with --arch, the accelerator core's) Verilog and "
                                       "its parameters (JSON)")
    e.add_argument("--arch", help="accelerator YAML or preset: export the accelerator core generated from it")
    _design_args(e)
    e.add_argument("-o", "--out", required=True, help="output directory")
    e.add_argument("--top", help="top module name (default: encodes the parameters)")
    e.set_defaults(func=run_export)

    s = rsub.add_parser("synth", help="Yosys synthesis (LUT/FF/carry counts) and, for ice40, nextpnr fmax; with "
                                      "--arch, the accelerator core on iCE40 / ECP5 (LUT/FF/BRAM/DSP, fmax)")
    s.add_argument("--arch", help="accelerator YAML or preset: synthesise, place and route its accelerator core")
    _design_args(s)
    s.add_argument("--target", required=True, help="ice40, xc7 or generic (the array); ice40 or ecp5 (--arch)")
    s.add_argument("--device", help="--arch: the part, hx1k, hx8k (default for ice40) or up5k; lfe5u-25f, "
                                    "lfe5u-45f or lfe5u-85f (default for ecp5)")
    s.add_argument("--seed", default="1", help="--arch: nextpnr placement seed (default 1)")
    s.add_argument("--no-fmax", action="store_true", help="skip nextpnr place and route")
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

    r = rsub.add_parser("run", help="run every MAC layer of a network on the accelerator core (cocotb) and compare "
                                    "outputs with hwsim.golden and every event count with hwsim.simulate")
    r.add_argument("--arch", required=True, help="accelerator YAML file or bundled preset name")
    r.add_argument("--network", help="network preset, YAML or model file (optional with --schedule)")
    r.add_argument("--schedule", metavar="S.json", help="run this schedule (from `hwsim map --json`); default: the "
                                                        "default schedule with tiles that fit the core's buffers "
                                                        "(one element per word, whole reductions)")
    r.add_argument("--simulator", default="icarus", help="icarus (default, under cocotb) or verilator (a compiled "
                                                         "binary of the same testbench: fast)")
    r.add_argument("--pgo", action="store_true", help="verilator: build the model profile-guided (GCC PGO on a "
                                                      "short part of this run; 1.1-1.3x faster to simulate "
                                                      "on the 16x16 core, a 3-4x longer build once per core; "
                                                      "docs/performance.md)")
    r.add_argument("--json", metavar="OUT.json", required=True, help="write the per-layer comparison here")
    r.add_argument("--seed", default="0", help="seed of the random integer operands (default 0)")
    r.add_argument("--samples", help="a MODEL.pt from `hwsim train`: classify this many test samples on the core "
                                     "(default: the whole test set)")
    r.add_argument("--dataset", help="a MODEL.pt: the data set of its test samples (default: the one it was "
                                     "trained on)")
    r.add_argument("--build", help="build directory (default build/cocotb)")
    r.set_defaults(func=run_core)


def run_export(args: argparse.Namespace) -> int:
    if args.arch is not None:
        import hwsim
        from rtl.program import CoreParams

        core = CoreParams.from_accelerator(hwsim.resolve_accelerator(args.arch))
        _amaranth()
        from rtl.export import export_core

        out = export_core(core, Path(args.out), top=args.top or "accel_core")
        print(f"wrote {out.verilog} and {out.params_json} (top module {out.top}, core {core.name})")
        return 0
    params = _params(args)
    _amaranth()
    from rtl.export import export_array

    out = export_array(params, Path(args.out), top=args.top)
    print(f"wrote {out.verilog} and {out.params_json} (top module {out.top})")
    return 0


def _run_core_synth(args: argparse.Namespace) -> int:
    """``hwsim rtl synth --arch``: the accelerator core through Yosys and nextpnr (rtl.synth.build_core)."""
    import hwsim
    from hwsim.area import bram_count
    from rtl.program import CoreParams
    from rtl.synth import build_core, check_device
    from rtl.tools import find_tool
    from sims.output import check_output_path

    dev = check_device(args.target, args.device)
    try:
        seed = int(args.seed)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**31:
        raise ValueError(f"rtl synth.seed must be an integer in [0, 2147483647], not {args.seed!r}")
    out = check_output_path(args.json, "--json", (".json",)) if args.json else None
    acc = hwsim.resolve_accelerator(args.arch)
    core = CoreParams.from_accelerator(acc)
    need = bram_count(acc, args.target)
    if need > dev.brams and not args.no_fmax:
        raise ValueError(f"rtl synth: the core for {acc.name!r} needs {need} block RAMs (hwsim.area.bram_count), the "
                         f"{dev.name} has {dev.brams}; each read port of a bank is a copy of its block RAM, and a packed "
                         f"buffer is word_bits / bits narrow banks (packed: false keeps one element per word), or "
                         f"--no-fmax to synthesise only")
    find_tool("yosys")
    if not args.no_fmax:
        find_tool(f"nextpnr-{args.target}")
    _amaranth()
    res = build_core(core, args.target, Path(args.build) / f"{core.name}_{dev.name}", device=dev.name, seed=seed,
                     place=not args.no_fmax)
    c = res.counts
    print(f"{core.name} [{args.target}, {res.yosys_version}]: {c['luts']} LUT, {c['ffs']} FF, {c['bram']} BRAM, "
          f"{c['dsp']} DSP, {c['carries']} carry ({res.synth_s:.0f} s; the I/O wrapper adds "
          f"{res.wrapper_counts['luts']} LUT, {res.wrapper_counts['ffs']} FF)")
    if res.fits is not None:
        util = ", ".join(f"{k} {u['used']}/{u['available']}" for k, u in res.utilisation.items())
        fmax = f"fmax {res.fmax_mhz:.1f} MHz ({res.critical_path})" if res.fmax_mhz is not None else res.pnr_error
        print(f"{dev.name} {dev.package} [{res.nextpnr_version}, seed {seed}]: "
              f"{'fits' if res.fits else 'does NOT fit'}: {util}; {fmax} ({res.pnr_s:.0f} s)")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    return 0 if res.fits is not False else 1


def run_synth(args: argparse.Namespace) -> int:
    from hwsim.errors import check_choice
    from rtl.synth import TARGETS
    from rtl.tools import require_tool

    if args.arch is not None:
        return _run_core_synth(args)
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
    from sims.experiments.rtl_area import designs, fit_area
    from sims.experiments.rtl_area import run_sweep as sweep

    selected = designs(args.quick, kinds, sizes, bits, fmax=not args.no_fmax)
    rows = sweep(Path(args.out_csv), Path(args.out_png), build=Path(args.build) if args.build else None,
                 selected=selected)
    print(json.dumps(fit_area(rows), indent=2))
    return 0


def _operands(layer: object, rng: object, signed: bool) -> tuple[object, object]:
    import numpy as np

    from hwsim.network import Layer

    assert isinstance(layer, Layer) and isinstance(rng, np.random.Generator)
    a, w = layer.act_bits, layer.weight_bits
    lo, hi = (-(1 << (a - 1)), 1 << (a - 1)) if signed else (0, 1 << a)
    x = rng.integers(lo, hi, (layer.batch, layer.in_channels, layer.in_h, layer.in_w))
    wt = rng.integers(-(1 << (w - 1)), 1 << (w - 1),
                      (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_h, layer.kernel_w))
    return x, wt


def _driver(simulator: str) -> str:
    """Icarus runs the testbench under cocotb; Verilator as a compiled binary of the same testbench (no Python
    per cycle: about 10^2 times faster on the core, docs/performance.md)."""
    return "binary" if simulator == "verilator" else "cocotb"


def _is_trained(spec: str) -> bool:
    from .simulate import _is_quant_checkpoint

    p = Path(spec)
    return p.suffix.lower() in (".pt", ".pth") and p.is_file() and _is_quant_checkpoint(p)


def _run_trained(args: argparse.Namespace, acc: object, out_path: Path) -> int:
    """``hwsim rtl run --network MODEL.pt``: the trained model's integer layers on the core, its test
    samples classified there (``sims.tb.trained``); exit 0 only if every accumulator and prediction agrees."""
    import torch

    from hwsim.accelerator import Accelerator
    from quant.data import load_dataset
    from quant.export import load_trained
    from sims.tb.runner import ensure_simulator
    from sims.tb.trained import run_trained

    from .simulate import load_schedule_arg

    assert isinstance(acc, Accelerator)
    trained = load_trained(args.network)     # read once: the run below takes it
    model = trained.model
    name = args.dataset or trained.meta.get("dataset")
    if not isinstance(name, str):
        raise ValueError(f"rtl run.dataset is required: {args.network!r} does not name the data set it was trained on")
    data = load_dataset(name)
    shape = [int(v) for v in data.test.x.shape[1:]]
    first = model.stages[0] if hasattr(model, "stages") else model
    want = [int(v) for v in first.config()["kwargs"]["in_shape"]]
    if shape != want:
        raise ValueError(f"rtl run.dataset must have inputs of shape {want} (the model's), not {shape} ({name!r})")
    total = int(data.test.x.shape[0])
    n = total
    if args.samples is not None:
        try:
            n = int(args.samples)
        except ValueError:
            n = 0
        if not 1 <= n <= total:
            raise ValueError(f"rtl run.samples must be an integer in [1, {total}] (the test set of {name!r}), "
                             f"not {args.samples!r}")
    schedule = load_schedule_arg(args.schedule) if args.schedule else None
    ensure_simulator(args.simulator)   # run_trained refuses what the core cannot execute before any build
    _amaranth()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    print(f"{args.network}: {n} test samples of {name!r}, every conv / linear layer on the {acc.name} core "
          f"({args.simulator})")
    res = run_trained(args.simulator, acc, trained, data.test.x[:n], schedule,
                      build_root=Path(args.build) if args.build else None, driver=_driver(args.simulator),
                      pgo=args.pgo)
    rows = [{"name": r.name, "rtl": r.rtl, "model": r.model, "outputs_match_golden": r.outputs_match_golden,
             "rtl_sram_accesses": r.accesses} for r in res.layers]
    _print_rows(rows)
    print(f"predictions on the core: {res.agree}/{res.samples} equal to the model's "
          f"({100 * res.agree / res.samples:.2f} %); accumulators exact: {'yes' if res.accumulators_exact else 'no'}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"layers": rows, "classification": {
        "model": str(args.network), "dataset": name, "samples": res.samples, "agree": res.agree,
        "agree_float32": res.agree_float32, "accumulators_exact": res.accumulators_exact}}, indent=1) + "\n")
    return 0 if res.ok else 1


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from sims.tb.core_runner import differing_counts

    print(f"{'layer':14s} {'match':5s} {'rtl cycles':>11s} {'model cycles':>12s} {'rtl stall':>9s} "
          f"{'model stall':>11s} {'dram rd B':>10s} {'dram wr B':>10s}  counts equal")
    for r in rows:
        rtl, model = r["rtl"], r["model"]
        same = len(rtl) - len(differing_counts(rtl, model))
        print(f"{r['name']:14s} {'yes' if r['outputs_match_golden'] else 'NO':5s} {rtl['cycles']:11.0f} "
              f"{model['cycles']:12.0f} {rtl['stall_cycles']:9.0f} {model['stall_cycles']:11.0f} "
              f"{rtl['dram_read_bytes']:10g} {rtl['dram_write_bytes']:10g}  {same}/{len(rtl)}")


def run_core(args: argparse.Namespace) -> int:
    """``hwsim rtl run``: every MAC layer of the network on the core; exit 0 only if every output matches.
    A run the testbench stops (a layer that does not finish, a transfer table the DRAM model refuses) is one
    line and exit 1: the core, not the input, failed."""
    from sims.tb.core_tb import CoreBenchError

    try:
        return _run_core(args)
    except CoreBenchError as exc:
        print(f"hwsim: error: rtl run failed on the core: {exc}", file=sys.stderr)
        return 1


def _run_core(args: argparse.Namespace) -> int:
    import numpy as np

    import hwsim
    from hwsim.engine import simulate_layer
    from hwsim.golden import conv2d
    from hwsim.schedule import Schedule, default_mapping
    from rtl.program import CoreParams, choose_shift, compile_layer, core_mapping, requantize
    from sims.output import check_output_path

    from .simulate import load_network_arg, load_schedule_arg

    if args.simulator not in ("icarus", "verilator"):
        raise ValueError(f"rtl run.simulator must be one of ['icarus', 'verilator'], not {args.simulator!r}")
    if args.pgo and args.simulator != "verilator":
        raise ValueError(f"rtl run.pgo needs --simulator verilator (a compiled model), not {args.simulator!r}")
    try:
        seed = int(args.seed)
    except ValueError:
        raise ValueError(f"rtl run.seed must be an integer, not {args.seed!r}") from None
    out_path = check_output_path(args.json, "--json", (".json",))
    acc = hwsim.resolve_accelerator(args.arch)
    core = CoreParams.from_accelerator(acc)
    if args.network and _is_trained(args.network):
        return _run_trained(args, acc, out_path)
    if args.samples is not None or args.dataset is not None:
        raise ValueError("rtl run: --samples and --dataset need a --network MODEL.pt written by `hwsim train`")
    if args.schedule:
        schedule = load_schedule_arg(args.schedule)
    elif args.network:
        net = load_network_arg(args.network)
        schedule = Schedule(net, tuple(core_mapping(core, la, acc) if la.has_macs else default_mapping(la, acc)
                                       for la in net.layers))
    else:
        raise ValueError("rtl run: --network or --schedule is required")
    rng = np.random.default_rng(seed)
    programs, golds, models = [], [], []
    for layer in schedule.network.layers:   # every check happens before anything is built or written
        if not layer.has_macs:
            continue
        mapping = schedule.mapping_for(layer.name)
        x, w = _operands(layer, rng, acc.pe.signed_act)
        exact = conv2d(x, w, (layer.stride_h, layer.stride_w), (layer.pad_h, layer.pad_w), layer.groups,
                       acc_bits=acc.pe.acc_bits)
        shift = choose_shift(exact, layer.out_bits, acc.pe.signed_act)
        programs.append((compile_layer(core, layer, mapping, acc, shift=shift), x, w))
        golds.append(requantize(exact, shift, layer.out_bits, acc.pe.signed_act))
        models.append(simulate_layer(layer, mapping, acc))
    if not programs:
        raise ValueError(f"rtl run: network {schedule.network.name!r} has no conv2d or linear layer to run")
    from sims.tb.core_runner import cycle_limit, model_counts, rtl_counts, run_layers
    from sims.tb.runner import ensure_simulator

    ensure_simulator(args.simulator)
    _amaranth()
    total = sum(int(m.total_cycles) for m in models)
    print(f"{len(programs)} conv / linear layers, {total:,} cycles by the engine, on the {acc.name} core "
          f"({args.simulator})")
    if args.simulator == "icarus" and total > ICARUS_SLOW_CYCLES:
        print("   Icarus under cocotb simulates a few thousand core cycles per second; --simulator verilator runs "
              "the same testbench about 300x faster (docs/performance.md, on the 4x4 core)")
    result = run_layers(args.simulator, acc, programs, build_root=Path(args.build) if args.build else None,
                        max_cycles=cycle_limit(models), driver=_driver(args.simulator), pgo=args.pgo)
    rows = []
    for (prog, _, _), gold, got, model in zip(programs, golds, result.layers, models, strict=True):
        layer = prog.layer
        ok = bool(np.array_equal(got.y, gold) and (got.written == 1).all() and not got.incomplete_transfers)
        rows.append({"name": layer.name, "rtl": rtl_counts(got.counters, layer, acc),
                     "model": model_counts(model), "outputs_match_golden": ok})
    _print_rows(rows)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"layers": rows}, indent=1) + "\n")
    bad = [r["name"] for r in rows if not r["outputs_match_golden"]]
    if bad:
        print(f"hwsim: outputs differ from hwsim.golden in {len(bad)} layer(s): {', '.join(bad)}")
        return 1
    return 0
