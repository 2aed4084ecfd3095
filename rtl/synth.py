"""Yosys synthesis (Debian's ``yosys``) of exported Verilog, its ``stat -json`` report, and nextpnr-ice40 fmax.

Counts by target (``stat -json``'s ``num_cells_by_type``):

* ``ice40`` (``synth_ice40``): LUT = ``SB_LUT4``, FF = ``SB_DFF*``, carry = ``SB_CARRY``.
* ``xc7`` (``synth_xilinx -family xc7``): LUT = ``LUT1..6``, FF = ``FD*``, carry = ``CARRY4``;
  the IO buffers it adds (IBUF/OBUF/BUFG) are not counted.
* ``generic`` (``synth -lut 4``): technology-independent 4-input LUTs (``$lut``) and flip-flops.

Every result records ``yosys -V``: LUT counts differ between Yosys versions, so never mix them in one table.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.errors import check_choice

from .program import CoreParams
from .tools import require_tool, tool_version

__all__ = ["TARGETS", "SynthResult", "synth_script", "parse_stat", "run_yosys", "ice40_fmax_mhz", "CORE_TARGETS", "DEVICES",
           "DEFAULT_DEVICE", "Device", "CoreBuild", "check_device", "core_cell_counts", "bram_core", "bram_core_type", "core_verilog",
           "build_core"]

TARGETS = ("ice40", "xc7", "generic")


@dataclass(frozen=True, slots=True)
class SynthResult:
    target: str
    top: str
    luts: int
    ffs: int
    carries: int
    cells: int
    yosys_version: str
    seconds: float
    cell_types: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "top": self.top, "luts": self.luts, "ffs": self.ffs, "carries": self.carries,
                "cells": self.cells, "yosys_version": self.yosys_version, "seconds": round(self.seconds, 2),
                "cell_types": dict(self.cell_types)}


def synth_script(target: str, verilog: str, top: str, stat_json: str) -> str:
    check_choice("synth", "target", target, TARGETS)
    pass_ = {"ice40": f"synth_ice40 -top {top}", "xc7": f"synth_xilinx -family xc7 -top {top}",
             "generic": f"synth -top {top} -lut 4"}[target]
    return f"read_verilog {verilog}; hierarchy -top {top}; flatten; {pass_}; tee -q -o {stat_json} stat -json"


def _count(types: dict[str, int], pattern: str) -> int:
    rx = re.compile(pattern)
    return sum(n for t, n in types.items() if rx.fullmatch(t))


def parse_stat(text: str, target: str, top: str) -> tuple[int, int, int, int, dict[str, int]]:
    """``(luts, ffs, carries, cells, cell_types)`` from Yosys' ``stat -json`` output."""
    check_choice("parse_stat", "target", target, TARGETS)
    data = json.loads(text)
    mods = data.get("modules", {})
    mod = mods.get(f"\\{top}") or mods.get(top) or data.get("design")
    if mod is None:
        raise ValueError(f"parse_stat.text must hold statistics for module {top!r}, not modules {list(mods)!r}")
    types = {str(k): int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
    if target == "ice40":
        luts, ffs, carries = _count(types, "SB_LUT4"), _count(types, r"SB_DFF\w*"), _count(types, "SB_CARRY")
        io = 0
    elif target == "xc7":
        luts, ffs, carries = _count(types, r"LUT[1-6]"), _count(types, r"FD\w*"), _count(types, "CARRY4")
        io = _count(types, r"(IBUF|OBUF|BUFG)\w*")
    else:
        luts, ffs, carries = _count(types, r"\$lut"), _count(types, r"\$_S?DFF\w*_|\$_DFF\w*_|\$_SDFF\w*"), 0
        io = 0
    return luts, ffs, carries, sum(types.values()) - io, types


def run_yosys(verilog: Path, top: str, target: str, workdir: Path) -> SynthResult:
    """Synthesize ``verilog`` for ``target`` with the ``yosys`` on PATH; raises if Yosys fails."""
    check_choice("synth", "target", target, TARGETS)
    exe = require_tool("yosys")
    workdir.mkdir(parents=True, exist_ok=True)
    stat = workdir / f"{top}.{target}.stat.json"
    t0 = time.perf_counter()
    proc = subprocess.run([exe, "-q", "-p", synth_script(target, str(verilog.resolve()), top, str(stat.resolve()))],
                          capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"yosys failed on {verilog.name} ({target}): {' | '.join(tail)}")
    luts, ffs, carries, cells, types = parse_stat(stat.read_text(), target, top)
    return SynthResult(target, top, luts, ffs, carries, cells, tool_version("yosys"), secs, types)


_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+)\s+MHz")


