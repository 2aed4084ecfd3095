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
from typing import Any

import hwsim
from hwsim.errors import ConfigError, short_repr
from hwsim.network import Network
from hwsim.schedule import LayerMapping, Schedule, Tile

from ..layer_report import format_table, plot_layers, write_csv
from ..output import Outputs, check_output_path, strict_json


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


_MAPPING_KEYS = ("layer", "dataflow", "tile", "loop_order", "grouping")
_TILE_KEYS = ("n", "m", "c", "p", "q")


def _no_duplicates(source: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ConfigError(f"{source}: duplicate key {k!r}")
            out[k] = v
        return out
    return hook


def read_json(path: str | Path, what: str) -> Any:
    """Strict JSON from a file: UTF-8, no duplicate keys, no NaN/Infinity; errors name the file."""
    from hwsim.io import MAX_YAML_BYTES, read_text

    text = read_text(path, what, MAX_YAML_BYTES)

    def constant(token: str) -> None:
        raise ConfigError(f"{path}: {token} is not a JSON number")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(str(path)), parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply") from None


def load_schedule_arg(path: str) -> Schedule:
    """A schedule JSON written by ``hwsim map --json``; unknown keys are refused with the key path."""
    data = read_json(path, "schedule file")
    if not isinstance(data, dict) or set(data) != {"network", "mappings"}:
        raise ConfigError(f"{path}: a schedule must be a mapping with keys 'network' and 'mappings'")
    maps = data["mappings"]
    if not isinstance(maps, list):
        raise ConfigError(f"{path}: mappings must be a list, not {short_repr(maps)}")
    for i, m in enumerate(maps):
        where = f"{path}: mappings[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{where} must be a mapping, not {short_repr(m)}")
        if isinstance(m.get("layer"), str):
            where += f" (layer {m['layer']!r})"
        unknown = sorted(set(m) - set(_MAPPING_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_MAPPING_KEYS)}")
        missing = [k for k in ("layer", "dataflow", "tile") if k not in m]
        if missing:
            raise ConfigError(f"{where}: missing key {missing[0]!r}")
        t = m["tile"]
        if not isinstance(t, dict) or set(t) != set(_TILE_KEYS):
            raise ConfigError(f"{where}.tile must be a mapping with keys {', '.join(_TILE_KEYS)}, not "
                              f"{short_repr(t)}")
        try:
            LayerMapping(m["layer"], m["dataflow"], Tile(**t), m.get("loop_order", "nmpqc"),
                         m.get("grouping", "grouped"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    try:
        return Schedule.from_dict(data, str(path))
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def run(args: argparse.Namespace) -> int:
    outs = []
    if args.json:
        outs.append(check_output_path(args.json, "--json"))
    if args.csv:
        outs.append(check_output_path(args.csv, "--csv"))
    if args.plot:
        outs.append(check_output_path(args.plot, "--plot", PLOT_SUFFIXES))
    if len({o.resolve() for o in outs}) != len(outs):
        raise ValueError("--json, --csv and --plot must name different files")
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
    text = strict_json(res.to_json(), "simulate")
    outputs = Outputs()
    if args.json:
        outputs.text(args.json, text)
    if args.csv:
        outputs.produced_by(args.csv, lambda tmp: write_csv(res, tmp))
    if args.plot:
        outputs.produced_by(args.plot, lambda tmp: plot_layers(res, tmp))
    outputs.commit()
    print(text if args.format == "json" else format_table(res, sched.network if args.schedule else net))
    return 0
