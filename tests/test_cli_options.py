"""Each option of the funksgd command does what its help says (in-process, through main)."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD
from funksgd._cli import _load_bundle, main
from funksgd.datasets import load_ratings, make_ratings


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """A cache folder of this test only (FUNKSGD_CACHE_DIR is the default cache)."""
    cache = tmp_path / "default-cache"
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(n_users=80, n_items=40, n_ratings=1500, random_state=0)


def write_u_data(path, X, offset=0):
    """Ratings as MovieLens u.data lines (user ids from ``1 + offset``)."""
    coo = X.tocoo()
    lines = [f"{u + 1 + offset}\t{i + 1}\t{int(r)}\t0\n" for u, i, r in
             zip(coo.row, coo.col, coo.data, strict=True)]  # fmt: skip
    path.write_text("".join(lines))
    return path


def fit(tmp_path, *args):
    model_path = tmp_path / "model.npz"
    status = main(["fit", *map(str, args), "-o", model_path, "-q", "--max-iter", "3"])
    assert status == 0
    return _load_bundle(model_path)  # the model file as 'funksgd recommend' reads it


MODEL_OPTIONS = [
    (["--alpha", "0.3"], dict(alpha=0.3)),
    (["--eta0", "0.02"], dict(eta0=0.02)),
    (
        ["--learning-rate", "invscaling", "--eta0", "0.05"],
        dict(learning_rate="invscaling", eta0=0.05),
    ),
    (["--learning-rate", "constant", "--eta0", "0.01"], dict(learning_rate="constant", eta0=0.01)),
    (["--seed", "7"], dict(random_state=7)),
    (["--n-components", "3"], dict(n_components=3)),
]


@pytest.mark.parametrize("options, params", MODEL_OPTIONS, ids=lambda v: str(v))
def test_model_options_give_the_model_of_those_parameters(tmp_path, ratings, options, params):
    path = write_u_data(tmp_path / "u.data", ratings)
    bundle = fit(tmp_path, path, "--n-components", "5", *options)
    model = bundle["model"]
    for name, value in params.items():
        assert model.get_params()[name] == value
    X, _ = load_ratings(path, cache=False)
    want = FunkSVD(**{"n_components": 5, "max_iter": 3, "random_state": 0, **params}).fit(X)
    np.testing.assert_array_equal(model.item_factors_, want.item_factors_)
    np.testing.assert_array_equal(model.user_factors_, want.user_factors_)
    # and the default model differs: the option changed the fit
    default = fit(tmp_path, path, "--n-components", "5")["model"]
    assert default.item_factors_.shape != model.item_factors_.shape or not np.array_equal(
        default.item_factors_, model.item_factors_
    )


def test_duplicates_option(tmp_path, capsys):
    path = tmp_path / "u.data"
    path.write_text("1\t1\t5\t0\n2\t2\t3\t0\n1\t1\t1\t0\n2\t1\t4\t0\n")
    model_path = tmp_path / "m.npz"
    assert main(["fit", path, "-o", model_path, "-q", "--max-iter", "1"]) == 2
    assert re.search("(?i)duplicate", capsys.readouterr().err)
    means = {}
    for how, want in (("last", (1 + 3 + 4) / 3), ("mean", (3 + 3 + 4) / 3)):
        bundle = fit(tmp_path, path, "--duplicates", how, "--n-components", "1")
        means[how] = bundle["model"].global_mean_
        assert means[how] == pytest.approx(want)
        assert len(bundle["rated"][1]) == 3  # one rating per (user, item) pair


def test_format_option_overrides_the_file_name(tmp_path, capsys):
    path = tmp_path / "ratings.txt"  # a name that says nothing
    path.write_text("1,1,4\n1,2,3\n2,1,5\n")
    bundle = fit(tmp_path, path, "--format", "csv", "--n-components", "1")
    assert len(bundle["rated"][1]) == 3
    assert bundle["model"].global_mean_ == pytest.approx(4.0)
    assert main(["fit", path, "-o", tmp_path / "x", "-q", "--format", "tab"]) == 2
    assert "ratings.txt" in capsys.readouterr().err


def cache_entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_and_no_cache(tmp_path, ratings, private_cache):
    path = write_u_data(tmp_path / "u.data", ratings)
    mine = tmp_path / "my-cache"
    first = fit(tmp_path, path, "--cache-dir", mine, "--n-components", "2")
    assert len(cache_entries(mine)) == 1 and cache_entries(private_cache) == []
    # the cache is read back: the same model from the cached columns
    again = fit(tmp_path, path, "--cache-dir", mine, "--n-components", "2")
    np.testing.assert_array_equal(first["model"].item_factors_, again["model"].item_factors_)
    fit(tmp_path, path, "--no-cache", "--n-components", "2")
    assert cache_entries(private_cache) == [] and len(cache_entries(mine)) == 1
    fit(tmp_path, path, "--n-components", "2")  # the default cache
    assert len(cache_entries(private_cache)) == 1


def test_several_files_are_read_one_after_the_other(tmp_path, ratings, capsys):
    X = sp.csr_array(ratings)
    a = write_u_data(tmp_path / "a.data", X[:40], offset=0)
    b = write_u_data(tmp_path / "b.data", X[40:], offset=40)
    bundle = fit(tmp_path, a, b, "--format", "tab", "--n-components", "2")
    indptr, indices = bundle["rated"]
    assert len(indices) == X.nnz  # every rating of both files, first and last lines too
    np.testing.assert_array_equal(bundle["mapping"].user_ids, np.unique(X.tocoo().row + 1))
    # evaluate reads several files too
    capsys.readouterr()
    assert main(["evaluate", tmp_path / "model.npz", a, b, "--format", "tab"]) == 0
    assert f"{X.nnz:,} ratings; {X.nnz:,} scored." in capsys.readouterr().out


@pytest.mark.parametrize("which", ["first", "last"])
def test_fit_reads_the_first_and_last_line_of_a_file(tmp_path, which):
    lines = ["1\t1\t4\t0\n", "2\t2\t3\t0\n", "3\t1\t5\t0\n"]
    lines[0 if which == "first" else -1] = "9\t3\t1\t0\n"  # the only rating of user 9, item 3
    path = tmp_path / "u.data"
    path.write_text("".join(lines))
    bundle = fit(tmp_path, path, "--n-components", "1")
    assert 9 in bundle["mapping"].user_ids and 3 in bundle["mapping"].item_ids


def test_recommend_leaves_out_the_items_of_a_heavy_user(tmp_path, capsys):
    """User 1 rated 45 of 50 items, the ones the model scores highest for them: the
    recommendations are exactly the five others."""
    X = sp.lil_array(make_ratings(n_users=60, n_items=50, n_ratings=1200, random_state=1))
    path = write_u_data(tmp_path / "u.data", sp.csr_array(X))
    model = fit(tmp_path, path, "--n-components", "3")["model"]
    scores = model.predict_ratings(np.zeros(50, int), np.arange(50))
    keep_out = np.argsort(scores)[:5]  # the user's five worst items stay unrated
    X[0, :] = 0
    X = sp.csr_array(X)
    X.eliminate_zeros()
    heavy = sp.lil_array(X)
    for item in np.setdiff1d(np.arange(50), keep_out):
        heavy[0, item] = 5.0
    write_u_data(path, sp.csr_array(heavy))
    fit(tmp_path, path, "--n-components", "3", "--no-cache")
    capsys.readouterr()
    assert main(["recommend", tmp_path / "model.npz", "1", "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert "(45 rated items left out)" in out
    shown = [int(m) for m in re.findall(r"^\s+\d+\. item\s+(\d+)", out, re.M)]
    assert sorted(shown) == sorted(keep_out + 1)


def test_max_iter_n_jobs_and_n_options(tmp_path, ratings, capsys):
    path = write_u_data(tmp_path / "u.data", ratings)
    model_path = tmp_path / "model.npz"
    argv = ["fit", path, "-o", model_path, "-q", "--max-iter", "4", "--n-jobs", "1"]
    assert main([*map(str, argv), "--n-components", "2"]) == 0
    model = _load_bundle(model_path)["model"]
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4 and model.n_jobs == 1
    capsys.readouterr()
    assert main(["recommend", str(model_path), "1", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Top 3 for user 1")
    assert len(re.findall(r"^\s+\d+\. item", out, re.M)) == 3


def shown_items(out):
    """(item id, score, title) of each line that 'funksgd recommend' prints."""
    rows = re.findall(r"^\s+\d+\. item\s+(\d+)\s+([-\d.]+)(?:  (.*))?$", out, re.M)
    return [(int(item), float(score), title) for item, score, title in rows]


@pytest.mark.parametrize("name", ["u.item", "movies.csv"])
def test_items_option_prints_each_recommended_items_title(tmp_path, ratings, capsys, name):
    path = write_u_data(tmp_path / "u.data", ratings)
    model = fit(tmp_path, path, "--n-components", "2")["model"]
    titled = range(1, 41, 2)  # odd item ids have a title, even ones none
    if name == "u.item":  # MovieLens-100k: id|title|date|...
        text = "".join(f"{i}|Film {i} (19{i:02d})|01-Jan-1995||http://x|0|1\n" for i in titled)
    else:
        text = "movieId,title,genres\n" + "".join(f'{i},"Film {i}, The",Drama\n' for i in titled)
    titles = tmp_path / name
    titles.write_bytes(text.encode("latin-1"))
    capsys.readouterr()
    model_path = tmp_path / "model.npz"
    assert main(["recommend", model_path, "1", "-n", "40", "--items", titles]) == 0
    with_titles = shown_items(capsys.readouterr().out)
    assert main(["recommend", model_path, "1", "-n", "40"]) == 0
    plain = shown_items(capsys.readouterr().out)
    assert [row[:2] for row in with_titles] == [row[:2] for row in plain]  # same list
    assert all(title == "" for *_, title in plain)
    want = {i: (f"Film {i} (19{i:02d})" if name == "u.item" else f"Film {i}, The") for i in titled}
    assert len(with_titles) == 40 - ratings[[0]].nnz
    for item, _, title in with_titles:
        assert title == want.get(item, "")
    assert sum(title != "" for *_, title in with_titles) >= 5
    # the scores are the model's predicted ratings of user 1 (row 0) for those items
    items = np.array([item for item, *_ in plain]) - 1
    np.testing.assert_allclose([s for _, s, _ in plain],
                               model.predict_ratings(np.zeros(len(items), int), items),
                               atol=0.006)  # fmt: skip


def test_items_option_names_a_bad_titles_file(tmp_path, ratings, capsys):
    path = write_u_data(tmp_path / "u.data", ratings)
    fit(tmp_path, path, "--n-components", "2")
    titles = tmp_path / "u.item"
    titles.write_text("1|Film one\nnot a title line\n")
    capsys.readouterr()
    assert main(["recommend", tmp_path / "model.npz", "1", "--items", titles]) == 2
    err = capsys.readouterr().err
    assert "u.item" in err and "line 2" in err


def test_demo_size_and_model_options(monkeypatch, capsys):
    """--n-users/--n-items/--n-ratings size the generated data (make_ratings, seeded by
    --seed); the model options reach the model the demo fits."""
    from funksgd import _cli, train_test_split_ratings

    fitted = []
    real_timed_fit = _cli._timed_fit
    monkeypatch.setattr(
        _cli, "_timed_fit", lambda model, X: fitted.append((model, X)) or real_timed_fit(model, X)
    )
    argv = ["demo", "--n-users", "70", "--n-items", "30", "--n-ratings", "900", "--seed", "3",
            "--n-components", "4", "--max-iter", "2", "--alpha", "0.2", "--eta0", "0.04",
            "--learning-rate", "constant", "--n-jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Generated 900 ratings (1-5 stars) of 70 users x 30 items" in out
    X = make_ratings(70, 30, 900, random_state=3)
    X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=3)
    assert f"Training on {X_train.nnz:,} ratings, {X_test.nnz:,} held out." in out
    (model, seen), = fitted  # fmt: skip
    assert (seen != X_train).nnz == 0 and seen.shape == (70, 30)
    params = model.get_params()
    assert (params["n_components"], params["max_iter"], params["alpha"], params["eta0"]) == (
        4, 2, 0.2, 0.04)  # fmt: skip
    assert (params["learning_rate"], params["random_state"], params["n_jobs"]) == (
        "constant", 3, 1)  # fmt: skip
    assert "epoch 2: training RMSE" in out and "epoch 3" not in out


def test_quiet_output_and_version_options(tmp_path, ratings, capsys):
    path = write_u_data(tmp_path / "u.data", ratings)
    out_path = tmp_path / "elsewhere" / "my-model.npz"
    out_path.parent.mkdir()
    argv = ["fit", path, "-o", out_path, "--max-iter", "2", "--n-components", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Read {ratings.nnz:,} ratings of 80 users x 40 items" in out
    assert "epoch 2: training RMSE" in out and f"saved {out_path}" in out
    assert _load_bundle(out_path)["model"].n_iter_ == 2  # -o: the file written
    assert main([*argv, "-q"]) == 0
    assert capsys.readouterr().out == ""  # -q: nothing at all
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    from funksgd import __version__

    assert capsys.readouterr().out.strip() == f"funksgd {__version__}"


def test_evaluate_reading_options(tmp_path, ratings, private_cache, capsys):
    """evaluate takes the reading options of fit: --cache-dir, --no-cache, --format."""
    path = write_u_data(tmp_path / "ratings.txt", ratings)
    fit(tmp_path, path, "--format", "tab", "--no-cache", "--n-components", "2")
    model_path = tmp_path / "model.npz"
    mine = tmp_path / "my-cache"
    capsys.readouterr()
    assert main(["evaluate", model_path, path, "--format", "tab", "--no-cache"]) == 0
    first = capsys.readouterr().out
    assert cache_entries(private_cache) == [] and cache_entries(mine) == []
    assert main(["evaluate", model_path, path, "--format", "tab", "--cache-dir", mine]) == 0
    assert capsys.readouterr().out == first and len(cache_entries(mine)) == 1
    assert cache_entries(private_cache) == []
    assert main(["evaluate", model_path, path, "--format", "csv", "--no-cache"]) == 2
    assert "ratings.txt" in capsys.readouterr().err  # tab lines are not csv lines
