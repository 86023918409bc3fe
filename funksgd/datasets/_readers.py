"""Readers for MovieLens and Netflix prize ratings files, streamed in blocks, with a cache.

Each block of text is parsed by NumPy's C ``loadtxt``, then checked for what ``loadtxt``
lets through (extra fields, bytes that are not UTF-8, ratings that overflow float32); only
when that fails is the block re-read line by line in Python, to name the file and line at
fault. Parsed columns can be saved as ``.npy`` files, under a key made of a SHA-256 hash
of the files' bytes, and memory-mapped on the next read of the same contents.
"""

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._mapping import ratings_to_csr

FORMATS = {
    "tab": "user<TAB>item<TAB>rating[<TAB>timestamp] lines (MovieLens-100k u.data)",
    "dat": "user::item::rating[::timestamp] lines (MovieLens-1M/10M ratings.dat)",
    "csv": "user,item,rating[,timestamp] lines, optional header (MovieLens ratings.csv)",
    "netflix": "'movie:' lines, each followed by user,rating[,date] lines (Netflix prize)",
}
_DELIMITERS = {"tab": b"\t", "dat": b"::", "csv": b",", "netflix": b","}
# Header names of the user, item and rating columns (compared in lower case).
HEADER_NAMES = {
    "user": ("userid", "user_id", "user", "customerid", "customer_id"),
    "item": ("movieid", "movie_id", "movie", "itemid", "item_id", "item"),
    "rating": ("rating", "ratings", "stars"),
}
_BLOCK_BYTES = 1 << 24
_BOM = b"\xef\xbb\xbf"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(rb"[ \t]*[+-]?[0-9]+[ \t]*")
_DECIMAL = re.compile(rb"[ \t]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*")
_NETFLIX_NAME = re.compile(r"(mv_\d+|combined_data_\d+)\.txt$")
# The cache: entries are folders named after the files and a hash of their bytes.
_CACHE_VERSION = 2
_CACHE_MAX_ENTRIES = 16
_CACHE_MAX_BYTES = 16 * 2**30
_HASH_CHUNK = 1 << 24


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
    cache_dir = _cache_dir(cache)
    if cache_dir is None or not all(p.is_file() for p in paths):  # a pipe is read once
        return _parse_files(paths, format, columns, progress, hashing=False)[0]
    digests = [_file_digest(p) for p in paths]
    entry = cache_dir / _cache_key(paths, format, columns, digests)
    cached = _load_cache(entry)
    if cached is not None:
        return cached
    result, read_digests = _parse_files(paths, format, columns, progress)
    if read_digests == digests:  # else a file changed while it was read: do not cache that
        _save_cache(entry, result, _sources(paths, format, columns))
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
    line = line.removeprefix(_BOM)
    if re.fullmatch(rb"\d+:", line):
        return "netflix"
    for format in ["dat", "tab", "csv"]:
        if _DELIMITERS[format] in line:
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


# ----------------------------------------------------------------------------- parsing
_COLUMNS = ("users", "items", "ratings")


class _NoDigest:
    def update(self, data):
        pass

    def hexdigest(self):
        return None


def _parse_files(paths, format, columns, progress, hashing=True):
    """Parse every file, block by block, into three columns; also the files' digests
    (None without ``hashing``)."""
    parser = _NetflixParser() if format == "netflix" else _LineParser(format, columns)
    total_bytes = sum(p.stat().st_size for p in paths)
    bar = _progress_bar(total_bytes, paths, progress)
    result = _Columns(total_bytes)
    digests = []
    try:
        for path in paths:
            parser.start_file(path)
            digest = hashlib.sha256() if hashing else _NoDigest()
            for text, line in _text_blocks(path, bar, digest):
                result.bytes_seen += len(text)
                for block in parser.parse(text, line):
                    result.append(block)
            digests.append(digest.hexdigest())
    finally:
        bar.close()
    if result.size == 0:
        names = paths[0] if len(paths) == 1 else f"{len(paths)} files from {paths[0]} on"
        raise ValueError(f"{names} holds no ratings.")
    return result.result(), digests


def _text_blocks(path, bar, digest):
    """(bytes, number of its first line) of whole lines, about _BLOCK_BYTES at a time.

    A byte-order mark at the start of the file is left out; ``digest`` is updated with
    every byte read.
    """
    line = 1
    with open(path, "rb") as f:
        rest = f.read(len(_BOM))
        bar.update(len(rest))
        digest.update(rest)
        rest = rest.removeprefix(_BOM)
        while chunk := f.read(_BLOCK_BYTES):
            bar.update(len(chunk))
            digest.update(chunk)
            text = rest + chunk
            cut = text.rfind(b"\n") + 1
            if cut == 0:
                rest = text
                continue
            text, rest = text[:cut], text[cut:]
            yield text, line
            line += text.count(b"\n")
    if rest.strip():
        yield rest + b"\n", line


