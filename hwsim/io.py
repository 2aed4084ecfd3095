"""Strict loaders: YAML/dicts -> spec dataclasses, and back.

Unknown keys are errors that name the file, the key path and the keys allowed; only dataclasses
travel past this module. Bundled presets live in ``hwsim/presets/{accelerators,networks}/*.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .accelerator import Accelerator, BufferSpec, DRAMSpec, PESpec
from .energy import EnergyTable
from .errors import ConfigError, short_repr
from .network import Layer, Network, Stage

__all__ = [
    "load_accelerator", "load_network", "accelerator_from_dict", "network_from_dict", "accelerator_to_dict",
    "network_to_dict", "preset_names", "preset_yaml", "read_yaml", "resolve_accelerator", "resolve_network",
    "parse_yaml", "read_text", "StrictLoader", "MAX_YAML_BYTES", "MAX_YAML_NODES", "LAYER_LIMITS",
    "MAX_NETWORK_LAYERS", "check_network_limits",
]

T = TypeVar("T")


MAX_YAML_BYTES = 16 * 2**20
"""Largest YAML file read (bytes); docs/limits.md."""
MAX_YAML_NODES = 1_000_000
"""Most YAML nodes (scalars, lists, mappings) in one file; docs/limits.md."""


LAYER_LIMITS: dict[str, int] = {"in_channels": 65_536, "out_channels": 65_536, "in_h": 16_384, "in_w": 16_384,
                                "kernel_h": 1_024, "kernel_w": 1_024, "stride_h": 1_024, "stride_w": 1_024,
                                "pad_h": 1_024, "pad_w": 1_024, "batch": 16_384}
"""Largest layer dimensions a user file may give (docs/limits.md): beyond them the mapper's search grows
to minutes; no published CNN layer comes near (VGG's widest has 25,088 input channels)."""
MAX_NETWORK_LAYERS = 16_384
"""Most layers of one network read from a file, after SCALE-Sim's depthwise expansion (one layer per
channel: MobileNet expands to about 4,500); docs/limits.md."""


def check_network_limits(layers: Sequence[Layer], source: str) -> None:
    """Refuse a network over :data:`MAX_NETWORK_LAYERS` layers or with a dimension over
    :data:`LAYER_LIMITS`, naming the file, the layer and the allowed range."""
    if len(layers) > MAX_NETWORK_LAYERS:
        raise ConfigError(f"{source}: network must have at most {MAX_NETWORK_LAYERS} layers, not {len(layers)} "
                          "(docs/limits.md)")
    for la in layers:
        for f, hi in LAYER_LIMITS.items():
            v = getattr(la, f)
            if v > hi:
                raise ConfigError(f"{source}: Layer[{la.name!r}].{f} must be an integer in "
                                  f"[{0 if f.startswith('pad') else 1}, {hi}], not {v} (docs/limits.md)")


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys (the last would silently win), aliases (``*name``:
    a few hundred bytes of nested aliases expand to an exponential structure) and more than
    :data:`MAX_YAML_NODES` nodes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"aliases (*{ev.anchor}) are not allowed", ev.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(None, None, f"more than {MAX_YAML_NODES} nodes",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    dup = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if dup:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {short_repr(key)}",
                                                            key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`; errors name ``source`` and the line."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{source}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None


def read_text(path: str | Path, what: str = "file", limit: int | None = None) -> str:
    """A UTF-8 text file, or a :class:`ConfigError` naming it (missing, a directory, unreadable, not UTF-8,
    over ``limit`` bytes)."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ConfigError(f"{p}: {what} not found" if not p.exists() else f"{p}: {what} is not a regular file")
        if limit is not None and p.stat().st_size > limit:
            raise ConfigError(f"{p}: {what} is {p.stat().st_size} bytes, over the limit of {limit} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file through :class:`StrictLoader` (at most :data:`MAX_YAML_BYTES`)."""
    p = Path(path)
    return parse_yaml(read_text(p, "file", MAX_YAML_BYTES), str(p))


def _build(cls: type[T], data: Any, source: str, path: str, nested: dict[str, Callable[[Any, str], Any]]) -> T:
    """Construct ``cls`` from a mapping, rejecting unknown keys and wrapping validation errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {path} must be a mapping, not {short_repr(data)}")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown key {path}.{unknown[0]}; allowed keys: {', '.join(names)}")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = nested[k](v, f"{path}.{k}") if k in nested else v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: {path}: {exc}") from None


def accelerator_from_dict(d: Any, source: str = "<accelerator>") -> Accelerator:
    def sub(cls: type[Any]) -> Callable[[Any, str], Any]:
        return lambda v, p: _build(cls, v, source, p, {})
    nested = {"pe": sub(PESpec), "ifmap_sram": sub(BufferSpec), "filter_sram": sub(BufferSpec),
              "ofmap_sram": sub(BufferSpec), "dram": sub(DRAMSpec), "energy": sub(EnergyTable),
              "dataflows": lambda v, p: tuple(v) if isinstance(v, list) else v}
    return _build(Accelerator, d, source, "accelerator", nested)


_LAYER_SHORTHANDS = {"kernel": ("kernel_h", "kernel_w"), "stride": ("stride_h", "stride_w"),
                     "padding": ("pad_h", "pad_w"), "in_size": ("in_h", "in_w")}


def _layer(d: Any, source: str, path: str) -> Layer:
    if isinstance(d, dict):
        d = dict(d)
        for short, (h, w) in _LAYER_SHORTHANDS.items():
            if short in d:
                v = d.pop(short)
                if isinstance(v, list) and len(v) == 2:
                    d[h], d[w] = v
                else:
                    d[h] = d[w] = v
        for key in ("channel_weight_bits", "inputs"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
    return _build(Layer, d, source, path, {})


def network_from_dict(d: Any, source: str = "<network>") -> Network:
    """A network mapping: ``name`` and either ``layers`` (a plain network) or ``stages`` (a cascade)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: network must be a mapping, not {short_repr(d)}")
    allowed = {"name", "layers", "stages", "defaults"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key network.{unknown[0]}; allowed keys: {', '.join(sorted(allowed))}")
    if ("layers" in d) == ("stages" in d):
        raise ConfigError(f"{source}: network must have exactly one of 'layers' or 'stages'")
    defaults = d.get("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: network.defaults must be a mapping, not {short_repr(defaults)}")

    def layers(v: Any, path: str) -> tuple[Layer, ...]:
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{source}: {path} must be a non-empty list of layers, not {short_repr(v)}")
        if len(v) > MAX_NETWORK_LAYERS:
            raise ConfigError(f"{source}: {path} must have at most {MAX_NETWORK_LAYERS} layers, not {len(v)} "
                              "(docs/limits.md)")
        out = tuple(_layer({**defaults, **x} if isinstance(x, dict) else x, source, f"{path}[{i}]")
                    for i, x in enumerate(v))
        check_network_limits(out, source)
        return out

    try:
        if "layers" in d:
            return Network(d.get("name", "network"), (Stage("main", layers(d["layers"], "network.layers")),))
        stages_raw = d["stages"]
        if not isinstance(stages_raw, list) or not stages_raw:
            raise ConfigError(f"{source}: network.stages must be a non-empty list, not {short_repr(stages_raw)}")
        total = sum(len(s["layers"]) for s in stages_raw if isinstance(s, dict) and isinstance(s.get("layers"), list))
        if total > MAX_NETWORK_LAYERS:
            raise ConfigError(f"{source}: network must have at most {MAX_NETWORK_LAYERS} layers, not {total} "
                              "(docs/limits.md)")
        stages = tuple(_build(Stage, s, source, f"network.stages[{i}]", {"layers": layers})
                       for i, s in enumerate(stages_raw))
        return Network(d.get("name", "network"), stages)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: network: {exc}") from None


def _plain(obj: Any) -> Any:
    """Dataclass -> YAML-friendly dict (enums to values, tuples to lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_plain(x) for x in obj]
    if hasattr(obj, "value") and isinstance(obj.value, str):
        return obj.value
    return obj


def accelerator_to_dict(acc: Accelerator) -> dict[str, Any]:
    return _plain(acc)


def network_to_dict(net: Network) -> dict[str, Any]:
    def layer(la: Layer) -> dict[str, Any]:
        d = _plain(la)
        default = {f.name: f.default for f in dataclasses.fields(Layer) if f.default is not dataclasses.MISSING}
        return {k: v for k, v in d.items() if k in ("name", "kind", "in_channels", "out_channels")
                or default.get(k, object()) != v}
    if not net.is_cascade:
        return {"name": net.name, "layers": [layer(la) for la in net.layers]}
    return {"name": net.name, "stages": [{"name": s.name, "exit_rate": s.exit_rate, "exit_rule": s.exit_rule,
                                          "threshold": s.threshold, "layers": [layer(la) for la in s.layers]}
                                         for s in net.stages]}


def load_accelerator(path: str | Path) -> Accelerator:
    return accelerator_from_dict(read_yaml(path), str(path))


def load_network(path: str | Path) -> Network:
    return network_from_dict(read_yaml(path), str(path))


def _preset_dir(kind: str) -> Any:
    return resources.files("hwsim") / "presets" / kind


def preset_names(kind: str) -> list[str]:
    """Names of the bundled presets of ``kind`` ('accelerators' or 'networks')."""
    return sorted(p.name[:-5] for p in _preset_dir(kind).iterdir() if p.name.endswith(".yaml"))


def preset_yaml(kind: str, name: str) -> str:
    names = preset_names(kind)
    if name not in names:
        raise ConfigError(f"unknown {kind[:-1]} preset {name!r}; bundled: {', '.join(names)}")
    return (_preset_dir(kind) / f"{name}.yaml").read_text()


def resolve_accelerator(name_or_path: str | Path) -> Accelerator:
    """A path to a YAML file, or the name of a bundled accelerator preset."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_accelerator(p)
    return accelerator_from_dict(parse_yaml(preset_yaml("accelerators", str(name_or_path)), f"preset:{name_or_path}"),
                                 f"preset:{name_or_path}")


def resolve_network(name_or_path: str | Path) -> Network:
    """A path to a YAML network, or the name of a bundled network preset."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_network(p)
    return network_from_dict(parse_yaml(preset_yaml("networks", str(name_or_path)), f"preset:{name_or_path}"),
                             f"preset:{name_or_path}")
