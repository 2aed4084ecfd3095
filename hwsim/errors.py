"""One grammar for errors: ``<Owner>.<field> must be <rule>, not <value!r>``.

``TypeError`` for the wrong kind of value, ``ValueError`` for a wrong value. Loaders wrap both in
:class:`ConfigError`, which prefixes the file and the key path, so a CLI can print one line.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable

__all__ = ["ConfigError", "check_int", "check_float", "check_choice", "check_bool", "check_name", "short_repr",
           "REPR_CHARS"]

REPR_CHARS = 80
"""Longest ``repr`` of a user's value in a message: a shared YAML structure or a 10^6-element list must
not make the message itself unbounded (docs/limits.md)."""

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 4
_REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 6
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = REPR_CHARS, 40, REPR_CHARS


def short_repr(value: object, limit: int = REPR_CHARS) -> str:
    """``repr(value)`` in bounded time and at most ``limit`` characters (``...`` marks a cut).

    A ``str`` is returned as its repr too, so call it on text only where quotes are wanted."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class ConfigError(ValueError):
    """A problem in a user-supplied file or spec; the message names the file and the key path."""


def _rule(owner: str, field: str, rule: str, value: object) -> str:
    return f"{owner}.{field} must be {rule}, not {short_repr(value)}"


def check_int(owner: str, field: str, value: object, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[lo, hi]``; raise with the allowed range otherwise
    (``TypeError`` for a value of another kind, naming the range too)."""
    if hi is None and lo is None:
        rng = "an integer"
    elif hi is None:
        rng = f"an integer >= {lo}"
    elif lo is None:
        rng = f"an integer <= {hi}"
    else:
        rng = f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(_rule(owner, field, rng, value))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(_rule(owner, field, rng, value))
    return value


def check_float(owner: str, field: str, value: object, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as float if it is a finite real number in the range; ``lo_open`` excludes ``lo``.

    NaN is always refused; an infinity only where the caller opts in with ``allow_inf`` (and the range
    admits it), since ``.inf`` in a spec would end up as ``Infinity`` in JSON that strict parsers reject."""
    left = "(" if lo_open else "["
    kind = "a number" if allow_inf or (lo is not None and hi is not None) else "a finite number"
    rng = (kind if lo is None and hi is None
           else f"{kind} in {left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}"
                f"{']' if hi is not None else ')'}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(_rule(owner, field, rng, value))
    v = float(value)
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    bad_hi = hi is not None and v > hi
    if bad_lo or bad_hi or math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(_rule(owner, field, rng, value))
    return v


def check_choice(owner: str, field: str, value: object, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if value not in allowed:
        raise ValueError(_rule(owner, field, f"one of {allowed}", value))
    return str(value)


def check_bool(owner: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(_rule(owner, field, "true or false", value))
    return value


def check_name(owner: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(_rule(owner, field, "a non-empty string", value))
    return value
