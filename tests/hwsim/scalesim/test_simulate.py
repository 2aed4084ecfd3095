"""``hwsim.scalesim.simulate``: which path each layer takes, and the progress hook."""

from __future__ import annotations

import gc

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


@pytest.mark.parametrize("user", [False, True])
@pytest.mark.parametrize("flow", list(Dataflow))
def test_a_layer_leaves_no_reference_cycles(flow: Dataflow, user: bool) -> None:
    """A 3x3 layer (overlapping windows) and a 7x7 stem of 3 channels (folds of more window indices than
    channels), CALC and USER mode: nothing the layer built is left to the cyclic garbage collector (a
    closure that calls itself held a layer's fold patterns, a few MB, until the collector ran, and the
    next layer faulted fresh pages in)."""
    cfg = ScaleSimConfig("r", 8, 8, 4, 4, 4, flow, user_bandwidth=user, bandwidths=(8,) if user else ())
    layers = [Layer("c3", LayerKind.CONV2D, in_channels=16, out_channels=16, in_h=20, in_w=20, kernel_h=3, kernel_w=3),
              Layer("stem", LayerKind.CONV2D, in_channels=3, out_channels=8, in_h=40, in_w=40, kernel_h=7, kernel_w=7,
                    stride_h=2, stride_w=2)]
    for la in layers:   # once first: what a first call sets up once (imports, signatures) is not the layer's
        simulate_layer(la, cfg)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for la in layers:
            simulate_layer(la, cfg)
        gc.collect()
        left = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not left, sorted({type(o).__qualname__ for o in left})
