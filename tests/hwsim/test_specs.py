"""Specs reject bad values with `<Owner>.<field> must be <rule>, not <value!r>`."""

import dataclasses

import pytest

from hwsim import Accelerator, BufferSpec, Dataflow, Layer, LayerKind, Network, PEKind, PESpec, Stage
from hwsim.energy import EnergyTable, sram_access_pj
from hwsim.kinds import mac_pj


def conv(name: str = "c", **kw: object) -> Layer:
    base: dict[str, object] = dict(kind="conv2d", in_channels=4, out_channels=8, in_h=6, in_w=6, kernel_h=3,
                                   kernel_w=3, pad_h=1, pad_w=1)
    base.update(kw)
    return Layer(name, **base)  # type: ignore[arg-type]


def test_pe_spec_rules() -> None:
    with pytest.raises(ValueError, match=r"^PESpec\.max_act_bits must be an integer in \[1, 32\], not 0$"):
        PESpec(max_act_bits=0)
    with pytest.raises(TypeError, match=r"^PESpec\.max_weight_bits must be an integer in \[1, 32\], "
                                        r"not 8\.5$"):
        PESpec(max_weight_bits=8.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^PESpec\.acc_bits must be >= max_weight_bits \+ max_act_bits = "
                                         r"32, not 24$"):
        PESpec(max_weight_bits=16, max_act_bits=16, acc_bits=24)
    with pytest.raises(ValueError, match=r"^PESpec\.kind must be one of \['parallel', 'serial_act', "
                                         r"'serial_both', 'fusion'\], not 'quantum'$"):
        PESpec(kind="quantum")  # type: ignore[arg-type]
    assert PESpec(kind="serial_act").kind is PEKind.SERIAL_ACT  # type: ignore[arg-type]


def test_accelerator_rules() -> None:
    with pytest.raises(ValueError, match=r"^Accelerator\.rows must be an integer in \[1, 4096\], not -4$"):
        Accelerator("a", -4, 4)
    with pytest.raises(ValueError, match=r"^BufferSpec\.size_bytes must be an integer >= 1, not -1$"):
        BufferSpec(-1)
    with pytest.raises(ValueError, match=r"^Accelerator\.dataflows must be a non-empty list of \['os', 'ws', "
                                         r"'is'\], not \(\)$"):
        Accelerator("a", 4, 4, dataflows=())
    with pytest.raises(ValueError, match=r"^Accelerator\.dataflows must not repeat a dataflow, "
                                         r"not \['os', 'os'\]$"):
        Accelerator("a", 4, 4, dataflows=("os", "os"))  # type: ignore[arg-type]
    a = Accelerator("a", 4, 4, dataflows=("ws",))  # type: ignore[arg-type]
    assert a.dataflows == (Dataflow.WS,)
    b = dataclasses.replace(a, rows=8)
    assert b.num_pes == 32 and a.num_pes == 16


def test_layer_shapes_and_counts() -> None:
    la = conv(stride_h=2, stride_w=2)
    assert (la.out_h, la.out_w) == (3, 3)
    assert la.gemm == (1, 9, 36, 8)
    assert la.macs == 9 * 36 * 8
    dw = conv(in_channels=8, groups=8)
    assert dw.gemm == (8, 36, 9, 1)
    assert dw.weight_count == 8 * 9
    fc = Layer("fc", LayerKind.LINEAR, 64, 10, batch=4)
    assert fc.gemm == (1, 4, 64, 10) and fc.macs == 2560


def test_layer_rules() -> None:
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.groups must divide in_channels=4 and "
                                         r"out_channels=8, not 3$"):
        conv(groups=3)
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.weight_bits must be an integer in \[1, 32\], "
                                         r"not 0$"):
        conv(weight_bits=0)
    with pytest.raises(ValueError, match=r"^Layer\['fc'\]\.in_h/in_w/kernel_h/kernel_w must be 1 for a "
                                         r"linear layer, not \(2, 1, 1, 1\)$"):
        Layer("fc", LayerKind.LINEAR, 8, 8, in_h=2)
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.kernel_h/kernel_w must fit the padded input 6x8, "
                                         r"not 9x3$"):
        conv(kernel_h=9, pad_h=0)
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.channel_weight_bits must have out_channels=8 "
                                         r"entries, not 2$"):
        conv(channel_weight_bits=(4, 4))
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.weight_bits must equal "
                                         r"max\(channel_weight_bits\)=4, not 8$"):
        conv(channel_weight_bits=(4,) * 8, weight_bits=8)


