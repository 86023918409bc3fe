"""The readers never guess: headers, named columns, refused lines, folders, titles, the cache.

Each test checks one promise of the docstrings of ``read_ratings`` and
``read_item_titles`` (and of ``docs/guarantees.rst``), against the expected
ratings written out by hand.
"""

import os
import threading
import tracemalloc

import numpy as np
import pytest

from funksgd.datasets import _cache, _parsing, load_ratings, read_item_titles, read_ratings


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def triples(columns):
    users, items, ratings = columns
    return list(zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True))


def read(path, **kwargs):
    return triples(read_ratings(path, cache=False, **kwargs))


# ----------------------------------------------------------------------------- headers
@pytest.mark.parametrize(
    "name, text",
    [
        ("ratings.csv", "\ufeff1,31,2.5\n7,31,4\n"),  # a byte-order mark: not a header
        ("ratings.csv", "\ufeffuserId,movieId,rating\n1,31,2.5\n7,31,4\n"),
        ("u.data", "\ufeff1\t31\t2.5\t0\n7\t31\t4\t0\n"),
        ("ratings.dat", "\ufeff1::31::2.5::0\n7::31::4::0\n"),
        ("ratings.csv", "movieId,rating,userId\n31,2.5,1\n31,4,7\n"),  # reordered
        ("ratings.csv", ",userId,movieId,rating,timestamp\n0,1,31,2.5,9\n1,7,31,4,9\n"),  # pandas
        ("ratings.csv", "Unnamed: 0,user_id,item_id,rating\n0,1,31,2.5\n1,7,31,4\n"),
        ("ratings.csv", '"item","user","rating"\n31,1,2.5\n31,7,4\n'),  # quoted names
        ("u.data", "USER\tMOVIE\tRATING\n1\t31\t2.5\n7\t31\t4\n"),  # any case, any format
        ("ratings.dat", "timestamp::movie::user::stars\n9::31::1::2.5\n9::31::7::4\n"),
    ],
)
def test_header_names_decide_the_columns(tmp_path, name, text):
    assert read(write(tmp_path / name, text)) == [(1, 31, 2.5), (7, 31, 4.0)]


def test_a_pandas_csv_with_its_index_is_read_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"rating": [2.5, 4.0, 1.0], "movieId": [31, 31, 5], "userId": [1, 7, 7]})
    path = tmp_path / "ratings.csv"
    frame.to_csv(path)  # with the index column, in this column order
    assert read(path) == [(1, 31, 2.5), (7, 31, 4.0), (7, 5, 1.0)]


@pytest.mark.parametrize("first", ["1.5,31,2.5", "1e3,31,2.5", "nan,31,2", "inf,1,2"])
def test_a_first_line_holding_a_number_is_a_rating_line_not_a_header(tmp_path, first):
    # before, a first field that was not an integer made the line a header: dropped
    path = write(tmp_path / "ratings.csv", f"{first}\n7,31,4\n")
    with pytest.raises(ValueError, match=r"ratings.csv, line 1: .*user id is not an integer"):
        read_ratings(path, cache=False)


@pytest.mark.parametrize(
    "columns, text, expected",
    [
        (("who", "what", "stars"), "when,stars,who,what\n9,4.5,7,31\n", [(7, 31, 4.5)]),
        (("Who", "WHAT", "stars"), "when,stars,who,what\n9,4.5,7,31\n", [(7, 31, 4.5)]),
        ((2, 3, 1), "when,stars,who,what\n9,4.5,7,31\n", [(7, 31, 4.5)]),
        ((2, 3, 1), "9,4.5,7,31\n8,1,6,30\n", [(7, 31, 4.5), (6, 30, 1.0)]),
        ((1, 0, 2), "31,7,4.5\n", [(7, 31, 4.5)]),
    ],
)
def test_columns_parameter(tmp_path, columns, text, expected):
    path = write(tmp_path / "ratings.csv", text)
    assert read(path, columns=columns) == expected
    X, mapping = load_ratings(path, columns=columns, cache=False)
    assert X.nnz == len(expected)


