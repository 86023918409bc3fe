"""funksgd.datasets: the generator, the file readers and their cache, ids <-> indices."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD
from funksgd.datasets import (
    IdMapping,
    _parsing,
    load_ratings,
    make_ratings,
    ratings_to_csr,
    read_item_titles,
    read_ratings,
)


def _dense(X):
    """Dense copy with NaN where no rating is stored (explicit values, zeros included)."""
    out = np.full(X.shape, np.nan)
    coo = X.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def _reference(users, items, ratings):
    """{(user id, item id): rating}: what any reader or mapping must reproduce."""
    return {(u, i): r for u, i, r in zip(users, items, ratings, strict=True)}


def _as_dict(X, mapping):
    coo = X.tocoo()
    users = mapping.user_id(coo.row).tolist()
    items = mapping.item_id(coo.col).tolist()
    return _reference(users, items, coo.data.tolist())


# ----------------------------------------------------------------------------- make_ratings
def test_make_ratings_shape_and_canonical_form():
    X = make_ratings(n_users=300, n_items=120, n_ratings=6000, random_state=0)
    assert isinstance(X, sp.csr_array)
    assert X.shape == (300, 120) and X.nnz == 6000
    assert X.dtype == np.float32 and X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert X.has_canonical_format  # sorted indices, so no pair stored twice
    keys = np.repeat(np.arange(300), np.diff(X.indptr)) * 120 + X.indices
    assert len(np.unique(keys)) == X.nnz
    assert set(np.unique(X.data).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.diff(X.indptr).min() >= 1  # every user rated something


def test_make_ratings_is_deterministic():
    a = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=3)
    b = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=3)
    c = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=4)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


def test_make_ratings_values_follow_the_planted_factors():
    # No noise, no rounding: every rating is the formula, clipped to the scale.
    X, truth = make_ratings(
        n_users=150, n_items=80, n_ratings=3000, noise=0.0, rating_step=None,
        rating_scale=(-100, 100), return_factors=True, random_state=0,
    )  # fmt: skip
    coo = X.tocoo()
    expected = (
        truth.global_mean
        + truth.user_bias[coo.row].astype(np.float64)
        + truth.item_bias[coo.col]
        + np.sum(truth.user_factors[coo.row].astype(np.float64) * truth.item_factors[coo.col], 1)
    )
    np.testing.assert_allclose(coo.data, np.clip(expected, -100, 100), rtol=1e-5, atol=1e-4)
    assert np.mean(np.abs(coo.data) < 100) > 0.9  # the clipping is the exception
    assert truth.user_factors.shape == (150, 10) and truth.item_factors.shape == (80, 10)


def test_make_ratings_noise_and_rounding():
    X, truth = make_ratings(
        n_users=400, n_items=200, n_ratings=20_000, noise=0.5, rating_scale=(1, 5),
        rating_step=0.5, return_factors=True, random_state=0,
    )  # fmt: skip
    assert set(np.unique(X.data).tolist()) <= set(np.arange(1, 5.01, 0.5).tolist())
    coo = X.tocoo()
    clean = np.clip(
        truth.global_mean + truth.user_bias[coo.row] + truth.item_bias[coo.col]
        + np.sum(truth.user_factors[coo.row] * truth.item_factors[coo.col], 1), 1, 5
    )  # fmt: skip
    # Noise 0.5 plus rounding to 0.5 (sd 0.14), less clipping: an RMSE a little under 0.52.
    rmse = np.sqrt(np.mean((coo.data - clean) ** 2))
    assert 0.35 < rmse < 0.55


def test_make_ratings_power_laws():
    def top_share(counts):  # share of the ratings held by the top 10% of rows or columns
        counts = np.sort(counts)[::-1]
        return counts[: len(counts) // 10].sum() / counts.sum()

    shaped = make_ratings(n_users=4000, n_items=1000, n_ratings=100_000, random_state=0)
    flat = make_ratings(
        n_users=4000, n_items=1000, n_ratings=100_000, activity_exponent=0,
        popularity_exponent=0, random_state=0,
    )  # fmt: skip
    for X in (shaped, flat):
        assert X.nnz == 100_000
    user_counts = [np.diff(X.indptr) for X in (shaped, flat)]
    item_counts = [np.bincount(X.indices, minlength=1000) for X in (shaped, flat)]
    assert top_share(user_counts[0]) > 0.4 and top_share(user_counts[1]) < 0.2
    assert top_share(item_counts[0]) > 0.4 and top_share(item_counts[1]) < 0.15
    # A long tail: the median user and item are well below the mean.
    assert np.median(user_counts[0]) < 0.6 * user_counts[0].mean()
    assert np.median(item_counts[0]) < 0.6 * item_counts[0].mean()


@pytest.mark.parametrize("n_ratings", [600, 1000])
def test_make_ratings_dense_users_take_distinct_items(n_ratings):
    # Most users rate over a quarter of the 20 items (exponential-key path); 1000 is all pairs.
    X = make_ratings(n_users=50, n_items=20, n_ratings=n_ratings, random_state=1)
    assert X.nnz == n_ratings and X.has_canonical_format
    assert np.diff(X.indptr).max() <= 20
    if n_ratings == 1000:
        assert np.all(np.diff(X.indptr) == 20)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_ratings": 20_001, "n_users": 200, "n_items": 100}, "exceeds"),
        ({"n_users": 0}, "n_users"),
        ({"n_items": 2.5}, "n_items"),
        ({"rating_scale": (5, 1)}, "rating_scale"),
        ({"rating_step": 0}, "rating_step"),
        ({"noise": -1}, "noise"),
        ({"popularity_exponent": np.inf}, "popularity_exponent"),
    ],
)
def test_make_ratings_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ratings(**kwargs)


# ----------------------------------------------------------------------------- readers
# (user, item, rating) of the small files below, in file order.
RATINGS = [(196, 242, 3.0), (186, 302, 3.5), (22, 377, 1.0), (196, 302, 5.0)]
EXPECTED = {(u, i): r for u, i, r in RATINGS}


def _write(path, text, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def _tab(rows):
    return "".join(f"{u}\t{i}\t{r:g}\t881250949\n" for u, i, r in rows)


def _dat(rows):
    return "".join(f"{u}::{i}::{r:g}::978300760\n" for u, i, r in rows)


def _csv(rows, header=True):
    head = "userId,movieId,rating,timestamp\n" if header else ""
    return head + "".join(f"{u},{i},{r:g},1260759144\n" for u, i, r in rows)


def _netflix(rows):
    """Netflix prize text: the ratings grouped by movie, in order of first appearance."""
    text = ""
    for movie in dict.fromkeys(i for _, i, _ in rows):
        text += f"{movie}:\n" + "".join(f"{u},{r:g},2005-09-06\n" for u, i, r in rows if i == movie)
    return text


def _read(path, **kwargs):
    users, items, ratings = read_ratings(path, cache=False, **kwargs)
    assert users.dtype == np.int32 and items.dtype == np.int32 and ratings.dtype == np.float32
    return _reference(users.tolist(), items.tolist(), ratings.tolist())


@pytest.mark.parametrize(
    "name, text",
    [
        ("u.data", _tab(RATINGS)),
        ("u1.base", _tab(RATINGS)),
        ("ratings.dat", _dat(RATINGS)),
        ("ratings.csv", _csv(RATINGS)),
        ("headerless.csv", _csv(RATINGS, header=False)),
        ("combined_data_1.txt", _netflix(RATINGS)),
        ("mystery.txt", _netflix(RATINGS)),  # format guessed from the first line
        ("mystery.tsv", _tab(RATINGS)),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_readers_read_each_format(tmp_path, name, text, newline):
    path = _write(tmp_path / name, text, newline)
    assert _read(path) == EXPECTED


def test_reader_tolerates_blank_lines_and_a_missing_final_newline(tmp_path):
    text = _netflix(RATINGS).replace("\n", "\n\n", 2).rstrip("\n")
    assert _read(_write(tmp_path / "combined_data_1.txt", text)) == EXPECTED
    text = _tab(RATINGS).replace("\n", "\n\n", 1).rstrip("\n")
    assert _read(_write(tmp_path / "u.data", text)) == EXPECTED


def test_netflix_folders_and_lists(tmp_path):
    by_movie = {}
    for u, i, r in RATINGS:
        by_movie.setdefault(i, []).append((u, i, r))
    for movie, rows in by_movie.items():
        _write(tmp_path / "nf" / "training_set" / f"mv_{movie:07d}.txt", _netflix(rows))
    assert _read(tmp_path / "nf") == EXPECTED
    _write(tmp_path / "combined" / "combined_data_1.txt", _netflix(RATINGS[:2]))
    _write(tmp_path / "combined" / "combined_data_2.txt", _netflix(RATINGS[2:]))
    assert _read(tmp_path / "combined") == EXPECTED
    files = sorted((tmp_path / "combined").iterdir())
    assert _read(files) == EXPECTED


def test_movielens_folder(tmp_path):
    _write(tmp_path / "ml" / "u.data", _tab(RATINGS))
    _write(tmp_path / "ml" / "u.item", "242|Kolya (1996)|24-Jan-1997\n")
    assert _read(tmp_path / "ml") == EXPECTED


@pytest.mark.parametrize("block_bytes", [1, 7, 64])
def test_reader_blocks_match_a_whole_file_read(tmp_path, monkeypatch, block_bytes):
    # Generated ratings written as Netflix text, read back in tiny blocks: the same matrix.
    X = make_ratings(n_users=60, n_items=30, n_ratings=400, rating_step=0.5, random_state=0)
    C = X.tocsc()
    rows = [(int(u) + 1, j + 1, float(r)) for j in range(30)
            for u, r in zip(C.indices[C.indptr[j]:C.indptr[j + 1]],
                            C.data[C.indptr[j]:C.indptr[j + 1]], strict=True)]  # fmt: skip
    path = _write(tmp_path / "combined_data_1.txt", _netflix(rows))
    monkeypatch.setattr(_parsing, "BLOCK_BYTES", block_bytes)
    Y, mapping = load_ratings(path, cache=False)
    assert np.array_equal(mapping.user_ids, np.arange(1, 61))
    assert np.array_equal(mapping.item_ids, np.arange(1, 31))
    np.testing.assert_array_equal(_dense(Y), _dense(X))


MALFORMED = [
    ("u.data", "1\t2\t3\t4\n5\t6\t7\t8\n9\tx\t1\t2\n", 3),
    ("u.data", "1\t2\t3\n5\t6\n", 2),
    ("u.data", "1\t2\t3\n\n5\t6\t7.5.1\n", 3),
    ("ratings.dat", "1::2::3::4\n1:2::3::4\n", 2),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,4\n1,3,nan,5\n", 3),
    ("ratings.csv", "userId,movieId,rating\n1,2,3.5\n1,a,4\n", 3),
    ("ratings.csv", "1,2,3.5\n1,3,inf\n", 2),
    ("mv_0000001.txt", "1:\n5,3,2005-01-01\n6,4,2005-01-01\n\n7,x,2005\n", 5),
    ("mv_0000002.txt", "5,3,2005-01-01\n", 1),
    ("combined_data_1.txt", "1:\n5,3,2005-01-01\nab:\n6,1,2005-01-01\n", 3),
    ("combined_data_1.txt", "1:\n5,3,2005-01-01\n2: 7\n", 3),
    ("combined_data_1.txt", "1:\n5,3,2005-01-01\n2:\n6\n", 4),
]


@pytest.mark.parametrize("name, text, line", MALFORMED)
@pytest.mark.parametrize("block_bytes", [1 << 24, 5])
def test_malformed_line_is_named(tmp_path, monkeypatch, name, text, line, block_bytes):
    monkeypatch.setattr(_parsing, "BLOCK_BYTES", block_bytes)
    path = _write(tmp_path / name, text)
    with pytest.raises(ValueError, match=rf"{name}, line {line}\b"):
        read_ratings(path, cache=False)


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such ratings file"):
        read_ratings(tmp_path / "absent.csv", cache=False)
    with pytest.raises(FileNotFoundError, match="found no ratings files"):
        read_ratings(tmp_path, cache=False)
    path = _write(tmp_path / "notes.txt", "hello world\n")
    with pytest.raises(ValueError, match="cannot tell the format of .*notes.txt"):
        read_ratings(path, cache=False)
    with pytest.raises(ValueError, match="format must be one of"):
        read_ratings(path, format="xlsx", cache=False)
    with pytest.raises(ValueError, match="holds no ratings"):
        read_ratings(_write(tmp_path / "empty.csv", "userId,movieId,rating\n"), cache=False)
    # The wrong format given explicitly: the first line is named.
    csv = _write(tmp_path / "ratings.csv", _csv(RATINGS))
    with pytest.raises(ValueError, match=r"line 1: expected .* separated by '\\t'.*'tab' file"):
        read_ratings(csv, format="tab", cache=False)


def test_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    path = _write(tmp_path / "u.data", _tab(RATINGS))
    cache = tmp_path / "cache"
    first = read_ratings(path, cache=cache)
    assert len(list(cache.iterdir())) == 1

    def fail(*args):
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(_parsing, "parse_files", fail)
    second = read_ratings(path, cache=cache)
    assert all(isinstance(column, np.memmap) for column in second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    old_entry = next(cache.iterdir())
    _write(path, _tab(RATINGS[:2]))  # changed file: parsed again; its old entry evicted
    assert len(read_ratings(path, cache=cache)[0]) == 2
    assert len(list(cache.iterdir())) == 1 and not old_entry.exists()


def test_cache_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "env-cache"))
    read_ratings(_write(tmp_path / "u.data", _tab(RATINGS)))
    assert len(list((tmp_path / "env-cache").iterdir())) == 1


def test_progress_bar_is_optional(tmp_path, capsys):
    path = _write(tmp_path / "u.data", _tab(RATINGS))
    users, _, _ = read_ratings(path, cache=False, progress=True)
    assert len(users) == 4
    if _has_tqdm():
        assert "reading u.data" in capsys.readouterr().err


def _has_tqdm():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def test_read_item_titles(tmp_path):
    u_item = tmp_path / "u.item"  # Latin-1, as MovieLens-100k's
    u_item.write_bytes("1|Toy Story (1995)|01-Jan-1995||x\n2|Café (1990)|x\n".encode("latin-1"))
    assert read_item_titles(u_item) == {1: "Toy Story (1995)", 2: "Café (1990)"}
    dat = _write(tmp_path / "movies.dat", "1::Toy Story (1995)::Animation|Comedy\n")
    assert read_item_titles(dat) == {1: "Toy Story (1995)"}
    csv = _write(tmp_path / "movies.csv", 'movieId,title,genres\n11,"President, The (1995)",X\n')
    assert read_item_titles(csv) == {11: "President, The (1995)"}
    netflix = _write(tmp_path / "movie_titles.txt", "1,2003,Dinosaur Planet\n9,NULL,Up, Up, Away\n")
    assert read_item_titles(netflix) == {1: "Dinosaur Planet", 9: "Up, Up, Away"}
    bad = _write(tmp_path / "bad.csv", "movieId,title,genres\n1,A,B\nx,C,D\n")
    with pytest.raises(ValueError, match="bad.csv, line 3"):
        read_item_titles(bad)


# ----------------------------------------------------------------------------- mappings
@pytest.mark.parametrize(
    "users, items",
    [
        ([7, 3, 7, 10**12], [1, 1, 2, -5]),  # large and negative ids: sorted, not tabled
        (["bob", "ann", "bob", "cy"], ["tea", "tea", "jam", "jam"]),
        ([3, "x", 3, (1, 2)], ["a", 2.5, 2.5, None is None]),  # mixed types: first seen
        ([(1, 2), (3, 4), (1, 2), (5, 6)], [0, 0, 1, 1]),  # tuples as ids
    ],
)
def test_ratings_to_csr_round_trips(users, items):
    ratings = [4.0, 3.0, 2.5, 1.0]
    X, mapping = ratings_to_csr(users, items, ratings)
    assert X.nnz == 4 and X.dtype == np.float32 and X.has_canonical_format
    assert _as_dict(X, mapping) == _reference(users, items, ratings)
    rows = mapping.user_index(users)
    cols = mapping.item_index(items)
    np.testing.assert_array_equal(X[rows, cols], ratings)
    assert mapping.user_id(rows).tolist() == list(users)
    assert mapping.shape == X.shape


def test_ratings_to_csr_matches_a_dense_reference():
    rng = np.random.default_rng(0)
    pairs = rng.choice(50 * 40, size=500, replace=False)
    users, items = 1000 + pairs // 40, np.array([f"item{j:02d}" for j in pairs % 40])
    ratings = rng.integers(1, 6, 500).astype(float)
    X, mapping = ratings_to_csr(users, items, ratings)
    reference = np.full((50, 40), np.nan)
    reference[pairs // 40, pairs % 40] = ratings
    keep_rows = np.isin(np.arange(1000, 1050), users)
    keep_cols = np.isin(np.array([f"item{j:02d}" for j in range(40)]), items)
    np.testing.assert_array_equal(_dense(X), reference[keep_rows][:, keep_cols])
    assert np.all(np.diff(mapping.user_ids) > 0)  # sorted ids


def test_unknown_ids_raise_or_are_cold():
    mapping = IdMapping(["ann", "bob"], [10, 20, 30])
    with pytest.raises(KeyError, match="unknown user id 'zed'"):
        mapping.user_index(["bob", "zed"])
    with pytest.raises(KeyError, match=r"unknown item id '10': .*\(10, 20, 30\)"):
        mapping.item_index(["10"])  # a string is not the integer id
    np.testing.assert_array_equal(mapping.user_index(["zed", "ann"], unknown="cold"), [-1, 0])
    np.testing.assert_array_equal(mapping.item_index(30), [2])
    with pytest.raises(ValueError, match="unknown must be"):
        mapping.user_index(["ann"], unknown="ignore")
    with pytest.raises(ValueError, match="item index -1 is out of range"):
        mapping.item_id([0, -1])
    with pytest.raises(ValueError, match="duplicates"):
        IdMapping([3, "x", 3], [1])


@pytest.mark.parametrize("user_ids", [
    np.array([0, 2, 3, 7, 9]),  # dense: looked up in a table
    np.array([0, 2, 3, 7, 10**9]),  # sparse: by binary search
    np.array([0, 2, 3, 7, 9], dtype=object),  # Python ints: by hashing
])  # fmt: skip
def test_integer_ids_are_found_however_they_are_stored(user_ids):
    import pickle

    mapping = IdMapping(user_ids, ["a"])
    query = np.array([9, 0, 7, 7, 3, 2, 0])
    expected = [4, 0, 3, 3, 2, 1, 0]
    if user_ids[-1] != 9:
        query[query == 9] = user_ids[-1]
    for q in (query, query.astype(np.uint32), query.astype(np.int64).tolist()):
        np.testing.assert_array_equal(mapping.user_index(q), expected)
        assert mapping.user_index(q).dtype == np.int32
    cold = mapping.user_index(np.array([-1, 1, 8, 11, 2**40, 2]), unknown="cold")
    np.testing.assert_array_equal(cold, [-1, -1, -1, -1, -1, 1])
    with pytest.raises(KeyError, match="unknown user id -3"):
        mapping.user_index([0, -3])
    with pytest.raises(KeyError, match="unknown user id 5"):
        mapping.user_index(np.array([5], dtype=np.uint8))
    again = pickle.loads(pickle.dumps(mapping))  # a table is built again, not stored
    assert len(pickle.dumps(mapping)) < 2000
    np.testing.assert_array_equal(again.user_index(query), expected)


def test_existing_mapping_for_test_ratings():
    X, mapping = ratings_to_csr([1, 1, 2], [10, 20, 10], [5.0, 3.0, 4.0])
    with pytest.raises(KeyError, match="unknown user id 9"):
        ratings_to_csr([2, 9], [20, 10], [1.0, 2.0], mapping=mapping)
    T, same = ratings_to_csr([2, 9, 1], [20, 10, 30], [1.0, 2.0, 3.0], mapping=mapping,
                             unknown="drop")  # fmt: skip
    assert same is mapping and T.shape == X.shape and T.nnz == 1
    assert _as_dict(T, mapping) == {(2, 20): 1.0}


@pytest.mark.parametrize(
    "duplicates, expected", [("last", {(1, 10): 2.0, (2, 10): 4.0}),
                             ("mean", {(1, 10): 3.0, (2, 10): 4.0})]
)  # fmt: skip
def test_duplicates(duplicates, expected):
    users, items, ratings = [1, 2, 1, 1], [10, 10, 10, 10], [5.0, 4.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="user 1 rated item 10 more than once"):
        ratings_to_csr(users, items, ratings)
    X, mapping = ratings_to_csr(users, items, ratings, duplicates=duplicates)
    assert _as_dict(X, mapping) == expected


@pytest.mark.parametrize(
    "users, items, ratings, error, match",
    [
        ([1, 2], [1], [1.0, 2.0], ValueError, "same length"),
        ([1], [1], [np.nan], ValueError, "not finite"),
        ([1.0, np.nan], [1, 2], [1.0, 2.0], ValueError, r"users\[1\] is missing"),
        ([1, 2], ["a", None], [1.0, 2.0], ValueError, r"items\[1\] is missing"),
        ([1], [1], ["5"], TypeError, "ratings must be numbers"),
        ([], [], [], ValueError, "no ratings"),
    ],
)
def test_ratings_to_csr_rejects_bad_input(users, items, ratings, error, match):
    with pytest.raises(error, match=match):
        ratings_to_csr(users, items, ratings)


def test_ratings_to_csr_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"user": ["u2", "u1", "u2"], "movie": [7, 7, 8], "stars": [4.0, 3.5, 1.0]})
    X, mapping = ratings_to_csr("user", "movie", "stars", data=df)
    assert _as_dict(X, mapping) == {("u2", 7): 4.0, ("u1", 7): 3.5, ("u2", 8): 1.0}
    np.testing.assert_array_equal(mapping.user_index(df["user"]), [1, 0, 1])
    df.loc[1, "user"] = None
    with pytest.raises(ValueError, match="missing"):
        ratings_to_csr("user", "movie", "stars", data=df)
    nullable = pd.DataFrame({"u": pd.array([1, None], dtype="Int64"), "i": [1, 2], "r": [1, 2]})
    with pytest.raises(ValueError, match="missing"):
        ratings_to_csr("u", "i", "r", data=nullable)


def test_estimator_by_original_ids():
    users = np.repeat([f"user{j}" for j in range(30)], 8)
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.choice(20, 8, replace=False) * 100 for _ in range(30)])
    ratings = rng.integers(1, 6, len(users)).astype(float)
    X, mapping = ratings_to_csr(users, items, ratings)
    model = FunkSVD(n_components=3, max_iter=5, random_state=0).fit(X)
    rows = mapping.user_index(["user7", "user7"])
    cols = mapping.item_index([items[56], items[57]])
    row = np.flatnonzero(mapping.user_ids == "user7")[0]  # ids sort as strings: user10 < user7
    assert rows.tolist() == [row, row]
    np.testing.assert_array_equal(
        model.predict_ratings(rows, cols), model.predict_ratings([row, row], cols)
    )
    top, _ = model.recommend(users=rows[:1], X=X[rows[:1]], n=3)
    rated = set(items[users == "user7"].tolist())
    assert not rated & set(mapping.item_id(top[0]).tolist())
