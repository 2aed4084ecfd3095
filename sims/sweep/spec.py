"""The sweep specification: a YAML file of axes, metrics, constraints and a search mode.

Parsed strictly: an unknown key, an unknown axis, an empty range, a repeated value, a metric the
installation cannot compute or contradictory constraints is a :class:`hwsim.ConfigError` whose one line
names the file and the key. Only the frozen :class:`SweepSpec` travels past :func:`load_sweep_spec`.
See docs/sweeps.md for the grammar.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hwsim
from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError, short_repr
from hwsim.io import accelerator_from_dict, accelerator_to_dict, network_to_dict, read_yaml
from hwsim.network import Network

from .metrics import METRICS, area_model, load_accuracy_table
from .schedules import BitSchedule, schedule_from_dict

__all__ = ["Axis", "Constraint", "Search", "NetworkChoice", "SweepSpec", "load_sweep_spec", "spec_from_dict",
           "accelerator_axis_paths", "mapper", "SEARCH_MODES", "DEFAULT_OBJECTIVE", "MAX_AXIS_VALUES",
           "MAX_SWEEP_POINTS"]

SEARCH_MODES = ("grid", "random", "lhs", "nsga2")
MAX_AXIS_VALUES = 10_000
"""Most values one axis may list or expand to (docs/limits.md)."""
MAX_SWEEP_POINTS = 1_000_000
"""Most points a sweep may evaluate: grid size, samples, or NSGA-II evaluations (docs/limits.md). The driver
holds every point's key in memory (about 0.5 kB a point)."""
DEFAULT_OBJECTIVE = "default"
_TOP_KEYS = ("name", "accelerator", "network", "schedule", "objective", "axes", "metrics", "constraints", "search",
             "accuracy", "chunk_size")
_SPECIAL_AXES = ("network", "schedule", "objective")
_NESTED = ("pe", "ifmap_sram", "filter_sram", "ofmap_sram", "dram", "energy")


def accelerator_axis_paths() -> list[str]:
    """Every accelerator field a sweep may vary, as a dotted path (``rows``, ``pe.kind``, ...)."""
    out = []
    base = Accelerator("x", 1, 1)
    for f in dataclasses.fields(Accelerator):
        if f.name == "name":
            continue
        if f.name in _NESTED:
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(getattr(base, f.name))]
        else:
            out.append(f.name)
    return out


def mapper() -> Any:
    """``mapping.map_network`` if the installation has the mapper, else ``None``."""
    import importlib

    try:
        mod = importlib.import_module("mapping")
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, "map_network", None)
    return fn if callable(fn) else None


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept dimension: an accelerator field (dotted path) or ``network``/``schedule``/``objective``."""

    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Constraint:
    metric: str
    op: str
    bound: float

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Search:
    mode: str = "grid"
    samples: int = 0
    seed: int = 0
    population: int = 0
    generations: int = 0
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkChoice:
    label: str
    """The network as the spec names it (preset name or path); accuracy tables are keyed on it."""
    network: Network
    hash: str
    """sha256 of the network's canonical JSON (what point keys hash)."""