@pytest.mark.parametrize(
    "columns, text, match",
    [
        (("a", "b"), "1,2,3\n", "three distinct"),
        ((0, 0, 1), "1,2,3\n", "three distinct"),
        ((0, 1, -1), "1,2,3\n", "three distinct"),
        ((0, "b", 2), "1,2,3\n", "three distinct"),
        (("u", "i", "r"), "1,2,3\n", "line 1: .*no header line"),
        (("u", "i", "x"), "u,i,r\n1,2,3\n", "line 1: the column 'x' of columns= is not"),
        (("u", "i", "r"), "u,i,r,u\n1,2,3,4\n", "line 1: the column 'u' .* more than once"),
        ((0, 1, 5), "1,2,3\n", "line 1: .*no column 5"),
        (None, "who,what,stars\n1,2,3\n", r"line 1: the header .* has no user column.*columns="),
        (None, "user,userId,movie,rating\n1,1,2,3\n", "line 1: the header .* several user"),
    ],
)
def test_columns_that_cannot_be_found_are_refused(tmp_path, columns, text, match):
    with pytest.raises(ValueError, match=match):
        read_ratings(write(tmp_path / "ratings.csv", text), columns=columns, cache=False)


def test_columns_do_not_apply_to_netflix_files(tmp_path):
    path = write(tmp_path / "combined_data_1.txt", "1:\n5,3,2005-01-01\n")
    with pytest.raises(ValueError, match="not 'netflix'"):
        read_ratings(path, columns=(0, 1, 2), cache=False)


# ----------------------------------------------------------------------------- refusals
# (file name, bytes, line at fault, words of the message): each was accepted before.
REFUSED = [
    ("ratings.csv", "1,2,3\n1,2,3,4,5\n", 2, "5 fields instead of 3"),
    ("ratings.csv", "1,2,3,4,5\n", 1, "5 fields instead of 4"),
    ("ratings.csv", "userId,movieId,rating\n1,2,3\n1,2,3,4\n", 3, "4 fields instead of 3"),
    ("ratings.csv", ",userId,movieId,rating\n0,1,2,3\n1,2,3\n", 3, "3 fields instead of 4"),
    ("u.data", "1\t2\t3\t4\n1\t2\t3\n1\t2\t3\t4\t5\n", 2, "3 fields instead of 4"),
    ("u.data", "1\t2\t3\t4\n\n1\t2\t3\n1\t2\t3\t4\t5\n", 3, "3 fields instead of 4"),
    ("u.data", "1\t2\t3\t4\n1\t2\t3\t4\t5\n1\t2\t3\n", 2, "5 fields instead of 4"),
    ("u.data", "1\t2\t3\t4\t5\n", 1, "5 fields instead of 4"),
    ("ratings.dat", "1::2::3::4\n1\t2::3::4\n", 2, "3 fields instead of 4"),
    ("ratings.dat", "1\t2::3::4\n", 1, "user id is not an integer"),
    ("ratings.csv", "1,2,3\n1,2,1e39\n", 2, "overflows float32"),
    ("ratings.csv", "1,2,-4e38\n", 1, "overflows float32"),
    ("u.data", b"1\t2\t3\t4\n5\t6\t7\t\xff\n", 2, "0xff is not UTF-8"),
    ("ratings.csv", b"1,2,3,9\n1,2,3,\xe9t\xe9\n", 2, "0xe9 is not UTF-8"),
    ("ratings.csv", b"userId,movieId,rating,\xff\n1,2,3,4\n", 1, "0xff is not UTF-8"),
    ("ratings.csv", "1,2,3\n1,2,३\n", 2, "rating is not a number"),
    ("ratings.csv", "1,2,3\n99999999999999999999,2,3\n", 2, "user id is not an integer"),
    ("ratings.csv", "1,2,3\nuserId,movieId,rating\n", 2, "user id is not an integer"),
    ("combined_data_1.txt", "1:\n5,3,2005-01-01\n6,3,2005-01-01,x\n", 3, "4 fields instead of 3"),
    ("combined_data_1.txt", "1:\n5,3\n6,3,2005-01-01\n", 3, "3 fields instead of 2"),
    ("combined_data_1.txt", "1:\n5,3,2005-01-01\n2:\n6,1e39,2005-01-01\n", 4, "overflows"),
    ("mv_0000001.txt", "\ufeff1:\n5,3,2005-01-01\n6,1.5.2,2005-01-01\n", 3, "not a number"),
    ("combined_data_1.txt", b"1:\n5,3,2005-01-01\n6,3,\x80\n", 3, "0x80 is not UTF-8"),
]


