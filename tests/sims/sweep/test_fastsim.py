"""The sweep's cached evaluation equals hwsim.simulate on every point it is asked about."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.io import accelerator_from_dict
from sims.sweep.evaluate import Evaluator
from sims.sweep.points import PointResolver
from sims.sweep.spec import spec_from_dict

SPEC = spec_from_dict({
    "accelerator": "edge16_serial",
    "axes": {
        "rows": [4, 16, 32], "cols": [8, 16], "pe.kind": ["serial_act", "parallel", "fusion", "serial_both"],
        "interconnect": ["systolic", "broadcast"], "ifmap_sram.size_bytes": [8192, 65536],
        "filter_sram.size_bytes": [16384, 131072], "ofmap_sram.banks": [1, 4], "leakage_mw": [1.0, 8.0],
        "clock_hz": [1e8, 4e8], "dram.energy_pj_per_byte": [None, 12.0],
        "network": ["resnet20", "cascade_digits", "mobilenet_tiny"],
        "schedule": [{"kind": "network"}, {"kind": "uniform", "bits": 4},
                     {"kind": "class_based", "bits": [2, 4, 8], "fractions": [0.5, 0.25, 0.25], "act_bits": 6}],
    },
    "metrics": ["cycles", "worst_cycles", "energy_pj", "worst_energy_pj", "latency_s", "edp"],
})
EV = Evaluator(SPEC)
RES = PointResolver(SPEC)


@settings(max_examples=40, deadline=None)
@given(st.tuples(*(st.integers(0, len(a) - 1) for a in SPEC.axes)))
def test_cached_totals_equal_simulate(genome: tuple[int, ...]) -> None:
    got = EV.evaluate("k", genome)
    acc = accelerator_from_dict(json.loads(RES.accelerator_json(genome)))
    n, s, _ = genome[-3:]
    net = SPEC.schedules[s].apply(SPEC.networks[n].network)
    try:
        ref = hwsim.simulate(net, acc)
    except ValueError as exc:
        assert got.status == "failed" and str(exc) in (got.error or "")
        return
    assert got.status == "ok", got.error
    m = got.metrics
    assert m["worst_cycles"] == ref.cycles
    assert math.isclose(m["cycles"], ref.expected_cycles, rel_tol=1e-12)
    assert math.isclose(m["worst_energy_pj"], ref.energy.total_pj, rel_tol=1e-12)
    assert math.isclose(m["energy_pj"], ref.expected_energy.total_pj, rel_tol=1e-12)
    assert math.isclose(m["latency_s"], ref.expected_latency_s, rel_tol=1e-12)
    assert math.isclose(m["edp"], ref.expected_energy.total_pj * ref.expected_latency_s, rel_tol=1e-12)
