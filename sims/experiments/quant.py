"""Experiment: the four quantization methods against fair baselines on digits and MNIST-1D.

Run: ``python -m sims.experiments.quant [--seeds 0 1 2] [--epochs 15] [--out docs]``. Writes ``results.md``,
``quant_results.json`` (every run, with its exported network) and ``cmn_mnist1d.png`` under ``--out``.
Every method fine-tunes the same pretrained FP model of its seed with the same schedule; thresholds are
chosen on the validation split, accuracies are on the test split. Every comparison is reported as the
paired per-seed difference (same seed = same FP model and data order) with its spread, and says what it
is compared against. The final model of every method is run through ``quant.intnet.verify`` (what
``hwsim verify`` does). ``--resimulate`` recomputes every hardware number from the stored networks with
the current engine (no training) and rewrites the report. The run's wall and CPU time go into the
report (the time budget: the whole experiment within 15 min of one core).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import hwsim
from hwsim.io import network_from_dict, network_to_dict
from quant.cmn import CascadeNet, PruneSchedule, cascade_outcome, choose_threshold, exit_scores, int_specs
from quant.data import DataSplits, load_dataset
from quant.export import export
from quant.intnet import model_integers, verify
from quant.layers import apply_specs, qlayers
from quant.pdb import pdb_groups, separability, weight_memory_bits
from quant.quantizers import BWAQuantizer
from quant.recipes import MethodConfig, pretrain, run_method
from quant.train import TrainConfig, evaluate, predict_logits, train

ACC = "edge16_serial"
ALPHA_FRAC_BITS = 4
"""Fraction bits of BWA's fixed-point bit weights in the post-training rounding check."""
PRUNED_DENSITY = 0.5


def _hw(net: hwsim.Network, acc: hwsim.Accelerator) -> dict[str, Any]:
    res = hwsim.simulate(net, acc)
    return {"weight_bits": net.weight_bits_total, "bops": sum(la.bops() for la in net.layers),
            "cycles": res.expected_cycles, "energy_pj": res.expected_energy.total_pj,
            "worst_cycles": res.cycles, "worst_energy_pj": res.energy.total_pj}


def _verify(model: torch.nn.Module, data: DataSplits) -> dict[str, Any]:
    stages = list(model.stages) if isinstance(model, CascadeNet) else [model]
    r = verify(model, [model_integers(s) for s in stages], data.test.x)
    return {"agree": r.agree, "samples": r.samples, "exact": r.exact}