@pytest.mark.parametrize("name, text, line, words", REFUSED)
@pytest.mark.parametrize("block_bytes", [1 << 24, 6])
def test_lines_that_are_not_rating_lines_are_refused(tmp_path, monkeypatch, name, text, line,
                                                     words, block_bytes):  # fmt: skip
    monkeypatch.setattr(_parsing, "BLOCK_BYTES", block_bytes)
    path = write(tmp_path / name, text)
    with pytest.raises(ValueError, match=rf"{name}, line {line}\b.*{words}"):
        read_ratings(path, cache=False)


def test_a_refused_line_deep_in_a_big_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(_parsing, "BLOCK_BYTES", 4096)
    lines = [f"{u}\t{u % 97}\t{u % 5 + 1}\t881250949" for u in range(1, 5001)]
    lines[3999] += "\t7"  # an extra field, loadtxt alone would not see it
    path = write(tmp_path / "u.data", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"u.data, line 4000: .*5 fields instead of 4"):
        read_ratings(path, cache=False)


def test_whitespace_only_lines_and_crlf_are_blank(tmp_path):
    path = write(tmp_path / "u.data", "1\t2\t3\r\n  \r\n\t\n7\t8\t4.5\r\n")
    assert read(path) == [(1, 2, 3.0), (7, 8, 4.5)]


def test_valid_utf8_in_unread_columns_is_accepted(tmp_path):
    path = write(tmp_path / "ratings.csv", "userId,movieId,rating,note\n1,2,3,café\n")
    assert read(path) == [(1, 2, 3.0)]


def test_large_ratings_that_fit_float32_are_kept(tmp_path):
    path = write(tmp_path / "ratings.csv", "1,2,3e38\n1,3,-1.5\n")
    assert read(path) == [(1, 2, np.float32(3e38).item()), (1, 3, -1.5)]


# ----------------------------------------------------------------------------- folders
@pytest.mark.parametrize(
    "files",
    [
        ["mv_0000001.txt", "training_set/mv_0000002.txt"],
        ["combined_data_1.txt", "training_set/mv_0000002.txt"],
        ["ratings.csv", "u.data"],
        ["ratings.dat", "combined_data_1.txt"],
    ],
)
def test_a_folder_of_two_kinds_of_ratings_files_is_refused(tmp_path, files):
    for name in files:
        text = "1:\n5,3,2005-01-01\n" if "_" in name else "1,2,3\n"
        write(tmp_path / "data" / name, text.replace(",", "\t") if name == "u.data" else text)
    with pytest.raises(ValueError, match="more than one kind.*as a list"):
        read_ratings(tmp_path / "data", cache=False)


