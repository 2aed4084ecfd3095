"""The fast path: the engine's question answered in closed form, for a whole batch of candidate tiles.

:func:`hwsim.engine.simulate_layer` visits every DRAM tile of a layer. A mapper that weighs thousands of
tilings per layer cannot afford that, so this module computes the same numbers without the walk
(docs/models.md, "Fast path", gives the equations and the measured disagreement):

* **Compute, fill and SRAM accesses** come from :func:`hwsim.engine.tile_costs` evaluated once per
  *distinct* tile shape: along every loop a tile is either full (``t``) or the remainder
  ``W - (k-1)·t``, so at most 2⁵ = 32 shapes occur, each with a known multiplicity. These sums equal
  the engine's exactly.
* **DRAM traffic** per operand follows from the loop order: an operand is fetched once for every
  iteration of the loops up to its innermost relevant loop (ignoring loops of one trip), so its bytes
  are (sum of its tile footprints over its own loops) × (trip counts of the irrelevant loops outside
  that innermost relevant loop). Partial sums are written and re-read when the reduction loop ``c`` is
  split and lies outside the innermost ofmap loop. Also exact (up to float summation order).
* **Stalls** are smoothed. The first load and the last write-back are exposed; the other tiles are
  split into classes by the loop levels that change entering and leaving them (which fixes which
  operands they fetch and whether they write back), and each class is charged
  ``count · max(0, mean transfer/BW − mean compute)`` with the compute of full or remainder tiles along
  the innermost loop. The answer is at least the fully smoothed
  ``load_0/BW + max(0, rest/BW − total compute) + wb_last/BW`` (a lower bound of the engine's stall).
  This is the only approximation: the test bounds it. The array's SRAM port time is exact per tile shape;
  each operand's DMA transfers move at its own rate (the slower of the link and its buffer half's ports),
  applied to the smoothed transfers; ``port_stall_cycles`` counts the array's port excess only.

The three parts are :func:`_exact_sums`, :func:`_dram_traffic` and :func:`_smoothed_stall`, each on a
:class:`_Grid` of tilings.

:func:`layer_cost` is the one cost protocol: ``model="fast"`` answers with this module,
``model="engine"`` with the engine's walk, both as a :class:`LayerCost`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np

from .accelerator import Accelerator, BufferSpec, Dataflow
from .cost import price
from .engine import (
    RELEVANT,
    Segment,
    _segment_layer,
    array_words,
    element_cycles,
    port_cycles,
    precision_segments,
    round_stalls,
    segment_events,
    simulate_layer,
    tile_costs,
    valid_taps,
)
from .errors import check_choice
from .network import Layer
from .result import Energy, Events, LayerResult, Traffic
from .schedule import GROUPINGS, LOOPS, LayerMapping, Tile, footprints_bytes

__all__ = ["LayerCost", "layer_cost", "evaluate_tiles", "evaluate_mapspace", "tiles_fit", "loop_orders",
           "COST_KEYS", "MODELS"]

MODELS = ("fast", "engine")
_ENERGY_KEYS = tuple(f.name for f in fields(Energy))
_TRAFFIC_KEYS = tuple(f.name for f in fields(Traffic))
COST_KEYS = ("cycles", "compute_cycles", "fill_cycles", "stall_cycles", "port_stall_cycles", "energy_pj"
             ) + _ENERGY_KEYS + _TRAFFIC_KEYS
"""Keys of the arrays :func:`evaluate_tiles` returns."""

_IDX = {d: i for i, d in enumerate(LOOPS)}
# 32 tile shapes: bit i set -> loop i takes its remainder extent, else the full tile extent
_SHAPE_BITS = ((np.arange(32)[:, None] >> np.arange(5)[None, :]) & 1).astype(bool)


@dataclass(frozen=True, slots=True)
class LayerCost:
    """What one layer under one mapping costs: cycles by kind, energy breakdown, memory traffic."""

    compute_cycles: int
    fill_cycles: int
    stall_cycles: int
    energy: Energy
    traffic: Traffic

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.fill_cycles + self.stall_cycles

    @property
    def energy_pj(self) -> float:
        return self.energy.total_pj

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.cycles

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(self.compute_cycles + other.compute_cycles, self.fill_cycles + other.fill_cycles,
                          self.stall_cycles + other.stall_cycles, self.energy + other.energy,
                          self.traffic + other.traffic)

    @classmethod
    def zero(cls) -> LayerCost:
        return cls(0, 0, 0, Energy.zero(), Traffic.zero())

    @classmethod
    def from_result(cls, res: LayerResult) -> LayerCost:
        return cls(res.compute_cycles, res.fill_cycles, res.stall_cycles, res.energy, res.traffic)


def loop_orders(layer: Layer) -> list[str]:
    """Every loop order that can behave differently for ``layer``: loops of a single trip whatever the
    tile (extent 1) are pinned outermost, the others permuted."""
    whole = Tile.whole(layer)
    fixed = "".join(d for d in LOOPS if getattr(whole, d) == 1)
    free = [d for d in LOOPS if getattr(whole, d) > 1]
    return [fixed + "".join(p) for p in itertools.permutations(free)]


def _whole(layer: Layer) -> np.ndarray:
    w = Tile.whole(layer)
    return np.array([getattr(w, d) for d in LOOPS], dtype=np.int64)


def _as_tiles(tiles: np.ndarray | Sequence[Tile] | Tile) -> np.ndarray:
    if isinstance(tiles, Tile):
        tiles = [tiles]
    if not isinstance(tiles, np.ndarray):
        tiles = np.array([[getattr(t, d) for d in LOOPS] for t in tiles], dtype=np.int64)
    arr = np.asarray(tiles, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f"evaluate_tiles tiles must be an array of shape (B, 5) in loop order {LOOPS!r}, "
                         f"not shape {arr.shape}")
    if arr.size and arr.min() < 1:
        raise ValueError("evaluate_tiles tiles must hold extents >= 1")
    return arr


def tiles_fit(layer: Layer, acc: Accelerator, tiles: np.ndarray) -> np.ndarray:
    """Vectorised :func:`hwsim.schedule.tile_fits`: True where the tile fits every buffer half."""
    t = _as_tiles(tiles)
    fp = footprints_bytes(layer, [t[:, i] for i in range(5)], acc)
    whole_c = acc.split_reduction or not layer.has_macs or t[:, 2] >= layer.in_channels // layer.groups
    return ((fp["ifmap_sram"] <= acc.ifmap_sram.size_bytes // 2) & (fp["filter_sram"] <= acc.filter_sram.size_bytes // 2)
            & (fp["ofmap_sram"] <= acc.ofmap_sram.size_bytes // 2) & whole_c)


def _order_positions(orders: Sequence[str]) -> np.ndarray:
    pos = np.empty((len(orders), 5), dtype=np.int64)
    for o, order in enumerate(orders):
        if sorted(order) != sorted(LOOPS):
            raise ValueError(f"evaluate_tiles loop_order must be a permutation of {LOOPS!r}, not {order!r}")
        for i, d in enumerate(order):
            pos[o, _IDX[d]] = i
    return pos


@functools.lru_cache(maxsize=4096)
def _in_rows_of(out: int, stride: int, kernel: int, pad: int, size: int, t: int) -> tuple[int, int]:
    """Input rows (zero padding excluded) summed over the tiles of extent ``t`` along a loop of ``out``
    output rows, and the rows of the first tile: O(out / t) work, memoised."""
    start = np.arange(0, out, t)
    ext = np.minimum(t, out - start)
    lo = start * stride - pad
    hi = lo + (ext - 1) * stride + kernel
    rows = np.maximum(0, np.minimum(hi, size) - np.maximum(lo, 0))
    return int(rows.sum()), int(rows[0])


def _in_rows_table(out: int, stride: int, kernel: int, pad: int, size: int,
                   ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_in_rows_of` for every tile extent in ``ts`` (distinct extents computed once)."""
    uniq, inv = np.unique(ts, return_inverse=True)
    pairs = np.array([_in_rows_of(out, stride, kernel, pad, size, int(t)) for t in uniq], dtype=np.int64)
    return pairs[inv, 0].reshape(ts.shape), pairs[inv, 1].reshape(ts.shape)


