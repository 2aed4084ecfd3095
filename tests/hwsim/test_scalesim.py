"""``hwsim.scalesim`` against the real SCALE-Sim 3.0.0, run in its own environment (``.venv-scalesim``).

The reference runs as a subprocess through ``sims/scalesim_ref.py``; the layers are small because
SCALE-Sim spends about 150 us per simulated cycle.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind, PEKind
from hwsim.errors import ConfigError
from hwsim.scalesim import (
    REPORT_FILES,
    ScaleSimConfig,
    ScaleSimLayerReport,
    load_config,
    load_topology,
    report_csvs,
    scalesim_shape,
    simulate_layer,
    simulate_topology,
    stall_free_cycles,
    timeline,
)
from hwsim.scalesim.layout import ofmap_layout, skew_count, skew_find
from hwsim.scalesim.replay import demand_streams
from hwsim.scalesim.simulate import simulate_streams
from hwsim.scalesim.timeline import DrainPeriods, run_layout, run_stream
from sims.cli import main

REPO = Path(__file__).resolve().parents[2]
SCALESIM_PY = REPO / ".venv-scalesim" / "bin" / "python"

CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
conv3x3, 12, 10, 3, 3, 4, 10, 1,
strided, 11, 9, 3, 2, 3, 5, 2,
pointwise, 8, 8, 1, 1, 16, 12, 1,
tall, 7, 16, 7, 3, 2, 3, 3,
"""
GEMM = """Layer, M, N, K,
g1, 20, 9, 13,
g2, 7, 33, 50,
"""