class _Columns:
    """Growing (users, items, ratings) columns, sized from the text read so far.

    Gathering the blocks at the end would hold every rating twice. Instead the columns
    are allocated once the first block tells how many bytes a line takes, with 25% to
    spare: pages never written cost no memory, and the result is a view of the filled
    part. Should the estimate fall short, the columns grow by half (a copy).
    """

    def __init__(self, total_bytes):
        self.total_bytes = total_bytes
        self.arrays = None
        self.size = 0
        self.bytes_seen = 0

    def append(self, block):
        n = len(block[2])
        if self.arrays is None:
            per_byte = n / max(self.bytes_seen, 1)
            self._allocate(int(1.25 * per_byte * self.total_bytes) + n + 1024, block)
        elif self.size + n > len(self.arrays[2]):
            self._allocate(int(1.5 * (self.size + n)), block)
        for j, values in enumerate(block):
            if j < 2 and values.dtype.itemsize > self.arrays[j].dtype.itemsize:
                self.arrays[j] = self.arrays[j].astype(values.dtype)  # ids beyond int32
            self.arrays[j][self.size : self.size + n] = values
        self.size += n

    def _allocate(self, capacity, block):
        dtypes = [block[0].dtype, block[1].dtype, np.float32]
        if self.arrays is not None:
            dtypes = [np.result_type(a, b) for a, b in zip(self.arrays, dtypes, strict=True)]
        arrays = [np.empty(capacity, dtype=dtype) for dtype in dtypes]
        for old, new in zip(self.arrays or [], arrays, strict=False):
            new[: self.size] = old[: self.size]
        self.arrays = arrays

    def result(self):
        return tuple(array[: self.size] for array in self.arrays)


def _narrow(ids):
    """int32 ids when they fit: halves the memory of the id columns."""
    if len(ids) and (ids.min() < -(2**31) or ids.max() >= 2**31):
        return ids
    return ids.astype(np.int32)


@dataclass
class _Layout:
    """Where a file's values are: its number of fields, and the user, item, rating columns."""

    n_fields: int
    usecols: tuple
    names: list  # of each field, for messages

    def expected(self, delimiter):
        return delimiter.decode().replace("\t", "<TAB>").join(self.names)


