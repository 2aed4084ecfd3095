"""Verilog export of the PE array (any PE kind), of the accelerator core, and of any component, for FPGA
tools and the cocotb benches."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib import wiring

from hwsim.timing import BROADCAST_DRAIN_CYCLES, BROADCAST_START_CYCLES

from .array import PEArray
from .params import ArrayParams
from .program import CoreParams

__all__ = ["Exported", "component_verilog", "build_array", "export_array", "export_core"]

# Cycles of one reduction step, as hwsim.timing.pe_step counts them for the kind.
_STEP_CYCLES = {"serial_act": "precision", "serial_both": "(weight_precision*precision)", "parallel": "1"}


@dataclass(frozen=True, slots=True)
class Exported:
    verilog: Path
    params_json: Path
    top: str


# Amaranth's own Verilog conversion (amaranth.back.verilog) with each register's enable and synchronous
# reset inferred (Yosys opt_dff) before writing: a register is written as ``if (en) q <= d`` instead of a
# next-state multiplexer and a copy in every cycle, which a simulator evaluates whether or not the register
# changes (the core under Verilator: 12 % fewer instructions per cycle, docs/rtl.md); and each arithmetic
# cell narrowed to the output bits that are read (Yosys wreduce: Amaranth's ``a + b`` is one bit wider than
# its operands, so a 32-bit accumulator's sum became 64-bit arithmetic in Verilator). The logic is the same;
# synthesis infers the same enables and widths itself.
_VERILOG_PASSES = ("proc -norom", "opt_expr", "opt_clean", "opt_dff", "wreduce", "opt_clean", "memory_collect")


def component_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with ``name`` as the top module (ports from its signature)."""
    from amaranth._toolchain.yosys import find_yosys  # the Yosys amaranth.back.verilog itself runs

    text = rtlil.convert(component, name=name, emit_src=False)
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", *_VERILOG_PASSES, "write_verilog -norename"]
    out: str = yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)
    return out


def build_array(params: ArrayParams) -> PEArray:
    return PEArray(params.rows, params.cols, params.weight_bits, params.act_bits, acc_bits=params.acc_bits,
                   max_steps=params.max_steps, adder=params.adder, precision=params.precision,
                   act_signed=params.act_signed, kind=params.kind, weight_precision=params.weight_precision)


def _port_table(component: wiring.Component) -> dict[str, dict[str, object]]:
    from amaranth.hdl import Shape

    ports: dict[str, dict[str, object]] = {}
    for name, member in component.signature.members.items():
        shape = Shape.cast(member.shape)
        ports[name] = {"dir": "input" if member.flow is wiring.In else "output", "width": shape.width}
    ports["clk"] = {"dir": "input", "width": 1}
    ports["rst"] = {"dir": "input", "width": 1, "note": "synchronous, active high"}
    return ports


def export_array(params: ArrayParams, out_dir: Path, top: str | None = None) -> Exported:
    """Write ``<top>.v`` and ``<top>.json`` (parameters, ports, cycle protocol) into ``out_dir``."""
    top = top or params.name
    dut = build_array(params)
    text = component_verilog(dut, top)
    out_dir.mkdir(parents=True, exist_ok=True)
    vpath, jpath = out_dir / f"{top}.v", out_dir / f"{top}.json"
    vpath.write_text(text)
    meta = {
        "top": top,
        "params": params.to_dict(),
        "ports": _port_table(dut),
        "packing": "array ports are flat vectors, element 0 in the least significant bits; acc of PE (r, c) "
                   "is element r*cols + c",
        "timing": {"start_cycles": BROADCAST_START_CYCLES, "drain_cycles": BROADCAST_DRAIN_CYCLES,
                   "tile_cycles": f"t_done - t_start = start_cycles + steps*{_STEP_CYCLES[params.kind]} + drain_cycles"},
    }
    jpath.write_text(json.dumps(meta, indent=2) + "\n")
    return Exported(vpath, jpath, top)


def export_core(params: CoreParams, out_dir: Path, top: str = "accel_core") -> Exported:
    """Write the accelerator core's ``<top>.v`` and ``<top>.json`` (parameters, ports, descriptor fields)."""
    from .core import AccelCore

    dut = AccelCore(params)
    text = component_verilog(dut, top)
    out_dir.mkdir(parents=True, exist_ok=True)
    vpath, jpath = out_dir / f"{top}.v", out_dir / f"{top}.json"
    vpath.write_text(text)
    fields, pos = [], 0
    for name, bits, sg in params.descriptor_fields():
        fields.append({"name": name, "lsb": pos, "bits": bits, "signed": sg})
        pos += bits
    meta = {"top": top, "params": asdict(params), "ports": _port_table(dut),
            "descriptor": {"bits": pos, "fields": fields,
                           "note": "one phase per descriptor, first field in the least significant bits; see "
                                   "rtl/program.py"}}
    jpath.write_text(json.dumps(meta, indent=2) + "\n")
    return Exported(vpath, jpath, top)