def test_per_channel_bits_memory_and_groups() -> None:
    cwb = (2, 4, 4, 8, 2, 2, 8, 4)
    la = conv(channel_weight_bits=cwb, weight_bits=8)
    assert la.weight_bits_total == 36 * sum(cwb)
    assert la.channel_bit_groups() == [(8, 2), (4, 3), (2, 3)]
    assert la.bops() == sum(la.gemm[1] * 36 * b * 8 for b in cwb)


def test_cascade_reach_probabilities() -> None:
    s1 = Stage("bin", (conv("a"),), exit_rate=0.6, exit_rule="confidence", threshold=0.9)
    s2 = Stage("mid", (conv("b"),), exit_rate=0.5)
    s3 = Stage("int8", (conv("c"),))
    net = Network("casc", (s1, s2, s3))
    assert net.reach_probabilities() == pytest.approx([1.0, 0.4, 0.2])
    with pytest.raises(ValueError, match=r"^Stage\['x'\]\.exit_rate must be a number in \[0\.0, 1\.0\], "
                                         r"not 1\.5$"):
        Stage("x", (conv(),), exit_rate=1.5)
    with pytest.raises(ValueError, match=r"^Network\['n'\]\.layers must have unique names, "
                                         r"not repeated \['a'\]$"):
        Network.single("n", [conv("a"), conv("a")])


def test_energy_table() -> None:
    e = EnergyTable()
    # Horowitz anchors: 8-bit mult 0.2 pJ, 32-bit mult 3.1 pJ within 5%
    assert e.mult_pj_per_bit2 * 64 == pytest.approx(0.2, rel=0.05)
    assert e.mult_pj_per_bit2 * 1024 == pytest.approx(3.1, rel=0.05)
    assert sram_access_pj(8 * 1024, 64) == pytest.approx(10.0)
    assert sram_access_pj(32 * 1024, 64) == pytest.approx(20.0)
    assert sram_access_pj(1024 * 1024, 64) == pytest.approx(100.0)
    assert sram_access_pj(32 * 1024, 128) == pytest.approx(40.0)
    par, ser = PESpec(kind=PEKind.PARALLEL), PESpec(kind=PEKind.SERIAL_ACT)
    assert mac_pj(e, ser, 8, 8) > mac_pj(e, par, 8, 8)
    assert mac_pj(e, par, 2, 2) < mac_pj(e, par, 8, 8)


def test_connected_layers_must_agree() -> None:
    a = conv("a")  # 8 x 6 x 6 out
    ok = conv("b", in_channels=8, inputs=("a",))
    add = Layer("add", LayerKind.ELTWISE, 8, 8, 6, 6, inputs=("a", "b"))
    fc = Layer("fc", LayerKind.LINEAR, 8 * 36, 10, inputs=("add",))
    assert Network.single("n", [a, ok, add, fc]).layers[-1].inputs == ("add",)
    with pytest.raises(ValueError, match=r"^Layer\['b'\] input shape must match input 8x6x6 \(output of "
                                         r"'a'\), not 4x6x6$"):
        Network.single("n", [a, conv("b", inputs=("a",))])
    with pytest.raises(ValueError, match=r"^Layer\['fc'\] input shape must match in_channels=288 \(flattened "
                                         r"'a'\), not 100x1x1$"):
        Network.single("n", [a, Layer("fc", LayerKind.LINEAR, 100, 10, inputs=("a",))])
    with pytest.raises(ValueError, match=r"^Layer\['b'\]\.inputs must name earlier layers, not 'zz'$"):
        Network.single("n", [a, conv("b", in_channels=8, inputs=("zz",))])
