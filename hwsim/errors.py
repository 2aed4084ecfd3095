"""One grammar for errors: ``<Owner>.<field> must be <rule>, not <value!r>``.

``TypeError`` for the wrong kind of value, ``ValueError`` for a wrong value. Loaders wrap both in
:class:`ConfigError`, which prefixes the file and the key path, so a CLI can print one line.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError", "check_int", "check_float", "check_choice", "check_bool", "check_name"]


class ConfigError(ValueError):
    """A problem in a user-supplied file or spec; the message names the file and the key path."""


def _rule(owner: str, field: str, rule: str, value: object) -> str:
    return f"{owner}.{field} must be {rule}, not {value!r}"


def check_int(owner: str, field: str, value: object, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[lo, hi]``; raise with the allowed range otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(_rule(owner, field, "an integer", value))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            rng = f"an integer >= {lo}"
        elif lo is None:
            rng = f"an integer <= {hi}"
        else:
            rng = f"an integer in [{lo}, {hi}]"
        raise ValueError(_rule(owner, field, rng, value))
    return value


def check_float(owner: str, field: str, value: object, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> float:
    """Return ``value`` as float if it is a real number in the range; ``lo_open`` excludes ``lo``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(_rule(owner, field, "a number", value))
    v = float(value)
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    bad_hi = hi is not None and v > hi
    if bad_lo or bad_hi or v != v:
        left = "(" if lo_open else "["
        rng = f"a number in {left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
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
