"""The physics of the engine, each rule against an independent count: the per-kind table, dataflows as
data, SRAM ports as a stall source, write energy, partial-sum re-reads, pruning density, the bit-serial
adder tree, BWA's cost, and bounded work on huge layers."""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import numpy as np
import pytest

import hwsim
from hwsim import (
    Accelerator,
    BufferSpec,
    DRAMSpec,
    Layer,
    LayerKind,
    LayerMapping,
    Network,
    PEKind,
    PESpec,
    Tile,
)
from hwsim.accelerator import Dataflow
from hwsim.cost import price
from hwsim.fast import layer_cost
from hwsim.kinds import DATAFLOW_AXES, GEMM_DIMS, PE_KINDS, mac_pj, pe_step, tree_bits


def acc(kind: str = "parallel", **kw: object) -> Accelerator:
    base: dict[str, object] = dict(name="t", rows=4, cols=4, pe=PESpec(kind=PEKind(kind)),
                                   dataflows=(Dataflow.OS, Dataflow.WS, Dataflow.IS),
                                   ifmap_sram=BufferSpec(1 << 20, word_bits=64, banks=8),
                                   filter_sram=BufferSpec(1 << 20, word_bits=64, banks=8),
                                   ofmap_sram=BufferSpec(1 << 20, word_bits=64, banks=8),
                                   dram=DRAMSpec(bandwidth_bytes_per_cycle=1e6))
    base.update(kw)
    return Accelerator(**base)  # type: ignore[arg-type]


def conv(**kw: object) -> Layer:
    base: dict[str, object] = dict(name="c", kind="conv2d", in_channels=8, out_channels=8, in_h=6, in_w=6,
                                   kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)
    base.update(kw)
    return Layer(**base)  # type: ignore[arg-type]


def run(la: Layer, a: Accelerator, flow: str = "os", tile: Tile | None = None,
        order: str = "nmpqc") -> hwsim.LayerResult:
    return hwsim.simulate_layer(la, LayerMapping(la.name, Dataflow(flow), tile or Tile.whole(la), order), a)


def test_every_pe_kind_has_a_model() -> None:
    assert set(PE_KINDS) == set(PEKind)
    for kind, model in PE_KINDS.items():
        pe = PESpec(kind=kind)
        cycles, red = model.step(pe, 4, 4)
        assert cycles >= 1 and red >= 1
        assert model.mac(hwsim.EnergyTable(), pe, 4, 4) > 0


def test_every_dataflow_places_each_gemm_dimension_once() -> None:
    assert set(DATAFLOW_AXES) == set(Dataflow)
    for axes in DATAFLOW_AXES.values():
        assert sorted(axes) == sorted(GEMM_DIMS) == ["K", "N", "P"]


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
def test_folds_and_sram_reads_follow_the_dataflow_rule(flow: str) -> None:
    """An independent count: fold the GEMM P x K x N by the dataflow's (rows, cols, time) and count
    each operand's SRAM reads as once per fold of the dimension it does not depend on, if spatial."""
    la = conv(in_channels=6, out_channels=10)
    a = acc()
    r = run(la, a, flow)
    _, P, K, N = la.gemm
    d = {"P": P, "K": K, "N": N}
    rows, cols, time = {"os": ("P", "N", "K"), "ws": ("K", "N", "P"), "is": ("K", "P", "N")}[flow]
    fr, fc = math.ceil(d[rows] / 4), math.ceil(d[cols] / 4)
    assert r.folds == fr * fc
    assert r.compute_cycles == fr * fc * d[time]
    folds_of = {rows: fr, cols: fc, time: 1}
    # zero padding is never read: count the (output pixel, input element) pairs inside the image
    inside = sum(1 for oh in range(la.out_h) for ow in range(la.out_w) for kh in range(3) for kw in range(3)
                 if 0 <= oh + kh - 1 < la.in_h and 0 <= ow + kw - 1 < la.in_w) * la.in_channels
    assert inside < P * K
    assert r.traffic.ifmap_sram_reads == pytest.approx(inside * folds_of["N"] * 8 / 64)
    assert r.traffic.filter_sram_reads == pytest.approx(K * N * folds_of["P"] * 8 / 64)


def test_write_energy_is_charged_at_write_pj() -> None:
    la = conv()
    base = acc()
    costly = dataclasses.replace(base, **{b: dataclasses.replace(getattr(base, b), write_pj=1000.0)
                                          for b in ("ifmap_sram", "filter_sram", "ofmap_sram")})
    e0, e1 = run(la, base).energy, run(la, costly).energy
    for f in ("ifmap_sram_pj", "filter_sram_pj", "ofmap_sram_pj"):
        assert getattr(e1, f) > getattr(e0, f) + 100.0
    t = run(la, base).traffic
    assert e1.ifmap_sram_pj == pytest.approx(t.ifmap_sram_reads * base.ifmap_sram.read_energy_pj
                                             + t.ifmap_sram_writes * 1000.0)