class _LineParser:
    """user<sep>item<sep>rating[<sep>more] lines (tab, dat and csv formats)."""

    def __init__(self, format, columns=None):
        self.format = format
        self.delimiter = _DELIMITERS[format]
        self.columns = columns
        self.float_ratings = False

    def start_file(self, path):
        self.path = path
        self.layout = None

    def parse(self, text, line):
        _check_utf8(text, line, self.path)
        if self.layout is None:
            text, line = self._read_layout(text, line)
            if self.layout is None:
                return []  # only blank lines so far
        if not text.strip():
            return []
        users, items, ratings = self._parse(text, line, self.layout)
        return [(_narrow(users), _narrow(items), ratings)]

    def _read_layout(self, text, line):
        """Set the file's layout from its first non-blank line; the text after a header."""
        offset = 0
        while (end := text.find(b"\n", offset)) >= 0 and not text[offset:end].strip():
            offset, line = end + 1, line + 1
        if end < 0:
            return text, line  # blank lines only (a block ends with a newline)
        first = text[offset:end]
        fields = [f.strip().strip(b"\"'").strip() for f in first.split(self.delimiter)]
        if any(_is_number(f) for f in fields):  # a rating line (or a bad one)
            self.layout = self._headerless_layout(len(fields), line)
            return text[offset:], line
        self.layout = self._header_layout([f.decode() for f in fields], line)
        return text[end + 1 :], line + 1

    def _headerless_layout(self, n_fields, line):
        if self.columns is None:  # user, item, rating[, timestamp]; others refused per line
            n_fields = min(max(n_fields, 3), 4)
            return _Layout(n_fields, (0, 1, 2), ["user", "item", "rating", "timestamp"][:n_fields])
        if isinstance(self.columns[0], str):
            raise ValueError(
                f"{self.path}, line {line}: columns={self.columns!r} names header columns, "
                "but the file has no header line; give 0-based column positions instead."
            )
        names = [f"field{j + 1}" for j in range(max(n_fields, max(self.columns) + 1))]
        for name, j in zip(("user", "item", "rating"), self.columns, strict=True):
            names[j] = name
        return _Layout(n_fields, tuple(self.columns), names)

    def _header_layout(self, names, line):
        if len(names) < 3:
            raise ValueError(
                f"{self.path}, line {line}: expected a ratings line or a header of at least 3 "
                f"columns separated by {self.delimiter.decode()!r}, got "
                f"{self.delimiter.decode().join(names)[:80]!r}: is this a {self.format!r} file?"
            )
        lower = [name.lower() for name in names]
        if self.columns is not None and isinstance(self.columns[0], int):
            usecols = tuple(self.columns)
        elif self.columns is not None:
            usecols = tuple(self._find_named(lower, name.lower(), line, names)
                            for name in self.columns)  # fmt: skip
        else:
            usecols = tuple(self._find_column(lower, kind, line, names)
                            for kind in ("user", "item", "rating"))  # fmt: skip
        if max(usecols) >= len(names):
            raise ValueError(
                f"{self.path}, line {line}: the header has {len(names)} columns, so column "
                f"{max(usecols)} of columns={self.columns!r} does not exist."
            )
        return _Layout(len(names), usecols, names)

    def _find_named(self, lower, name, line, names):
        if lower.count(name) != 1:
            how = "more than once" if lower.count(name) else "not"
            raise ValueError(
                f"{self.path}, line {line}: the column {name!r} of columns= is {how} in the "
                f"header {names!r}."
            )
        return lower.index(name)

    def _find_column(self, lower, kind, line, names):
        found = [j for j, name in enumerate(lower) if name in HEADER_NAMES[kind]]
        if len(found) != 1:
            how = "several" if found else "no"
            raise ValueError(
                f"{self.path}, line {line}: the header {names!r} has {how} {kind} column "
                f"(names read as {kind} ids: {', '.join(HEADER_NAMES[kind])}). Name the "
                "columns with columns=(user, item, rating) (--columns on the command line)."
            )
        return found[0]

    def _parse(self, text, line, layout):
        """Columns of ``text``, or a ValueError naming its first bad line."""
        try:
            if self.format == "dat" and b"\t" in text:
                raise ValueError("a tab in a '::' file")
            return self._columns(text, layout)
        except ValueError:
            return _parse_lines(text, line, self.path, self.delimiter, layout)

    def _columns(self, text, layout):
        """Columns of ``text`` by loadtxt; ValueError if a line is not a rating line."""
        if self.format == "dat":
            text = text.replace(b"::", b"\t")
        delimiter = b"\t" if self.format == "dat" else self.delimiter
        usecols = layout.usecols
        ids = [np.int64] * (len(usecols) - 1)
        values = None
        if not self.float_ratings:
            try:
                values = _loadtxt(text, delimiter, usecols, [*ids, np.int64])
            except ValueError:
                self.float_ratings = True  # decimals (3.5 stars)? retry as floats
        if values is None:
            values = _loadtxt(text, delimiter, usecols, [*ids, np.float64])
        _check_field_counts(text, delimiter, layout, len(values))
        columns = [values[name] for name in values.dtype.names]
        ratings = columns[-1]
        if not (np.abs(ratings) <= _FLOAT32_MAX).all():  # NaN, inf, or beyond float32
            raise ValueError("a rating is not finite in float32")
        return (*columns[:-1], ratings.astype(np.float32))


