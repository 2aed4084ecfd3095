"""``quant`` imports hwsim, torch and its data/plot helpers only (never mapping, rtl or sims)."""

from __future__ import annotations

import ast
from pathlib import Path

import quant

FORBIDDEN = {"mapping", "rtl", "sims"}


def test_quant_never_imports_mapping_rtl_or_sims() -> None:
    root = Path(quant.__file__).parent
    seen: set[str] = set()
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                seen |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                seen.add(node.module.split(".")[0])
    assert "torch" in seen and "hwsim" in seen
    assert not seen & FORBIDDEN, seen & FORBIDDEN


def test_protocol_module_does_not_need_torch() -> None:
    tree = ast.parse((Path(quant.__file__).parent / "protocol.py").read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith("torch") for m in mods)
