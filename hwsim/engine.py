"""The cycle-approximate engine: cycles, utilisation, memory traffic and energy of every layer.

Model (docs/models.md gives the equations and their sources):

1. A layer is ``groups`` GEMMs ``(P x K) @ (K x N)``. Its loop nest ``n m c p q`` is cut into DRAM tiles
   (:class:`hwsim.schedule.Tile`), visited in ``loop_order`` with the convolution-group loop outermost.
2. Each tile is folded onto the R x C array by the dataflow (OS: rows <- P, cols <- N, time <- K;
   WS: rows <- K, cols <- N, time <- P; IS: rows <- K, cols <- P, time <- N). A fold streams T steps of
   ``pe_step`` cycles plus the interconnect's fill/drain (:mod:`hwsim.timing`).
3. Buffers are double-buffered: while tile i computes, tile i+1's new operands are loaded and tile
   i-1's outputs written back; a tile whose transfers outlast its compute stalls the array. The first
   load and the last write-back are never hidden.
4. Per-output-channel weight widths are run as precision segments: channels of equal width together
   (``grouping="grouped"``) or, naively, each tile of ``tile.m`` channels at its widest channel.

This module walks every tile (vectorised with numpy); :mod:`hwsim.fast` answers the same question in
closed form for search loops, and a test bounds how far the two may disagree.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .accelerator import Accelerator, Dataflow
from .network import Layer, LayerKind, Network
from .result import Energy, LayerResult, SimResult, StageResult, Traffic
from .schedule import LOOPS, LayerMapping, Schedule, Tile, default_schedule
from .timing import fold_overhead_cycles, pe_step

__all__ = ["simulate", "simulate_layer", "precision_segments", "tile_costs", "RELEVANT"]

# Loops each operand depends on (the convolution-group loop ``g`` is relevant to all).
RELEVANT = {"ifmap": frozenset("ncpq"), "filter": frozenset("mc"), "ofmap": frozenset("nmpq")}


Segment = tuple[int, int, tuple[int, ...] | None]
"""``(compute_bits, channels, channel_bits)``: channels run at ``compute_bits``; ``channel_bits`` are the
stored widths of those channels when they differ (memory counts them), else ``None``."""


def _mixed(bits: tuple[int, ...]) -> tuple[int, ...] | None:
    return bits if len(set(bits)) > 1 else None


def precision_segments(layer: Layer, mapping: LayerMapping) -> list[Segment]:
    """The precision segments the layer's output channels run as, one after another.

    ``grouped``: channels of equal width together. ``naive``: channel order kept, each DRAM tile of
    ``tile.m`` channels runs at its widest channel. A grouped convolution runs each convolution group at
    its widest channel (a tile never spans two groups); groups of equal width form one segment.
    """
    cwb = layer.channel_weight_bits
    if cwb is None:
        return [(layer.weight_bits, layer.out_channels, None)]
    if layer.groups > 1:
        per = layer.out_channels // layer.groups
        by_width: dict[int, list[int]] = {}
        for g in range(layer.groups):
            by_width.setdefault(max(cwb[g * per:(g + 1) * per]), []).extend(cwb[g * per:(g + 1) * per])
        return [(b, len(ch), _mixed(tuple(ch))) for b, ch in sorted(by_width.items(), reverse=True)]
    if mapping.grouping == "grouped":
        return [(b, n, None) for b, n in layer.channel_bit_groups()]
    per = mapping.tile.m
    chunks = [cwb[i:i + per] for i in range(0, len(cwb), per)]
    return [(max(ch), len(ch), _mixed(ch)) for ch in chunks]


def _segment_layer(layer: Layer, bits: int, channels: int, channel_bits: tuple[int, ...] | None = None) -> Layer:
    """The part of ``layer`` that computes ``channels`` output channels at ``bits`` weight bits."""
    if channels == layer.out_channels and channel_bits == layer.channel_weight_bits:
        return dataclasses.replace(layer, weight_bits=bits)
    g = layer.groups
    if g == 1:
        return dataclasses.replace(layer, out_channels=channels, weight_bits=bits, channel_weight_bits=channel_bits,
                                   inputs=())
    g2 = channels // (layer.out_channels // g)
    return dataclasses.replace(layer, groups=g2, in_channels=g2 * (layer.in_channels // g), out_channels=channels,
                               weight_bits=bits, channel_weight_bits=channel_bits, inputs=())


def _fold_dims(flow: Dataflow, p: np.ndarray, k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    if flow is Dataflow.OS:
        return p, n, k
    if flow is Dataflow.WS:
        return k, n, p
    return k, p, n


def tile_costs(layer: Layer, flow: Dataflow, acc: Accelerator, ext: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-tile compute/fill cycles, folds and SRAM element counts for tiles of extents ``ext``.

    ``ext`` maps each loop of ``LOOPS`` to an array of tile extents (broadcastable). Shared by the
    engine (one entry per tile) and the fast path (one entry per distinct tile shape).
    """
    R, C = acc.rows, acc.cols
    step_cycles, step_macs = pe_step(acc.pe, layer.weight_bits, layer.act_bits)
    P = ext["n"] * ext["p"] * ext["q"]
    K = ext["c"] * layer.kernel_h * layer.kernel_w
    N = ext["m"]
    sr, sc, T = _fold_dims(flow, P, K, N)
    fr, fc = -(-sr // R), -(-sc // C)
    folds = fr * fc
    steps = -(-T // step_macs)
    compute = folds * steps * step_cycles
    fill = folds * fold_overhead_cycles(acc.interconnect, R, C)
    slots = folds * R * C * steps * step_macs  # MAC slots offered by the folds
    kf = -(-K // R)  # reduction folds for WS/IS (partial sums leave the array between them)
    if flow is Dataflow.OS:
        if_rd, f_rd, o_wr, o_rd = P * K * fc, K * N * fr, P * N, P * N * 0
    elif flow is Dataflow.WS:
        if_rd, f_rd, o_wr, o_rd = P * K * fc, K * N, P * N * kf, P * N * (kf - 1)
    else:
        if_rd, f_rd, o_wr, o_rd = P * K, K * N * fc, P * N * kf, P * N * (kf - 1)
    return {"compute": compute, "fill": fill, "folds": folds, "slots": slots, "macs": P * K * N,
            "ifmap_rd": if_rd, "filter_rd": f_rd, "ofmap_wr": o_wr, "ofmap_rd": o_rd}


def _in_rows(start_out: np.ndarray, ext: np.ndarray, stride: int, kernel: int, pad: int, size: int) -> np.ndarray:
    """Input rows a tile of ``ext`` output rows from ``start_out`` reads, zero padding excluded."""
    lo = start_out * stride - pad
    hi = lo + (ext - 1) * stride + kernel
    return np.maximum(0, np.minimum(hi, size) - np.maximum(lo, 0))


def _footprint_bytes(layer: Layer, ext: dict[str, np.ndarray], acc_bits: int,
                     start: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """DRAM bytes of each operand's tile; ``start`` gives the tiles' first output row/column."""
    ih = _in_rows(start["p"], ext["p"], layer.stride_h, layer.kernel_h, layer.pad_h, layer.in_h)
    iw = _in_rows(start["q"], ext["q"], layer.stride_w, layer.kernel_w, layer.pad_w, layer.in_w)
    return {
        "ifmap": ext["n"] * ext["c"] * ih * iw * layer.act_bits / 8,
        "filter": ext["m"] * ext["c"] * layer.kernel_h * layer.kernel_w * layer.stored_weight_bits / 8,
        "psum": ext["n"] * ext["m"] * ext["p"] * ext["q"] * acc_bits / 8,
        "out": ext["n"] * ext["m"] * ext["p"] * ext["q"] * layer.out_bits / 8,
    }


def _walk(layer: Layer, mapping: LayerMapping, acc: Accelerator) -> tuple[dict[str, float], float, float, float]:
    """Visit every DRAM tile in loop order. Returns summed tile costs, stall cycles and DRAM bytes."""
    whole = Tile.whole(layer)
    tile = mapping.tile
    tile = Tile(*(min(getattr(tile, d), getattr(whole, d)) for d in LOOPS))
    counts = tile.counts(layer)
    order = "g" + mapping.loop_order
    shape = [layer.groups] + [counts[d] for d in mapping.loop_order]
    idx = np.indices(shape).reshape(len(shape), -1)
    pos = {d: idx[i] for i, d in enumerate(order)}
    ext = {}
    for d in LOOPS:
        t, total = getattr(tile, d), getattr(whole, d)
        ext[d] = np.minimum(t, total - pos[d] * t)
    costs = tile_costs(layer, mapping.dataflow, acc, ext)
    fp = _footprint_bytes(layer, ext, acc.pe.acc_bits, {d: pos[d] * getattr(tile, d) for d in "pq"})

    def changed(rel: frozenset[str]) -> np.ndarray:
        dims = ["g"] + [d for d in LOOPS if d in rel]
        ch = np.zeros(idx.shape[1], dtype=bool)
        ch[0] = True
        for d in dims:
            ch[1:] |= pos[d][1:] != pos[d][:-1]
        return ch

    ch_if, ch_f, ch_o = changed(RELEVANT["ifmap"]), changed(RELEVANT["filter"]), changed(RELEVANT["ofmap"])
    last_c = pos["c"] == counts["c"] - 1
    load = ch_if * fp["ifmap"] + ch_f * fp["filter"] + ch_o * (pos["c"] > 0) * fp["psum"]
    # an ofmap tile is written back when the next tile moves to another ofmap tile (or at the end)
    leaves = np.append(ch_o[1:], True)
    wb = leaves * np.where(last_c, fp["out"], fp["psum"])
    bw = acc.dram.bandwidth_bytes_per_cycle
    compute = costs["compute"] + costs["fill"]
    # while tile i computes: load tile i+1, write back tile i-1
    nxt_load = np.append(load[1:], 0.0)
    prev_wb = np.insert(wb[:-1], 0, 0.0)
    stall = load[0] / bw + float(np.maximum(0.0, (nxt_load + prev_wb) / bw - compute).sum()) + wb[-1] / bw
    summed = {k: float(np.sum(v)) for k, v in costs.items()}
    summed["dram_ifmap"] = float(np.sum(ch_if * fp["ifmap"]))
    summed["dram_filter"] = float(np.sum(ch_f * fp["filter"]))
    return summed, stall, float(load.sum()), float(wb.sum())


def _finish(layer: Layer, mapping: LayerMapping, acc: Accelerator, parts: list[tuple[Layer, dict[str, float], float,
            float, float]]) -> LayerResult:
    """Sum the precision segments of a layer into its :class:`LayerResult` (traffic and energy)."""
    e = acc.energy
    compute = fill = folds = 0
    stall = slots = mac_steps = 0.0
    traffic, energy = Traffic.zero(), Energy.zero()
    for seg, c, st, rd_bytes, wr_bytes in parts:
        step_cycles, step_macs = pe_step(acc.pe, seg.weight_bits, seg.act_bits)
        compute += int(c["compute"])
        fill += int(c["fill"])
        folds += int(c["folds"])
        stall += st
        slots += c["slots"]
        mac_steps += c["macs"] * step_cycles / step_macs
        a_b, w_b = seg.act_bits, seg.stored_weight_bits  # memory at stored widths, MACs at the run width
        iw, fw, ow = acc.ifmap_sram.word_bits, acc.filter_sram.word_bits, acc.ofmap_sram.word_bits
        outs = seg.ofmap_count
        ofmap_wr_bits = outs * seg.out_bits + (c["ofmap_wr"] - outs) * acc.pe.acc_bits
        t = Traffic(
            ifmap_sram_reads=c["ifmap_rd"] * a_b / iw,
            ifmap_sram_writes=c["dram_ifmap"] * 8 / iw,
            filter_sram_reads=c["filter_rd"] * w_b / fw,
            filter_sram_writes=c["dram_filter"] * 8 / fw,
            ofmap_sram_reads=(c["ofmap_rd"] * acc.pe.acc_bits + wr_bytes * 8) / ow,
            ofmap_sram_writes=max(ofmap_wr_bits, 0) / ow,
            dram_read_bytes=rd_bytes,
            dram_write_bytes=wr_bytes,
        )
        traffic = traffic + t
        energy = energy + Energy(
            mac_pj=c["macs"] * e.mac_pj(acc.pe.kind.value, seg.weight_bits, a_b, acc.pe.acc_bits),
            ifmap_sram_pj=(t.ifmap_sram_reads + t.ifmap_sram_writes) * acc.ifmap_sram.read_energy_pj,
            filter_sram_pj=(t.filter_sram_reads + t.filter_sram_writes) * acc.filter_sram.read_energy_pj,
            ofmap_sram_pj=t.ofmap_sram_reads * acc.ofmap_sram.read_energy_pj
            + t.ofmap_sram_writes * acc.ofmap_sram.write_energy_pj,
            dram_pj=(rd_bytes + wr_bytes) * acc.dram_pj_per_byte,
            noc_pj=(c["ifmap_rd"] * a_b + c["filter_rd"] * w_b) / 8 * e.noc_pj_per_byte,
            scale_pj=layer.bit_scales * outs * e.mac_pj("parallel", 16, acc.pe.acc_bits, acc.pe.acc_bits),
        )
    stall_i = int(math.ceil(stall))
    total = compute + fill + stall_i
    energy = dataclasses.replace(energy, leakage_pj=total * acc.leakage_pj_per_cycle)
    return LayerResult(
        layer=layer.name, dataflow=mapping.dataflow.value, weight_bits=layer.weight_bits, act_bits=layer.act_bits,
        macs=layer.macs, compute_cycles=compute, fill_cycles=fill, stall_cycles=stall_i,
        mapping_efficiency=(layer.macs / slots) if slots else 0.0,
        utilisation=(mac_steps / (total * acc.num_pes)) if total else 0.0,
        folds=folds, dram_tiles=int(np.prod(list(mapping.tile.counts(layer).values()))) * layer.groups,
        traffic=traffic, energy=energy,
    )


def _simulate_data_layer(layer: Layer, mapping: LayerMapping, acc: Accelerator) -> LayerResult:
    """Pooling / element-wise layers: a ``cols``-lane vector unit, inputs from DRAM, outputs to DRAM."""
    ops_per_out = layer.kernel_h * layer.kernel_w if layer.kind is LayerKind.POOL else 1
    compute = math.ceil(layer.ofmap_count * ops_per_out / acc.cols)
    rd = layer.ifmap_count * layer.act_bits / 8
    wr = layer.ofmap_count * layer.out_bits / 8
    bw = acc.dram.bandwidth_bytes_per_cycle
    stall = math.ceil(max(0.0, (rd + wr) / bw - compute))
    iw, ow = acc.ifmap_sram.word_bits, acc.ofmap_sram.word_bits
    t = Traffic(ifmap_sram_reads=rd * 8 / iw, ifmap_sram_writes=rd * 8 / iw, ofmap_sram_reads=wr * 8 / ow,
                ofmap_sram_writes=wr * 8 / ow, dram_read_bytes=rd, dram_write_bytes=wr)
    total = compute + stall
    en = Energy(
        mac_pj=layer.ofmap_count * ops_per_out * acc.energy.add_pj_per_bit * layer.act_bits,
        ifmap_sram_pj=(t.ifmap_sram_reads + t.ifmap_sram_writes) * acc.ifmap_sram.read_energy_pj,
        ofmap_sram_pj=t.ofmap_sram_reads * acc.ofmap_sram.read_energy_pj + t.ofmap_sram_writes
        * acc.ofmap_sram.write_energy_pj,
        dram_pj=(rd + wr) * acc.dram_pj_per_byte, leakage_pj=total * acc.leakage_pj_per_cycle)
    return LayerResult(layer.name, mapping.dataflow.value, layer.weight_bits, layer.act_bits, 0, compute, 0, stall,
                       0.0, 0.0, 0, 1, t, en)


def simulate_layer(layer: Layer, mapping: LayerMapping, acc: Accelerator) -> LayerResult:
    """Simulate one layer under ``mapping``; raises ``ValueError`` naming the field on a bad mapping."""
    acc.pe.check_bits(f"Layer[{layer.name!r}]", layer.weight_bits, layer.act_bits)
    mapping.validate(layer, acc)
    if not layer.has_macs:
        return _simulate_data_layer(layer, mapping, acc)
    parts = []
    for bits, channels, channel_bits in precision_segments(layer, mapping):
        seg = _segment_layer(layer, bits, channels, channel_bits)
        c, stall, rd, wr = _walk(seg, mapping, acc)
        parts.append((seg, c, stall, rd, wr))
    return _finish(layer, mapping, acc, parts)


def simulate(schedule: Schedule | Network, acc: Accelerator) -> SimResult:
    """Simulate a whole network; a bare :class:`Network` gets :func:`hwsim.schedule.default_schedule`."""
    if isinstance(schedule, Network):
        schedule = default_schedule(schedule, acc)
    net = schedule.network
    stages = []
    for stage, reach in zip(net.stages, net.reach_probabilities(), strict=True):
        res = tuple(simulate_layer(la, schedule.mapping_for(la.name), acc) for la in stage.layers)
        stages.append(StageResult(stage.name, reach, res))
    return SimResult(acc.name, net.name, acc.clock_hz, tuple(stages))


