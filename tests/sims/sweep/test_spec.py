"""Strict parsing of sweep specs and the bit schedules they apply."""

from pathlib import Path

import pytest
import yaml

import hwsim
from hwsim.errors import ConfigError
from sims.sweep.points import PointResolver, grid_points, sampled_points
from sims.sweep.schedules import BitSchedule, schedule_from_dict
from sims.sweep.spec import load_sweep_spec, spec_from_dict

BASE = {"accelerator": "edge16_serial", "network": "resnet20", "axes": {"rows": [8, 16]}}


def _spec(tmp_path: Path, **changes: object) -> Path:
    d = {**BASE, **changes}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _err(tmp_path: Path, **changes: object) -> str:
    with pytest.raises(ConfigError) as ei:
        load_sweep_spec(_spec(tmp_path, **changes))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "s.yaml"))
    return msg


def test_bundled_example_parses() -> None:
    spec = load_sweep_spec(Path(__file__).parents[3] / "sims" / "specs" / "example.yaml")
    assert spec.grid_size == 3 * 3 * 3 * 3 * 5
    assert [a.name for a in spec.axes][-3:] == ["network", "schedule", "objective"]


def test_unknown_top_key(tmp_path: Path) -> None:
    assert "unknown key metricz" in _err(tmp_path, metricz=["cycles"])


def test_unknown_axis_names_allowed(tmp_path: Path) -> None:
    msg = _err(tmp_path, axes={"pe.knd": ["parallel"]})
    assert "unknown axis axes.pe.knd" in msg and "pe.kind" in msg


def test_empty_range(tmp_path: Path) -> None:
    assert "empty range" in _err(tmp_path, axes={"rows": {"range": [32, 8]}})
    assert "empty list" in _err(tmp_path, axes={"rows": []})


def test_repeated_value(tmp_path: Path) -> None:
    assert "repeated value 8" in _err(tmp_path, axes={"rows": [8, 8]})


def test_bad_axis_value_names_index(tmp_path: Path) -> None:
    msg = _err(tmp_path, axes={"pe.kind": ["parallel", "quantum"]})
    assert "axes.pe.kind[1]" in msg and "PESpec.kind must be one of" in msg


def test_contradictory_constraints(tmp_path: Path) -> None:
    msg = _err(tmp_path, metrics=["cycles", "latency_s"], constraints=["cycles <= 100", "cycles >= 200"])
    assert "contradictory constraints" in msg


def test_constraint_on_unmeasured_metric(tmp_path: Path) -> None:
    assert "not among the sweep's metrics" in _err(tmp_path, metrics=["cycles"], constraints=["edp <= 1"])


def test_unknown_metric_and_search_key(tmp_path: Path) -> None:
    assert "unknown metric 'joules'" in _err(tmp_path, metrics=["joules"])
    assert "unknown key search.population" in _err(tmp_path, search={"mode": "grid", "population": 4})
    assert "samples must be <=" in _err(tmp_path, search={"mode": "random", "samples": 99})


def test_accuracy_needs_table(tmp_path: Path) -> None:
    assert "accuracy table" in _err(tmp_path, metrics=["accuracy"])


def test_schedule_errors(tmp_path: Path) -> None:
    assert "non-increasing" in _err(tmp_path, schedule={"kind": "pdb", "bits": [2, 4]})
    assert "unknown key 'bitz'" in _err(tmp_path, schedule={"kind": "uniform", "bitz": 4})
    assert "sum to 1" in _err(tmp_path, schedule={"kind": "class_based", "bits": [2, 8], "fractions": [0.5, 0.6],
                                                  "act_bits": 8})


def test_ranges_expand(tmp_path: Path) -> None:
    spec = spec_from_dict({**BASE, "axes": {"rows": {"range": [8, 32], "step": 8},
                                            "ifmap_sram.size_bytes": {"pow2": [16384, 65536]}}})
    assert spec.acc_axes[0].values == (8, 16, 24, 32)
    assert spec.acc_axes[1].values == (16384, 32768, 65536)


def test_keys_are_stable_and_distinct() -> None:
    spec = spec_from_dict({**BASE, "axes": {"rows": [8, 16], "cols": [8, 16]}})
    r1, r2 = PointResolver(spec), PointResolver(spec_from_dict({**BASE, "axes": {"cols": [8, 16], "rows": [8, 16]}}))
    keys1 = {r1.key(g) for g in grid_points(spec)}
    assert len(keys1) == 4
    # the same resolved points, whatever the axis order of the spec
    spec2 = r2.spec
    assert {r2.key(g) for g in grid_points(spec2)} == keys1


def test_sampling_is_deterministic_and_distinct() -> None:
    d = {**BASE, "axes": {"rows": [4, 8, 16, 32], "cols": [4, 8, 16, 32]}}
    for mode in ("random", "lhs"):
        spec = spec_from_dict({**d, "search": {"mode": mode, "samples": 8, "seed": 3}})
        a, b = sampled_points(spec), sampled_points(spec)
        assert a == b and len(set(a)) == len(a) and 1 <= len(a) <= 8


def test_schedules_apply() -> None:
    net = hwsim.resolve_network("resnet20")
    pdb = BitSchedule("pdb", bits=(8, 4, 2), act_bits=(8, 4, 2)).apply(net)
    macs = [la for la in pdb.layers if la.has_macs]
    assert macs[0].weight_bits == 8 and macs[-1].weight_bits == 2
    assert [la.weight_bits for la in macs] == sorted((la.weight_bits for la in macs), reverse=True)
    cb = schedule_from_dict({"kind": "class_based", "bits": [2, 8], "fractions": [0.75, 0.25], "act_bits": 4}, "t")
    la = cb.apply(net).layers[0]
    assert la.channel_weight_bits is not None and la.weight_bits == 8
    assert la.channel_weight_bits.count(2) == round(0.75 * la.out_channels)
    fl = schedule_from_dict({"kind": "uniform", "bits": 2, "first_last_bits": 8}, "t").apply(net)
    macs = [la for la in fl.layers if la.has_macs]
    assert (macs[0].weight_bits, macs[1].weight_bits, macs[-1].weight_bits) == (8, 2, 8)
    cas = hwsim.resolve_network("cascade_digits")
    out = BitSchedule("cascade", bits=(1, 8)[:len(cas.stages)] + (8,) * (len(cas.stages) - 2)).apply(cas)
    assert {la.weight_bits for la in out.stages[0].layers} == {1}
    with pytest.raises(ValueError, match=r"^BitSchedule\[cascade-1-8\]\.network must be a cascade of 2 stages, not 'resnet20' with 1$"):
        BitSchedule("cascade", bits=(1, 8)).apply(net)
