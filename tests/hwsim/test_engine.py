"""The engine: hand-computed folds, bit-serial scaling, stalls, per-channel precision, cascades, errors."""

import dataclasses

import pytest

import hwsim
from hwsim import (
    Accelerator,
    BufferSpec,
    Dataflow,
    DRAMSpec,
    Layer,
    LayerKind,
    LayerMapping,
    Network,
    PESpec,
    Tile,
)
from hwsim.engine import simulate_layer


def acc(kind: str = "parallel", rows: int = 4, cols: int = 4, flows: tuple[str, ...] = ("os", "ws", "is"),
        bw: float = 1e6, inter: str = "systolic", size: int = 1 << 20) -> Accelerator:
    return Accelerator("t", rows, cols, PESpec(kind=kind, max_weight_bits=8, max_act_bits=8),  # type: ignore[arg-type]
                       dataflows=flows, interconnect=inter,  # type: ignore[arg-type]
                       ifmap_sram=BufferSpec(size), filter_sram=BufferSpec(size), ofmap_sram=BufferSpec(size),
                       dram=DRAMSpec(bw))


def fc(p: int, k: int, n: int, **kw: object) -> Layer:
    return Layer("fc", LayerKind.LINEAR, k, n, batch=p, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("flow,folds,steps", [("os", 2 * 1, 5), ("ws", 2 * 1, 8), ("is", 2 * 2, 4)])
def test_fold_counts_by_hand(flow: str, folds: int, steps: int) -> None:
    """P=8, K=5, N=4 on 4x4: OS folds ceil(8/4)*ceil(4/4)=2 of T=K=5; WS ceil(5/4)*1=2 of T=P=8;
    IS ceil(5/4)*ceil(8/4)=4 of T=N=4. Systolic overhead per fold 2R+C-2 = 10."""
    a = acc()
    la = fc(8, 5, 4)
    r = simulate_layer(la, LayerMapping("fc", Dataflow(flow), Tile.whole(la)), a)
    assert r.folds == folds
    assert r.compute_cycles == folds * steps
    assert r.fill_cycles == folds * 10
    assert r.macs == 160
    assert 0 < r.mapping_efficiency <= 1


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_serial_act_scales_as_act_bits(bits: int) -> None:
    a = acc("serial_act", 8, 8, ("os",), inter="broadcast")
    la = Layer("c", LayerKind.CONV2D, 16, 16, 8, 8, 3, 3, pad_h=1, pad_w=1, act_bits=bits)
    base = Layer("c", LayerKind.CONV2D, 16, 16, 8, 8, 3, 3, pad_h=1, pad_w=1, act_bits=1)
    r = hwsim.simulate(Network.single("n", [la]), a).layers[0]
    r1 = hwsim.simulate(Network.single("n", [base]), a).layers[0]
    assert r.compute_cycles == bits * r1.compute_cycles
    assert r.fill_cycles == r1.fill_cycles  # fill/drain does not scale, and is reported apart


@pytest.mark.parametrize("w,a_", [(1, 1), (2, 4), (8, 8), (3, 5)])
def test_serial_both_scales_as_product(w: int, a_: int) -> None:
    a = acc("serial_both", 8, 8, ("os",), inter="broadcast")
    mk = lambda wb, ab: Layer("c", LayerKind.CONV2D, 16, 16, 8, 8, 3, 3, weight_bits=wb, act_bits=ab)  # noqa: E731
    r = hwsim.simulate(Network.single("n", [mk(w, a_)]), a).layers[0]
    r1 = hwsim.simulate(Network.single("n", [mk(1, 1)]), a).layers[0]
    assert r.compute_cycles == w * a_ * r1.compute_cycles


def test_fusion_throughput() -> None:
    a = acc("fusion", 8, 8, ("os",))
    mk = lambda b: fc(64, 64, 8, weight_bits=b, act_bits=b)  # noqa: E731
    c8 = hwsim.simulate(Network.single("n", [mk(8)]), a).layers[0].compute_cycles
    c4 = hwsim.simulate(Network.single("n", [mk(4)]), a).layers[0].compute_cycles
    c2 = hwsim.simulate(Network.single("n", [mk(2)]), a).layers[0].compute_cycles
    assert c8 == 4 * c4 and c4 == 4 * c2


def test_bandwidth_starved_layer_stalls_and_energy_adds_up() -> None:
    la = Layer("c", LayerKind.CONV2D, 32, 32, 16, 16, 3, 3, pad_h=1, pad_w=1)
    fast = hwsim.simulate(Network.single("n", [la]), acc(bw=1e6)).layers[0]
    slow = hwsim.simulate(Network.single("n", [la]), acc(bw=0.05)).layers[0]
    assert fast.stall_cycles - fast.port_stall_cycles <= 2  # no DRAM stall; the 64-bit ports still fill
    assert fast.port_stall_cycles > 0
    assert slow.stall_cycles > slow.compute_cycles
    assert slow.compute_cycles == fast.compute_cycles
    # all DRAM bytes move at 0.05 B/cycle, so the layer cannot be shorter than that
    dram = slow.traffic.dram_read_bytes + slow.traffic.dram_write_bytes
    assert slow.total_cycles >= dram / 0.05
    e = slow.energy
    assert e.total_pj == pytest.approx(e.mac_pj + e.sram_pj + e.dram_pj + e.noc_pj + e.scale_pj + e.leakage_pj)
    assert slow.energy.leakage_pj > fast.energy.leakage_pj


def test_tiling_traffic_follows_loop_order() -> None:
    """Splitting input channels with c outermost spills partial sums; with c innermost it does not."""
    la = Layer("c", LayerKind.CONV2D, 64, 64, 8, 8, 3, 3, pad_h=1, pad_w=1)
    a = acc()
    t = Tile(1, 16, 16, 8, 8)
    inner = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, "nmpqc"), a)
    outer = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, "cnmpq"), a)
    assert inner.compute_cycles == outer.compute_cycles
    assert outer.traffic.dram_write_bytes > inner.traffic.dram_write_bytes
    assert inner.traffic.dram_write_bytes == la.ofmap_count  # 8-bit outputs written once
    whole = simulate_layer(la, LayerMapping("c", Dataflow.OS, Tile.whole(la)), a)
    assert whole.traffic.dram_read_bytes == la.ifmap_count + la.weight_count