def config_text(rows: int, cols: int, flow: str, kb: tuple[int, int, int] = (1, 1, 1), mode: str = "CALC") -> str:
    return f"""[general]
run_name = ref

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:  {kb[0]}
FilterSramSzkB: {kb[1]}
OfmapSramSzkB:  {kb[2]}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {flow}
ReadRequestBuffer: 128
WriteRequestBuffer: 128

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def reference(cfg: Path, topo: Path, out: Path, gemm: bool) -> Path:
    """Run SCALE-Sim 3.0.0 and return the folder holding its three reports."""
    if not SCALESIM_PY.exists():
        pytest.fail(f"{SCALESIM_PY.relative_to(REPO)} is missing: run `make test`, which installs SCALE-Sim 3.0.0 "
                    "(numpy<2.4) in its own environment")
    cmd = [str(SCALESIM_PY), str(REPO / "sims" / "scalesim_ref.py"), "-c", str(cfg), "-t", str(topo), "-o", str(out)]
    done = subprocess.run(cmd + (["--gemm"] if gemm else []), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])


def parse(text: str) -> tuple[list[str], list[list[float]]]:
    lines = [ln.rstrip().rstrip(",") for ln in text.strip().splitlines()]
    head = [h.strip() for h in lines[0].split(",")]
    return head, [[float(x) for x in ln.split(",")] for ln in lines[1:]]


def assert_reports_equal(ours: dict[str, str], ref_dir: Path) -> None:
    for name in REPORT_FILES:
        head, rows = parse(ours[name])
        ref_head, ref_rows = parse((ref_dir / name).read_text())
        assert head == ref_head, name
        assert len(rows) == len(ref_rows), name
        for row, ref_row in zip(rows, ref_rows, strict=True):
            for col, a, b in zip(head, row, ref_row, strict=True):
                assert a == pytest.approx(b, rel=1e-12, abs=0), f"{name} layer {row[0]:.0f} {col}: {a} != {b}"


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
@pytest.mark.parametrize(("rows", "cols", "kb"), [(4, 8, (1, 1, 1)), (8, 4, (2, 1, 1))])
def test_conv_layers_match_scalesim(tmp_path: Path, flow: str, rows: int, cols: int, kb: tuple[int, int, int]) -> None:
    cfg, topo = tmp_path / "arch.cfg", tmp_path / "conv.csv"
    cfg.write_text(config_text(rows, cols, flow, kb))
    topo.write_text(CONV)
    ref = reference(cfg, topo, tmp_path / "ref", gemm=False)
    ours = report_csvs(simulate_topology(load_topology(topo), load_config(cfg)))
    assert_reports_equal(ours, ref)


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
def test_gemm_layers_match_scalesim(tmp_path: Path, flow: str) -> None:
    cfg, topo = tmp_path / "arch.cfg", tmp_path / "gemm.csv"
    cfg.write_text(config_text(8, 4, flow))
    topo.write_text(GEMM)
    ref = reference(cfg, topo, tmp_path / "ref", gemm=True)
    ours = report_csvs(simulate_topology(load_topology(topo, gemm=True), load_config(cfg)))
    assert_reports_equal(ours, ref)


def test_cli_writes_the_three_reports(tmp_path: Path) -> None:
    cfg, topo = tmp_path / "arch.cfg", tmp_path / "conv.csv"
    cfg.write_text(config_text(4, 8, "ws"))
    topo.write_text(CONV)
    out = tmp_path / "reports"
    assert main(["scalesim", "-c", str(cfg), "-t", str(topo), "-o", str(out)]) == 0
    ref = reference(cfg, topo, tmp_path / "ref", gemm=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    for name in REPORT_FILES:  # SCALE-Sim's own header line, byte for byte
        assert (out / name).read_text().splitlines()[0] == (ref / name).read_text().splitlines()[0]
    assert_reports_equal({n: (out / n).read_text() for n in REPORT_FILES}, ref)


def test_config_maps_to_a_parallel_systolic_accelerator(tmp_path: Path) -> None:
    cfg = tmp_path / "arch.cfg"
    cfg.write_text(config_text(8, 4, "is", (2, 1, 3)))
    acc = load_config(cfg).accelerator
    assert (acc.rows, acc.cols, acc.dataflows, acc.pe.kind) == (8, 4, (Dataflow.IS,), PEKind.PARALLEL)
    assert acc.interconnect.value == "systolic"
    assert (acc.ifmap_sram.size_bytes, acc.ofmap_sram.size_bytes, acc.ifmap_sram.word_bits) == (2048, 3072, 8)


def test_topology_rows_become_layers(tmp_path: Path) -> None:
    topo = tmp_path / "t.csv"
    topo.write_text(CONV + "DPconv, 6, 6, 3, 3, 3, 1, 1\n")  # no trailing comma; depthwise splits per channel
    layers = load_topology(topo)
    assert [la.name for la in layers[-3:]] == ["DPconvChannel_0", "DPconvChannel_1", "DPconvChannel_2"]
    assert (layers[1].in_h, layers[1].in_w, layers[1].kernel_w, layers[1].stride_h, layers[1].pad_h) == (11, 9, 2, 2, 0)
    gemm = tmp_path / "g.csv"
    gemm.write_text(GEMM)
    g1 = load_topology(gemm, gemm=True)[0]
    assert (g1.kind.value, g1.batch, g1.in_channels, g1.out_channels) == ("linear", 20, 13, 9)


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda t: t.replace("Dataflow : ws", "Dataflow : ws\nArrayDepth: 3"), "unknown key [architecture_presets] ArrayDepth"),
    (lambda t: t + "\n[extras]\nfoo = 1\n", "unknown section [extras]"),
    (lambda t: t.replace("ArrayWidth:     8", "ArrayWidth:     eight"), "[architecture_presets] ArrayWidth must be"),
    (lambda t: t.replace("Dataflow : ws", "Dataflow : rs"), "ScaleSimConfig.dataflow must be one of"),
])
def test_bad_config_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                edit: object, needle: str) -> None:
    cfg, topo = tmp_path / "bad.cfg", tmp_path / "conv.csv"
    cfg.write_text(edit(config_text(4, 8, "ws")))  # type: ignore[operator]
    topo.write_text(CONV)
    assert main(["scalesim", "-c", str(cfg), "-t", str(topo), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(cfg) in err and needle in err
    assert not (tmp_path / "out").exists()


def test_bad_topology_names_file_and_line(tmp_path: Path) -> None:
    topo = tmp_path / "t.csv"
    topo.write_text(CONV + "broken, 4, 4, 5, 5, 1, 1, 1,\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(topo))}: line 6: Layer\['broken'\]\.kernel_h/kernel_w "
                                          r"must fit the input 4x4, not 5x5$"):
        load_topology(topo)


# Layers whose operands outgrow half a 1 kB buffer, so that USER-mode read buffers prefetch again.
USER_CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
big, 10, 9, 3, 3, 16, 20, 1,
strided, 13, 11, 3, 2, 6, 24, 2,
pointwise, 6, 6, 1, 1, 40, 30, 1,
"""


