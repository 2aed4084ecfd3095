"""Benchmark: SCALE-Sim mode's layers with and without the allocator setting of ``sims/allocator.py``.

Each ResNet-18 layer shape of the SCALE-Sim benchmark (``sims/bench/scalesim.py``: 16x16 array, 64 kB
buffers, CALC mode, OS / WS / IS) is timed by ``hwsim.scalesim.simulate_layer``, best of 7, in fresh
processes started alternately with glibc's default heap trimming and with ``ALLOCATOR_ENV`` (the
setting the ``hwsim`` command makes at start), two of each, the best of both kept; the table replaces
the section "## The allocator" of docs/performance.md::

    python -m sims.bench.allocator [--no-doc]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from sims.allocator import ALLOCATOR_ENV, SETTING_TEXT
from sims.bench.doc import replace_section

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
SECTION = "The allocator"
ROUNDS = 2

# the child: every case timed in this process, one JSON object out ("flow layer": seconds)
CHILD = """
import json, time
import hwsim
from hwsim.scalesim import simulate_layer
from sims.bench.scalesim import bench_config, best_of, resnet18_layers
out = {}
for flow in hwsim.Dataflow:
    cfg = bench_config(flow)
    for la, _ in resnet18_layers():
        simulate_layer(la, cfg)
        out[flow.value + " " + la.name] = best_of(lambda: simulate_layer(la, cfg), 7)
print(json.dumps(out))
"""


def run_child(tuned: bool) -> dict[str, float]:
    """One child's times, with the setting in its environment or without it (the variable removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if tuned:
        env.update(ALLOCATOR_ENV)
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True, cwd=REPO)
    times: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def section(plain: dict[str, float], tuned: dict[str, float]) -> str:
    """The doc section: each case's time both ways and the ratio, the sums."""
    lines = [f"## {SECTION}", "",
             "`python -m sims.bench.allocator` (sims/bench/allocator.py): `hwsim.scalesim.simulate_layer` on the "
             "ResNet-18 shapes of the SCALE-Sim benchmark (16x16 array, 64 kB buffers, CALC mode), best of 7, in "
             "fresh processes started alternately without and with "
             + " ".join(f"`{k}={v}`" for k, v in ALLOCATOR_ENV.items())
             + f" ({SETTING_TEXT}, instead of handing memory back and faulting it in again: "
             "`sims/allocator.py`, which the `hwsim` command applies at start and the "
             f"SCALE-Sim benchmark gives both of its processes), {ROUNDS} processes of each, the best kept "
             f"({platform.machine()}, Python {platform.python_version()}; load average at the end "
             f"{os.getloadavg()[0]:.1f}). The cases where it changes most first.", "",
             "| case | default | kept heap | ratio |", "|---|---:|---:|---:|"]
    for case in sorted(plain, key=lambda c: tuned[c] / plain[c]):
        lines.append(f"| {case} | {plain[case] * 1e3:.2f} ms | {tuned[case] * 1e3:.2f} ms | "
                     f"{plain[case] / tuned[case]:.2f}x |")
    total_p, total_t = sum(plain.values()), sum(tuned.values())
    lines += ["", f"All {len(plain)} cases: {total_p * 1e3:.1f} ms by default, {total_t * 1e3:.1f} ms with the heap "
              f"kept ({total_p / total_t:.2f}x)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-doc", action="store_true", help="print the table, do not rewrite docs/performance.md")
    args = ap.parse_args(argv)
    plain: dict[str, float] = {}
    tuned: dict[str, float] = {}
    for _ in range(ROUNDS):
        for flag, best in ((False, plain), (True, tuned)):
            for case, t in run_child(flag).items():
                best[case] = min(t, best.get(case, t))
    text = section(plain, tuned)
    print(text)
    if not args.no_doc:
        replace_section(DOC, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
