"""Bit schedules: how a sweep assigns weight/activation widths to a network's layers.

A schedule is a frozen value with a ``label`` (what reports colour by and accuracy tables are keyed
on) and :meth:`apply`, which returns a new :class:`hwsim.Network`. Kinds:

* ``network`` -- keep the widths the network file carries (e.g. a model exported by ``quant``);
* ``uniform`` -- every layer at ``weight_bits``/``act_bits`` (``bits`` sets both);
* ``pdb`` -- a per-stage decreasing schedule: the MAC layers are cut into ``len(bits)`` contiguous
  groups of near-equal size, group ``g`` runs at ``bits[g]`` (non-increasing);
* ``class_based`` -- per-output-channel weight widths: a fraction ``fractions[i]`` of every layer's
  filters at ``bits[i]``, activations at ``act_bits``;
* ``cascade`` -- a cascaded network whose stage ``k`` runs at ``bits[k]``; ``exit_rates`` optionally
  overrides the stages' exit rates.

``first_last_bits`` (uniform, pdb, class_based) keeps the first and last MAC layers at that width, as
most low-bit training recipes do.

Pooling and element-wise layers carry the activation width of the MAC layer before them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hwsim.errors import check_float, check_int
from hwsim.network import Layer, Network, Stage

__all__ = ["BitSchedule", "SCHEDULE_KINDS", "schedule_from_dict", "layer_bits"]

SCHEDULE_KINDS = ("network", "uniform", "pdb", "class_based", "cascade")
_MAX_BITS = 32


def _bits_tuple(owner: str, field: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{owner}.{field} must be a non-empty list of bit widths, not {value!r}")
    return tuple(check_int(owner, f"{field}[{i}]", v, 1, _MAX_BITS) for i, v in enumerate(value))


@dataclass(frozen=True, slots=True)
class BitSchedule:
    """One bit schedule (see the module docstring for the kinds and their fields)."""

    kind: str
    bits: tuple[int, ...] = ()
    act_bits: tuple[int, ...] = ()
    fractions: tuple[float, ...] = ()
    exit_rates: tuple[float, ...] = ()
    first_last_bits: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        owner = "BitSchedule"
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"{owner}.kind must be one of {list(SCHEDULE_KINDS)}, not {self.kind!r}")
        if self.first_last_bits is not None:
            check_int(owner, "first_last_bits", self.first_last_bits, 1, _MAX_BITS)
        k = self.kind
        if k == "network":
            if self.bits or self.act_bits or self.fractions or self.exit_rates or self.first_last_bits:
                raise ValueError(f"{owner}[network] takes no bit fields, only a label")
        elif k == "uniform":
            if len(self.bits) != 1 or len(self.act_bits) != 1:
                raise ValueError(f"{owner}[uniform].bits must be one width, not {list(self.bits)!r}")
        elif k == "pdb":
            if len(self.act_bits) != len(self.bits):
                raise ValueError(f"{owner}[pdb].act_bits must have len(bits)={len(self.bits)} entries, "
                                 f"not {len(self.act_bits)}")
            for name in ("bits", "act_bits"):
                seq = getattr(self, name)
                if any(b > a for a, b in zip(seq, seq[1:], strict=False)):
                    raise ValueError(f"{owner}[pdb].{name} must be non-increasing, not {list(seq)!r}")
        elif k == "class_based":
            if len(self.fractions) != len(self.bits):
                raise ValueError(f"{owner}[class_based].fractions must have len(bits)={len(self.bits)} entries, "
                                 f"not {len(self.fractions)}")
            if len(set(self.bits)) != len(self.bits):
                raise ValueError(f"{owner}[class_based].bits must not repeat a width, not {list(self.bits)!r}")
            for i, f in enumerate(self.fractions):
                check_float(owner, f"fractions[{i}]", f, 0.0, 1.0, lo_open=True)
            if abs(sum(self.fractions) - 1.0) > 1e-9:
                raise ValueError(f"{owner}[class_based].fractions must sum to 1, not {sum(self.fractions)!r}")
            if len(self.act_bits) != 1:
                raise ValueError(f"{owner}[class_based].act_bits must be one width, not {list(self.act_bits)!r}")
        elif k == "cascade":
            if self.exit_rates and len(self.exit_rates) != len(self.bits):
                raise ValueError(f"{owner}[cascade].exit_rates must have len(bits)={len(self.bits)} entries, "
                                 f"not {len(self.exit_rates)}")
            for i, r in enumerate(self.exit_rates):
                check_float(owner, f"exit_rates[{i}]", r, 0.0, 1.0)
            if self.first_last_bits is not None:
                raise ValueError(f"{owner}[cascade].first_last_bits is not supported, not {self.first_last_bits!r}")
        if not self.label:
            object.__setattr__(self, "label", self._default_label())

    def _default_label(self) -> str:
        b = "-".join(str(x) for x in self.bits)
        if self.kind == "network":
            return "network"
        if self.kind == "uniform":
            w, a = self.bits[0], self.act_bits[0]
            s = f"uniform-w{w}a{a}" if w != a else f"uniform-{w}"
        elif self.kind == "pdb":
            s = f"pdb-{b}" if self.bits == self.act_bits else f"pdb-w{b}-a{'-'.join(map(str, self.act_bits))}"
        elif self.kind == "class_based":
            s = f"class-{b}-a{self.act_bits[0]}"
        else:
            s = f"cascade-{b}"
        return s + (f"-fl{self.first_last_bits}" if self.first_last_bits is not None else "")

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (what point keys hash and the store records)."""
        d: dict[str, Any] = {"kind": self.kind, "label": self.label}
        for f in ("bits", "act_bits", "fractions", "exit_rates"):
            if getattr(self, f):
                d[f] = list(getattr(self, f))
        if self.first_last_bits is not None:
            d["first_last_bits"] = self.first_last_bits
        return d

    # ---- application ------------------------------------------------------------------------------
    def apply(self, net: Network) -> Network:
        """``net`` with this schedule's widths; ``ValueError`` if the network cannot take it."""
        if self.kind == "network":
            return net
        if self.kind == "cascade":
            return self._apply_cascade(net)
        mac_idx = [i for i, la in enumerate(net.layers) if la.has_macs]
        if not mac_idx:
            raise ValueError(f"BitSchedule[{self.label}] needs a network with MAC layers, not {net.name!r}")
        per_mac: dict[int, tuple[int, int, tuple[int, ...] | None]] = {}
        n = len(mac_idx)
        for j, i in enumerate(mac_idx):
            la = net.layers[i]
            if self.kind == "uniform":
                per_mac[i] = (self.bits[0], self.act_bits[0], None)
            elif self.kind == "pdb":
                g = min(j * len(self.bits) // n, len(self.bits) - 1)
                per_mac[i] = (self.bits[g], self.act_bits[g], None)
            else:
                cwb = _class_bits(la.out_channels, self.bits, self.fractions)
                per_mac[i] = (max(cwb), self.act_bits[0], cwb if len(set(cwb)) > 1 else None)
            if self.first_last_bits is not None and j in (0, n - 1):
                fl = self.first_last_bits
                per_mac[i] = (fl, fl, None)
        layers: list[Layer] = []
        w, act, _ = per_mac[mac_idx[0]]
        for i, la in enumerate(net.layers):
            if i in per_mac:
                w, act, channel_bits = per_mac[i]
                layers.append(dataclasses.replace(la, weight_bits=w, act_bits=act, out_bits=act,
                                                  channel_weight_bits=channel_bits))
            else:
                layers.append(dataclasses.replace(la, weight_bits=w, act_bits=act, out_bits=act,
                                                  channel_weight_bits=None))
        it = iter(layers)
        stages = tuple(dataclasses.replace(s, layers=tuple(next(it) for _ in s.layers)) for s in net.stages)
        return Network(net.name, stages)

    def _apply_cascade(self, net: Network) -> Network:
        if len(net.stages) != len(self.bits):
            raise ValueError(f"BitSchedule[{self.label}].network must be a cascade of {len(self.bits)} stages, "
                             f"not {net.name!r} with {len(net.stages)}")
        stages: list[Stage] = []
        for k, s in enumerate(net.stages):
            b = self.bits[k]
            lays = tuple(dataclasses.replace(la, weight_bits=b, act_bits=b, out_bits=b, channel_weight_bits=None)
                         for la in s.layers)
            rate = self.exit_rates[k] if self.exit_rates else s.exit_rate
            stages.append(dataclasses.replace(s, layers=lays, exit_rate=rate))
        return Network(net.name, tuple(stages))


def _class_bits(out_channels: int, bits: tuple[int, ...], fractions: tuple[float, ...]) -> tuple[int, ...]:
    """Per-channel widths: ``round(f * out_channels)`` channels per class, remainder to the last class."""
    out: list[int] = []
    for b, f in zip(bits[:-1], fractions[:-1], strict=True):
        out += [b] * min(round(f * out_channels), out_channels - len(out))
    out += [bits[-1]] * (out_channels - len(out))
    return tuple(out)


_SCHEDULE_KEYS = ("kind", "bits", "weight_bits", "act_bits", "fractions", "exit_rates", "first_last_bits", "label")


def schedule_from_dict(d: Any, where: str) -> BitSchedule:
    """Parse one schedule mapping; ``where`` (``file: path``) prefixes the error messages."""
    from hwsim.errors import ConfigError

    if isinstance(d, str) and d == "network":
        d = {"kind": "network"}
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping with a 'kind', not {d!r}")
    unknown = sorted(set(d) - set(_SCHEDULE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_SCHEDULE_KEYS)}")
    if "kind" not in d:
        raise ConfigError(f"{where}: missing key 'kind' (one of {', '.join(SCHEDULE_KINDS)})")
    try:
        kind = d["kind"]
        bits = d.get("bits", d.get("weight_bits"))
        if "bits" in d and "weight_bits" in d:
            raise ValueError("BitSchedule.bits and weight_bits must not both be given")
        if kind in ("uniform", "class_based") and isinstance(d.get("act_bits", bits), int):
            act: Any = [d.get("act_bits", bits)]
        else:
            act = d.get("act_bits", bits)
        if kind == "uniform":
            bits = [bits] if isinstance(bits, int) else bits
            act = [act] if isinstance(act, int) else act
        if kind == "class_based" and "act_bits" not in d:
            raise ValueError("BitSchedule[class_based].act_bits must be given")
        fr = d.get("fractions", [])
        er = d.get("exit_rates", [])
        if kind == "network":
            return BitSchedule("network", label=d.get("label", ""))
        return BitSchedule(
            kind=kind,
            bits=_bits_tuple("BitSchedule", "bits", bits),
            act_bits=_bits_tuple("BitSchedule", "act_bits", act) if kind != "cascade" else (),
            fractions=tuple(fr) if isinstance(fr, list) else fr,
            exit_rates=tuple(er) if isinstance(er, list) else er,
            first_last_bits=d.get("first_last_bits"),
            label=d.get("label", "") or "",
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def layer_bits(net: Network) -> list[tuple[str, int, int]]:
    """``[(layer, weight_bits, act_bits), ...]`` of the MAC layers (for bitwidth-per-layer charts)."""
    return [(la.name, la.weight_bits, la.act_bits) for la in net.layers if la.has_macs]