class _NetflixParser(_LineParser):
    """``movie:`` lines, each followed by ``user,rating[,date]`` lines of that movie."""

    def __init__(self):
        super().__init__("netflix")

    def start_file(self, path):
        super().start_file(path)
        self.movie = None

    def parse(self, text, line):
        _check_utf8(text, line, self.path)
        parts = self._split(text, line)
        if not parts:
            return []
        if self.layout is None:
            first = next(raw for raw in parts[0][0].split(b"\n") if raw.strip())
            n_fields = 2 if first.count(b",") < 2 else 3
            self.layout = _Layout(n_fields, (0, 1), ["user", "rating", "date"][:n_fields])
        # One loadtxt call for all the movies of the block; each movie's rows are counted by
        # its newlines, unless a blank line breaks the count: then parse movie by movie.
        counts = [part.count(b"\n") for part, _, _ in parts]
        try:
            users, ratings = self._columns(b"".join(p for p, _, _ in parts), self.layout)
        except ValueError:
            users = None
        if users is None or len(users) != sum(counts):
            return [self._movie_block(*part) for part in parts]
        movies = np.repeat(np.array([movie for _, _, movie in parts], dtype=np.int64), counts)
        return [(_narrow(users), _narrow(movies), ratings)]

    def _split(self, text, line):
        """(ratings text, its first line number, movie id) for each movie in ``text``."""
        parts = []
        start, start_line = 0, line
        # Colons appear only on movie lines (dates are 2005-09-06): split the text there.
        colon = text.find(b":")
        while colon >= 0:
            begin = text.rfind(b"\n", 0, colon) + 1
            end = text.find(b"\n", colon)  # blocks end with a newline
            movie_line = start_line + text.count(b"\n", start, begin)
            parts += self._part(text[start:begin], start_line)
            movie, _, rest = text[begin:end].partition(b":")
            if not _is_integer(movie) or rest.strip():
                raise ValueError(
                    f"{self.path}, line {movie_line}: expected a 'movie id:' line, got "
                    f"{_shown(text[begin:end])!r}."
                )
            self.movie = int(movie)
            start, start_line = end + 1, movie_line + 1
            colon = text.find(b":", start)
        return parts + self._part(text[start:], start_line)

    def _part(self, part, first):
        if not part.strip():
            return []
        if self.movie is None:
            raise ValueError(
                f"{self.path}, line {first}: expected a 'movie id:' line before the ratings "
                "(Netflix prize format), or pass another format."
            )
        return [(part, first, self.movie)]

    def _movie_block(self, part, first, movie):
        users, ratings = self._parse(part, first, self.layout)
        movies = np.full(len(users), movie, dtype=np.int64)
        return _narrow(users), _narrow(movies), ratings


def _loadtxt(text, delimiter, usecols, dtypes):
    dtype = [(f"c{j}", dtype) for j, dtype in enumerate(dtypes)]
    return np.loadtxt(io.BytesIO(text), delimiter=delimiter.decode(), usecols=usecols,
                      dtype=dtype, comments=None, ndmin=1)  # fmt: skip


def _check_field_counts(text, delimiter, layout, n_rows):
    """ValueError unless every non-blank line has ``layout.n_fields`` fields (loadtxt reads
    only the columns asked for, and would accept extra fields)."""
    n_marks = layout.n_fields - 1
    if max(layout.usecols) == n_marks and text.count(delimiter) == n_marks * n_rows:
        return  # every line loadtxt read has at least n_marks delimiters, so none has more
    codes = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(codes == ord("\n"))
    marks = np.flatnonzero(codes == delimiter[0])
    if len(marks) != n_marks * n_rows:
        raise ValueError("a line has another number of fields")
    if len(ends) == n_rows:  # no blank line: line j holds delimiters j * n_marks onwards
        marks = marks.reshape(n_rows, n_marks)
        if (marks[:, -1] < ends).all() and (marks[1:, 0] > ends[:-1]).all():
            return
        raise ValueError("a line has another number of fields")
    counts = np.diff(np.searchsorted(marks, ends), prepend=0)
    if not np.all((counts == n_marks) | (counts == 0)):
        raise ValueError("a line has another number of fields")


def _check_utf8(text, line, path):
    if text.isascii():
        return
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as error:
        number = line + text.count(b"\n", 0, error.start)
        raise ValueError(
            f"{path}, line {number}: byte 0x{text[error.start]:02x} is not UTF-8 text, so this "
            "is not a ratings line (is it a binary or compressed file?)."
        ) from None


def _is_number(field):
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_integer(field):
    return _INTEGER.fullmatch(field) is not None and _INT64[0] <= int(field) <= _INT64[1]


def _shown(raw):
    shown = raw.strip().decode("utf-8", "replace")
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _parse_lines(text, line, path, delimiter, layout):
    """Columns of ``text`` read line by line in Python, or a ValueError naming a bad line."""
    n_ids = len(layout.usecols) - 1
    rows = []
    for number, raw in enumerate(text.split(b"\n"), start=line):
        if not raw.strip():
            continue
        fields = raw.rstrip(b"\r").split(delimiter)
        problem = _line_problem(fields, layout)
        if problem:
            raise ValueError(
                f"{path}, line {number}: expected {layout.expected(delimiter)!r}, got "
                f"{_shown(raw)!r} ({problem})."
            )
        rows.append([fields[j] for j in layout.usecols])
    ids = np.array([[int(v) for v in row[:n_ids]] for row in rows], dtype=np.int64)
    ids = ids.reshape(len(rows), n_ids)
    ratings = np.array([float(row[-1]) for row in rows], dtype=np.float32)
    return (*ids.T, ratings)