def run_seed(data: DataSplits, seed: int, epochs: int, acc: hwsim.Accelerator, log: Any) -> dict[str, Any]:
    cfg = TrainConfig(epochs=epochs, seed=seed, progress=False)
    t0 = time.time()
    fp = pretrain(data, cfg)
    out: dict[str, Any] = {"seed": seed, "fp": {"acc": evaluate(fp, data.test)}}
    out["separability"] = separability(fp, data.train.x, data.train.y)
    x1 = data.test.x[:1]
    cache: dict[Any, Any] = {}  # CQ's search, shared by its score / random / inverted runs

    def go(key: str, mc: MethodConfig, check: bool = False) -> tuple[torch.nn.Module, dict[str, Any]]:
        m, info = run_method(mc, data, fp, cfg, cache=cache)
        net = export(m, x1)
        row = {"acc": evaluate(m, data.test), **_hw(net, acc), "network": network_to_dict(net),
               **{k: v for k, v in info.items() if k in ("schedule", "mean_bits", "search")}}
        inner = [i for g in pdb_groups(fp, mc.first_last) for i in g]
        row["inner_weight_bits"] = weight_memory_bits(m, inner)
        if check:
            row["verify"] = _verify(m, data)
        out[key] = row
        print(f"  [{data.name} s{seed} {time.time() - t0:6.1f}s] {key}: acc={row['acc']:.4f}", file=log, flush=True)
        return m, info

    fpq = qlayers(fp)
    inner = [i for g in pdb_groups(fp, "8bit") for i in g]
    n_w = sum(fpq[i].weight.numel() for i in inner)
    # PDB: heuristic schedule on [1, 4] for the inner groups (first/last at 8 bits)
    _, info = go("pdb", MethodConfig("pdb", b_min=1, b_max=4, seed=seed), check=True)
    sched = tuple(info["schedule"])
    avg = out["pdb"]["inner_weight_bits"] / n_w
    out["pdb"]["avg_bits"] = avg
    go("uniform_b1", MethodConfig("uniform", bits=(sched[0],), seed=seed), check=True)
    if tuple(reversed(sched)) != sched:
        go("pdb_increasing", MethodConfig("pdb", bits=tuple(reversed(sched)), order="increasing", seed=seed))
    mem_bits = max(1, math.ceil(avg - 1e-9))  # the narrowest uniform width with at least PDB's memory
    out["uniform_mem_bits"] = mem_bits
    if mem_bits != sched[0]:
        go("uniform_mem", MethodConfig("uniform", bits=(mem_bits,), seed=seed))
    else:
        out["uniform_mem"] = out["uniform_b1"]
    # 1-bit: the standard binary net (8-bit first and last layers) vs a 4-bit first inner group
    n_inner = len(pdb_groups(fp, "8bit"))
    go("binary", MethodConfig("uniform", bits=(1,), seed=seed))
    go("pdb_1bit", MethodConfig("pdb", bits=(4,) + (1,) * (n_inner - 1), seed=seed))
    # BWA vs its uniform twin (DoReFa) at 2 bits; fixed-point alphas by rounding the trained ones
    m, _ = go("bwa2", MethodConfig("bwa", bits=(2,), seed=seed), check=True)
    qs = [q for q in m.modules() if isinstance(q, BWAQuantizer)]
    out["bwa2"]["alpha_rel_drift_max"] = max(
        float(((q.alpha.detach() - 2.0 ** torch.arange(q.bits)) / 2.0 ** torch.arange(q.bits)).abs().max()) for q in qs)
    out["bwa2"]["alphas"] = [q.alpha.detach().tolist() for q in qs]
    mq = copy.deepcopy(m)
    for q in mq.modules():
        if isinstance(q, BWAQuantizer):
            q.frac_bits = ALPHA_FRAC_BITS
    out["bwa2_fixed"] = {"acc": evaluate(mq, data.test), "verify": _verify(mq, data),
                         "alpha_int": [torch.round(q.alpha_value().detach() * 2 ** ALPHA_FRAC_BITS).tolist()
                                       for q in mq.modules() if isinstance(q, BWAQuantizer)]}
    go("uniform2", MethodConfig("uniform", bits=(2,), seed=seed))
    # CQ at mean 2 weight bits (8-bit activations) vs the same histogram at random / inverted, and uniform
    for assign in ("score", "random", "inverted"):
        go(f"cq_{assign}", MethodConfig("cq", budget_bits=2.0, b_min=1, b_max=4, cq_assign=assign, seed=seed),
           check=assign == "score")
    go("uniform2_w", MethodConfig("uniform", bits=(2,), weights_only=True, seed=seed))
    # CMN, default settings (budget rule 0.35, stage 1 distilled from stage 2)
    mc = MethodConfig("cmn", seed=seed)
    cas, info = run_method(mc, data, fp, cfg)
    assert isinstance(cas, CascadeNet)
    s1, s2 = cas.stages
    out["cmn"] = _cmn_row(cas, data, acc, info)
    out["cmn"]["verify"] = _verify(cas, data)
    z1v, z2v = predict_logits(s1, data.val), predict_logits(s2, data.val)
    ch = choose_threshold(z1v, z2v, data.val.y, "confidence", 0.005)  # the accuracy rule, same stages
    alt = CascadeNet([s1, s2], "confidence", ch.threshold, ch.exit_rate)
    out["cmn_accuracy_rule"] = _cmn_row(alt, data, acc, {"threshold": ch.threshold, "val_exit_rate": ch.exit_rate})
    out["cmn_curve"] = _curve(cas, data, out["cmn"])
    # a stage 2 pruned to 50 % during QAT, in the same cascade (same stage 1)
    s2p = copy.deepcopy(fp)
    apply_specs(s2p, int_specs(s2p, 8))
    torch.manual_seed(seed)
    train(s2p, data, cfg, prune=PruneSchedule(PRUNED_DENSITY, 0, max(1, round(2 * epochs / 3))), desc="pruned")
    pruned = CascadeNet([s1, s2p], cas.rule, cas.threshold, cas.exit_rate)
    row = _cmn_row(pruned, data, acc, info)
    row["density"] = [la.density for la in qlayers(s2p)]
    row["verify"] = _verify(pruned, data)
    out["cmn_pruned"] = row
    print(f"  [{data.name} s{seed} {time.time() - t0:6.1f}s] cmn: acc={out['cmn']['acc']:.4f} "
          f"8-bit={out['cmn']['acc_8bit']:.4f} cycles={out['cmn']['cycles_rel']:.3f}; pruned 8-bit="
          f"{row['acc_8bit']:.4f}", file=log, flush=True)
    return out


