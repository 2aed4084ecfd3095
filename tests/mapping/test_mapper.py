"""The mapper: exact against brute force on small layers, never worse than the default fold, schedules
that survive a JSON round trip, and one clear error for layers it cannot map."""

import dataclasses
import json

import numpy as np
import pytest

import hwsim
from hwsim.fast import layer_cost, tiles_fit
from hwsim.network import Layer, Network, Stage
from hwsim.schedule import Schedule, Tile, default_mapping, default_schedule, tile_fits
from mapping.mapper import exhaustive_layer, layer_mapspace, map_layer, map_network, objective_value

EDGE = hwsim.resolve_accelerator("edge16_serial")
SMALL = dataclasses.replace(EDGE, name="tiny", ifmap_sram=hwsim.BufferSpec(256), filter_sram=hwsim.BufferSpec(256),
                            ofmap_sram=hwsim.BufferSpec(256))

SMALL_LAYERS = [
    Layer("a", "conv2d", 6, 5, 6, 6, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=3),
    Layer("b", "conv2d", 4, 8, 7, 5, 3, 3, 2, 2, 1, 1, groups=2, weight_bits=2, act_bits=8),
    Layer("c", "linear", 24, 20, batch=3, weight_bits=8, act_bits=2),
    Layer("d", "conv2d", 3, 6, 5, 5, 1, 1, channel_weight_bits=(1, 4, 2, 4, 1, 2), weight_bits=4, act_bits=4),
]


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("la", SMALL_LAYERS, ids=lambda la: la.name)
def test_mapper_matches_brute_force_on_small_layers(la: Layer, objective: str) -> None:
    acc = SMALL
    brute = exhaustive_layer(la, acc, objective)
    assert brute is not None
    best, best_map, n = brute
    choice = map_layer(la, acc, objective, max_mapspace=20_000)
    assert choice.fast_objective == pytest.approx(best)  # the exhaustive optimum is found
    # the brute-force optimum is a valid mapping; the engine-checked pick beats the default fold
    best_map.validate(la, acc)
    dflt = layer_cost(la, default_mapping(la, acc), acc, "engine")
    assert objective_value(objective, choice.cost.cycles, choice.cost.energy_pj) <= \
        objective_value(objective, dflt.cycles, dflt.energy_pj) * (1 + 1e-12)
    assert n > 0 and choice.evaluated > 0


