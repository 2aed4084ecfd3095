"""Bad input across every command: one row = command line, the input it is given, and the message it must
print, whole (after ``hwsim: error: ``; ``{d}`` and ``{k}`` stand for the folders). A message that ends in
``*`` is matched up to there: what follows is a library's own text (torch, onnx) or the list of bundled
presets. Every row must exit with code 2, print exactly one line on stderr (no traceback) and leave every
file in the working folder as it was (no output created, replaced or truncated).

Runs ``sims.cli.main`` in-process; the inputs are written by :func:`_inputs` into ``in/``, and files that a
failing run must not touch lie in ``keep/``.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import pytest

from sims.cli import main

BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
SPEC = "accelerator: edge16_serial\nnetwork: small_cnn\naxes: {rows: [8, 16]}\nmetrics: [cycles]\n"


def _inputs(d: Path) -> None:
    """Every input file the rows refer to (``{d}`` in a row is ``d``)."""
    files: dict[str, str | bytes] = {
        "arch.yaml": "name: a\nrows: 4\ncols: 4\n",
        "dup.yaml": "name: a\nrows: 4\nrows: 8\ncols: 4\n",
        "strrows.yaml": "name: a\nrows: '16'\ncols: 4\n",
        "inf_clock.yaml": "name: a\nrows: 4\ncols: 4\nclock_hz: .inf\n",
        "nan_clock.yaml": "name: a\nrows: 4\ncols: 4\nclock_hz: .nan\n",
        "inf_leak.yaml": "name: a\nrows: 4\ncols: 4\nleakage_mw: .inf\n",
        "inf_bw.yaml": "name: a\nrows: 4\ncols: 4\ndram: {bandwidth_bytes_per_cycle: .inf}\n",
        "unknown.yaml": "name: a\nrows: 4\ncols: 4\nbogus: 1\n",
        "bomb.yaml": "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + BOMB,
        "latin.yaml": b"name: caf\xe9\nrows: 4\ncols: 4\n",
        "big.yaml": "name: big\nlayers:\n  - {name: c, kind: conv2d, in_channels: 10000000, out_channels: 16, "
                    "in_size: 8, kernel: 3, padding: 1}\n",
        "wide.yaml": "name: w\nlayers:\n  - {name: c, kind: conv2d, in_channels: 3, out_channels: 16, "
                     "in_size: 100000, kernel: 3}\n",
        "longrepr.yaml": "name: n\nlayers: '" + "x" * 5000 + "'\n",
        "corrupt.pt": b"PK\x03\x04 not really a zip",
        "corrupt.onnx": b"\x00\x01garbage",
        "bad.json": "{not json",
        "nan.json": '{"network": NaN, "mappings": []}',
        "dupkey.json": '{"network": {}, "network": {}, "mappings": []}',
        "latin.json": b'{"network": "caf\xe9"}',
        "spec_dup.yaml": SPEC + "metrics: [cycles]\n",
        "spec_huge.yaml": "accelerator: edge16_serial\nnetwork: small_cnn\naxes:\n  rows: {range: [1, 1000]}\n"
                          "  cols: {range: [1, 1000]}\n  ifmap_sram.size_bytes: {range: [1024, 2023]}\n",
        "spec_axis.yaml": "accelerator: edge16_serial\nnetwork: small_cnn\naxes:\n  rows: {range: [1, 100000]}\n",
        "spec_inf.yaml": "accelerator: edge16_serial\nnetwork: small_cnn\naxes:\n  rows: {range: [1, .inf]}\n",
        "spec_latin.yaml": b"name: caf\xe9\n",
        "spec_alias.yaml": "accelerator: &x edge16_serial\nnetwork: *x\n",
        "spec.yaml": SPEC,
        "foreign.sqlite": "this is a text file, not a database\n",
        "scale.cfg": "[general]\nrun_name = x\n",
        "latin.cfg": b"[general]\nrun_name = caf\xe9\n",
        "topo.csv": "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nconv1, 8, 8, 3, 3, 4, 4, 1,\n",
    }
    for name, text in files.items():
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (d / "adir.yaml").mkdir()
    (d / "adir").mkdir()
    import hwsim
    from hwsim.schedule import default_schedule

    sched = json.loads(default_schedule(hwsim.resolve_network("small_cnn"),
                                        hwsim.resolve_accelerator("edge16_serial")).to_json())
    sched["mappings"][0]["bogus"] = 1
    (d / "sched_unknown.json").write_text(json.dumps(sched))
    del sched["mappings"][0]["bogus"]
    sched["mappings"][0]["tile"]["z"] = 1
    (d / "sched_tile.json").write_text(json.dumps(sched))
    del sched["mappings"][0]["tile"]["z"]
    sched["mappings"][0]["tile"]["p"] = 10_000    # more output rows than the layer has
    (d / "sched_big_tile.json").write_text(json.dumps(sched))
    # a hand-made database that claims schema 1 but has another layout
    con = sqlite3.connect(d / "other_layout.sqlite")
    con.executescript("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('schema_version', '1');"
                      "CREATE TABLE points (key TEXT PRIMARY KEY, value REAL);")
    con.commit()
    con.close()
    # a real model whose input must be 4-D
    import torch
    from torch import nn

    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), d / "conv.pt")
    torch.save(nn.Sequential(nn.Linear(4, 2)), d / "lin.pt")
    torch.save([1, 2, 3], d / "list.pt")
    (d / "raw.pkl.pt").write_bytes(pickle.dumps([1, 2, 3]))  # a bare pickle: no torch container


# (id, argv with {d} for the inputs folder and {k} for the folder of files that must stay as they were, message)
ROWS: list[tuple[str, list[str], str]] = [
    # ---- simulate: accelerator files
    ("sim-dup-key", ["simulate", "--arch", "{d}/dup.yaml", "--network", "small_cnn"],
     "{d}/dup.yaml: malformed YAML (line 3, column 1): duplicate key 'rows'"),
    ("sim-type-range", ["simulate", "--arch", "{d}/strrows.yaml", "--network", "small_cnn"],
     "{d}/strrows.yaml: accelerator: Accelerator.rows must be an integer in [1, 4096], not '16'"),
    ("sim-inf-clock", ["simulate", "--arch", "{d}/inf_clock.yaml", "--network", "small_cnn"],
     "{d}/inf_clock.yaml: accelerator: Accelerator.clock_hz must be a finite number in (0.0, inf), not inf"),
    ("sim-nan-clock", ["simulate", "--arch", "{d}/nan_clock.yaml", "--network", "small_cnn"],
     "{d}/nan_clock.yaml: accelerator: Accelerator.clock_hz must be a finite number in (0.0, inf), not nan"),
    ("sim-inf-leakage", ["simulate", "--arch", "{d}/inf_leak.yaml", "--network", "small_cnn"],
     "{d}/inf_leak.yaml: accelerator: Accelerator.leakage_mw must be a finite number in [0.0, inf), not inf"),
    ("sim-inf-bandwidth", ["simulate", "--arch", "{d}/inf_bw.yaml", "--network", "small_cnn"],
     "{d}/inf_bw.yaml: accelerator.dram: DRAMSpec.bandwidth_bytes_per_cycle must be a finite number in "
     "(0.0, inf), not inf"),
    ("sim-unknown-key", ["simulate", "--arch", "{d}/unknown.yaml", "--network", "small_cnn"],
     "{d}/unknown.yaml: unknown key accelerator.bogus; allowed keys: name, rows, cols, pe, dataflows, "
     "interconnect, ifmap_sram, filter_sram, ofmap_sram, dram, clock_hz, leakage_mw, energy, "
     "split_reduction"),
    ("sim-alias-bomb", ["simulate", "--arch", "{d}/bomb.yaml", "--network", "small_cnn"],
     "{d}/bomb.yaml: malformed YAML (line 2, column 8): aliases (*a) are not allowed"),
    ("sim-not-utf8", ["simulate", "--arch", "{d}/latin.yaml", "--network", "small_cnn"],
     "{d}/latin.yaml: not UTF-8 text (byte 9 is 0xe9)"),
    ("sim-arch-missing", ["simulate", "--arch", "{d}/missing.yaml", "--network", "small_cnn"],
     "{d}/missing.yaml: file not found"),
    ("sim-arch-is-dir", ["simulate", "--arch", "{d}/adir.yaml", "--network", "small_cnn"],
     "{d}/adir.yaml: file is not a regular file"),
    ("sim-arch-preset", ["simulate", "--arch", "nosuch", "--network", "small_cnn"],
     "unknown accelerator preset 'nosuch'; bundled: *"),
    # ---- simulate: networks and model files
    ("sim-huge-channels", ["simulate", "--arch", "edge16_serial", "--network", "{d}/big.yaml"],
     "{d}/big.yaml: Layer['c'].in_channels must be an integer in [1, 65536], not 10000000 (docs/limits.md)"),
    ("sim-huge-ifmap", ["simulate", "--arch", "edge16_serial", "--network", "{d}/wide.yaml"],
     "{d}/wide.yaml: Layer['c'].in_h must be an integer in [1, 16384], not 100000 (docs/limits.md)"),
    ("sim-long-repr", ["simulate", "--arch", "edge16_serial", "--network", "{d}/longrepr.yaml"],
     "{d}/longrepr.yaml: network.layers must be a non-empty list of layers, not "
     "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"),
    ("sim-corrupt-pt", ["simulate", "--arch", "edge16_serial", "--network", "{d}/corrupt.pt"],
     "{d}/corrupt.pt: cannot load the model (corrupt or not a PyTorch file): *"),
    ("sim-list-pt", ["simulate", "--arch", "edge16_serial", "--network", "{d}/list.pt"],
     "{d}/list.pt: expected a pickled torch.nn.Module, not list (a state_dict carries no architecture)"),
    ("sim-raw-pickle", ["simulate", "--arch", "edge16_serial", "--network", "{d}/raw.pkl.pt"],
     "{d}/raw.pkl.pt: holds pickled Python objects (a full nn.Module?), which would run code when read; "
     "not read. export it to ONNX (torch.onnx.export, also from a torch.export program) and pass the "
     ".onnx file, or pass --trust-pickle if you trust the file (it runs the file's code)"),
    ("sim-corrupt-onnx", ["simulate", "--arch", "edge16_serial", "--network", "{d}/corrupt.onnx"],
     "{d}/corrupt.onnx: not an ONNX model: *"),
    ("sim-model-missing", ["simulate", "--arch", "edge16_serial", "--network", "{d}/none.onnx"],
     "model file '{d}/none.onnx' not found"),
    ("sim-wrong-rank", ["simulate", "--arch", "edge16_serial", "--network", "{d}/conv.pt", "--trust-pickle",
                        "--input-shape", "1,8"],
     "{d}/conv.pt: from_torch[Sequential]: input shape must be N,C,H,W (4 values) for a model starting "
     "with Conv2d, not (1, 8)"),
    ("sim-wrong-width", ["simulate", "--arch", "edge16_serial", "--network", "{d}/lin.pt", "--trust-pickle",
                         "--input-shape", "1,8"],
     "{d}/lin.pt: from_torch[Sequential]: cannot run the model on the example input of shape (1, 8): *"),
    ("sim-bad-shape", ["simulate", "--arch", "edge16_serial", "--network", "{d}/conv.pt", "--input-shape", "a,b"],
     "input shape must be comma-separated integers like 1,3,32,32, not 'a,b'"),
    # ---- simulate: schedules
    ("sim-sched-unknown-key", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/sched_unknown.json"],
     "{d}/sched_unknown.json: mappings[0] (layer 'conv1'): unknown key 'bogus'; allowed keys: layer, "
     "dataflow, tile, loop_order, grouping"),
    ("sim-sched-tile-key", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/sched_tile.json"],
     "{d}/sched_tile.json: mappings[0] (layer 'conv1').tile must be a mapping with keys n, m, c, p, q, "
     "not {'c': 1, 'm': 16, 'n': 1, 'p': 8, ...}"),
    ("sim-sched-tile-over-layer", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/sched_big_tile.json"],
     "{d}/sched_big_tile.json: LayerMapping['conv1'].tile.p must be an integer in [1, 8], not 10000"),
    ("rtl-sched-tile-over-layer", ["rtl", "run", "--arch", "rtl8_serial", "--network", "small_cnn", "--schedule",
                                   "{d}/sched_big_tile.json", "--json", "{k}/r.json"],
     "{d}/sched_big_tile.json: LayerMapping['conv1'].tile.p must be an integer in [1, 8], not 10000"),
    ("sim-sched-nan", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/nan.json"],
     "{d}/nan.json: NaN is not a JSON number"),
    ("sim-sched-dup", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/dupkey.json"],
     "{d}/dupkey.json: duplicate key 'network'"),
    ("sim-sched-malformed", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/bad.json"],
     "{d}/bad.json: malformed JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
     "(char 1)"),
    ("sim-sched-not-utf8", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/latin.json"],
     "{d}/latin.json: not UTF-8 text (byte 16 is 0xe9)"),
    ("sim-sched-missing", ["simulate", "--arch", "edge16_serial", "--schedule", "{d}/none.json"],
     "{d}/none.json: schedule file not found"),
    # ---- simulate: outputs (checked before any work; existing files untouched)
    ("sim-json-is-dir", ["simulate", "--arch", "edge16_serial", "--network", "small_cnn", "--json", "{d}/adir"],
     "--json must be a file path, not the directory '{d}/adir'"),
    ("sim-plot-suffix", ["simulate", "--arch", "edge16_serial", "--network", "small_cnn", "--json", "{k}/r.json",
                         "--csv", "{k}/r.csv", "--plot", "{k}/x.xyz"],
     "--plot must end in one of .png, .pdf, .svg, not '{k}/x.xyz'"),
    ("sim-plot-is-dir", ["simulate", "--arch", "edge16_serial", "--network", "small_cnn", "--plot", "{d}/adir"],
     "--plot must be a file path, not the directory '{d}/adir'"),
    ("sim-same-output", ["simulate", "--arch", "edge16_serial", "--network", "small_cnn", "--json", "{k}/r.json",
                         "--csv", "{k}/r.json"], "--json, --csv and --plot must name different files"),
    ("sim-parent-is-file", ["simulate", "--arch", "edge16_serial", "--network", "small_cnn",
                            "--json", "{k}/r.json/x.json"],
     "--json: '{k}/r.json' is a file, not a directory"),
    ("sim-late-error", ["simulate", "--arch", "{d}/inf_clock.yaml", "--network", "small_cnn",
                        "--json", "{k}/r.json", "--csv", "{k}/r.csv", "--plot", "{k}/r.png"],
     "{d}/inf_clock.yaml: accelerator: Accelerator.clock_hz must be a finite number in (0.0, inf), not inf"),
    # ---- map
    ("map-lut-suffix", ["map", "--arch", "edge16_serial", "--network", "small_cnn", "--json", "{k}/r.json",
                        "--lut", "{k}/x.txt"], "--lut must end in one of .csv, .npz, not '{k}/x.txt'"),
    ("map-json-is-dir", ["map", "--arch", "edge16_serial", "--network", "small_cnn", "--json", "{d}/adir"],
     "--json must be a file path, not the directory '{d}/adir'"),
    ("map-mapspace", ["map", "--arch", "edge16_serial", "--network", "small_cnn", "--max-mapspace", "0"],
     "map_layer.max_mapspace must be an integer >= 1, not 0"),
    ("map-huge-channels", ["map", "--arch", "edge16_serial", "--network", "{d}/big.yaml", "--lut", "{k}/l.csv"],
     "{d}/big.yaml: Layer['c'].in_channels must be an integer in [1, 65536], not 10000000 (docs/limits.md)"),
    # ---- sweep
    ("sweep-db-is-dir", ["sweep", "{d}/spec.yaml", "--db", "{d}/adir"],
     "{d}/adir: is a directory; --db must name a database file"),
    ("sweep-db-parent-file", ["sweep", "{d}/spec.yaml", "--db", "{k}/r.json/x.sqlite"],
     "{k}/r.json: File exists"),
    ("sweep-db-other-layout", ["sweep", "{d}/spec.yaml", "--db", "{d}/other_layout.sqlite"],
     "{d}/other_layout.sqlite: table 'points' has columns ['key', 'value'], not those of an hwsim sweep "
     "database (schema 1); the file was left untouched (use a new --db)"),
    ("sweep-db-foreign", ["sweep", "{d}/spec.yaml", "--db", "{d}/foreign.sqlite"],
     "{d}/foreign.sqlite: not a SQLite database (file is not a database); the file was left untouched"),
    ("sweep-scheduler-down", ["sweep", "{d}/spec.yaml", "--db", "{k}/new.sqlite", "--scheduler", "tcp://127.0.0.1:1"],
     "--scheduler tcp://127.0.0.1:1: cannot reach the Dask scheduler (Connection refused)"),
    ("sweep-scheduler-bad", ["sweep", "{d}/spec.yaml", "--db", "{k}/new.sqlite", "--scheduler", "localhost"],
     "--scheduler must read tcp://HOST:PORT (or tls://HOST:PORT), not 'localhost'"),
    ("sweep-workers-negative", ["sweep", "{d}/spec.yaml", "--db", "{k}/new.sqlite", "--workers", "-1"],
     "--workers must be an integer >= 0, not -1"),
    ("sweep-spec-dup", ["sweep", "{d}/spec_dup.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_dup.yaml: malformed YAML (line 5, column 1): duplicate key 'metrics'"),
    ("sweep-grid-too-big", ["sweep", "{d}/spec_huge.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_huge.yaml: the grid has 1,000,000,000 points (1000 x 1000 x 1000 x 1 x 1 x 1), more than "
     "the 1,000,000 a sweep may have; sample it (search: {mode: random, samples: N} or lhs) or split it "
     "(docs/limits.md)"),
    ("sweep-axis-too-long", ["sweep", "{d}/spec_axis.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_axis.yaml: axes.rows: the range has 100000 values, more than the 10000 an axis may have "
     "(docs/limits.md)"),
    ("sweep-axis-inf", ["sweep", "{d}/spec_inf.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_inf.yaml: axes.rows.range must be [low, high] finite numbers, not [1, inf]"),
    ("sweep-spec-not-utf8", ["sweep", "{d}/spec_latin.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_latin.yaml: not UTF-8 text (byte 9 is 0xe9)"),
    ("sweep-spec-alias", ["sweep", "{d}/spec_alias.yaml", "--db", "{k}/new.sqlite"],
     "{d}/spec_alias.yaml: malformed YAML (line 2, column 10): aliases (*x) are not allowed"),
    ("sweep-spec-missing", ["sweep", "{d}/none.yaml", "--db", "{k}/new.sqlite"],
     "{d}/none.yaml: file not found"),
    # ---- report
    ("report-point-unknown", ["report", "{k}/done.sqlite", "-o", "{k}/rep", "--point", "zzzz"],
     "{k}/done.sqlite: --point 'zzzz' matches 0 points, not exactly one"),
    ("report-out-is-file", ["report", "{k}/done.sqlite", "-o", "{k}/r.json"],
     "report -o must be a directory, not the file '{k}/r.json'"),
    ("report-db-missing", ["report", "{d}/none.sqlite", "-o", "{k}/rep"], "{d}/none.sqlite: file not found"),
    ("report-db-foreign", ["report", "{d}/foreign.sqlite", "-o", "{k}/rep"],
     "{d}/foreign.sqlite: not a SQLite database (file is not a database); the file was left untouched"),
    ("report-db-other-layout", ["report", "{d}/other_layout.sqlite", "-o", "{k}/rep"],
     "{d}/other_layout.sqlite: table 'points' has columns ['key', 'value'], not those of an hwsim sweep "
     "database (schema 1); the file was left untouched (use a new --db)"),
    # ---- scalesim
    ("scalesim-not-utf8", ["scalesim", "-c", "{d}/latin.cfg", "-t", "{d}/topo.csv", "-o", "{k}/so"],
     "{d}/latin.cfg: not UTF-8 text (byte 24 is 0xe9)"),
    ("scalesim-topology-missing", ["scalesim", "-c", "{d}/scale.cfg", "-t", "{d}/none.csv", "-o", "{k}/so"],
     "{d}/none.csv: SCALE-Sim topology file not found"),
    ("scalesim-out-is-file", ["scalesim", "-c", "{d}/scale.cfg", "-t", "{d}/topo.csv", "-o", "{k}/r.json"],
     "-o must be a directory, not the file '{k}/r.json'"),
    # ---- presets, demo
    ("presets-unknown", ["presets", "zzz"], "unknown preset 'zzz'; bundled: *"),
    ("demo-epochs", ["demo", "--epochs", "0", "--out", "{k}/demo"],
     "demo.epochs must be an integer >= 1, not 0"),
    ("demo-out-is-file", ["demo", "--out", "{k}/r.json"],
     "demo --out must be a directory, not the file '{k}/r.json'"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("in")
    _inputs(d)
    return d


@pytest.fixture(scope="module")
def done_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small finished sweep database (what ``report`` rows read)."""
    from sims.sweep.execute import InlineBackend, run_sweep
    from sims.sweep.spec import spec_from_dict
    from sims.sweep.store import ResultStore

    db = tmp_path_factory.mktemp("db") / "done.sqlite"
    with ResultStore(db) as st:
        run_sweep(spec_from_dict({"accelerator": "edge16_serial", "network": "small_cnn",
                                  "axes": {"rows": [8, 16]}, "metrics": ["cycles", "edp"]}), st, InlineBackend())
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    return db.read_bytes()