@dataclass(frozen=True, slots=True)
class _Grid:
    """A batch of B tilings of one layer, per loop of ``LOOPS`` (arrays ``(B, 5)``): the tile ``extent``
    (clipped to the layer), the loop's ``trips`` and the ``remainder`` extent of its last tile."""

    whole: np.ndarray
    extent: np.ndarray
    trips: np.ndarray
    remainder: np.ndarray

    @classmethod
    def of(cls, layer: Layer, tiles: np.ndarray) -> _Grid:
        whole = _whole(layer)
        extent = np.minimum(tiles, whole[None, :])
        trips = -(-whole[None, :] // extent)
        return cls(whole, extent, trips, whole[None, :] - (trips - 1) * extent)

    def at(self, arr: np.ndarray, loop: str) -> np.ndarray:
        return arr[:, _IDX[loop]]


@dataclass(frozen=True, slots=True)
class _ExactSums:
    """Per-tile costs summed over the 32 tile shapes (exact): ``sums[key]`` is ``(B,)``; ``busy`` is the
    layer's compute + fill + port stall, and ``busy_remainder[:, i]`` that of the tiles that take their
    remainder extent along loop i."""

    sums: dict[str, np.ndarray]
    busy: np.ndarray
    busy_remainder: np.ndarray


@dataclass(frozen=True, slots=True)
class _DramTraffic:
    """DRAM bytes of each operand for every (loop order, tiling), ``(O, B)`` (exact), with each operand's
    innermost relevant loop position, and the exposed first load and last write-back ``(B,)``."""

    ifmap: np.ndarray
    filter: np.ndarray
    psum: np.ndarray
    read: np.ndarray
    write: np.ndarray
    innermost_ifmap: np.ndarray
    innermost_filter: np.ndarray
    innermost_ofmap: np.ndarray
    first_load: np.ndarray
    last_writeback: np.ndarray
    first_ifmap: np.ndarray
    first_filter: np.ndarray
    transfers: dict[str, np.ndarray]   # DMA transfers of ifmap, filter, psum (loads) and out (write-backs)


def _exact_sums(seg: Layer, acc: Accelerator, flow: Dataflow, grid: _Grid) -> _ExactSums:
    """``tile_costs`` once per distinct tile shape, times its multiplicity (docstring: "exact")."""
    ext3 = np.where(_SHAPE_BITS[None], grid.remainder[:, None, :], grid.extent[:, None, :])  # (B, 32, 5)
    mult = np.where(_SHAPE_BITS[None], 1, grid.trips[:, None, :] - 1).prod(axis=2)  # (B, 32)
    ext = {d: ext3[..., i] for i, d in enumerate(LOOPS)}
    # valid (non-padding) kernel taps: the full tiles' mean and the remainder tile's, along p and q
    for d, name, geo in (("p", "vh", (seg.out_h, seg.stride_h, seg.kernel_h, seg.pad_h, seg.in_h)),
                         ("q", "vw", (seg.out_w, seg.stride_w, seg.kernel_w, seg.pad_w, seg.in_w))):
        taps = valid_taps(*geo)
        k, t = grid.at(grid.trips, d), grid.at(grid.extent, d)
        split = taps[(k - 1) * t]
        full = (split - taps[0]) / np.maximum(k - 1, 1)
        ext[name] = np.where(_SHAPE_BITS[None, :, _IDX[d]], (taps[-1] - split)[:, None], full[:, None])
    costs = tile_costs(seg, flow, acc, ext)
    # along c the full tiles come first (one of them opens the reduction), the remainder closes it
    kc = grid.trips[:, _IDX["c"], None]
    c_rem = _SHAPE_BITS[None, :, _IDX["c"]]
    first_c = np.where(c_rem, (kc == 1) * 1.0, 1.0 / np.maximum(kc - 1, 1))
    last_c = np.where(c_rem, 1.0, 0.0)
    words = array_words(seg, acc, costs, first_c, last_c)
    costs.update({"w_" + key: v for key, v in words.items()})
    g = seg.groups
    sums = {key: g * (mult * v).sum(axis=1).astype(np.float64) for key, v in costs.items()}
    run = costs["compute"] + costs["fill"]
    port = np.maximum(port_cycles(acc, (words["ifmap_rd"], words["filter_rd"], words["ofmap_rd"]),
                                  (0.0, 0.0, words["ofmap_wr"])), run + costs["wload"])
    sums["port_stall"] = g * (mult * np.maximum(port - run, 0.0)).sum(axis=1)
    busy_shape = mult * np.maximum(run, port)  # (B, 32): a tile lasts its compute or its port time
    busy_rem = g * np.stack([busy_shape[:, _SHAPE_BITS[:, i]].sum(axis=1) for i in range(5)], axis=1)
    return _ExactSums(sums, sums["compute"] + sums["fill"] + sums["port_stall"], busy_rem)


def _innermost(pos: np.ndarray, grid: _Grid, rel: frozenset[str]) -> np.ndarray:
    """Position of an operand's innermost relevant loop with more than one trip (-1: none), ``(O, B)``."""
    r = np.full((pos.shape[0], grid.extent.shape[0]), -1, dtype=np.int64)
    for d in rel:
        i = _IDX[d]
        r = np.maximum(r, np.where(grid.trips[None, :, i] > 1, pos[:, i, None], -1))
    return r


def _refetches(pos: np.ndarray, grid: _Grid, rel: frozenset[str], innermost: np.ndarray) -> np.ndarray:
    """How often an operand is fetched again: trips of the irrelevant loops outside its innermost one."""
    f = np.ones_like(innermost)
    for d in LOOPS:
        if d not in rel:
            i = _IDX[d]
            f = f * np.where(pos[:, i, None] < innermost, grid.trips[None, :, i], 1)
    return f


def _dram_traffic(seg: Layer, acc: Accelerator, pos: np.ndarray, grid: _Grid) -> _DramTraffic:
    """Each operand's footprints summed over its own loops, times its refetches (docstring: "exact")."""
    whole = {d: int(grid.whole[i]) for i, d in enumerate(LOOPS)}
    ext = {d: grid.at(grid.extent, d) for d in LOOPS}
    rows_h = _in_rows_table(whole["p"], seg.stride_h, seg.kernel_h, seg.pad_h, seg.in_h, ext["p"])
    rows_w = _in_rows_table(whole["q"], seg.stride_w, seg.kernel_w, seg.pad_w, seg.in_w, ext["q"])
    a_b, w_b, acc_b, o_b = seg.act_bits, seg.stored_weight_bits, acc.pe.acc_bits, seg.out_bits
    khw, g = seg.kernel_h * seg.kernel_w, seg.groups
    ifmap_once = whole["n"] * whole["c"] * rows_h[0] * rows_w[0] * a_b / 8
    filter_once = whole["m"] * whole["c"] * khw * w_b / 8
    outs = whole["n"] * whole["m"] * whole["p"] * whole["q"]
    r_if = _innermost(pos, grid, RELEVANT["ifmap"])
    r_f = _innermost(pos, grid, RELEVANT["filter"])
    r_o = _innermost(pos, grid, RELEVANT["ofmap"])
    ifmap = g * _refetches(pos, grid, RELEVANT["ifmap"], r_if) * ifmap_once[None, :]
    filt = g * _refetches(pos, grid, RELEVANT["filter"], r_f) * filter_once
    c_outer = pos[:, _IDX["c"], None] < r_o  # partial sums leave the buffer between c-tiles
    psum = g * np.where(c_outer, (grid.at(grid.trips, "c")[None, :] - 1) * outs * acc_b / 8, 0.0)
    first_if = ext["n"] * ext["c"] * rows_h[1] * rows_w[1] * a_b / 8
    first_f = ext["m"] * ext["c"] * khw * w_b / 8
    last = np.prod(grid.remainder[:, [_IDX[d] for d in "nmpq"]], axis=1) * o_b / 8

    def tiles(rel: frozenset[str]) -> np.ndarray:
        return g * np.prod(grid.trips[:, [_IDX[d] for d in LOOPS if d in rel]], axis=1)[None, :]

    n_out = tiles(RELEVANT["ofmap"])
    transfers = {"ifmap": _refetches(pos, grid, RELEVANT["ifmap"], r_if) * tiles(RELEVANT["ifmap"]),
                 "filter": _refetches(pos, grid, RELEVANT["filter"], r_f) * tiles(RELEVANT["filter"]),
                 "psum": np.where(c_outer, (grid.at(grid.trips, "c")[None, :] - 1) * n_out, 0), "out": n_out}
    return _DramTraffic(ifmap, filt, psum, ifmap + filt + psum, psum + g * outs * o_b / 8, r_if, r_f, r_o,
                        first_if + first_f, last, first_if, first_f, transfers)


def _dma_time_bytes(seg: Layer, acc: Accelerator, dram: _DramTraffic) -> _DramTraffic:
    """The traffic in link-equivalent bytes: each transfer moves at the slower of the link (whole elements
    per beat) and its buffer half's ports (``hwsim.engine.element_cycles``), so a port-bound operand's
    bytes count more. The engine spends whole cycles per transfer; so does this, on each operand's mean
    transfer."""
    bw = acc.dram.bandwidth_bytes_per_cycle

    def f(buf: BufferSpec, bits: float) -> float:
        return element_cycles(buf, bits, bw) * 8.0 * bw / bits

    def whole(link_bytes: np.ndarray, n: np.ndarray | int = 1) -> np.ndarray:
        per = np.asarray(link_bytes) / np.maximum(n, 1) / bw
        return n * np.ceil(per - 1e-6) * bw

    f_if, f_f = f(acc.ifmap_sram, seg.act_bits), f(acc.filter_sram, seg.stored_weight_bits)
    f_ps, f_out = f(acc.ofmap_sram, acc.pe.acc_bits), f(acc.ofmap_sram, seg.out_bits)
    n = dram.transfers
    ifmap, filt = whole(dram.ifmap * f_if, n["ifmap"]), whole(dram.filter * f_f, n["filter"])
    psum = whole(dram.psum * f_ps, n["psum"])
    write = psum + whole((dram.write - dram.psum) * f_out, n["out"])
    first_if, first_f = whole(dram.first_ifmap * f_if), whole(dram.first_filter * f_f)
    return dataclasses.replace(dram, ifmap=ifmap, filter=filt, psum=psum, read=ifmap + filt + psum, write=write,
                               first_load=first_if + first_f, last_writeback=whole(dram.last_writeback * f_out),
                               first_ifmap=first_if, first_filter=first_f)


def _smoothed_stall(acc: Accelerator, g: int, pos: np.ndarray, grid: _Grid, sums: _ExactSums,
                    dram: _DramTraffic) -> np.ndarray:
    """The DRAM stall, smoothed per class of tiles (docstring: "the only approximation"), ``(O, B)``."""
    bw = acc.dram.bandwidth_bytes_per_cycle
    busy = sums.busy
    order_loop = np.argsort(pos, axis=1)  # (O, 5): loop index at each position
    trips_at = np.moveaxis(grid.trips[:, order_loop], 0, 1)  # (O, B, 5): trip count at each position
    prefix = g * np.cumprod(trips_at, axis=2)  # tiles visited up to and including each position
    levels = np.concatenate([np.full(prefix.shape[:2] + (1,), g), prefix], axis=2)  # level -1 = groups
    runs = np.diff(np.concatenate([np.ones(prefix.shape[:2] + (1,)), levels], axis=2), axis=2)  # N_L
    n_tiles = levels[..., -1]

    def fetches(r: np.ndarray) -> np.ndarray:
        return np.take_along_axis(levels, (r + 1)[..., None], axis=2)[..., 0]

    # DRAM bytes per fetch of each operand, per ofmap visit (psum re-read, write-back)
    per_fetch = [(dram.ifmap / fetches(dram.innermost_ifmap), dram.innermost_ifmap),
                 (dram.filter / fetches(dram.innermost_filter), dram.innermost_filter),
                 (dram.psum / fetches(dram.innermost_ofmap), dram.innermost_ofmap)]
    wb_per_visit = dram.write / fetches(dram.innermost_ofmap)
    lv = np.arange(-1, 5)[None, None, :]
    load_at = sum(np.where(lv <= r[..., None], a[..., None], 0.0) for a, r in per_fetch)  # (O, B, 6) by level
    wb_at = np.where(lv <= dram.innermost_ofmap[..., None], wb_per_visit[..., None], 0.0)
    z = np.where(trips_at > 1, np.arange(5)[None, None, :], -1).max(axis=2)  # innermost loop with >1 trip
    z = np.where((z < 0) & (g == 1), -2, z)  # -2: a single tile
    zi = np.clip(z + 1, 0, 5)[..., None]
    load_z = np.take_along_axis(load_at, zi, axis=2)[..., 0]
    wb_z = np.take_along_axis(wb_at, zi, axis=2)[..., 0]
    # compute of a tile: the last tile of a run of the innermost loop has its remainder extent there
    z_loop = np.take_along_axis(order_loop[:, None, :].repeat(grid.extent.shape[0], axis=1),
                                np.clip(z, 0, 4)[..., None], axis=2)[..., 0]  # (O, B) innermost loop's index
    trips_z = np.take_along_axis(grid.trips[None, :, :].repeat(pos.shape[0], axis=0), z_loop[..., None],
                                 axis=2)[..., 0]
    rem_busy = np.take_along_axis(sums.busy_remainder[None, :, :].repeat(pos.shape[0], axis=0),
                                  z_loop[..., None], axis=2)[..., 0]
    busy_rem_tile = np.where(z >= 0, rem_busy / (n_tiles / trips_z), busy[None, :] / n_tiles)
    busy_full_tile = np.where(z >= 0, (busy[None, :] - rem_busy) / np.maximum(n_tiles - n_tiles / trips_z, 1),
                              busy[None, :] / n_tiles)

    def hidden(x: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, x / bw - c)

    outer = (lv < z[..., None]) & (z[..., None] > -2)
    by_class = np.where(outer, runs * (hidden(wb_z[..., None] + load_at, busy_rem_tile[..., None])
                                       + hidden(wb_at + load_z[..., None], busy_full_tile[..., None])),
                        0.0).sum(axis=2)
    n_inner = np.maximum(n_tiles - 2 - 2 * np.where(outer, runs, 0).sum(axis=2), 0)
    exposed = (dram.first_load + dram.last_writeback)[None, :] / bw
    stall = exposed + np.where(z > -2, by_class + hidden(load_z, busy_full_tile)
                               + n_inner * hidden(wb_z + load_z, busy_full_tile) + hidden(wb_z, busy_rem_tile), 0.0)
    fully_smoothed = exposed + np.maximum(0.0, (dram.read + dram.write) / bw - exposed - busy[None, :])
    return np.maximum(stall, fully_smoothed)


def _segment_parts(seg: Layer, acc: Accelerator, flow: Dataflow, pos: np.ndarray,
                   tiles: np.ndarray) -> dict[str, np.ndarray]:
    """Summed tile costs, DRAM bytes and (float) stall of one precision segment: arrays of shape (O, B)."""
    grid = _Grid.of(seg, tiles)
    sums = _exact_sums(seg, acc, flow, grid)
    dram = _dram_traffic(seg, acc, pos, grid)
    stall = _smoothed_stall(acc, seg.groups, pos, grid, sums, _dma_time_bytes(seg, acc, dram))
    shape = dram.read.shape
    out = {key: np.broadcast_to(v[None, :], shape) for key, v in sums.sums.items()}
    out.update(dram_ifmap=np.broadcast_to(dram.ifmap, shape), dram_filter=np.broadcast_to(dram.filter, shape),
               dram_psum=np.broadcast_to(dram.psum, shape), rd=dram.read, wr=dram.write,
               wr_psum=np.broadcast_to(dram.psum, shape),
               stall=stall + sums.sums["port_stall"][None, :])
    return out


def _masked(ev: Events, sel: np.ndarray) -> Events:
    """``ev`` where ``sel`` holds (the tilings of one naive-grouping width), zero elsewhere."""
    def w(v: Any) -> Any:
        return np.where(sel[None, :], v, 0.0)
    t = Traffic(*(w(getattr(ev.traffic, k)) for k in _TRAFFIC_KEYS))
    return Events(w(ev.compute_cycles), w(ev.fill_cycles), w(ev.stall_cycles), w(ev.port_stall_cycles), t,
                  tuple((a, b, w(n)) for a, b, n in ev.macs), w(ev.vector_op_bits), w(ev.scale_ops),
                  w(ev.noc_bytes))


def evaluate_mapspace(layer: Layer, acc: Accelerator, dataflow: Dataflow | str, loop_orders: Sequence[str],
                      tiles: np.ndarray | Sequence[Tile] | Tile, grouping: str = "grouped") -> dict[str, np.ndarray]:
    """Costs of every (loop order, tile) pair of a MAC layer: arrays of shape ``(len(loop_orders), B)``.

    ``tiles`` is an integer array ``(B, 5)`` of extents in loop order ``n m c p q`` (clipped to the
    layer). Keys are :data:`COST_KEYS`. Fitting the buffers is not checked here (see :func:`tiles_fit`).
    The counts form one :class:`hwsim.result.Events` of arrays, priced by :func:`hwsim.cost.price`.
    """
    flow = Dataflow(dataflow)
    check_choice("evaluate_tiles", "grouping", grouping, GROUPINGS)
    if not layer.has_macs:
        raise ValueError(f"Layer[{layer.name!r}].kind must be conv2d, linear or matmul for evaluate_tiles, "
                         f"not {layer.kind.value!r}")
    acc.pe.check_bits(f"Layer[{layer.name!r}]", layer.weight_bits, layer.act_bits)
    arr = np.minimum(_as_tiles(tiles), _whole(layer)[None, :])
    pos = _order_positions(loop_orders)
    total = Events()

    def run(segments: list[Segment], sel: np.ndarray | None) -> None:
        nonlocal total
        for bits, channels, channel_bits in segments:
            seg = _segment_layer(layer, bits, channels, channel_bits)
            ev = segment_events(seg, acc, _segment_parts(seg, acc, flow, pos, arr))
            total = total + (ev if sel is None else _masked(ev, sel))

    if layer.channel_weight_bits is None or grouping == "grouped" or layer.groups > 1:
        run(precision_segments(layer, LayerMapping(layer.name, flow, Tile(1, 1, 1, 1, 1), grouping=grouping)), None)
    else:
        for m in np.unique(arr[:, 1]):
            segs = precision_segments(layer, LayerMapping(layer.name, flow, Tile(1, int(m), 1, 1, 1),
                                                          grouping="naive"))
            run(segs, arr[:, 1] == m)
    stall, port = round_stalls(total.stall_cycles, total.port_stall_cycles)
    rounded: dict[str, Any] = {"stall_cycles": stall, "port_stall_cycles": port}
    ev = dataclasses.replace(total, **rounded)  # a record of arrays: one entry per (loop order, tile)
    energy = price(ev, acc)
    shape = (len(loop_orders), arr.shape[0])
    out = {k: getattr(ev, k) for k in ("compute_cycles", "fill_cycles", "stall_cycles", "port_stall_cycles")}
    out.update({k: getattr(ev.traffic, k) for k in _TRAFFIC_KEYS})
    out.update({k: getattr(energy, k) for k in _ENERGY_KEYS})
    out.update(cycles=ev.cycles, energy_pj=energy.total_pj)
    return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape).copy() for k, v in out.items()}


