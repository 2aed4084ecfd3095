"""A model trained by ``hwsim train`` on the generated accelerator core (``hwsim rtl run --network MODEL.pt``).

Every quantized conv / linear layer's integer accumulators are computed by the RTL core, from the model's
own integer weights and activation codes (``quant.intnet``), for a batch of test samples at once; the
float scales, batch norm, clips, pooling and the activation quantizers between those layers run on the
host with the model's own modules, as ``hwsim verify`` runs them (``quant.intnet.verify`` with the core as
its MAC backend). So the core writes each layer's raw accumulators back (``out_bits = pe.acc_bits``, no
shift): the requantisation to the next layer's codes is the model's float quantizer, which a shift and
clip cannot reproduce. Activation codes are unsigned; the core runs them in its unsigned mode.

For each layer: the core's accumulators against ``hwsim.golden``'s, and the twelve counts against
``hwsim.simulate`` of the same (batched) layer and mapping; then the predictions against the model's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.engine import simulate_layer
from hwsim.network import Layer, Network
from hwsim.schedule import LayerMapping, Schedule
from rtl.program import CoreParams, LayerProgram, compile_layer, core_mapping

from .core_runner import cycle_limit, model_counts, rtl_accesses, rtl_counts, run_layers

if TYPE_CHECKING:
    from quant.export import TrainedModel

__all__ = ["CoreLayerRow", "TrainedRun", "core_programs", "run_trained"]


@dataclass(frozen=True, slots=True)
class CoreLayerRow:
    """One layer (one integer term) of the model on the core."""

    name: str
    rtl: dict[str, float]
    model: dict[str, float]
    outputs_match_golden: bool
    accesses: dict[str, int]
    seconds: float


@dataclass(frozen=True, slots=True)
class TrainedRun:
    """The model's test predictions with the core's accumulators against the model's own."""

    samples: int
    agree: int
    agree_float32: int
    layers: tuple[CoreLayerRow, ...]
    accumulators_exact: bool

    @property
    def ok(self) -> bool:
        return self.agree == self.samples and self.accumulators_exact and \
            all(r.outputs_match_golden for r in self.layers)


def _batched(layer: Layer, batch: int, acc: Accelerator) -> Layer:
    """The network's layer for ``batch`` samples at once, writing raw ``acc_bits`` accumulators."""
    return dataclasses.replace(layer, batch=batch, out_bits=acc.pe.acc_bits)


def _mapping(core: CoreParams, layer: Layer, acc: Accelerator, schedule: Schedule | None) -> LayerMapping:
    if schedule is None:
        return core_mapping(core, layer, acc)
    m = schedule.mapping_for(layer.name)
    return m if m.tile.n <= layer.batch else dataclasses.replace(m, tile=dataclasses.replace(m.tile, n=layer.batch))


def core_programs(network: Network, acc: Accelerator, samples: int,
                  schedule: Schedule | None = None) -> dict[str, LayerProgram]:
    """The network's MAC layers compiled for the core as it runs them (``samples`` at once, raw
    accumulators, unsigned activation codes), by layer name; a layer the core cannot execute raises
    ``ValueError`` (one line naming the layer and the limit) before anything is built."""
    core = CoreParams.from_accelerator(acc)
    out = {}
    for la in network.layers:
        if la.has_macs:
            b = _batched(la, samples, acc)
            out[la.name] = compile_layer(core, b, _mapping(core, b, acc, schedule), acc, act_signed=False,
                                         out_signed=True)
    return out


def run_trained(sim: str, acc: Accelerator, trained: TrainedModel, x: Any, schedule: Schedule | None = None,
                build_root: Path | None = None, log: Callable[[str], None] = print,
                driver: str | None = None, pgo: bool = False) -> TrainedRun:
    """Classify the rows of ``x`` (a float tensor of test inputs) with every integer layer of ``trained``
    (``quant.export.load_trained``) on the core (``driver``, ``pgo``: as :func:`sims.tb.core_runner.run_layers`)."""
    from quant.intnet import verify

    model, ints, model_path = trained.model, trained.stages, trained.path
    if len(ints) != 1:
        raise ValueError(f"rtl run.network must be a plain (one-stage) model for the RTL core, not a {len(ints)}-stage "
                         f"cascade ({str(model_path)!r})")
    for rec in ints[0]:
        if not rec["integer"]:
            raise ValueError(f"rtl run: layer {rec['name']!r} of {str(model_path)!r} is full precision (no integer "
                             f"form for the RTL core)")
    n = int(x.shape[0])
    programs = core_programs(trained.network, acc, n, schedule)
    rows: list[CoreLayerRow] = []

    def on_core(rec: dict[str, Any], a: np.ndarray, w: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        prog = programs.get(rec["name"])
        if prog is None:
            raise ValueError(f"rtl run: layer {rec['name']!r} of the model is not in its exported network")
        la = prog.layer
        res = simulate_layer(la, prog.mapping, acc)
        x4 = a.reshape(la.batch, la.in_channels, la.in_h, la.in_w)
        run = run_layers(sim, acc, [(prog, x4, w)], build_root=build_root,
                         max_cycles=cycle_limit([res]), driver=driver, pgo=pgo)
        got = run.layers[0]
        ok = bool((got.written == 1).all() and not got.incomplete_transfers)
        rows.append(CoreLayerRow(la.name, rtl_counts(got.counters, la, acc), model_counts(res), ok,
                                 rtl_accesses(got.counters), time.perf_counter() - t0))
        log(f"   {la.name}: {n} samples, {got.counters['cycles']:,} cycles on the core "
            f"({time.perf_counter() - t0:.1f} s)")
        return got.y.reshape((la.batch, la.out_channels) if rec["kind"] == "linear" else got.y.shape)

    res = verify(model, ints, x, acc_bits=acc.pe.acc_bits, batch_size=n, mac=on_core)
    same = {c.name: c.backend_ok for c in res.layers}
    done = [dataclasses.replace(r, outputs_match_golden=r.outputs_match_golden and same[r.name]) for r in rows]
    return TrainedRun(res.samples, res.agree, res.agree_float32, tuple(done), res.exact)
