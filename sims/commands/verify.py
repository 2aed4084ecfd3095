"""``hwsim verify MODEL.pt --dataset D``: the trained model's exported integers, run through hwsim.golden.

Every quantized conv / linear layer is recomputed from the integer weights, activation codes and
scales stored in MODEL.pt (``quant.intnet``) with ``hwsim.golden``; batch norm, clips, pooling and
residual adds run as in the model; a cascade exits by its stored rule and threshold. The predictions
are compared with the PyTorch model's on every test sample (its quantized layers accumulated in float64;
the agreement with the float32 forward is printed beside it). Prints the agreement and, per layer,
whether every accumulator was exact (integers within their exported widths, no overflow of the
accelerator's accumulator, bit-serial spot checks equal, dequantized result equal to the float
layer). Exit 0 only at 100 % agreement with every accumulator exact, else 1; a file that is not a
``hwsim train`` checkpoint: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a trained MODEL.pt's exported integers against the model (golden)")
    p.add_argument("model", metavar="MODEL.pt", help="a file written by `hwsim train`")
    p.add_argument("--dataset", required=True, help="digits | mnist1d | a CIFAR-10 directory | an image folder")
    p.add_argument("--arch", default="edge16_serial", help="accelerator whose accumulator width is checked")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    import hwsim
    from quant.data import load_dataset
    from quant.export import load_trained
    from quant.intnet import verify

    acc = hwsim.resolve_accelerator(args.arch)
    trained = load_trained(args.model)
    model, ints = trained.model, trained.stages
    data = load_dataset(args.dataset)
    shape = tuple(int(v) for v in data.test.x.shape[1:])
    want = tuple(model.stages[0].config()["kwargs"]["in_shape"] if hasattr(model, "stages")
                 else model.config()["kwargs"]["in_shape"])
    if shape != want:
        raise ValueError(f"verify.dataset must have inputs of shape {list(want)} (the model's), not "
                         f"{list(shape)} ({args.dataset!r})")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    res = verify(model, ints, data.test.x, acc_bits=acc.pe.acc_bits)
    out = {"model": args.model, "dataset": data.name, "samples": res.samples, "agree": res.agree,
           "agreement": res.agreement, "agree_float32": res.agree_float32, "accumulators_exact": res.exact,
           "acc_bits": acc.pe.acc_bits,
           "layers": [{"name": c.name, "integer": c.integer, "widths_ok": c.widths_ok, "no_overflow": c.no_overflow,
                       "bit_serial_ok": c.bit_serial_ok, "max_rel_error": c.max_rel_error, "exact": c.exact}
                      for c in res.layers]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.model}: {res.agree}/{res.samples} test predictions agree ({100 * res.agreement:.2f} %); "
              f"every accumulator exact ({acc.pe.acc_bits}-bit): {'yes' if res.exact else 'no'}")
        print(f"  (with the plain float32 forward as reference: {res.agree_float32}/{res.samples})")
        for c in res.layers:
            flags = "exact" if c.exact else ", ".join(
                w for w, ok in (("full precision (no integers)", c.integer), ("integer out of its width", c.widths_ok),
                                ("accumulator overflow", c.no_overflow), ("bit-serial mismatch", c.bit_serial_ok),
                                (f"float mismatch {c.max_rel_error:.2e}", c.max_rel_error <= 1e-4)) if not ok)
            print(f"  {c.name}: {flags}")
    return 0 if res.ok else 1
