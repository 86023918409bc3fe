"""Item titles from MovieLens and Netflix prize movie files."""

import re
from pathlib import Path

from . import _parsing

# ----------------------------------------------------------------------------- titles
_TITLE_HEADERS = ("movieid", "itemid", "item_id", "movie_id", "id")


def read_item_titles(path):
    """Item id -> title, from a MovieLens or Netflix prize movie file.

    The file is UTF-8, or else Latin-1 (MovieLens-100k and the Netflix prize
    titles are); lines end at ``\\n`` (a ``\\r`` before it is dropped).
    Every non-blank line must hold an integer id and a title: anything else,
    an unterminated quote among them, raises a ValueError naming the file and
    line.

    Parameters
    ----------
    path : path-like
        MovieLens-100k ``u.item`` (``id|title|...``), MovieLens-1M/10M
        ``movies.dat`` (``id::title::genres``), MovieLens ``movies.csv``
        (``movieId,title,genres``, with or without its header) or the Netflix
        prize ``movie_titles.txt`` (``id,year,title``, the year a number or
        ``NULL``).

    Returns
    -------
    titles : dict
        Title of each integer item id.

    Examples
    --------
    A quoted title may hold the delimiter:

    >>> from pathlib import Path
    >>> from tempfile import mkdtemp
    >>> from funksgd.datasets import read_item_titles
    >>> lines = ["movieId,title,genres", "1,Toy Story (1995),Animation",
    ...          '11,"American President, The (1995)",Comedy|Drama|Romance']
    >>> path = Path(mkdtemp(), "movies.csv")
    >>> path.write_text("\\n".join(lines) + "\\n", encoding="utf-8") > 0
    True
    >>> read_item_titles(path)
    {1: 'Toy Story (1995)', 11: 'American President, The (1995)'}
    """
    path = Path(path)
    raw = path.read_bytes().removeprefix(_parsing.BOM)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # MovieLens-100k/1M and Netflix titles are Latin-1
        text = raw.decode("latin-1")
    # split on \n only: str.splitlines would also split at Latin-1's 0x85, \x1c, \x0c...
    lines = [(number, line.removesuffix("\r"))
             for number, line in enumerate(text.split("\n"), start=1) if line.strip()]  # fmt: skip
    if not lines:
        return {}
    first = lines[0][1]
    if re.split(r"::|\||,", first)[0].strip().strip('"').lower() in _TITLE_HEADERS:
        lines = lines[1:]  # a header
    if not lines:
        return {}
    split = _title_splitter(path, lines[0][1])
    titles = {}
    for number, line in lines:
        row = split(line, number)
        if len(row) < 2 or not _parsing.is_integer(row[0].encode()):
            raise ValueError(
                f"{path}, line {number}: expected 'item id' then the title, got {line[:80]!r}."
            )
        titles[int(row[0])] = row[1].strip()
    return titles


def _title_splitter(path, first):
    """A function (line, number) -> fields, for the format of the first line."""
    after_id = re.match(r"\s*\d+\s*(::|\||,)?", first)
    delimiter = after_id.group(1) if after_id else None  # what follows the first id
    if delimiter in ("::", "|"):
        return lambda line, number: line.split(delimiter)
    fields = first.split(",", 2)
    if path.name != "movies.csv" and len(fields) == 3 and re.fullmatch(r"\d{4}|NULL", fields[1]):

        def netflix(line, number):  # id,year,title: the title may hold commas
            fields = line.split(",", 2)
            if len(fields) < 3 or not re.fullmatch(r"\d{4}|NULL", fields[1]):
                raise ValueError(f"{path}, line {number}: expected 'id,year,title', got "
                                 f"{line[:80]!r}.")  # fmt: skip
            return [fields[0], fields[2]]

        return netflix

    import csv

    def movies_csv(line, number):  # movieId,title,genres with quoted titles
        try:
            return next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration) as error:
            raise ValueError(
                f"{path}, line {number}: {error} (an unterminated quote?) in {line[:80]!r}."
            ) from None

    return movies_csv
