"""Run the reference SCALE-Sim 3.0.0 on a config and a topology; used by tests and benchmarks only.

This script runs *inside* ``.venv-scalesim`` (``make test`` builds it: SCALE-Sim 3.0.0 needs
``numpy<2.4``, which our main environment does not have), never imported by ``hwsim`` or ``sims``::

    .venv-scalesim/bin/python sims/scalesim_ref.py -c CONFIG.cfg -t TOPOLOGY.csv -o DIR [--gemm]

It writes SCALE-Sim's three reports to ``DIR`` (as SCALE-Sim does, under ``DIR/<run_name>/``) and
prints one JSON object on stdout: ``{"run_dir": ..., "layer_seconds": [...]}``, the wall time of each
layer's simulation alone (report writing excluded). SCALE-Sim's own CLI cannot run without a layout
file, so this driver builds its objects directly and leaves custom layouts off.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", dest="config", required=True)
    ap.add_argument("-t", dest="topology", required=True)
    ap.add_argument("-o", dest="out", required=True)
    ap.add_argument("--gemm", action="store_true", help="the topology is a GEMM (M, N, K) file")
    args = ap.parse_args(argv)

    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.simulator import simulator
    from scalesim.single_layer_sim import single_layer_sim
    from scalesim.topology_utils import topologies

    cfg = scale_config()
    cfg.read_conf_file(args.config)
    cfg.set_topology_file(args.topology)
    topo = topologies()
    topo.load_arrays(topofile=args.topology, mnk_inputs=args.gemm)

    sim = simulator()
    sim.set_params(config_obj=cfg, topo_obj=topo, layout_obj=layouts(), top_path=args.out,
                   verbosity=False, save_trace=False)
    os.makedirs(args.out, exist_ok=True)
    run_dir = os.path.join(args.out, cfg.get_run_name())
    os.makedirs(run_dir, exist_ok=True)
    sim.top_path = run_dir
    seconds = []
    for i in range(sim.num_layers):
        layer = single_layer_sim()
        layer.set_params(layer_id=i, config_obj=cfg, topology_obj=topo, layout_obj=sim.layout, verbose=False)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            layer.run()
            layer.calc_report_data()
        seconds.append(time.perf_counter() - t0)
        sim.single_layer_sim_object_list.append(layer)
    sim.all_layer_run_done = True
    sim.generate_reports()
    print(json.dumps({"run_dir": run_dir, "layer_seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
