"""DaskFunkSVD: FunkSVD trained by DSGD on the workers of a Dask cluster."""

import copy
import inspect
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._funk_svd import FunkSVD
from .._inference import Fitted as LocalFitted
from ._dsgd import Fitted, Settings, fit_grid
from ._executors import InProcess, OnCluster, WorkerLost
from ._ingest import ingest

# a fit restarts from the start after losing a worker, at most this many times in all
ATTEMPTS = 3


class DaskFunkSVD(BaseEstimator):
    """FunkSVD trained on a Dask cluster by distributed SGD (DSGD), returning NumPy factors.

    The ratings (a Dask DataFrame with a row per rating, or a Dask array of sparse
    chunks) are shuffled once into a ``n_blocks x n_blocks`` grid of cells kept on the
    workers: the cells of user block ``b`` and that block's factors live on one worker.
    Each epoch runs ``n_blocks`` strata; in a stratum every user block trains with a
    different item block, all at once, with the same compiled kernel as
    :class:`~funksgd.FunkSVD`, and then the item blocks move on. Only statistics, the
    distinct ids, per-id counts, the fitted factors and the ratings of a bounded sample
    of users reach the client, never all the ratings. As ``FunkSVD.fit``, one rating
    each of up to 5,000 users (with ``early_stopping``, their validation ratings) is held
    out of the epochs; after the last epoch the client chooses on them, with the same
    functions, the users' prior and ``recommend``'s popularity weight; then each worker
    solves its users with that prior, the item factors broadcast once.
    :meth:`to_local` returns an ordinary fitted :class:`~funksgd.FunkSVD`, which
    folds in and ranks as one fitted on the same data.

    For a given ``random_state`` and ``n_blocks`` the factors are bit-identical on any
    number of workers, and with ``client="sync"`` (the same tasks run in this
    process). They differ in the last bits from ``FunkSVD``'s, whose single pass
    over the grid visits the same ratings in another order; the accuracy is the same.

    Parameters
    ----------
    n_components, alpha, learning_rate, eta0, power_t, max_iter, tol, early_stopping, \
validation_fraction, n_iter_no_change, biased, clip, popularity_weight, init_std, shuffle, \
warm_start, random_state, verbose, dtype
        As :class:`~funksgd.FunkSVD` (``early_stopping`` holds out a random share of each
        user block's ratings; ``verbose`` prints one line per epoch on the client).
    algorithm : {"simultaneous", "funk"}, default="simultaneous"
        As :class:`~funksgd.FunkSVD`. "funk" trains one factor at a time over the same
        strata; after each factor, its part of every prediction is added to a cache
        kept beside each cell on the workers.
    n_jobs : int, default=None
        Threads of the model :meth:`to_local` returns (training uses one thread per
        Dask task; give workers more threads to run more cells at once).
    n_blocks : int, default=None
        User blocks and item blocks of the grid. None: the number of threads of the
        cluster's workers (one cell per thread in each stratum; fewer blocks mean fewer
        copies of the user blocks and fewer strata per epoch). Fix it to get the same
        factors whatever the cluster's size.
    user_col, item_col, rating_col : str, default="user", "item", "rating"
        Columns of a DataFrame ``X``. Ids may be of any hashable type.
    client : distributed.Client, "sync" or None, default=None
        The cluster to train on; None takes the current client
        (``distributed.get_client()``). "sync" runs the same tasks one by one in this
        process, without a cluster (for tests and debugging). ``clone`` shares the
        client; pickling drops it (to None).
    timeout : float or None, default=None
        Seconds one step of the fit (an epoch, the user solve, data sent to the
        workers) may take before the fit raises ``TimeoutError``; None waits as long as
        it takes. Also how long a cluster without workers is given for one to join (30 s
        when None). A fit that loses a worker starts again (same seed, same factors), at
        most 3 times in all, then raises :class:`WorkerLost`.

    Attributes
    ----------
    user_factors_, item_factors_, user_bias_, item_bias_, global_mean_, n_iter_, t_, \
loss_curve_, validation_scores_, best_validation_score_, rating_range_
        As :class:`~funksgd.FunkSVD`; rows and columns follow ``mapping_``.
    item_counts_ : ndarray of shape (n_items,)
        Ratings of each item (counted on the workers), for ``recommend``'s popularity
        offset.
    popularity_weight_ : float
        Weight of ``log(1 + item_counts_)`` in ``recommend``'s ranking: learnt as
        :class:`~funksgd.FunkSVD`'s ``popularity_weight="auto"``, on the held-out
        ratings of the sampled users.
    mapping_ : funksgd.datasets.IdMapping
        The user and item ids of the rows of ``user_factors_`` and ``item_factors_``.
    n_blocks_ : int
        Blocks per side of the grid used.

    See Also
    --------
    funksgd.FunkSVD : The same model on one machine.

    References
    ----------
    .. [1] R. Gemulla, E. Nijkamp, P. J. Haas and Y. Sismanis, "Large-scale matrix
       factorization with distributed stochastic gradient descent", KDD 2011.

    Examples
    --------
    >>> import pandas as pd
    >>> import dask.dataframe as dd
    >>> from funksgd.dask import DaskFunkSVD
    >>> ratings = pd.DataFrame({"user": ["ann", "ann", "bob", "bob", "cy", "cy"],
    ...                         "item": ["tea", "jam", "tea", "pie", "jam", "pie"],
    ...                         "rating": [5.0, 3.0, 4.0, 1.0, 2.0, 5.0]})
    >>> df = dd.from_pandas(ratings, npartitions=2)
    >>> model = DaskFunkSVD(n_components=2, n_blocks=2, random_state=0, client="sync").fit(df)
    >>> local, mapping = model.to_local()
    >>> local.user_factors_.shape, mapping.item_ids.tolist()
    ((3, 2), ['jam', 'pie', 'tea'])
    """

    _parameter_constraints = {
        **FunkSVD._parameter_constraints,
        "algorithm": [StrOptions({"simultaneous", "funk"})],
        "n_blocks": [Interval(Integral, 1, None, closed="left"), None],
        "user_col": "no_validation",
        "item_col": "no_validation",
        "rating_col": "no_validation",
        "client": "no_validation",
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *args, **kwargs):
        bound = self.__init__.__signature__.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    # FunkSVD's parameters, with its defaults, then this class's own: one list to keep
    __init__.__signature__ = inspect.signature(FunkSVD.__init__).replace(
        parameters=[
            *inspect.signature(FunkSVD.__init__).parameters.values(),
            *(
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                for name, default in {
                    "n_blocks": None,
                    "user_col": "user",
                    "item_col": "item",
                    "rating_col": "rating",
                    "client": None,
                    "timeout": None,
                }.items()
            ),
        ]
    )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the factors to the ratings in ``X`` on the cluster.

        Parameters
        ----------
        X : dask.dataframe.DataFrame or dask.array.Array
            A DataFrame with a row per rating (columns ``user_col``, ``item_col``,
            ``rating_col``), or a users x items Dask array whose chunks are
            scipy.sparse matrices (stored entries are ratings) or NumPy arrays (NaN
            marks a missing rating).
        y : None
            Ignored.

        Returns
        -------
        self : DaskFunkSVD
            The fitted estimator.
        """
        self._fit(X)  # sets the fitted attributes only once the fit has succeeded
        return self

    def _fit(self, X):
        # every attempt replays the same random stream: a restarted fit gives the same factors
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        settings = Settings.from_params(self.get_params(), n_threads=1)
        warm = self.warm_start and hasattr(self, "item_factors_")
        n_blocks = self.n_blocks
        for attempt in range(1, ATTEMPTS + 1):
            executor = _executor(self.client, self.timeout)
            try:
                data = ingest(
                    executor, X, user_col=self.user_col, item_col=self.item_col,
                    rating_col=self.rating_col, dtype=np.dtype(self.dtype),
                    mapping=self.mapping_ if warm else None,
                )  # fmt: skip
                n_users, n_items = data.mapping.shape
                n_blocks = n_blocks or max(1, min(executor.n_threads(), n_users, n_items))
                rng = np.random.RandomState(seed)
                resume = self._resume() if warm else None
                fitted = fit_grid(executor, data, settings, rng, n_blocks, resume,
                                  popularity=self.popularity_weight == "auto")  # fmt: skip
                break
            except WorkerLost as error:
                if attempt == ATTEMPTS:
                    raise WorkerLost(
                        f"The Dask cluster lost workers during each of {ATTEMPTS} attempts to "
                        f"fit (last: {error}). Check the workers' memory and logs."
                    ) from error
                warnings.warn(
                    f"The Dask cluster lost a worker ({error}); restarting the fit from the "
                    f"start (attempt {attempt + 1} of {ATTEMPTS}), which gives the same factors.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        weight = self.popularity_weight
        self._store(fitted, data.mapping, fitted.popularity_weight if weight == "auto" else weight)

    def _resume(self):
        return Fitted(
            self.user_factors_, self.user_bias_, self.item_factors_, self.item_bias_,
            self.global_mean_, copy.deepcopy(self._schedule_state), self.n_blocks_,
        )  # fmt: skip

    def _store(self, fitted, mapping, popularity_weight):
        self.user_factors_, self.user_bias_ = fitted.user_factors, fitted.user_bias
        self.item_factors_, self.item_bias_ = fitted.item_factors, fitted.item_bias
        self.global_mean_ = fitted.global_mean
        self.rating_range_ = fitted.rating_range
        self._schedule_state = fitted.schedule
        self.t_ = fitted.schedule.t
        self.n_iter_, self.loss_curve_ = fitted.n_iter, fitted.loss_curve
        scores = fitted.validation_scores or None
        self.validation_scores_ = scores
        self.best_validation_score_ = max(scores) if scores else None
        self.mapping_ = mapping
        self.n_blocks_ = fitted.n_blocks
        self.item_counts_ = fitted.item_counts
        self.popularity_weight_ = popularity_weight
        self._beta = fitted.beta

    def __sklearn_clone__(self):
        # a distributed.Client cannot be deep-copied: the clone shares it
        params = self.get_params(deep=False)
        return type(self)(**{
            name: value if name == "client" else clone(value, safe=False)
            for name, value in params.items()
        })  # fmt: skip

    def __getstate__(self):
        # nor pickled: an unpickled model trains on the current client, or on client=
        state = super().__getstate__().copy()
        if not (state.get("client") is None or isinstance(state.get("client"), str)):
            state["client"] = None
        return state

    def to_local(self):
        """The fitted model as a plain :class:`~funksgd.FunkSVD`, and its id mapping.

        Returns
        -------
        model : FunkSVD
            Fitted with these factors: it predicts, transforms, recommends and
            pickles like any ``FunkSVD``.
        mapping : funksgd.datasets.IdMapping
            Original user and item ids <-> the model's rows and columns.
        """
        check_is_fitted(self)
        return local_model(self), self.mapping_


def local_model(fitted):
    """A fitted ``FunkSVD`` with the parameters and fitted attributes of ``fitted``."""
    model = FunkSVD(**_local_params(fitted))
    counts = getattr(fitted, "item_counts_", None)
    model._fitted = LocalFitted(
        user_factors=fitted.user_factors_.copy(), item_factors=fitted.item_factors_.copy(),
        user_bias=fitted.user_bias_.copy(), item_bias=fitted.item_bias_.copy(),
        global_mean=fitted.global_mean_, biased=fitted.biased, alpha=fitted.alpha,
        schedule=copy.deepcopy(fitted._schedule_state), n_iter=fitted.n_iter_, t=fitted.t_,
        loss_curve=list(fitted.loss_curve_), validation_scores=fitted.validation_scores_,
        rating_range=fitted.rating_range_,
        # a model pickled before they were learnt has none: no counts, weight 0, beta 0
        item_counts=None if counts is None else counts.copy(),
        popularity_weight=getattr(fitted, "popularity_weight_", 0.0),
        beta=getattr(fitted, "_beta", 0.0),
    )  # fmt: skip
    model.n_features_in_ = len(fitted.item_factors_)
    return model


def _local_params(estimator):
    """The parameters of ``estimator`` that ``FunkSVD`` takes."""
    return {name: value for name, value in estimator.get_params().items()
            if name in FunkSVD._parameter_constraints}  # fmt: skip


def _executor(client, timeout):
    if isinstance(client, str):
        if client != "sync":
            raise ValueError(
                f"client must be a distributed.Client, 'sync' or None, got {client!r}."
            )
        return InProcess()
    if client is None:
        from distributed import get_client

        try:
            client = get_client()
        except ValueError as error:
            raise ValueError(
                "DaskFunkSVD found no Dask client: create one first (distributed.Client(...)), "
                "pass client=, or client='sync' to run in this process."
            ) from error
    return OnCluster(client, timeout)
