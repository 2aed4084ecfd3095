"""The package layering of DESIGN.md, with one import scanner: hwsim imports nothing of ours; mapping, rtl
and quant never import each other; nothing imports sims, and nothing imports a benchmark (sims.bench);
heavy third-party packages stay out of the modules that must not need them; a core import of hwsim pulls
in no torch, amaranth, cocotb, dask or matplotlib."""

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
NEVER = {  # third-party packages a module (or a whole package) must not import at module level or anywhere
    "hwsim": {"torch", "amaranth", "cocotb", "cocotb_tools", "dask", "matplotlib"},
    "rtl/params.py": {"amaranth"},
    "rtl/tools.py": {"amaranth"},
    "quant/protocol.py": {"torch"},
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, anywhere in it (full dotted names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def files(where: str) -> list[Path]:
    p = ROOT / where
    return [p] if p.suffix == ".py" else sorted(p.rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    bad = []
    for f in files(package):
        tops = {m.split(".")[0] for m in imported_modules(f)} & OURS
        for dep in tops - ALLOWED[package] - {package}:
            bad.append(f"{f.relative_to(ROOT)} imports {dep}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_nothing_imports_a_benchmark() -> None:
    bad = [f"{f.relative_to(ROOT)} imports {m}" for pkg in sorted(ALLOWED) for f in files(pkg)
           if "bench" not in f.relative_to(ROOT).parts
           for m in imported_modules(f) if m == "sims.bench" or m.startswith("sims.bench.")]
    assert not bad, bad


@pytest.mark.parametrize("where", sorted(NEVER))
def test_heavy_packages_stay_out(where: str) -> None:
    scanned = files(where)
    assert scanned, where
    bad = [f"{f.relative_to(ROOT)} imports {m}" for f in scanned for m in imported_modules(f)
           if m.split(".")[0] in NEVER[where]]
    assert not bad, bad


def test_quant_is_built_on_torch_and_hwsim() -> None:
    tops = {m.split(".")[0] for f in files("quant") for m in imported_modules(f)}
    assert {"torch", "hwsim"} <= tops


def test_core_import_is_light() -> None:
    code = ("import sys, hwsim, hwsim.golden, hwsim.engine; "
            "heavy = [m for m in ('torch', 'amaranth', 'cocotb', 'dask', 'matplotlib') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
