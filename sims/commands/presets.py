"""``hwsim presets [NAME]``: list the bundled accelerators and networks, or print one as YAML."""

from __future__ import annotations

import argparse

from hwsim.errors import ConfigError
from hwsim.io import preset_names, preset_yaml


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list bundled accelerators and networks, or print one as YAML")
    p.add_argument("name", nargs="?", help="a preset to print (usable with --arch / --network)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name is None:
        for kind in ("accelerators", "networks"):
            print(f"{kind}:")
            for n in preset_names(kind):
                print(f"  {n}")
        return 0
    for kind in ("accelerators", "networks"):
        if args.name in preset_names(kind):
            print(preset_yaml(kind, args.name), end="")
            return 0
    known = preset_names("accelerators") + preset_names("networks")
    raise ConfigError(f"unknown preset {args.name!r}; bundled: {', '.join(known)}")
