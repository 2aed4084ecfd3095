"""Yosys synthesis of the exported array: the stat parser, the adder-style choice, and fmax on iCE40."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtl.export import component_verilog, export_array
from rtl.params import ArrayParams
from rtl.synth import ice40_fmax_mhz, parse_stat, run_yosys
from rtl.wrapper import SerialIOWrapper


def test_parse_stat_counts_by_target() -> None:
    stat = {"modules": {"\\top": {"num_cells_by_type": {"SB_LUT4": 10, "SB_DFFE": 3, "SB_DFFSR": 2,
                                                         "SB_CARRY": 4, "LUT3": 0}}}}
    assert parse_stat(json.dumps(stat), "ice40", "top")[:4] == (10, 5, 4, 19)
    xc7 = {"modules": {"\\top": {"num_cells_by_type": {"LUT2": 3, "LUT6": 4, "FDRE": 5, "CARRY4": 1, "IBUF": 9,
                                                       "OBUF": 2, "BUFG": 1, "MUXF7": 1}}}}
    assert parse_stat(json.dumps(xc7), "xc7", "top")[:4] == (7, 5, 1, 14)
    with pytest.raises(ValueError, match=r"^parse_stat\.text must hold statistics for module 'top', not modules "
                                         r"\['\\\\other'\]$"):
        parse_stat(json.dumps({"modules": {"\\other": {}}}), "ice40", "top")


def test_single_carry_chain_beats_two_adders(tmp_path: Path) -> None:
    """The documented adder choice holds: on iCE40 the single chain needs far fewer LUTs and carries."""
    res = {}
    for adder in ("single", "dual"):
        p = ArrayParams(1, 1, 8, 8, adder=adder)
        exp = export_array(p, tmp_path / adder, top="bs_array")
        res[adder] = run_yosys(exp.verilog, exp.top, "ice40", tmp_path / adder)
    s, d = res["single"], res["dual"]
    assert s.ffs == d.ffs == 24 + 15 + 8 + (3 + 8 + 8 + 3 + 3)
    assert s.luts < 0.75 * d.luts and s.carries < d.carries
    assert s.yosys_version.startswith("Yosys ")


def test_ice40_fmax_of_wrapped_pe(tmp_path: Path) -> None:
    v = tmp_path / "w.v"
    v.write_text(component_verilog(SerialIOWrapper(ArrayParams(1, 1, 4, 4, max_steps=16)), "w"))
    fmax, lcs = ice40_fmax_mhz(v, "w", tmp_path)
    assert 30.0 < fmax < 400.0 and 30 < lcs < 400


# ---- the accelerator core on FPGAs (rtl.synth.build_core, `hwsim rtl synth --arch`) -------------------------

TINY_YAML = """name: tiny_1x2
rows: 1
cols: 2
pe: {kind: serial_act, max_weight_bits: 4, max_act_bits: 4, acc_bits: 16}
dataflows: [os]
interconnect: broadcast
ifmap_sram: {size_bytes: 512, word_bits: 8}
filter_sram: {size_bytes: 512, word_bits: 8}
ofmap_sram: {size_bytes: 1024, word_bits: 16}
dram: {bandwidth_bytes_per_cycle: 1}
clock_hz: 1.0e+8
"""


def test_core_cell_counts_and_utilisation_parsing() -> None:
    from rtl.synth import _utilisation, core_cell_counts

    ice = core_cell_counts({"SB_LUT4": 7, "SB_DFFER": 2, "SB_DFF": 1, "SB_RAM40_4KNR": 3, "SB_MAC16": 1,
                            "SB_CARRY": 4}, "ice40")
    assert ice == {"luts": 7, "ffs": 3, "bram": 3, "dsp": 1, "carries": 4, "lutram": 0}
    ecp = core_cell_counts({"LUT4": 9, "TRELLIS_FF": 5, "DP16KD": 2, "PDPW16KD": 1, "MULT18X18D": 2, "CCU2C": 6,
                            "TRELLIS_DPR16X4": 4, "PFUMX": 3}, "ecp5")
    assert ecp == {"luts": 9, "ffs": 5, "bram": 3, "dsp": 2, "carries": 6, "lutram": 4}
    log = "Info: Device utilisation:\nInfo: \t     ICESTORM_LC: 10662/  7680   138%\nInfo: \t    ICESTORM_RAM:    10/    32    31%\n"
    assert _utilisation(log, "ice40") == {"logic_cells": {"used": 10662, "available": 7680},
                                          "bram": {"used": 10, "available": 32}}


def test_tiny_core_on_ice40_maps_buffers_to_bram_and_places(tmp_path: Path) -> None:
    """The real flow (Yosys synth_ice40, nextpnr-ice40 on an HX8K) through the CLI on a 1x2 core whose
    packed 8-bit words hold two 4-bit elements, so its ifmap and filter halves are two narrow banks each
    (hwsim.area.core_buffer), the filter's copied for its two read ports: every memory is block RAM (not
    flip-flops), as many as the geometry says, the part holds them, fmax > 0."""
    import hwsim
    from hwsim.area import bram_count
    from sims.cli import main

    arch = tmp_path / "tiny.yaml"
    arch.write_text(TINY_YAML)
    out = tmp_path / "r.json"
    assert main(["rtl", "synth", "--arch", str(arch), "--target", "ice40", "--device", "hx8k", "--build",
                 str(tmp_path / "b"), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    want = bram_count(hwsim.resolve_accelerator(str(arch)), "ice40")
    assert want == 2 * (2 + 2 * 2 + 1) and rep["bram"] == want and rep["utilisation"]["bram"]["used"] == want
    assert [m["mapped_to"] for m in rep["memories"]] == ["ICE40_RAM4K"] * 10   # 2 + 2 + 1 memories per half
    assert rep["fits"] is True and rep["fmax_mhz"] > 0 and rep["critical_path"]
    for key in ("luts", "ffs", "dsp", "carries", "seed", "yosys_version", "nextpnr_version", "synth_s", "pnr_s",
                "device", "package"):
        assert key in rep, key
    assert rep["luts"] > 500 and rep["ffs"] > 500 and rep["dsp"] == 0 and rep["yosys_version"].startswith("Yosys ")
    assert rep["utilisation"]["logic_cells"]["available"] == 7680


def test_a_core_past_the_parts_block_rams_is_refused_up_front(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``edge16_serial`` as declared (packed 128-bit words: 32, 32 and 8 narrow banks, each block RAM copied
    per read port) needs 3,200 DP16KD; the LFE5U-85F has 208: one line before any tool runs, exit 2."""
    from sims.cli import main

    build = tmp_path / "b"
    assert main(["rtl", "synth", "--arch", "edge16_serial", "--target", "ecp5", "--build", str(build)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error: rtl synth: the core for 'edge16_serial' needs 3200 block RAMs "
                                               "(hwsim.area.bram_count), the lfe5u-85f has 208; ")
    assert not build.exists()