def _cmn_row(cas: CascadeNet, data: DataSplits, acc: hwsim.Accelerator, info: dict[str, Any]) -> dict[str, Any]:
    s1, s2 = cas.stages
    z1, z2 = predict_logits(s1, data.test), predict_logits(s2, data.test)
    acc_c, rate = cascade_outcome(z1, z2, data.test.y, cas.rule, cas.threshold)
    net_c = export(CascadeNet([s1, s2], cas.rule, cas.threshold, rate), data.test.x[:1])
    net_2 = export(s2, data.test.x[:1])
    row: dict[str, Any] = {
        "acc": acc_c, "acc_stage1": float((z1.argmax(1) == data.test.y).float().mean()),
        "acc_8bit": float((z2.argmax(1) == data.test.y).float().mean()),
        "threshold": info.get("threshold"), "val_exit_rate": info.get("val_exit_rate"), "test_exit_rate": rate,
        "network": network_to_dict(net_c), "network_8bit": network_to_dict(net_2)}
    row.update(_cmn_hw(net_c, net_2, acc))
    return row


def _cmn_hw(net_c: hwsim.Network, net_2: hwsim.Network, acc: hwsim.Accelerator) -> dict[str, Any]:
    r_c, r_2 = hwsim.simulate(net_c, acc), hwsim.simulate(net_2, acc)
    b1 = sum(la.bops() for la in net_c.stages[0].layers)
    b2 = sum(la.bops() for la in net_2.layers)
    rate = net_c.stages[0].exit_rate
    return {"bops_rel": (b1 + (1 - rate) * b2) / b2, "bops_worst_rel": (b1 + b2) / b2,
            "cycles_rel": r_c.expected_cycles / r_2.cycles, "cycles_worst_rel": r_c.cycles / r_2.cycles,
            "energy_rel": r_c.expected_energy.total_pj / r_2.energy.total_pj,
            "energy_worst_rel": r_c.energy.total_pj / r_2.energy.total_pj,
            "cycles_stage1": r_c.stages[0].cycles, "cycles_8bit": r_2.cycles, "energy_8bit_pj": r_2.energy.total_pj,
            "weight_bits_8bit": net_2.weight_bits_total}


