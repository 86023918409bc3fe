"""Readers for MovieLens and Netflix prize ratings files: which files and formats, read in
blocks (``_parsing.py``) and cached by content (``_cache.py``)."""

import re
from pathlib import Path

from . import _cache, _parsing
from ._mapping import ratings_to_csr

FORMATS = {
    "tab": "user<TAB>item<TAB>rating[<TAB>timestamp] lines (MovieLens-100k u.data)",
    "dat": "user::item::rating[::timestamp] lines (MovieLens-1M/10M ratings.dat)",
    "csv": "user,item,rating[,timestamp] lines, optional header (MovieLens ratings.csv)",
    "netflix": "'movie:' lines, each followed by user,rating[,date] lines (Netflix prize)",
}
_NETFLIX_NAME = re.compile(r"(mv_\d+|combined_data_\d+)\.txt$")


def read_ratings(path, *, format=None, columns=None, cache=True, progress=False):
    """Read the (user id, item id, rating) columns of ratings files.

    The text is read in blocks of 16 MB, so memory stays close to the 12
    bytes per rating of the result. Every line must be a rating line: a
    line with missing or extra fields, an id that is not an integer, a
    rating that is not a finite number or overflows float32, or bytes that
    are not UTF-8 raise a ValueError naming the file and line. Blank lines
    are skipped; a UTF-8 byte-order mark at the start of a file is ignored.

    Parameters
    ----------
    path : path-like or list of path-like
        A ratings file, a list of files read one after the other, or a folder
        holding the ratings files of one dataset: Netflix prize ``mv_*.txt``
        files (directly or in ``training_set/``), ``combined_data_*.txt``
        files, or a MovieLens ``ratings.csv``, ``ratings.dat`` or ``u.data``.
        A folder holding more than one of these is refused: pass the files
        to read as a list. A pipe (``/dev/stdin``) is read once, without the
        cache, and needs ``format``.
    format : {"tab", "dat", "csv", "netflix"}, default=None
        The file format; None guesses it from the file name, then from the
        first line:

        - "tab": ``user<TAB>item<TAB>rating[<TAB>timestamp]`` (MovieLens-100k
          ``u.data``);
        - "dat": ``user::item::rating[::timestamp]`` (MovieLens-1M/10M
          ``ratings.dat``);
        - "csv": ``user,item,rating[,timestamp]`` (MovieLens ``ratings.csv``);
        - "netflix": a ``movie:`` line, then ``user,rating[,date]`` lines for
          that movie (Netflix prize ``mv_*.txt`` and ``combined_data_*.txt``).

        User and item ids must be integers; ratings may be decimals. Every
        line of a file has the same number of fields.
    columns : tuple of (user, item, rating), default=None
        Where the user ids, item ids and ratings are, in the "tab", "dat" and
        "csv" formats: column names of the header line, or 0-based column
        positions. By default a first line none of whose fields is a number
        is a header, and its names decide the columns: ``userId``,
        ``user_id`` or ``user`` for users, ``movieId``, ``item_id``,
        ``item`` or ``movie`` for items, ``rating`` for ratings (any case;
        other columns, such as a timestamp or the index column pandas
        writes, are counted but not read). Without a header, the columns are
        user, item, rating, then at most one more (a timestamp).
    cache : bool or path-like, default=True
        Save the parsed columns as ``.npy`` files and memory-map them on the
        next call for files of the same contents (compared by a SHA-256 hash
        of their bytes, which takes a few percent of the time parsing
        takes). True uses ``$FUNKSGD_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/funksgd``, else ``~/.cache/funksgd``; a path uses
        that folder; False disables it. Entries are written atomically; a
        damaged or unreadable entry is parsed again; the entries of files
        that changed since are removed, and the least recently used go
        beyond 16 entries or 16 GiB.
    progress : bool, default=False
        Show a progress bar while parsing, when tqdm is installed.

    Returns
    -------
    users : ndarray of shape (n_ratings,)
        User id of each rating (int32 when the ids fit, else int64).
    items : ndarray of shape (n_ratings,)
        Item id of each rating.
    ratings : ndarray of shape (n_ratings,), dtype float32
        The ratings.

    See Also
    --------
    load_ratings : The same, as a CSR matrix with its id mapping.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from funksgd.datasets import read_ratings
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "u.data"
    >>> _ = path.write_text("196\\t242\\t3\\t881250949\\n186\\t302\\t3\\t891717742\\n")
    >>> users, items, ratings = read_ratings(path, cache=False)
    >>> users, items, ratings
    (array([196, 186], dtype=int32), array([242, 302], dtype=int32), array([3., 3.], dtype=float32))

    A header decides the columns; ``columns`` names them when it cannot:

    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stars.csv"
    >>> _ = path.write_text("when,stars,who,what\\n881250949,4.5,7,31\\n")
    >>> read_ratings(path, columns=("who", "what", "stars"), cache=False)
    (array([7], dtype=int32), array([31], dtype=int32), array([4.5], dtype=float32))
    """
    paths, format = _resolve(path, format)
    _check_columns(columns, format)
    cache_dir = _cache.cache_dir(cache)
    if cache_dir is None or not all(p.is_file() for p in paths):  # a pipe is read once
        return _parsing.parse_files(paths, format, columns, progress, hashing=False)[0]
    digests = [_cache.file_digest(p) for p in paths]
    entry = cache_dir / _cache.cache_key(paths, format, columns, digests)
    cached = _cache.load_entry(entry)
    if cached is not None:
        return cached
    result, read_digests = _parsing.parse_files(paths, format, columns, progress)
    if read_digests == digests:  # else a file changed while it was read: do not cache that
        _cache.save_entry(entry, result, _cache.sources(paths, format, columns))
    return result


