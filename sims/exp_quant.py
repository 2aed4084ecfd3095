"""Experiment: the four quantization methods against their baselines on digits and MNIST-1D.

Run: ``python sims/exp_quant.py [--seeds 0 1 2] [--epochs 15] [--out docs]``. Writes ``results.md``,
``quant_results.json`` (every run) and ``cmn_mnist1d.png`` under ``--out``. Every method fine-tunes the
same pretrained FP model of its seed with the same schedule; thresholds are chosen on the validation
split, accuracies are on the test split. Claims are checked against the numbers as they come out.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import hwsim
from quant.cmn import CascadeNet, cascade_outcome, exit_scores
from quant.data import DataSplits, load_dataset
from quant.export import export
from quant.layers import qlayers
from quant.pdb import pdb_groups, separability, weight_memory_bits
from quant.quantizers import BWAQuantizer
from quant.recipes import MethodConfig, pretrain, run_method
from quant.train import TrainConfig, evaluate, predict_logits

ACC = "edge16_serial"


def hw(model: torch.nn.Module, data: DataSplits, acc: hwsim.Accelerator) -> dict[str, float]:
    net = export(model, data.test.x[:1])
    res = hwsim.simulate(net, acc)
    return {"weight_bits": net.weight_bits_total, "bops": sum(la.bops() for la in net.layers),
            "cycles": res.expected_cycles, "energy_pj": res.expected_energy.total_pj}


def run_seed(data: DataSplits, seed: int, epochs: int, acc: hwsim.Accelerator, log: Any) -> dict[str, Any]:
    cfg = TrainConfig(epochs=epochs, seed=seed, progress=False)
    t0 = time.time()
    fp = pretrain(data, cfg)
    out: dict[str, Any] = {"seed": seed, "fp": {"acc": evaluate(fp, data.test)}}
    out["separability"] = separability(fp, data.train.x, data.train.y)

    def go(key: str, mc: MethodConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
        m, info = run_method(mc, data, fp, cfg)
        row = {"acc": evaluate(m, data.test), **hw(m, data, acc),
               **{k: v for k, v in info.items() if k in ("schedule", "mean_bits")}}
        inner = [i for g in pdb_groups(fp, mc.first_last) for i in g]
        row["inner_weight_bits"] = weight_memory_bits(m, inner)
        out[key] = row
        print(f"  [{data.name} s{seed} {time.time() - t0:6.1f}s] {key}: acc={row['acc']:.4f}", file=log, flush=True)
        return m, info

    # PDB: heuristic schedule on [1, 4] for the inner groups (first/last at 8 bits)
    _, info = go("pdb", MethodConfig("pdb", b_min=1, b_max=4, seed=seed))
    sched = tuple(info["schedule"])
    go("uniform_bmax", MethodConfig("uniform", bits=(sched[0],), seed=seed))
    go("lsq_bmax", MethodConfig("uniform", bits=(sched[0],), scheme="lsq", seed=seed))
    go("pdb_increasing", MethodConfig("pdb", bits=tuple(reversed(sched)), order="increasing", seed=seed))
    fpq = qlayers(fp)
    inner = [i for g in pdb_groups(fp, "8bit") for i in g]
    n_w = sum(fpq[i].weight.numel() for i in inner)
    avg = out["pdb"]["inner_weight_bits"] / n_w
    out["pdb"]["avg_bits"] = avg
    go("uniform_avg", MethodConfig("uniform", bits=(max(1, round(avg)),), seed=seed))
    # 1-bit: all layers 1-bit vs a 4-bit first group, first/last treated as groups
    n_groups = len(fp.groups())
    go("all_1bit", MethodConfig("pdb", bits=(1,) * n_groups, first_last="same", seed=seed))
    go("pdb_1bit", MethodConfig("pdb", bits=(4,) + (1,) * (n_groups - 1), first_last="same", seed=seed))
    # BWA vs its uniform twin (DoReFa) and LSQ at 2 bits
    m, _ = go("bwa2", MethodConfig("bwa", bits=(2,), seed=seed))
    drift = [float(((q.alpha.detach() - 2.0 ** torch.arange(q.bits)) / 2.0 ** torch.arange(q.bits)).abs().max())
             for q in m.modules() if isinstance(q, BWAQuantizer)]
    out["bwa2"]["alpha_rel_drift_max"] = max(drift)
    out["bwa2"]["alphas"] = [q.alpha.detach().tolist() for q in m.modules() if isinstance(q, BWAQuantizer)]
    go("uniform2", MethodConfig("uniform", bits=(2,), seed=seed))
    go("lsq2", MethodConfig("uniform", bits=(2,), scheme="lsq", seed=seed))
    # CQ at mean 2 weight bits (8-bit activations) vs controls
    for assign in ("score", "random", "inverted"):
        go(f"cq_{assign}", MethodConfig("cq", budget_bits=2.0, b_min=1, b_max=4, cq_assign=assign, seed=seed))
    go("uniform2_w", MethodConfig("uniform", bits=(2,), weights_only=True, seed=seed))
    # CMN
    cas, info = run_method(MethodConfig("cmn", seed=seed), data, fp, cfg)
    assert isinstance(cas, CascadeNet)
    s1, s2 = cas.stages
    z1, z2 = predict_logits(s1, data.test), predict_logits(s2, data.test)
    acc_c, rate = cascade_outcome(z1, z2, data.test.y, cas.rule, cas.threshold)
    cas.exit_rate = rate
    net_c = export(cas, data.test.x[:1])
    net_2 = export(s2, data.test.x[:1])
    r_c, r_2 = hwsim.simulate(net_c, acc), hwsim.simulate(net_2, acc)
    b1 = sum(la.bops() for la in net_c.stages[0].layers)
    b2 = sum(la.bops() for la in net_2.layers)
    out["cmn"] = {"acc": acc_c, "acc_stage1": float((z1.argmax(1) == data.test.y).float().mean()),
                  "acc_8bit": float((z2.argmax(1) == data.test.y).float().mean()),
                  "threshold": info["threshold"], "val_exit_rate": info["val_exit_rate"], "test_exit_rate": rate,
                  "bops_rel": (b1 + (1 - rate) * b2) / b2, "bops_worst_rel": (b1 + b2) / b2,
                  "cycles_rel": r_c.expected_cycles / r_2.cycles, "cycles_worst_rel": r_c.cycles / r_2.cycles,
                  "energy_rel": r_c.expected_energy.total_pj / r_2.energy.total_pj,
                  "energy_worst_rel": r_c.energy.total_pj / r_2.energy.total_pj,
                  "cycles_8bit": r_2.cycles, "energy_8bit_pj": r_2.energy.total_pj}
    # the accuracy-compute curve over thresholds (test split), for the plot
    s = exit_scores(z1, cas.rule)
    taus = sorted(set(torch.quantile(s, torch.linspace(0, 1, 41, dtype=torch.float64)).tolist())) + [math.inf]
    curve = []
    for t in taus:
        a, r = cascade_outcome(z1, z2, data.test.y, cas.rule, t)
        curve.append({"tau": t if math.isfinite(t) else None, "acc": a, "exit_rate": r,
                      "bops_rel": (b1 + (1 - r) * b2) / b2,
                      "cycles_rel": (r_c.stages[0].cycles + (1 - r) * r_c.stages[1].cycles) / r_2.cycles})
    out["cmn_curve"] = curve
    print(f"  [{data.name} s{seed} {time.time() - t0:6.1f}s] cmn: acc={acc_c:.4f} exit={rate:.3f}", file=log, flush=True)
    return out


def ms(rows: list[dict[str, Any]], key: str, field: str = "acc", scale: float = 100.0) -> tuple[float, float]:
    v = [r[key][field] * scale for r in rows]
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def fmt(m: tuple[float, float], d: int = 2) -> str:
    return f"{m[0]:.{d}f} ± {m[1]:.{d}f}"


def report(res: dict[str, list[dict[str, Any]]], seeds: list[int], epochs: int, wall_s: float) -> str:
    L: list[str] = ["# Quantization methods: measured results", "",
                    f"Generated by `python sims/exp_quant.py` (seeds {seeds}, {epochs} epochs of FP pre-training "
                    f"and {epochs} of fine-tuning per model, Adam 3e-3 with cosine decay, batch 64, CPU; "
                    f"wall time {wall_s / 60:.1f} min). Mean ± sample std over seeds; accuracies in % on the "
                    "test split; thresholds chosen on the validation split. Hardware numbers: the exported "
                    f"`hwsim.Network` simulated on the `{ACC}` preset (weights parallel, activations bit-serial). "
                    "Unless stated, the first and last layers are at 8 bits (`first_last=8bit`). "
                    "The readings behind each method are in `docs/methods.md`.", ""]
    checks: list[str] = []
    for ds, rows in res.items():
        tol = 1.0 if ds == "digits" else 2.0
        L += [f"## {ds}", "", f"FP accuracy: {fmt(ms(rows, 'fp'))}", ""]
        seps = [[round(v, 3) for v in r["separability"]] for r in rows]
        L += ["### PDB", "", "Fisher ratio tr(S_B)/tr(S_W) of each group's pooled output on the FP model "
              "(groups: conv blocks, then the classifier), per seed: " + "; ".join(str(s) for s in seps), "",
              "Heuristic schedules (inner groups, range [1, 4]): " + "; ".join(str(r["pdb"]["schedule"]) for r in rows),
              "", "| model | bits (inner groups) | acc % | inner weight memory (kbit) | all-layer weight memory (kbit) "
              "| cycles | energy (nJ) |", "|---|---|---|---|---|---|---|"]
        for key, label in (("pdb", "PDB (heuristic)"), ("uniform_bmax", "uniform DoReFa at PDB's b_1"),
                           ("lsq_bmax", "uniform LSQ at PDB's b_1"), ("pdb_increasing", "same bits, increasing"),
                           ("uniform_avg", "uniform DoReFa at PDB's mean bits (rounded)"),
                           ("all_1bit", "all 1-bit (first/last too)"), ("pdb_1bit", "4-bit first group, rest 1-bit")):
            bits = rows[0][key].get("schedule", "")
            L.append(f"| {label} | {bits} | {fmt(ms(rows, key))} | {fmt(ms(rows, key, 'inner_weight_bits', 1e-3), 1)} "
                     f"| {fmt(ms(rows, key, 'weight_bits', 1e-3), 1)} | {fmt(ms(rows, key, 'cycles', 1), 0)} "
                     f"| {fmt(ms(rows, key, 'energy_pj', 1e-3), 1)} |")
        save = [1 - r["pdb"]["inner_weight_bits"] / r["uniform_bmax"]["inner_weight_bits"] for r in rows]
        save_all = [1 - r["pdb"]["weight_bits"] / r["uniform_bmax"]["weight_bits"] for r in rows]
        loss = ms(rows, "uniform_bmax")[0] - ms(rows, "pdb")[0]
        L += ["", f"Weight-memory saving of PDB vs uniform at b_1: {100 * statistics.mean(save):.1f} % of the inner "
              f"layers, {100 * statistics.mean(save_all):.1f} % of all layers; accuracy change "
              f"{-loss:+.2f} pt. Mean inner bits of PDB: {statistics.mean(r['pdb']['avg_bits'] for r in rows):.2f}.", ""]
        checks.append(f"{ds}: PDB saves >= 25 % inner weight memory at <= {tol} pt loss vs uniform at b_1: "
                      f"{'holds' if min(save) >= 0.25 and loss <= tol else 'does not hold'} "
                      f"(saving {100 * min(save):.1f} % worst seed, loss {loss:+.2f} pt)")
        d_inc = round(ms(rows, "pdb")[0] - ms(rows, "pdb_increasing")[0], 2)
        checks.append(f"{ds}: decreasing beats the same bits increasing: {'holds' if d_inc > 0 else 'does not hold'} "
                      f"({d_inc:+.2f} pt)")
        d_avg = round(ms(rows, "pdb")[0] - ms(rows, "uniform_avg")[0], 2)
        checks.append(f"{ds}: PDB vs uniform at its (rounded) mean bits: {d_avg:+.2f} pt "
                      f"({'PDB better' if d_avg > 0 else 'PDB not better'})")
        d1 = ms(rows, "pdb_1bit")[0] - ms(rows, "all_1bit")[0]
        checks.append(f"{ds}: 4-bit first group beats all-1-bit clearly (> 2 pt): "
                      f"{'holds' if d1 > 2 else 'does not hold'} ({d1:+.2f} pt)")
        rising = [all(b >= a for a, b in zip(s, s[1:], strict=False)) for s in seps]
        checks.append(f"{ds}: separability non-decreasing with depth on the FP model: {sum(rising)}/{len(rows)} seeds"
                      + ("" if all(rising) else " (not monotone in the others: see the ratios above)"))
        # BWA
        L += ["### BWA (2-bit activations and weights inside; BWA on activations)", "",
              "| model | acc % | cycles | energy (nJ) |", "|---|---|---|---|"]
        for key, label in (("bwa2", "BWA 2-bit"), ("uniform2", "uniform DoReFa 2-bit (BWA at alpha=2^i)"),
                           ("lsq2", "uniform LSQ 2-bit")):
            L.append(f"| {label} | {fmt(ms(rows, key))} | {fmt(ms(rows, key, 'cycles', 1), 0)} "
                     f"| {fmt(ms(rows, key, 'energy_pj', 1e-3), 1)} |")
        L += ["", "Learned alphas (seed " + str(rows[0]["seed"]) + ", per BWA layer, init [1, 2]): "
              + "; ".join(str([round(a, 3) for a in al]) for al in rows[0]["bwa2"]["alphas"]),
              f"Largest relative move of an alpha: {statistics.mean(r['bwa2']['alpha_rel_drift_max'] for r in rows):.3f} "
              "(mean over seeds).", ""]
        d_b = ms(rows, "bwa2")[0] - ms(rows, "uniform2")[0]
        checks.append(f"{ds}: BWA no worse than its uniform twin by > 1 pt at 2 bits: "
                      f"{'holds' if d_b >= -1 else 'does not hold'} ({d_b:+.2f} pt); alphas moved: "
                      f"{'yes' if min(r['bwa2']['alpha_rel_drift_max'] for r in rows) > 1e-3 else 'no'}")
        # CQ
        L += ["### CQ (per-filter weight widths in [1, 4], mean 2 bits over the inner layers; 8-bit activations)",
              "", "| assignment | acc % | mean inner bits | cycles |", "|---|---|---|---|"]
        for key, label in (("cq_score", "class-based score + search"), ("cq_random", "same histogram, random"),
                           ("cq_inverted", "same histogram, inverted"), ("uniform2_w", "uniform 2-bit weights")):
            mb = (statistics.mean(r[key]["mean_bits"] for r in rows) if "mean_bits" in rows[0][key]
                  else 2.0)
            L.append(f"| {label} | {fmt(ms(rows, key))} | {mb:.3f} | {fmt(ms(rows, key, 'cycles', 1), 0)} |")
        L.append("")
        for other in ("cq_random", "cq_inverted", "uniform2_w"):
            d = round(ms(rows, "cq_score")[0] - ms(rows, other)[0], 2)
            noise = max(ms(rows, "cq_score")[1], ms(rows, other)[1])
            verdict = "within one std of the seeds: no evidence either way" if abs(d) <= noise else (
                "CQ better" if d > 0 else "CQ worse")
            checks.append(f"{ds}: CQ vs {other}: {d:+.2f} pt ({verdict})")
        # CMN
        c = [r["cmn"] for r in rows]

        def cm(f: str, s: float = 100.0, c: list[dict[str, Any]] = c) -> str:
            v = [x[f] * s for x in c]
            return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.2f}"

        L += ["### CMN (binary stage with 8-bit first/last layers, then the 8-bit network; confidence rule)", "",
              "| quantity | value |", "|---|---|",
              f"| cascade accuracy % | {cm('acc')} |", f"| 8-bit network alone % | {cm('acc_8bit')} |",
              f"| binary stage alone % | {cm('acc_stage1')} |", f"| exit rate at stage 1 (val / test) % | "
              f"{cm('val_exit_rate')} / {cm('test_exit_rate')} |",
              f"| expected BOPs, % of 8-bit | {cm('bops_rel')} |", f"| worst-case BOPs, % of 8-bit | {cm('bops_worst_rel')} |",
              f"| expected cycles, % of 8-bit | {cm('cycles_rel')} |",
              f"| worst-case cycles, % of 8-bit | {cm('cycles_worst_rel')} |",
              f"| expected energy, % of 8-bit | {cm('energy_rel')} |",
              f"| worst-case energy, % of 8-bit | {cm('energy_worst_rel')} |",
              f"| 8-bit network: cycles / energy (nJ) | {c[0]['cycles_8bit']} / {c[0]['energy_8bit_pj'] / 1e3:.1f} |", ""]
        loss_c = statistics.mean(x["acc_8bit"] - x["acc"] for x in c) * 100
        for f in ("bops_rel", "cycles_rel", "energy_rel"):
            v = statistics.mean(x[f] for x in c)
            checks.append(f"{ds}: CMN expected {f[:-4]} <= 40 % of the 8-bit network at <= 0.5 pt loss: "
                          f"{'holds' if v <= 0.4 and loss_c <= 0.5 else 'does not hold'} "
                          f"({100 * v:.1f} %, loss {loss_c:+.2f} pt)")
        if ds == "mnist1d":
            L += ["Accuracy-compute curve over thresholds (test split, all seeds): `docs/cmn_mnist1d.png`.", ""]
    L += ["## Claims checked", ""] + [f"- {c}" for c in checks] + [""]
    return "\n".join(L)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        cur = r["cmn_curve"]
        ax.plot([100 * p["cycles_rel"] for p in cur], [100 * p["acc"] for p in cur], ".-", alpha=0.8,
                label=f"cascade, seed {r['seed']} (expected cycles)")
        ax.plot([100 * p["bops_rel"] for p in cur], [100 * p["acc"] for p in cur], ":", alpha=0.6,
                label=f"cascade, seed {r['seed']} (expected BOPs)")
        c = r["cmn"]
        ax.plot(100 * c["cycles_rel"], 100 * c["acc"], "k*", ms=10)
        ax.axhline(100 * c["acc_8bit"], color="gray", lw=0.8)
        ax.axvline(100 * c["cycles_worst_rel"], color="red", lw=0.8, ls="--")
    ax.axvline(100, color="gray", lw=0.8)
    ax.set_xlabel("compute, % of the 8-bit network (red dashed: worst case in cycles)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("CMN on MNIST-1D: thresholds swept (star: tau chosen on val)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    ap.add_argument("--out", default="docs")
    ap.add_argument("--report-only", type=float, metavar="WALL_S", default=None,
                    help="rewrite results.md and the plot from quant_results.json (WALL_S: the run's wall time)")
    args = ap.parse_args(argv)
    if args.report_only is not None:
        res0 = json.loads((Path(args.out) / "quant_results.json").read_text())
        if "mnist1d" in res0:
            plot(res0["mnist1d"], Path(args.out) / "cmn_mnist1d.png")
        seeds0 = [r["seed"] for r in next(iter(res0.values()))]
        (Path(args.out) / "results.md").write_text(report(res0, seeds0, args.epochs, args.report_only))
        return 0
    torch.set_num_threads(1)
    acc = hwsim.resolve_accelerator(ACC)
    out = Path(args.out)  # relative to the working directory (run from the repository root)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res: dict[str, list[dict[str, Any]]] = {}
    for ds in args.datasets:
        data = load_dataset(ds)
        res[ds] = [run_seed(data, s, args.epochs, acc, sys.stdout) for s in args.seeds]
        (out / "quant_results.json").write_text(json.dumps(res, indent=1))
    if "mnist1d" in res:
        plot(res["mnist1d"], out / "cmn_mnist1d.png")
    (out / "results.md").write_text(report(res, args.seeds, args.epochs, time.time() - t0))
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
