"""The fast path against the engine: the same question, answered in closed form.

Measured on 5,986 random layers / tiles / loop orders / densities / BWA planes (docs/models.md, "Fast
path"): compute, fill, SRAM and DRAM traffic and every energy term but leakage agree exactly; only the
stall (DRAM and SRAM ports) is approximate: (engine - fast) / engine cycles fell in [-5.6 %, +30.5 %] (95 %
of cases within 2.9 %), energy in [-0.1 %, +0.5 %]. The bounds below leave a margin over those extremes.
"""

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.fast import LayerCost, evaluate_mapspace, evaluate_tiles, layer_cost, loop_orders, tiles_fit
from hwsim.network import Layer
from hwsim.result import Traffic
from hwsim.schedule import LOOPS, LayerMapping, Tile, default_mapping, tile_fits

ACCS = {n: hwsim.resolve_accelerator(n) for n in ("edge16_serial", "systolic32", "bitfusion16", "loom16",
                                                   "edge8_serial")}
CYCLES_LO, CYCLES_HI = -0.20, 0.35
ENERGY_LO, ENERGY_HI = -0.02, 0.06


@st.composite
def cases(draw: st.DrawFn) -> tuple[Layer, LayerMapping, hwsim.Accelerator]:
    acc = ACCS[draw(st.sampled_from(sorted(ACCS)))]
    g = draw(st.sampled_from([1, 1, 1, 2, 4]))
    cin, cout = g * draw(st.integers(1, 10)), g * draw(st.integers(1, 10))
    wb = draw(st.integers(1, acc.pe.max_weight_bits))
    ab = draw(st.integers(1, acc.pe.max_act_bits))
    cwb = None
    if draw(st.booleans()):
        cwb = tuple(draw(st.lists(st.integers(1, wb), min_size=cout, max_size=cout)))
        wb = max(cwb)
    if draw(st.integers(0, 4)) == 0:
        la = Layer("l", "linear", cin, cout, batch=draw(st.integers(1, 4)), weight_bits=wb, act_bits=ab,
                   channel_weight_bits=cwb)
    else:
        k = draw(st.sampled_from([1, 3, 5]))
        s = draw(st.sampled_from([1, 2]))
        pad = draw(st.integers(0, k // 2))
        h = draw(st.integers(k, 12))
        la = Layer("l", "conv2d", cin, cout, h, h + draw(st.integers(0, 3)), k, k, s, s, pad, pad, groups=g,
                   batch=draw(st.integers(1, 2)), weight_bits=wb, act_bits=ab, channel_weight_bits=cwb)
    la = dataclasses.replace(la, weight_density=draw(st.sampled_from([1.0, 1.0, 0.5, 0.3])),
                             bit_scales=draw(st.sampled_from([0, 0, 0, ab])))
    whole = Tile.whole(la)
    tile = Tile(*(draw(st.integers(1, getattr(whole, d))) for d in LOOPS))
    order = "".join(draw(st.permutations(LOOPS)))
    m = LayerMapping("l", draw(st.sampled_from(acc.dataflows)), tile, order, draw(st.sampled_from(["grouped", "naive"])))
    return la, m, acc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases())
def test_fast_agrees_with_engine(case: tuple[Layer, LayerMapping, hwsim.Accelerator]) -> None:
    la, m, acc = case
    fit = tile_fits(la, m.tile, acc)
    if fit is not None:
        with pytest.raises(ValueError, match="^" + re.escape(f"LayerMapping[{m.layer!r}].tile {fit}") + "$"):
            layer_cost(la, m, acc, "fast")
        return
    e, f = layer_cost(la, m, acc, "engine"), layer_cost(la, m, acc, "fast")
    assert (f.compute_cycles, f.fill_cycles) == (e.compute_cycles, e.fill_cycles)
    for fld in dataclasses.fields(Traffic):
        assert getattr(f.traffic, fld.name) == pytest.approx(getattr(e.traffic, fld.name), rel=1e-9, abs=1e-9)
    assert CYCLES_LO <= (e.cycles - f.cycles) / e.cycles <= CYCLES_HI
    assert ENERGY_LO <= (e.energy_pj - f.energy_pj) / e.energy_pj <= ENERGY_HI
    # every energy term but leakage (which follows the stall) is exact
    for fld in ("mac_pj", "ifmap_sram_pj", "filter_sram_pj", "ofmap_sram_pj", "dram_pj", "noc_pj", "scale_pj"):
        assert getattr(f.energy, fld) == pytest.approx(getattr(e.energy, fld), rel=1e-9, abs=1e-9)


def test_batch_equals_single_calls_and_orders() -> None:
    acc = ACCS["edge16_serial"]
    la = Layer("c", "conv2d", 16, 24, 10, 10, 3, 3, 1, 1, 1, 1, weight_bits=4, act_bits=3)
    rng = np.random.default_rng(0)
    whole = np.array([getattr(Tile.whole(la), d) for d in LOOPS])
    tiles = rng.integers(1, whole + 1, size=(40, 5))
    orders = loop_orders(la)
    assert len(orders) == 24 and all(o.startswith("n") for o in orders)  # batch 1: n pinned outermost
    batch = evaluate_mapspace(la, acc, "ws", orders, tiles)
    assert batch["cycles"].shape == (24, 40)
    one = evaluate_tiles(la, acc, "ws", orders[5], tiles)
    np.testing.assert_array_equal(one["cycles"], batch["cycles"][5])
    for b in (0, 17, 39):
        t = Tile(*(int(x) for x in tiles[b]))
        if tile_fits(la, t, acc) is None:
            c = layer_cost(la, LayerMapping("c", "ws", t, orders[5]), acc)
            assert c.cycles == one["cycles"][b] and c.energy_pj == pytest.approx(one["energy_pj"][b])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 40), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 8), st.integers(1, 8))
