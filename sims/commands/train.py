"""``hwsim train METHOD --dataset D --bits B -o MODEL.pt``: pretrain FP, quantize with one method, save.

METHOD is uniform | pdb | bwa | cq | cmn. ``--bits``: uniform/bwa: one width (``4``); pdb: the group
schedule (``4,3,2``) or ``auto`` (separability heuristic on ``--bit-range``); cq: the mean width budget
(``2`` or ``2.5``) with per-filter widths in ``--bit-range``; cmn: the stage-2 width (default 8).
All arguments are checked before any data is loaded or any training starts. The saved file loads back
with ``quant.load_network(path)`` (a ``hwsim.Network``) or ``quant.load_model(path)``, and ``hwsim verify``
checks its exported integers.

``--report R.json`` writes ``method``, ``dataset``, ``seed``, ``accuracy`` (test split, the final model;
for CMN the cascade's) and, for CMN, ``reference_accuracy`` (the last stage alone, test),
``expected_cycles_fraction`` / ``worst_cycles_fraction`` (the cascade's cycles over the last stage's
on ``--arch``, simulated with ``hwsim.simulate`` at the test exit rate), ``exit_rates`` (fraction of
the test inputs leaving at each stage), ``threshold`` (chosen on the validation split) and ``rule``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run", "parse_bits"]

METHOD_CHOICES = ("uniform", "pdb", "bwa", "cq", "cmn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a quantized network (uniform, pdb, bwa, cq, cmn) and save MODEL.pt")
    p.add_argument("method", choices=METHOD_CHOICES)
    p.add_argument("--dataset", required=True, help="digits | mnist1d | a CIFAR-10 directory | an image folder")
    p.add_argument("--bits", default=None, help="see the command's description (default per method)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt")
    p.add_argument("--scheme", choices=("dorefa", "lsq"), default="dorefa", help="uniform quantizer (uniform, pdb)")
    p.add_argument("--first-last", choices=("fp", "8bit", "same"), default="8bit")
    p.add_argument("--bit-range", default="1,4", metavar="MIN,MAX", help="pdb auto / cq widths (default 1,4)")
    p.add_argument("--act-bits", type=int, default=8, help="cq activation width (default 8)")
    p.add_argument("--rule", choices=("budget", "confidence", "margin", "entropy"), default="budget",
                   help="cmn threshold rule: budget (default; confidence quantile under --budget) or an "
                        "accuracy target (--max-drop) on that exit score")
    p.add_argument("--budget", type=float, default=0.35,
                   help="cmn expected cycles allowed, as a fraction of stage 2's, in (0, 1] (default 0.35)")
    p.add_argument("--max-drop", type=float, default=0.005, help="cmn accuracy drop allowed on val (fraction)")
    p.add_argument("--density", type=float, default=1.0,
                   help="cmn stage-2 weight density reached by gradual pruning during QAT, in (0, 1]")
    p.add_argument("--no-distill", action="store_true", help="cmn: train stage 1 without stage 2 as teacher")
    p.add_argument("--stage1-epochs", type=int, default=None, help="cmn stage-1 epochs (default: twice --epochs)")
    p.add_argument("--alpha-frac-bits", type=int, default=None,
                   help="bwa: fixed-point bit weights with this many fraction bits (default: float)")
    p.add_argument("--arch", default="edge16_serial", help="accelerator for cmn's budget and the report")
    p.add_argument("--report", default=None, metavar="R.json", help="write the result summary as JSON")
    p.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="resume an interrupted run from the checkpoints here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def parse_bits(method: str, text: str | None) -> dict[str, Any]:
    """``--bits`` as MethodConfig fields; raises ValueError in the project's grammar."""
    if text is None:
        return {"bits": {"uniform": (4,), "bwa": (2,)}.get(method)} if method != "cmn" else {}
    try:
        if method == "cq":
            return {"budget_bits": float(text)}
        if method == "pdb" and text == "auto":
            return {"bits": None}
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"train.bits must be {'a number' if method == 'cq' else 'comma-separated integers'}, "
                         f"not {text!r}") from None
    if method == "cmn":
        if len(vals) != 1:
            raise ValueError(f"train.bits must be one stage-2 width for cmn, not {text!r}")
        return {"stage2_bits": vals[0]}
    return {"bits": vals}


