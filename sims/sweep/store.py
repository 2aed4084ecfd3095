"""The results store: one SQLite file, one row per finished design point.

* WAL journal, one writer (the driver process); each finished chunk is committed at once, so a run
  killed at any moment (even ``kill -9``) keeps every chunk it reported and loses none of it.
* ``points.key`` (sha256 of the resolved point) is the primary key and rows are inserted with
  ``INSERT OR IGNORE``: a point is never stored twice, whoever writes it.
* Every row carries its resolved inputs (accelerator spec JSON, network hash, schedule JSON,
  objective, versions); the ``networks`` table holds each network's canonical JSON by hash, so a
  point can be re-simulated from the database alone.
* A file of another schema version is refused with a one-line error before anything is written.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hwsim.errors import ConfigError, short_repr
from hwsim.io import network_to_dict

from .evaluate import PointResult
from .spec import SweepSpec

__all__ = ["ResultStore", "SCHEMA_VERSION", "ROW_COLUMNS", "StoreError"]

SCHEMA_VERSION = 1

ROW_COLUMNS = ("key", "sweep_id", "idx", "status", "error", "feasible", "network", "network_hash", "schedule",
               "schedule_json", "objective", "axes_json", "accelerator_json", "versions_json", "metrics_json",
               "elapsed_s", "finished_at")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS networks (hash TEXT PRIMARY KEY, label TEXT NOT NULL, network_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    feasible INTEGER,
    network TEXT NOT NULL,
    network_hash TEXT NOT NULL,
    schedule TEXT NOT NULL,
    schedule_json TEXT NOT NULL,
    objective TEXT NOT NULL,
    axes_json TEXT NOT NULL,
    accelerator_json TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    elapsed_s REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS points_sweep ON points (sweep_id, idx);
"""


class StoreError(ConfigError):
    """The database cannot be used (wrong schema version, not a results database)."""


