"""Bitwidths given alongside a model: a per-layer table (a dict, or a YAML file) applied to a Network.

A table maps layer names to ``{weight_bits, act_bits, out_bits, channel_weight_bits, bit_scales}``
(any subset); a name may end in ``*`` to match every layer whose name starts with the rest::

    conv1: {weight_bits: 8, act_bits: 8}
    layer1*: {weight_bits: 4, act_bits: 4}

Unknown keys and names that match no layer are errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.io import read_yaml
from hwsim.network import Layer, Network, Stage

__all__ = ["BIT_KEYS", "apply_bits", "load_bits", "layer_bits_from"]

BIT_KEYS = ("weight_bits", "act_bits", "out_bits", "channel_weight_bits", "bit_scales")


def _entry(name: str, spec: Any, source: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{source}: bits[{name!r}] must be a mapping of {list(BIT_KEYS)}, not {spec!r}")
    unknown = sorted(set(spec) - set(BIT_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown key bits[{name!r}].{unknown[0]}; allowed keys: {', '.join(BIT_KEYS)}")
    d = dict(spec)
    if d.get("channel_weight_bits") is not None:
        d["channel_weight_bits"] = tuple(d["channel_weight_bits"])
        d.setdefault("weight_bits", max(d["channel_weight_bits"]))
    return d


def layer_bits_from(table: Mapping[str, Any], name: str, source: str = "<bits>") -> dict[str, Any] | None:
    """The entry of ``table`` for layer ``name`` (exact names win over ``prefix*`` patterns)."""
    if name in table:
        return _entry(name, table[name], source)
    best = None
    for key in table:
        if key.endswith("*") and name.startswith(key[:-1]) and (best is None or len(key) > len(best)):
            best = key
    return None if best is None else _entry(best, table[best], source)


def apply_bits(network: Network, table: Mapping[str, Any], source: str = "<bits>") -> Network:
    """``network`` with the widths of ``table`` applied layer by layer (see the module docstring)."""
    if not isinstance(table, Mapping):
        raise TypeError(f"{source}: bits must be a mapping of layer names, not {table!r}")
    used: set[str] = set()

    def one(la: Layer) -> Layer:
        e = layer_bits_from(table, la.name, source)
        if e is None:
            return la
        used.update(k for k in table if k == la.name or (k.endswith("*") and la.name.startswith(k[:-1])))
        if "weight_bits" in e and "channel_weight_bits" not in e:
            e["channel_weight_bits"] = None
        try:
            return dataclasses.replace(la, **e)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: bits[{la.name!r}]: {exc}") from None

    stages = tuple(dataclasses.replace(s, layers=tuple(one(la) for la in s.layers)) for s in network.stages)
    unused = sorted(set(table) - used)
    if unused:
        raise ValueError(f"{source}: bits name {unused[0]!r} matches no layer of {network.name!r}")
    return Network(network.name, tuple(Stage(s.name, s.layers, s.exit_rate, s.exit_rule, s.threshold)
                                       for s in stages))


def load_bits(path: str | Path) -> dict[str, Any]:
    """A bits table from a YAML file (checked when applied)."""
    d = read_yaml(path)
    if not isinstance(d, dict):
        raise ValueError(f"{path}: a bits file must be a mapping of layer names, not {d!r}")
    for k, v in d.items():
        _entry(str(k), v, str(path))
    return d
