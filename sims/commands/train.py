"""``hwsim train METHOD --dataset D --bits B -o MODEL.pt``: pretrain FP, quantize with one method, save.

METHOD is uniform | pdb | bwa | cq | cmn. ``--bits``: uniform/bwa: one width (``4``); pdb: the group
schedule (``4,3,2``) or ``auto`` (separability heuristic on ``--bit-range``); cq: the mean width budget
(``2`` or ``2.5``) with per-filter widths in ``--bit-range``; cmn: the stage-2 width (default 8).
All arguments are checked before any data is loaded or any training starts. The saved file loads back
with ``quant.load_network(path)`` (a ``hwsim.Network``) or ``quant.load_model(path)``.
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--rule", choices=("confidence", "margin", "entropy"), default="confidence", help="cmn exit rule")
    p.add_argument("--max-drop", type=float, default=0.005, help="cmn accuracy drop allowed on val (fraction)")
    p.add_argument("--density", type=float, default=1.0, help="cmn stage-2 weight density after pruning")
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


def run(args: argparse.Namespace) -> int:
    from quant.data import load_dataset
    from quant.export import save_model
    from quant.recipes import MethodConfig, pretrain, run_method
    from quant.train import TrainConfig, evaluate

    try:
        lo, hi = (int(v) for v in args.bit_range.split(","))
    except ValueError:
        raise ValueError(f"train.bit_range must be MIN,MAX integers, not {args.bit_range!r}") from None
    mc = MethodConfig(args.method, b_min=lo, b_max=hi, scheme=args.scheme, first_last=args.first_last,
                      act_bits=args.act_bits, rule=args.rule, max_drop=args.max_drop, density=args.density,
                      seed=args.seed, **parse_bits(args.method, args.bits))
    ft = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, progress=not args.no_progress)
    pre = TrainConfig(epochs=args.pretrain_epochs, lr=args.lr, seed=args.seed, progress=not args.no_progress)
    out = Path(args.output)
    if out.suffix != ".pt":
        raise ValueError(f"train.output must end in .pt, not {str(out)!r}")
    data = load_dataset(args.dataset)
    ck = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    fp = pretrain(data, pre, ck / "fp.ckpt" if ck else None)
    model, info = run_method(mc, data, fp, ft, ck)
    acc = evaluate(model, data.test)
    meta = {"dataset": data.name, "test_accuracy": acc, "fp_test_accuracy": evaluate(fp, data.test),
            **{k: v for k, v in info.items() if k in ("schedule", "threshold", "val_exit_rate", "mean_bits")}}
    net = save_model(out, model, data.test.x[:1], name=f"{args.method}_{data.name}", meta=meta)
    print(json.dumps({"output": str(out), "layers": len(net.layers), "weight_bits_total": net.weight_bits_total,
                      **meta}))
    return 0