def _curve(cas: CascadeNet, data: DataSplits, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy against expected cycles over thresholds (test split), for the plot."""
    s1, s2 = cas.stages
    z1, z2 = predict_logits(s1, data.test), predict_logits(s2, data.test)
    s = exit_scores(z1, cas.rule)
    taus = sorted(set(torch.quantile(s, torch.linspace(0, 1, 41, dtype=torch.float64)).tolist())) + [math.inf]
    c1 = row["cycles_stage1"] / row["cycles_8bit"]
    out = []
    for t in taus:
        a, r = cascade_outcome(z1, z2, data.test.y, cas.rule, t)
        out.append({"tau": t if math.isfinite(t) else None, "acc": a, "exit_rate": r, "cycles_rel": c1 + (1 - r)})
    return out


def resimulate(res: dict[str, list[dict[str, Any]]], acc: hwsim.Accelerator) -> None:
    """Recompute every hardware number from the stored networks with the current engine."""
    for rows in res.values():
        for r in rows:
            for key, row in r.items():
                if not isinstance(row, dict) or "network" not in row:
                    continue
                net = network_from_dict(row["network"])
                if key.startswith("cmn"):
                    row.update(_cmn_hw(net, network_from_dict(row["network_8bit"]), acc))
                else:
                    row.update(_hw(net, acc))
            c1 = r["cmn"]["cycles_stage1"] / r["cmn"]["cycles_8bit"]
            for pt in r["cmn_curve"]:
                pt["cycles_rel"] = c1 + (1 - pt["exit_rate"])


# ---------------------------------------------------------------- report
def _v(rows: list[dict[str, Any]], key: str, field: str = "acc", scale: float = 100.0) -> list[float]:
    return [r[key][field] * scale for r in rows]


def ms(v: list[float], d: int = 2) -> str:
    return f"{statistics.mean(v):.{d}f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.{d}f}"


def paired(rows: list[dict[str, Any]], a: str, b: str, field: str = "acc") -> tuple[float, float, list[float]]:
    """Per-seed differences ``a - b`` in points: (mean, sample std, the differences)."""
    d = [x - y for x, y in zip(_v(rows, a, field), _v(rows, b, field), strict=True)]
    return statistics.mean(d), (statistics.stdev(d) if len(d) > 1 else 0.0), d


def pstr(p: tuple[float, float, list[float]]) -> str:
    m, s, d = p
    return f"{m:+.2f} ± {s:.2f} pt (per seed {', '.join(f'{round(v, 2) + 0.0:+.2f}' for v in d)})"


def verdict(p: tuple[float, float, list[float]], what: str) -> str:
    m, s, d = p
    d = [round(v, 6) for v in d]
    if all(v > 0 for v in d):
        return f"{what} better on every seed"
    if all(v < 0 for v in d):
        return f"{what} worse on every seed"
    if all(v >= 0 for v in d) and any(d):
        return f"{what} better or equal on every seed"
    if all(v <= 0 for v in d) and any(d):
        return f"{what} worse or equal on every seed"
    return "mixed signs over the seeds: no evidence either way" if abs(m) <= s else (
        f"{what} better on average, not on every seed" if m > 0 else f"{what} worse on average, not on every seed")


def report(res: dict[str, list[dict[str, Any]]], seeds: list[int], epochs: int, wall_s: float,
           cpu_s: float | None = None) -> str:
    L: list[str] = [
        "# Quantization methods: measured results", "",
        f"Generated by `python -m sims.experiments.quant` (seeds {seeds}, {epochs} epochs of FP pre-training and {epochs} of "
        "fine-tuning per model, CMN's binary stage distilled for twice as long; Adam 3e-3 with cosine decay, batch "
        f"64, one CPU thread; the whole experiment, both data sets: {wall_s / 60:.1f} min wall time"
        + (f", {cpu_s / 60:.1f} min of CPU time (user + system), on a machine shared with other jobs" if cpu_s else "")
        + "). Accuracies in % on the test split (mean ± sample std over seeds); thresholds and searches use the "
        "validation split only. **Comparisons are paired**: for each seed the two models share the FP model, "
        "the data order and the schedule; the difference is given per seed and as mean ± std. Hardware numbers: "
        f"the exported `hwsim.Network` (integer widths: DoReFa k-bit weights are k+1-bit integers, 8-bit edges "
        f"and CMN's stage 2 use zero-capable 8-bit codes) simulated on the `{ACC}` preset (weights parallel, "
        "activations bit-serial, so cycles follow activation widths and weight widths only change memory and "
        "energy). Unless stated, the first and last layers are 8-bit. The readings behind each method are in "
        "`docs/methods.md`.", ""]
    checks: list[str] = []
    for ds, rows in res.items():
        L += [f"## {ds}", "", f"FP accuracy: {ms(_v(rows, 'fp'))}", ""]
        ver = [(k, r[k]["verify"]) for r in rows for k in r if isinstance(r[k], dict) and "verify" in r[k]]
        n_ok = sum(1 for _, v in ver if v["agree"] == v["samples"] and v["exact"])
        L += [f"Integer check (`quant.intnet.verify`, what `hwsim verify` runs): {n_ok}/{len(ver)} final models "
              f"({', '.join(sorted({k for k, _ in ver}))}; every seed) agree with their PyTorch model (its quantized "
              "layers accumulated in float64) on every test sample with every accumulator exact.", ""]
        checks.append(f"{ds}: integer network = PyTorch model on every test sample, all accumulators exact: "
                      f"{n_ok}/{len(ver)} models")
        # ---- PDB
        seps = [[round(v, 3) for v in r["separability"]] for r in rows]
        L += ["### PDB", "", "Fisher ratio tr(S_B)/tr(S_W) of each group's pooled output on the FP model "
              "(groups: conv blocks, then the classifier), per seed: " + "; ".join(str(s) for s in seps), "",
              "Heuristic schedules (inner groups, range [1, 4]; log-separability, isotonic fit): "
              + "; ".join(str(r["pdb"]["schedule"]) for r in rows), "",
              "| model | bits (inner groups) | acc % | inner weight memory (kbit) | all-layer weight memory (kbit) "
              "| cycles | energy (nJ) |", "|---|---|---|---|---|---|---|"]
        keys = [("pdb", "PDB (heuristic)"), ("uniform_b1", "uniform at PDB's b_1"),
                ("pdb_increasing", "same bits, increasing order (equal memory)"),
                ("uniform_mem", "uniform at ceil(PDB's mean bits) (>= PDB's memory)"),
                ("binary", "standard binary: 1-bit inner, 8-bit first/last"),
                ("pdb_1bit", "4-bit first inner group, rest 1-bit")]
        for key, label in keys:
            if key not in rows[0]:
                continue
            bits = rows[0][key].get("schedule", "")
            L.append(f"| {label} | {bits} | {ms(_v(rows, key))} | {ms(_v(rows, key, 'inner_weight_bits', 1e-3), 1)} "
                     f"| {ms(_v(rows, key, 'weight_bits', 1e-3), 1)} | {ms(_v(rows, key, 'cycles', 1), 0)} "
                     f"| {ms(_v(rows, key, 'energy_pj', 1e-3), 1)} |")
        save = [1 - r["pdb"]["inner_weight_bits"] / r["uniform_b1"]["inner_weight_bits"] for r in rows]
        L += ["", f"Mean inner bits of PDB: {statistics.mean(r['pdb']['avg_bits'] for r in rows):.2f}; uniform "
              f"width with at least that memory: {[r['uniform_mem_bits'] for r in rows]}.", ""]
        p = paired(rows, "pdb", "uniform_b1")
        checks.append(f"{ds}: PDB vs uniform at b_1 (the paper's comparison, {100 * min(save):.1f} % less inner "
                      f"weight memory, worst seed): {pstr(p)}; {verdict(p, 'PDB')}")
        if "pdb_increasing" in rows[0]:
            p = paired(rows, "pdb", "pdb_increasing")
            checks.append(f"{ds}: PDB vs the same bits in increasing order (equal memory): {pstr(p)}; "
                          f"{verdict(p, 'decreasing')}")
        if all(r["uniform_mem_bits"] != r["pdb"]["schedule"][0] for r in rows):
            p = paired(rows, "pdb", "uniform_mem")
            mem = statistics.mean(r["uniform_mem"]["inner_weight_bits"] / r["pdb"]["inner_weight_bits"] for r in rows)
            checks.append(f"{ds}: PDB vs uniform at ceil(mean bits) ({100 * (mem - 1):+.0f} % inner memory vs PDB): "
                          f"{pstr(p)}; {verdict(p, 'PDB')}")
        p = paired(rows, "pdb_1bit", "binary")
        mem = statistics.mean(r["pdb_1bit"]["inner_weight_bits"] / r["binary"]["inner_weight_bits"] for r in rows)
        checks.append(f"{ds}: 1-bit boost (4-bit first inner group) vs the standard binary net with 8-bit first/last "
                      f"layers ({mem:.2f}x its inner memory): {pstr(p)}; {verdict(p, 'boosted')}")
        rising = [all(b >= a for a, b in zip(s, s[1:], strict=False)) for s in seps]
        checks.append(f"{ds}: separability non-decreasing with depth on the FP model: {sum(rising)}/{len(rows)} seeds")
        # ---- BWA
        L += ["### BWA (2-bit inner layers, BWA on activations)", "",
              "| model | acc % | cycles | energy (nJ) |", "|---|---|---|---|"]
        for key, label in (("bwa2", "BWA 2-bit (float alphas)"), ("uniform2", "uniform DoReFa 2-bit (= BWA at alpha=2^i)")):
            L.append(f"| {label} | {ms(_v(rows, key))} | {ms(_v(rows, key, 'cycles', 1), 0)} "
                     f"| {ms(_v(rows, key, 'energy_pj', 1e-3), 1)} |")
        L += [f"| BWA 2-bit, alphas rounded to fixed point ({ALPHA_FRAC_BITS} fraction bits), no retraining "
              f"| {ms(_v(rows, 'bwa2_fixed'))} | as BWA | as BWA |", "",
              "Learned alphas (seed " + str(rows[0]["seed"]) + ", per BWA layer, init [1, 2]): "
              + "; ".join(str([round(a, 3) for a in al]) for al in rows[0]["bwa2"]["alphas"]),
              f"Largest relative move of an alpha: {statistics.mean(r['bwa2']['alpha_rel_drift_max'] for r in rows):.3f} "
              "(mean over seeds). BWA's cost in the simulator: its per-bit-plane scale multiplies (`bit_scales`).", ""]
        p = paired(rows, "bwa2", "uniform2")
        checks.append(f"{ds}: BWA vs its uniform twin at 2 bits: {pstr(p)}; {verdict(p, 'BWA')}; energy "
                      f"{ms([100 * (a / b - 1) for a, b in zip(_v(rows, 'bwa2', 'energy_pj', 1), _v(rows, 'uniform2', 'energy_pj', 1), strict=True)])} %")
        p = paired(rows, "bwa2_fixed", "bwa2")
        checks.append(f"{ds}: BWA with {ALPHA_FRAC_BITS}-fraction-bit fixed-point alphas vs float alphas: {pstr(p)}")
        # ---- CQ
        L += ["### CQ (per-filter weight widths in [1, 4], mean 2 bits over the inner layers; 8-bit activations)",
              "", "Score and search on BN-recalibrated networks; search budget: "
              + ", ".join(f"{r['cq_score']['search']['candidates']} candidates / {r['cq_score']['search']['rounds']} rounds"
                          for r in rows) + " (per seed).", "",
              "| assignment | acc % | mean inner bits | cycles |", "|---|---|---|---|"]
        for key, label in (("cq_score", "class-based score + search"), ("cq_random", "same histogram, random"),
                           ("cq_inverted", "same histogram, inverted"), ("uniform2_w", "uniform 2-bit weights")):
            mb = statistics.mean(r[key]["mean_bits"] for r in rows) if "mean_bits" in rows[0][key] else 2.0
            L.append(f"| {label} | {ms(_v(rows, key))} | {mb:.3f} | {ms(_v(rows, key, 'cycles', 1), 0)} |")
        L.append("")
        for other in ("cq_random", "cq_inverted", "uniform2_w"):
            p = paired(rows, "cq_score", other)
            checks.append(f"{ds}: CQ vs {other}: {pstr(p)}; {verdict(p, 'CQ')}")
        # ---- CMN
        L += _cmn_section(ds, rows, checks)
    L += ["## Claims checked", ""] + [f"- {c}" for c in checks] + [""]
    return "\n".join(L)


def _cmn_section(ds: str, rows: list[dict[str, Any]], checks: list[str]) -> list[str]:
    def cm(key: str, f: str, s: float = 100.0) -> str:
        return ms([r[key][f] * s for r in rows])

    L = ["### CMN (binary stage with 8-bit first/last layers, then the 8-bit network)", "",
         "Default settings: budget rule (tau = the validation quantile of the binary stage's confidence that sends "
         "to stage 2 as many inputs as 35 % of stage 2's cycles allow), stage 1 distilled from stage 2. "
         "Beside it the accuracy-target rule (lowest tau within 0.5 pt of stage 2 on validation) on the *same* "
         f"stages, and a stage 2 pruned to {PRUNED_DENSITY:.0%} density during its QAT (gradual magnitude "
         "schedule) behind the same stage 1 and threshold.", "",
         "| quantity | budget rule (default) | accuracy rule | pruned stage 2 |", "|---|---|---|---|"]
    keys = ("cmn", "cmn_accuracy_rule", "cmn_pruned")
    for f, label, s in (("acc", "cascade accuracy %", 100.0), ("acc_8bit", "its 8-bit stage alone %", 100.0),
                        ("acc_stage1", "binary stage alone %", 100.0),
                        ("test_exit_rate", "exit rate at stage 1 (test) %", 100.0),
                        ("bops_rel", "expected BOPs, % of its 8-bit stage", 100.0),
                        ("cycles_rel", "expected cycles, % of its 8-bit stage", 100.0),
                        ("cycles_worst_rel", "worst-case cycles, % of its 8-bit stage", 100.0),
                        ("energy_rel", "expected energy, % of its 8-bit stage", 100.0),
                        ("cycles_8bit", "8-bit stage: cycles", 1.0), ("energy_8bit_pj", "8-bit stage: energy (nJ)", 1e-3),
                        ("weight_bits_8bit", "8-bit stage: weight memory (kbit)", 1e-3)):
        L.append(f"| {label} | " + " | ".join(cm(k, f, s) for k in keys) + " |")
    L.append("")
    for key, name in (("cmn", "default (budget rule)"), ("cmn_accuracy_rule", "accuracy rule")):
        d = [100 * (r[key]["acc"] - r[key]["acc_8bit"]) for r in rows]
        p = (statistics.mean(d), statistics.stdev(d) if len(d) > 1 else 0.0, d)
        cyc = statistics.mean(r[key]["cycles_rel"] for r in rows)
        ok = p[0] >= -0.5 and cyc <= 0.4
        checks.append(f"{ds}: CMN {name} vs its 8-bit stage alone: {pstr(p)} at {100 * cyc:.1f} % of its expected "
                      f"cycles (target >= -0.5 pt at <= 40 %, mean of seeds): {'holds' if ok else 'does not hold'}")
    d = [100 * (r["cmn_pruned"]["acc_8bit"] - r["cmn"]["acc_8bit"]) for r in rows]
    e = [100 * (r["cmn_pruned"]["energy_8bit_pj"] / r["cmn"]["energy_8bit_pj"] - 1) for r in rows]
    w = [100 * (r["cmn_pruned"]["weight_bits_8bit"] / r["cmn"]["weight_bits_8bit"] - 1) for r in rows]
    c = [100 * (r["cmn_pruned"]["cycles_8bit"] / r["cmn"]["cycles_8bit"] - 1) for r in rows]
    checks.append(f"{ds}: 8-bit stage pruned to {PRUNED_DENSITY:.0%} vs dense: accuracy "
                  f"{pstr((statistics.mean(d), statistics.stdev(d) if len(d) > 1 else 0.0, d))}; weight memory "
                  f"{statistics.mean(w):+.1f} %, energy {statistics.mean(e):+.1f} %, cycles {statistics.mean(c):+.1f} % "
                  f"(the serial-activation PE does not skip zeros)")
    if ds == "mnist1d":
        L += ["Accuracy-compute curve over thresholds (test split, all seeds): `docs/cmn_mnist1d.png`.", ""]
    return L


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        cur = r["cmn_curve"]
        ax.plot([100 * p["cycles_rel"] for p in cur], [100 * p["acc"] for p in cur], ".-", alpha=0.8,
                label=f"cascade, seed {r['seed']}")
        c = r["cmn"]
        ax.plot(100 * c["cycles_rel"], 100 * c["acc"], "k*", ms=10)
        ax.axhline(100 * c["acc_8bit"], color="gray", lw=0.8)
        ax.axvline(100 * c["cycles_worst_rel"], color="red", lw=0.8, ls="--")
    ax.axvline(100, color="gray", lw=0.8)
    ax.axvline(35, color="green", lw=0.8, ls=":")
    ax.set_xlabel("expected cycles, % of the 8-bit stage\n(green dotted: budget 35 %; red dashed: worst case)")
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
    ap.add_argument("--resimulate", action="store_true",
                    help="recompute the hardware numbers of quant_results.json with the current engine and rewrite "
                         "results.md and the plot (no training)")
    ap.add_argument("--wall-s", type=float, default=None, help="with --resimulate: the training run's wall time")
    ap.add_argument("--cpu-s", type=float, default=None, help="with --resimulate: the training run's CPU time")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    acc = hwsim.resolve_accelerator(ACC)
    out = Path(args.out)  # relative to the working directory (run from the repository root)
    if args.resimulate:
        res0 = json.loads((out / "quant_results.json").read_text())
        meta = res0.pop("_meta", {})
        for k in ("wall_s", "cpu_s"):
            if getattr(args, k) is not None:
                meta[k] = getattr(args, k)
        resimulate(res0, acc)
        (out / "quant_results.json").write_text(json.dumps({"_meta": meta, **res0}, indent=1))
        if "mnist1d" in res0:
            plot(res0["mnist1d"], out / "cmn_mnist1d.png")
        seeds0 = [r["seed"] for r in next(iter(res0.values()))]
        (out / "results.md").write_text(report(res0, seeds0, meta.get("epochs", args.epochs), meta.get("wall_s", 0.0),
                                               meta.get("cpu_s")))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res: dict[str, list[dict[str, Any]]] = {}
    meta = {"epochs": args.epochs, "seeds": args.seeds, "accelerator": ACC}
    for ds in args.datasets:
        data = load_dataset(ds)
        res[ds] = [run_seed(data, s, args.epochs, acc, sys.stdout) for s in args.seeds]
        (out / "quant_results.json").write_text(json.dumps({"_meta": meta, **res}, indent=1))
    wall = time.time() - t0
    meta["wall_s"] = wall
    meta["cpu_s"] = time.process_time()
    (out / "quant_results.json").write_text(json.dumps({"_meta": meta, **res}, indent=1))
    if "mnist1d" in res:
        plot(res["mnist1d"], out / "cmn_mnist1d.png")
    (out / "results.md").write_text(report(res, args.seeds, args.epochs, wall, meta["cpu_s"]))
    print(f"done in {wall:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
