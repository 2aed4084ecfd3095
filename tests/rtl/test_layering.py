"""Layering: rtl imports hwsim only (of ours); hwsim never imports rtl, amaranth or cocotb."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"hwsim", "mapping", "rtl", "quant", "sims"}


def _imports(pkg: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in sorted((ROOT / pkg).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[str(f.relative_to(ROOT))] = names
    return out


def test_rtl_imports_only_hwsim_of_ours() -> None:
    bad = {f: n & OURS - {"rtl", "hwsim"} for f, n in _imports("rtl").items() if n & OURS - {"rtl", "hwsim"}}
    assert bad == {}


def test_hwsim_never_imports_rtl_or_hdl_tools() -> None:
    banned = {"rtl", "amaranth", "cocotb", "cocotb_tools"}
    bad = {f: n & banned for f, n in _imports("hwsim").items() if n & banned}
    assert bad == {}
    assert _imports("rtl")  # the scan sees the rtl package


def test_rtl_params_needs_no_amaranth() -> None:
    assert "amaranth" not in _imports("rtl")["rtl/params.py"]
    assert "amaranth" not in _imports("rtl")["rtl/tools.py"]