def _cmn_report(model: Any, data: Any, arch: str) -> dict[str, Any]:
    """The CMN fields of the report: test accuracy of the last stage, cycle fractions on ``arch``."""
    import math

    import hwsim
    from quant.cmn import cascade_outcome
    from quant.export import export
    from quant.train import predict_logits

    s1, s2 = model.stages
    z1, z2 = predict_logits(s1, data.test), predict_logits(s2, data.test)
    acc, rate = cascade_outcome(z1, z2, data.test.y, model.rule, model.threshold)
    model.exit_rate = rate  # the simulated cascade runs at the measured test exit rate
    accel = hwsim.resolve_accelerator(arch)
    x = data.test.x[:1]
    rc, r2 = hwsim.simulate(export(model, x), accel), hwsim.simulate(export(s2, x), accel)
    return {"accuracy": acc, "reference_accuracy": float((z2.argmax(1) == data.test.y).double().mean()),
            "stage1_accuracy": float((z1.argmax(1) == data.test.y).double().mean()),
            "expected_cycles_fraction": rc.expected_cycles / r2.cycles, "worst_cycles_fraction": rc.cycles / r2.cycles,
            "expected_energy_fraction": rc.expected_energy.total_pj / r2.energy.total_pj,
            "exit_rates": [rate, 1.0 - rate], "threshold": model.threshold if math.isfinite(model.threshold) else None,
            "arch": arch}


def run(args: argparse.Namespace) -> int:
    import hwsim
    from quant.data import load_dataset
    from quant.export import save_model
    from quant.recipes import MethodConfig, pretrain, run_method
    from quant.train import TrainConfig, evaluate

    try:
        lo, hi = (int(v) for v in args.bit_range.split(","))
    except ValueError:
        raise ValueError(f"train.bit_range must be MIN,MAX integers, not {args.bit_range!r}") from None
    if not 0.0 < args.budget <= 1.0:
        raise ValueError(f"train.budget must be a number in (0, 1], not {args.budget!r}")
    if not 0.0 < args.density <= 1.0:
        raise ValueError(f"train.density must be a number in (0, 1], not {args.density!r}")
    hwsim.resolve_accelerator(args.arch)  # a bad name fails before training
    report = Path(args.report) if args.report else None
    if report is not None and report.suffix != ".json":
        raise ValueError(f"train.report must end in .json, not {str(report)!r}")
    mc = MethodConfig(args.method, b_min=lo, b_max=hi, scheme=args.scheme, first_last=args.first_last,
                      act_bits=args.act_bits, rule=args.rule, max_drop=args.max_drop, density=args.density,
                      budget=args.budget, distill=not args.no_distill, stage1_epochs=args.stage1_epochs,
                      alpha_frac_bits=args.alpha_frac_bits, arch=args.arch,
                      seed=args.seed, **parse_bits(args.method, args.bits))
    progress = not args.no_progress and sys.stderr.isatty()
    ft = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, progress=progress)
    pre = TrainConfig(epochs=args.pretrain_epochs, lr=args.lr, seed=args.seed, progress=progress)
    out = Path(args.output)
    if out.suffix != ".pt":
        raise ValueError(f"train.output must end in .pt, not {str(out)!r}")
    data = load_dataset(args.dataset)
    ck = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    fp = pretrain(data, pre, ck / "fp.ckpt" if ck else None)
    model, info = run_method(mc, data, fp, ft, ck)
    rep: dict[str, Any] = {"method": args.method, "dataset": data.name, "seed": args.seed}
    if args.method == "cmn":
        rep.update(_cmn_report(model, data, args.arch), rule=args.rule, val_exit_rate=info["val_exit_rate"])
        if args.rule == "budget":
            rep["budget"] = args.budget
    else:
        rep["accuracy"] = evaluate(model, data.test)
    rep["fp_accuracy"] = evaluate(fp, data.test)
    meta = {"dataset": data.name, "test_accuracy": rep["accuracy"], "fp_test_accuracy": rep["fp_accuracy"],
            **{k: v for k, v in info.items() if k in ("schedule", "threshold", "val_exit_rate", "mean_bits")}}
    net = save_model(out, model, data.test.x[:1], name=f"{args.method}_{data.name}", meta=meta)
    rep.update({k: info[k] for k in ("schedule", "mean_bits") if k in info})
    rep.update(output=str(out), weight_bits_total=net.weight_bits_total)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        tmp = report.with_name(f".{report.name}.tmp")
        tmp.write_text(json.dumps(rep, indent=1) + "\n")
        tmp.replace(report)
    print(json.dumps({"output": str(out), "layers": len(net.layers), "weight_bits_total": net.weight_bits_total,
                      **meta}))
    return 0
