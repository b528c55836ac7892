"""Input validation and target encoding shared by skmlp's estimators.

What a call's data must be before any training starts: DataFrame columns that
numpy cannot take (named, with the fix), hidden layer sizes, class labels,
dtypes, sample weights for scorers, the class-weight totals, data moved to the
engine's device, and scikit-learn's rule for storing ``__init__`` arguments.
"""

import dataclasses
import inspect
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier

from ._ops import engine_of, get_ops

try:  # scikit-learn >= 1.6: caches np.unique(y) on the array for its checks
    from sklearn.utils._unique import attach_unique as _attach_unique
except ImportError:  # pragma: no cover - older scikit-learn computes it each time

    def _attach_unique(y):
        return y


_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's MLP takes sample_weight from 1.7 on.
_MLP_TAKES_WEIGHTS = "sample_weight" in inspect.signature(MLPClassifier.fit).parameters
_FLOAT_DTYPES = (np.float64, np.float32)


def _frame_columns(X):
    """Column names of a pandas DataFrame, or None for anything else."""
    if not type(X).__module__.startswith("pandas") or not hasattr(X, "dtypes"):
        return None
    return list(X.columns)


def _non_numeric_columns(X, columns):
    """The columns of DataFrame X that cannot become floats (strings,
    categories of strings, dates, ...); numbers held as objects can."""
    found = []
    for i, column in enumerate(columns):
        values = X.iloc[:, i]
        if values.dtype.kind in "biufc":  # complex: scikit-learn's own error
            continue
        if values.dtype.kind in "mM":  # dates and durations
            found.append(column)
            continue
        try:
            np.asarray(values.dropna().to_numpy(), dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            found.append(column)
    return found


def _explained_frame_error(estimator, X, name):
    """A ValueError that names the columns of DataFrame X that validation
    refused, and says what to do; None when X is not a DataFrame or no
    column is at fault (the original error then stands)."""
    columns = _frame_columns(X)
    if columns is None:
        return None
    cls = type(estimator).__name__
    tabular = (
        "TabularMLPClassifier" if is_classifier(estimator) else "TabularMLPRegressor"
    )
    non_numeric = _non_numeric_columns(X, columns)
    if non_numeric:
        return ValueError(
            f"{name} has non-numeric columns {non_numeric}: {cls}, like "
            "scikit-learn's MLP, takes numbers only. Encode them first, e.g. "
            "make_pipeline(make_column_transformer((OneHotEncoder("
            f"handle_unknown='ignore'), {non_numeric}), remainder=StandardScaler()), "
            f"{cls}()), or use skmlp.{tabular}, which takes the DataFrame as it "
            "is (skmlp.TabularPreprocessor alone does its encoding)."
        )
    missing = [c for c, has in zip(columns, X.isna().any(), strict=True) if has]
    if missing:
        return ValueError(
            f"{name} has missing values (NaN) in columns {missing}: {cls}, like "
            "scikit-learn's MLP, needs complete data. Impute them first, e.g. "
            f"make_pipeline(SimpleImputer(), StandardScaler(), {cls}()), or use "
            f"skmlp.{tabular}, which takes missing values as they are."
        )
    return None


@contextmanager
def _naming_columns(estimator, X, name="X"):
    """Validation of X that, when it refuses a DataFrame, names the
    offending columns (see :func:`_explained_frame_error`)."""
    try:
        yield
    except (TypeError, ValueError) as error:
        explained = _explained_frame_error(estimator, X, name)
        if explained is None:
            raise
        raise explained from error


def _hidden_sizes(hidden_layer_sizes):
    """hidden_layer_sizes as a list of positive ints, or a ValueError."""
    sizes = hidden_layer_sizes
    if isinstance(sizes, (Integral, np.integer)):
        sizes = [sizes]
    sizes = list(sizes)
    for size in sizes:
        if not isinstance(size, (Integral, np.integer)) or isinstance(size, bool):
            raise ValueError(
                f"hidden_layer_sizes must hold integers, got {hidden_layer_sizes!r}; "
                "pass for example (100,) or (64, 32)."
            )
    if any(size <= 0 for size in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(size) for size in sizes]


def _balanced(index, sample_weight):
    """Per-sample 'balanced' class weights from weighted class counts.

    A class c present with total sample weight s_c weighs
    ``sum(s) / (n_present_classes * s_c)``: scikit-learn's 'balanced'
    (``compute_class_weight``, with ``sample_weight`` from 1.7 on), computed
    here so that it works with every supported scikit-learn. Only samples
    with positive weight count, so that zero weights act like removed rows and
    integer weights like repeated rows.
    """
    weights = np.ones(index.shape[0]) if sample_weight is None else sample_weight
    totals = np.bincount(index, weights=np.where(weights > 0, weights, 0.0))
    present = totals > 0
    per_class = np.zeros_like(totals)
    per_class[present] = totals.sum() / (present.sum() * totals[present])
    return per_class[index]


def _check_classes(classes):
    """partial_fit's ``classes``: a ValueError for NaN or infinite labels, which
    could never match a target (and which numpy would warn about)."""
    values = np.asarray(classes)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        raise ValueError(
            f"classes holds NaN or infinite values ({values!r}); pass the finite "
            "labels that y can contain."
        )


def _has_unknown_labels(labels, known):
    """Whether some of ``labels`` are not in ``known``. Strings never equal
    numbers: said directly, where numpy would warn and compare nothing."""
    kinds = {np.asarray(labels).dtype.kind, np.asarray(known).dtype.kind}
    if kinds & set("US") and kinds & set("biuf"):
        return True
    return len(np.setdiff1d(labels, known, assume_unique=True)) > 0


def _dtype_of(X):
    """X's dtype as numpy names it (X: numpy, sparse, or another namespace)."""
    if isinstance(X.dtype, np.dtype):
        return X.dtype
    return np.dtype(str(X.dtype).rsplit(".", 1)[-1])  # torch.float32 -> float32


def _on_device(data, X_given):
    """The validated host data of ``data`` on the device of its engine.

    X stays the array the user passed when validation kept it as it was (a
    float32 or float64 array); class indicators become X's float dtype.
    """
    ops, X = data.ops, data.X
    dtype = X.dtype
    X = X_given if _dtype_of(X_given) == dtype else ops.asarray(X)

    def moved(array, as_dtype=None):
        return None if array is None else ops.asarray(array, as_dtype)

    given = data.given
    if given is not None:
        X_val, Y_val, sw_val = given
        given = (moved(X_val), moved(Y_val, dtype), moved(sw_val))
    return dataclasses.replace(
        data,
        X=X,
        Y=moved(data.Y, dtype),
        sample_weight=moved(data.sample_weight),
        given=given,
    )


def _accepts_sample_weight(scorer):
    """Whether a scorer can be called with sample_weight=: scikit-learn's
    scorers can; a plain function when it names the parameter or takes
    **kwargs."""
    if hasattr(scorer, "_score_func"):  # scikit-learn's _Scorer
        return True
    try:
        parameters = inspect.signature(scorer).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "sample_weight" or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


def _store_init_params(estimator, init_locals):
    """Store each ``__init__`` argument under its own name, and nothing else.

    scikit-learn's rule for ``__init__``; each estimator's signature stays
    explicit, so ``get_params`` and ``clone`` see every parameter.
    """
    for name, value in init_locals.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _fitted_engine(estimator, fitted_array, X, method):
    """The engine of a fitted model (the one of ``fitted_array``, see
    ``_ops.py``), after checking that X belongs to it: the namespace and
    device the model was fitted on, or a ValueError that says how to move
    the model."""
    fitted, given = engine_of(fitted_array), get_ops(X)
    if fitted == given:
        return fitted
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the "
        "same namespace and the same device as those passed to fit(): the model "
        f"was fitted on {fitted.describe()} and gets {given.describe()}. "
        "Pass X as the model's arrays (with scikit-learn's "
        "array_api_dispatch on), or move the model to X's namespace and "
        "device: 'from sklearn.utils._array_api import "
        "get_namespace_and_device, move_estimator_to; xp, _, device = "
        "get_namespace_and_device(X); estimator = move_estimator_to("
        "estimator, xp, device)'."
    )
