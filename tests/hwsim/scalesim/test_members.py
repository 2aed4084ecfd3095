"""``hwsim.scalesim.members``: a window's addresses stamped from the fetch order, the order cast to stamp
indices chunk by chunk where a window first needs them, against the window's slice searched directly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.scalesim import members
from hwsim.scalesim.members import OrderWindows
from hwsim.scalesim.user import FetchOrder


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(1, 9), st.integers(0, 50), st.integers(0, 2**31))
def test_member_equals_the_windows_slice(cnt: int, eps: int, base: int, seed: int) -> None:
    """Windows at drawn first sets (wrapped ones included) hold exactly the addresses of their slice of
    the order, with chunks of 7 entries cast as the windows reach them."""
    rng = np.random.default_rng(seed)
    addrs = (base + rng.integers(0, max(1, cnt // 2), size=cnt)).astype(np.int32)
    n_sets = -(-cnt // eps)
    a_sets = int(rng.integers(1, n_sets + 1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(members, "INDEX_CHUNK", 7)
        win = OrderWindows(FetchOrder(addrs, cnt, False), eps, n_sets, a_sets)
        probe = np.arange(base - 1, int(addrs.max()) + 2, dtype=np.int64)
        probe = probe[(probe >= int(addrs.min())) & (probe <= int(addrs.max()))]
        for s0 in rng.integers(0, n_sets, size=6).tolist():
            held = np.concatenate(win.slices(s0, addrs))
            assert np.array_equal(win.member(s0, probe), np.isin(probe, held))
            for a in probe[:5].tolist():
                assert win.holds(s0, a) == bool(np.isin(a, held))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(1, 9), st.integers(0, 50), st.integers(0, 2**31))
def test_member_of_small_batches_equals_the_windows_slice(cnt: int, eps: int, base: int, seed: int) -> None:
    """Checks of a few addresses at a time, windows revisited and first sets searched (through the sets'
    address ranges) between them, hold exactly the slice's addresses; so do a set search and a probe of
    one address."""
    rng = np.random.default_rng(seed)
    addrs = (base + rng.integers(0, max(1, cnt // 2), size=cnt)).astype(np.int32)
    n_sets = -(-cnt // eps)
    a_sets = int(rng.integers(1, n_sets + 1))
    win = OrderWindows(FetchOrder(addrs, cnt, False), eps, n_sets, a_sets)
    lo, hi = int(addrs.min()), int(addrs.max())
    for s0 in rng.integers(0, n_sets, size=8).tolist():
        held = np.concatenate(win.slices(s0, addrs))
        for _ in range(4):
            batch = rng.integers(lo, hi + 1, size=int(rng.integers(1, 6)))
            assert np.array_equal(win.member(s0, batch), np.isin(batch, held))
        a = int(rng.integers(lo, hi + 1))
        assert win.holds(s0, a) == bool(np.isin(a, held))
        stop = int(rng.integers(0, n_sets))
        sets = [s % n_sets for s in range(s0, s0 + n_sets)]
        sets = sets[: sets.index(stop) + 1]
        want = next((s for s in sets if np.isin(a, addrs[s * eps: (s + 1) * eps])), stop)
        assert win.first_set(s0, stop, a) == want
