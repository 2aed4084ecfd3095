"""The cocotb test of the accelerator core (run by :mod:`sims.tb.core_runner`, configured by
``HWSIM_CORE_CONFIG``, a JSON file naming an ``.npz`` with the operands and transfer tables).

For each layer: the descriptor driver offers the phase descriptors (valid/ready); the DRAM model serves
the core's external port with no latency (every cycle ``ext_rd`` is high it supplies ``ext_n`` elements
of transfer ``ext_tag``, packed ``ext_bits`` apart from bit 0; every cycle ``ext_wr`` is high it takes
them); when ``finished`` rises, the counters and the output tensor are written to the results file.
"""

from __future__ import annotations

import json
import os
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from rtl.program import COUNTERS


def _pack(vals: np.ndarray, bits: int) -> int:
    word, mask = 0, (1 << bits) - 1
    for i, v in enumerate(vals.tolist()):
        word |= (int(v) & mask) << (i * bits)
    return word


def _unpack(word: int, n: int, bits: int) -> list[int]:
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    out = []
    for i in range(n):
        v = (word >> (i * bits)) & mask
        out.append(v - (1 << bits) if v & half else v)
    return out


async def _run_layer(dut: Any, layer: dict[str, Any], arrays: Any, max_cycles: int) -> dict[str, Any]:
    descs = [int(d, 16) for d in layer["descriptors"]]
    key = layer["key"]
    tensors = {"x": arrays[f"{key}_x"].astype(np.int64), "w": arrays[f"{key}_w"].astype(np.int64)}
    y = np.zeros(int(layer["y_size"]), dtype=np.int64)
    written = np.zeros(y.size, dtype=np.int64)
    idx = [arrays[f"{key}_t{i}"] for i in range(len(layer["transfers"]))]
    ptr = [0] * len(idx)
    i, will, cycles = 0, False, 0
    while True:
        await FallingEdge(dut.clk)
        cycles += 1
        if cycles > max_cycles:
            raise AssertionError(f"layer {layer['name']}: no finish after {max_cycles} cycles")
        if will:
            i += 1
        if i < len(descs):
            dut.desc_data.value = descs[i]
            dut.desc_valid.value = 1
            will = bool(int(dut.desc_ready.value))
        else:
            dut.desc_valid.value = 0
            will = False
        if int(dut.ext_rd.value):
            tag, n, bits = int(dut.ext_tag.value), int(dut.ext_n.value), int(dut.ext_bits.value)
            tensor = layer["transfers"][tag]
            sel = idx[tag][ptr[tag]:ptr[tag] + n]
            if tensor != "x" and tensor != "w" or len(sel) != n:
                raise AssertionError(f"read beat of transfer {tag} ({tensor}) beyond its {len(idx[tag])} elements")
            dut.ext_rdata.value = _pack(tensors[tensor][sel], bits)
            ptr[tag] += n
        if int(dut.ext_wr.value):
            tag, n, bits = int(dut.ext_tag.value), int(dut.ext_n.value), int(dut.ext_bits.value)
            sel = idx[tag][ptr[tag]:ptr[tag] + n]
            if layer["transfers"][tag] != "y" or len(sel) != n:
                raise AssertionError(f"write beat of transfer {tag} beyond its {len(idx[tag])} elements")
            raw = dut.ext_wdata.value
            if not raw.is_resolvable:
                raise AssertionError(f"layer {layer['name']}: write beat of transfer {tag} carries unknown bits "
                                     f"{raw} (cycle {cycles})")
            vals = _unpack(raw.to_unsigned(), n, bits)
            if not layer["out_signed"]:
                vals = [v & ((1 << bits) - 1) for v in vals]
            y[sel] = vals
            written[sel] += 1
            ptr[tag] += n
        if int(dut.finished.value) and i >= len(descs):
            break
    counters = {name: int(getattr(dut, name).value) for name in COUNTERS}
    short = [t for t, (p, ix) in enumerate(zip(ptr, idx, strict=True)) if p != len(ix)]
    return {"name": layer["name"], "counters": counters, "y": y.tolist(), "written": written.tolist(),
            "incomplete_transfers": short}


@cocotb.test()
async def layers(dut: Any) -> None:
    with open(os.environ["HWSIM_CORE_CONFIG"]) as fh:
        cfg = json.load(fh)
    arrays = np.load(cfg["arrays"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.desc_valid.value = 0
    dut.desc_data.value = 0
    dut.ext_rdata.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    results = []
    for layer in cfg["layers"]:
        results.append(await _run_layer(dut, layer, arrays, int(cfg["max_cycles"])))
        dut.desc_valid.value = 0
        await FallingEdge(dut.clk)
    with open(cfg["results_path"], "w") as fh:
        json.dump(results, fh)