def _ro_uri(path: Path) -> str:
    """A read-only SQLite URI for ``path`` (quoted: a '?' or '#' in a file name is not a URI part)."""
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _layout() -> dict[str, list[str]]:
    """Table -> column names of this schema (from ``_SCHEMA`` itself, in an in-memory database)."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(_SCHEMA)
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in con.execute(f"PRAGMA table_info({_quote(t)})")] for t in tables}
    finally:
        con.close()


def _check_existing(path: Path) -> None:
    """Refuse a file of another schema, reading it read-only (so it is left untouched)."""
    if path.is_dir():
        raise StoreError(f"{path}: is a directory; --db must name a database file")
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(_ro_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open as SQLite: {exc}") from None
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return
        if "meta" not in tables:
            raise StoreError(f"{path}: not an hwsim sweep database (no meta table); refusing to touch it")
        row = con.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        found = row[0] if row else None
        if found != str(SCHEMA_VERSION):
            raise StoreError(f"{path}: results database has schema version {found}, this hwsim reads version "
                             f"{SCHEMA_VERSION}; the file was left untouched (use a new --db)")
        layout = _layout()
        for t in sorted(tables):
            if t not in layout:
                raise StoreError(f"{path}: table {t!r} is not part of an hwsim sweep database (schema "
                                 f"{SCHEMA_VERSION}); the file was left untouched (use a new --db)")
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({_quote(t)})")]
            if cols != layout[t]:
                raise StoreError(f"{path}: table {t!r} has columns {short_repr(cols)}, not those of an hwsim sweep "
                                 f"database (schema {SCHEMA_VERSION}); the file was left untouched (use a new --db)")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a SQLite database ({exc}); the file was left untouched") from None
    finally:
        con.close()


class ResultStore:
    """The sweep database (see the module docstring). Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        _check_existing(self.path)
        if readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: file not found")
            try:
                self.con = sqlite3.connect(_ro_uri(self.path), uri=True)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open the results database: {exc}") from None
        else:
            if self.path.is_dir():
                raise StoreError(f"{self.path}: is a directory; --db must name a database file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.con = sqlite3.connect(self.path, timeout=30.0)
                self.con.execute("PRAGMA journal_mode=WAL")
                self.con.execute("PRAGMA synchronous=NORMAL")
                with self.con:
                    self.con.executescript(_SCHEMA)
                    self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                     (str(SCHEMA_VERSION),))
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open or create the results database: {exc}") from None
        self.con.row_factory = sqlite3.Row

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # ---- writing ---------------------------------------------------------------------------------
    def register_sweep(self, spec: SweepSpec) -> str:
        sid = spec.digest
        with self.con:
            self.con.execute("INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?)",
                             (sid, spec.name, json.dumps(spec.to_dict(), sort_keys=True), time.time()))
            self.con.executemany("INSERT OR IGNORE INTO networks VALUES (?, ?, ?)",
                                 [(n.hash, n.label, json.dumps(network_to_dict(n.network), sort_keys=True))
                                  for n in spec.networks])
        return sid

    def write(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert finished rows in one transaction; returns how many were new."""
        before = self.con.total_changes
        with self.con:
            self.con.executemany(f"INSERT OR IGNORE INTO points ({', '.join(ROW_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(ROW_COLUMNS))})",
                                 [tuple(r[c] for c in ROW_COLUMNS) for r in rows])
        return self.con.total_changes - before

    def delete_failed(self, sweep_id: str) -> int:
        with self.con:
            return self.con.execute("DELETE FROM points WHERE sweep_id=? AND status='failed'", (sweep_id,)).rowcount

    @staticmethod
    def row(res: PointResult, sweep_id: str, idx: int, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"key": res.key, "sweep_id": sweep_id, "idx": idx, "status": res.status, "error": res.error,
                "feasible": None if res.feasible is None else int(res.feasible), **inputs,
                "metrics_json": res.metrics_json(), "elapsed_s": res.elapsed_s, "finished_at": time.time()}

    # ---- reading ---------------------------------------------------------------------------------
    def done_keys(self, keys: Sequence[str] | None = None) -> set[str]:
        """Keys already stored (of ``keys``, or all of them)."""
        if keys is None:
            return {r[0] for r in self.con.execute("SELECT key FROM points")}
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            part = list(keys[i:i + 500])
            q = f"SELECT key FROM points WHERE key IN ({', '.join('?' * len(part))})"
            out.update(r[0] for r in self.con.execute(q, part))
        return out

    def metrics_for(self, keys: Sequence[str]) -> dict[str, tuple[str, bool | None, dict[str, Any]]]:
        """``key -> (status, feasible, metrics)`` for the stored ones of ``keys``."""
        out = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i:i + 500])
            q = f"SELECT key, status, feasible, metrics_json FROM points WHERE key IN ({', '.join('?' * len(part))})"
            for r in self.con.execute(q, part):
                out[r[0]] = (r[1], None if r[2] is None else bool(r[2]), json.loads(r[3]))
        return out

    def sweeps(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.con.execute("SELECT * FROM sweeps ORDER BY created_at")]

    def network_json(self, network_hash: str) -> dict[str, Any]:
        r = self.con.execute("SELECT network_json FROM networks WHERE hash=?", (network_hash,)).fetchone()
        if r is None:
            raise StoreError(f"{self.path}: no network with hash {network_hash[:12]}...")
        return json.loads(r[0])

    def rows(self, sweep_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM points", []
        conds = []
        if sweep_id is not None:
            conds.append("sweep_id=?")
            args.append(sweep_id)
        if status is not None:
            conds.append("status=?")
            args.append(status)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        q += " ORDER BY sweep_id, idx"
        return [dict(r) for r in self.con.execute(q, args)]

    def count(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM points").fetchone()[0])

    # ---- export ----------------------------------------------------------------------------------
    def flat_rows(self) -> tuple[list[str], list[dict[str, Any]]]:
        """Rows with metrics and axes as columns (what CSV / Parquet export write)."""
        rows = self.rows()
        metric_cols: list[str] = []
        axis_cols: list[str] = []
        flat = []
        for r in rows:
            m = json.loads(r["metrics_json"])
            a = json.loads(r["axes_json"])
            for k in m:
                if k not in metric_cols:
                    metric_cols.append(k)
            for k in a:
                if f"axis.{k}" not in axis_cols:
                    axis_cols.append(f"axis.{k}")
            flat.append({**{c: r[c] for c in ROW_COLUMNS if not c.endswith("_json")},
                         **{f"axis.{k}": v for k, v in a.items()}, **m,
                         "accelerator_json": r["accelerator_json"], "schedule_json": r["schedule_json"]})
        cols = ([c for c in ROW_COLUMNS if not c.endswith("_json")] + axis_cols + metric_cols
                + ["accelerator_json", "schedule_json"])
        return cols, flat

    def export_csv(self, path: str | Path) -> int:
        cols, flat = self.flat_rows()
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(flat)
        return len(flat)

    def export_parquet(self, path: str | Path) -> int:
        """Write Parquet through pyarrow; ``ModuleNotFoundError`` names the missing dependency."""
        try:
            import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]
            import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
        except ModuleNotFoundError:
            raise ModuleNotFoundError("Parquet export needs pyarrow (pip install pyarrow)") from None
        cols, flat = self.flat_rows()
        table = pa.table({c: [r.get(c) for r in flat] for c in cols})
        pq.write_table(table, path)
        return len(flat)
