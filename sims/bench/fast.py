"""Benchmark of the fast path (hwsim.fast): single-layer evaluations per second, and how far it is from
the engine on the tilings a mapper actually visits. ``python -m sims.bench.fast [--json OUT]``.

One evaluation = one (layer, dataflow, loop order, tile) point costed (cycles and energy). Runs on one
core; results go into docs/performance.md, "Fast path and mapper".
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import hwsim
from hwsim.fast import evaluate_mapspace, layer_cost, loop_orders, tiles_fit
from hwsim.schedule import LOOPS, LayerMapping, Tile

__all__ = ["run", "main"]

LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv2", "layer3.0.downsample", "layer4.1.conv2", "fc")


def _tiles(layer: hwsim.Layer, acc: hwsim.Accelerator, n: int, rng: np.random.Generator) -> np.ndarray:
    whole = np.array([getattr(Tile.whole(layer), d) for d in LOOPS])
    t = rng.integers(1, whole + 1, size=(n * 8, 5))
    t = t[tiles_fit(layer, acc, t)]
    return t[:n]


def run(batch: int = 4000, repeats: int = 3, seed: int = 0) -> dict[str, object]:
    acc = hwsim.resolve_accelerator("edge16_serial")
    net = hwsim.resolve_network("resnet18")
    rng = np.random.default_rng(seed)
    rows = []
    tot_n, tot_t = 0, 0.0
    errs: list[float] = []
    for name in LAYERS:
        la = next(x for x in net.layers if x.name == name)
        tiles = _tiles(la, acc, batch, rng)
        orders = loop_orders(la)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for flow in acc.dataflows:
                evaluate_mapspace(la, acc, flow, orders, tiles)
            best = min(best, time.perf_counter() - t0)
        n = len(tiles) * len(orders) * len(acc.dataflows)
        tot_n, tot_t = tot_n + n, tot_t + best
        # fast vs engine on a sample of the same points
        for b in rng.choice(len(tiles), size=min(8, len(tiles)), replace=False):
            m = LayerMapping(name, acc.dataflows[b % 2], Tile(*(int(x) for x in tiles[b])), orders[b % len(orders)])
            e, f = layer_cost(la, m, acc, "engine"), layer_cost(la, m, acc, "fast")
            errs.append((e.cycles - f.cycles) / e.cycles)
        rows.append({"layer": name, "points": n, "seconds": best, "evals_per_s": n / best})
    # single calls (the protocol, one mapping at a time)
    la = next(x for x in net.layers if x.name == "layer2.0.conv2")
    m = hwsim.default_mapping(la, acc)
    single = {}
    for model in ("fast", "engine"):
        k = 200 if model == "fast" else 20
        t0 = time.perf_counter()
        for _ in range(k):
            layer_cost(la, m, acc, model)
        single[model] = k / (time.perf_counter() - t0)
    return {"batch_evals_per_s": tot_n / tot_t, "layers": rows, "single_calls_per_s": single,
            "cycles_rel_error_engine_minus_fast": {"min": float(np.min(errs)), "max": float(np.max(errs)),
                                                    "median": float(np.median(errs))},
            "cpu_count": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--batch", type=int, default=4000)
    args = ap.parse_args(argv)
    res = run(args.batch)
    for r in res["layers"]:  # type: ignore[union-attr]
        print(f"{r['layer']:<22} {r['points']:>9} points  {r['seconds'] * 1e3:8.1f} ms  {r['evals_per_s']:>12,.0f} /s")
    print(f"batched: {res['batch_evals_per_s']:,.0f} evaluations/s; single layer_cost calls/s: "
          f"fast {res['single_calls_per_s']['fast']:,.0f}, engine {res['single_calls_per_s']['engine']:,.0f}")
    print(f"(engine - fast) / engine cycles on sampled points: {res['cycles_rel_error_engine_minus_fast']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
