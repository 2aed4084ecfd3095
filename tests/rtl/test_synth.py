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


@pytest.mark.parametrize(("extra", "message"), [
    (["--target", "xc7"], "rtl synth.target must be one of ['ice40', 'ecp5'], not 'xc7'"),
    (["--target", "ice40", "--device", "lfe5u-85f"],
     "rtl synth.device must be one of ['hx1k', 'hx8k', 'up5k'] for target 'ice40', not 'lfe5u-85f'"),
    (["--target", "ecp5", "--device", "hx8k"],
     "rtl synth.device must be one of ['lfe5u-25f', 'lfe5u-45f', 'lfe5u-85f'] for target 'ecp5', not 'hx8k'"),
    (["--target", "ecp5", "--seed", "x"], "rtl synth.seed must be an integer in [0, 2147483647], not 'x'"),
])
def test_core_synth_rejects_bad_target_and_device(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  extra: list[str], message: str) -> None:
    from sims.cli import main

    out = tmp_path / "r.json"
    assert main(["rtl", "synth", "--arch", "edge16_serial", *extra, "--build", str(tmp_path / "b"),
                 "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists() and not (tmp_path / "b").exists()


def test_bram_core_runs_layers_exactly_as_the_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The FPGA build's buffers (synchronous reads in mid-cycle, halves of two banks split into a memory
    per bank: rtl.synth.bram_core) change nothing the core's registers see: on Icarus, two layers (a padded 3x3 conv split into DRAM tiles, so the DMA fills
    one half while the fetcher reads the other, and a linear layer) give the same outputs and all twelve
    counters as the combinational-read core. The bench samples ``ext_wdata`` at the falling edge, the very
    instant a falling-edge read updates it (a race of the bench; hardware takes it at the rising edge), so
    here the mid-cycle reads are clocked 2 ns (of 10) after the rising edge instead of at the falling one."""
    import numpy as np

    import rtl.core
    import rtl.export
    from hwsim.accelerator import Accelerator, BufferSpec, DRAMSpec, PEKind, PESpec
    from hwsim.golden import conv2d
    from hwsim.network import Layer
    from hwsim.schedule import LayerMapping, Tile
    from rtl.program import CoreParams, choose_shift, compile_layer
    from rtl.synth import bram_core_type
    from sims.tb.core_runner import run_layers

    acc = Accelerator("bram_check", 2, 3, pe=PESpec(PEKind("serial_act"), 4, 4, 20), interconnect="broadcast",
                      ifmap_sram=BufferSpec(512, 4, 2), filter_sram=BufferSpec(512, 4, 3),
                      ofmap_sram=BufferSpec(2048, 20, 2), dram=DRAMSpec(1.0))
    core = CoreParams.from_accelerator(acc)
    rng = np.random.default_rng(7)
    conv = Layer("c3", "conv2d", 3, 4, 6, 5, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=4, out_bits=4)
    fc = Layer("fc", "linear", 10, 5, batch=2, weight_bits=4, act_bits=4, out_bits=4)
    progs = []
    for layer, mp in ((conv, LayerMapping("c3", "os", Tile(1, 2, 3, 3, 5))), (fc, None)):
        from hwsim.schedule import default_mapping

        mp = mp or default_mapping(layer, acc)
        x = rng.integers(-8, 8, (layer.batch, layer.in_channels, layer.in_h, layer.in_w))
        w = rng.integers(-8, 8, (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_h,
                                 layer.kernel_w))
        exact = conv2d(x, w, (layer.stride_h, layer.stride_w), (layer.pad_h, layer.pad_w), layer.groups,
                       acc_bits=acc.pe.acc_bits)
        progs.append((compile_layer(core, layer, mp, acc, shift=choose_shift(exact, 4, True)), x, w))
    plain = run_layers("icarus", acc, progs, build_root=tmp_path / "plain")
    verilog = rtl.export.component_verilog

    def mid_cycle_reads(component: object, name: str) -> str:
        text = verilog(component, name)   # type: ignore[arg-type]
        # the buffers' read ports, nothing else: one memory per filter half (3 banks, one memory of 3 write
        # ports), one per bank of the ifmap and ofmap halves (2 banks, split: rtl.core.BankedMemory)
        assert text.count("always @(negedge clk)") == 2 and text.count("always @(negedge bram_rd_clk)") == 8
        for clk in ("clk", "bram_rd_clk"):
            text = text.replace(f"always @(negedge {clk})", "always @(posedge bram_mid_clk)")
        text = text.replace("  input bram_rd_clk;\n",
                            "  input bram_rd_clk;\n  wire bram_mid_clk;\n  assign #2 bram_mid_clk = bram_rd_clk;\n")
        return text.replace("  input clk;\n", "  input clk;\n  wire bram_mid_clk;\n  assign #2 bram_mid_clk = clk;\n", 1)

    monkeypatch.setattr(rtl.core, "AccelCore", bram_core_type())
    monkeypatch.setattr(rtl.export, "component_verilog", mid_cycle_reads)
    bram = run_layers("icarus", acc, progs, build_root=tmp_path / "bram")
    assert "bram_mid_clk" in next((tmp_path / "bram").rglob("accel_core.v")).read_text()
    for a, b in zip(plain.layers, bram.layers, strict=True):
        assert a.counters["cycles"] > 0 and a.counters == b.counters
        assert np.array_equal(a.y, b.y)
