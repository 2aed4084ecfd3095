"""Benchmark of the front ends on real torchvision classification models (randomly initialised).

For each model, on a 1x3x224x224 input: the MACs by forward hooks (conv, linear, and
``nn.MultiheadAttention`` analytically: projections plus QKᵀ and AV) as the reference; then every
route — the pickled module (``torch.save`` then ``load_model(..., trust_pickle=True)``), and
``torch.onnx.export`` with its default (dynamo) exporter and with ``dynamo=False`` — without
``skip_unsupported``, recording layers, MACs, the default-schedule cycles and energy on
``edge16_serial`` (``hwsim.simulate``) and the front end's own time (export time separate), and the time
``map_network`` takes on the network (objective EDP). A route that
raises is recorded with its one-line error. ``--write-docs`` replaces the section "## Front ends on
torchvision models" of docs/mapping.md.

Needs torchvision beside torch (it is not a dependency of the project): run it from an environment
that has both, e.g. ``torch==2.14.1 torchvision==0.29.1 onnx onnxscript`` with this checkout on
``PYTHONPATH``. ``--brevitas`` instead checks the widths of Brevitas QONNX and QCDQ exports against the
Brevitas modules (needs ``brevitas``, its ``dependencies`` and ``onnxoptimizer``).
``python -m sims.bench.frontends [--models a,b] [--brevitas] [--json OUT] [--write-docs]``
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import hwsim
from sims.bench.doc import replace_section

__all__ = ["MODELS", "hook_macs", "run_model", "main"]

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "vgg11", "squeezenet1_0",
          "shufflenet_v2_x1_0", "googlenet", "densenet121", "regnet_x_400mf", "convnext_tiny", "vit_b_16")
ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Front ends on torchvision models"
ACC = "edge16_serial"


def hook_macs(model: Any, x: Any) -> int:
    """The reference count: forward hooks on Conv2d / Linear; MultiheadAttention analytically."""
    import torch
    from torch import nn
    total = [0]

    def conv(m: Any, args: Any, out: Any) -> None:
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin(m: Any, args: Any, out: Any) -> None:
        total[0] += out.numel() * m.in_features

    def mha(m: Any, args: Any, out: Any) -> None:
        q, k = args[0], args[1]
        n, lq, e = q.shape if m.batch_first else (q.shape[1], q.shape[0], q.shape[2])
        s = k.shape[1] if m.batch_first else k.shape[0]
        total[0] += 2 * n * lq * e * e + 2 * n * s * e * e + 2 * n * lq * s * e

    hs = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hs.append(mod.register_forward_hook(conv))
        elif isinstance(mod, nn.Linear):
            hs.append(mod.register_forward_hook(lin))
        elif isinstance(mod, nn.MultiheadAttention):
            hs.append(mod.register_forward_hook(mha))
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total[0]


def _route(fn: Any) -> dict[str, Any]:
    acc = hwsim.resolve_accelerator(ACC)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net, extra = fn()
    except Exception as exc:  # a benchmark records every failure as data
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
    read_s = time.perf_counter() - t0 - extra.get("export_s", 0.0)
    res = hwsim.simulate(net, acc)
    return {"layers": len(net.layers), "mac_layers": sum(1 for la in net.layers if la.has_macs), "macs": net.macs,
            "cycles": res.expected_cycles, "energy_pj": res.expected_energy.total_pj, "read_s": read_s, **extra}


def run_model(name: str) -> dict[str, Any]:
    import onnx
    import torch
    import torchvision

    from mapping.frontends import from_onnx, load_model

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    row: dict[str, Any] = {"model": name, "reference_macs": hook_macs(model, x)}

    def pickled() -> tuple[Any, dict[str, float]]:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / f"{name}.pt"
            torch.save(model, p)
            return load_model(p, input_shape=(1, 3, 224, 224), trust_pickle=True), {}

    def exported(dynamo: bool) -> Any:
        def go() -> tuple[Any, dict[str, float]]:
            t0 = time.perf_counter()
            buf = io.BytesIO()
            torch.onnx.export(model, (x,), buf, dynamo=dynamo)  # not under no_grad: MHA's fused path has no ONNX
            ex = time.perf_counter() - t0
            return from_onnx(onnx.load_from_string(buf.getvalue()), name=name), {"export_s": ex}
        return go

    row["pickle"] = _route(pickled)
    if "error" not in row["pickle"]:  # the mapper on the same network (EDP, distinct layers searched once)
        from mapping.mapper import map_network
        net, _ = pickled()
        t0, c0 = time.perf_counter(), time.process_time()
        map_network(net, hwsim.resolve_accelerator(ACC), "edp")
        row["map_s"], row["map_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    row["onnx_dynamo"] = _route(exported(True))
    row["onnx_legacy"] = _route(exported(False))
    return row


BREVITAS_SECTION = "## Brevitas QONNX and QCDQ widths"


def run_brevitas() -> list[dict[str, Any]]:
    """A Brevitas CNN (QuantIdentity -> QuantConv2d -> QuantReLU -> MaxPool -> ... -> reshape -> QuantLinear),
    exported as QONNX and as QCDQ (``dynamo=False``); per MAC layer, the widths read against the Brevitas
    modules' own (weight quantizer bit width; the bit width of the activation quantizer feeding it)."""
    import brevitas
    import brevitas.nn as qnn
    import torch
    from brevitas.export import export_onnx_qcdq, export_qonnx
    from torch import nn

    from mapping.frontends import from_onnx

    class Net(nn.Module):
        def __init__(self, relu2_bits: int) -> None:
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.c1 = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, return_quant_tensor=True)
            self.r1 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
            self.p1 = nn.MaxPool2d(2)
            self.c2 = qnn.QuantConv2d(8, 16, 3, padding=1, weight_bit_width=2, return_quant_tensor=True)
            self.r2 = qnn.QuantReLU(bit_width=relu2_bits, return_quant_tensor=True)
            self.p2 = nn.MaxPool2d(2)
            self.fc = qnn.QuantLinear(16 * 4, 10, bias=True, weight_bit_width=3)

        def forward(self, x: Any) -> Any:
            x = self.p1(self.r1(self.c1(self.inp(x))))
            x = self.p2(self.r2(self.c2(x)))
            return self.fc(x.reshape(x.shape[0], -1))

    rows = []
    for fmt, export, relu2 in (("QONNX", export_qonnx, 1), ("QCDQ", export_onnx_qcdq, 2)):  # QCDQ has no 1-bit
        m = Net(relu2).eval()
        feeds = {"c1": m.inp, "c2": m.r1, "fc": m.r2}
        with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = Path(d) / "m.onnx"
            export(m, torch.zeros(1, 1, 8, 8), export_path=str(path), dynamo=False)
            net = from_onnx(path)
        macs = [la for la in net.layers if la.has_macs]
        for la, (name, feed) in zip(macs, feeds.items(), strict=True):
            mod = getattr(m, name)
            want = (int(mod.quant_weight().bit_width), int(feed.act_quant.bit_width()))
            rows.append({"format": fmt, "layer": name, "read_as": la.name, "brevitas": want,
                         "read": (la.weight_bits, la.act_bits), "brevitas_version": brevitas.__version__})
    return rows


