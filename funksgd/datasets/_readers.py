"""Readers for MovieLens and Netflix prize ratings files, streamed in blocks, with a cache.

Each block of text is parsed by NumPy's C ``loadtxt``; only when that fails is the block
re-read line by line in Python, to name the file and line at fault. Parsed columns can be
saved as ``.npy`` files and memory-mapped on the next read of the same, unchanged files.
"""

import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
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
_BLOCK_BYTES = 1 << 24
_CACHE_VERSION = 1
_NETFLIX_NAME = re.compile(r"(mv_\d+|combined_data_\d+)\.txt$")


def read_ratings(path, *, format=None, cache=True, progress=False):
    """Read the (user id, item id, rating) columns of ratings files.

    The text is read in blocks of 16 MB, so memory stays close to the 12
    bytes per rating of the result. Malformed lines raise a ValueError naming
    the file and line.

    Parameters
    ----------
    path : path-like or list of path-like
        A ratings file, a list of files read one after the other, or a folder:
        one holding Netflix prize ``mv_*.txt`` files (directly or in
        ``training_set/``) or ``combined_data_*.txt`` files, or a MovieLens
        folder (``ratings.csv``, ``ratings.dat`` or ``u.data``).
    format : {"tab", "dat", "csv", "netflix"}, default=None
        The file format; None guesses it from the file name, then from the
        first line:

        - "tab": ``user<TAB>item<TAB>rating[<TAB>timestamp]`` (MovieLens-100k
          ``u.data``);
        - "dat": ``user::item::rating[::timestamp]`` (MovieLens-1M/10M
          ``ratings.dat``);
        - "csv": ``user,item,rating[,timestamp]`` with or without a header
          line (MovieLens ``ratings.csv``);
        - "netflix": a ``movie:`` line, then ``user,rating[,date]`` lines for
          that movie (Netflix prize ``mv_*.txt`` and ``combined_data_*.txt``).

        User and item ids must be integers; ratings may be decimals.
    cache : bool or path-like, default=True
        Save the parsed columns as ``.npy`` files and memory-map them on the
        next call for the same unchanged files. True uses
        ``$FUNKSGD_CACHE_DIR``, else ``$XDG_CACHE_HOME/funksgd``, else
        ``~/.cache/funksgd``; a path uses that folder; False disables it.
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
    """
    paths, format = _resolve(path, format)
    cache_dir = _cache_dir(cache)
    if cache_dir is not None:
        entry = cache_dir / _cache_key(paths, format)
        if entry.is_dir():
            return tuple(np.load(entry / f"{name}.npy", mmap_mode="r") for name in _COLUMNS)
    columns = _parse_files(paths, format, progress)
    if cache_dir is not None:
        _save_cache(entry, columns)
    return columns