def evaluate_tiles(layer: Layer, acc: Accelerator, dataflow: Dataflow | str, loop_order: str,
                   tiles: np.ndarray | Sequence[Tile] | Tile, grouping: str = "grouped") -> dict[str, np.ndarray]:
    """Costs of a batch of tiles under one dataflow and loop order: arrays of shape ``(B,)``."""
    res = evaluate_mapspace(layer, acc, dataflow, [loop_order], tiles, grouping)
    return {k: v[0] for k, v in res.items()}


def layer_cost(layer: Layer, mapping: LayerMapping, acc: Accelerator, model: str = "fast") -> LayerCost:
    """The cost of ``layer`` under ``mapping``: the one protocol the engine and the fast path answer.

    ``model="engine"`` walks every tile (:func:`hwsim.engine.simulate_layer`); ``model="fast"`` uses the
    closed form above. Both validate the mapping and the bitwidths first and raise ``ValueError``
    naming the layer otherwise.
    """
    check_choice("layer_cost", "model", model, MODELS)
    if model == "engine" or not layer.has_macs:
        # pooling / element-wise layers are closed-form in the engine already
        return LayerCost.from_result(simulate_layer(layer, mapping, acc))
    acc.pe.check_bits(f"Layer[{layer.name!r}]", layer.weight_bits, layer.act_bits)
    mapping.validate(layer, acc)
    r = evaluate_tiles(layer, acc, mapping.dataflow, mapping.loop_order, [mapping.tile], mapping.grouping)
    v = {k: float(a[0]) for k, a in r.items()}
    energy = Energy(**{k: v[k] for k in _ENERGY_KEYS})
    traffic = Traffic(**{k: v[k] for k in _TRAFFIC_KEYS})
    return LayerCost(int(v["compute_cycles"]), int(v["fill_cycles"]), int(v["stall_cycles"]), energy, traffic)