@dataclass(frozen=True, slots=True)
class SweepSpec:
    name: str
    source: str
    base: Accelerator
    acc_axes: tuple[Axis, ...]
    networks: tuple[NetworkChoice, ...]
    schedules: tuple[BitSchedule, ...]
    objectives: tuple[str, ...]
    metrics: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    search: Search
    accuracy: tuple[tuple[tuple[str, str], float], ...] = ()
    chunk_size: int = 128

    @property
    def axes(self) -> tuple[Axis, ...]:
        """Accelerator axes, then network, schedule and objective (single-valued when not swept)."""
        return self.acc_axes + (
            Axis("network", self.networks, tuple(n.label for n in self.networks)),
            Axis("schedule", self.schedules, tuple(s.label for s in self.schedules)),
            Axis("objective", self.objectives, self.objectives),
        )

    @property
    def grid_size(self) -> int:
        return math.prod(len(a) for a in self.axes)

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (stored with the results)."""
        return {
            "name": self.name, "accelerator": accelerator_to_dict(self.base),
            "axes": {a.name: list(a.labels) if a.name in _SPECIAL_AXES else [_plain(v) for v in a.values]
                     for a in self.axes},
            "schedules": [s.to_dict() for s in self.schedules],
            "networks": [{"label": n.label, "name": n.network.name, "hash": n.hash} for n in self.networks],
            "metrics": list(self.metrics), "constraints": [str(c) for c in self.constraints],
            "search": dataclasses.asdict(self.search), "chunk_size": self.chunk_size,
            "accuracy": [[k[0], k[1], v] for k, v in self.accuracy],
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v.value if hasattr(v, "value") and isinstance(v.value, str) else v


def network_hash(net: Network) -> str:
    return hashlib.sha256(json.dumps(network_to_dict(net), sort_keys=True).encode()).hexdigest()


def _expand_values(raw: Any, where: str) -> list[Any]:
    """An axis's values: a list, ``{values: [...]}``, ``{range: [lo, hi], step: s}`` or ``{pow2: [lo, hi]}``."""
    if isinstance(raw, list):
        vals = raw
    elif isinstance(raw, dict):
        keys = set(raw)
        forms = ({"values"}, {"range"}, {"range", "step"}, {"pow2"})
        if keys not in forms:
            raise ConfigError(f"{where} must be a list or one of {{values}}, {{range, step}}, {{pow2}}; "
                              f"unknown key(s) {sorted(keys)}")
        if "values" in raw:
            vals = raw["values"]
            if not isinstance(vals, list):
                raise ConfigError(f"{where}.values must be a list, not {short_repr(vals)}")
        else:
            form = "range" if "range" in raw else "pow2"
            lh = raw[form]
            if (not isinstance(lh, list) or len(lh) != 2
                    or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                               for x in lh)):
                raise ConfigError(f"{where}.{form} must be [low, high] finite numbers, not {short_repr(lh)}")
            lo, hi = lh
            if form == "range":
                step = raw.get("step", 1)
                if (isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step)
                        or step <= 0):
                    raise ConfigError(f"{where}.step must be a finite number > 0, not {short_repr(step)}")
                n = math.floor((hi - lo) / step + 1e-9) + 1 if hi >= lo else 0
                if n > MAX_AXIS_VALUES:
                    raise ConfigError(f"{where}: the range has {n} values, more than the {MAX_AXIS_VALUES} an axis "
                                      "may have (docs/limits.md)")
                vals = [lo + i * step for i in range(n)]
                if all(isinstance(x, int) for x in (lo, hi, step)):
                    vals = [int(v) for v in vals]
            else:
                if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or lo & (lo - 1):
                    raise ConfigError(f"{where}.pow2 must be [low, high] with low a power of two, not {short_repr(lh)}")
                vals = []
                v = lo
                while v <= hi:
                    vals.append(v)
                    v *= 2
            if not vals:
                raise ConfigError(f"{where}: empty range {lh!r}")
    else:
        raise ConfigError(f"{where} must be a list of values or a range mapping, not {short_repr(raw)}")
    if not vals:
        raise ConfigError(f"{where}: empty list of values")
    if len(vals) > MAX_AXIS_VALUES:
        raise ConfigError(f"{where}: {len(vals)} values, more than the {MAX_AXIS_VALUES} an axis may have "
                          "(docs/limits.md)")
    seen: set[str] = set()
    for v in vals:
        c = json.dumps(v, sort_keys=True, default=str)
        if c in seen:
            raise ConfigError(f"{where}: repeated value {short_repr(v)}")
        seen.add(c)
    return vals


