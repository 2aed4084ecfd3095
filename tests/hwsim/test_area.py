"""hwsim.area: per PE kind, the fitted model reproduces the sweep's synthesized counts within its documented
error, matches the fit the sweep wrote, and predicts designs the fit never saw; it needs no amaranth (the
layering test checks the imports)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

import hwsim
from hwsim.accelerator import PEKind
from hwsim.area import (
    FIT_ERROR,
    FIT_POINTS,
    ICE40_COEFFS,
    KINDS,
    MODEL_VERSION,
    TERMS,
    FPGAArea,
    array_area,
    fpga_area,
)
from rtl.export import export_array
from rtl.params import ArrayParams
from rtl.synth import run_yosys

DOCS = Path(__file__).resolve().parents[2] / "docs"
# MODEL_VERSION -> digest of (TERMS, ICE40_COEFFS): a refit that forgets to bump MODEL_VERSION fails here.
KNOWN_MODELS = {"2-ice40-yosys0.23-3kinds": "4d224229efba750a"}


def _digest() -> str:
    return hashlib.sha256(json.dumps([TERMS, ICE40_COEFFS], sort_keys=True).encode()).hexdigest()[:16]


def _rows(kind: str) -> list[dict[str, str]]:
    with (DOCS / "rtl_area.csv").open() as fh:
        return [r for r in csv.DictReader(fh) if r["kind"] == kind and r["adder"] == "single" and r["target"] == "ice40"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("what", ["luts", "ffs", "carries"])
def test_model_within_documented_error_on_the_sweep(kind: str, what: str) -> None:
    rows = _rows(kind)
    assert len(rows) == FIT_POINTS[kind] >= 30
    for r in rows:
        a = array_area(int(r["rows"]), int(r["cols"]), int(r["weight_bits"]), int(r["act_bits"]), int(r["acc_bits"]),
                       kind)
        want = int(r[what])
        # the fit's documented error, plus 0.5 for rounding the model to whole cells
        assert abs(getattr(a, what) - want) <= FIT_ERROR[kind][what][0] * want + 0.5 + 1e-9, r


def test_model_is_the_fit_the_sweep_wrote() -> None:
    """hwsim.area's constants are docs/rtl_area_fit.json's, and that file is the fit of docs/rtl_area.csv."""
    from sims.experiments.rtl_area import fit_area

    fit = json.loads((DOCS / "rtl_area_fit.json").read_text())
    with (DOCS / "rtl_area.csv").open() as fh:
        refit = fit_area(list(csv.DictReader(fh)))
    for kind in KINDS:   # same fit, up to the last rounded digit (another BLAS may round it the other way)
        for what in ("luts", "ffs", "carries"):
            assert refit["kinds"][kind][what]["coef"] == pytest.approx(fit["kinds"][kind][what]["coef"], abs=2e-4)
    for kind in KINDS:
        entry = fit["kinds"][kind]
        assert entry["fitted"] and entry["terms"] == list(TERMS[kind]) and entry["points"] == FIT_POINTS[kind]
        for what in ("luts", "ffs", "carries"):
            assert tuple(entry[what]["coef"]) == ICE40_COEFFS[kind][what]
            assert (entry[what]["max_rel_err"], entry[what]["mean_rel_err"]) == FIT_ERROR[kind][what]
    assert KNOWN_MODELS.get(MODEL_VERSION) == _digest(), "the fit changed: bump hwsim.area.MODEL_VERSION"


@pytest.mark.parametrize(("kind", "rows", "cols", "wb", "ab", "bounds"), [
    ("serial_act", 3, 5, 6, 3, (0.1, 0.05, 0.1)),
    ("serial_both", 3, 5, 6, 3, (0.1, 0.05, 0.1)),
    ("parallel", 2, 3, 5, 3, (0.15, 0.05, 0.15)),   # LUTs: 577 model vs 523 synth (10.3%), fit max 13.7%
])
def test_model_predicts_an_unseen_design(tmp_path: Path, kind: str, rows: int, cols: int, wb: int, ab: int,
                                         bounds: tuple[float, float, float]) -> None:
    """An array shape and widths the sweep never synthesized, 64-step tiles: synthesized now, vs the model."""
    p = ArrayParams(rows, cols, wb, ab, max_steps=64, kind=kind)
    exp = export_array(p, tmp_path, top="bs_array")
    syn = run_yosys(exp.verilog, exp.top, "ice40", tmp_path)
    model = array_area(rows, cols, wb, ab, p.acc_bits or 0, kind)
    for what, bound in zip(("luts", "ffs", "carries"), bounds, strict=True):
        assert abs(getattr(model, what) - getattr(syn, what)) <= bound * getattr(syn, what), (what, model, syn)


def test_fpga_area_of_a_preset_and_its_rules() -> None:
    acc = hwsim.resolve_accelerator("edge16_serial")
    a = fpga_area(acc)
    small = fpga_area(dataclasses.replace(acc, rows=8, cols=8))
    assert a.luts > 3 * small.luts and a.ffs > 3 * small.ffs   # 4x the PEs
    assert small + small == FPGAArea(2 * small.luts, 2 * small.ffs, 2 * small.carries)
    by_kind = {k: fpga_area(dataclasses.replace(acc, pe=dataclasses.replace(acc.pe, kind=PEKind(k)))) for k in KINDS}
    assert by_kind["serial_act"] == a
    assert by_kind["parallel"].luts > 3 * by_kind["serial_both"].luts   # a full multiplier per PE
    assert fpga_area(hwsim.resolve_accelerator("systolic32")).luts > 0   # a parallel preset
    fusion = dataclasses.replace(acc, pe=dataclasses.replace(acc.pe, kind=PEKind.FUSION))
    with pytest.raises(ValueError, match=r"^fpga_area\.acc\.pe\.kind must be one of \['serial_act', 'serial_both', "
                                         r"'parallel'\] .*, not 'fusion'$"):
        fpga_area(fusion)
    with pytest.raises(TypeError, match=r"^fpga_area\.acc must be an Accelerator, not 3$"):
        fpga_area(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^array_area\.acc_bits must be an integer in \[16, 128\], not 12$"):
        array_area(2, 2, 8, 8, 12)
    with pytest.raises(ValueError, match=r"^array_area\.kind must be one of .*, not 'fusion'$"):
        array_area(2, 2, 8, 8, 24, "fusion")


# ---- the accelerator core: buffer block RAMs (exact) and the fitted core model, against docs/core_fpga.csv ----

def _core_rows() -> list[dict[str, str]]:
    with (DOCS / "core_fpga.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_buffer_memories_follow_the_geometry() -> None:
    from hwsim.area import BufferGeometry, BufferMemory, bram_count, buffer_memories, core_buffer

    small = hwsim.resolve_accelerator(str(DOCS.parent / "sims" / "specs" / "core_small_ice40.yaml"))
    mems = buffer_memories(small)
    assert [(m.buffer, m.depth, m.width, m.read_ports, m.write_ports) for m in mems[::2]] == [
        ("ifmap", 1024, 8, 1, 1), ("filter", 1024, 8, 1, 1), ("ofmap", 256, 8, 1, 1)]   # ofmap: 1-byte link
    # iCE40 4 kbit: 1024 x 8 = two 512 x 8; 256 x 8 = one; ECP5 18 kbit: one each
    assert bram_count(small, "ice40") == 2 * (2 + 2 + 1) and bram_count(small, "ecp5") == 6
    packed = hwsim.resolve_accelerator("edge16_serial")
    edge = dataclasses.replace(packed, **{f"{b}_sram": dataclasses.replace(getattr(packed, f"{b}_sram"), packed=False)
                                          for b in ("ifmap", "filter", "ofmap")})
    # one element per 128-bit word, two banks = two write ports per half: a memory per bank of half the depth
    # (1024 x 8 in one 2048 x 9; ofmap 512 x 33 in one 512 x 36), each replicated for the two read ports
    assert all(m.write_ports == 2 for m in buffer_memories(edge)) and bram_count(edge, "ecp5") == 2 * 3 * (2 * 2)
    # the packed preset: 16 elements per 128-bit word as 16 narrow banks per bank (partial sums: 4 of 32 bits)
    assert [core_buffer(packed, b) for b in ("ifmap", "filter", "ofmap")] == [
        BufferGeometry(8, 32, 32768, 8), BufferGeometry(8, 32, 32768, 8), BufferGeometry(32, 8, 4096, 32)]
    # each narrow bank (1024 x 8, ofmap 512 x 32: one DP16KD) replicated per read port: ifmap 16 (the rows),
    # filter 32 (WS loads a PE per lane), ofmap 8, in both halves: 3,200 block RAMs, the 85F has 208
    assert bram_count(packed, "ecp5") == 2 * (32 * 16 + 32 * 32 + 8 * 8) == 3200
    # three banks: no split into banks (not a power of two), so no block RAM holds the half's 3 write ports
    assert BufferMemory("ifmap", 600, 5, 3, 3).brams("ice40") == 0
    assert BufferMemory("ifmap", 600, 5, 3, 4).brams("ice40") == 4 * 3 * 1   # 150 x 5 in one 256 x 16
    one = dataclasses.replace(edge, **{f"{b}_sram": dataclasses.replace(getattr(edge, f"{b}_sram"), banks=1)
                                       for b in ("ifmap", "filter", "ofmap")})
    # 2048 x 8 in one 2048 x 9; ofmap 1024 x 33 (a WS partial sum + 1) in two 1024 x 18 / 512 x 36
    assert bram_count(one, "ecp5") == 2 * (1 + 1 + 2)
    assert BufferMemory("ifmap", 600, 5, 3, 1).brams("ice40") == 3 * 2   # two 512 x 8, a copy per read port
    with pytest.raises(ValueError, match=r"^BufferMemory\.brams\.target must be one of \['ice40', 'ecp5'\], not 'xc7'$"):
        BufferMemory("ifmap", 300, 5, 3, 1).brams("xc7")


def test_bram_count_equals_every_build() -> None:
    """Every synthesised core in docs/core_fpga.csv used exactly the block RAMs the geometry says (the
    16x16 builds included: 8 DP16KD with one bank, 24 with two banks split per bank)."""
    from hwsim.area import bram_count
    from sims.experiments.core_fpga import POINTS, accelerator_of

    built = [r for r in _core_rows() if r["bram"] != ""]
    assert len(built) == 9
    for r in built:
        pt = next(p for p in POINTS if p.name == r["point"])
        assert int(r["bram_predicted"]) == bram_count(accelerator_of(pt), pt.target), r["point"]
        assert int(r["bram"]) == int(r["bram_predicted"]), r["point"]


def test_core_model_is_the_fit_of_the_builds_and_within_its_error() -> None:
    """hwsim.area's core coefficients are sims.experiments.core_fpga.fit_core of docs/core_fpga.json, and
    core_area reproduces every build it was fitted on within the documented error (4 builds, 3 terms:
    the leave-one-out error, not this one, is the figure for a new design)."""
    from hwsim.area import CORE_COEFFS, CORE_FIT_ERROR, CORE_FIT_POINTS, core_area
    from sims.experiments.core_fpga import POINTS, accelerator_of, fit_core

    builds = json.loads((DOCS / "core_fpga.json").read_text())["builds"]
    fit = fit_core(builds)
    assert fit["fitted"] and len(fit["points"]) == CORE_FIT_POINTS == 4
    for what in ("luts", "ffs", "carries"):
        assert fit[what]["coef"] == pytest.approx(list(CORE_COEFFS[what]), abs=2e-3)
        assert (fit[what]["max_rel_err"], fit[what]["mean_rel_err"], fit[what]["loo_max_rel_err"]) == \
            pytest.approx(CORE_FIT_ERROR[what], abs=1e-4)
    rows = {r["point"]: r for r in builds}
    for name in fit["points"]:
        area = core_area(accelerator_of(next(p for p in POINTS if p.name == name)))
        r = rows[name]
        assert area.bram == r["bram"]
        for what in ("luts", "ffs", "carries"):
            assert abs(getattr(area, what) - r[what]) <= CORE_FIT_ERROR[what][0] * r[what] + 0.5, (name, what)
    # the controller, not the PE array, is most of a small core: the 1x2 array model is about 5 % of it
    tiny = core_area(accelerator_of(POINTS[0]))
    assert fpga_area(accelerator_of(POINTS[0])).luts < 0.1 * tiny.luts


def test_ws_control_is_the_ws_builds_excess_over_its_datapath() -> None:
    """A core with WS = the OS core + its WS datapath (counted) + WS control per row, calibrated on the one
    core built with and without WS (small_4x4_ws, small_4x4): the constant is that pair's difference less
    the datapath, and the model of the WS build is then as close as the OS fit is to small_4x4."""
    from hwsim.area import CORE_FIT_ERROR, WS_CONTROL_PER_ROW, core_area, ws_datapath
    from sims.experiments.core_fpga import POINTS, accelerator_of

    rows = {r["point"]: r for r in json.loads((DOCS / "core_fpga.json").read_text())["builds"]}
    ws_pt = next(p for p in POINTS if p.name == "small_4x4_ws")
    acc = accelerator_of(ws_pt)
    assert [d.value for d in acc.dataflows] == ["os", "ws"] and acc.rows == 4
    dp = ws_datapath(acc)
    for what in ("luts", "ffs", "carries"):
        excess = rows["small_4x4_ws"][what] - rows["small_4x4"][what] - getattr(dp, what)
        assert excess / acc.rows == pytest.approx(WS_CONTROL_PER_ROW[what], abs=0.01), what
        assert abs(getattr(core_area(acc), what) - rows["small_4x4_ws"][what]) <= \
            CORE_FIT_ERROR[what][0] * rows["small_4x4"][what] + 1, what
