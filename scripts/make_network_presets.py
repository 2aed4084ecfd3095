"""Regenerates the bundled network presets (hwsim/presets/networks/*.yaml) from their shapes."""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "hwsim" / "presets" / "networks"


def conv(name, cin, cout, size, k=3, s=1, p=None, **kw):
    d = {"name": name, "kind": "conv2d", "in_channels": cin, "out_channels": cout, "in_size": size,
         "kernel": k, "stride": s, "padding": k // 2 if p is None else p}
    d.update(kw)
    return d


def basic_blocks(L, prev, size, cin, widths, blocks):
    """ResNet basic blocks (two 3x3 convs and a residual add; a 1x1 stride-2 shortcut where the shape
    changes) appended to ``L``; returns the last layer's name."""
    for stage, cout in enumerate(widths, start=1):
        for blk in range(blocks):
            s = 2 if (stage > 1 and blk == 0) else 1
            pre = f"layer{stage}.{blk}"
            L.append(conv(f"{pre}.conv1", cin, cout, size, s=s, inputs=[prev]))
            osz = size // s
            L.append(conv(f"{pre}.conv2", cout, cout, osz, inputs=[f"{pre}.conv1"]))
            skip = prev
            if s == 2 or cin != cout:
                L.append(conv(f"{pre}.downsample", cin, cout, size, k=1, s=s, p=0, inputs=[prev]))
                skip = f"{pre}.downsample"
            L.append({"name": f"{pre}.add", "kind": "eltwise", "in_channels": cout, "out_channels": cout,
                      "in_size": osz, "inputs": [f"{pre}.conv2", skip]})
            cin, size, prev = cout, osz, f"{pre}.add"
    L.append({"name": "avgpool", "kind": "pool", "in_channels": cin, "out_channels": cin, "in_size": size,
              "kernel": size, "inputs": [prev]})
    return "avgpool"


def resnet18(bits=8):
    L = [conv("conv1", 3, 64, 224, k=7, s=2, p=3),
         {"name": "pool1", "kind": "pool", "in_channels": 64, "out_channels": 64, "in_size": 112, "kernel": 3,
          "stride": 2, "padding": 1, "inputs": ["conv1"]}]
    last = basic_blocks(L, "pool1", 56, 64, (64, 128, 256, 512), 2)
    L.append({"name": "fc", "kind": "linear", "in_channels": 512, "out_channels": 1000, "inputs": [last]})
    return {"name": "resnet18", "defaults": {"weight_bits": bits, "act_bits": bits}, "layers": L}


def resnet20():
    L = [conv("conv1", 3, 16, 32)]
    last = basic_blocks(L, "conv1", 32, 16, (16, 32, 64), 3)
    L.append({"name": "fc", "kind": "linear", "in_channels": 64, "out_channels": 10, "inputs": [last]})
    return {"name": "resnet20", "defaults": {"weight_bits": 8, "act_bits": 8}, "layers": L}


def vgg_small():
    L, cin, size = [], 3, 32
    for i, (cout, pool) in enumerate(((64, False), (64, True), (128, False), (128, True), (256, False),
                                      (256, True))):
        L.append(conv(f"conv{i + 1}", cin, cout, size))
        cin = cout
        if pool:
            L.append({"name": f"pool{i + 1}", "kind": "pool", "in_channels": cout, "out_channels": cout,
                      "in_size": size, "kernel": 2, "stride": 2})
            size //= 2
    L.append({"name": "fc1", "kind": "linear", "in_channels": 256 * 4 * 4, "out_channels": 256})
    L.append({"name": "fc2", "kind": "linear", "in_channels": 256, "out_channels": 10})
    return {"name": "vgg_small", "defaults": {"weight_bits": 8, "act_bits": 8}, "layers": L}


def small_cnn(name="small_cnn", bits=(8, 6, 4), extra=None):
    b1, b2, b3 = bits
    L = [conv("conv1", 1, 16, 8, weight_bits=b1, act_bits=8),
         conv("conv2", 16, 32, 8, s=2, weight_bits=b2, act_bits=b1),
         conv("conv3", 32, 32, 4, weight_bits=b3, act_bits=b2),
         {"name": "fc", "kind": "linear", "in_channels": 32 * 16, "out_channels": 10, "weight_bits": 8,
          "act_bits": b3}]
    d = {"name": name, "layers": L}
    if extra:
        d.update(extra)
    return d


def mobilenet_block():
    L = [conv("conv1", 3, 32, 32, s=1),
         conv("dw1", 32, 32, 32, groups=32), conv("pw1", 32, 64, 32, k=1, p=0),
         conv("dw2", 64, 64, 32, s=2, groups=64), conv("pw2", 64, 128, 16, k=1, p=0),
         {"name": "fc", "kind": "linear", "in_channels": 128 * 16 * 16, "out_channels": 10}]
    return {"name": "mobilenet_tiny", "defaults": {"weight_bits": 8, "act_bits": 8}, "layers": L}


def cascade():
    def prefixed(p, bits):
        net = small_cnn(bits=bits)
        for la in net["layers"]:
            la["name"] = f"{p}.{la['name']}"
        return net["layers"]
    binary = prefixed("bin", (1, 1, 1))
    binary[0]["weight_bits"] = 1
    binary[-1]["weight_bits"] = 1
    return {"name": "cascade_digits",
            "stages": [{"name": "binary", "exit_rule": "confidence", "threshold": 0.9, "exit_rate": 0.7,
                        "layers": binary},
                       {"name": "int8", "layers": prefixed("int8", (8, 8, 8))}]}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    nets = [resnet18(), resnet20(), vgg_small(), small_cnn(), mobilenet_block(), cascade()]
    for n in nets:
        head = f"# Bundled network preset {n['name']} (generated by scripts/make_network_presets.py).\n"
        (OUT / f"{n['name']}.yaml").write_text(head + yaml.safe_dump(n, sort_keys=False, default_flow_style=None,
                                                                       width=120))


if __name__ == "__main__":
    main()
