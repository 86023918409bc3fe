"""Model files that load without executing code: NumPy arrays and JSON metadata in a ``.npz``.

A pickle (``joblib.dump``, ``pickle.dump``) runs whatever code its author put in it when
it is loaded; a model file someone hands you should not. These files hold only numeric
and string arrays, read by ``np.load(allow_pickle=False)``, and a JSON document of
metadata (format name and version, the estimator's parameters and scalar attributes).
Everything is checked before an estimator is rebuilt from it, so a file that is damaged,
of another version or not a model at all raises a ValueError that says so.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import __version__

FORMAT = "funksgd-model"
FORMAT_VERSION = 1
_META = "__metadata__"
# Arrays of the estimator, with the dtype kinds they may have.
_FACTOR_ARRAYS = ("item_factors_", "user_factors_", "item_bias_", "user_bias_")
# Scalar and list attributes, stored in the JSON metadata.
_SCALARS = {
    "global_mean_": (float, int),
    "n_features_in_": int,
    "n_iter_": int,
    "t_": int,
    "loss_curve_": list,
    "validation_scores_": (list, type(None)),
}


def save_model(path, model, mapping=None, *, extra=None):
    """Write a fitted FunkSVD (and the ids of its rows and columns) to a model file.

    The file is a NumPy ``.npz`` archive of arrays plus JSON metadata, which
    :func:`load_model` reads back without executing any code. It is written
    to a temporary file in the same folder, then renamed into place: a
    failed write (disk full, Ctrl-C) leaves any earlier file at ``path``
    untouched.

    Parameters
    ----------
    path : path-like
        The file to write (any name; ``.npz`` is not added).
    model : FunkSVD
        A fitted estimator.
    mapping : IdMapping, default=None
        The ids of its rows and columns; ids must be integers or strings.
    extra : dict of str to ndarray, default=None
        More arrays to store (numbers or strings), returned by
        :func:`read_model_file`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from funksgd import FunkSVD
    >>> from funksgd.datasets import make_ratings
    >>> from funksgd._model_file import load_model, save_model
    >>> model = FunkSVD(n_components=2, max_iter=2, random_state=0)
    >>> model = model.fit(make_ratings(30, 20, 200, random_state=0))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> save_model(path, model)
    >>> loaded, mapping = load_model(path)
    >>> bool((loaded.predict_ratings([0], [1]) == model.predict_ratings([0], [1])).all())
    True
    """
    arrays, metadata = _estimator_to_arrays(model)
    if mapping is not None:
        for axis, ids in (("user", mapping.user_ids), ("item", mapping.item_ids)):
            ids = np.asarray(ids)
            if ids.dtype.kind not in "iuU":
                raise ValueError(
                    f"{axis} ids of dtype {ids.dtype} cannot be saved in a model file: "
                    "only integer or string ids can."
                )
            arrays[f"mapping/{axis}_ids"] = ids
    for name, values in (extra or {}).items():
        values = np.asarray(values)
        if values.dtype.kind not in "biufU":
            raise ValueError(f"extra array {name!r} of dtype {values.dtype} cannot be saved.")
        arrays[f"extra/{name}"] = values
    metadata.update(format=FORMAT, version=FORMAT_VERSION, funksgd_version=__version__)
    arrays[_META] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    _write_atomically(Path(path), arrays)


def load_model(path):
    """Read a model file written by :func:`save_model`, without executing code.

    Parameters
    ----------
    path : path-like
        The model file.

    Returns
    -------
    model : FunkSVD
        The fitted estimator, with the attributes it was saved with.
    mapping : IdMapping or None
        The ids of its rows and columns, if they were saved.

    Raises
    ------
    ValueError
        The file is not a funksgd model file (a pickle, a damaged file, another
        format version, missing or inconsistent arrays).
    FileNotFoundError
        There is no such file.
    """
    model, mapping, _ = read_model_file(path)
    return model, mapping


def read_model_file(path):
    """(model, mapping or None, dict of the extra arrays) of a model file; see load_model."""
    path = Path(path)
    arrays, metadata = _read_arrays(path)
    try:
        model = rebuild_estimator(metadata, arrays)
        mapping = _rebuild_mapping(arrays, model)
    except (ValueError, TypeError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ValueError(f"{path} is not a valid funksgd model file: {message}") from None
    extra = {name[len("extra/") :]: values for name, values in arrays.items()
             if name.startswith("extra/")}  # fmt: skip
    return model, mapping, extra


# ----------------------------------------------------------------------------- the estimator
def _estimator_to_arrays(model):
    """(arrays, JSON-able metadata) of a fitted FunkSVD."""
    if not hasattr(model, "item_factors_"):
        raise ValueError("the model is not fitted: fit it before saving it.")
    params = model.get_params()
    for name, value in params.items():
        if isinstance(value, np.generic):
            params[name] = value.item()
        elif isinstance(value, (type, np.dtype)):
            params[name] = np.dtype(value).name  # dtype=np.float32
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a RandomState object: its state is not kept
    arrays = {f"model/{name}": np.asarray(getattr(model, name)) for name in _FACTOR_ARRAYS}
    metadata = {"params": params, "attributes": {}}
    for name in _SCALARS:
        value = getattr(model, name)
        if isinstance(value, np.generic):
            value = value.item()
        metadata["attributes"][name] = list(map(float, value)) if isinstance(value, list) \
            else value  # fmt: skip
    fitted = model._fitted
    # as fitted, which set_params may have changed since
    metadata["fitted"] = {
        "biased": bool(fitted.biased), "alpha": float(fitted.alpha),
        "rating_range": None if fitted.rating_range is None else list(fitted.rating_range),
        "popularity_weight": float(fitted.popularity_weight),
        "beta": float(fitted.beta),
    }  # fmt: skip
    if fitted.item_counts is not None:
        arrays["model/item_counts_"] = fitted.item_counts
    schedule = fitted.schedule
    metadata["schedule"] = {"t": int(schedule.t), "eta": float(schedule.eta),
                            "scale": float(schedule.scale)}  # fmt: skip
    if schedule.user_grad_sq is not None:
        arrays["model/schedule_user_grad_sq"] = schedule.user_grad_sq
        arrays["model/schedule_item_grad_sq"] = schedule.item_grad_sq
    return arrays, metadata


def rebuild_estimator(metadata, arrays):
    """A fitted FunkSVD from the metadata and arrays of a model file, checked first.

    The one place that knows the fitted state of FunkSVD: adapt it when that changes.
    """
    from ._funk_svd import FunkSVD
    from ._inference import Fitted

    params = _expect(metadata.get("params"), dict, "params")
    try:
        model = FunkSVD(**params)
        model._validate_params()
    except TypeError as error:  # an unknown parameter name
        raise ValueError(f"parameters {params!r}: {error}") from None
    factors = _checked_factors(arrays, model.n_components)
    n_items = len(factors["item_factors_"])
    attributes = _checked_attributes(metadata, n_items)
    fitted = _expect(metadata.get("fitted"), dict, "fitted")
    biased = _expect(fitted.get("biased"), bool, "fitted biased")
    alpha = _expect(fitted.get("alpha"), (int, float), "fitted alpha")
    if isinstance(alpha, bool) or not 0 < alpha < np.inf:
        raise ValueError(f"fitted alpha = {alpha!r} is not a positive number.")
    rating_range = _checked_range(fitted.get("rating_range"))
    weight = _expect(fitted.get("popularity_weight", 0.0), (int, float), "popularity_weight")
    beta = _expect(fitted.get("beta", 0.0), (int, float), "beta")
    if isinstance(beta, bool) or not 0 <= beta < np.inf:
        raise ValueError(f"fitted beta = {beta!r} is not a non-negative number.")
    counts = arrays.get("model/item_counts_")
    if isinstance(weight, bool) or not 0 <= weight < np.inf:
        raise ValueError(f"popularity_weight = {weight!r} is not a non-negative number.")
    if counts is not None and (
        counts.shape != (n_items,) or counts.dtype.kind not in "iu" or counts.min(initial=0) < 0
    ):
        raise ValueError("item_counts_ is not one non-negative count per item.")
    schedule = _rebuild_schedule(metadata, arrays, factors["item_factors_"].dtype, model)
    model._fitted = Fitted(
        user_factors=factors["user_factors_"], item_factors=factors["item_factors_"],
        user_bias=factors["user_bias_"], item_bias=factors["item_bias_"],
        global_mean=float(attributes["global_mean_"]), biased=biased, alpha=float(alpha),
        schedule=schedule, n_iter=attributes["n_iter_"], t=attributes["t_"],
        loss_curve=[float(x) for x in attributes["loss_curve_"]],
        validation_scores=attributes["validation_scores_"], rating_range=rating_range,
        item_counts=counts, popularity_weight=float(weight), beta=float(beta),
    )  # fmt: skip
    model.n_features_in_ = n_items
    return model


def _checked_range(values):
    """The fitted (lowest, highest) training rating, or None (no clipping)."""
    if values is None:
        return None
    if not (
        isinstance(values, list) and len(values) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)
        and np.isfinite(values).all() and values[0] <= values[1]
    ):  # fmt: skip
        raise ValueError(f"fitted rating_range = {values!r} is not [lowest, highest].")
    return float(values[0]), float(values[1])


def _checked_factors(arrays, n_components):
    """The factor and bias arrays, finite, of one float dtype and consistent shapes."""
    factors = {name: arrays.get(f"model/{name}") for name in _FACTOR_ARRAYS}
    for name, values in factors.items():
        if values is None:
            raise ValueError(f"the array {name} is missing.")
        if values.dtype not in (np.float32, np.float64) or not np.isfinite(values).all():
            raise ValueError(f"{name} must hold finite float32 or float64 numbers.")
    n_items, k = _shape2(factors["item_factors_"], "item_factors_")
    n_users, k_users = _shape2(factors["user_factors_"], "user_factors_")
    dtypes = {values.dtype for values in factors.values()}
    if k != k_users or k != n_components or len(dtypes) > 1:
        raise ValueError(
            f"the factors disagree: {k} and {k_users} components, n_components="
            f"{n_components}, dtypes {sorted(map(str, dtypes))}."
        )
    if factors["item_bias_"].shape != (n_items,) or factors["user_bias_"].shape != (n_users,):
        raise ValueError("the biases do not have one value per item and per user.")
    return factors


def _checked_attributes(metadata, n_items):
    """The scalar and list attributes, of the right types and finite."""
    attributes = _expect(metadata.get("attributes"), dict, "attributes")
    for name, kinds in _SCALARS.items():
        if name not in attributes:
            raise ValueError(f"the attribute {name} is missing.")
        value = _expect(attributes[name], kinds, name)
        numbers = value if isinstance(value, list) else [value]
        if value is not None and any(
            isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x)
            for x in numbers
        ):
            raise ValueError(f"{name} has the wrong type or is not finite.")
    if attributes["n_features_in_"] != n_items:
        raise ValueError(f"n_features_in_ is not the {n_items} items of the factors.")
    return attributes


def _rebuild_schedule(metadata, arrays, dtype, model):
    """The learning-rate state that partial_fit and warm_start continue from."""
    from ._engine import Schedule

    saved = _expect(metadata.get("schedule"), dict, "schedule")
    for name in ("t", "eta", "scale"):
        value = _expect(saved.get(name), (int, float), f"schedule {name}")
        if isinstance(value, bool) or not np.isfinite(value) or value < 0:
            raise ValueError(f"schedule {name} = {value!r} is not a non-negative number.")
    schedule = Schedule(model.eta0, float(saved["scale"]))
    schedule.t, schedule.eta = int(saved["t"]), float(saved["eta"])
    user_sq = arrays.get("model/schedule_user_grad_sq")
    item_sq = arrays.get("model/schedule_item_grad_sq")
    if (user_sq is None) != (item_sq is None):
        raise ValueError("only one of the two AdaGrad accumulators is saved.")
    if user_sq is not None:
        n_users, n_items = len(arrays["model/user_factors_"]), len(arrays["model/item_factors_"])
        if user_sq.shape != (n_users,) or item_sq.shape != (n_items,) or not (
            user_sq.dtype == item_sq.dtype == dtype
            and np.isfinite(user_sq).all() and np.isfinite(item_sq).all()
        ):  # fmt: skip
            raise ValueError("the AdaGrad accumulators do not match the factors.")
        schedule.user_grad_sq, schedule.item_grad_sq = user_sq, item_sq
    return schedule


def _rebuild_mapping(arrays, model):
    from .datasets import IdMapping

    user_ids, item_ids = arrays.get("mapping/user_ids"), arrays.get("mapping/item_ids")
    if user_ids is None and item_ids is None:
        return None
    if user_ids is None or item_ids is None:
        raise ValueError("only one of the user and item ids is saved.")
    for ids, n, axis in ((user_ids, len(model.user_factors_), "user"),
                         (item_ids, len(model.item_factors_), "item")):  # fmt: skip
        if ids.dtype.kind not in "iuU" or ids.shape != (n,):
            raise ValueError(f"the {axis} ids are not {n} integers or strings.")
    return IdMapping(user_ids, item_ids)


def _expect(value, kinds, name):
    if not isinstance(value, kinds):
        raise ValueError(f"{name} is missing or has the wrong type ({type(value).__name__}).")
    return value


def _shape2(values, name):
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {values.shape}.")
    return values.shape


# ----------------------------------------------------------------------------- the file
def _read_arrays(path):
    """({name: array}, metadata) of a model file, or a ValueError saying what it is."""
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if _looks_like_a_pickle(head):
        raise ValueError(
            f"{path} is a pickle (or compressed pickle), perhaps a model that an earlier funksgd "
            "wrote with joblib. Loading a pickle can run any code its author put in it, "
            "so funksgd does not; fit the model again to write a safe model file."
        )
    if head != b"PK\x03\x04":
        raise ValueError(f"{path} is not a funksgd model file (not a .npz archive).")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{path} is not a readable funksgd model file ({error}).") from None
    try:
        metadata = json.loads(arrays.pop(_META).tobytes().decode())
    except (KeyError, ValueError, UnicodeDecodeError, AttributeError):
        raise ValueError(f"{path} is not a funksgd model file (no metadata).") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a funksgd model file (format is not {FORMAT!r}).")
    version = metadata.get("version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ValueError(
            f"{path} is a funksgd model file of format version {version!r}"
            + (f", written by funksgd {metadata.get('funksgd_version')}" if newer else "")
            + f"; this funksgd {__version__} reads version {FORMAT_VERSION}."
            + (" Upgrade funksgd to read it." if newer else "")
        )
    return arrays, metadata


def _looks_like_a_pickle(head):
    """A pickle, or what joblib compresses pickles with (zlib, gzip, bz2, lzma, xz)."""
    zlib = len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0
    return zlib or head[:1] == b"\x80" or head.startswith((b"\x1f\x8b", b"BZh", b"]\x00\x00",
                                                          b"\xfd7zX"))  # fmt: skip


def _write_atomically(path, arrays):
    """``np.savez`` to a temporary file beside ``path``, flushed, then renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0o600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # disk full, file-size limit, Ctrl-C: the old file stays
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