def test_grouped_precision_beats_naive_on_serial_both() -> None:
    cwb = tuple([8, 2, 2, 2] * 8)
    la = Layer("c", LayerKind.CONV2D, 16, 32, 8, 8, 3, 3, pad_h=1, pad_w=1, weight_bits=8, channel_weight_bits=cwb)
    a = acc("serial_both", 8, 8, ("os",), inter="broadcast")
    t = Tile(1, 8, 16, 8, 8)
    g = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, grouping="grouped"), a)
    n = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, grouping="naive"), a)
    uni = simulate_layer(dataclasses.replace(la, channel_weight_bits=None), LayerMapping("c", Dataflow.OS, t), a)
    assert g.compute_cycles < n.compute_cycles == uni.compute_cycles
    # 8 channels at 8 bits + 24 at 2 bits against 32 at 8 bits
    assert g.compute_cycles == pytest.approx(uni.compute_cycles * (8 * 8 + 24 * 2) / (32 * 8), rel=0.01)


def test_cascade_expected_and_worst_case() -> None:
    net = hwsim.resolve_network("cascade_digits")
    res = hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial"))
    s1, s2 = res.stages
    assert res.cycles == s1.cycles + s2.cycles
    assert res.expected_cycles == pytest.approx(s1.cycles + 0.3 * s2.cycles)
    assert res.expected_energy.total_pj == pytest.approx(s1.energy.total_pj + 0.3 * s2.energy.total_pj)
    # the binary stage runs 1-bit activations: far fewer cycles than the 8-bit stage
    assert s1.cycles < s2.cycles / 3