def user_config_text(rows: int, cols: int, flow: str, kb: tuple[int, int, int], bw: int, ifmap_bw: int,
                     filter_bw: int) -> str:
    """A USER-mode config: ``Bandwidth`` is SCALE-Sim's OFMAP write bandwidth, its IFMAP / filter read
    bandwidths are the ``[layout]`` bank bandwidths (one bank each here)."""
    text = config_text(rows, cols, flow, kb, mode="USER").replace("Bandwidth : 10", f"Bandwidth : {bw}")
    for op, b in (("Ifmap", ifmap_bw), ("Filter", filter_bw)):
        text = text.replace(f"{op}SRAMBankBandwidth: 10\n{op}SRAMBankNum: 10",
                            f"{op}SRAMBankBandwidth: {b}\n{op}SRAMBankNum: 1")
    return text


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
@pytest.mark.parametrize(("rows", "cols", "kb", "bws"), [
    (4, 8, (1, 1, 1), (2, 3, 2)),   # read stalls (IFMAP and filter re-prefetches) and write stalls
    (5, 3, (1, 2, 1), (3, 1, 5)),   # non-square array, 1-word IFMAP reads
])
def test_user_bandwidth_stalls_match_scalesim(tmp_path: Path, flow: str, rows: int, cols: int,
                                              kb: tuple[int, int, int], bws: tuple[int, int, int]) -> None:
    reports = check_user_mode(tmp_path, flow, rows, cols, kb, bws)
    # both read buffers prefetch again (their DRAM traces run past the first prefetch, done at -1)
    assert any(r.ifmap_dram_stop > -1 for r in reports) and any(r.filter_dram_stop > -1 for r in reports)


@pytest.mark.parametrize("flow", ["ws", "is"])
def test_user_write_buffer_stalls_match_scalesim(tmp_path: Path, flow: str) -> None:
    """Read buffers that hold every operand (no prefetch after the first): only the OFMAP write
    buffer, draining one word per cycle, stalls (OS writes too rarely to fill it)."""
    reports = check_user_mode(tmp_path, flow, 4, 8, (64, 64, 1), (1, 10, 10))
    assert all(r.ifmap_dram_stop == r.filter_dram_stop == -1 for r in reports)


def check_user_mode(tmp_path: Path, flow: str, rows: int, cols: int, kb: tuple[int, int, int],
                    bws: tuple[int, int, int]) -> tuple[ScaleSimLayerReport, ...]:
    cfg, topo = tmp_path / "user.cfg", tmp_path / "conv.csv"
    cfg.write_text(user_config_text(rows, cols, flow, kb, *bws))
    topo.write_text(USER_CONV)
    ref = reference(cfg, topo, tmp_path / "ref", gemm=False)
    layers, conf = load_topology(topo), load_config(cfg)
    reports = simulate_topology(layers, conf)
    _, ref_rows = parse((ref / "COMPUTE_REPORT.csv").read_text())
    for la, rep, ref_row in zip(layers, reports, ref_rows, strict=True):
        ref_total, ref_stall = int(ref_row[2]), int(ref_row[3])
        assert rep.total_cycles == pytest.approx(ref_total, rel=0.02)  # the bound; measured: equal
        assert rep.total_cycles - rep.stall_cycles == ref_total - ref_stall == stall_free_cycles(la, conf)
    assert sum(r.stall_cycles for r in reports) > 0
    assert_reports_equal(report_csvs(reports), ref)
    return reports


