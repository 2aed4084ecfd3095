"""Sweep reports: Pareto plots, a per-layer breakdown of one point, bitwidth-per-layer charts, and a
self-contained HTML (plots embedded as base64 PNG) or Markdown (PNG files beside it) page.

Everything is read from the results database; the per-layer breakdown re-simulates the chosen point
from its stored inputs (accelerator JSON, network JSON by hash, schedule JSON, objective).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import hwsim
from hwsim.errors import short_repr
from hwsim.io import accelerator_from_dict, network_from_dict
from hwsim.result import SimResult

from .metrics import METRICS
from .pareto import pareto_mask
from .schedules import schedule_from_dict
from .spec import DEFAULT_OBJECTIVE, mapper
from .store import ResultStore, StoreError

__all__ = ["write_report", "resimulate", "FRONTS"]

FRONTS: tuple[tuple[str, str], ...] = (("latency_s|cycles", "energy_pj"), ("energy_pj", "accuracy"),
                                       ("latency_s|cycles", "area_luts"))
"""(x, y) metric pairs plotted as Pareto fronts when the sweep measured both (``a|b``: a, else b)."""


def resimulate(store: ResultStore, row: dict[str, Any]) -> SimResult:
    """Simulate a stored point again from its recorded inputs (full :class:`hwsim.SimResult`)."""
    acc = accelerator_from_dict(json.loads(row["accelerator_json"]), f"{store.path}: point {row['key'][:12]}")
    net = network_from_dict(store.network_json(row["network_hash"]), f"{store.path}: network {row['network']}")
    net = schedule_from_dict(json.loads(row["schedule_json"]), f"{store.path}: schedule").apply(net)
    if row["objective"] == DEFAULT_OBJECTIVE:
        return hwsim.simulate(net, acc)
    fn = mapper()
    if fn is None:
        raise StoreError(f"point {row['key'][:12]} was mapped with objective {row['objective']!r}, which needs "
                         f"mapping.map_network")
    return hwsim.simulate(fn(net, acc, row["objective"]), acc)


def _fig_bytes(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour_groups(pts: list[dict[str, Any]]) -> None:
    """Colour by bit schedule; by network too when the sweep varies the network (e.g. trained models)."""
    many_nets = len({p["row"]["network"] for p in pts}) > 1
    many_scheds = len({p["schedule"] for p in pts}) > 1
    for p in pts:
        net, sch = p["row"]["network"], p["schedule"]
        p["group"] = f"{net} / {sch}" if many_nets and many_scheds else net if many_nets else sch
        p["group_kind"] = ("network / bit schedule" if many_nets and many_scheds
                           else "network" if many_nets else "bit schedule")


def _front_plot(pts: list[dict[str, Any]], x: str, y: str) -> tuple[bytes, list[dict[str, Any]]]:
    plt = _pyplot()
    v = np.array([[p["m"][x], p["m"][y]] for p in pts], dtype=float)
    sign = np.array([-1.0 if METRICS[m].goal == "max" else 1.0 for m in (x, y)])
    mask = pareto_mask(v * sign)
    labels = sorted({p["group"] for p in pts})
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, lab in enumerate(labels):
        sel = np.array([p["group"] == lab for p in pts])
        ax.scatter(v[sel & ~mask, 0], v[sel & ~mask, 1], s=8, alpha=0.35, color=cmap(i % cmap.N))
        ax.scatter(v[sel & mask, 0], v[sel & mask, 1], s=36, edgecolor="black", color=cmap(i % cmap.N), label=lab)
    for i, lab in enumerate(labels):  # each schedule's own front, thin, in its colour
        idx = np.array([j for j, p in enumerate(pts) if p["group"] == lab])
        own = v[idx][pareto_mask(v[idx] * sign)]
        own = own[np.argsort(own[:, 0])]
        ax.plot(own[:, 0], own[:, 1], color=cmap(i % cmap.N), lw=0.8)
    fr = v[mask][np.argsort(v[mask][:, 0])]
    ax.plot(fr[:, 0], fr[:, 1], color="black", lw=1.2, label="overall front")
    for m, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        col = v[:, 0] if m == x else v[:, 1]
        if METRICS[m].goal == "min" and np.all(col > 0) and col.max() / col.min() > 20:
            setter("log")
    ax.set_xlabel(f"{x} ({METRICS[x].unit})" if METRICS[x].unit else x)
    ax.set_ylabel(f"{y} ({METRICS[y].unit})" if METRICS[y].unit else y)
    ax.set_title(f"{y} vs {x}: {int(mask.sum())} Pareto points of {len(pts)} (colour: {pts[0]['group_kind']})")
    ax.legend(fontsize=7, loc="best")
    front = sorted((p for p, k in zip(pts, mask, strict=True) if k), key=lambda p: p["m"][x])
    return _fig_bytes(fig), front


def _bits_plot(store: ResultStore, rows: list[dict[str, Any]]) -> bytes:
    """Weight / activation bits per MAC layer for every (network, schedule) among ``rows``."""
    plt = _pyplot()
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        seen.setdefault((r["network_hash"], r["schedule_json"]), r)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for (nh, sj), r in list(seen.items())[:12]:
        net = schedule_from_dict(json.loads(sj), "schedule").apply(network_from_dict(store.network_json(nh)))
        mac = [la for la in net.layers if la.has_macs]
        w = [float(np.mean(la.channel_weight_bits)) if la.channel_weight_bits else la.weight_bits for la in mac]
        a = [la.act_bits for la in mac]
        lab = f"{r['network']} / {r['schedule']}"
        a1.step(range(len(mac)), w, where="mid", label=lab)
        a2.step(range(len(mac)), a, where="mid", label=lab)
    a1.set_ylabel("weight bits (mean over channels)")
    a2.set_ylabel("activation bits")
    a2.set_xlabel("MAC layer index")
    a1.set_title("bitwidth per layer of each bit schedule")
    a1.legend(fontsize=7)
    return _fig_bytes(fig)


def _layers_plot(res: SimResult) -> bytes:
    import tempfile

    from ..layer_report import plot_layers

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "layers.png"
        plot_layers(res, p)
        return p.read_bytes()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def write_report(store: ResultStore, out: Path, point: str | None = None, fmt: str = "html",
                 parquet: bool = False) -> Path:
    """Write the report (and ``points.csv``) into ``out``; returns the report's path.

    Everything is checked (``--point``, pyarrow for Parquet) and produced first, then all files are written
    together (:class:`sims.output.Outputs`), so a failing report leaves an existing ``out`` as it was."""
    from ..output import Outputs, check_output_dir

    check_output_dir(out, "report -o")
    if fmt not in ("html", "md"):
        raise ValueError(f"report format must be 'html' or 'md', not {fmt!r}")
    if parquet:
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise ModuleNotFoundError("Parquet export needs pyarrow (pip install pyarrow)")
    rows = store.rows()
    if not rows:
        raise StoreError(f"{store.path}: no points stored yet")
    if point is not None:
        match = [r for r in rows if r["key"].startswith(point)]
        if len(match) != 1:
            raise StoreError(f"{store.path}: --point {point!r} matches {len(match)} points, not exactly one")
        if match[0]["status"] != "ok":
            raise StoreError(f"point {point!r} failed: {short_repr(match[0]['error'])}")
    outputs = Outputs()
    outputs.produced_by(out / "points.csv", store.export_csv)
    if parquet:
        outputs.produced_by(out / "points.parquet", store.export_parquet)
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    pts = []
    for r in ok:
        m = json.loads(r["metrics_json"])
        pts.append({"row": r, "m": m, "schedule": r["schedule"], "feasible": bool(r["feasible"]),
                    "axes": json.loads(r["axes_json"])})
    _colour_groups(pts)
    feas = [p for p in pts if p["feasible"]]
    images: list[tuple[str, str, bytes]] = []
    sections: list[tuple[str, list[str], list[list[str]]]] = []
    measured = {k for p in feas for k in p["m"]}
    for first, (xs, y) in enumerate(FRONTS):
        x = next((c for c in xs.split("|") if c in measured), xs.split("|")[-1])
        cand = [p for p in feas if p["m"].get(x) is not None and p["m"].get(y) is not None]
        if len(cand) < 1:
            continue
        png, front = _front_plot(cand, x, y)
        images.append((f"front_{y}_vs_{x}", f"Pareto front: {y} vs {x}", png))
        if first == 0:
            axis_names = list(front[0]["axes"]) if front else []
            metric_names = [m for m in METRICS if any(m in p["m"] for p in front)]
            table = [[p["row"]["key"][:12]] + [str(p["axes"][a]) for a in axis_names]
                     + [_fmt(p["m"].get(m)) for m in metric_names] for p in front]
            sections.append((f"Pareto points ({y} vs {x})", ["key"] + axis_names + metric_names, table))
    if ok:
        chosen: dict[str, Any] | None = None
        if point is not None:
            chosen = next(r for r in rows if r["key"].startswith(point))
        else:
            pool = [p for p in (feas or pts) if p["m"].get("edp") is not None] or (feas or pts)
            key_m = "edp" if pool and "edp" in pool[0]["m"] else next(iter(pool[0]["m"]))
            chosen = min(pool, key=lambda p: (p["m"][key_m], p["row"]["key"]))["row"]
        res = resimulate(store, chosen)
        images.append(("layers", f"Per-layer breakdown of point {chosen['key'][:12]} "
                                 f"({', '.join(f'{k}={v}' for k, v in json.loads(chosen['axes_json']).items())})",
                       _layers_plot(res)))
        images.append(("bits", "Bitwidth per layer", _bits_plot(store, ok)))
    errs = Counter((r["error"] or "").split("\n")[0][:160] for r in failed)
    if errs:
        sections.append(("Failed points (by error)", ["count", "error"], [[str(n), e] for e, n in errs.most_common(10)]))
    summary = [f"{len(rows)} points stored: {len(ok)} ok ({len(feas)} feasible), {len(failed)} failed",
               "sweeps: " + ", ".join(f"{s['name']} ({s['sweep_id']})" for s in store.sweeps())]
    if fmt == "html":
        path = out / "report.html"
        outputs.text(path, _html(summary, images, sections))
    else:
        for name, _, png in images:
            outputs.data(out / f"{name}.png", png)
        path = out / "report.md"
        outputs.text(path, _markdown(summary, images, sections))
    outputs.commit()
    return path


def _html(summary: list[str], images: list[tuple[str, str, bytes]],
          sections: list[tuple[str, list[str], list[list[str]]]]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>hwsim sweep report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>",
             "<h1>Sweep report</h1>"] + [f"<p>{e(s)}</p>" for s in summary]
    for _, title, png in images:
        parts.append(f"<h2>{e(title)}</h2><img src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    for title, head, table in sections:
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown(summary: list[str], images: list[tuple[str, str, bytes]],
              sections: list[tuple[str, list[str], list[list[str]]]]) -> str:
    lines = ["# Sweep report", ""] + [f"{s}  " for s in summary] + [""]
    for name, title, _ in images:
        lines += [f"## {title}", "", f"![{title}]({name}.png)", ""]
    for title, head, table in sections:
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table]
        lines.append("")
    return "\n".join(lines)