def test_bank_limited_buffer_stalls_where_the_ports_say() -> None:
    """WS on an 8 x 8 array of 1-bit serial PEs writes 8 partial sums of 32 bits per cycle (256 bits) and
    reads 8 back: a one-bank 64-bit ofmap port (one read and one write per cycle) needs 4 cycles a step.
    The layer cannot be shorter than the array's ofmap reads or writes / banks (the DMA's words go to the
    other buffer half)."""
    la = conv(in_channels=32, out_channels=8, act_bits=1, weight_bits=1)
    wide = acc("serial_act", rows=8, cols=8, ofmap_sram=BufferSpec(1 << 20, word_bits=64, banks=64))
    narrow = dataclasses.replace(wide, ofmap_sram=BufferSpec(1 << 20, word_bits=64, banks=1))
    rw, rn = run(la, wide, "ws"), run(la, narrow, "ws")
    assert rw.stall_cycles * 10 < rn.stall_cycles
    assert rn.compute_cycles == rw.compute_cycles
    dma = (rn.traffic.dram_read_bytes + rn.traffic.dram_write_bytes) * 8 / 64
    words = max(rn.traffic.ofmap_sram_reads, rn.traffic.ofmap_sram_writes) - dma
    assert rn.total_cycles >= words - 1
    assert rn.port_stall_cycles >= words - rn.compute_cycles - rn.fill_cycles - 1
    assert rn.port_stall_cycles <= rn.stall_cycles
    # the fast path sees the same port bound
    fast = layer_cost(la, LayerMapping("c", Dataflow.WS, Tile.whole(la)), narrow)
    assert fast.cycles >= 0.95 * words  # the fast path leaves the DMA's share of the port out (docs/models.md)


def test_ports_that_cannot_deliver_one_operand_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^Accelerator\.ofmap_sram\.word_bits must be >= pe\.acc_bits "
                                         r"\(partial sums\) = 32 \(one operand per access\), not 16$"):
        acc(ofmap_sram=BufferSpec(4096, word_bits=16))


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
@pytest.mark.parametrize("c_tile", [16, 4, 3])
def test_partial_sums_are_read_back_once_per_reduction_pass(flow: str, c_tile: int) -> None:
    """Every pass over an output's reduction but the first reads the partial sums back (at acc_bits):
    passes = c-tiles x reduction folds per tile (1 in OS, where the reduction streams in time). So a
    reduction split across DRAM tiles re-reads in OS too, and in WS/IS costs reads only where the split
    adds passes."""
    la = conv(in_channels=16)
    r = run(la, acc(), flow, Tile(1, 8, c_tile, 6, 6))
    k_tiles = [min(c_tile, 16 - i) * 9 for i in range(0, 16, c_tile)]
    passes = sum(math.ceil(k / 4) if flow != "os" else 1 for k in k_tiles)
    drain = r.traffic.dram_write_bytes * 8 / 64
    assert r.traffic.ofmap_sram_reads == pytest.approx(la.ofmap_count * (passes - 1) * 32 / 64 + drain)


def test_pruned_layer_costs_less_memory_and_energy_not_cycles() -> None:
    la = conv(in_channels=32, out_channels=32, weight_bits=8)
    half = dataclasses.replace(la, weight_density=0.5)
    assert half.stored_weight_bits == pytest.approx(0.5 * 8 + 1)  # values + a one-bit presence map
    assert half.weight_bits_total < la.weight_bits_total
    assert half.bops() == la.bops() // 2
    a = acc()
    d, h = run(la, a), run(half, a)
    assert h.compute_cycles == d.compute_cycles
    assert h.traffic.dram_read_bytes < d.traffic.dram_read_bytes
    assert h.energy.mac_pj == pytest.approx(d.energy.mac_pj / 2)
    assert h.energy.total_pj < d.energy.total_pj
    skip = acc(pe=PESpec(skip_zero_weights=True))
    assert run(half, skip).compute_cycles < d.compute_cycles
    # a density so low that the map costs more than the values keeps the dense format
    dense_enough = dataclasses.replace(la, weight_bits=1, weight_density=0.9)
    assert dense_enough.stored_weight_bits == 1