def test_user_gemm_matches_scalesim(tmp_path: Path) -> None:
    cfg, topo = tmp_path / "user.cfg", tmp_path / "gemm.csv"
    cfg.write_text(user_config_text(4, 8, "ws", (1, 1, 1), 1, 2, 2))
    topo.write_text("Layer, M, N, K,\ng1, 30, 40, 50,\n")
    ref = reference(cfg, topo, tmp_path / "ref", gemm=True)
    reports = simulate_topology(load_topology(topo, gemm=True), load_config(cfg))
    assert reports[0].stall_cycles > 0
    assert_reports_equal(report_csvs(reports), ref)


def test_user_mode_reads_bandwidths_from_the_layout_section(tmp_path: Path) -> None:
    cfg = tmp_path / "user.cfg"
    cfg.write_text(user_config_text(4, 8, "os", (1, 1, 1), 3, 4, 6))
    conf = load_config(cfg)
    assert (conf.bandwidths, conf.ifmap_read_words_per_cycle, conf.filter_read_words_per_cycle) == ((3,), 4, 6)
    cfg.write_text(config_text(4, 8, "os", mode="USER").replace("IfmapSRAMBankBandwidth: 10", "IfmapSRAMBankBandwidth: 7"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(cfg))}: \[layout\] IfmapSRAMBankBandwidth must be a "
                                          r"multiple of IfmapSRAMBankNum \(10\) with InterfaceBandwidth: USER, not 7$"):
        load_config(cfg)


# ---- CALC mode's closed forms against the streams they replace ---------------------------------------
#
# ``simulate_layer`` runs CALC mode from fold layouts (no demand streams); ``simulate_streams`` replays
# the streams, the model the SCALE-Sim parity tests above check. Both must agree on every column.

@st.composite
def calc_cases(draw: st.DrawFn) -> tuple[Layer, ScaleSimConfig]:
    if draw(st.integers(0, 4)) == 0:
        layer = Layer("g", LayerKind.LINEAR, in_channels=draw(st.integers(1, 300)),
                      out_channels=draw(st.integers(1, 300)), batch=draw(st.integers(1, 40)))
    else:   # strides above, equal to and below the kernel; inputs whose last windows run past the edge
        r, s, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 40)), out_channels=draw(st.integers(1, 70)),
                      in_h=draw(st.integers(r, r + 14)), in_w=draw(st.integers(s, s + 14)), kernel_h=r, kernel_w=s,
                      stride_h=stride, stride_w=stride)
    cfg = ScaleSimConfig("r", draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.sampled_from([1, 1, 2, 4])),
                         draw(st.sampled_from([1, 1, 2, 8])), draw(st.sampled_from([1, 2])),
                         draw(st.sampled_from(list(Dataflow))), ifmap_offset=draw(st.sampled_from([0, 5])))
    assume(stall_free_cycles(layer, cfg) > 0)   # one row of demands: "Total Cycles" 0, utilisation undefined
    return layer, cfg


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calc_cases())
def test_calc_closed_forms_equal_the_streams(case: tuple[Layer, ScaleSimConfig]) -> None:
    layer, cfg = case
    assert simulate_layer(layer, cfg) == simulate_streams(layer, cfg)


@pytest.mark.parametrize("flow", list(Dataflow))
def test_calc_periodic_windows_equal_the_streams(flow: Dataflow) -> None:
    """Overlapping windows, an input larger than a window of the 1 kB buffer and many column folds:
    the IFMAP window's state recurs and whole periods of folds are skipped."""
    cfg = ScaleSimConfig("r", 8, 2, 1, 1, 1, flow)
    for h, c, m in ((9, 16, 40), (8, 24, 33), (12, 7, 50)):
        layer = Layer("c", LayerKind.CONV2D, in_channels=c, out_channels=m, in_h=h, in_w=h, kernel_h=3, kernel_w=3)
        assert simulate_layer(layer, cfg) == simulate_streams(layer, cfg)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calc_cases(), st.integers(1, 4), st.integers(1, 2))
