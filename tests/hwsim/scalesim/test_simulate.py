"""``hwsim.scalesim.simulate``: which path each layer takes, and the progress hook."""

from __future__ import annotations

import pytest

import hwsim
from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, simulate_layer, simulate_topology
from hwsim.scalesim import simulate as sim


def refuse(*args: object, **kwargs: object) -> object:
    raise AssertionError("the streamed read buffer ran")


def as_scalesim(la: Layer) -> Layer:
    """A ResNet-18 layer as SCALE-Sim's topology row gives it back (padding in the input, fc a 1x1 conv)."""
    if la.kind is LayerKind.LINEAR:
        return Layer(la.name, LayerKind.CONV2D, la.in_channels, la.out_channels)
    return Layer(la.name, LayerKind.CONV2D, la.in_channels, la.out_channels, in_h=la.in_h + 2 * la.pad_h,
                 in_w=la.in_w + 2 * la.pad_w, kernel_h=la.kernel_h, kernel_w=la.kernel_w, stride_h=la.stride_h,
                 stride_w=la.stride_w)


@pytest.mark.parametrize("flow", list(Dataflow))
def test_every_resnet18_layer_takes_a_fast_path(monkeypatch: pytest.MonkeyPatch, flow: Dataflow) -> None:
    """The 7x7 stem, the 3x3 layers (overlapping windows), the strided 1x1 layers and the classifier, in
    every dataflow: no read buffer is fed by the streamed reference."""
    monkeypatch.setattr(sim, "stream_read_buffer", refuse)
    cfg = ScaleSimConfig("r", 16, 16, 64, 64, 64, flow)
    layers = [la for la in hwsim.resolve_network("resnet18").layers
              if la.kind in (LayerKind.CONV2D, LayerKind.LINEAR)]
    assert any(la.kernel_h == 7 for la in layers) and any(la.kernel_h == 3 for la in layers)
    for la in layers:
        assert simulate_layer(as_scalesim(la), cfg).total_cycles > 0


@pytest.mark.parametrize("flow", list(Dataflow))
def test_a_gemm_takes_the_closed_forms(monkeypatch: pytest.MonkeyPatch, flow: Dataflow) -> None:
    """A GEMM's input rows are disjoint windows (one output column): no buffer is fed demand by demand."""
    monkeypatch.setattr(sim, "stream_read_buffer", refuse)
    rep = simulate_layer(Layer("g", LayerKind.LINEAR, in_channels=700, out_channels=300, batch=900),
                         ScaleSimConfig("r", 8, 8, 1, 1, 1, flow))
    assert rep.ifmap_dram_reads >= 700 * 900   # the input, larger than a window, fetched once or more


def test_progress_hook_counts_layers_and_drains() -> None:
    cfg = ScaleSimConfig("r", 4, 4, 1, 1, 1, Dataflow.WS)
    layers = (Layer("a", LayerKind.LINEAR, in_channels=64, out_channels=64, batch=2000),
              Layer("b", LayerKind.LINEAR, in_channels=8, out_channels=8, batch=8))
    seen: list[float] = []
    reports = simulate_topology(layers, cfg, progress=seen.append)
    assert [r.layer for r in reports] == ["a", "b"]
    assert seen == sorted(seen) and seen[-1] == 2.0 and 1.0 in seen
    assert any(0.0 < x < 1.0 for x in seen)   # layer a drains often enough to report within itself
