"""``hwsim.scalesim.simulate.simulate_user``: USER mode with the read buffers replayed fold by fold equals
the replay of the full demand streams (``simulate_streams``, the model the SCALE-Sim parity tests check)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwsim import Dataflow, Layer, LayerKind
from hwsim.scalesim import ScaleSimConfig, stall_free_cycles
from hwsim.scalesim.simulate import simulate_streams, simulate_user
from hwsim.scalesim.user import FetchOrder, replay_prefetches


@st.composite
def user_cases(draw: st.DrawFn) -> tuple[Layer, ScaleSimConfig]:
    """GEMMs and convs (strides below, at and above the kernel, windows running past the input), every
    dataflow, 1-12 x 1-12 arrays, 1-2 kB buffers and 1-5 words per cycle: read buffers that prefetch
    again and stall, and write-buffer stalls."""
    if draw(st.integers(0, 4)) == 0:
        layer = Layer("g", LayerKind.LINEAR, in_channels=draw(st.integers(1, 200)),
                      out_channels=draw(st.integers(1, 200)), batch=draw(st.integers(1, 30)))
    else:
        r, s, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        layer = Layer("c", LayerKind.CONV2D, in_channels=draw(st.integers(1, 24)), out_channels=draw(st.integers(1, 40)),
                      in_h=draw(st.integers(r, r + 10)), in_w=draw(st.integers(s, s + 10)), kernel_h=r, kernel_w=s,
                      stride_h=stride, stride_w=stride)
    bw = draw(st.integers(1, 5))
    cfg = ScaleSimConfig("r", draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.sampled_from([1, 2])),
                         draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])), draw(st.sampled_from(list(Dataflow))),
                         ifmap_offset=draw(st.sampled_from([0, 5])), user_bandwidth=True, bandwidths=(bw,),
                         ifmap_read_words_per_cycle=draw(st.integers(1, 5)),
                         filter_read_words_per_cycle=draw(st.integers(1, 5)))
    assume(stall_free_cycles(layer, cfg) > 0)
    return layer, cfg


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_cases())
def test_user_mode_fold_by_fold_equals_the_streams(case: tuple[Layer, ScaleSimConfig]) -> None:
    layer, cfg = case
    assert simulate_user(layer, cfg) == simulate_streams(layer, cfg)


def test_user_mode_stalls_on_reads_in_the_generated_range() -> None:
    """The generated range reaches read stalls (a 1 kB buffer, 1 word per cycle, an input over a window)."""
    layer = Layer("c", LayerKind.CONV2D, in_channels=16, out_channels=20, in_h=10, in_w=9, kernel_h=3, kernel_w=3)
    cfg = ScaleSimConfig("r", 4, 8, 1, 1, 1, Dataflow.OS, user_bandwidth=True, bandwidths=(2,),
                         ifmap_read_words_per_cycle=1, filter_read_words_per_cycle=1)
    rep = simulate_user(layer, cfg)
    assert rep.stall_cycles > 0 and rep.ifmap_dram_stop > -1
    assert rep == simulate_streams(layer, cfg)


def test_a_demand_never_fetched_is_one_line() -> None:
    order = FetchOrder(np.arange(10, 2010, dtype=np.int64), 2000)   # more than the active half of 1 kB
    with pytest.raises(ValueError, match=r"^address 5 is demanded but never fetched$"):
        replay_prefetches([(np.zeros(1, dtype=np.int64), np.array([5], dtype=np.int64))], order, 1, 1)