def testofmap_layout_and_drains_equal_the_stream(case: tuple[Layer, ScaleSimConfig], bw: int, kb: int) -> None:
    """The OFMAP layout locates every demand of the stream, and its drain loop finds the same drains
    and write stalls (drains narrower than the array's width make them common)."""
    layer, cfg = case
    sp = scalesim_shape(layer)
    st = demand_streams(sp, cfg, reads=False)
    n_rows, out = st.n_rows, st.ofmap
    lay = ofmap_layout(sp, cfg)
    rows = out.rows.tolist()
    assert lay.n == len(rows)
    assert [lay.row_of(j) for j in range(len(rows))] == rows
    assert all(lay.count_below(r) == int((out.rows < r).sum()) for r in range(-1, n_rows + 2, max(1, n_rows // 40)))
    ref, new = run_stream(out, kb, bw, n_rows), run_layout(lay, kb, bw, n_rows)
    assert (new.write_stalls, new.ofmap_dram) == (ref.write_stalls, ref.ofmap_dram)
    assert [new.shift_at(r) for r in range(n_rows + 1)] == ref.shift.tolist()


@pytest.mark.parametrize("flow", list(Dataflow))
@pytest.mark.parametrize("bw", [1, 3, 4, 5, 8])
def test_drain_periods_skipped_equal_the_stream(flow: Dataflow, bw: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deep 1x1 reduction on a 2x4 array (OS: a wide one), a 1 kB OFMAP buffer (drains of 512 words,
    some 40 in the layer). Where a drain moves at least a row's demands a cycle (``bw`` at least the
    layout's ``per_row``: 4 in WS and IS, 2 in OS) the drains follow from the queue alone and whole
    periods of them are skipped (``DrainPeriods``: one drain a period where lines fill exactly, ``bw``
    4 and 8; several with part-filled lines, ``bw`` 5, and 3 in OS); with a narrower drain the loop runs drain
    by drain. The drains, the write stalls and every row's shift equal the stream's either way."""
    cfg = ScaleSimConfig("r", 2, 4, 1, 1, 1, flow)
    side, chans = (48, 4) if flow is Dataflow.OS else (4, 420)
    layer = Layer("c", LayerKind.CONV2D, in_channels=chans, out_channels=8, in_h=side, in_w=side, kernel_h=1,
                  kernel_w=1)
    sp = scalesim_shape(layer)
    st = demand_streams(sp, cfg, reads=False)
    lay = ofmap_layout(sp, cfg)
    skips: list[int] = []
    after = timeline.DrainPeriods.after

    def counted(self: DrainPeriods, q: timeline.LineQueue, j0: int) -> int | None:
        got = after(self, q, j0)
        if got is not None:
            skips.append(got - j0)
        return got
    monkeypatch.setattr(timeline.DrainPeriods, "after", counted)
    ref, new = run_stream(st.ofmap, 1, bw, st.n_rows), run_layout(lay, 1, bw, st.n_rows)
    assert (new.write_stalls, new.ofmap_dram) == (ref.write_stalls, ref.ofmap_dram)
    assert [new.shift_at(r) for r in range(st.n_rows + 1)] == ref.shift.tolist()
    assert lay.per_row == (2 if flow is Dataflow.OS else 4)
    if bw < lay.per_row:
        assert not skips
    else:   # all but the first few drains and the last ones skipped, and no write stall
        assert not ref.write_stalls and len(skips) == 1 and skips[0] > 0.8 * st.ofmap.rows.size


def test_skewed_block_counts_exhaustively() -> None:
    for w in range(1, 9):
        for t in range(1, 9):
            order = sorted((a + c, c) for a in range(t) for c in range(w))
            assert [skew_find(i, w, t) for i in range(w * t)] == [d for d, _ in order]
            assert [skew_count(x, w, t) for x in range(-1, w + t + 1)] == \
                [sum(d < x for d, _ in order) for x in range(-1, w + t + 1)]
