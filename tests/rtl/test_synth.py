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
    with pytest.raises(ValueError, match="parse_stat.text must hold statistics for module 'top'"):
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