def test_density_outside_0_1_is_refused() -> None:
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"^Layer\['c'\]\.weight_density must be a number in "
                                             rf"\(0\.0, 1\.0\], not {re.escape(repr(bad))}$"):
            conv(weight_density=bad)
    with pytest.raises(ValueError, match=r"^Layer\['p'\]\.weight_density must be 1 for a pool layer \(it has "
                                         r"no stored weights\), not 0\.5$"):
        Layer("p", "pool", 4, 4, 4, 4, 2, 2, 2, 2, weight_density=0.5)  # type: ignore[arg-type]


def test_adder_tree_bits_and_energy() -> None:
    """A binary tree of 4 products of 8 bits: two 8-bit adders and one 9-bit adder = 25 = (4-1)*8 + 4 - 2 - 1."""
    assert tree_bits(4, 8) == 25
    assert tree_bits(2, 1) == 1 and tree_bits(1, 8) == 0
    e = hwsim.EnergyTable()
    one = mac_pj(e, PESpec(kind=PEKind.SERIAL_ACT), 8, 8)
    tree = mac_pj(e, PESpec(kind=PEKind.SERIAL_ACT, adder_tree=16), 8, 8)
    par = mac_pj(e, PESpec(kind=PEKind.PARALLEL), 8, 8)
    assert one == pytest.approx(e.mult_pj_per_bit2 * 64 + 8 * e.add_pj_per_bit * 32)
    assert tree < one and tree < 2 * par
    with pytest.raises(ValueError, match=r"^PESpec\.adder_tree must be a power of two in \[1, 1024\], "
                                         r"not 12$"):
        PESpec(kind=PEKind.SERIAL_ACT, adder_tree=12)
    with pytest.raises(ValueError, match=r"^PESpec\.adder_tree must be 1 for a parallel PE \(an option of "
                                         r"the kinds \['serial_act', 'serial_both'\]\), not 16$"):
        PESpec(kind=PEKind.PARALLEL, adder_tree=16)


def test_fusion_folds_shrink_with_precision_down_to_the_brick() -> None:
    a = acc("fusion", interconnect="systolic")
    la = conv(in_channels=64, out_channels=16)
    c = {b: run(dataclasses.replace(la, weight_bits=b, act_bits=b), a, "ws") for b in (8, 4, 2, 1)}
    assert c[8].folds > c[4].folds > c[2].folds
    assert c[2].compute_cycles == c[1].compute_cycles  # 2-bit BitBricks: 1 bit gains nothing
    assert pe_step(a.pe, 1, 1) == (1, 16)


def test_bwa_scales_cost_cycles_storage_and_energy() -> None:
    la = conv(act_bits=4)
    bwa = dataclasses.replace(la, bit_scales=4)
    a = acc()
    r0, r1 = run(la, a), run(bwa, a)
    assert r1.compute_cycles == r0.compute_cycles + math.ceil(la.ofmap_count * 4 / a.cols)
    assert r1.traffic.ofmap_sram_writes > r0.traffic.ofmap_sram_writes
    assert r1.energy.scale_pj > 0 and r0.energy.scale_pj == 0
    fp0 = hwsim.schedule.footprints_bytes(la, Tile.whole(la), a)
    fp1 = hwsim.schedule.footprints_bytes(bwa, Tile.whole(la), a)
    assert fp1["ofmap_sram"] == la.ofmap_count * 32 * 4 // 8 > fp0["ofmap_sram"]


def test_price_is_linear_in_events() -> None:
    a = acc()
    r = run(conv(), a)
    ev = hwsim.result.Events(compute_cycles=r.compute_cycles, fill_cycles=r.fill_cycles,
                             stall_cycles=r.stall_cycles, traffic=r.traffic)
    e1, e2 = price(ev, a), price(ev + ev, a)
    assert e2.total_pj == pytest.approx(2 * e1.total_pj)


def test_huge_layers_are_walked_in_bounded_memory_or_refused() -> None:
    """10^7 output channels: the default tiling is walked chunk by chunk; a tiling of more tiles than the
    engine walks is refused with its count, not a MemoryError."""
    la = Layer("fc", LayerKind.LINEAR, 64, 10_000_000)
    a = hwsim.resolve_accelerator("edge16_serial")
    r = hwsim.simulate(Network.single("n", [la]), a)
    assert r.layers[0].macs == 64 * 10_000_000
    with pytest.raises(ValueError, match=r"^LayerMapping\['fc'\]\.tile must give at most 16777216 DRAM tiles "
                                         r"for the engine's walk, not 640000000 \(larger tiles, or buffers "
                                         r"large enough for them\)$"):
        hwsim.simulate_layer(la, LayerMapping("fc", Dataflow.OS, Tile(1, 1, 1, 1, 1)), a)
    f = layer_cost(la, hwsim.default_mapping(la, a), a)
    assert f.compute_cycles == r.layers[0].compute_cycles


