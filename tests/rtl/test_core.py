"""The accelerator core (rtl.core) on Icarus: whole layers from hwsim schedules, outputs against
hwsim.golden plus the requantisation, and all twelve event counts against hwsim.simulate.

All twelve numbers are compared with ``==``: total, compute, fill and stall cycles, DRAM bytes read and
written, and SRAM words per buffer, the core's accesses weighed by their elements' widths in the buffers'
words (``sims.tb.core_runner.rtl_counts``: the core keeps one element per word, the engine counts data in
words; neither reads zero padding).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwsim.accelerator import Accelerator, BufferSpec, Dataflow, DRAMSpec, PEKind, PESpec
from hwsim.engine import simulate_layer, tile_costs
from hwsim.golden import conv2d
from hwsim.network import Layer
from hwsim.schedule import LayerMapping, Tile, default_mapping
from rtl.program import CoreParams, choose_shift, compile_layer, requantize
from sims.tb.core_runner import differing_counts, model_counts, rtl_counts, run_layers


def _acc(kind: str, rows: int, cols: int, bits: int, bw: float, banks: tuple[int, int, int] = (2, 3, 2),
         acc_bits: int = 32) -> Accelerator:
    return Accelerator(f"core_{kind}", rows, cols, pe=PESpec(PEKind(kind), bits, bits, acc_bits),
                       interconnect="broadcast", ifmap_sram=BufferSpec(2048, bits, banks[0]),
                       filter_sram=BufferSpec(2048, bits, banks[1]),
                       ofmap_sram=BufferSpec(8192, acc_bits, banks[2]), dram=DRAMSpec(bw))


def _operands(layer: Layer, rng: np.random.Generator, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    a, w = layer.act_bits, layer.weight_bits
    lo, hi = (-(1 << (a - 1)), 1 << (a - 1)) if signed else (0, 1 << a)
    x = rng.integers(lo, hi, (layer.batch, layer.in_channels, layer.in_h, layer.in_w))
    wt = rng.integers(-(1 << (w - 1)), 1 << (w - 1), (layer.out_channels, layer.in_channels // layer.groups,
                                                          layer.kernel_h, layer.kernel_w))
    return x, wt


def _run(acc: Accelerator, cases: list[tuple[Layer, LayerMapping | None]], seed: int = 0) -> list[str]:
    """Run every case on one build of the core; return every disagreement (empty when all agree)."""
    core = CoreParams.from_accelerator(acc)
    rng = np.random.default_rng(seed)
    progs, golds, maps = [], [], []
    for layer, mapping in cases:
        mp = mapping or default_mapping(layer, acc)
        x, w = _operands(layer, rng, acc.pe.signed_act)
        exact = conv2d(x.reshape(layer.batch, layer.in_channels, layer.in_h, layer.in_w), w,
                       (layer.stride_h, layer.stride_w), (layer.pad_h, layer.pad_w), layer.groups,
                       acc_bits=acc.pe.acc_bits)
        shift = choose_shift(exact, layer.out_bits, acc.pe.signed_act)
        progs.append((compile_layer(core, layer, mp, acc, shift=shift), x, w))
        golds.append(requantize(exact, shift, layer.out_bits, acc.pe.signed_act))
        maps.append(mp)
    run = run_layers("icarus", acc, progs)
    problems = []
    for (layer, _), mp, gold, got in zip(cases, maps, golds, run.layers, strict=True):
        if not np.array_equal(got.y, gold) or not (got.written == 1).all() or got.incomplete_transfers:
            problems.append(f"{layer.name}: outputs differ from golden ({int((got.y != gold).sum())} of {gold.size})")
        model = model_counts(simulate_layer(layer, mp, acc))
        have = rtl_counts(got.counters, layer, acc)
        problems += [f"{layer.name}.{k}: rtl {a} != {b}" for k, (a, b) in differing_counts(have, model).items()]
    return problems


def _conv(name: str, cin: int, cout: int, h: int, w: int, k: int, s: int, pad: int, groups: int = 1,
          bits: int = 8, batch: int = 1) -> Layer:
    return Layer(name, "conv2d", cin, cout, h, w, k, k, s, s, pad, pad, groups=groups, batch=batch,
                 weight_bits=bits, act_bits=bits, out_bits=bits)


def test_serial_act_layers_equal_the_engine() -> None:
    """serial_act 2x3, 8 bit, a 1-byte link: conv 3x3 (pad 1; one tile and split in p, q, m with two loop orders),
    3x3 stride 2, 1x1, depthwise, grouped, 7x7 stride 2 pad 3, linear with a batch."""
    acc = _acc("serial_act", 2, 3, 8, 1.0)
    c3 = _conv("c3", 3, 4, 6, 5, 3, 1, 1)
    cases: list[tuple[Layer, LayerMapping | None]] = [
        (c3, None),
        (_conv("c3t", 3, 4, 6, 5, 3, 1, 1), LayerMapping("c3t", "os", Tile(1, 4, 3, 3, 5))),
        (_conv("c3m", 3, 5, 6, 5, 3, 1, 1), LayerMapping("c3m", "os", Tile(1, 2, 3, 4, 3), loop_order="pqnmc")),
        (_conv("c3o", 2, 5, 5, 6, 3, 1, 1), LayerMapping("c3o", "os", Tile(1, 3, 2, 2, 6), loop_order="mnpqc")),
        (_conv("s2", 2, 3, 7, 7, 3, 2, 1), None),
        (_conv("pw", 4, 5, 3, 4, 1, 1, 0), None),
        (_conv("dw", 4, 4, 5, 5, 3, 1, 1, groups=4), None),
        (_conv("gr", 4, 6, 4, 4, 3, 1, 0, groups=2), None),
        (_conv("c7", 2, 3, 9, 9, 7, 2, 3), None),
        (Layer("fc", "linear", 12, 5, batch=3, weight_bits=8, act_bits=8, out_bits=8), None),
    ]
    assert _run(acc, cases, seed=1) == []


@pytest.mark.parametrize("kind", ["parallel", "serial_both"])
def test_other_kinds_equal_the_engine(kind: str) -> None:
    """parallel (8 bit) and serial_both (4 bit, a 3x2 array): conv 3x3 stride 2 with tiles, 1x1, linear."""
    bits = 8 if kind == "parallel" else 4
    acc = _acc(kind, 3, 2, bits, 2.0 if bits == 8 else 1.0, banks=(6, 4, 4) if bits == 8 else (3, 2, 2),
               acc_bits=32 if bits == 8 else 20)
    cases: list[tuple[Layer, LayerMapping | None]] = [
        (_conv("s2", 2, 3, 7, 6, 3, 2, 1, bits=bits), LayerMapping("s2", "os", Tile(1, 2, 2, 2, 3))),
        (_conv("pw", 3, 4, 3, 3, 1, 1, 0, bits=bits), None),
        (Layer("fc", "linear", 10, 3, batch=2, weight_bits=bits, act_bits=bits, out_bits=bits), None),
    ]
    assert _run(acc, cases, seed=2) == []


def test_dram_bound_layer_stalls_as_the_engine_says() -> None:
    """A narrow link (1 byte per cycle) on the parallel array: the DMA, not the array, sets the pace."""
    acc = _acc("parallel", 2, 2, 8, 1.0, banks=(2, 2, 2))
    layer = Layer("narrow", "linear", 24, 8, weight_bits=8, act_bits=8, out_bits=8)
    mp = LayerMapping("narrow", "os", Tile(1, 4, 24, 1, 1))
    res = simulate_layer(layer, mp, acc)
    assert res.stall_cycles > res.compute_cycles   # it really is DRAM-bound
    assert _run(acc, [(layer, mp)], seed=3) == []


def test_port_bound_layer_is_bounded() -> None:
    """One ifmap bank for two rows on the parallel array: every step with two valid (non-padding) operands
    waits a cycle for its second word, a step at the image edge needs one or none. The engine's port rule
    is an aggregate per tile (the tile's words / banks, docs/models.md), which cannot see that a step with
    no word to read still takes a cycle: the core is slower by that burstiness. Cycles of compute and fill
    and all DRAM bytes and SRAM words stay equal; total cycles within the bound measured, 30 %."""
    acc = _acc("parallel", 2, 2, 8, 4.0, banks=(1, 2, 2))
    layer = _conv("port", 3, 4, 6, 6, 3, 1, 1)
    mp = default_mapping(layer, acc)
    res = simulate_layer(layer, mp, acc)
    assert res.port_stall_cycles > res.compute_cycles / 2   # the engine also says: port-bound
    problems = _run(acc, [(layer, mp)], seed=4)
    differing = {p.split(":")[0].split(".")[1] for p in problems}
    assert differing <= {"cycles", "stall_cycles"}, problems
    rtl_cycles = next((int(p.split()[2]) for p in problems if ".cycles:" in p), res.total_cycles)
    assert res.total_cycles <= rtl_cycles <= 1.30 * res.total_cycles, (rtl_cycles, res.total_cycles)


def test_fractional_word_counts_are_equal_up_to_float_rounding() -> None:
    """24-bit ofmap words holding 8-bit results (packed: 3 per word): a linear layer of 5 outputs in tiles of
    3 and 2 writes 5/3 words. The core's side is one division (40 / 24), the engine's a sum over the tiles
    (1 + 2/3): the floats differ in their last bit, and :func:`differing_counts` calls them equal, while a
    difference of one element in a count of 10^8 words is still found."""
    acc = dataclasses.replace(_acc("serial_act", 2, 3, 8, 1.0, acc_bits=24), ofmap_sram=BufferSpec(1536, 24, 3))
    fc = Layer("fc", "linear", 12, 5, weight_bits=8, act_bits=8, out_bits=8)
    mp = LayerMapping("fc", "os", Tile(1, 3, 12, 1, 1))
    model = model_counts(simulate_layer(fc, mp, acc))
    assert model["ofmap_sram_writes"] == 1 + 2 / 3 != 40 / 24   # the two roundings of 5/3
    assert _run(acc, [(fc, mp)], seed=2) == []
    big = dict.fromkeys(model, 1e8)
    assert differing_counts(big, big | {"ofmap_sram_reads": 1e8 + 1 / 16}) == {"ofmap_sram_reads": (1e8, 1e8 + 1 / 16)}


def test_packed_words_are_narrow_banks_equal_to_the_engine() -> None:
    """Packed buffers whose words hold several of the core's elements (ifmap 2 and filter 4 bytes per word,
    ofmap 2 partial sums) are built as that many narrow banks per bank (hwsim.area.core_buffer): the
    engine's packed capacity and port rates at full width, so every count equals the engine's, in OS and WS
    (a WS tile as wide as the ofmap's 2 narrow banks); 4-bit elements the engine packs denser."""
    acc = Accelerator("packed_words", 2, 3, pe=PESpec(PEKind("serial_act"), 8, 8, 32), interconnect="broadcast",
                      dataflows=("os", "ws"), ifmap_sram=BufferSpec(2048, 16, 1), filter_sram=BufferSpec(2048, 32, 1),
                      ofmap_sram=BufferSpec(8192, 64, 1), dram=DRAMSpec(2.0))
    core = CoreParams.from_accelerator(acc)
    assert [(g.word_bits, g.banks) for g in (core.ifmap, core.filter, core.ofmap)] == [(8, 2), (8, 4), (32, 2)]
    c3 = _conv("c3", 3, 4, 6, 5, 3, 1, 1)
    fc = Layer("fc", "linear", 40, 5, weight_bits=8, act_bits=8, out_bits=8)
    assert _run(acc, [(c3, None), (c3, LayerMapping("c3", "ws", Tile(1, 2, 3, 6, 5))), (fc, None)]) == []
    narrow = _conv("c3n", 3, 4, 6, 5, 3, 1, 1, bits=4)   # outputs exact; the engine packs these denser
    assert {p.split(":")[0] for p in _run(acc, [(narrow, None)])} == {"c3n.cycles", "c3n.stall_cycles"}


def test_buffers_past_the_cores_banks_are_refused() -> None:
    """At most 64 memories per buffer half: 65 banks, or 5 banks of 128-bit words packed with 8-bit elements
    (16 narrow banks each, 80), is one line naming the buffer and both counts."""
    acc = _acc("serial_act", 2, 3, 8, 1.0)
    many = dataclasses.replace(acc, ifmap_sram=BufferSpec(65 * 64, 8, 65))
    with pytest.raises(ValueError, match=r"^Accelerator\['core_serial_act'\]\.ifmap_sram must give the RTL core at "
                                         r"most 16777216 words per half and 64 banks, not 2080 and 65$"):
        CoreParams.from_accelerator(many)
    wide = dataclasses.replace(acc, filter_sram=BufferSpec(5 * 4096, 128, 5))
    with pytest.raises(ValueError, match=r"^Accelerator\['core_serial_act'\]\.filter_sram must give the RTL core at "
                                         r"most 16777216 words per half and 64 banks \(a packed word is 16 narrow "
                                         r"banks\), not 10240 and 80$"):
        CoreParams.from_accelerator(wide)


def test_an_os_only_core_refuses_a_reduction_past_its_folds_up_front() -> None:
    """An OS fold holds at most ``max_steps`` reduction steps (``2**(acc_bits - W - A)``) and the core splits no
    reduction, so on an OS-only core such a layer runs under no mapping: one line from ``check_layer`` (before
    any search or build); with WS, whose fold steps are pixels, the same layer is accepted."""
    from rtl.program import check_layer

    acc = _acc("serial_act", 2, 3, 8, 1.0, acc_bits=24)     # max_steps 256
    deep = _conv("deep", 32, 4, 4, 4, 3, 1, 1)             # 32 * 3 * 3 = 288 steps
    with pytest.raises(ValueError, match=r"^Layer\['deep'\]: its reduction of 288 steps is past an OS fold's "
                                         r"max_steps=256 \(pe\.acc_bits=24\), and the core splits no reduction"):
        check_layer(CoreParams.from_accelerator(acc), deep)
    check_layer(CoreParams.from_accelerator(dataclasses.replace(acc, dataflows=("os", "ws"))), deep)


def test_core_on_verilator() -> None:
    """The same core and counters under Verilator (the DRAM-bound layer): equal to the engine there too."""
    acc = _acc("parallel", 2, 2, 8, 1.0, banks=(2, 2, 2))
    layer = Layer("narrow", "linear", 24, 8, weight_bits=8, act_bits=8, out_bits=8)
    core = CoreParams.from_accelerator(acc)
    rng = np.random.default_rng(6)
    x, w = _operands(layer, rng, True)
    mp = LayerMapping("narrow", "os", Tile(1, 4, 24, 1, 1))
    exact = conv2d(x, w, acc_bits=32)
    shift = choose_shift(exact, 8, True)
    run = run_layers("verilator", acc, [(compile_layer(core, layer, mp, acc, shift=shift), x, w)])
    got = run.layers[0]
    assert np.array_equal(got.y, requantize(exact, shift, 8, True))
    model = model_counts(simulate_layer(layer, mp, acc))
    assert differing_counts(rtl_counts(got.counters, layer, acc), model) == {}


@pytest.mark.parametrize(("kind", "signed"), [("serial_act", True), ("serial_act", False), ("serial_both", True)])
def test_ws_layers(kind: str, signed: bool) -> None:
    """WS (rows <- reduction, columns <- filters, time <- pixels; partial sums of the row folds read one
    cycle early and written back by the drain) and OS folds on one array: outputs == golden and all twelve
    numbers equal. 4 bit on a 1-byte link moves two elements per beat: a transfer of an odd element count ends
    in a half beat, spent whole by the core and by the engine (whole cycles per transfer). ``wm`` streams
    activations narrower than the array's (serial_act WS takes them MSB first, aligned to the top of the
    row register), signed or unsigned."""
    bits = 4 if kind == "serial_both" else 8
    acc = dataclasses.replace(_acc(kind, 2, 3, bits, 1.0, banks=(2, 6, 3), acc_bits=32 if bits == 8 else 20),
                              dataflows=("os", "ws"))
    acc = dataclasses.replace(acc, pe=dataclasses.replace(acc.pe, signed_act=signed))
    wb, ab = (2, 3) if kind == "serial_both" else (6, 5)   # link-bound: the core keeps one element per word
    wm = Layer("wm", "conv2d", 3, 4, 4, 4, 3, 3, 1, 1, 1, 1, weight_bits=wb, act_bits=ab, out_bits=bits - 1)
    cases: list[tuple[Layer, LayerMapping | None]] = [
        (_conv("w3", 3, 4, 5, 5, 3, 1, 1, bits=bits), LayerMapping("w3", "ws", Tile(1, 4, 3, 5, 5))),
        (_conv("w1", 3, 5, 3, 3, 1, 1, 0, bits=bits), LayerMapping("w1", "ws", Tile(1, 5, 3, 3, 3))),
        (_conv("wt", 2, 5, 6, 4, 3, 2, 1, bits=bits), LayerMapping("wt", "ws", Tile(1, 3, 2, 2, 2))),
        (_conv("o3", 3, 4, 5, 5, 3, 1, 1, bits=bits), None),
        (wm, LayerMapping("wm", "ws", Tile(1, 4, 3, 4, 4))),
    ]
    assert _run(acc, cases, seed=5) == []


def test_ws_parallel_ofmap_ports() -> None:
    """parallel WS read-modify-writes sc partial sums every cycle. The core's ofmap banks take one read
    and one write per cycle (simple dual port), and so does the engine's port rule: no port stall, and
    every count equal."""
    acc = dataclasses.replace(_acc("parallel", 2, 3, 8, 1.0, banks=(2, 6, 3)), dataflows=("os", "ws"))
    layer = _conv("w3", 3, 4, 5, 5, 3, 1, 1)
    mp = LayerMapping("w3", "ws", Tile(1, 4, 3, 5, 5))
    assert simulate_layer(layer, mp, acc).port_stall_cycles == 0
    assert _run(acc, [(layer, mp)], seed=5) == []


def test_ws_short_folds_wait_only_for_the_rest_of_the_next_folds_weights() -> None:
    """WS with one filter bank on a 4x4 array: a full fold's 16 weights take 16 cycles to stage, while a
    bit-serial step is 8. The core loads the next fold's weights from the cycle after a fold starts (lane
    r*4 + c for PE (r, c), up to the fold's last used PE), so a fold of one pixel makes the next wait the
    rest (hwsim.engine.operand_wait_cycles), a fold of two pixels none; a linear layer of 14 = 4+4+4+2
    reduction rows and 3 of 4 columns ends its loads at PE 14 and PE 6. All twelve counts equal."""
    acc = dataclasses.replace(_acc("serial_act", 4, 4, 8, 4.0, banks=(4, 1, 4)), dataflows=("os", "ws"))
    acc = dataclasses.replace(acc, ofmap_sram=dataclasses.replace(acc.ofmap_sram, packed=False))
    fc = Layer("fc", "linear", 14, 10, weight_bits=8, act_bits=8, out_bits=8)
    cases: list[tuple[Layer, LayerMapping | None]] = [
        (fc, LayerMapping("fc", "ws", Tile(1, 3, 14, 1, 1), "npqcm")),
        (_conv("ds", 6, 7, 8, 8, 1, 2, 0), LayerMapping("ds", "ws", Tile(1, 7, 6, 2, 1), "nmcpq")),
        (_conv("c3", 3, 5, 5, 5, 3, 1, 1), LayerMapping("c3", "ws", Tile(1, 5, 3, 1, 2), "nmcpq")),
    ]
    # a tile of fc: its first fold waits 15 - 1 cycles, the next two 15 - 1 - 8, the 2-row fold (PE 6) none
    ext = {d: np.array([v]) for d, v in zip("nmcpq", (1, 3, 14, 1, 1), strict=True)}
    assert tile_costs(fc, Dataflow.WS, acc, ext)["wload"].tolist() == [14 + 2 * 6]
    assert _run(acc, cases, seed=1) == []


def test_stepped_addresses_across_images_groups_and_folds() -> None:
    """The fetch addresses are moved on by strides (rtl.program.IFMAP_STRIDES; filter and partial-sum
    addresses by K and P per column fold), not multiplied out: a 3x4 array with one ifmap and one filter
    bank (the lanes read in groups), two images in one tile (the image stride), tiles cut at the input's
    edge (the first pixel's offset), several row and column folds, OS and WS."""
    acc = dataclasses.replace(_acc("serial_act", 3, 4, 8, 2.0, banks=(1, 1, 4)), dataflows=("os", "ws"))
    cases: list[tuple[Layer, LayerMapping | None]] = [
        (_conv("on", 2, 9, 4, 5, 3, 1, 1, batch=2), LayerMapping("on", "os", Tile(2, 9, 2, 4, 5))),
        (_conv("ot", 2, 5, 7, 6, 3, 2, 1), LayerMapping("ot", "os", Tile(1, 5, 2, 2, 2), loop_order="npqmc")),
        (_conv("wn", 2, 9, 4, 4, 3, 1, 1, batch=2), LayerMapping("wn", "ws", Tile(2, 9, 2, 4, 4))),
        (_conv("wt", 3, 6, 7, 5, 3, 2, 0), LayerMapping("wt", "ws", Tile(1, 6, 3, 2, 1), "nmcpq")),
    ]
    assert _run(acc, cases, seed=3) == []


def test_descriptor_fields_are_as_wide_as_the_buffers_need() -> None:
    """Counts and addresses take the bits of the largest buffer half's word count, extents and coordinates
    at least 12; a layer input wider than that is refused by name before anything runs."""
    acc = _acc("serial_act", 2, 3, 8, 1.0)
    core = CoreParams.from_accelerator(acc)
    assert core.cnt_bits == max(g.words_per_half for g in (core.ifmap, core.filter, core.ofmap)).bit_length() == 11
    assert core.dim_bits == 12
    fields = dict((n, b) for n, b, _ in core.descriptor_fields())
    assert fields["P"] == fields["K"] == fields["s0_count"] == 11 and fields["in_w"] == 12 and fields["gx0"] == 13
    wide = _conv("wide", 1, 1, 1, 4096, 1, 1, 0)
    with pytest.raises(ValueError, match=r"^Layer\['wide'\]: descriptor\.in_w must fit 12 bits, not 4096 "):
        compile_layer(core, wide, default_mapping(wide, acc), acc)
    narrow = _conv("narrow", 1, 1, 1, 4095, 1, 1, 0)
    assert compile_layer(core, narrow, default_mapping(narrow, acc), acc).descriptors()


def test_counts_past_the_counters_are_refused() -> None:
    """The core's event counters are 32 bits: a layer whose cycle bound could carry a count past them is
    refused (a buffer makes at most one access per port per half and cycle)."""
    from rtl.program import COUNTER_BITS, check_counts

    acc = _acc("serial_act", 2, 3, 8, 1.0)
    core = CoreParams.from_accelerator(acc)
    layer = Layer("fc", "linear", 12, 5, weight_bits=8, act_bits=8, out_bits=8)
    prog = compile_layer(core, layer, default_mapping(layer, acc), acc)
    check_counts(core, prog, 10**6)
    limit = (1 << COUNTER_BITS) // (2 * 3)   # the filter buffer: 3 ports per half
    check_counts(core, prog, limit - 1)
    with pytest.raises(ValueError, match=r"^Layer\['fc'\]: its filter_sram_reads may reach \d+, past the core's 32-bit"):
        check_counts(core, prog, limit + 1)


def test_ws_with_fewer_ofmap_banks_than_columns_is_refused_with_what_runs() -> None:
    """WS writes one partial sum per used column and cycle, so the core needs that many ofmap banks; the
    engine would cost the tile with port stalls (and the mapper may pick it), the compiler refuses it with
    one line naming the layer, the limit and what does run."""
    acc = dataclasses.replace(_acc("serial_act", 2, 4, 8, 1.0, banks=(1, 1, 1)), dataflows=("os", "ws"))
    core = CoreParams.from_accelerator(acc)
    layer = _conv("w3", 3, 4, 5, 5, 3, 1, 1)
    with pytest.raises(ValueError, match=r"^Layer\['w3'\]: WS needs 4 ofmap ports \(one partial sum per column and "
                                         r"cycle\), the core has 1 \(ofmap_sram\.banks times the partial sums a packed "
                                         r"word holds; a WS tile of tile\.m <= 1, or OS, runs\)$"):
        compile_layer(core, layer, LayerMapping("w3", "ws", Tile(1, 4, 3, 5, 5)), acc)
    assert _run(acc, [(layer, LayerMapping("w3", "ws", Tile(1, 1, 3, 5, 5)))], seed=1) == []


def test_core_tiles_is_what_compile_layer_accepts() -> None:
    """The mapper's filter for the core (``rtl.program.core_tiles``, ``hwsim map --for-rtl``) against the
    compiler's own refusals, tile by tile: among tiles that fit the engine's buffers, a tile is kept exactly
    when ``compile_layer`` accepts it (split reductions, fold steps past max_steps, words past a buffer half
    in the core's one-element-per-word storage, WS wider than the ofmap's banks, an OS drain slower than a
    fold), in each dataflow."""
    from hwsim.fast import tiles_fit
    from rtl.program import core_tiles

    acc = dataclasses.replace(_acc("parallel", 2, 4, 8, 1.0, banks=(1, 1, 2), acc_bits=24), dataflows=("os", "ws"))
    acc = dataclasses.replace(acc, ofmap_sram=BufferSpec(1536, 24, 2))
    core = CoreParams.from_accelerator(acc)
    rng = np.random.default_rng(5)
    layers = [_conv("c3", 3, 6, 7, 7, 3, 1, 1), _conv("s2", 4, 5, 9, 8, 3, 2, 1), _conv("p1", 1, 6, 5, 5, 1, 1, 0),
              _conv("wo", 2, 8, 8, 8, 3, 1, 1),
              Layer("fc", "linear", 300, 7, weight_bits=8, act_bits=8, out_bits=8)]
    kept = 0
    reasons: set[str] = set()
    for layer in layers:
        whole = np.array([layer.batch, layer.out_channels, layer.in_channels, layer.out_h, layer.out_w])
        tiles = np.unique(rng.integers(1, whole + 1, (400, 5)), axis=0)
        tiles[: len(tiles) // 2, 2] = whole[2]     # half with the whole reduction, the only ones that can run
        tiles = tiles[tiles_fit(layer, acc, tiles)]
        for flow in (Dataflow.OS, Dataflow.WS):
            mask = core_tiles(core, layer, flow, tiles)
            for t, ok in zip(tiles, mask, strict=True):
                try:
                    compile_layer(core, layer, LayerMapping(layer.name, flow.value, Tile(*map(int, t))), acc)
                    accepted = True
                except ValueError as exc:
                    accepted = False
                    reasons |= {r for r in ("whole reduction", "max_steps", "words of", "WS needs", "drain a fold")
                                if r in str(exc)}
                assert accepted == bool(ok), (layer.name, flow, t)
                kept += accepted
    assert kept > 50 and reasons == {"whole reduction", "max_steps", "words of", "WS needs", "drain a fold"}