def _acc_axis(path: str, raw: Any, base_dict: dict[str, Any], where: str) -> Axis:
    vals = _expand_values(raw, where)
    out = []
    for i, v in enumerate(vals):
        d = json.loads(json.dumps(base_dict))
        parts = path.split(".")
        tgt = d
        for p in parts[:-1]:
            tgt = tgt[p]
        old = tgt[parts[-1]]
        if isinstance(old, float) and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        tgt[parts[-1]] = v
        accelerator_from_dict(d, f"{where}[{i}]")  # validates the value in the base's context
        out.append(tuple(v) if isinstance(v, list) else v)
    return Axis(path, tuple(out), tuple(str(_plain(v)) for v in out))


_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


def _constraints(raw: Any, metrics: tuple[str, ...], where: str) -> tuple[Constraint, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list like ['area_luts <= 20000'], not {short_repr(raw)}")
    out: list[Constraint] = []
    for i, c in enumerate(raw):
        m = _CONSTRAINT_RE.match(c) if isinstance(c, str) else None
        if m is None:
            raise ConfigError(f"{where}[{i}] must read 'METRIC <= NUMBER' or 'METRIC >= NUMBER', not {short_repr(c)}")
        try:
            bound = float(m.group(3))
            if not math.isfinite(bound):
                raise ValueError
        except ValueError:
            raise ConfigError(f"{where}[{i}]: bound must be a finite number, not {m.group(3)!r}") from None
        if m.group(1) not in metrics:
            raise ConfigError(f"{where}[{i}]: metric {m.group(1)!r} is not among the sweep's metrics "
                              f"({', '.join(metrics)})")
        out.append(Constraint(m.group(1), m.group(2), bound))
    for name in {c.metric for c in out}:
        hi = min((c.bound for c in out if c.metric == name and c.op == "<="), default=math.inf)
        lo = max((c.bound for c in out if c.metric == name and c.op == ">="), default=-math.inf)
        if lo > hi:
            raise ConfigError(f"{where}: contradictory constraints: {name} >= {lo:g} and {name} <= {hi:g}")
    return tuple(out)


def _search(raw: Any, metrics: tuple[str, ...], where: str) -> Search:
    if raw is None:
        return Search()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with a 'mode', not {short_repr(raw)}")
    mode = raw.get("mode", "grid")
    if mode not in SEARCH_MODES:
        raise ConfigError(f"{where}.mode must be one of {list(SEARCH_MODES)}, not {short_repr(mode)}")
    allowed = {"grid": {"mode"}, "random": {"mode", "samples", "seed"}, "lhs": {"mode", "samples", "seed"},
               "nsga2": {"mode", "population", "generations", "seed", "objectives"}}[mode]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {where.split(': ')[-1]}.{unknown[0]} for mode {mode!r}; "
                          f"allowed keys: {', '.join(sorted(allowed))}")

    def pos_int(key: str, lo: int, default: int | None = None) -> int:
        v = raw.get(key, default)
        if v is None:
            raise ConfigError(f"{where}: mode {mode!r} needs key {key!r}")
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{where}.{key} must be an integer >= {lo}, not {short_repr(v)}")
        return v

    seed = pos_int("seed", 0, 0) if mode != "grid" else 0
    if mode in ("random", "lhs"):
        return Search(mode, samples=pos_int("samples", 1), seed=seed)
    if mode == "nsga2":
        pop = pos_int("population", 4)
        if pop % 2:
            raise ConfigError(f"{where}.population must be even, not {short_repr(pop)}")
        objs = raw.get("objectives", ["energy_pj", "latency_s"])
        if not isinstance(objs, list) or len(objs) < 2 or len(set(objs)) != len(objs):
            raise ConfigError(f"{where}.objectives must be a list of at least two distinct metrics, not {short_repr(objs)}")
        for o in objs:
            if o not in metrics:
                raise ConfigError(f"{where}.objectives: {o!r} is not among the sweep's metrics ({', '.join(metrics)})")
        return Search(mode, seed=seed, population=pop, generations=pos_int("generations", 1), objectives=tuple(objs))
    return Search()


