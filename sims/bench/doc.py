"""Benchmarks write their tables into sections of docs/*.md without touching the other sections."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["replace_section"]


def replace_section(path: Path, heading: str, text: str, title: str = "# Performance") -> None:
    """Replace the ``## heading`` section of ``path`` (up to the next ``## `` heading) with ``text``,
    which starts with that heading; append it when absent, create the file when missing."""
    if not text.startswith(f"## {heading}\n"):
        raise ValueError(f"replace_section.text must start with '## {heading}', not {text[:40]!r}")
    old = path.read_text() if path.exists() else f"{title}\n"
    pat = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    body = text.rstrip("\n") + "\n"
    new = pat.sub(lambda _: body + "\n", old) if pat.search(old) else old.rstrip("\n") + "\n\n" + body
    path.write_text(new.rstrip("\n") + "\n")
