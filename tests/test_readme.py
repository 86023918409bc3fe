"""The code in README.md and in the guide docs/ratings_files.rst runs, and prints what they say."""

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown):
    """The ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def test_python_blocks_are_found():
    blocks = python_blocks("text\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a\n```\n")
    assert blocks == ["a = 1\n", "b = a\n"]


def test_readme_snippets_run(tmp_path, monkeypatch):
    """Each snippet runs after the ones before it, as a reader would paste them."""
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    namespace = {"__name__": "__readme__"}
    for number, block in enumerate(blocks, start=1):
        code = compile(block, f"README.md python block {number}", "exec")
        exec(code, namespace)  # noqa: S102 -- the README's own code, on generated data


def test_ratings_files_guide(tmp_path, monkeypatch):
    """The examples of 'From a ratings file to recommendations' give the outputs shown."""
    pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    result = doctest.testfile(
        str(ROOT / "docs" / "ratings_files.rst"),
        module_relative=False,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        raise_on_error=False,
        verbose=False,
    )
    assert result.attempted > 20
    assert result.failed == 0, "docs/ratings_files.rst: see the doctest report above"
