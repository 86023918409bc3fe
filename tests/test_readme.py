"""The code in README.md and in the guide docs/ratings_files.rst runs, and prints what they say."""

import doctest
import re
from pathlib import Path

import pytest

from funksgd.datasets import make_ratings

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown):
    """The ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def test_python_blocks_are_found():
    blocks = python_blocks("text\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a\n```\n")
    assert blocks == ["a = 1\n", "b = a\n"]


def write_fake_ml100k(folder):
    """u.data and u.item shaped like MovieLens-100k's, from generated ratings."""
    folder.mkdir()
    coo = make_ratings(n_users=943, n_items=1682, n_ratings=100_000, random_state=0).tocoo()
    lines = [
        f"{user + 1}\t{item + 1}\t{rating:g}\t881250949"
        for user, item, rating in zip(coo.row, coo.col, coo.data, strict=True)
    ]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    titles = [f"{item}|Movie {item} (1995)|01-Jan-1995||" for item in range(1, 1683)]
    (folder / "u.item").write_text("\n".join(titles) + "\n", encoding="latin-1")


def test_readme_snippets_run(tmp_path, monkeypatch, capsys):
    """Each snippet runs after the ones before it, as a reader would paste them."""
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4
    write_fake_ml100k(tmp_path / "ml-100k")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    namespace = {"__name__": "__readme__"}
    for number, block in enumerate(blocks, start=1):
        code = compile(block, f"README.md python block {number}", "exec")
        exec(code, namespace)  # noqa: S102 -- the README's own code, on generated data
    printed = capsys.readouterr().out
    funksgd_rmse = float(printed.split("FunkSVD RMSE", 1)[1].split()[0])
    baseline_rmse = float(printed.split("baseline RMSE", 1)[1].split()[0])
    assert 0.5 < funksgd_rmse < baseline_rmse - 0.05  # the generated ratings' noise is 0.5
    assert "Movie " in printed  # titles of the recommended items


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


def test_internal_link_checker_finds_broken_links(tmp_path):
    """docs/check_internal_links.py, which CI runs on the built site, reports what is broken."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "check_internal_links", ROOT / "docs" / "check_internal_links.py"
    )
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">bad anchor</a>'
        '<a href="missing.html">bad file</a> <a href="https://example.org/x">web</a>'
        '<img src="sub/../index.html"> <a href="#top">self</a> <p id="top"></p>'
    )
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">x</h1><a href="../">up</a>')
    problems = [(page.name, link, reason) for page, link, reason in checker.broken_links(tmp_path)]
    assert problems == [
        ("index.html", "sub/page.html#gone", "no such anchor"),
        ("index.html", "missing.html", "no such file"),
    ]
    assert checker.main([str(tmp_path)]) == 1
    (tmp_path / "index.html").write_text('<a href="sub/page.html#here">ok</a>')
    assert checker.main([str(tmp_path)]) == 0
