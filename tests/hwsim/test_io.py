"""Strict loaders: unknown keys, malformed YAML and bad values name the file and the key path."""

import re
from pathlib import Path

import pytest
import yaml

import hwsim
from hwsim.errors import ConfigError
from hwsim.io import accelerator_to_dict, network_to_dict, preset_names, preset_yaml


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_presets_round_trip() -> None:
    for name in preset_names("accelerators"):
        acc = hwsim.resolve_accelerator(name)
        assert hwsim.accelerator_from_dict(accelerator_to_dict(acc)) == acc
    for name in preset_names("networks"):
        net = hwsim.resolve_network(name)
        assert hwsim.network_from_dict(network_to_dict(net)) == net
    assert "edge16_serial" in preset_names("accelerators")
    assert {"resnet18", "resnet20", "small_cnn", "vgg_small", "cascade_digits"} <= set(preset_names("networks"))


def test_preset_yaml_loads_from_file(tmp_path: Path) -> None:
    p = write(tmp_path, preset_yaml("accelerators", "systolic32"))
    assert hwsim.load_accelerator(p) == hwsim.resolve_accelerator("systolic32")


def test_unknown_key_names_file_path_and_allowed(tmp_path: Path) -> None:
    p = write(tmp_path, "name: a\nrows: 4\ncols: 4\npe: {kind: parallel, max_bits: 8}\n")
    msg = (f"{p}: unknown key accelerator.pe.max_bits; allowed keys: kind, max_weight_bits, max_act_bits, "
           "acc_bits, signed_act, adder_tree, brick_bits, skip_zero_weights")
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        hwsim.load_accelerator(p)


def test_bad_value_names_field_and_range(tmp_path: Path) -> None:
    p = write(tmp_path, "name: a\nrows: 4\ncols: 4\nifmap_sram: {size_bytes: -5}\n")
    msg = f"{p}: accelerator.ifmap_sram: BufferSpec.size_bytes must be an integer >= 1, not -5"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        hwsim.load_accelerator(p)


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    p = write(tmp_path, "name: [unclosed\n")
    msg = f"{p}: malformed YAML (line 2, column 1): expected ',' or ']', but got '<stream end>'"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        hwsim.load_accelerator(p)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path / 'nope.yaml'}: file not found") + "$"):
        hwsim.load_network(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"^unknown network preset 'nope'; bundled: cascade_digits, "
                                          r"mobilenet_tiny, resnet18, resnet20, small_cnn, vgg_small$"):
        hwsim.resolve_network("nope")


def test_network_yaml_shorthands_defaults_and_errors(tmp_path: Path) -> None:
    net = {"name": "n", "defaults": {"weight_bits": 4, "act_bits": 4},
           "layers": [{"name": "c1", "kind": "conv2d", "in_channels": 3, "out_channels": 8, "in_size": [8, 10],
                       "kernel": 3, "stride": [1, 2], "padding": 1},
                      {"name": "fc", "kind": "linear", "in_channels": 8, "out_channels": 2, "weight_bits": 8}]}
    n = hwsim.load_network(write(tmp_path, yaml.safe_dump(net)))
    c1, fc = n.layers
    assert (c1.in_h, c1.in_w, c1.stride_h, c1.stride_w, c1.out_h, c1.out_w) == (8, 10, 1, 2, 8, 5)
    assert (c1.weight_bits, fc.weight_bits, fc.act_bits) == (4, 8, 4)
    net["layers"][1]["bogus"] = 1
    p = write(tmp_path, yaml.safe_dump(net))
    msg = (f"{p}: unknown key network.layers[1].bogus; allowed keys: name, kind, in_channels, out_channels, "
           "in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, groups, batch, weight_bits, "
           "act_bits, out_bits, channel_weight_bits, bit_scales, inputs, weight_density")
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        hwsim.load_network(p)
    with pytest.raises(ConfigError,
                       match=r"^<network>: network must have exactly one of 'layers' or 'stages'$"):
        hwsim.network_from_dict({"name": "x"})
    bad = {"name": "x", "layers": [{"name": "c", "kind": "conv2d", "in_channels": 3, "out_channels": 4,
                                    "groups": 2}]}
    with pytest.raises(ConfigError, match=r"^f\.yaml: network\.layers\[0\]: Layer\['c'\]\.groups must divide "
                                          r"in_channels=3 and out_channels=4, not 2$"):
        hwsim.network_from_dict(bad, "f.yaml")


def test_cascade_yaml() -> None:
    net = hwsim.resolve_network("cascade_digits")
    assert net.is_cascade and [s.name for s in net.stages] == ["binary", "int8"]
    assert net.reach_probabilities() == pytest.approx([1.0, 0.3])
