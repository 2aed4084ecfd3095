"""Benchmarks replace only their own section of a shared Markdown file."""

from pathlib import Path

import pytest

from sims.bench.doc import replace_section


def test_replace_append_and_keep_others(tmp_path: Path) -> None:
    p = tmp_path / "perf.md"
    replace_section(p, "A", "## A\none\n")
    replace_section(p, "B", "## B\ntwo\n")
    replace_section(p, "A", "## A\nthree\n")
    text = p.read_text()
    assert text == "# Performance\n\n## A\nthree\n\n## B\ntwo\n"
    with pytest.raises(ValueError, match=r"^replace_section\.text must start with '## C', not '## D\\n'$"):
        replace_section(p, "C", "## D\n")