def test_memory_stays_close_to_the_result(tmp_path, monkeypatch):
    # 12 bytes per rating of result, 25% to spare, and one block of text at a time
    monkeypatch.setattr(_parsing, "BLOCK_BYTES", 1 << 16)
    n = 100_000
    lines = (f"{u % 3000 + 1}\t{u % 1700 + 1}\t{u % 5 + 1}\t881250949\n" for u in range(n))
    path = write(tmp_path / "u.data", "".join(lines))
    tracemalloc.start()
    users, _, _ = read_ratings(path, cache=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(users) == n
    assert peak < 12 * n * 1.25 * 1.2 + 40 * (1 << 16), peak


# ----------------------------------------------------------------------------- titles
def test_titles_split_lines_at_newlines_only(tmp_path):
    # 0x85 is "..." in Windows-1252 and NEL (a line break for str.splitlines) in Latin-1
    path = write(tmp_path / "u.item", b"1|Caf\x85 Society (1995)|x\r\n2|Heat (1995)|x\n")
    assert read_item_titles(path) == {1: "Caf\x85 Society (1995)", 2: "Heat (1995)"}


@pytest.mark.parametrize(
    "text, line",
    [
        ('movieId,title,genres\n1,"Toy Story,Animation\n2,Heat,Action\n', 2),
        ('1,"Toy Story",Animation\n2,"Heat"x,Action\n', 2),
    ],
)
def test_titles_unterminated_quote_is_an_error(tmp_path, text, line):
    with pytest.raises(ValueError, match=rf"movies.csv, line {line}: .*quote"):
        read_item_titles(write(tmp_path / "movies.csv", text))


@pytest.mark.parametrize("name", ["movies.csv", "titles.txt"])
def test_headerless_movies_csv_gives_titles_not_genres(tmp_path, name):
    text = '1,Toy Story (1995),Animation|Comedy\n11,"President, The (1995)",Drama\n'
    assert read_item_titles(write(tmp_path / name, text)) == {
        1: "Toy Story (1995)",
        11: "President, The (1995)",
    }


def test_titles_formats_header_and_bom(tmp_path):
    netflix = write(tmp_path / "movie_titles.txt", "\ufeff1,2003,Up, Up\n2,NULL,Heat\n")
    assert read_item_titles(netflix) == {1: "Up, Up", 2: "Heat"}
    bad = write(tmp_path / "movie_titles.csv", "1,2003,Up\n2,Heat\n")
    with pytest.raises(ValueError, match="movie_titles.csv, line 2: expected 'id,year,title'"):
        read_item_titles(bad)
    dat = write(tmp_path / "movies.dat", "\n1::Toy Story (1995)::Animation\n\nx::Heat::A\n")
    with pytest.raises(ValueError, match="movies.dat, line 4: expected 'item id'"):
        read_item_titles(dat)
    header = write(tmp_path / "items.csv", "\ufeffmovieId,title,genres\n3,Heat,Action\n")
    assert read_item_titles(header) == {3: "Heat"}
    assert read_item_titles(write(tmp_path / "empty.csv", "\n\n")) == {}


# ----------------------------------------------------------------------------- the cache
RATINGS = "1\t2\t3\t0\n4\t5\t1.5\t0\n"


def entries(cache):
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def test_cache_is_keyed_by_content_not_by_time_or_size(tmp_path):
    path = write(tmp_path / "u.data", RATINGS)
    cache = tmp_path / "cache"
    stat = path.stat()
    assert read(path) == triples(read_ratings(path, cache=cache))
    write(path, RATINGS.replace("1.5", "2.5"))  # same size ...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and time: rsync -t, cp -p
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert triples(read_ratings(path, cache=cache)) == [(1, 2, 3.0), (4, 5, 2.5)]


def test_cache_entries_are_keyed_by_format_and_columns(tmp_path):
    path = write(tmp_path / "ratings.csv", "1,2,3\n4,5,1\n")
    cache = tmp_path / "cache"
    assert triples(read_ratings(path, cache=cache)) == [(1, 2, 3.0), (4, 5, 1.0)]
    swapped = read_ratings(path, cache=cache, columns=(1, 0, 2))
    assert triples(swapped) == [(2, 1, 3.0), (5, 4, 1.0)]


@pytest.mark.parametrize("damage", ["truncate", "empty", "delete", "garbage", "wrong length"])
def test_a_damaged_cache_entry_is_parsed_again_and_healed(tmp_path, damage):
    path = write(tmp_path / "u.data", RATINGS * 200)
    cache = tmp_path / "cache"
    expected = read(path)
    read_ratings(path, cache=cache)
    (entry,) = entries(cache)
    column = entry / "ratings.npy"
    if damage == "truncate":  # before: "mmap length is greater than file size", forever
        column.write_bytes(column.read_bytes()[:-100])
    elif damage == "empty":
        column.write_bytes(b"")
    elif damage == "delete":
        column.unlink()
    elif damage == "garbage":
        column.write_bytes(b"not a numpy file at all")
    else:
        np.save(column, np.ones(3, dtype=np.float32))
    assert triples(read_ratings(path, cache=cache)) == expected  # parsed again
    assert all(isinstance(c, np.memmap) for c in read_ratings(path, cache=cache))  # healed
    assert triples(read_ratings(path, cache=cache)) == expected


def test_an_unreadable_cache_entry_is_parsed_again(tmp_path, monkeypatch):
    # another user's entry in a shared cache folder: PermissionError, and it cannot be removed
    path = write(tmp_path / "u.data", RATINGS)
    cache = tmp_path / "cache"
    read_ratings(path, cache=cache)
    real_load = np.load

    def refuse(file, *args, **kwargs):
        if str(file).startswith(str(cache)):
            raise PermissionError(13, "Permission denied", str(file))
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", refuse)
    monkeypatch.setattr(_cache.shutil, "rmtree", lambda *args, **kwargs: None)
    for _ in range(2):
        assert triples(read_ratings(path, cache=cache)) == read(path)


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    path = write(tmp_path / "u.data", RATINGS)
    cache = tmp_path / "cache"
    real_save = np.save
    calls = []

    def disk_full(file, values):
        calls.append(file)
        if len(calls) == 2:  # the second column of the entry
            raise OSError(28, "No space left on device")
        real_save(file, values)

    monkeypatch.setattr(np, "save", disk_full)
    assert triples(read_ratings(path, cache=cache)) == read(path)
    assert list(cache.iterdir()) == []  # neither a half entry nor its temporary folder
    monkeypatch.undo()
    read_ratings(path, cache=cache)
    assert len(entries(cache)) == 1


def test_a_file_changed_while_read_is_not_cached(tmp_path, monkeypatch):
    path = write(tmp_path / "u.data", RATINGS)
    cache = tmp_path / "cache"
    monkeypatch.setattr(_cache, "file_digest", lambda p: "the hash before the change")
    read_ratings(path, cache=cache)
    assert not cache.exists() or entries(cache) == []


def test_cache_keeps_the_most_recently_used_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "MAX_ENTRIES", 2)
    cache = tmp_path / "cache"
    files = [write(tmp_path / f"f{j}" / "u.data", f"{j + 1}\t2\t3\n") for j in range(3)]
    read_ratings(files[0], cache=cache)
    read_ratings(files[1], cache=cache)
    (first, _) = sorted(entries(cache), key=lambda p: p.stat().st_mtime)
    os.utime(first, (1, 1))  # long unused ...
    read_ratings(files[0], cache=cache)  # ... until now: a cache hit makes it recent
    assert os.path.getmtime(first) > 1
    read_ratings(files[2], cache=cache)
    kept = {triples(read_ratings(f, cache=False))[0][0] for f in files}
    assert len(entries(cache)) == 2 and kept == {1, 2, 3}
    sources = {(entry / "sources.json").read_text() for entry in entries(cache)}
    assert not any("f1" in s for s in sources)  # f1 was the least recently used


