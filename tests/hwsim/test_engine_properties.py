"""Engine invariants on random layers, tiles and loop orders (hypothesis)."""

import itertools
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwsim import Accelerator, BufferSpec, Dataflow, DRAMSpec, Layer, LayerKind, LayerMapping, PESpec, Tile
from hwsim.engine import simulate_layer
from hwsim.schedule import LOOPS, tile_fits

LOOP_ORDERS = ["".join(p) for p in itertools.permutations(LOOPS)]


@st.composite
def layer_and_mapping(draw: st.DrawFn) -> tuple[Layer, LayerMapping, Accelerator]:
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 12))
    cout = groups * draw(st.integers(1, 12))
    k = draw(st.integers(1, 3))
    size = draw(st.integers(k, 9))
    la = Layer("l", LayerKind.CONV2D, cin, cout, size, size, k, k, draw(st.integers(1, 2)), draw(st.integers(1, 2)),
               pad_h=draw(st.integers(0, k // 2)), pad_w=0, groups=groups, batch=draw(st.integers(1, 2)),
               weight_bits=draw(st.integers(1, 8)), act_bits=draw(st.integers(1, 8)))
    whole = Tile.whole(la)
    tile = Tile(*(draw(st.integers(1, getattr(whole, d))) for d in LOOPS))
    acc = Accelerator("a", draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                      PESpec(kind=draw(st.sampled_from(["parallel", "serial_act", "serial_both", "fusion"]))),
                      dataflows=("os", "ws", "is"),  # type: ignore[arg-type]
                      interconnect=draw(st.sampled_from(["systolic", "broadcast"])),  # type: ignore[arg-type]
                      ifmap_sram=BufferSpec(1 << 16), filter_sram=BufferSpec(1 << 16), ofmap_sram=BufferSpec(1 << 16),
                      dram=DRAMSpec(draw(st.sampled_from([0.25, 4.0, 64.0]))))
    m = LayerMapping("l", draw(st.sampled_from(list(Dataflow))), tile, draw(st.sampled_from(LOOP_ORDERS)))
    return la, m, acc


@settings(max_examples=150, deadline=None)
@given(layer_and_mapping())
def test_invariants(case: tuple[Layer, LayerMapping, Accelerator]) -> None:
    la, m, acc = case
    assume(tile_fits(la, m.tile, acc) is None)
    r = simulate_layer(la, m, acc)
    t = r.traffic
    # compulsory traffic: every input byte and weight byte is read, every output byte written, at least once
    in_bytes = la.ifmap_count * la.act_bits / 8
    w_bytes = la.weight_count * la.weight_bits / 8
    assert t.dram_read_bytes >= w_bytes + 0.999 * in_bytes * _touched_fraction(la) - 1e-6
    assert t.dram_write_bytes >= la.ofmap_count * la.out_bits / 8 - 1e-6
    # the array cannot beat its peak throughput, and mapping efficiency is a fraction
    from hwsim.timing import pe_step
    cyc, macs = pe_step(acc.pe, la.weight_bits, la.act_bits)
    assert r.compute_cycles * acc.num_pes * macs >= la.macs * cyc
    assert 0 < r.mapping_efficiency <= 1 + 1e-12
    assert 0 < r.utilisation <= 1 + 1e-12
    assert r.stall_cycles >= math.floor((t.dram_read_bytes + t.dram_write_bytes) / acc.dram.bandwidth_bytes_per_cycle
                                        - r.compute_cycles - r.fill_cycles)
    e = r.energy
    assert min(e.mac_pj, e.sram_pj, e.dram_pj, e.leakage_pj) >= 0


def _touched_fraction(la: Layer) -> float:
    """Fraction of input pixels a strided kernel actually reads (stride > kernel skips some)."""
    used_r = len({i * la.stride_h + u - la.pad_h for i in range(la.out_h) for u in range(la.kernel_h)}
                 & set(range(la.in_h)))
    used_c = len({j * la.stride_w + v - la.pad_w for j in range(la.out_w) for v in range(la.kernel_w)}
                 & set(range(la.in_w)))
    return used_r * used_c / (la.in_h * la.in_w)


@settings(max_examples=60, deadline=None)
@given(layer_and_mapping())
def test_whole_layer_tile_reads_each_operand_once(case: tuple[Layer, LayerMapping, Accelerator]) -> None:
    la, m, acc = case
    whole = LayerMapping("l", m.dataflow, Tile.whole(la), m.loop_order)
    assume(tile_fits(la, whole.tile, acc) is None)
    r = simulate_layer(la, whole, acc)
    assert abs(r.traffic.dram_write_bytes - la.ofmap_count * la.out_bits / 8) < 1e-6
    assert r.traffic.dram_read_bytes <= (la.ifmap_count * la.act_bits + la.weight_count * la.weight_bits) / 8 + 1e-6