def test_closed_form_input_rows_scale_to_huge_maps() -> None:
    la = Layer("big", LayerKind.CONV2D, 1, 1, 100_000, 100_000, 3, 3, pad_h=1, pad_w=1)
    tiles = np.array([[1, 1, 1, 1000, 1000], [1, 1, 1, 4096, 512]])
    out = hwsim.fast.evaluate_tiles(la, hwsim.resolve_accelerator("edge16_serial"), "os", "nmcpq", tiles)
    assert out["dram_read_bytes"][0] > la.ifmap_count


def test_the_mapper_sees_the_ports() -> None:
    """WS spills partial sums every reduction fold; through one narrow ofmap bank that costs far more than
    OS. With wide ports the latency-optimal choice may be WS; with one bank the mapper's choice must
    never be slower than the best it could get, and it avoids the port-bound mapping."""
    from mapping.mapper import map_layer

    la = conv(in_channels=64, out_channels=16, act_bits=1, weight_bits=8)
    narrow = acc("serial_act", rows=8, cols=8, dataflows=(Dataflow.WS, Dataflow.OS),
                 ofmap_sram=BufferSpec(1 << 20, word_bits=32, banks=1))
    choice = map_layer(la, narrow, "latency")
    ws = run(la, narrow, "ws")
    got = hwsim.simulate_layer(la, choice.mapping, narrow)
    assert ws.port_stall_cycles > ws.compute_cycles  # WS here is port-bound
    assert got.total_cycles < ws.total_cycles
    assert got.port_stall_cycles < ws.port_stall_cycles


def test_adder_tree_reaches_the_area_model() -> None:
    """Lanes that share an accumulator drop its flip-flops; the tree adds one LUT and carry per full adder."""
    from hwsim.area import ICE40_COEFFS, TERMS, fpga_area

    base = hwsim.resolve_accelerator("edge16_serial")
    one = fpga_area(base)
    tree = fpga_area(dataclasses.replace(base, pe=dataclasses.replace(base.pe, adder_tree=16)))
    i = TERMS["serial_act"].index("pe_acc")
    saved_ffs = ICE40_COEFFS["serial_act"]["ffs"][i] * 256 * 32 * 15 / 16
    assert tree.ffs == pytest.approx(one.ffs - saved_ffs, abs=1)
    added = 256 / 16 * tree_bits(16, 8)
    saved_luts = ICE40_COEFFS["serial_act"]["luts"][i] * 256 * 32 * 15 / 16
    assert tree.luts == pytest.approx(one.luts - saved_luts + added, abs=1)


def test_unpacked_buffers_store_one_element_per_word() -> None:
    """``packed: false`` (the RTL core's storage): 4-bit activations in 8-bit words take a word each, so
    the tile's bytes, the words read and written and the DMA's port rate all double against packed words."""
    la = conv(act_bits=4, weight_bits=8, out_bits=8)
    packed = acc(ifmap_sram=BufferSpec(1 << 20, word_bits=8, banks=1), dram=DRAMSpec(64.0))
    flat = acc(ifmap_sram=BufferSpec(1 << 20, word_bits=8, banks=1, packed=False), dram=DRAMSpec(64.0))
    fp_p = hwsim.schedule.footprints_bytes(la, Tile.whole(la), packed)
    fp_u = hwsim.schedule.footprints_bytes(la, Tile.whole(la), flat)
    assert fp_u["ifmap_sram"] == 8 * 8 * 8 == 2 * fp_p["ifmap_sram"]   # the padded 8x8 tile of 8 channels
    assert fp_u["filter_sram"] == fp_p["filter_sram"]
    rp, ru = run(la, packed), run(la, flat)
    assert ru.traffic.ifmap_sram_writes == la.ifmap_count == 2 * rp.traffic.ifmap_sram_writes
    assert ru.traffic.ifmap_sram_reads == 2 * rp.traffic.ifmap_sram_reads
    # the first load is exposed: one element per cycle through the one bank, against two when packed
    assert hwsim.engine.element_cycles(flat.ifmap_sram, 4, 64.0) == 1.0
    assert hwsim.engine.element_cycles(packed.ifmap_sram, 4, 64.0) == 0.5
    assert ru.stall_cycles > rp.stall_cycles
    with pytest.raises(TypeError, match=r"^BufferSpec\.packed must be true or false, not 'no'$"):
        BufferSpec(1024, packed="no")  # type: ignore[arg-type]


