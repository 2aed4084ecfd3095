"""``hwsim.scalesim.layout``: the closed-form count of a WS IFMAP fold whose last pixels read nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hwsim.scalesim.layout import Fold, Pixels


@st.composite
def pixels(draw: st.DrawFn) -> tuple[Pixels, int]:
    ew = draw(st.integers(1, 9))
    return Pixels(True, draw(st.integers(0, 6)), draw(st.integers(0, ew))), ew


@given(pixels(), st.integers(-2, 80))
def test_below_prefix_equals_the_sum(case: tuple[Pixels, int], n: int) -> None:
    px, ew = case
    assert px.below_prefix(n, ew) == sum(px.below(v, ew) for v in range(n))


@given(pixels(), st.integers(1, 30), st.integers(1, 12), st.integers(-3, 50), st.integers(0, 5))
def test_fold_count_with_a_prefix_equals_the_sum_over_columns(case: tuple[Pixels, int], t: int, w: int, x: int,
                                                              off: int) -> None:
    px, ew = case
    g = lambda v: px.below(v, ew)   # noqa: E731
    plain = Fold(off, w, t, 0, valid=g)
    fast = Fold(off, w, t, 0, valid=g, valid_prefix=lambda n: px.below_prefix(n, ew))
    assert fast.count_lt(x) == plain.count_lt(x)
