"""Cascade threshold sweeps and HAQ-style precision lookup tables."""

import dataclasses

import numpy as np
import pytest

import hwsim
from mapping.cascade import threshold_sweep, with_exit_rates
from mapping.lut import precision_lut
from mapping.mapper import map_network

EDGE = hwsim.resolve_accelerator("edge16_serial")


def test_threshold_sweep_trades_accuracy_for_compute() -> None:
    net = hwsim.resolve_network("cascade_digits")
    res = hwsim.simulate(map_network(net, EDGE, "latency"), EDGE)
    conf = np.array([[0.95, 0.5, 0.99, 0.7], [1.0, 1.0, 1.0, 1.0]])
    correct = np.array([[True, False, False, True], [True, True, True, True]])
    pts = threshold_sweep(res, conf, correct, [0.0, 0.9, 1.1])
    low, mid, high = pts
    assert low.exit_rates[0] == 1.0 and low.accuracy == 0.5
    assert mid.exit_rates[0] == 0.5 and mid.accuracy == 0.75  # samples 0 and 2 exit early
    assert high.exit_rates[0] == 0.0 and high.accuracy == 1.0
    c1, c2 = res.stages[0].cycles, res.stages[1].cycles
    assert low.expected_cycles == c1 and high.expected_cycles == c1 + c2 == high.worst_cycles
    assert mid.expected_cycles == pytest.approx(c1 + 0.5 * c2)
    # the chosen point's exit rates go back into the network and hwsim agrees
    net2 = with_exit_rates(net, mid.exit_rates)
    assert hwsim.simulate(map_network(net2, EDGE, "latency"), EDGE).expected_cycles == pytest.approx(mid.expected_cycles)
    with pytest.raises(ValueError, match=r"^threshold_sweep\.confidences must have one row per stage \(2\) "
                       r"and samples, not shape \(1, 4\)$"):
        threshold_sweep(res, conf[:1], correct[:1], [0.5])


def test_precision_lut_covers_every_pair(tmp_path) -> None:
    net = hwsim.resolve_network("small_cnn")
    lut = precision_lut(net, EDGE, map_network(net, EDGE, "edp"))
    assert lut.cycles.shape == (len(net.layers), 8, 8) and not np.isnan(lut.cycles).any()
    mac = [i for i, la in enumerate(net.layers) if la.has_macs]
    # a serial-activation PE: cycles grow with activation bits, energy with both widths
    for i in mac:
        assert lut.cycles[i, 3, 7] > lut.cycles[i, 3, 0]
        assert lut.energy_pj[i, 7, 7] > lut.energy_pj[i, 0, 0]
    lut.save(tmp_path / "lut.csv")
    rows = (tmp_path / "lut.csv").read_text().splitlines()
    assert rows[0] == "layer,weight_bits,act_bits,cycles,latency_s,energy_pj" and len(rows) == 1 + 64 * len(net.layers)
    lut.save(tmp_path / "lut.npz")
    assert np.load(tmp_path / "lut.npz")["cycles"].shape == lut.cycles.shape
    narrow = precision_lut(net, dataclasses.replace(EDGE, pe=hwsim.PESpec("serial_act", 4, 4, 32)))
    assert np.isnan(narrow.cycles[:, 4:, :]).all() and np.isfinite(narrow.cycles[:, :4, :4]).all()
