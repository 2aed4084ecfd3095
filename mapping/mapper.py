"""The mapper: per layer, the dataflow, loop order and tile sizes that minimise latency, energy or EDP.

Search (docs/mapping.md gives the details):

1. **Mapspace.** Per loop ``n m c p q`` a list of candidate tile extents: every extent ``1..W`` when the
   full product fits ``max_mapspace`` (then every fitting tile is searched), otherwise the extents that
   give each trip count its most balanced tiles (``ceil(W/k)``), the multiples of the array's rows and
   columns, and ``W`` itself. Tiles that do not fit the buffers (double-buffered, at the layer's actual
   bitwidths) are dropped with a vectorised :func:`hwsim.schedule.tile_fits`. With ``prune`` (the
   default) only the *maximal* fitting tiles are kept (no loop can grow to its next candidate and still
   fit), plus a seeded sample of 2 % of ``max_mapspace`` of the others; without it, the lists are thinned
   (the array multiples and the 2-4-tile splits kept longest) until at most ``max_mapspace`` tiles fit.
2. **Evaluation.** Every (dataflow, loop order, tile) is costed by :mod:`hwsim.fast` in one numpy batch.
3. **Refinement.** Coordinate descent: each loop's extent is swept (over ``1..W`` for loops up to
   ``SWEEP_ALL_UP_TO`` iterations, over the balanced and aligned extents beyond) around the best few
   distinct tiles, then around the incumbent until nothing improves.
4. **Check.** The ``top_k`` best points and :func:`hwsim.schedule.default_mapping` are simulated by the
   engine; the best of them by the engine's numbers wins, so a layer is never worse than the
   default fold.

:func:`map_network` then picks one of the checked points per layer: the per-layer optimum for
latency or energy (they add up); for EDP a few rounds of re-weighting towards the network's product
``(Σ cycles)·(Σ energy)``, keeping the all-default schedule as a candidate.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hwsim.accelerator import Accelerator, Dataflow
from hwsim.errors import check_choice, check_int
from hwsim.fast import LayerCost, evaluate_mapspace, layer_cost, loop_orders, tiles_fit
from hwsim.network import Layer, Network
from hwsim.schedule import GROUPINGS, LOOPS, LayerMapping, Schedule, Tile, default_mapping, tile_fits

__all__ = ["OBJECTIVES", "LayerChoice", "objective_value", "candidate_extents", "layer_mapspace", "map_layer",
           "exhaustive_layer", "map_network", "DEFAULT_MAX_MAPSPACE", "TileFilter"]

OBJECTIVES = ("latency", "energy", "edp")
DEFAULT_MAX_MAPSPACE = 10_000
"""Default bound on the number of fitting tiles evaluated per layer and dataflow."""

TileFilter = Callable[[Layer, Dataflow, np.ndarray], np.ndarray]
"""Which tiles (rows ``n m c p q``) a layer may use under a dataflow, as a boolean per tile: limits of a
particular hardware beyond the buffers (``hwsim map --for-rtl``: the generated core's, ``rtl.program.core_tiles``)."""


@dataclass(frozen=True, slots=True)
class LayerChoice:
    """The mapping chosen for one layer, its cost by the engine, and what the search looked at."""

    mapping: LayerMapping
    cost: LayerCost
    fast_objective: float
    """The best objective the fast model found in the searched mapspace."""
    evaluated: int
    """(dataflow, loop order, tile) points the fast model costed."""
    candidates: tuple[tuple[LayerMapping, LayerCost], ...] = ()
    """Engine-checked alternatives (including the default fold), for network-level trade-offs."""


def objective_value(objective: str, cycles: float | np.ndarray, energy_pj: float | np.ndarray
                    ) -> float | np.ndarray:
    """Latency in cycles, energy in pJ, or their product (pJ x cycles)."""
    if objective == "latency":
        return cycles
    if objective == "energy":
        return energy_pj
    return cycles * energy_pj


def _cost_objective(objective: str, cost: LayerCost) -> float:
    return float(objective_value(objective, cost.cycles, cost.energy_pj))


def _whole(layer: Layer) -> list[int]:
    w = Tile.whole(layer)
    return [getattr(w, d) for d in LOOPS]


def candidate_extents(whole: int, aligns: Sequence[int] = ()) -> list[int]:
    """Tile extents worth trying along a loop of ``whole`` iterations: ``ceil(whole/k)`` for every trip
    count ``k`` (the most balanced tiles), multiples of each of ``aligns`` and ``whole``; sorted."""
    check_int("candidate_extents", "whole", whole, 1)
    vals = {-(-whole // k) for k in range(1, whole + 1)}
    for a in aligns:
        if a > 0:
            vals.update(range(a, whole + 1, a))
    vals.add(whole)
    return sorted(vals)


def _core(whole: int, aligns: Sequence[int]) -> set[int]:
    """Extents thinning keeps longest: the whole loop, multiples of the array sides, 2 to 4 balanced tiles."""
    core = {whole} | {-(-whole // k) for k in range(2, 5)}
    for a in aligns:
        core.update(range(a, whole + 1, a))
    return core


def _thin(values: list[int], core: set[int]) -> list[int]:
    """Drop every other value outside ``core``; once only core values are left, every other core value,
    always keeping the largest (the whole loop)."""
    extra = [v for v in values if v not in core]
    if extra:
        drop = set(extra[1::2]) if len(extra) > 1 else set(extra)
        return [v for v in values if v not in drop]
    kept = values[::2]
    if kept[-1] != values[-1]:
        kept.append(values[-1])
    return kept


def _product(lists: Sequence[Sequence[int]]) -> np.ndarray:
    grids = np.meshgrid(*[np.asarray(v, dtype=np.int64) for v in lists], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


REFINE_STARTS = 4
"""Distinct best tiles the coordinate-descent refinement starts from."""
PRUNED_SAMPLE_FRACTION = 0.02
"""With pruning, the share of ``max_mapspace`` spent on an even spread of the non-maximal fitting tiles."""
MAXIMAL_PRODUCT_CAP = 50_000
"""Largest candidate-list product enumerated before maximal pruning (lists are thinned above it)."""


def _maximal(tiles: np.ndarray, lists: Sequence[Sequence[int]], fits: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The fitting tiles that no loop can grow to its next candidate extent and still fit (``fits``).

    Growing a loop's tile (fewer trips, same balanced shape of the others) re-fetches the operands that
    loop does not index less often; the refinement step sweeps every extent around the best of these,
    so tiles between the candidates are still reached.
    """
    keep = np.ones(len(tiles), dtype=bool)
    for i in range(5):
        vals = np.asarray(lists[i], dtype=np.int64)
        pos = np.searchsorted(vals, tiles[:, i], side="right")
        has_next = pos < len(vals)
        grown = tiles[has_next].copy()
        grown[:, i] = vals[pos[has_next]]
        grows = np.zeros(len(tiles), dtype=bool)
        grows[np.flatnonzero(has_next)[fits(grown)]] = True
        keep &= ~grows
    return tiles[keep]


def layer_mapspace(layer: Layer, acc: Accelerator, max_mapspace: int = DEFAULT_MAX_MAPSPACE, *,
                   prune: bool = True, keep: TileFilter | None = None) -> np.ndarray:
    """The candidate tiles of ``layer`` that fit the buffers: an array ``(B, 5)`` in loop order ``nmcpq``.

    Exhaustive (every extent of every loop) when that product is at most ``max_mapspace``. Otherwise
    :func:`candidate_extents` lists; with ``prune`` (the default) only their *maximal* fitting tiles
    (:func:`_maximal`: typically tens to a few hundred of the tens of thousands that fit; not for layers
    with per-channel widths, whose best tiles follow the precision groups rather than the buffers), else the lists
    thinned until at most ``max_mapspace`` fitting tiles remain. With ``keep``, a tile must also be kept under
    some dataflow, and the maximal tiles are those of each dataflow's kept tiles (a limit one dataflow has,
    such as WS's ofmap banks, does not prune the tiles of another). Raises ``ValueError`` naming the layer
    when no tile at all fits.
    """
    def fits(t: np.ndarray, flow: Dataflow | None = None) -> np.ndarray:
        ok = tiles_fit(layer, acc, t)
        if keep is None:
            return ok
        flows = acc.dataflows if flow is None else (flow,)
        return ok & np.logical_or.reduce([keep(layer, f, t) for f in flows])

    check_int("map_layer", "max_mapspace", max_mapspace, 1)
    whole = _whole(layer)
    aligns = (acc.rows, acc.cols)
    cores = [_core(w, aligns) for w in whole]
    exhaustive = math.prod(whole) <= max_mapspace
    if exhaustive:
        lists = [list(range(1, w + 1)) for w in whole]
    else:
        lists = [candidate_extents(w, aligns) for w in whole]
    while True:
        size = math.prod(len(v) for v in lists)
        if prune and not exhaustive and layer.channel_weight_bits is None:
            if size <= MAXIMAL_PRODUCT_CAP or all(len(v) <= 2 for v in lists):
                tiles = _product(lists)
                fitting = tiles[fits(tiles)]
                per_flow: list[Dataflow | None] = [None] if keep is None else list(acc.dataflows)
                tiles = np.concatenate([np.zeros((0, 5), dtype=np.int64)] + [
                    _maximal(fitting[fits(fitting, f)], lists, functools.partial(fits, flow=f)) for f in per_flow])
                spread = max(1, PRUNED_SAMPLE_FRACTION * max_mapspace // 1)
                if len(fitting) > spread:  # plus a sample of the rest (seeded: the same every run)
                    pick = np.random.default_rng(0).choice(len(fitting), int(spread), replace=False)
                    fitting = fitting[np.sort(pick)]
                tiles = np.unique(np.concatenate([tiles, fitting]), axis=0)
                if len(tiles) > max_mapspace:
                    tiles = tiles[np.linspace(0, len(tiles) - 1, max_mapspace).astype(np.int64)]
                break
        elif size <= 8 * max_mapspace:
            tiles = _product(lists)
            tiles = tiles[fits(tiles)]
            if len(tiles) <= max_mapspace or all(len(v) <= 2 for v in lists):
                break
        i = max(range(5), key=lambda j: (len(lists[j]), -j))
        lists[i] = _thin(lists[i], cores[i])
    if len(tiles) == 0:
        one = Tile(1, 1, 1, 1, 1)
        reason = tile_fits(layer, one, acc)
        if reason is not None:
            raise ValueError(f"Layer[{layer.name!r}]: buffers too small for any tile: a 1x1x1x1x1 tile {reason}")
        tiles = np.ones((1, 5), dtype=np.int64)
    return tiles


@dataclass(slots=True)
class _Best:
    """Running ``top_k`` of (objective, flow, order, tile) points, distinct by point."""

    k: int
    items: list[tuple[float, str, str, tuple[int, ...]]] = dataclasses.field(default_factory=list)

    def offer(self, obj: np.ndarray, flow: str, orders: Sequence[str], tiles: np.ndarray) -> None:
        flat = obj.ravel()
        n = min(self.k, flat.size)
        idx = np.argpartition(flat, n - 1)[:n] if flat.size > n else np.arange(flat.size)
        seen = {(f, o, t) for _, f, o, t in self.items}
        for i in idx:
            o, b = divmod(int(i), tiles.shape[0])
            key = (flow, orders[o], tuple(int(x) for x in tiles[b]))
            if key not in seen:
                self.items.append((float(flat[i]), *key))
                seen.add(key)
        self.items.sort(key=lambda x: (x[0], x[1], x[2], x[3]))
        del self.items[self.k:]


def _search(layer: Layer, acc: Accelerator, objective: str, grouping: str, tiles: np.ndarray, best: _Best,
            flows: Sequence[Dataflow], orders: Sequence[str], keep: TileFilter | None = None) -> int:
    n = 0
    for flow in flows:
        kept = tiles if keep is None else tiles[keep(layer, flow, tiles)]
        if not len(kept):
            continue
        r = evaluate_mapspace(layer, acc, flow, orders, kept, grouping)
        best.offer(np.asarray(objective_value(objective, r["cycles"], r["energy_pj"])), flow.value, orders, kept)
        n += r["cycles"].size
    return n


SWEEP_ALL_UP_TO = 64
"""Loops up to this many iterations are swept over every extent; longer ones over
:func:`candidate_extents` (the balanced extents of every trip count and the array-aligned ones: any
other extent has the trip count of a balanced one with a larger footprint)."""


def _sweep_values(whole: int, aligns: Sequence[int]) -> np.ndarray:
    if whole <= SWEEP_ALL_UP_TO:
        return np.arange(1, whole + 1, dtype=np.int64)
    return np.asarray(candidate_extents(whole, aligns), dtype=np.int64)


def _sweeps(layer: Layer, acc: Accelerator, bases: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Every tile that differs from one of ``bases`` in one loop's extent (:func:`_sweep_values`)."""
    whole = _whole(layer)
    values = [_sweep_values(w, (acc.rows, acc.cols)) for w in whole]
    batch = []
    for b in bases:
        base = np.array(b, dtype=np.int64)
        for i, v in enumerate(values):
            t = np.repeat(base[None, :], len(v), axis=0)
            t[:, i] = v
            batch.append(t)
    tiles = np.unique(np.concatenate(batch), axis=0)
    return tiles[tiles_fit(layer, acc, tiles)]


def _refine(layer: Layer, acc: Accelerator, objective: str, grouping: str, best: _Best,
            flows: Sequence[Dataflow], orders: Sequence[str], starts: int = 4, rounds: int = 4,
            keep: TileFilter | None = None) -> int:
    """Coordinate descent: sweep each loop's extent over ``1..W`` around the ``starts`` best distinct
    tiles, then around the incumbent, until it stops improving."""
    n = 0
    seeds = list(dict.fromkeys(t for _, _, _, t in best.items))[:starts]
    if not seeds:
        return n
    n += _search(layer, acc, objective, grouping, _sweeps(layer, acc, seeds), best, flows, orders, keep)
    for _ in range(rounds):
        before = best.items[0]
        n += _search(layer, acc, objective, grouping, _sweeps(layer, acc, [before[3]]), best, flows, orders, keep)
        if best.items[0] == before:
            break
    return n


def _groupings(layer: Layer, grouping: str) -> tuple[str, ...]:
    check_choice("map_layer", "grouping", grouping, (*GROUPINGS, "best"))
    if layer.channel_weight_bits is None:
        return ("grouped",)
    return GROUPINGS if grouping == "best" else (grouping,)


def _check_layer(layer: Layer, acc: Accelerator, objective: str) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"map_layer layer must be a hwsim.Layer, not {layer!r}")
    check_choice("map_layer", "objective", objective, OBJECTIVES)
    acc.pe.check_bits(f"Layer[{layer.name!r}]", layer.weight_bits, layer.act_bits)


def _data_layer_choice(layer: Layer, acc: Accelerator, objective: str) -> LayerChoice:
    m = default_mapping(layer, acc)
    cost = layer_cost(layer, m, acc, "engine")
    return LayerChoice(m, cost, _cost_objective(objective, cost), 1, ((m, cost),))


def _checked(layer: Layer, acc: Accelerator, objective: str, best_by_grouping: dict[str, _Best], evaluated: int,
             top_k: int, keep: TileFilter | None = None) -> LayerChoice:
    pool: list[tuple[LayerMapping, LayerCost]] = []
    d = default_mapping(layer, acc)  # the default fold first: map_network's fallback
    for flow in acc.dataflows:
        if keep is None or keep(layer, flow, np.array([dataclasses.astuple(d.tile)]))[0]:
            dm = dataclasses.replace(d, dataflow=flow)
            pool.append((dm, layer_cost(layer, dm, acc, "engine")))
    for grouping, best in best_by_grouping.items():
        for _, flow_name, order, tile in best.items[:top_k]:
            m = LayerMapping(layer.name, Dataflow(flow_name), Tile(*tile), order, grouping)
            pool.append((m, layer_cost(layer, m, acc, "engine")))
    if not pool:
        raise ValueError(f"Layer[{layer.name!r}]: no tile that fits the buffers is kept by the mapper's tile filter "
                         f"under any of the dataflows {[f.value for f in acc.dataflows]}")
    mapping, cost = min(pool, key=lambda mc: _cost_objective(objective, mc[1]))
    fast_best = min((b.items[0][0] for b in best_by_grouping.values() if b.items), default=float("nan"))
    return LayerChoice(mapping, cost, fast_best, evaluated, tuple(pool))


def map_layer(layer: Layer, acc: Accelerator, objective: str = "edp", *,
              max_mapspace: int = DEFAULT_MAX_MAPSPACE, grouping: str = "grouped", top_k: int = 4,
              refine: bool = True, prune: bool = True, keep: TileFilter | None = None) -> LayerChoice:
    """Choose dataflow, loop order and tile of one layer (see the module docstring).

    ``grouping`` applies to layers with per-channel weight bits: ``"grouped"``, ``"naive"`` or
    ``"best"`` (search both). ``keep`` (a :data:`TileFilter`) leaves out the tiles a particular hardware
    cannot run, in the search and among the checked candidates. Raises ``ValueError`` naming the layer for
    bitwidths the PE cannot run, buffers too small for any tile, or no tile kept.
    """
    _check_layer(layer, acc, objective)
    check_int("map_layer", "top_k", top_k, 1)
    if not layer.has_macs:
        return _data_layer_choice(layer, acc, objective)
    tiles = layer_mapspace(layer, acc, max_mapspace, prune=prune, keep=keep)
    orders = loop_orders(layer)
    bests: dict[str, _Best] = {}
    n = 0
    for g in _groupings(layer, grouping):
        best = _Best(max(top_k, 8))
        n += _search(layer, acc, objective, g, tiles, best, acc.dataflows, orders, keep)
        if refine:
            n += _refine(layer, acc, objective, g, best, acc.dataflows, orders, starts=REFINE_STARTS, keep=keep)
        bests[g] = best
    return _checked(layer, acc, objective, bests, n, top_k, keep)


def exhaustive_layer(layer: Layer, acc: Accelerator, objective: str = "edp", *, grouping: str = "grouped",
                     chunk: int = 1 << 16, max_points: int | None = None) -> tuple[float, LayerMapping, int] | None:
    """Brute force with the fast model: every tile extent of every loop, every loop order and dataflow.

    Returns ``(best objective, its mapping, points evaluated)``, or ``None`` when more than
    ``max_points`` fitting (dataflow, order, tile) points exist. :func:`map_layer` is checked against it.
    """
    _check_layer(layer, acc, objective)
    whole = _whole(layer)
    orders = loop_orders(layer)
    per_tile = len(orders) * len(acc.dataflows)
    total = math.prod(whole)

    def blocks() -> Iterator[np.ndarray]:
        for lo in range(0, total, chunk):
            idx = np.arange(lo, min(lo + chunk, total))
            block = np.stack(np.unravel_index(idx, whole), axis=1).astype(np.int64) + 1
            yield block[tiles_fit(layer, acc, block)]

    if max_points is not None:
        fitting = 0
        for block in blocks():
            fitting += len(block)
            if fitting * per_tile > max_points:
                return None
    best = _Best(1)
    n = 0
    for block in blocks():
        if len(block):
            n += _search(layer, acc, objective, grouping, block, best, acc.dataflows, orders)
    if not best.items:
        raise ValueError(f"Layer[{layer.name!r}]: buffers too small for any tile")
    obj, flow, order, tile = best.items[0]
    return obj, LayerMapping(layer.name, Dataflow(flow), Tile(*tile), order, grouping), n


def _shape_key(layer: Layer) -> Layer:
    return dataclasses.replace(layer, name="layer", inputs=())


def map_network(network: Network, acc: Accelerator, objective: str = "edp", *,
                max_mapspace: int = DEFAULT_MAX_MAPSPACE, grouping: str = "grouped", top_k: int = 4,
                choices: list[LayerChoice] | None = None, prune: bool = True,
                keep: TileFilter | None = None) -> Schedule:
    """Map every layer of ``network`` (every stage of a cascade) and return the :class:`hwsim.Schedule`.

    Layers of identical shape and bitwidths are searched once. For ``"edp"`` the per-layer candidates
    are combined to minimise the network's expected (reach-probability weighted) cycles x energy.
    ``choices``, when given, receives the per-layer :class:`LayerChoice` values (for reports); ``keep``
    is :func:`map_layer`'s tile filter.
    """
    if not isinstance(network, Network):
        raise TypeError(f"map_network.network must be a hwsim.Network, not {network!r}")
    check_choice("map_network", "objective", objective, OBJECTIVES)
    cache: dict[Layer, LayerChoice] = {}
    picked: list[LayerChoice] = []
    weights: list[float] = []
    for stage, reach in zip(network.stages, network.reach_probabilities(), strict=True):
        for la in stage.layers:
            key = _shape_key(la)
            if key not in cache:
                cache[key] = map_layer(la, acc, objective, max_mapspace=max_mapspace, grouping=grouping,
                                       top_k=top_k, prune=prune, keep=keep)
            ch = cache[key]
            rename = [(dataclasses.replace(m, layer=la.name), c) for m, c in ch.candidates]
            picked.append(LayerChoice(dataclasses.replace(ch.mapping, layer=la.name), ch.cost, ch.fast_objective,
                                      ch.evaluated, tuple(rename)))
            weights.append(reach)
    if objective == "edp":
        picked = _combine_edp(picked, weights)
    if choices is not None:
        choices.extend(picked)
    return Schedule(network, tuple(c.mapping for c in picked))


def _combine_edp(picked: list[LayerChoice], weights: list[float]) -> list[LayerChoice]:
    """Pick one checked candidate per layer to minimise (Σ w·cycles)·(Σ w·energy)."""
    cands = [list(c.candidates) or [(c.mapping, c.cost)] for c in picked]

    def totals(sel: list[int]) -> tuple[float, float]:
        cyc = sum(w * cands[i][j][1].cycles for i, (w, j) in enumerate(zip(weights, sel, strict=True)))
        en = sum(w * cands[i][j][1].energy_pj for i, (w, j) in enumerate(zip(weights, sel, strict=True)))
        return cyc, en

    def index_of(i: int, m: LayerMapping) -> int:
        return next(j for j, (mm, _) in enumerate(cands[i]) if mm == m)

    def best_index(i: int, cyc: float, en: float) -> int:
        """Candidate of layer ``i`` minimising its first-order change of cycles x energy."""
        return min(range(len(cands[i])), key=lambda j: cands[i][j][1].cycles * en + cands[i][j][1].energy_pj * cyc)

    start = [index_of(i, c.mapping) for i, c in enumerate(picked)]
    default = [0] * len(cands)  # candidate 0 is the default fold (hwsim.schedule.default_mapping)
    best_sel, best_val = None, math.inf
    for sel in (start, default):
        for _ in range(8):
            cyc, en = totals(sel)
            val = cyc * en
            if val < best_val:
                best_sel, best_val = list(sel), val
            new = [best_index(i, cyc, en) for i in range(len(cands))]
            if new == sel:
                break
            sel = new
    assert best_sel is not None
    out: list[LayerChoice] = []
    for c, j in zip(picked, best_sel, strict=True):
        m, cost = cands[len(out)][j]
        out.append(dataclasses.replace(c, mapping=m, cost=cost))
    return out
