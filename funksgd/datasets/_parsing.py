"""Parsing ratings text in blocks: NumPy's C ``loadtxt`` first, then the checks it lets
through (field counts, UTF-8, overflow), and a line-by-line pass that names the file and
line at fault."""

import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np

from .._progress import progress_bar

DELIMITERS = {"tab": b"\t", "dat": b"::", "csv": b",", "netflix": b","}
# Header names of the user, item and rating columns (compared in lower case).
HEADER_NAMES = {
    "user": ("userid", "user_id", "user", "customerid", "customer_id"),
    "item": ("movieid", "movie_id", "movie", "itemid", "item_id", "item"),
    "rating": ("rating", "ratings", "stars"),
}
BLOCK_BYTES = 1 << 24
BOM = b"\xef\xbb\xbf"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(rb"[ \t]*[+-]?[0-9]+[ \t]*")
_DECIMAL = re.compile(rb"[ \t]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*")

# ----------------------------------------------------------------------------- parsing
COLUMNS = ("users", "items", "ratings")


def parse_files(paths, format, columns, progress, hashing=True):
    """Parse every file, block by block, into three columns; also the files' digests
    (None without ``hashing``)."""
    parser = _NetflixParser() if format == "netflix" else _LineParser(format, columns)
    total_bytes = sum(p.stat().st_size for p in paths)
    name = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
    bar = progress_bar(total_bytes, f"reading {name}", "B", unit_scale=True) if progress else None
    result = _Columns(total_bytes)
    digests = []
    try:
        for path in paths:
            parser.start_file(path)
            digest = hashlib.sha256() if hashing else None
            for text, line in _text_blocks(path, _on_read(bar, digest)):
                result.bytes_seen += len(text)
                for block in parser.parse(text, line):
                    result.append(block)
            digests.append(digest and digest.hexdigest())
    finally:
        if bar is not None:
            bar.close()
    if result.size == 0:
        names = paths[0] if len(paths) == 1 else f"{len(paths)} files from {paths[0]} on"
        raise ValueError(f"{names} holds no ratings.")
    return result.result(), digests


def _on_read(bar, digest):
    """The function called with every chunk of bytes read: it hashes the chunk into
    ``digest`` and advances the progress ``bar`` (either may be None)."""

    def on_read(chunk):
        if digest is not None:
            digest.update(chunk)
        if bar is not None:
            bar.update(len(chunk))

    return on_read


def _text_blocks(path, on_read):
    """(bytes, number of its first line) of whole lines, about BLOCK_BYTES at a time.

    A byte-order mark at the start of the file is left out; ``on_read`` is called with
    every chunk of bytes read.
    """
    line = 1
    with open(path, "rb") as f:
        rest = f.read(len(BOM))
        on_read(rest)
        rest = rest.removeprefix(BOM)
        while chunk := f.read(BLOCK_BYTES):
            on_read(chunk)
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
        self.delimiter = DELIMITERS[format]
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
            if not is_integer(movie) or rest.strip():
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


def is_integer(field):
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
        if not is_integer(value):
            return f"the {name} id is not an integer"
    if not _DECIMAL.fullmatch(rating):
        return "the rating is not a number"
    if not abs(float(rating)) <= _FLOAT32_MAX:
        return "the rating overflows float32"
    return None