def load_ratings(path, *, format=None, columns=None, cache=True, progress=False,
                 duplicates="raise"):  # fmt: skip
    """Read ratings files into a users x items CSR matrix and its id mapping.

    ``read_ratings`` followed by ``ratings_to_csr``; see both for the
    parameters.

    Parameters
    ----------
    path : path-like or list of path-like
        Ratings file(s) or folder; see :func:`read_ratings`.
    format : {"tab", "dat", "csv", "netflix"}, default=None
        See :func:`read_ratings`.
    columns : tuple of (user, item, rating), default=None
        Column names or positions; see :func:`read_ratings`.
    cache : bool or path-like, default=True
        See :func:`read_ratings`.
    progress : bool, default=False
        Show a progress bar while parsing, when tqdm is installed.
    duplicates : {"raise", "last", "mean"}, default="raise"
        See :func:`ratings_to_csr`.

    Returns
    -------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        float32 ratings; rows are users and columns items, both in increasing
        order of their ids.
    mapping : IdMapping
        Ids of the rows and columns.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from funksgd.datasets import load_ratings
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ratings.csv"
    >>> _ = path.write_text("userId,movieId,rating,timestamp\\n1,31,2.5,1260759144\\n"
    ...                     "1,1029,3.0,1260759179\\n7,31,4.5,1260759182\\n")
    >>> X, mapping = load_ratings(path, cache=False)
    >>> X.toarray()
    array([[2.5, 3. ],
           [4.5, 0. ]], dtype=float32)
    >>> mapping.user_ids, mapping.item_ids
    (array([1, 7], dtype=int32), array([  31, 1029], dtype=int32))
    """
    users, items, ratings = read_ratings(
        path, format=format, columns=columns, cache=cache, progress=progress
    )
    return ratings_to_csr(users, items, ratings, duplicates=duplicates)


# ----------------------------------------------------------------------------- files
def _resolve(path, format):
    """The list of files to read and their format."""
    if format is not None and format not in FORMATS:
        raise ValueError(
            f"format must be one of {', '.join(map(repr, FORMATS))} or None, got {format!r}."
        )
    if isinstance(path, (list, tuple)):
        if not path:
            raise ValueError("no ratings files given.")
        paths = [Path(p) for p in path]
    else:
        paths = _files_in(Path(path))
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"no such ratings file: {p}")
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a folder; in a list give ratings files only.")
    formats = {format or _guess_format(p) for p in paths}
    if len(formats) > 1:
        raise ValueError(f"the files given have different formats: {sorted(formats)}.")
    return paths, formats.pop()


_FOLDER_PATTERNS = ["mv_*.txt", "training_set/mv_*.txt", "combined_data_*.txt", "ratings.csv",
                    "ratings.dat", "u.data"]  # fmt: skip


def _files_in(path):
    """A file as is; in a folder, the ratings files of the one known dataset it holds."""
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"no such ratings file or folder: {path}")
        return [path]
    found = {pattern: sorted(p for p in path.glob(pattern) if p.is_file())
             for pattern in _FOLDER_PATTERNS}  # fmt: skip
    found = {pattern: files for pattern, files in found.items() if files}
    if len(found) > 1:
        kinds = "; ".join(f"{len(files)} {pattern}" for pattern, files in found.items())
        raise ValueError(
            f"the folder {path} holds ratings files of more than one kind ({kinds}): reading "
            "some would silently leave the others out. Pass the files to read as a list."
        )
    if not found:
        raise FileNotFoundError(
            f"found no ratings files in the folder {path}: expected mv_*.txt, "
            "combined_data_*.txt, ratings.csv, ratings.dat or u.data."
        )
    return found.popitem()[1]


def _guess_format(path):
    """Format from the file name, else from the first non-blank line."""
    name = path.name
    if _NETFLIX_NAME.search(name):
        return "netflix"
    if name.endswith(".dat"):
        return "dat"
    if name.endswith(".csv"):
        return "csv"
    if name == "u.data" or re.fullmatch(r"u[a-z0-9]*\.(base|test)", name):
        return "tab"
    if not path.is_file():
        raise ValueError(
            f"cannot tell the format of {path} from its name, and it is not a regular file "
            "(a pipe?) that can be read twice: give the format (format= in Python, --format "
            "on the command line)."
        )
    with open(path, "rb") as f:
        line = next((line for line in f if line.strip()), b"").strip()
    line = line.removeprefix(_parsing.BOM)
    if re.fullmatch(rb"\d+:", line):
        return "netflix"
    for format in ["dat", "tab", "csv"]:
        if _parsing.DELIMITERS[format] in line:
            return format
    raise ValueError(
        f"cannot tell the format of {path} from its name or first line {line[:60]!r}; "
        "give the format (format= in Python, --format on the command line): "
        + "; ".join(f"{k!r} for {v}" for k, v in FORMATS.items())
    )


def _check_columns(columns, format):
    if columns is None:
        return
    if format == "netflix":
        raise ValueError("columns= applies to the 'tab', 'dat' and 'csv' formats, not 'netflix'.")
    ok = isinstance(columns, (list, tuple)) and len(columns) == 3
    kinds = {type(c) for c in columns} if ok else set()
    ok = ok and (kinds == {str} or (kinds == {int} and min(columns) >= 0))
    if not ok or len(set(columns)) < 3:
        raise ValueError(
            "columns must name the (user, item, rating) columns: three distinct header "
            f"names, or three distinct 0-based positions; got {columns!r}."
        )