def test_mapspace_tiles_fit_and_thin_to_the_bound() -> None:
    la = Layer("big", "conv2d", 64, 128, 28, 28, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=4)
    tiles = layer_mapspace(la, EDGE, max_mapspace=500)
    assert 0 < len(tiles) <= 500
    assert tiles_fit(la, EDGE, tiles).all()
    for t in tiles[:: max(1, len(tiles) // 25)]:
        assert tile_fits(la, Tile(*(int(x) for x in t)), EDGE) is None


def test_never_worse_than_default_fold_and_json_round_trip(tmp_path) -> None:
    net = hwsim.resolve_network("cascade_digits")
    for objective in ("latency", "energy", "edp"):
        sched = map_network(net, EDGE, objective)
        got, base = hwsim.simulate(sched, EDGE), hwsim.simulate(default_schedule(net, EDGE), EDGE)
        v_got, v_base = (float(objective_value(objective, r.expected_cycles, r.expected_energy.total_pj))
                         for r in (got, base))
        assert v_got <= v_base * (1 + 1e-12)
        path = tmp_path / f"{objective}.json"
        path.write_text(sched.to_json())
        again = Schedule.from_dict(json.loads(path.read_text()))
        assert again == sched
        assert hwsim.simulate(again, EDGE).to_dict() == got.to_dict()


def test_grouped_precision_is_no_slower_than_naive_on_serial_both() -> None:
    loom = hwsim.resolve_accelerator("loom16")
    bits = tuple([8, 1] * 16)
    la = Layer("cq", "conv2d", 16, 32, 8, 8, 3, 3, 1, 1, 1, 1, weight_bits=8, act_bits=4, channel_weight_bits=bits)
    g = map_layer(la, loom, "latency", grouping="grouped", max_mapspace=200, refine=False)
    nv = map_layer(la, loom, "latency", grouping="naive", max_mapspace=200, refine=False)
    best = map_layer(la, loom, "latency", grouping="best", max_mapspace=200, refine=False)
    assert g.cost.cycles < nv.cost.cycles
    assert best.cost.cycles <= min(g.cost.cycles, nv.cost.cycles)


def test_identical_layers_share_one_search_and_cascade_stages_are_all_mapped() -> None:
    la = Layer("x1", "conv2d", 8, 8, 8, 8, 3, 3, 1, 1, 1, 1)
    net = Network("n", (Stage("s1", (la, dataclasses.replace(la, name="x2")), exit_rate=0.5,
                              exit_rule="confidence", threshold=0.9),
                        Stage("s2", (dataclasses.replace(la, name="y1", weight_bits=2),))))
    choices: list = []
    sched = map_network(net, EDGE, "latency", choices=choices)
    assert [m.layer for m in sched.mappings] == ["x1", "x2", "y1"]
    assert sched.mappings[0].tile == sched.mappings[1].tile
    res = hwsim.simulate(sched, EDGE)
    assert res.expected_cycles < res.cycles


def test_bad_layers_get_one_clear_message() -> None:
    with pytest.raises(ValueError,
                       match=r"^Layer\['w9'\]\.weight_bits must be an integer in \[1, 8\], not 9$"):
        map_layer(Layer("w9", "conv2d", 4, 4, 4, 4, weight_bits=9), EDGE)
    crumbs = dataclasses.replace(EDGE, filter_sram=hwsim.BufferSpec(2))
    with pytest.raises(ValueError, match=r"^Layer\['k7'\]: buffers too small for any tile: a 1x1x1x1x1 tile "
                       r"needs 49 bytes of filter_sram per buffer half, but filter_sram\.size_bytes=2 holds "
                       r"1 per half \(double buffering\)$"):
        map_layer(Layer("k7", "conv2d", 4, 4, 9, 9, 7, 7), crumbs)
    with pytest.raises(ValueError, match=r"^map_layer\.objective must be one of "
                       r"\['latency', 'energy', 'edp'\], not 'speed'$"):
        map_layer(SMALL_LAYERS[0], EDGE, "speed")
    with pytest.raises(ValueError, match=r"^map_layer\.max_mapspace must be an integer >= 1, not 0$"):
        map_layer(SMALL_LAYERS[0], EDGE, max_mapspace=0)
    with pytest.raises(TypeError,
                       match=r"^map_network\.network must be a hwsim\.Network, not 'resnet18'$"):
        map_network("resnet18", EDGE)  # type: ignore[arg-type]


def test_pruned_mapspace_keeps_maximal_tiles_and_maps_close_to_unpruned() -> None:
    """Pruning keeps the fitting tiles no loop can grow (to its next candidate extent) and a small seeded
    sample; the mapped layer stays close to the unpruned search and never worse than the default fold."""
    from mapping.mapper import _maximal, candidate_extents

    la = Layer("mid", "conv2d", 128, 128, 28, 28, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=4)
    lists = [candidate_extents(w, (EDGE.rows, EDGE.cols)) for w in (1, 128, 128, 28, 28)]
    grid = np.stack([g.ravel() for g in np.meshgrid(*lists, indexing="ij")], axis=1)
    fitting = grid[tiles_fit(la, EDGE, grid)]
    top = _maximal(fitting, lists, lambda t: tiles_fit(la, EDGE, t))
    assert 0 < len(top) < len(fitting) // 50
    for i, vals in enumerate(lists):  # growing any loop of a maximal tile overflows a buffer
        v = np.asarray(vals)
        pos = np.searchsorted(v, top[:, i], side="right")
        ok = pos < len(v)
        grown = top[ok].copy()
        grown[:, i] = v[pos[ok]]
        assert not tiles_fit(la, EDGE, grown).any()
    pruned, full = layer_mapspace(la, EDGE), layer_mapspace(la, EDGE, prune=False)
    assert len(pruned) < len(full) // 5 and tiles_fit(la, EDGE, pruned).all()
    for objective in ("latency", "edp"):
        a, b = map_layer(la, EDGE, objective), map_layer(la, EDGE, objective, prune=False)
        va, vb = (objective_value(objective, c.cost.cycles, c.cost.energy_pj) for c in (a, b))
        assert va <= vb * 1.2 and a.evaluated < b.evaluated
        dflt = layer_cost(la, default_mapping(la, EDGE), EDGE, "engine")
        assert va <= objective_value(objective, dflt.cycles, dflt.energy_pj) * (1 + 1e-12)


def test_a_tile_filter_keeps_the_search_and_the_checked_candidates_to_its_tiles() -> None:
    """``keep`` (a hardware's limits beyond the buffers): every tile searched, every engine-checked candidate
    and the pick satisfy it, the default fold included only where it does; a filter that keeps nothing is
    one error naming the layer."""
    la = SMALL_LAYERS[0]
    seen: list[np.ndarray] = []

    def keep(layer: Layer, flow: hwsim.Dataflow, tiles: np.ndarray) -> np.ndarray:
        ok = (tiles[:, 1] <= 2) & ((flow is hwsim.Dataflow.OS) | (tiles[:, 3] == 1))
        seen.append(tiles[ok])
        return ok

    choice = map_layer(la, SMALL, "edp", keep=keep)
    assert len(seen) > 2 and choice.candidates
    for m, _ in choice.candidates:
        assert m.tile.m <= 2 and (m.dataflow is hwsim.Dataflow.OS or m.tile.p == 1)
    assert choice.mapping in [m for m, _ in choice.candidates]
    free = map_layer(la, SMALL, "edp")
    assert free.mapping.tile.m > 2   # the filter did change the choice
    sched = map_network(Network("n", (Stage("s", (la,)),)), SMALL, "edp", keep=keep)
    assert sched.mappings[0].tile.m <= 2
    # the mapspace is pruned to the tiles maximal among each dataflow's kept ones: a limit that every tile
    # maximal for the buffers alone breaks (WS only, one filter, the whole reduction) still leaves tiles
    mid = Layer("mid", "conv2d", 128, 128, 28, 28, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=4)

    def one_filter(layer: Layer, flow: hwsim.Dataflow, tiles: np.ndarray) -> np.ndarray:
        return (flow is hwsim.Dataflow.WS) & (tiles[:, 1] == 1) & (tiles[:, 2] == 128)

    ws = hwsim.Dataflow.WS
    assert not one_filter(mid, ws, layer_mapspace(mid, EDGE)).any()
    assert one_filter(mid, ws, layer_mapspace(mid, EDGE, keep=one_filter)).all()
    assert map_layer(mid, EDGE, keep=one_filter).mapping.tile.m == 1
    with pytest.raises(ValueError, match=r"^Layer\['a'\]: no tile that fits the buffers is kept by the mapper's tile "
                                         r"filter under any of the dataflows \['os', 'ws'\]$"):
        map_layer(la, SMALL, "edp", keep=lambda layer, flow, tiles: np.zeros(len(tiles), dtype=bool))