def _brevitas_section(rows: list[dict[str, Any]]) -> str:
    lines = [BREVITAS_SECTION, "",
             f"Measured by `python -m sims.bench.frontends --brevitas --write-docs` (Brevitas "
             f"{rows[0]['brevitas_version']}, `dynamo=False` exports): a CNN whose quantizers are separated "
             "from the next MAC layer by `MaxPool` and a reshape, as Brevitas CNNs and classifier heads are. "
             "Widths as (weight bits, activation bits).", "",
             "| format | layer | Brevitas module | read by `from_onnx` | equal |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['layer']} | {tuple(r['brevitas'])} | {tuple(r['read'])} | "
                     f"{'yes' if tuple(r['brevitas']) == tuple(r['read']) else 'NO'} |")
    lines.append("")
    return "\n".join(lines)


def _agree(row: dict[str, Any]) -> str:
    base = row["pickle"]
    if "error" in base:
        return "-"
    worst = 0.0
    for r in ("onnx_dynamo", "onnx_legacy"):
        o = row[r]
        if "error" in o:
            return "no"
        worst = max(worst, abs(o["cycles"] / base["cycles"] - 1), abs(o["energy_pj"] / base["energy_pj"] - 1))
    return f"{100 * worst:.2f} %"


def _secs(v: Any) -> str:
    return "-" if v is None else f"{v:.1f} s"


def _cell(r: dict[str, Any], ref: int) -> str:
    if "error" in r:
        return f"error: {r['error'][:60]}"
    mark = "=" if r["macs"] == ref else f"{100 * (r['macs'] / ref - 1):+.2f} %"
    return f"{r['mac_layers']}/{r['layers']}, {mark}, {r['read_s']:.1f} s"


def _section(rows: list[dict[str, Any]], meta: dict[str, str]) -> str:
    lines = [SECTION, "",
             "Measured by `python -m sims.bench.frontends --write-docs` (randomly initialised torchvision "
             f"{meta['torchvision']} models, torch {meta['torch']}, onnx {meta['onnx']}; {meta['machine']}). Input "
             "1x3x224x224, no `--skip-unsupported`. Reference: MACs by forward hooks on Conv2d/Linear, "
             "`nn.MultiheadAttention` counted analytically. Each route cell: MAC layers / all layers, MACs "
             "against the reference (`=` exact), the front end's own time (export time excluded). Agreement: "
             f"the largest difference of the ONNX routes from the pickled-module route in cycles or energy of "
             f"the default schedule on `{ACC}` (`hwsim.simulate`).", "",
             "| model | reference MACs | pickled module (fx) | ONNX, default (dynamo) exporter | ONNX, `dynamo=False` | "
             f"routes agree within | `map_network` (EDP, `{ACC}`), CPU time |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        ref = row["reference_macs"]
        lines.append(f"| {row['model']} | {ref:,} | {_cell(row['pickle'], ref)} | {_cell(row['onnx_dynamo'], ref)} | "
                     f"{_cell(row['onnx_legacy'], ref)} | {_agree(row)} | "
                     f"{_secs(row.get('map_cpu_s'))} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision model names")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--write-docs", action="store_true", help="update docs/mapping.md")
    ap.add_argument("--brevitas", action="store_true", help="only the Brevitas QONNX / QCDQ width check")
    args = ap.parse_args(argv)
    if args.brevitas:
        text = _brevitas_section(run_brevitas())
        print(text)
        if args.write_docs:
            replace_section(ROOT / "docs" / "mapping.md", BREVITAS_SECTION[3:], text, title="# Mapping")
        return 0
    import onnx
    import torch
    import torchvision
    torch.set_num_threads(1)
    meta = {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0],
            "onnx": onnx.__version__, "machine": f"{platform.processor() or platform.machine()}, one thread"}
    rows = []
    for name in args.models.split(","):
        rows.append(run_model(name.strip()))
        print(json.dumps(rows[-1]), flush=True)
    text = _section(rows, meta)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if args.write_docs:
        replace_section(ROOT / "docs" / "mapping.md", SECTION[3:], text, title="# Mapping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