def _network(label: Any, base_dir: Path, where: str) -> NetworkChoice:
    if not isinstance(label, str) or not label:
        raise ConfigError(f"{where} must be a preset name or a YAML path, not {short_repr(label)}")
    p = Path(label)
    target: str | Path = label
    if p.suffix in (".yaml", ".yml"):
        target = p if p.is_absolute() else base_dir / p
    try:
        net = hwsim.resolve_network(target)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return NetworkChoice(label, net, network_hash(net))


def spec_from_dict(d: Any, source: str = "<sweep>", base_dir: Path | None = None) -> SweepSpec:
    """Build a :class:`SweepSpec` from parsed YAML; ``source`` names the file in error messages."""
    base_dir = base_dir or Path(".")
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: a sweep spec must be a mapping, not {short_repr(d)}")
    unknown = sorted(set(d) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]}; allowed keys: {', '.join(_TOP_KEYS)}")
    name = d.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: name must be a non-empty string, not {short_repr(name)}")
    acc_raw = d.get("accelerator")
    if acc_raw is None:
        raise ConfigError(f"{source}: missing key accelerator (a preset name, a YAML path or a mapping)")
    if isinstance(acc_raw, dict):
        base = accelerator_from_dict(acc_raw, f"{source}: accelerator")
    elif isinstance(acc_raw, str):
        p = Path(acc_raw)
        target: str | Path = (p if p.is_absolute() else base_dir / p) if p.suffix in (".yaml", ".yml") else acc_raw
        try:
            base = hwsim.resolve_accelerator(target)
        except ConfigError as exc:
            raise ConfigError(f"{source}: accelerator: {exc}") from None
    else:
        raise ConfigError(f"{source}: accelerator must be a preset name, a YAML path or a mapping, not {short_repr(acc_raw)}")
    base_dict = accelerator_to_dict(base)

    axes_raw = d.get("axes", {}) or {}
    if not isinstance(axes_raw, dict):
        raise ConfigError(f"{source}: axes must be a mapping of axis -> values, not {short_repr(axes_raw)}")
    paths = accelerator_axis_paths()
    for k in axes_raw:
        if k not in paths and k not in _SPECIAL_AXES:
            raise ConfigError(f"{source}: unknown axis axes.{k}; allowed axes: {', '.join(paths + list(_SPECIAL_AXES))}")
    for k in _SPECIAL_AXES:
        if k in axes_raw and k in d:
            raise ConfigError(f"{source}: {k} is given both as a fixed key and as axes.{k}; keep one")
    acc_axes = tuple(_acc_axis(k, v, base_dict, f"{source}: axes.{k}") for k, v in axes_raw.items()
                     if k not in _SPECIAL_AXES)

    def special(key: str, default: Any) -> list[Any]:
        if key in axes_raw:
            return _expand_values(axes_raw[key], f"{source}: axes.{key}")
        return [d.get(key, default)]

    net_where = f"{source}: axes.network" if "network" in axes_raw else f"{source}: network"
    raw_nets = special("network", None)
    if raw_nets == [None]:
        raise ConfigError(f"{source}: missing key network (or axes.network)")
    networks = tuple(_network(v, base_dir, f"{net_where}[{i}]" if "network" in axes_raw else net_where)
                     for i, v in enumerate(raw_nets))
    sch_where = f"{source}: axes.schedule" if "schedule" in axes_raw else f"{source}: schedule"
    schedules = tuple(schedule_from_dict(v, f"{sch_where}[{i}]" if "schedule" in axes_raw else sch_where)
                      for i, v in enumerate(special("schedule", {"kind": "network"})))
    labels = [s.label for s in schedules]
    if len(set(labels)) != len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise ConfigError(f"{sch_where}: two schedules share the label {dup!r}; give one a 'label'")
    objectives = tuple(special("objective", DEFAULT_OBJECTIVE))
    for i, o in enumerate(objectives):
        if not isinstance(o, str) or not o:
            raise ConfigError(f"{source}: objective[{i}] must be a string, not {short_repr(o)}")
        if o != DEFAULT_OBJECTIVE and mapper() is None:
            raise ConfigError(f"{source}: objective {o!r} needs mapping.map_network, which this installation "
                              f"lacks; use {DEFAULT_OBJECTIVE!r} (hwsim's default schedule)")
        if o != DEFAULT_OBJECTIVE:
            import mapping

            allowed = (DEFAULT_OBJECTIVE, *getattr(mapping, "OBJECTIVES", ()))
            if o not in allowed:
                raise ConfigError(f"{source}: objective[{i}] must be one of {list(allowed)}, not {short_repr(o)}")

    metrics_raw = d.get("metrics", ["cycles", "latency_s", "energy_pj", "edp"])
    if not isinstance(metrics_raw, list) or not metrics_raw:
        raise ConfigError(f"{source}: metrics must be a non-empty list of {', '.join(METRICS)}, not {short_repr(metrics_raw)}")
    for i, m in enumerate(metrics_raw):
        if m not in METRICS:
            raise ConfigError(f"{source}: metrics[{i}]: unknown metric {m!r}; known: {', '.join(METRICS)}")
        if METRICS[m].needs == "area" and area_model() is None:
            raise ConfigError(f"{source}: metrics[{i}]: {m} needs the fitted area model hwsim.area.fpga_area, "
                              f"which this installation lacks")
    if len(set(metrics_raw)) != len(metrics_raw):
        raise ConfigError(f"{source}: metrics: repeated metric in {metrics_raw!r}")
    metrics = tuple(metrics_raw)

    accuracy: dict[tuple[str, str], float] = {}
    acc_tab = d.get("accuracy")
    if acc_tab is not None:
        if not isinstance(acc_tab, dict) or set(acc_tab) != {"table"} or not isinstance(acc_tab["table"], str):
            raise ConfigError(f"{source}: accuracy must be {{table: PATH.csv}}, not {short_repr(acc_tab)}")
        tp = Path(acc_tab["table"])
        try:
            accuracy = load_accuracy_table(tp if tp.is_absolute() else base_dir / tp)
        except ConfigError as exc:
            raise ConfigError(f"{source}: accuracy.table: {exc}") from None
    if "accuracy" in metrics and acc_tab is None:
        raise ConfigError(f"{source}: metrics: accuracy needs an accuracy table (accuracy: {{table: PATH.csv}})")

    constraints = _constraints(d.get("constraints", []) or [], metrics, f"{source}: constraints")
    search = _search(d.get("search"), metrics, f"{source}: search")
    chunk = d.get("chunk_size", 128)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 100_000:
        raise ConfigError(f"{source}: chunk_size must be an integer in [1, 100000], not {short_repr(chunk)}")
    spec = SweepSpec(name, source, base, acc_axes, networks, schedules, objectives, metrics, constraints, search,
                     tuple(sorted(accuracy.items())), chunk)
    size = spec.grid_size
    if search.mode == "grid" and size > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: the grid has {size:,} points ({' x '.join(str(len(a)) for a in spec.axes)}), "
                          f"more than the {MAX_SWEEP_POINTS:,} a sweep may have; sample it (search: {{mode: random, "
                          f"samples: N}} or lhs) or split it (docs/limits.md)")
    if search.mode in ("random", "lhs") and search.samples > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: search.samples must be <= {MAX_SWEEP_POINTS:,}, not {search.samples!r}")
    if search.mode == "nsga2" and search.population * (search.generations + 1) > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: search.population x (generations + 1) must be <= {MAX_SWEEP_POINTS:,} "
                          f"evaluations, not {search.population * (search.generations + 1):,}")
    if search.mode in ("random", "lhs") and search.samples > spec.grid_size:
        raise ConfigError(f"{source}: search.samples must be <= the grid's {spec.grid_size} points, "
                          f"not {search.samples!r}")
    return spec


def load_sweep_spec(path: str | Path) -> SweepSpec:
    p = Path(path)
    return spec_from_dict(read_yaml(p), str(p), p.parent)