def ice40_fmax_mhz(verilog: Path, top: str, workdir: Path, device: str = "hx8k", package: str = "ct256",
                   seed: int = 1) -> tuple[float, int]:
    """``(fmax_mhz, logic_cells)`` after synth_ice40 and nextpnr-ice40 place and route (no pin constraints)."""
    yosys, nextpnr = require_tool("yosys"), require_tool("nextpnr-ice40")
    workdir.mkdir(parents=True, exist_ok=True)
    net = workdir / f"{top}.ice40.net.json"
    proc = subprocess.run([yosys, "-q", "-p", f"read_verilog {verilog.resolve()}; synth_ice40 -top {top} "
                           f"-json {net.resolve()}"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {verilog.name}: {proc.stderr.strip().splitlines()[-1:]}")
    proc = subprocess.run([nextpnr, f"--{device}", "--package", package, "--json", str(net), "--freq", "100",
                           "--pcf-allow-unconstrained", "--timing-allow-fail", "--seed", str(seed)],
                          capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        last = [ln for ln in log.splitlines() if "ERROR" in ln][-1:] or log.strip().splitlines()[-1:]
        raise RuntimeError(f"nextpnr-ice40 failed on {verilog.name}: {' '.join(last)}")
    found = _FMAX.findall(log)
    if not found:
        raise RuntimeError(f"nextpnr-ice40 reported no fmax for {verilog.name}")
    lcs = re.findall(r"ICESTORM_LC:\s+(\d+)/", log)
    return float(found[-1][1]), int(lcs[-1]) if lcs else 0


# ---- FPGA builds of the accelerator core (rtl.core.AccelCore) ----------------------------------------------

CORE_TARGETS = ("ice40", "ecp5")


@dataclass(frozen=True, slots=True)
class Device:
    """One FPGA part nextpnr places on: its target family, nextpnr device flag, package and block RAMs
    (iCE40 SB_RAM40_4K, ECP5 DP16KD; Lattice's iCE40 and ECP5 family data sheets)."""

    target: str
    name: str
    flag: str
    package: str
    brams: int


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("ice40", "hx1k", "--hx1k", "tq144", 16),
    Device("ice40", "hx8k", "--hx8k", "ct256", 32),
    Device("ice40", "up5k", "--up5k", "sg48", 30),
    Device("ecp5", "lfe5u-25f", "--25k", "CABGA381", 56),
    Device("ecp5", "lfe5u-45f", "--45k", "CABGA381", 108),
    Device("ecp5", "lfe5u-85f", "--85k", "CABGA381", 208),
)}
DEFAULT_DEVICE = {"ice40": "hx8k", "ecp5": "lfe5u-85f"}
# nextpnr's utilisation names -> the report's resource names (LUT, FF, BRAM, DSP, IO).
_UTIL = {
    "ice40": {"ICESTORM_LC": "logic_cells", "ICESTORM_RAM": "bram", "ICESTORM_DSP": "dsp", "SB_IO": "io"},
    "ecp5": {"TRELLIS_COMB": "luts", "TRELLIS_FF": "ffs", "DP16KD": "bram", "MULT18X18D": "dsp",
             "TRELLIS_IO": "io"},
}
CORE_MODULE = "accel_core"


def check_device(target: str, device: str | None) -> Device:
    """The :class:`Device` for ``--device`` (default: :data:`DEFAULT_DEVICE`), checked against ``target``."""
    check_choice("rtl synth", "target", target, CORE_TARGETS)
    name = DEFAULT_DEVICE[target] if device is None else device
    names = [d.name for d in DEVICES.values() if d.target == target]
    if name not in names:
        raise ValueError(f"rtl synth.device must be one of {names} for target {target!r}, not {name!r}")
    return DEVICES[name]


def core_cell_counts(types: dict[str, int], target: str) -> dict[str, int]:
    """LUT / FF / BRAM / DSP / carry / LUT-RAM counts of a mapped netlist's ``num_cells_by_type``."""
    check_choice("core_cell_counts", "target", target, CORE_TARGETS)
    if target == "ice40":
        return {"luts": _count(types, "SB_LUT4"), "ffs": _count(types, r"SB_DFF\w*"),
                "bram": _count(types, r"SB_RAM40_4K\w*"), "dsp": _count(types, "SB_MAC16"),
                "carries": _count(types, "SB_CARRY"), "lutram": 0}
    return {"luts": _count(types, "LUT4"), "ffs": _count(types, "TRELLIS_FF"),
            "bram": _count(types, r"(DP16KD|PDPW16KD)"), "dsp": _count(types, r"(MULT18X18D|ALU54B)"),
            "carries": _count(types, "CCU2C"), "lutram": _count(types, "TRELLIS_DPR16X4")}


@dataclass(frozen=True, slots=True)
class CoreBuild:
    """One synthesis (and place and route) of the accelerator core on one FPGA part."""

    core: str
    target: str
    device: str
    package: str
    counts: dict[str, int]            # the core alone (kept as its own module): luts, ffs, bram, dsp, carries
    wrapper_counts: dict[str, int]    # the I/O wrapper around it (not part of the core)
    memories: list[dict[str, str]]    # each inferred buffer memory and the cell Yosys mapped it to
    yosys_version: str
    synth_s: float
    fits: bool | None = None          # None: not placed
    utilisation: dict[str, dict[str, int]] = field(default_factory=dict)
    fmax_mhz: float | None = None
    nextpnr_version: str = ""
    pnr_s: float = 0.0
    seed: int = 1
    pnr_error: str = ""
    critical_path: str = ""           # the clock edges of nextpnr's critical path, e.g. "posedge -> negedge"
    synth_flags: str = ""             # extra synth_<target> options used
    pnr_flags: str = ""               # extra nextpnr options used (e.g. its placer and router)

    def to_dict(self) -> dict[str, object]:
        return {"core": self.core, "target": self.target, "device": self.device, "package": self.package,
                **self.counts, "wrapper": dict(self.wrapper_counts), "memories": [dict(m) for m in self.memories],
                "fits": self.fits, "utilisation": {k: dict(v) for k, v in self.utilisation.items()},
                "fmax_mhz": self.fmax_mhz, "seed": self.seed, "yosys_version": self.yosys_version,
                "nextpnr_version": self.nextpnr_version, "synth_s": round(self.synth_s, 1),
                "pnr_s": round(self.pnr_s, 1), "pnr_error": self.pnr_error,
                "critical_path": self.critical_path, "synth_flags": self.synth_flags.strip(),
                "pnr_flags": self.pnr_flags}


BRAM_READ_DOMAIN = "bram_rd"
OUT_PINS = 8     # output pins of the I/O wrapper


def bram_core_type() -> type:
    """The class of :func:`bram_core` (a subclass of ``rtl.core.AccelCore``)."""
    global _BRAM_CORE
    if _BRAM_CORE is not None:
        return _BRAM_CORE
    from contextlib import ExitStack
    from unittest import mock

    from amaranth.hdl import ClockDomain, ClockSignal, Module
    from amaranth.lib.memory import Memory

    from . import core as core_mod

    class FallingEdgeReadMemory(Memory):
        def read_port(self, *, domain: str = "sync", transparent_for: object = (),
                      src_loc_at: int = 0) -> object:
            return super().read_port(domain=BRAM_READ_DOMAIN if domain == "comb" else domain,
                                     transparent_for=transparent_for, src_loc_at=src_loc_at + 1)

    class BramCore(core_mod.AccelCore):
        split_banks = True

        def elaborate(self, platform: object) -> Module:
            with ExitStack() as stack:
                stack.enter_context(mock.patch.object(core_mod, "Memory", FallingEdgeReadMemory))
                m = super().elaborate(platform)
            m.domains += ClockDomain(BRAM_READ_DOMAIN, clk_edge="neg", reset_less=True, local=True)
            m.d.comb += ClockSignal(BRAM_READ_DOMAIN).eq(ClockSignal("sync"))
            return m

    _BRAM_CORE = BramCore
    return BramCore


_BRAM_CORE: type | None = None


def bram_core(params: CoreParams) -> Any:
    """The core of ``params`` with its buffers declared as block RAM can hold them.

    ``rtl.core.AccelCore``'s buffers read combinationally (an address in, its word out in the same cycle),
    which no FPGA block RAM does. Every register of the core sees the same words if each read is instead
    a synchronous read clocked on the falling edge of the same clock, because the read addresses come from
    registers of the rising edge (no input port reaches them): the words of a cycle are read in its
    middle. This component declares each read port in such a falling-edge domain and is otherwise
    ``AccelCore`` itself; nextpnr times the address-to-read paths to half a period. (An output port fed
    by a read, ``ext_wdata``, changes at the falling edge instead of after the rising edge; it is valid
    at the rising edge, where the external side takes it.) A half with ``banks`` write ports, which no
    block RAM has, is split into ``banks`` memories of one write port each (``rtl.core.BankedMemory``,
    for a power-of-two ``banks``)."""
    if not isinstance(params, CoreParams):
        raise TypeError(f"bram_core.params must be a CoreParams, not {params!r}")
    return bram_core_type()(params)


def core_verilog(params: CoreParams, top: str = "core_io") -> str:
    """Verilog of :func:`bram_core` inside an I/O wrapper: every core input is shifted in from one pin and
    the core's outputs are folded by XOR onto ``OUT_PINS`` registered pins (every output bit reaches a
    pin, so no logic is optimised away), so a core with hundreds of ports fits a package."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from .export import component_verilog

    dut = bram_core(params)

    class CoreIO(wiring.Component):
        def __init__(self) -> None:
            super().__init__({"sin": In(1), "sout": Out(OUT_PINS)})

        def elaborate(self, platform: object) -> Module:
            m = Module()
            m.submodules.core = dut
            ins = [getattr(dut, n) for n, mb in dut.signature.members.items() if mb.flow is In]
            outs = [getattr(dut, n) for n, mb in dut.signature.members.items() if mb.flow is Out]
            n_in, n_out = sum(len(s) for s in ins), sum(len(s) for s in outs)
            shift_in = Signal(n_in)
            m.d.sync += shift_in.eq(Cat(self.sin, shift_in[:-1]))
            m.d.comb += Cat(*ins).eq(shift_in)
            flat = Cat(*outs)
            lanes = [flat[i::OUT_PINS].xor() for i in range(min(OUT_PINS, n_out))]
            m.d.sync += self.sout.eq(Cat(*lanes))
            return m

    return component_verilog(CoreIO(), top)


def _run(cmd: list[str], cwd: Path, timeout: float | None) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s", time.perf_counter() - t0
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def _module(mods: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``stat -json`` entry of the module called ``name`` or ending in ``.name`` (Amaranth's naming)."""
    for key, val in mods.items():
        bare = key.lstrip("\\")
        if bare == name or bare.endswith(f".{name}"):
            assert isinstance(val, dict)
            return val
    raise RuntimeError(f"yosys statistics have no module {name!r} (modules: {list(mods)})")


def build_core(params: CoreParams, target: str, workdir: Path, device: str | None = None, seed: int = 1,
               place: bool = True, freq_mhz: float = 12.0, timeout_s: float | None = None,
               abc9: bool = True, pnr_timeout_s: float | None = None, pnr_flags: tuple[str, ...] = ()) -> CoreBuild:
    """Synthesise the core of ``params`` (``rtl.program.CoreParams``) with Yosys ``synth_ice40`` /
    ``synth_ecp5`` (the preferred Yosys of :func:`rtl.tools.find_tool`) and, with ``place``, place and route
    it with nextpnr on ``device``: the core's LUT / FF / BRAM / DSP / carry counts, the utilisation of the
    part and fmax. A design that does not fit is reported (``fits`` false, the utilisation nextpnr printed),
    not raised. ``abc9=False`` maps the LUTs with ABC (see below) without trying ABC9 first; ``pnr_flags`` are
    passed to nextpnr as they are (e.g. ``("--placer", "static", "--router", "router2")``)."""
    from .tools import find_tool, is_yowasp, tool_version

    if not isinstance(params, CoreParams):
        raise TypeError(f"build_core.params must be a CoreParams, not {params!r}")
    dev = check_device(target, device)
    yosys = find_tool("yosys")
    nextpnr = find_tool(f"nextpnr-{target}") if place else ""
    workdir.mkdir(parents=True, exist_ok=True)
    wd = workdir.resolve()
    text = core_verilog(params, "core_io")
    src, net, stat_file = wd / "core_io.v", wd / "net.json", wd / "stat.json"
    # A finished synthesis of exactly this Verilog in ``workdir`` is reused (a campaign can be resumed
    # after its place and route was stopped); its wall time is the time its files took to appear.
    reuse = (src.exists() and src.read_text() == text and net.exists() and stat_file.exists()
             and stat_file.stat().st_mtime >= src.stat().st_mtime and (wd / "yosys.log").exists()
             and "End of script" in (wd / "yosys.log").read_text(errors="replace")[-4000:])
    if not reuse:
        src.write_text(text)
        net.unlink(missing_ok=True)
        stat_file.unlink(missing_ok=True)
    flags = " -dsp" if dev.name == "up5k" else ""
    front = "read_verilog core_io.v; hierarchy -top core_io; setattr -mod -set keep_hierarchy 1 *.core; flatten"
    stat = "tee -q -o stat.json stat -json"
    # The WebAssembly Yosys runs out of call stack in ABC9's XAIGER writer on the largest cores; then the
    # LUTs are mapped with ABC instead of ABC9 (synth_<target>'s own script around it; recorded in flags).
    abc_step = {"ecp5": ("map_luts", "techmap -map +/lattice/latches_map.v; abc -lut 4; clean", "map_cells"),
                "ice40": ("map_luts", "", "")}[target]
    scripts = [(flags, f"{front}; synth_{target} -top core_io{flags} -json net.json; {stat}")]
    if target == "ecp5":
        scripts.append((flags + " (LUTs mapped by abc -lut 4, not abc9)",
                        f"{front}; synth_{target} -top core_io{flags} -run begin:{abc_step[0]}; {abc_step[1]}; "
                        f"synth_{target} -top core_io{flags} -run {abc_step[2]}: -json net.json; {stat}"))
    if not abc9:   # straight to the ABC mapping (known to be needed for this design)
        scripts = scripts[-1:]
    synth_s = 0.0
    rc, log = 0, ""
    if reuse:
        ylog = (wd / "yosys.log").read_text(errors="replace")
        flags = scripts[-1][0] if "abc -lut 4" in ylog[:20000] else scripts[0][0]
        synth_s = stat_file.stat().st_mtime - src.stat().st_mtime
    for i, (label, script) in enumerate([] if reuse else scripts):
        rc, log, secs = _run([yosys, "-l", "yosys.log", "-q", "-p", script], wd, timeout_s)
        synth_s += secs
        flags = label
        if not (rc != 0 and "call stack exhausted" in log and i + 1 < len(scripts)):
            break
    if rc != 0:
        tail = [ln for ln in log.strip().splitlines() if ln.strip()][-3:]
        raise RuntimeError(f"yosys failed on core {params.name} ({target}): {' | '.join(tail)}")
    mods = json.loads((wd / "stat.json").read_text())["modules"]
    counts = core_cell_counts({str(k): int(v) for k, v in _module(mods, "core").get("num_cells_by_type", {}).items()},
                              target)
    wrap = core_cell_counts({str(k): int(v) for k, v in _module(mods, "core_io").get("num_cells_by_type", {}).items()},
                            target)
    memories = _memories((wd / "yosys.log").read_text(errors="replace"))
    yv = tool_version(yosys)
    if not place:
        return CoreBuild(params.name, target, dev.name, dev.package, counts, wrap, memories, yv, synth_s, seed=seed,
                         synth_flags=flags)
    pnr = [nextpnr, dev.flag, "--package", dev.package, "--json", "net.json", "--freq", f"{freq_mhz:g}",
           "--timing-allow-fail", "--seed", str(seed), "--report", "report.json", "-l", "nextpnr.log", "-q"]
    pnr.append("--pcf-allow-unconstrained" if target == "ice40" else "--lpf-allow-unconstrained")
    pnr.extend(pnr_flags)
    assert is_yowasp(nextpnr) or target == "ice40"
    (wd / "report.json").unlink(missing_ok=True)
    rc, log, pnr_s = _run(pnr, wd, timeout_s if pnr_timeout_s is None else pnr_timeout_s)
    full = (wd / "nextpnr.log").read_text(errors="replace") if (wd / "nextpnr.log").exists() else log
    util = _utilisation(full, target)
    fmax, err = None, ""
    if rc == 0 and (wd / "report.json").exists():
        rep = json.loads((wd / "report.json").read_text())
        util = {_UTIL[target][k]: {"used": int(v["used"]), "available": int(v["available"])}
                for k, v in rep.get("utilization", {}).items() if k in _UTIL[target]} or util
        achieved = [float(v["achieved"]) for v in rep.get("fmax", {}).values()]
        fmax = min(achieved) if achieved else None
    else:
        errs = [ln.strip() for ln in full.splitlines() if "ERROR" in ln] or log.strip().splitlines()[-1:] or ["?"]
        err = errs[-1]
    fits: bool | None = rc == 0 and all(u["used"] <= u["available"] for u in util.values())
    if rc == 124:   # stopped at the time limit: the utilisation after packing is known, the fit is not
        fits, err = (False if any(u["used"] > u["available"] for u in util.values()) else None), \
            f"place and route not finished: {log}"
    edges = re.findall(r"Critical path report for clock '[^']*' \((\w+ -> \w+)\)", full)
    return CoreBuild(params.name, target, dev.name, dev.package, counts, wrap, memories, yv, synth_s, fits, util,
                     fmax, tool_version(nextpnr), pnr_s, seed, err, edges[-1] if edges else "", flags,
                     " ".join(pnr_flags))


def _utilisation(log: str, target: str) -> dict[str, dict[str, int]]:
    """The ``Device utilisation`` block nextpnr prints after packing (present even when placement fails)."""
    out: dict[str, dict[str, int]] = {}
    for name, used, avail in re.findall(r"^\s*Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log, re.M):
        if name in _UTIL[target]:
            out[_UTIL[target][name]] = {"used": int(used), "available": int(avail)}
    return out


def _memories(log: str) -> list[dict[str, str]]:
    """Where ``memory_libmap`` put each inferred memory (a block-RAM cell, LUT RAM, or flip-flops), named
    inside the core (``ifmap_h0``, or ``ifmap_h0.bank1`` for a half split into banks)."""
    def inside(name: str) -> str:
        return name.split(".core.", 1)[-1]

    out = [{"memory": inside(name), "mapped_to": via.strip("$_")}
           for name, via in re.findall(r"^mapping memory (\S+) via (\S+)", log, re.M)]
    return out + [{"memory": inside(name), "mapped_to": "FF"}
                  for name in re.findall(r"^using FF mapping for memory (\S+)", log, re.M)]
