"""``hwsim.scalesim.windows``: the search for the fold in which a window fills, against a linear scan."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.scalesim.windows import first_filling


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.data())
def test_first_filling_equals_a_linear_scan_from_any_guess(steps: list[int], data: st.DataObject) -> None:
    """Nondecreasing counts (folds that bring no new address included), a target reached at the last
    fold, any guess inside or outside the range: the first fold that reaches it, found with few calls."""
    held = [sum(steps[: i + 1]) for i in range(len(steps))]
    lo = data.draw(st.integers(0, len(held) - 1))
    cap = data.draw(st.integers(0, held[-1]))
    guess = data.draw(st.integers(-5, len(held) + 5))
    calls: list[int] = []

    def count(f: int) -> int:
        assert lo <= f < len(held)
        calls.append(f)
        return held[f]
    want = next(f for f in range(lo, len(held)) if held[f] >= cap)
    assert first_filling(count, lo, len(held) - 1, cap, guess) == want
    assert len(calls) <= 2 * len(held).bit_length() + 3


def test_a_good_guess_costs_two_counts() -> None:
    held = list(range(0, 1000, 10))   # 10 new addresses a fold
    calls: list[int] = []

    def count(f: int) -> int:
        calls.append(f)
        return held[f]
    assert first_filling(count, 0, len(held) - 1, 505, 51) == 51
    assert calls == [51, 50]
