"""Check every internal link of the built HTML site: the file exists, and so does the anchor.

Usage: python docs/check_internal_links.py docs/_build/html

Reads each ``.html`` file under the folder, follows every ``href`` and ``src`` that is not
a web address (``http:``, ``https:``, ``mailto:``, ``data:`` ...), and reports links to
missing files and to ``#anchors`` that no element of the target page carries. It never
touches the network. Exit status 1 when anything is broken.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The ids (anchors) of an HTML page and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append((tag, attrs[name]))


def parse(path, cache):
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def pages(root):
    """The site's pages; _static holds the theme's templates and MathJax's files."""
    return [path for path in root.rglob("*.html") if "_static" not in path.relative_to(root).parts]


def broken_links(root):
    """(page, link, reason) for every internal link of the site under ``root`` that is broken."""
    root = Path(root).resolve()
    cache = {}
    problems = []
    for page_path in sorted(pages(root)):
        for tag, link in parse(page_path, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:  # http:, mailto:, data:, //host: not ours
                continue
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append((page_path, link, "no such file"))
            elif parts.fragment and target.suffix == ".html" and tag == "a":
                if unquote(parts.fragment) not in parse(target, cache).ids:
                    problems.append((page_path, link, "no such anchor"))
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = Path(argv[0])
    problems = broken_links(root)
    for page, link, reason in problems:
        print(f"{page.relative_to(root.resolve())}: {link}: {reason}")
    n_pages = len(pages(root.resolve()))
    print(f"{n_pages} pages, {len(problems)} broken internal links")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
