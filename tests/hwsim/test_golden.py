"""The golden model against plain integer arithmetic: exhaustive on small domains, properties beyond."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import golden


def test_wrap_and_saturate() -> None:
    assert golden.wrap(127, 8) == 127
    assert golden.wrap(128, 8) == -128
    assert golden.wrap(-129, 8) == 127
    assert golden.saturate(300, 8) == 127
    assert golden.saturate(-300, 8) == -128


@pytest.mark.parametrize("signed", [True, False])
def test_bit_serial_mac_exhaustive_small(signed: bool) -> None:
    """Every weight (4 bits), activation and precision 1..4, accumulator wide enough and too narrow."""
    for p in range(1, 5):
        acts = range(-(1 << (p - 1)), 1 << (p - 1)) if signed else range(1 << p)
        for w, a, acc0 in itertools.product(range(-8, 8), acts, (-5, 0, 7)):
            for acc_bits in (6, 16):
                got = golden.bit_serial_mac(w, a, p, acc0, acc_bits, signed)
                assert got == golden.wrap(acc0 + w * a, acc_bits), (w, a, p, acc0, acc_bits)


def test_bit_stream_is_lsb_first_with_negative_msb() -> None:
    bits = golden.act_bits_lsb_first(-3, 3)  # -3 = 0b101 in 3-bit two's complement
    assert bits == [1, 0, 1]
    assert golden.act_value(bits, signed=True) == -3
    assert golden.act_value(bits, signed=False) == 5


def test_act_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^bit_serial_mac\.act must be a signed 3-bit integer in \[-4, 3\], "
                                         r"not 4$"):
        golden.bit_serial_mac(1, 4, 3)
    with pytest.raises(ValueError, match=r"^bit_serial_mac\.act must be an unsigned 2-bit integer in "
                                         r"\[0, 3\], not -1$"):
        golden.bit_serial_mac(1, -1, 2, signed_act=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-128, 127), st.integers(-128, 127)), min_size=1, max_size=40),
       st.integers(9, 40))
def test_bit_serial_dot_equals_wrapped_sum(pairs: list[tuple[int, int]], acc_bits: int) -> None:
    ws, acts = zip(*pairs, strict=True)
    exact = sum(w * a for w, a in pairs)
    assert golden.bit_serial_dot(list(ws), list(acts), 8, acc_bits) == golden.wrap(exact, acc_bits)


def _naive_conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pad: tuple[int, int], groups: int) -> np.ndarray:
    n, c, h, wd = x.shape
    m, cg, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - r) // stride[0] + 1
    ow = (wd + 2 * pad[1] - s) // stride[1] + 1
    out = np.zeros((n, m, oh, ow), dtype=np.int64)
    mg = m // groups
    for b, f, i, j in itertools.product(range(n), range(m), range(oh), range(ow)):
        g = f // mg
        acc = 0
        for ci, u, v in itertools.product(range(cg), range(r), range(s)):
            acc += int(xp[b, g * cg + ci, i * stride[0] + u, j * stride[1] + v]) * int(w[f, ci, u, v])
        out[b, f, i, j] = acc
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.sampled_from([1, 2]), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1),
       st.integers(1, 2), st.integers(0, 2**31 - 1))
def test_conv2d_matches_naive_loops(n: int, groups: int, k: int, stride: int, pad: int, mult: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c, m = 2 * groups, 2 * groups * mult
    h = k + rng.integers(0, 4)
    x = rng.integers(-128, 128, size=(n, c, h, h))
    w = rng.integers(-8, 8, size=(m, c // groups, k, k))
    got = golden.conv2d(x, w, (stride, stride), (pad, pad), groups, acc_bits=40)
    assert np.array_equal(got, _naive_conv(x, w, (stride, stride), (pad, pad), groups))


def test_conv2d_wraps_and_saturates() -> None:
    x = np.full((1, 1, 3, 3), 100)
    w = np.full((1, 1, 3, 3), 100)  # 9 * 10000 = 90000 overflows 16 bits
    assert golden.conv2d(x, w, acc_bits=16)[0, 0, 0, 0] == golden.wrap(90000, 16)
    assert golden.conv2d(x, w, acc_bits=16, overflow="saturate")[0, 0, 0, 0] == 32767


def test_tile_os_and_linear_agree_with_scalar_model() -> None:
    rng = np.random.default_rng(1)
    acts = rng.integers(-8, 8, size=(3, 5))
    wts = rng.integers(-8, 8, size=(5, 4))
    tile = golden.tile_os(acts, wts, acc_bits=10)
    for r, c in itertools.product(range(3), range(4)):
        assert tile[r, c] == golden.bit_serial_dot(list(wts[:, c]), list(acts[r]), 4, acc_bits=10)
    assert np.array_equal(golden.linear(acts, wts.T, acc_bits=10), tile)
    with pytest.raises(ValueError, match=r"^tile_os: acts \(rows x K\) and weights \(K x cols\) must agree, "
                                         r"not \(3, 5\) and \(4, 5\)$"):
        golden.tile_os(acts, wts.T)