def _snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("argv", "message"), [pytest.param(a, f, id=i) for i, a, f in ROWS])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(argv: list[str], message: str, inputs: Path,
                                                           done_db: bytes, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    for name in ("r.json", "r.csv", "r.png"):
        (keep / name).write_text(f"an earlier result in {name}\n")
    (keep / "done.sqlite").write_bytes(done_db)
    before_in, before_keep = _snapshot(inputs), _snapshot(keep)
    rc = main([a.replace("{d}", str(inputs)).replace("{k}", str(keep)) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 400, err
    line = err.removeprefix("hwsim: error: ").removesuffix("\n")
    want = message.replace("{d}", str(inputs)).replace("{k}", str(keep))
    assert line.startswith(want[:-1]) if want.endswith("*") else line == want, (line, want)
    assert _snapshot(keep) == before_keep
    assert _snapshot(inputs) == before_in


def test_every_command_has_rows() -> None:
    """The table covers every sub-command of the CLI but those with their own suites (train, rtl, verify)."""
    from sims.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices) - {"train", "rtl", "verify", "run"}  # type: ignore[union-attr]
    assert commands <= {a[0] for _, a, _ in ROWS}, commands - {a[0] for _, a, _ in ROWS}


@pytest.mark.parametrize(("exc", "rc", "fragment"), [
    (MemoryError(), 2, "out of memory; the input asks for more than this machine has"),
    (KeyboardInterrupt(), 130, "hwsim: interrupted"),
    (IsADirectoryError(21, "Is a directory", "out.json"), 2, "out.json: Is a directory"),
    (sqlite3.OperationalError("unable to open database file"), 2, "unable to open database file"),
    (ValueError("first line\nsecond line"), 2, "first line ..."),
    (ModuleNotFoundError("Parquet export needs pyarrow (pip install pyarrow)"), 2, "needs pyarrow"),
])
def test_what_escapes_a_command_is_one_line(exc: BaseException, rc: int, fragment: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import sims.commands.presets as presets

    def boom(args: object) -> int:
        raise exc

    monkeypatch.setattr(presets, "run", boom)
    assert main(["presets"]) == rc
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
