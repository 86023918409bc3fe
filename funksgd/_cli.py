"""The ``funksgd`` command: demo, fit, evaluate, recommend.

Every failure the user can fix (a missing file, a wrong format, an unknown user id, a
model file that is not one) ends with a one-line message on stderr and exit status 2,
without a traceback; Ctrl-C ends with one line and status 130. Model files are written
by ``funksgd._model_file`` (arrays and JSON, loaded without executing code), to a
temporary file renamed into place once complete.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import BaselineOnly, FunkSVD, __version__, train_test_split_ratings
from ._model_file import read_model_file, save_model
from .datasets import (
    FORMATS,
    load_ratings,
    make_ratings,
    ratings_to_csr,
    read_item_titles,
    read_ratings,
)


def main(argv=None):
    """Run the ``funksgd`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 on a usage error or a problem with the input files.
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    try:
        return _run(args)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # a pipe closed early fails here, not in the flush at exit
        sys.stdout, sys.stderr = saved


def _run(args):
    """The command's exit status; expected failures become one line on stderr."""
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print(f"funksgd {args.command}: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it
    except MemoryError as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(f"funksgd {args.command}: error: out of memory{detail}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"funksgd {args.command}: error: {message}", file=sys.stderr)
        return 2


class _PipeSafe:
    """A text stream whose writes never raise BrokenPipeError.

    ``funksgd fit ... | head -1`` closes the pipe after a line; the fit must go on and
    write its model all the same. On the first broken pipe the stream's file descriptor
    is pointed at /dev/null, so that later writes, and the flush at exit, are silent.
    """

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no file descriptor (a StringIO)
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _parser():
    parser = argparse.ArgumentParser(
        prog="funksgd",
        description="Funk-SVD matrix factorization of ratings by SGD.",
    )
    parser.add_argument("--version", action="version", version=f"funksgd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="fit generated ratings and report")
    demo.add_argument("--n-users", type=int, default=6000)
    demo.add_argument("--n-items", type=int, default=3000)
    demo.add_argument("--n-ratings", type=int, default=400_000)
    _add_model_options(demo, n_components=20)
    demo.set_defaults(run=_demo)

    fit = commands.add_parser("fit", help="fit a model to a ratings file and save it")
    fit.add_argument("ratings", nargs="+", type=Path, help="ratings file(s) or folder")
    fit.add_argument("-o", "--output", type=Path, required=True, help="model file to write")
    _add_reading_options(fit)
    _add_duplicates_option(fit)
    _add_model_options(fit, n_components=100)
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    fit.set_defaults(run=_fit)

    evaluate = commands.add_parser("evaluate", help="RMSE and MAE of a model on a ratings file")
    evaluate.add_argument("model", type=Path, help="model file written by 'funksgd fit'")
    evaluate.add_argument("ratings", nargs="+", type=Path, help="held-out ratings file(s)")
    _add_reading_options(evaluate)
    _add_duplicates_option(evaluate)
    evaluate.set_defaults(run=_evaluate)

    recommend = commands.add_parser("recommend", help="top-n items for a user id")
    recommend.add_argument("model", type=Path, help="model file written by 'funksgd fit'")
    recommend.add_argument("user", help="user id, as in the ratings file")
    recommend.add_argument("-n", type=int, default=10, help="number of items (default 10)")
    recommend.add_argument(
        "--items",
        type=Path,
        help="titles: MovieLens u.item, movies.dat or movies.csv, or Netflix movie_titles.txt",
    )
    recommend.set_defaults(run=_recommend)

    return parser


def _add_model_options(parser, n_components):
    group = parser.add_argument_group("model")
    group.add_argument("--n-components", type=int, default=n_components)
    defaults = FunkSVD().get_params()
    group.add_argument("--alpha", type=float, default=defaults["alpha"], help="L2 regularisation")
    group.add_argument(
        "--learning-rate",
        choices=["adagrad", "constant", "invscaling", "adaptive"],
        default=defaults["learning_rate"],
        help="learning-rate schedule",
    )
    group.add_argument("--eta0", type=float, default=defaults["eta0"], help="initial learning rate")
    group.add_argument("--max-iter", type=int, default=defaults["max_iter"], help="epochs")
    group.add_argument("--n-jobs", type=int, default=-1, help="threads (-1: all cores)")
    group.add_argument("--seed", type=int, default=0)


def _add_duplicates_option(parser):
    parser.add_argument(
        "--duplicates",
        choices=["raise", "last", "mean"],
        default="raise",
        help="a (user, item) pair rated twice: refuse, keep the last, or average",
    )


def _columns(text):
    """--columns USER,ITEM,RATING: header names, or 0-based positions."""
    names = [name.strip() for name in text.split(",")]
    if len(names) != 3 or not all(names):
        raise argparse.ArgumentTypeError(
            f"expected USER,ITEM,RATING (3 column names or 0-based positions), got {text!r}"
        )
    return tuple(int(n) for n in names) if all(n.isdigit() for n in names) else tuple(names)


def _add_reading_options(parser):
    parser.add_argument("--format", choices=sorted(FORMATS), help="default: from the file name")
    parser.add_argument(
        "--columns",
        type=_columns,
        metavar="USER,ITEM,RATING",
        help="the user, item and rating columns: header names or 0-based positions "
        "(default: from the header's names, else the first three)",
    )
    parser.add_argument("--cache-dir", type=Path, help="where parsed files are cached")
    parser.add_argument("--no-cache", action="store_true", help="do not cache parsed files")


def _cache(args):
    return False if args.no_cache else (args.cache_dir or True)


def _ratings_path(paths):
    return paths[0] if len(paths) == 1 else paths


def _model(args, verbose):
    return FunkSVD(
        n_components=args.n_components, alpha=args.alpha, learning_rate=args.learning_rate,
        eta0=args.eta0, max_iter=args.max_iter, random_state=args.seed, n_jobs=args.n_jobs,
        verbose=verbose,
    )  # fmt: skip


# ----------------------------------------------------------------------------- commands
def _demo(args):
    start = time.perf_counter()
    X, truth = make_ratings(
        args.n_users, args.n_items, args.n_ratings, return_factors=True, random_state=args.seed
    )
    counts = np.diff(X.indptr)
    print(
        f"Generated {X.nnz:,} ratings (1-5 stars) of {X.shape[0]:,} users x {X.shape[1]:,} "
        f"items in {time.perf_counter() - start:.1f} s: a long tail, the median user rated "
        f"{int(np.median(counts))} items and the most active {counts.max():,}."
    )
    X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=args.seed)
    print(f"Training on {X_train.nnz:,} ratings, {X_test.nnz:,} held out.\n")
    model, seconds = _timed_fit(_model(args, verbose=1), X_train)
    print(
        f"\n{args.max_iter} epochs in {seconds:.2f} s: "
        f"{X_train.nnz * args.max_iter / seconds / 1e6:.1f}M ratings/s, the whole fit "
        "(the users' final solve included).\n"
    )
    test = X_test.tocoo()
    baseline = BaselineOnly().fit(X_train)
    _print_scores(
        test.data,
        {
            "FunkSVD": model.predict_ratings(test.row, test.col),
            "bias only (baseline)": baseline.predict_ratings(test.row, test.col),
        },
    )
    # three users from the median activity up (fewer when there are fewer users)
    by_activity = np.argsort(counts, kind="stable")
    picks = np.linspace(len(counts) // 2, len(counts) - 1, num=min(3, len(counts)))
    users = by_activity[np.unique(picks.astype(int))]
    items, _ = model.recommend(users=users, X=X_train[users], n=5)
    print(f"\nTop 5 unrated items for {len(users)} users, and their rank by the noiseless ratings:")
    for user, row in zip(users, items, strict=True):
        row = row[row >= 0]  # -1 pads the rows of users with fewer than 5 unrated items
        true = truth.item_factors @ truth.user_factors[user] + truth.item_bias
        true[X_train[[user]].indices] = -np.inf  # rank among the user's unrated items
        rank = np.argsort(np.argsort(-true, kind="stable"))[row] + 1
        if not len(row):
            print(f"  user {user} ({counts[user]} ratings): no unrated item left to recommend")
            continue
        print(
            f"  user {user} ({counts[user]} ratings): items {', '.join(map(str, row))}: "
            f"true ranks {', '.join(map(str, rank))} of {np.isfinite(true).sum():,}"
        )


def _fit(args):
    start = time.perf_counter()
    X, mapping = load_ratings(
        _ratings_path(args.ratings), format=args.format, columns=args.columns,
        cache=_cache(args), progress=not args.quiet, duplicates=args.duplicates,
    )  # fmt: skip
    if not args.quiet:
        print(
            f"Read {X.nnz:,} ratings of {X.shape[0]:,} users x {X.shape[1]:,} items in "
            f"{time.perf_counter() - start:.1f} s."
        )
    model, seconds = _timed_fit(_model(args, verbose=0 if args.quiet else 1), X)
    baseline = BaselineOnly().fit(X)
    extra = {
        "baseline_global_mean": np.float64(baseline.global_mean_),
        "baseline_user_bias": baseline.user_bias_,
        "baseline_item_bias": baseline.item_bias_,
        "rated_indptr": X.indptr,  # so that recommend can leave rated items out
        "rated_indices": X.indices,
        "source": np.array([str(p) for p in args.ratings]),
    }
    save_model(args.output, model, mapping, extra=extra)
    if not args.quiet:
        print(
            f"Fitted in {seconds:.1f} s ({X.nnz * args.max_iter / seconds / 1e6:.1f}M ratings/s); "
            f"saved {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)."
        )


def _evaluate(args):
    bundle = _load_bundle(args.model)
    users, items, ratings = read_ratings(
        _ratings_path(args.ratings), format=args.format, columns=args.columns,
        cache=_cache(args),
    )  # fmt: skip
    X, _ = ratings_to_csr(users, items, ratings, mapping=bundle["mapping"], unknown="drop",
                          duplicates=args.duplicates)  # fmt: skip
    n_cold = len(ratings) - X.nnz
    print(f"{len(ratings):,} ratings; {X.nnz:,} scored", end="")
    if n_cold:
        print(f", {n_cold:,} skipped (user or item not seen in training)", end="")
    print(".")
    if X.nnz == 0:
        raise ValueError("no rating in the file is of a user and an item seen in training.")
    test = X.tocoo()
    _print_scores(
        test.data,
        {
            "FunkSVD": bundle["model"].predict_ratings(test.row, test.col),
            "bias only (baseline)": bundle["baseline"].predict_ratings(test.row, test.col),
        },
    )


def _recommend(args):
    bundle = _load_bundle(args.model)
    mapping, model = bundle["mapping"], bundle["model"]
    titles = read_item_titles(args.items) if args.items is not None else {}
    user = _parse_id(args.user, mapping.user_ids)
    row = mapping.user_index([user])
    indptr, indices = bundle["rated"]
    rated = indices[indptr[row[0]] : indptr[row[0] + 1]]
    X_user = sp.csr_array(
        (np.ones(len(rated)), rated, [0, len(rated)]), shape=(1, mapping.shape[1])
    )
    items, scores = model.recommend(users=row, X=X_user, n=args.n)
    print(f"Top {args.n} for user {user} ({len(rated)} rated items left out):")
    for rank, (item, score) in enumerate(zip(items[0], scores[0], strict=True), start=1):
        if item < 0:
            break
        item_id = mapping.item_id([item])[0]
        title = titles.get(item_id, "") if isinstance(item_id, (int, np.integer)) else ""
        print(f"{rank:4d}. item {item_id!s:>8}  {score:5.2f}  {title}".rstrip())


# ----------------------------------------------------------------------------- helpers
def _timed_fit(model, X):
    start = time.perf_counter()
    model.fit(X)
    return model, time.perf_counter() - start


def _load_bundle(path):
    """The model, mapping, baseline and rated items of a file written by 'funksgd fit'."""
    model, mapping, extra = read_model_file(path)
    try:
        bundle = _bundle(model, mapping, extra)
    except (KeyError, ValueError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ValueError(
            f"{path} is a funksgd model file, but not one written by 'funksgd fit': {message}"
        ) from None
    return bundle


def _bundle(model, mapping, extra):
    """Check what 'funksgd fit' stores beside the model, and gather it."""
    if mapping is None:
        raise ValueError("it holds no user and item ids.")
    n_users, n_items = mapping.shape
    names = ["baseline_global_mean", "baseline_user_bias", "baseline_item_bias",
             "rated_indptr", "rated_indices"]  # fmt: skip
    missing = [name for name in names if name not in extra]
    if missing:
        raise ValueError(f"the arrays {', '.join(missing)} are missing.")
    mean, user_bias, item_bias, indptr, indices = (extra[name] for name in names)
    for values, shape, name in [(mean, (), "baseline_global_mean"),
                                (user_bias, (n_users,), "baseline_user_bias"),
                                (item_bias, (n_items,), "baseline_item_bias")]:  # fmt: skip
        if values.shape != shape or values.dtype.kind != "f" or not np.isfinite(values).all():
            raise ValueError(f"{name} is not {shape or 'a'} finite number(s).")
    if not (
        indptr.dtype.kind in "iu" and indices.dtype.kind in "iu"
        and indptr.shape == (n_users + 1,) and indices.ndim == 1
        and indptr[0] == 0 and indptr[-1] == len(indices) and np.all(np.diff(indptr) >= 0)
        and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_items))
    ):  # fmt: skip
        raise ValueError("the rated items (rated_indptr, rated_indices) are inconsistent.")
    baseline = BaselineOnly()  # fitted by 'funksgd fit': its attributes, as stored
    baseline.global_mean_, baseline.user_bias_, baseline.item_bias_ = (
        float(mean),
        user_bias,
        item_bias,
    )
    baseline.n_features_in_, baseline.n_iter_ = n_items, baseline.max_iter
    return {"model": model, "mapping": mapping, "baseline": baseline,
            "rated": (indptr, indices)}  # fmt: skip


def _parse_id(text, known_ids):
    """The command-line id in the type of the known ids (ratings files have integer ids)."""
    if known_ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            raise KeyError(f"unknown user id {text!r}: user ids are integers.") from None
    return text


def _print_scores(truth, predictions):
    width = max(map(len, predictions))
    print(f"{'held-out':<{width}}    RMSE     MAE")
    for name, predicted in predictions.items():
        error = predicted.astype(np.float64) - truth
        rmse, mae = np.sqrt(np.mean(error**2)), np.mean(np.abs(error))
        print(f"{name:<{width}}  {rmse:6.4f}  {mae:6.4f}")
