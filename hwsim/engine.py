"""The cycle-approximate engine: cycles, utilisation, memory traffic and energy of every layer.

Model (docs/models.md gives the equations and their sources):

1. A layer is ``groups`` GEMMs ``(P x K) @ (K x N)``. Its loop nest ``n m c p q`` is cut into DRAM tiles
   (:class:`hwsim.schedule.Tile`), visited in ``loop_order`` with the convolution-group loop outermost.
2. Each tile is folded onto the R x C array by the dataflow (:data:`hwsim.kinds.DATAFLOW_AXES` says which
   GEMM dimension goes on rows, columns and time). A fold streams T steps of ``pe_step`` cycles plus the
   interconnect's fill/drain (:mod:`hwsim.timing`); fused bricks shorten the reduction.
3. Buffers are double-buffered: while tile i computes, tile i+1's new operands are loaded and tile
   i-1's outputs written back. A tile lasts the longest of its compute, its SRAM port time (each bank of
   the array's buffer half serves one read and one write per cycle) and its DMA transfers (one after
   another, each at the slower of the DRAM link and the other half's ports); the excess is stall. The
   first load and the last write-back are never hidden.
4. Per-output-channel weight widths are run as precision segments: channels of equal width together
   (``grouping="grouped"``) or, naively, each tile of ``tile.m`` channels at its widest channel.

The engine counts :class:`hwsim.result.Events` and :func:`hwsim.cost.price` prices them.
This module walks every tile (vectorised with numpy); :mod:`hwsim.fast` answers the same question in
closed form for search loops, and a test bounds how far the two may disagree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .accelerator import Accelerator, BufferSpec, Dataflow, Interconnect
from .cost import price
from .kinds import DATAFLOW_AXES, pe_step
from .network import Layer, LayerKind, Network
from .result import Events, LayerResult, SimResult, StageResult, Traffic
from .schedule import LOOPS, LayerMapping, Schedule, Tile, default_schedule
from .timing import fold_overhead_cycles

__all__ = ["simulate", "simulate_layer", "precision_segments", "tile_costs", "array_words", "port_cycles",
           "element_cycles", "transfer_cycles", "operand_wait_cycles", "valid_taps", "segment_events",
           "round_stalls", "data_layer_events", "finish_layer", "scale_cycles", "RELEVANT", "MAX_WALK_TILES"]

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
        return layer if bits == layer.weight_bits else dataclasses.replace(layer, weight_bits=bits)
    g = layer.groups
    if g == 1:
        return dataclasses.replace(layer, out_channels=channels, weight_bits=bits, channel_weight_bits=channel_bits,
                                   inputs=())
    g2 = channels // (layer.out_channels // g)
    return dataclasses.replace(layer, groups=g2, in_channels=g2 * (layer.in_channels // g), out_channels=channels,
                               weight_bits=bits, channel_weight_bits=channel_bits, inputs=())


MAX_WALK_TILES = 1 << 24
"""The engine walks at most this many DRAM tiles per precision segment (in chunks of bounded memory);
a mapping with more is refused with its count (``hwsim.fast.layer_cost`` answers in closed form)."""
_CHUNK = 1 << 16


def tile_costs(layer: Layer, flow: Dataflow, acc: Accelerator, ext: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-tile compute/fill cycles, folds, MAC slots and SRAM element counts for tiles of extents ``ext``.

    ``ext`` maps each loop of ``LOOPS`` to an array of tile extents (broadcastable). Shared by the
    engine (one entry per tile) and the fast path (one entry per distinct tile shape). The dataflow's
    row in :data:`hwsim.kinds.DATAFLOW_AXES` places the tile GEMM ``(P x K) @ (K x N)`` on the array; a PE
    step consumes ``red`` reduction elements (fused bricks), so the reduction occupies ``⌈K'/red⌉`` slots.
    SRAM element counts follow one rule: an input operand is read once per fold of the dimension it does
    not depend on when that dimension is spatial (once when it is streamed in time); outputs are written
    once per fold of the reduction and read back between folds.
    """
    R, C = acc.rows, acc.cols
    step_cycles, red = pe_step(acc.pe, layer.weight_bits, layer.act_bits)
    P = ext["n"] * ext["p"] * ext["q"]
    K = ext["c"] * layer.kernel_h * layer.kernel_w
    N = ext["m"]
    k_run = np.ceil(K * layer.weight_density).astype(np.int64) if acc.pe.skip_zero_weights else K
    dims = {"P": P, "K": -(-k_run // red), "N": N}
    rows, cols, time = DATAFLOW_AXES[flow]
    fr, fc = -(-dims[rows] // R), -(-dims[cols] // C)
    along = {rows: fr, cols: fc, time: 1}
    folds = fr * fc
    T = dims[time]
    kf = along["K"]
    return {"compute": folds * T * step_cycles, "fill": folds * fold_overhead_cycles(acc.interconnect, R, C),
            "folds": folds, "slots": folds * R * C * T * red, "macs": P * K * N, "outs": P * N,
            "ifmap_rd": _valid_pairs(layer, ext) * along["N"], "filter_rd": K * N * along["P"],
            "ofmap_wr": P * N * kf,
            "ofmap_rd": P * N * (kf - 1),
            "wload": operand_wait_cycles(layer, flow, acc, dims["K"], N, T * step_cycles)}


@functools.lru_cache(maxsize=1024)
def valid_taps(out: int, stride: int, kernel: int, pad: int, size: int) -> np.ndarray:
    """Prefix sums over output rows of the kernel taps that land inside the input (zero padding is never
    read): ``S[j]`` = taps of output rows ``0..j-1``, so a tile of rows ``[a, b)`` reads ``S[b] - S[a]``."""
    lo = np.arange(out) * stride - pad
    taps = np.minimum(lo + kernel, size) - np.maximum(lo, 0)
    prefix = np.concatenate(([0], np.cumsum(np.maximum(taps, 0))))
    prefix.setflags(write=False)
    return prefix


def _valid_pairs(layer: Layer, ext: dict[str, np.ndarray]) -> np.ndarray:
    """(output pixel, input element) pairs of a tile that are not zero padding: ``ext`` carries ``vh``/``vw``
    (valid taps summed over the tile's output rows / columns) where the tile's position is known."""
    vh = ext["vh"] if "vh" in ext else ext["p"] * layer.kernel_h
    vw = ext["vw"] if "vw" in ext else ext["q"] * layer.kernel_w
    return ext["n"] * ext["c"] * vh * vw


def scale_cycles(layer: Layer, acc: Accelerator) -> int:
    """BWA: a ``cols``-lane scale unit multiplies every bit-plane partial sum by its alpha after the layer."""
    return -(-layer.ofmap_count * layer.bit_scales // acc.cols)


def _in_rows(start_out: np.ndarray, ext: np.ndarray, stride: int, kernel: int, pad: int, size: int) -> np.ndarray:
    """Input rows a tile of ``ext`` output rows from ``start_out`` reads, zero padding excluded."""
    lo = start_out * stride - pad
    hi = lo + (ext - 1) * stride + kernel
    return np.maximum(0, np.minimum(hi, size) - np.maximum(lo, 0))


def _transfer_bytes(layer: Layer, ext: dict[str, np.ndarray], acc_bits: int,
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


def array_words(seg: Layer, acc: Accelerator, c: dict[str, np.ndarray], first_c: np.ndarray | float,
                last_c: np.ndarray | float) -> dict[str, np.ndarray]:
    """SRAM words the array reads and writes in each buffer for tiles of costs ``c`` (DMA excluded).

    ``first_c`` / ``last_c`` are 1 for tiles that open / close an output's reduction (fractions on
    averages): a tile continuing a reduction first reads the partial sums back (at ``acc_bits``); a tile
    closing it writes final values at ``out_bits`` and, for BWA, one partial sum per bit plane that the
    scale unit reads back.
    """
    ab = acc.ifmap_sram.stored_bits(seg.act_bits)
    wb = acc.filter_sram.stored_bits(seg.stored_weight_bits)
    accb, ob = acc.ofmap_sram.stored_bits(acc.pe.acc_bits), acc.ofmap_sram.stored_bits(seg.out_bits)
    iw, fw, ow = acc.ifmap_sram.word_bits, acc.filter_sram.word_bits, acc.ofmap_sram.word_bits
    outs, planes = c["outs"], seg.bit_scales
    final = last_c * outs
    wr_bits = final * ob + (c["ofmap_wr"] - final) * accb + final * planes * accb
    rd_bits = (c["ofmap_rd"] + (1 - first_c) * outs) * accb + final * planes * accb
    return {"ifmap_rd": c["ifmap_rd"] * ab / iw, "filter_rd": c["filter_rd"] * wb / fw,
            "ofmap_rd": rd_bits / ow, "ofmap_wr": wr_bits / ow}


def port_cycles(acc: Accelerator, reads: tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float],
                writes: tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float]) -> np.ndarray:
    """Cycles the array's side of the SRAM ports needs for these word accesses (ifmap, filter, ofmap):
    each bank has one read and one write port (simple dual-port, as FPGA block RAMs), and each half of a
    double buffer has the buffer's ``banks``, so the DMA on the other half never contends."""
    t = np.asarray(0.0)
    for buf, rd, wr in zip((acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram), reads, writes, strict=True):
        t = np.maximum(t, np.maximum(np.asarray(rd), np.asarray(wr)) / buf.banks)
    return t


def element_cycles(buf: BufferSpec, bits: float, bandwidth_bytes_per_cycle: float) -> float:
    """DMA cycles per element of ``bits`` moved into or out of one half of ``buf``: the slower of the link
    and the half's ports (``banks`` words of ``word_bits`` per cycle). A link beat carries whole elements
    (``⌊8·bandwidth/bits⌋`` of integer width, when one fits), as the RTL core's DMA does, so e.g. a 64-bit
    beat takes 21 three-bit elements."""
    link = 8.0 * bandwidth_bytes_per_cycle / bits
    if link >= 1 and float(bits).is_integer():
        link = math.floor(link + 1e-9)
    return max(1.0 / link, buf.stored_bits(bits) / (buf.word_bits * buf.banks))


def transfer_cycles(buf: BufferSpec, bits: float, nbytes: np.ndarray | float,
                    bandwidth_bytes_per_cycle: float) -> np.ndarray:
    """Cycles of DMA transfers of ``nbytes`` each (elements of ``bits``) into or out of a half of ``buf``,
    in whole cycles per transfer (the last beat of a transfer is spent whole)."""
    t = np.asarray(nbytes) * (8.0 / bits) * element_cycles(buf, bits, bandwidth_bytes_per_cycle)
    return np.ceil(t - 1e-6)


def operand_wait_cycles(layer: Layer, flow: Dataflow, acc: Accelerator, k_slots: np.ndarray,
                        n: np.ndarray, fold_cycles: np.ndarray) -> np.ndarray:
    """Broadcast OS and WS: the cycles a tile's folds wait for their operands to be staged.

    The fetcher reads ``banks`` words of a buffer per cycle from the tile's start, the last of them
    bypassed into the array in the fold's start cycle: a tile's first step waits for its activations
    (every row's group, used or not) and, in OS, its weights (every column's group), one step ahead of
    the array after that. A WS fold's weights go to the PEs in row-major order (PE ``(r, c)`` is lane
    ``r * cols + c``) up to the fold's last used PE: a tile's first fold waits for the longer of its whole
    load and its first activations; every later fold's load runs from the cycle after the fold before
    starts, so it waits only where that fold's ``fold_cycles`` of compute are shorter (a few pixels, a
    bit-serial step or two). 0 for other interconnects."""
    if acc.interconnect is not Interconnect.BROADCAST:
        return np.zeros(np.shape(n))
    R, C = acc.rows, acc.cols

    def per_lane(buf: BufferSpec, bits: float) -> float:   # cycles per element a buffer's ports deliver
        return float(buf.stored_bits(bits) / (buf.word_bits * buf.banks))

    def groups(lanes: np.ndarray | int, rate: float) -> np.ndarray:
        return np.ceil(np.asarray(lanes) * rate - 1e-9)

    pl_f = per_lane(acc.filter_sram, layer.stored_weight_bits)
    act_wait = groups(R, per_lane(acc.ifmap_sram, layer.act_bits)) - 1
    if flow is Dataflow.OS:
        return np.full(np.shape(n), float(max(act_wait, groups(C, pl_f) - 1)))
    if flow is not Dataflow.WS:
        return np.zeros(np.shape(n))

    def load(rows_used: np.ndarray | int, cols_used: np.ndarray | int) -> np.ndarray:
        return groups((np.asarray(rows_used) - 1) * C + cols_used, pl_f)

    k, m = np.asarray(k_slots), np.asarray(n)
    fr, fc = -(-k // R), -(-m // C)
    first = load(np.minimum(R, k), np.minimum(C, m)) - 1
    later = -np.maximum(first - fold_cycles, 0)      # the first fold is in one of the four kinds below
    for rows_used, n_rows in ((R, fr - 1), (k - (fr - 1) * R, 1)):
        for cols_used, n_cols in ((C, fc - 1), (m - (fc - 1) * C, 1)):
            later = later + n_rows * n_cols * np.maximum(load(rows_used, cols_used) - 1 - fold_cycles, 0)
    return np.maximum(first, act_wait) + later


_ZERO = np.zeros(1)
_SUMMED = ("compute", "fill", "folds", "slots", "macs", "ifmap_rd", "filter_rd")


def _next_of(v: np.ndarray, lo: int, hi: int, last: bool) -> np.ndarray:
    """For window positions ``lo..hi-1``: the value of the next tile (0 after the layer's last)."""
    tail = v[lo + 1:hi + 1]
    return np.concatenate((tail, _ZERO)) if last else tail


def _prev_of(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """For window positions ``lo..hi-1``: the value of the previous tile (0 before the layer's first)."""
    return v[lo - 1:hi - 1] if lo > 0 else np.concatenate((_ZERO, v[:hi - 1]))


def _walk(layer: Layer, mapping: LayerMapping, acc: Accelerator) -> tuple[Events, dict[str, float]]:
    """Visit every DRAM tile in loop order (in chunks of bounded memory): the segment's events, with
    stall as an unrounded float, and its folds and MAC slots."""
    whole = Tile.whole(layer)
    tile = Tile(*(min(getattr(mapping.tile, d), getattr(whole, d)) for d in LOOPS))
    counts = tile.counts(layer)
    order = "g" + mapping.loop_order
    shape = tuple([layer.groups] + [counts[d] for d in mapping.loop_order])
    n = math.prod(shape)
    if n > MAX_WALK_TILES:
        raise ValueError(f"LayerMapping[{layer.name!r}].tile must give at most {MAX_WALK_TILES} DRAM tiles for the "
                         f"engine's walk, not {n} (larger tiles, or buffers large enough for them)")
    bw = acc.dram.bandwidth_bytes_per_cycle
    tc = functools.partial(transfer_cycles, bandwidth_bytes_per_cycle=bw)
    taps_h = valid_taps(layer.out_h, layer.stride_h, layer.kernel_h, layer.pad_h, layer.in_h)
    taps_w = valid_taps(layer.out_w, layer.stride_w, layer.kernel_w, layer.pad_w, layer.in_w)
    sums: dict[str, float] = {}
    stall = port_stall = 0.0

    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        a, b = max(lo - 1, 0), min(hi + 1, n)
        idx = np.unravel_index(np.arange(a, b), shape)
        pos = {d: idx[i] for i, d in enumerate(order)}
        ext = {d: np.minimum(getattr(tile, d), getattr(whole, d) - pos[d] * getattr(tile, d)) for d in LOOPS}
        fp = _transfer_bytes(layer, ext, acc.pe.acc_bits, {d: pos[d] * getattr(tile, d) for d in "pq"})
        for d, taps in (("p", taps_h), ("q", taps_w)):
            start = pos[d] * getattr(tile, d)
            ext["v" + ("h" if d == "p" else "w")] = taps[start + ext[d]] - taps[start]

        def changed(rel: frozenset[str], pos: dict[str, np.ndarray] = pos, width: int = b - a) -> np.ndarray:
            ch = np.ones(width, dtype=bool)
            ch[1:] = False
            for d in ["g"] + [d for d in LOOPS if d in rel]:
                ch[1:] |= pos[d][1:] != pos[d][:-1]
            return ch

        ch_if, ch_f, ch_o = changed(RELEVANT["ifmap"]), changed(RELEVANT["filter"]), changed(RELEVANT["ofmap"])
        first_c, last_c = pos["c"] == 0, pos["c"] == counts["c"] - 1
        fill_if, fill_f = ch_if * fp["ifmap"], ch_f * fp["filter"]
        fill_o = ch_o * ~first_c * fp["psum"]
        load = fill_if + fill_f + fill_o
        # an ofmap tile is written back when the next tile moves to another ofmap tile (or at the end)
        leaves = np.concatenate((ch_o[1:], [True])) if b == n else ch_o[1:]
        lc = last_c[:len(leaves)]
        wb = leaves * np.where(lc, fp["out"][:len(leaves)], fp["psum"][:len(leaves)])
        wb_psum = leaves * np.where(lc, 0.0, fp["psum"][:len(leaves)])
        wb_t = leaves * np.where(lc, tc(acc.ofmap_sram, layer.out_bits, fp["out"][:len(leaves)]),
                                 tc(acc.ofmap_sram, acc.pe.acc_bits, fp["psum"][:len(leaves)]))
        s = slice(lo - a, hi - a)  # this chunk's own tiles inside the window
        own = {d: v[s] for d, v in ext.items()}
        c = tile_costs(layer, mapping.dataflow, acc, own)
        words = array_words(layer, acc, c, first_c[s], last_c[s])
        busy = c["compute"] + c["fill"]
        nxt = functools.partial(_next_of, lo=lo - a, hi=hi - a, last=hi == n)
        prv = functools.partial(_prev_of, lo=lo - a, hi=hi - a)
        port = np.maximum(port_cycles(acc, (words["ifmap_rd"], words["filter_rd"], words["ofmap_rd"]),
                                      (0.0, 0.0, words["ofmap_wr"])), busy + c["wload"])
        dram = (nxt(load) + prv(wb)) / bw
        load_t = (tc(acc.ifmap_sram, layer.act_bits, fill_if) + tc(acc.filter_sram, layer.stored_weight_bits, fill_f)
                  + tc(acc.ofmap_sram, acc.pe.acc_bits, fill_o))
        dma = nxt(load_t) + prv(wb_t)
        length = np.maximum(np.maximum(port, dma), busy)
        stall += float((length - busy).sum())
        port_stall += float((length - np.maximum(dram, busy)).sum())  # what the ports add over DRAM alone
        if lo == 0:  # the first load is exposed (at DRAM or port speed)
            first = float(load_t[0])
            stall += first
            port_stall += first - load[0] / bw
        if hi == n:  # and so is the last write-back
            last = float(wb_t[-1])
            stall += last
            port_stall += last - wb[-1] / bw
        parts = {**{key: c[key] for key in _SUMMED}, **{"w_" + key: v for key, v in words.items()},
                 "dram_ifmap": fill_if[s], "dram_filter": fill_f[s], "dram_psum": fill_o[s], "rd": load[s],
                 "wr": wb[s], "wr_psum": wb_psum[s]}
        for key, v in parts.items():
            total = float(v.sum()) if np.ndim(v) else float(v) * (hi - lo)
            sums[key] = sums.get(key, 0.0) + total
    sums.update(stall=stall, port_stall=port_stall)
    return segment_events(layer, acc, sums), {"folds": sums["folds"], "slots": sums["slots"], "macs": sums["macs"]}


def segment_events(seg: Layer, acc: Accelerator, s: Mapping[str, Any]) -> Events:
    """The event record of one precision segment from its summed counts ``s`` (floats from the engine's
    walk, or arrays from the fast path): ``tile_costs`` and :func:`array_words` sums (``w_*``), the DMA's
    bytes per buffer (``dram_ifmap``, ``dram_filter``, ``dram_psum``), DRAM bytes read and written
    (``rd``, ``wr``, of which ``wr_psum`` partial sums) and the unrounded ``stall`` and ``port_stall``. The
    DMA writes what it loads into the buffers and reads what it writes back out of the ofmap buffer."""
    def words(buf: BufferSpec, nbytes: Any, bits: float) -> Any:   # DRAM bytes of bits-wide elements
        return nbytes * 8 / bits * buf.stored_bits(bits) / buf.word_bits

    ifm, flt, ofm, accb = acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram, acc.pe.acc_bits
    return Events(
        compute_cycles=s["compute"] + scale_cycles(seg, acc), fill_cycles=s["fill"], stall_cycles=s["stall"],
        port_stall_cycles=s["port_stall"],
        traffic=Traffic(
            ifmap_sram_reads=s["w_ifmap_rd"], ifmap_sram_writes=words(ifm, s["dram_ifmap"], seg.act_bits),
            filter_sram_reads=s["w_filter_rd"],
            filter_sram_writes=words(flt, s["dram_filter"], seg.stored_weight_bits),
            ofmap_sram_reads=s["w_ofmap_rd"] + words(ofm, s["wr"] - s["wr_psum"], seg.out_bits)
            + words(ofm, s["wr_psum"], accb),
            ofmap_sram_writes=s["w_ofmap_wr"] + words(ofm, s["dram_psum"], accb),
            dram_read_bytes=s["rd"], dram_write_bytes=s["wr"]),
        macs=((seg.weight_bits, seg.act_bits, s["macs"] * seg.weight_density),),
        scale_ops=seg.ofmap_count * seg.bit_scales,
        noc_bytes=(s["ifmap_rd"] * seg.act_bits + s["filter_rd"] * seg.stored_weight_bits) / 8)


def round_stalls(stall: Any, port_stall: Any) -> tuple[Any, Any]:
    """Stall and its port share rounded up to whole cycles (a hair of float error forgiven), the port share
    never above the stall. Works on numbers and on the fast path's arrays."""
    s = np.maximum(np.ceil(np.asarray(stall) - 1e-9), 0.0)
    return s, np.minimum(np.ceil(np.asarray(port_stall) - 1e-9), s)


def finish_layer(layer: Layer, mapping: LayerMapping, acc: Accelerator, events: Events,
                 aux: dict[str, float], mac_steps: float) -> LayerResult:
    """A layer's :class:`LayerResult` from its summed events: stall rounded up, then priced."""
    stall, port = round_stalls(events.stall_cycles, events.port_stall_cycles)
    ev = Events(int(events.compute_cycles), int(events.fill_cycles), int(stall), int(port), events.traffic,
                events.macs, events.vector_op_bits, events.scale_ops, events.noc_bytes)
    total = int(ev.cycles)
    slots = aux.get("slots", 0.0)
    return LayerResult(
        layer=layer.name, dataflow=mapping.dataflow.value, weight_bits=layer.weight_bits, act_bits=layer.act_bits,
        macs=layer.macs, compute_cycles=int(ev.compute_cycles), fill_cycles=int(ev.fill_cycles),
        stall_cycles=int(ev.stall_cycles), mapping_efficiency=(layer.macs / slots) if slots else 0.0,
        utilisation=(mac_steps / (total * acc.num_pes)) if total else 0.0, folds=int(aux.get("folds", 0)),
        dram_tiles=int(np.prod(list(mapping.tile.counts(layer).values()))) * layer.groups if layer.has_macs else 1,
        traffic=ev.traffic, energy=price(ev, acc), port_stall_cycles=int(ev.port_stall_cycles), events=ev)


def data_layer_events(layer: Layer, acc: Accelerator) -> Events:
    """Pooling / element-wise layers: a ``cols``-lane vector unit, inputs from DRAM, outputs to DRAM."""
    ops_per_out = layer.kernel_h * layer.kernel_w if layer.kind is LayerKind.POOL else 1
    compute = math.ceil(layer.ofmap_count * ops_per_out / acc.cols)
    rd = layer.ifmap_count * layer.act_bits / 8
    wr = layer.ofmap_count * layer.out_bits / 8
    i_words = layer.ifmap_count * acc.ifmap_sram.stored_bits(layer.act_bits) / acc.ifmap_sram.word_bits
    o_words = layer.ofmap_count * acc.ofmap_sram.stored_bits(layer.out_bits) / acc.ofmap_sram.word_bits
    t = Traffic(ifmap_sram_reads=i_words, ifmap_sram_writes=i_words, ofmap_sram_reads=o_words,
                ofmap_sram_writes=o_words, dram_read_bytes=rd, dram_write_bytes=wr)
    port = float(port_cycles(acc, (t.ifmap_sram_reads, 0.0, t.ofmap_sram_reads),
                             (t.ifmap_sram_writes, 0.0, t.ofmap_sram_writes)))
    dram = (rd + wr) / acc.dram.bandwidth_bytes_per_cycle
    busy = max(compute, port, dram)
    return Events(compute_cycles=compute, stall_cycles=busy - compute,
                  port_stall_cycles=busy - max(compute, dram), traffic=t,
                  vector_op_bits=layer.ofmap_count * ops_per_out * layer.act_bits)


def simulate_layer(layer: Layer, mapping: LayerMapping, acc: Accelerator) -> LayerResult:
    """Simulate one layer under ``mapping``; raises ``ValueError`` naming the field on a bad mapping."""
    acc.pe.check_bits(f"Layer[{layer.name!r}]", layer.weight_bits, layer.act_bits)
    mapping.validate(layer, acc)
    if not layer.has_macs:
        return finish_layer(layer, mapping, acc, data_layer_events(layer, acc), {}, 0.0)
    events, aux, mac_steps = Events(), {"folds": 0.0, "slots": 0.0}, 0.0
    for bits, channels, channel_bits in precision_segments(layer, mapping):
        seg = _segment_layer(layer, bits, channels, channel_bits)
        ev, a = _walk(seg, mapping, acc)
        events = events + ev
        aux = {k: aux[k] + a[k] for k in aux}
        step_cycles, red = pe_step(acc.pe, seg.weight_bits, seg.act_bits)
        mac_steps += a["macs"] * step_cycles / red
    return finish_layer(layer, mapping, acc, events, aux, mac_steps)


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


