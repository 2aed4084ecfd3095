"""Writing results so that a failing run never leaves a half-written file, or a changed one, behind.

Commands check every output path first (:func:`check_output_path`: not a directory, a known suffix),
collect what they produce in an :class:`Outputs` and write it all at the end: each file goes to a
temporary file beside its target and is renamed into place only once every file has been produced, so
existing files are either all replaced or all left as they were. Files get the mode the user's umask
gives (``0o666 & ~umask``), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_write_bytes", "check_output_path", "check_output_dir", "Outputs",
           "strict_json", "OutputError"]


class OutputError(ValueError):
    """An output path that cannot be written (a directory, a wrong suffix); raised before any work."""


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _temp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _umask_mode())
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text to a temporary file beside ``path`` and rename it into place."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def check_output_path(path: str | Path, option: str, suffixes: Sequence[str] | None = None) -> Path:
    """``path`` as an output file of ``option``: refused if it is a directory, if a parent is a file, or if
    its suffix is not among ``suffixes``."""
    p = Path(path)
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise OutputError(f"{option} must be a file path, not the directory {str(path)!r}")
    if suffixes is not None and p.suffix not in suffixes:
        raise OutputError(f"{option} must end in one of {', '.join(suffixes)}, not {str(path)!r}")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option}: {str(parent)!r} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"{option}: directory {str(parent)!r} is not writable")
            break
    return p


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` as an output directory: refused if it exists as a file (or a parent is one)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} must be a directory, not the file {str(path)!r}")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option}: {str(parent)!r} is a file, not a directory")
            break
    return p


def strict_json(text: str, what: str) -> str:
    """``text`` if it is JSON without ``NaN``/``Infinity`` (which strict parsers reject), else a one-line
    ``ValueError`` naming ``what``."""
    def refuse(token: str) -> None:
        raise ValueError(f"{what}: the result holds a non-finite number ({token}), which strict JSON cannot "
                         "carry; check the inputs for infinite or NaN values")
    json.loads(text, parse_constant=refuse)
    return text


class Outputs:
    """Files a command produces, written together at :meth:`commit` (see the module docstring)."""

    def __init__(self) -> None:
        self._items: list[tuple[Path, Callable[[Path], object]]] = []

    def text(self, path: str | Path, text: str) -> None:
        data = text.encode("utf-8")
        self._items.append((Path(path), lambda tmp: tmp.write_bytes(data)))

    def data(self, path: str | Path, data: bytes) -> None:
        self._items.append((Path(path), lambda tmp: tmp.write_bytes(data)))

    def produced_by(self, path: str | Path, writer: Callable[[Path], object]) -> None:
        """``writer(tmp)`` writes the file at ``tmp`` (same directory and suffix as ``path``)."""
        self._items.append((Path(path), writer))

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self._items]

    def commit(self) -> None:
        """Produce every file under a temporary name, then rename them all into place."""
        mode = _umask_mode()
        temps: list[tuple[Path, Path]] = []
        try:
            for path, writer in self._items:
                fd, name = _temp_beside(path)
                os.close(fd)
                tmp = Path(name)
                temps.append((tmp, path))
                writer(tmp)
                os.chmod(tmp, mode)
            for tmp, path in temps:
                os.replace(tmp, path)
            temps.clear()
        finally:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
        self._items.clear()