def test_tiles_fit_matches_tile_fits(n: int, m: int, c: int, p: int, q: int, wb: int, ab: int) -> None:
    acc = ACCS["edge8_serial"]
    la = Layer("c", "conv2d", 40, 40, 9, 9, 3, 3, 1, 1, 1, 1, batch=6, weight_bits=wb, act_bits=ab)
    t = Tile(n, m, c, p, q)
    assert bool(tiles_fit(la, acc, np.array([[n, m, c, p, q]]))[0]) == (tile_fits(la, t, acc) is None)


def test_layer_cost_protocol_values() -> None:
    acc = ACCS["edge16_serial"]
    la = Layer("c", "conv2d", 8, 8, 6, 6, 3, 3, 1, 1, 1, 1)
    m = default_mapping(la, acc)
    a, b = layer_cost(la, m, acc, "fast"), layer_cost(la, m, acc, "engine")
    s = a + b
    assert s.cycles == a.cycles + b.cycles and s.energy_pj == pytest.approx(a.energy_pj + b.energy_pj)
    assert LayerCost.zero() + a == a
    assert a.edp == a.cycles * a.energy_pj
    pool = Layer("p", "pool", 8, 8, 6, 6, 2, 2, 2, 2)
    pm = default_mapping(pool, acc)
    assert layer_cost(pool, pm, acc, "fast") == layer_cost(pool, pm, acc, "engine")
    assert math.isclose(LayerCost.from_result(hwsim.simulate_layer(la, m, acc)).energy_pj, b.energy_pj)


def test_bad_inputs_name_the_problem() -> None:
    acc = ACCS["edge16_serial"]
    la = Layer("c", "conv2d", 8, 8, 6, 6, 3, 3, weight_bits=9)
    with pytest.raises(ValueError, match=r"^Layer\['c'\]\.weight_bits must be an integer in \[1, 8\], "
                                         r"not 9$"):
        evaluate_tiles(la, acc, "os", "nmcpq", np.ones((1, 5), dtype=int))
    ok = dataclasses.replace(la, weight_bits=8)
    with pytest.raises(ValueError, match=r"^evaluate_tiles loop_order must be a permutation of 'nmcpq', "
                                         r"not 'nmcpp'$"):
        evaluate_tiles(ok, acc, "os", "nmcpp", np.ones((1, 5), dtype=int))
    with pytest.raises(ValueError, match=r"^evaluate_tiles tiles must be an array of shape \(B, 5\) in loop "
                                         r"order 'nmcpq', not shape \(1, 4\)$"):
        evaluate_tiles(ok, acc, "os", "nmcpq", np.ones((1, 4), dtype=int))
    with pytest.raises(ValueError, match=r"^layer_cost\.model must be one of \['fast', 'engine'\], "
                                         r"not 'slow'$"):
        layer_cost(ok, default_mapping(ok, acc), acc, "slow")
    with pytest.raises(ValueError, match=r"^Layer\['p'\]\.kind must be conv2d, linear or matmul for "
                                         r"evaluate_tiles, not 'pool'$"):
        evaluate_tiles(Layer("p", "pool", 8, 8, 6, 6, 2, 2), acc, "os", "nmcpq", np.ones((1, 5), dtype=int))
