"""The process's memory allocator, set for array-heavy simulation.

glibc gives freed heap memory back to the system once more than a small, self-adjusting amount sits
free at the top of the heap, and serves large blocks from fresh mappings; a simulation that builds and
drops arrays of a few hundred kB to a few MB on every pass (SCALE-Sim mode's closed forms do, per layer)
then faults those pages in again each time. Keeping up to ``TRIM_THRESHOLD_BYTES`` of freed memory in
the process and taking blocks below ``MMAP_THRESHOLD_BYTES`` from the heap makes SCALE-Sim mode's 36
ResNet-18 cases 1.23x faster in all on the benchmark machine, up to 2.05x on one (WS layer1.0.conv1)
(docs/performance.md, "The allocator"). The ``hwsim`` command sets both when it starts; a Python
program that calls the library itself gets the same by starting with the environment of
``ALLOCATOR_ENV``.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["TRIM_THRESHOLD_BYTES", "MMAP_THRESHOLD_BYTES", "ALLOCATOR_ENV", "SETTING_TEXT", "tune_allocator"]

TRIM_THRESHOLD_BYTES = 64 * 2**20   # freed heap kept in the process before glibc trims it
MMAP_THRESHOLD_BYTES = 32 * 2**20   # blocks from this size up get a mapping of their own (glibc's largest default)
ALLOCATOR_ENV = {"MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES),   # the same, set before a process starts
                 "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES)}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers (glibc's malloc.h)
SETTING_TEXT = (f"glibc keeps up to {TRIM_THRESHOLD_BYTES // 2**20} MB of freed heap and serves blocks below "
                f"{MMAP_THRESHOLD_BYTES // 2**20} MB from it")   # the setting in words, for the benchmarks' docs


def tune_allocator() -> bool:
    """Keep up to ``TRIM_THRESHOLD_BYTES`` of freed heap memory in this process and serve blocks below
    ``MMAP_THRESHOLD_BYTES`` from the heap (glibc); whether the allocator took both settings (False
    elsewhere, where nothing is changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