def test_dma_moves_whole_elements_per_beat_and_whole_cycles_per_transfer() -> None:
    """A 3-bit element never straddles a 64-bit link beat (21 per beat, as the RTL core's DMA moves them),
    and a transfer's last beat is spent whole."""
    wide = BufferSpec(1 << 20, word_bits=64, banks=64)
    assert hwsim.engine.element_cycles(wide, 3, 8.0) == 1 / 21
    assert hwsim.engine.element_cycles(wide, 8, 8.0) == 1 / 8
    assert hwsim.engine.transfer_cycles(wide, 3, np.array([0.0, 21 * 3 / 8, 22 * 3 / 8]), 8.0).tolist() == [0, 1, 2]


def test_ws_waits_for_a_tiles_first_stationary_weights() -> None:
    """Broadcast WS on a 4x4 serial_act array whose filter buffer delivers 2 weights per cycle: the 16
    weights of a tile's first fold take 8 cycles, the first bypassed in the start cycle, so 7 cycles more
    than with 16 weights per cycle (besides the slower first load); an OS tile's first step waits for its
    4 column weights, 2 per cycle: 1 cycle."""
    la = conv(weight_bits=8, act_bits=8)
    slow = acc("serial_act", interconnect="broadcast", filter_sram=BufferSpec(1 << 20, word_bits=8, banks=2))
    fast = acc("serial_act", interconnect="broadcast", filter_sram=BufferSpec(1 << 20, word_bits=8, banks=16))
    # the exposed first load of the 576 weights through 2 against 16 banks, and the weight wait
    assert run(la, slow, "ws").total_cycles - run(la, fast, "ws").total_cycles == (576 // 2 - 576 // 16) + 7
    one_fold = (np.array(4), np.array(4), np.array(100))
    assert hwsim.engine.operand_wait_cycles(la, Dataflow.WS, slow, *one_fold) == 7
    assert hwsim.engine.operand_wait_cycles(la, Dataflow.OS, slow, *one_fold) == 1
    assert hwsim.engine.operand_wait_cycles(la, Dataflow.OS, fast, *one_fold) == 0


def test_a_ws_fold_shorter_than_the_next_folds_weight_load_waits_for_the_rest() -> None:
    """Later folds load their weights during the fold before: with 8 cycles per full load (16 PEs, 2 per
    cycle) a fold of 3 compute cycles leaves 8 - 1 - 3 = 4 cycles to wait, one of 7 or more none. A fold's
    load ends at its last used PE in row-major order: 2 rows x 3 columns of a 4x4 array reach PE 7 (4 cycles)."""
    la = conv(weight_bits=8, act_bits=8)
    slow = acc("serial_act", interconnect="broadcast", filter_sram=BufferSpec(1 << 20, word_bits=8, banks=2))
    wload = functools.partial(hwsim.engine.operand_wait_cycles, la, Dataflow.WS, slow)
    # 72 reduction slots x 8 filters: 18 x 2 folds, all full
    assert wload(np.array(72), np.array(8), np.array(3)) == 7 + 35 * 4
    assert wload(np.array(72), np.array(8), np.array(7)) == 7
    # 6 x 3: a full fold (4 rows: PE 15, 8 cycles) then 2 rows x 3 columns (PE 6: 4 cycles, 3 after the bypass)
    assert wload(np.array(6), np.array(3), np.array(1)) == 7 + 2


def test_an_accelerator_that_cannot_split_the_reduction_is_never_given_such_a_tile() -> None:
    """``split_reduction: false`` (the RTL core): a mapping with ``tile.c`` below the reduction is refused
    with its reason, the default fold halves other loops, and the mapper's choice keeps the reduction whole
    (where the packed default would split it)."""
    from mapping import map_layer

    la = conv(in_channels=64, out_channels=16, in_h=8, in_w=8)
    split_ok = acc(ifmap_sram=BufferSpec(8192, word_bits=8, banks=4), filter_sram=BufferSpec(4096, word_bits=8, banks=4))
    whole = dataclasses.replace(split_ok, split_reduction=False)
    bad = LayerMapping("c", Dataflow.OS, Tile(1, 4, 32, 8, 8))
    bad.validate(la, split_ok)
    with pytest.raises(ValueError, match="^" + re.escape("LayerMapping['c'].tile splits the reduction "
                                                          "(tile.c=32 of 64), which 't' cannot "
                                                          "(split_reduction: false)") + "$"):
        bad.validate(la, whole)
    assert hwsim.schedule.default_mapping(la, whole).tile.c == 64
    assert hwsim.schedule.default_mapping(la, split_ok).tile.c < 64
    assert map_layer(la, whole, "edp").mapping.tile.c == 64