def _line_problem(fields, layout):
    """What is wrong with the fields of one line, or None."""
    if len(fields) != layout.n_fields:
        return f"{len(fields)} fields instead of {layout.n_fields}"
    if max(layout.usecols) >= len(fields):
        return f"no column {max(layout.usecols)}"
    *ids, rating = (fields[j] for j in layout.usecols)
    for name, value in zip(("user", "item"), ids, strict=False):
        if not _is_integer(value):
            return f"the {name} id is not an integer"
    if not _DECIMAL.fullmatch(rating):
        return "the rating is not a number"
    if not abs(float(rating)) <= _FLOAT32_MAX:
        return "the rating overflows float32"
    return None


# ----------------------------------------------------------------------------- progress
class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total, paths, enabled):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    name = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"reading {name}", file=sys.stderr)


# ----------------------------------------------------------------------------- cache
def _cache_dir(cache):
    if cache is False or cache is None:
        return None
    if cache is not True:
        return Path(cache)
    if "FUNKSGD_CACHE_DIR" in os.environ:
        return Path(os.environ["FUNKSGD_CACHE_DIR"])
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "funksgd"


def _file_digest(path):
    """SHA-256 of the file's bytes (about 1 GB/s: see benchmarks/README.md)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_key(paths, format, columns, digests):
    """A folder name that changes when the bytes of any file change (not their path)."""
    key = json.dumps([_CACHE_VERSION, format, columns, digests])
    return f"{paths[0].stem}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _sources(paths, format, columns):
    """What an entry was read from: a newer entry of the same sources replaces it."""
    return {"paths": [str(p.resolve()) for p in paths], "format": format, "columns": columns}


def _load_cache(entry):
    """The columns of a cache entry, memory-mapped; None if absent, damaged or unreadable."""
    if not entry.is_dir():
        return None
    try:
        columns = tuple(np.load(entry / f"{name}.npy", mmap_mode="r") for name in _COLUMNS)
        users, items, ratings = columns
        if not (
            users.ndim == items.ndim == ratings.ndim == 1
            and len(users) == len(items) == len(ratings) > 0
            and users.dtype.kind == items.dtype.kind == "i"
            and ratings.dtype == np.float32
        ):
            raise ValueError("not the columns of a ratings file")
    except (OSError, ValueError, EOFError):  # truncated, another user's, half deleted...
        shutil.rmtree(entry, ignore_errors=True)  # parsed again, and written anew if it went
        return None
    try:
        os.utime(entry)  # recently used: pruned last
    except OSError:
        pass
    return columns


def _save_cache(entry, columns, sources):
    """Write the columns to ``entry`` atomically, then prune; a cache that cannot be
    written is skipped."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    except OSError:
        return
    try:
        for name, values in zip(_COLUMNS, columns, strict=True):
            np.save(tmp / f"{name}.npy", values)
        (tmp / "sources.json").write_text(json.dumps(sources))
        os.replace(tmp, entry)
    except OSError:  # another process won the race, a damaged entry remains, disk full
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune_cache(entry, sources)


def _prune_cache(keep, sources):
    """Remove the entries of older versions of the same files, then the least recently
    used beyond _CACHE_MAX_ENTRIES or _CACHE_MAX_BYTES (never ``keep``)."""
    entries = []
    try:
        children = list(keep.parent.iterdir())
    except OSError:
        return
    for child in children:
        try:
            if child.name.startswith(".partial-"):
                if time.time() - child.stat().st_mtime > 86400:  # a crashed writer's
                    shutil.rmtree(child, ignore_errors=True)
                continue
            if child == keep or not (child / "sources.json").is_file():
                continue
            if json.loads((child / "sources.json").read_text()) == sources:
                shutil.rmtree(child, ignore_errors=True)  # the same files, since changed
                continue
            size = sum(f.stat().st_size for f in child.iterdir())
            entries.append((child.stat().st_mtime, size, child))
        except (OSError, ValueError):
            continue
    entries.sort(reverse=True)  # newest first
    try:
        total = sum(f.stat().st_size for f in keep.iterdir())
    except OSError:
        total = 0
    for count, (_, size, child) in enumerate(entries, start=2):
        total += size
        if count > _CACHE_MAX_ENTRIES or total > _CACHE_MAX_BYTES:
            shutil.rmtree(child, ignore_errors=True)


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
    >>> import tempfile, pathlib
    >>> from funksgd.datasets import read_item_titles
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movies.csv"
    >>> _ = path.write_text('movieId,title,genres\\n1,Toy Story (1995),Animation\\n'
    ...                     '11,"American President, The (1995)",Comedy|Drama|Romance\\n')
    >>> read_item_titles(path)
    {1: 'Toy Story (1995)', 11: 'American President, The (1995)'}
    """
    path = Path(path)
    raw = path.read_bytes().removeprefix(_BOM)
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
        if len(row) < 2 or not _is_integer(row[0].encode()):
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
