"""Every bundled accelerator simulates every bundled network."""

import pytest

import hwsim
from hwsim.io import preset_names


@pytest.mark.parametrize("arch", preset_names("accelerators"))
@pytest.mark.parametrize("net", preset_names("networks"))
def test_every_preset_pair_simulates(arch: str, net: str) -> None:
    acc = hwsim.resolve_accelerator(arch)
    network = hwsim.resolve_network(net)
    res = hwsim.simulate(network, acc)
    assert res.cycles > 0
    assert res.macs == network.macs
    assert res.energy.total_pj > 0
    assert res.expected_cycles <= res.cycles
