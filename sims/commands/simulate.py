"""``hwsim simulate --arch ARCH --network NET``: per-layer cycles, utilisation and energy.

``NET`` is a bundled preset, a network YAML, or a model file the mapping front ends read (``.onnx``,
``.csv`` SCALE-Sim topology, ``.pt``: a quant checkpoint or a pickled ``nn.Module`` with
``--input-shape``). ``--schedule SCHEDULE.json`` (written by ``hwsim map``) simulates that schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hwsim
from hwsim.network import Network
from hwsim.schedule import Schedule

from ..layer_report import format_table, plot_layers, write_csv
from ..output import atomic_write_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate a network on an accelerator, layer by layer")
    p.add_argument("--arch", required=True, help="accelerator YAML file or bundled preset name")
    p.add_argument("--network", help="network preset, YAML, or model file (.onnx, .csv, .pt); "
                   "optional with --schedule")
    p.add_argument("--schedule", metavar="SCHEDULE.json", help="simulate this schedule (from `hwsim map`)")
    add_model_options(p)
    p.add_argument("--json", metavar="OUT", help="write the full result as JSON")
    p.add_argument("--csv", metavar="OUT", help="write one CSV row per layer")
    p.add_argument("--plot", metavar="OUT.png", help="write a per-layer stacked-bar plot")
    p.add_argument("--format", choices=("table", "json"), default="table", help="what to print on stdout")
    p.set_defaults(func=run)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options for reading a model file (shared with ``hwsim map``)."""
    p.add_argument("--input-shape", metavar="N,C,H,W", help="example input shape for a PyTorch model (.pt)")
    p.add_argument("--bits", metavar="BITS.yaml", help="per-layer bitwidths to apply (see docs/mapping.md)")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="skip operators the front end does not support (with a warning listing them)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="WARNING: runs code from the file. Let a .pt/.pth file unpickle a full nn.Module "
                        "(without it only plain tensors and containers are read); only for files you trust. "
                        "ONNX files need no trust (docs/limits.md)")


def _is_quant_checkpoint(path: Path) -> bool:
    import torch
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a plain-data file (a pickled module, TorchScript): not ours
        return False
    from quant.export import FORMAT
    return isinstance(d, dict) and d.get("format") == FORMAT


def load_network_arg(spec: str, input_shape: str | None = None, bits: str | None = None,
                     skip_unsupported: bool = False, trust_pickle: bool = False) -> Network:
    """A network from a bundled preset name, a YAML file, or a model file (.onnx, .csv, .pt, .pth)."""
    import warnings

    from mapping.bits import apply_bits, load_bits
    from mapping.frontends import MODEL_SUFFIXES, load_model, parse_input_shape

    table = load_bits(bits) if bits else None
    p = Path(spec)
    suffix = p.suffix.lower()
    if suffix in MODEL_SUFFIXES and suffix not in (".yaml", ".yml"):
        if not p.is_file():
            raise FileNotFoundError(f"model file {spec!r} not found")
        if suffix in (".pt", ".pth") and _is_quant_checkpoint(p):
            import quant
            net = quant.load_network(p)
            return apply_bits(net, table, str(bits)) if table else net
        shape = parse_input_shape(input_shape) if input_shape else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net = load_model(p, input_shape=shape, bits=table, skip_unsupported=skip_unsupported,
                             trust_pickle=trust_pickle)
        for w in caught:
            print(f"hwsim: warning: {w.message}", file=sys.stderr)
        return net
    net = hwsim.resolve_network(spec)
    return apply_bits(net, table, str(bits)) if table else net


def load_schedule_arg(path: str) -> Schedule:
    """A schedule JSON written by ``hwsim map --json``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"schedule file {path!r} not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"network", "mappings"}:
        raise ValueError(f"{path}: a schedule must be a mapping with keys 'network' and 'mappings'")
    try:
        return Schedule.from_dict(data, str(path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed schedule: {exc!r}") from None


def run(args: argparse.Namespace) -> int:
    acc = hwsim.resolve_accelerator(args.arch)
    if args.schedule:
        sched = load_schedule_arg(args.schedule)
        if args.network:
            net = load_network_arg(args.network, args.input_shape, args.bits, args.skip_unsupported,
                                   args.trust_pickle)
            if net != sched.network:
                raise ValueError(f"--schedule {args.schedule} was made for network {sched.network.name!r}, "
                                 f"which differs from --network {args.network}")
        res = hwsim.simulate(sched, acc)
    else:
        if not args.network:
            raise ValueError("simulate needs --network (or --schedule)")
        net = load_network_arg(args.network, args.input_shape, args.bits, args.skip_unsupported,
                                   args.trust_pickle)
        res = hwsim.simulate(net, acc)
    if args.json:
        atomic_write_text(Path(args.json), res.to_json())
    if args.csv:
        write_csv(res, args.csv)
    if args.plot:
        plot_layers(res, args.plot)
    print(res.to_json() if args.format == "json" else format_table(res))
    return 0
