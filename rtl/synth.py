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

from hwsim.errors import check_choice

from .tools import require_tool, tool_version

__all__ = ["TARGETS", "SynthResult", "synth_script", "parse_stat", "run_yosys", "ice40_fmax_mhz"]

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
