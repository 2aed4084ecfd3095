"""The results store: resume, failures recorded, no duplicates, schema checks, export."""

import csv
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from sims.sweep.evaluate import PointResult
from sims.sweep.execute import run_sweep
from sims.sweep.points import PointResolver, grid_points
from sims.sweep.spec import spec_from_dict
from sims.sweep.store import SCHEMA_VERSION, ResultStore, StoreError

SPEC = spec_from_dict({
    "accelerator": "edge16_serial", "network": "resnet20",
    "axes": {"rows": [8, 16], "pe.max_act_bits": [4, 8],
             "schedule": [{"kind": "uniform", "bits": 4}, {"kind": "uniform", "bits": 8}]},
    "metrics": ["cycles", "energy_pj", "edp"], "constraints": ["edp <= 1e5"], "chunk_size": 3,
})


def test_failed_points_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        s = run_sweep(SPEC, store)
        rows = store.rows()
    assert s.evaluated == len(rows) == 8
    failed = [r for r in rows if r["status"] == "failed"]
    # 8-bit activations on a PE whose max_act_bits is 4
    assert len(failed) == 2 and all("act_bits" in r["error"] for r in failed)
    assert all(json.loads(r["metrics_json"]) == {} and r["feasible"] is None for r in failed)
    assert {r["feasible"] for r in rows if r["status"] == "ok"} <= {0, 1}


def test_resume_skips_done_points_and_rows_carry_inputs(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        run_sweep(SPEC, store)
        again = run_sweep(SPEC, store)
        assert again.evaluated == 0 and again.already_done == 8
        assert store.count() == 8
        row = store.rows(status="ok")[0]
        acc = json.loads(row["accelerator_json"])
        assert acc["rows"] in (8, 16) and "pe" in acc and json.loads(row["versions_json"])["hwsim"]
        assert store.network_json(row["network_hash"])["name"] == "resnet20"


def test_keys_are_unique_whoever_writes(tmp_path: Path) -> None:
    res = PointResolver(SPEC)
    g = next(iter(grid_points(SPEC)))
    r = PointResult(res.key(g), "ok", None, {"cycles": 1.0}, True, 0.0)
    with ResultStore(tmp_path / "r.sqlite") as a, ResultStore(tmp_path / "r.sqlite") as b:
        sid = a.register_sweep(SPEC)
        row = ResultStore.row(r, sid, 0, res.inputs(g))
        assert a.write([row, row]) == 1
        assert b.write([row]) == 0
        assert a.count() == 1


def test_other_schema_version_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    con.commit()
    con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="^" + re.escape(f"{db}: results database has schema version 0, this "
                       f"hwsim reads version {SCHEMA_VERSION}; the file was left untouched (use a new --db)") + "$"):
        ResultStore(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="^" + re.escape(f"{db}: not an hwsim sweep database (no meta table); "
                       "refusing to touch it") + "$"):
        ResultStore(db)
    (tmp_path / "junk.sqlite").write_text("this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="^" + re.escape(f"{tmp_path / 'junk.sqlite'}: not a SQLite database "
                       "(file is not a database); the file was left untouched") + "$"):
        ResultStore(tmp_path / "junk.sqlite")


def test_csv_export_and_parquet_dependency(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_sweep(SPEC, store)
        assert store.export_csv(tmp_path / "p.csv") == 8
        try:
            import pyarrow  # noqa: F401
        except ModuleNotFoundError:
            with pytest.raises(ModuleNotFoundError, match=r"^Parquet export needs pyarrow \(pip install pyarrow\)$"):
                store.export_parquet(tmp_path / "p.parquet")
        else:
            assert store.export_parquet(tmp_path / "p.parquet") == 8
    with open(tmp_path / "p.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and "axis.rows" in rows[0] and "edp" in rows[0]
