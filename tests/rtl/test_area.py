"""hwsim.area: the fitted model reproduces the sweep's synthesized counts within its documented error,
and predicts a design the fit never saw; it needs no amaranth (the layering test checks the imports)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import hwsim
from hwsim.area import FIT_ERROR, FPGAArea, array_area, fpga_area
from rtl.export import export_array
from rtl.params import ArrayParams
from rtl.synth import run_yosys

CSV = Path(__file__).resolve().parents[2] / "docs" / "rtl_area.csv"


def _rows() -> list[dict[str, str]]:
    with CSV.open() as fh:
        return [r for r in csv.DictReader(fh) if r["adder"] == "single" and r["target"] == "ice40"]


@pytest.mark.parametrize("what", ["luts", "ffs", "carries"])
def test_model_within_documented_error_on_the_sweep(what: str) -> None:
    rows = _rows()
    assert len(rows) >= 30
    for r in rows:
        a = array_area(int(r["rows"]), int(r["cols"]), int(r["weight_bits"]), int(r["act_bits"]), int(r["acc_bits"]))
        want = int(r[what])
        # the fit's documented error, plus 0.5 for rounding the model to whole cells
        assert abs(getattr(a, what) - want) <= FIT_ERROR[what][0] * want + 0.5 + 1e-9, r


def test_model_predicts_an_unseen_design(tmp_path: Path) -> None:
    """3x5 array, W=6, A=3, 64-step tiles: synthesized now, compared with the model."""
    p = ArrayParams(3, 5, 6, 3, max_steps=64)
    exp = export_array(p, tmp_path, top="bs_array")
    syn = run_yosys(exp.verilog, exp.top, "ice40", tmp_path)
    model = array_area(3, 5, 6, 3, p.acc_bits or 0)
    assert abs(model.luts - syn.luts) <= 0.1 * syn.luts
    assert abs(model.ffs - syn.ffs) <= 0.05 * syn.ffs
    assert abs(model.carries - syn.carries) <= 0.1 * syn.carries


def test_fpga_area_of_a_preset_and_its_rules() -> None:
    acc = hwsim.resolve_accelerator("edge16_serial")
    a = fpga_area(acc)
    small = fpga_area(dataclasses.replace(acc, rows=8, cols=8))
    assert a.luts > 3 * small.luts and a.ffs > 3 * small.ffs   # 4x the PEs
    assert small + small == FPGAArea(2 * small.luts, 2 * small.ffs, 2 * small.carries)
    with pytest.raises(ValueError, match="fpga_area.acc.pe.kind must be 'serial_act' .*, not 'parallel'"):
        fpga_area(hwsim.resolve_accelerator("systolic32"))
    with pytest.raises(TypeError, match="fpga_area.acc must be an Accelerator, not 3"):
        fpga_area(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"array_area.acc_bits must be an integer in \[16, 128\], not 12"):
        array_area(2, 2, 8, 8, 12)