def test_bad_inputs_name_the_field() -> None:
    a = acc(size=8)
    la = Layer("big", LayerKind.CONV2D, 64, 64, 8, 8, 3, 3)
    with pytest.raises(ValueError, match=r"^Layer\['big'\]: buffers too small to hold even a 1x1x1x1x1 tile: "
                                         r"needs 9 bytes of ifmap_sram per buffer half, but "
                                         r"ifmap_sram\.size_bytes=8 holds 4 per half \(double buffering\)$"):
        hwsim.simulate(Network.single("n", [la]), a)
    with pytest.raises(ValueError, match=r"^Layer\['x'\]\.act_bits must be an integer in \[1, 8\], not 16$"):
        hwsim.simulate(Network.single("n", [Layer("x", LayerKind.LINEAR, 4, 4, act_bits=16)]), acc())
    small = Layer("s", LayerKind.CONV2D, 4, 4, 4, 4, 3, 3)
    with pytest.raises(ValueError, match=r"^LayerMapping\['s'\]\.tile\.m must be an integer in \[1, 4\], "
                                         r"not 9$"):
        simulate_layer(small, LayerMapping("s", Dataflow.OS, Tile(1, 9, 4, 2, 2)), acc())
    with pytest.raises(ValueError, match=r"^LayerMapping\['s'\]\.dataflow must be one of the accelerator's "
                                         r"\['os'\], not 'ws'$"):
        simulate_layer(small, LayerMapping("s", Dataflow.WS, Tile(1, 4, 4, 2, 2)), acc(flows=("os",)))
    with pytest.raises(ValueError, match=r"^LayerMapping\['s'\]\.loop_order must be a permutation of "
                                         r"'nmcpq', not 'nmcp'$"):
        LayerMapping("s", Dataflow.OS, Tile(1, 1, 1, 1, 1), loop_order="nmcp")


def test_resnet18_totals_are_consistent() -> None:
    net = hwsim.resolve_network("resnet18")
    res = hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial"))
    assert res.macs == net.macs == pytest.approx(1.81e9, rel=0.02)  # ResNet-18's well-known 1.8 GMACs
    assert res.cycles == sum(la.total_cycles for la in res.layers)
    assert all(0 <= la.utilisation <= 1 for la in res.layers)
    # 256 PEs at 8 cycles per 8-bit MAC: compute can never beat MACs*8/256
    assert res.cycles >= net.macs * 8 / 256


def test_per_channel_memory_counts_stored_widths_on_serial_act() -> None:
    """On a Stripes-style array weight widths do not change cycles: naive order runs like the uniform layer,
    but DRAM carries each filter at its own width; grouping would only fragment the folds."""
    cwb = tuple([8, 2, 2, 2] * 8)
    la = Layer("c", LayerKind.CONV2D, 16, 32, 8, 8, 3, 3, pad_h=1, pad_w=1, weight_bits=8, channel_weight_bits=cwb)
    a = acc("serial_act", 8, 8, ("os",), inter="broadcast")
    uni = dataclasses.replace(la, channel_weight_bits=None)
    t = Tile(1, 32, 16, 8, 8)
    naive = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, grouping="naive"), a)
    grouped = simulate_layer(la, LayerMapping("c", Dataflow.OS, t, grouping="grouped"), a)
    u = simulate_layer(uni, LayerMapping("c", Dataflow.OS, t), a)
    assert naive.compute_cycles == u.compute_cycles <= grouped.compute_cycles
    saved = u.traffic.dram_read_bytes - naive.traffic.dram_read_bytes
    assert saved == pytest.approx(la.weight_count * (8 - sum(cwb) / len(cwb)) / 8)
    assert hwsim.default_mapping(la, a).grouping == "naive"
    assert hwsim.default_mapping(la, acc("serial_both", 8, 8, ("os",))).grouping == "grouped"


def test_depthwise_per_channel_bits_keep_every_mac() -> None:
    cwb = tuple([1, 4, 8, 4] * 4)
    la = Layer("dw", LayerKind.CONV2D, 16, 16, 8, 8, 3, 3, pad_h=1, pad_w=1, groups=16, weight_bits=8,
               channel_weight_bits=cwb)
    a = acc("serial_both", 4, 4, ("os",), inter="broadcast")
    r = simulate_layer(la, hwsim.default_mapping(la, a), a)
    assert r.macs == la.macs
    one = simulate_layer(dataclasses.replace(la, channel_weight_bits=None, weight_bits=1),
                         hwsim.default_mapping(la, a), a)
    # cycles scale with each group's own width: 4 x 1 + 8 x 4 + 4 x 8 = 68 per 16 one-bit groups
    assert r.compute_cycles == pytest.approx(one.compute_cycles * (4 * 1 + 8 * 4 + 4 * 8) / 16, rel=1e-9)
