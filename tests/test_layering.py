"""The package layering of DESIGN.md: hwsim imports nothing of ours; mapping, rtl and quant never import
each other; nothing imports sims; a core import of hwsim pulls in no torch, amaranth or cocotb."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"hwsim", "mapping", "rtl", "quant", "sims"}
ALLOWED = {
    "hwsim": set(),
    "mapping": {"hwsim"},
    "rtl": {"hwsim"},
    "quant": {"hwsim"},
    "sims": {"hwsim", "mapping", "rtl", "quant"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    bad = []
    for f in sorted((ROOT / package).rglob("*.py")):
        for dep in imported_packages(f) - ALLOWED[package] - {package}:
            bad.append(f"{f.relative_to(ROOT)} imports {dep}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_core_import_is_light() -> None:
    code = ("import sys, hwsim, hwsim.golden, hwsim.engine; "
            "heavy = [m for m in ('torch', 'amaranth', 'cocotb', 'dask', 'matplotlib') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