def test_cache_stays_within_its_byte_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "MAX_BYTES", 1)  # only the newest entry stays
    cache = tmp_path / "cache"
    for j in range(3):
        read_ratings(write(tmp_path / f"f{j}" / "u.data", f"{j + 1}\t2\t3\n"), cache=cache)
        assert len(entries(cache)) == 1
    old = cache / ".partial-crashed"
    old.mkdir()
    os.utime(old, (1, 1))
    read_ratings(write(tmp_path / "f9" / "u.data", "9\t2\t3\n"), cache=cache)
    assert not old.exists()  # a crashed writer's temporary folder is removed after a day


def test_default_cache_folders(tmp_path, monkeypatch):
    path = write(tmp_path / "u.data", RATINGS)
    monkeypatch.delenv("FUNKSGD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_ratings(path)
    assert len(entries(tmp_path / "xdg" / "funksgd")) == 1
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    read_ratings(path)
    assert len(entries(tmp_path / "home" / ".cache" / "funksgd")) == 1


def test_ids_beyond_int32_are_int64(tmp_path):
    path = write(tmp_path / "u.data", f"{2**40}\t5\t3\n-7\t{-(2**35)}\t1\n")
    users, items, ratings = read_ratings(path, cache=False)
    assert users.dtype == np.int64 and items.dtype == np.int64 and ratings.dtype == np.float32
    assert triples((users, items, ratings)) == [(2**40, 5, 3.0), (-7, -(2**35), 1.0)]
    small = read_ratings(write(tmp_path / "v.data", "1\t2\t3\n"), format="tab", cache=False)
    assert small[0].dtype == np.int32 and small[1].dtype == np.int32


def test_a_pipe_is_read_once_and_not_cached(tmp_path):
    fifo = tmp_path / "ratings"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file .*give the format"):
        read_ratings(fifo, cache=False)  # guessing would consume the pipe
    writer = threading.Thread(target=lambda: fifo.write_text("1\t2\t3\n4\t5\t1.5\n"))
    writer.start()
    got = triples(read_ratings(fifo, format="tab", cache=tmp_path / "cache"))
    writer.join()
    assert got == [(1, 2, 3.0), (4, 5, 1.5)]
    assert not (tmp_path / "cache").exists()
