"""Backends give the same rows: inline, a local process pool, a Dask LocalCluster; NSGA-II resumes."""

from pathlib import Path
from typing import Any

from sims.sweep.execute import DaskBackend, InlineBackend, LocalBackend, run_sweep
from sims.sweep.spec import spec_from_dict
from sims.sweep.store import ResultStore

SPEC = spec_from_dict({
    "accelerator": "edge16_serial", "network": "resnet20",
    "axes": {"rows": [8, 16, 32], "cols": [8, 16], "pe.kind": ["serial_act", "parallel"],
             "schedule": [{"kind": "uniform", "bits": 4}, {"kind": "pdb", "bits": [8, 4, 2]}]},
    "metrics": ["cycles", "energy_pj", "edp"], "chunk_size": 5,
})


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with ResultStore(db, readonly=True) as st:
        return sorted((r["key"], r["idx"], r["status"], r["feasible"], r["metrics_json"], r["accelerator_json"])
                      for r in st.rows())


def test_local_pool_and_dask_match_inline(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    with ResultStore(tmp_path / "a.sqlite") as st:
        run_sweep(SPEC, st, InlineBackend())
    with ResultStore(tmp_path / "b.sqlite") as st:
        run_sweep(SPEC, st, LocalBackend(2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            with ResultStore(tmp_path / "c.sqlite") as st:
                s = run_sweep(SPEC, st, DaskBackend(client=client))
    assert s.evaluated == SPEC.grid_size == 24
    ref = _rows(tmp_path / "a.sqlite")
    assert len(ref) == 24
    assert _rows(tmp_path / "b.sqlite") == ref
    assert _rows(tmp_path / "c.sqlite") == ref


def test_nsga2_search_is_replayed_from_the_store(tmp_path: Path) -> None:
    spec = spec_from_dict({
        "accelerator": "edge16_serial", "network": "resnet20",
        "axes": {"rows": [4, 8, 16, 32, 64], "cols": [4, 8, 16, 32, 64], "pe.kind": ["serial_act", "parallel", "fusion"],
                 "schedule": [{"kind": "uniform", "bits": 8}, {"kind": "uniform", "bits": 4},
                              {"kind": "uniform", "bits": 2}]},
        "metrics": ["latency_s", "energy_pj"],
        "search": {"mode": "nsga2", "population": 8, "generations": 3, "seed": 1},
    })
    with ResultStore(tmp_path / "n.sqlite") as st:
        first = run_sweep(spec, st)
        n = st.count()
        again = run_sweep(spec, st)
        assert st.count() == n
    assert 8 <= first.evaluated == n <= 8 * 4
    assert again.evaluated == 0