def load_ratings(path, *, format=None, cache=True, progress=False, duplicates="raise"):
    """Read ratings files into a users x items CSR matrix and its id mapping.

    ``read_ratings`` followed by ``ratings_to_csr``; see both for the
    parameters.

    Parameters
    ----------
    path : path-like or list of path-like
        Ratings file(s) or folder; see :func:`read_ratings`.
    format : {"tab", "dat", "csv", "netflix"}, default=None
        See :func:`read_ratings`.
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
    users, items, ratings = read_ratings(path, format=format, cache=cache, progress=progress)
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


def _files_in(path):
    """A file as is; in a folder, the ratings files of a known dataset."""
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"no such ratings file or folder: {path}")
        return [path]
    for pattern in ["mv_*.txt", "training_set/mv_*.txt", "combined_data_*.txt"]:
        found = sorted(path.glob(pattern))
        if found:
            return found
    for name in ["ratings.csv", "ratings.dat", "u.data"]:
        if (path / name).is_file():
            return [path / name]
    raise FileNotFoundError(
        f"found no ratings files in the folder {path}: expected mv_*.txt, "
        "combined_data_*.txt, ratings.csv, ratings.dat or u.data."
    )


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
    with open(path, "rb") as f:
        line = next((line for line in f if line.strip()), b"").strip()
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


# ----------------------------------------------------------------------------- parsing
_COLUMNS = ("users", "items", "ratings")


def _parse_files(paths, format, progress):
    """Parse every file, block by block, into three columns."""
    parser = _NetflixParser() if format == "netflix" else _LineParser(format)
    total_bytes = sum(p.stat().st_size for p in paths)
    bar = _progress_bar(total_bytes, paths, progress)
    columns = _Columns(total_bytes)
    try:
        for path in paths:
            parser.start_file(path)
            for text, line in _text_blocks(path, bar):
                columns.bytes_seen += len(text)
                for block in parser.parse(text, line):
                    columns.append(block)
    finally:
        bar.close()
    if columns.size == 0:
        names = paths[0] if len(paths) == 1 else f"{len(paths)} files from {paths[0]} on"
        raise ValueError(f"{names} holds no ratings.")
    return columns.result()


def _text_blocks(path, bar):
    """(bytes, number of its first line) of whole lines, about _BLOCK_BYTES at a time."""
    line = 1
    rest = b""
    with open(path, "rb") as f:
        while chunk := f.read(_BLOCK_BYTES):
            bar.update(len(chunk))
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


class _LineParser:
    """user<sep>item<sep>rating[<sep>more] lines (tab, dat and csv formats)."""

    def __init__(self, format):
        self.format = format
        self.delimiter = _DELIMITERS[format]
        self.float_ratings = False

    def start_file(self, path):
        self.path = path
        self.first_block = True

    def parse(self, text, line):
        if self.format == "dat":
            text = text.replace(b"::", b"\t")
        if self.first_block and self.format == "csv":
            header, _, body = text.partition(b"\n")
            if header.strip() and not _is_integer(header.split(b",")[0]):
                text, line = body, line + 1
        self.first_block = False
        if not text.strip():
            return []
        delimiter = "\t" if self.format == "dat" else self.delimiter.decode()
        users, items, ratings = self._parse(text, line, delimiter, (0, 1, 2))
        return [(_narrow(users), _narrow(items), ratings)]

    def _parse(self, text, line, delimiter, usecols):
        """Columns of ``text``, or a ValueError naming its first bad line."""
        try:
            return self._columns(text, delimiter, usecols)
        except ValueError as error:
            n_fields = len(usecols)
            raise _locate_error(text, line, self.path, self.delimiter, n_fields, error) from None

    def _columns(self, text, delimiter, usecols):
        """int64 id columns and float32 ratings of ``text`` by loadtxt; ValueError if bad."""
        if not self.float_ratings:
            try:
                values = _loadtxt(text, delimiter, usecols, np.int64)
                return (*values[:, :-1].T, values[:, -1].astype(np.float32))
            except ValueError:
                self.float_ratings = True  # decimals (3.5 stars)? retry as floats
        values = _loadtxt(text, delimiter, usecols, _float_last(len(usecols)))
        columns = [values[name] for name in values.dtype.names]
        if not np.isfinite(columns[-1]).all():
            raise ValueError("a rating is not finite")
        return (*columns[:-1], columns[-1].astype(np.float32))


class _NetflixParser(_LineParser):
    """``movie:`` lines, each followed by ``user,rating[,date]`` lines of that movie."""

    def __init__(self):
        super().__init__("netflix")

    def start_file(self, path):
        super().start_file(path)
        self.movie = None

    def parse(self, text, line):
        parts = self._split(text, line)
        if not parts:
            return []
        # One loadtxt call for all the movies of the block; each movie's rows are counted by
        # its newlines, unless a blank line breaks the count: then parse movie by movie.
        counts = [part.count(b"\n") for part, _, _ in parts]
        try:
            users, ratings = self._columns(b"".join(p for p, _, _ in parts), ",", (0, 1))
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
                    f"{text[begin:end].strip().decode('utf-8', 'replace')[:80]!r}."
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
        users, ratings = self._parse(part, first, ",", (0, 1))
        movies = np.full(len(users), movie, dtype=np.int64)
        return _narrow(users), _narrow(movies), ratings


def _loadtxt(text, delimiter, usecols, dtype):
    return np.loadtxt(io.BytesIO(text), delimiter=delimiter, usecols=usecols, dtype=dtype,
                      comments=None, ndmin=1 if isinstance(dtype, list) else 2)  # fmt: skip


def _float_last(n_columns):
    """Structured dtype: integer ids, then a float rating (parses faster than all floats)."""
    return [(f"c{j}", np.int64) for j in range(n_columns - 1)] + [("rating", np.float64)]


def _is_integer(field):
    try:
        int(field)
    except ValueError:
        return False
    return True


def _locate_error(text, line, path, delimiter, n_fields, error):
    """A ValueError naming the first line of ``text`` that does not parse."""
    names = ["user", "item", "rating"] if n_fields == 3 else ["user", "rating"]
    expected = delimiter.decode().replace("\t", "<TAB>").join(names)
    if delimiter == b"::":
        text = text.replace(b"\t", b"::")
    for number, raw in enumerate(text.split(b"\n"), start=line):
        fields = raw.strip().split(delimiter)
        if raw.strip() and not _parses(fields, n_fields):
            shown = raw.strip().decode("utf-8", "replace")
            if len(shown) > 80:
                shown = shown[:77] + "..."
            return ValueError(f"{path}, line {number}: expected {expected!r}, got {shown!r}.")
    return ValueError(f"{path}, lines {line} onwards: {error}")


def _parses(fields, n_fields):
    if len(fields) < n_fields:
        return False
    try:
        [int(x) for x in fields[: n_fields - 1]]
        return math.isfinite(float(fields[n_fields - 1]))
    except ValueError:
        return False


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


def _cache_key(paths, format):
    """A folder name that changes when any file is changed, moved or resized."""
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    digest = hashlib.sha256(json.dumps([_CACHE_VERSION, format, stats]).encode()).hexdigest()
    return f"{paths[0].stem}-{digest[:16]}"


def _save_cache(entry, columns):
    """Write the columns to ``entry`` atomically; a cache that cannot be written is skipped."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    except OSError:
        return
    try:
        for name, values in zip(_COLUMNS, columns, strict=True):
            np.save(tmp / f"{name}.npy", values)
        os.replace(tmp, entry)
    except OSError:  # another process won the race, or the disk is full
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- titles
def read_item_titles(path):
    """Item id -> title, from a MovieLens or Netflix prize movie file.

    Parameters
    ----------
    path : path-like
        MovieLens-100k ``u.item`` (``id|title|...``), MovieLens-1M/10M
        ``movies.dat`` (``id::title::genres``), MovieLens ``movies.csv``
        (``movieId,title,genres`` with a header) or the Netflix prize
        ``movie_titles.txt`` (``id,year,title``).

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
    import csv

    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # MovieLens-100k/1M and Netflix titles are Latin-1
        text = raw.decode("latin-1")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if "::" in first:
        rows = (line.split("::") for line in lines)
    elif "|" in first:
        rows = (line.split("|") for line in lines)
    elif first.lower().startswith("movieid,"):
        rows = csv.reader(lines[1:])
    else:  # Netflix: id,year,title where the title may hold commas
        rows = ([line.split(",", 2)[0], line.split(",", 2)[-1]] for line in lines)
    titles = {}
    start = 2 if first.lower().startswith("movieid,") else 1
    for number, row in enumerate(rows, start=start):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not _is_integer(row[0]):
            raise ValueError(
                f"{path}, line {number}: expected 'item id' then the title, got {row!r}."
            )
        titles[int(row[0])] = row[1].strip()
    return titles
