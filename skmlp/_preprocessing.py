"""TabularPreprocessor: a table as it comes, as the features a tabular MLP reads.

Columns are typed once, in fit, the way HistGradientBoosting's
``categorical_features='from_dtype'`` types them (extended to object, string
and bool columns). Numeric columns are robustly scaled and smoothly clipped
(RealMLP) or mapped to normal quantiles (TabM); categorical columns become one
+-1 feature, a one-hot block or an integer code for an embedding, each with a
slot for missing and unknown values.

Fitting is a transaction: every statistic is computed into locals and the
fitted attributes are assigned together at the end, so a fit that raises
leaves a fitted transformer exactly as it was. pandas is imported by the
caller, never here: numpy input needs no pandas.
"""

import functools
import numbers
import sys
from numbers import Integral

import numpy as np
from scipy.special import ndtri
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from ._recent import RecentEntries

SMOOTH_CLIP_BOUND = 3.0
_KINDS = ("numeric", "indicator", "binary", "onehot", "code")
_MISSING_TYPE_NAMES = ("NAType", "NaTType")  # pandas.NA and pandas.NaT


# --- reading the table -------------------------------------------------------


def _pandas():
    """The pandas module if the caller imported it (a DataFrame implies it)."""
    return sys.modules.get("pandas")


def _is_dataframe(X):
    pd = _pandas()
    return pd is not None and isinstance(X, pd.DataFrame)


def _as_table(X, estimator, *, fitting):
    """X as a pandas DataFrame or a 2-D ndarray (object dtype kept as it is)."""
    if type(X).__module__.partition(".")[0] == "polars":
        X = X.to_pandas()  # column dtypes survive: Categorical/Enum -> category
    if _is_dataframe(X):
        _check_frame_shape(X, estimator, fitting=fitting)
        return X
    if isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=object)  # numbers stay numbers beside strings
    return check_array(
        X,
        dtype=None,
        ensure_all_finite=False,
        ensure_min_samples=1 if fitting else 0,
        estimator=estimator,
    )


def _check_frame_shape(X, estimator, *, fitting):
    name = type(estimator).__name__
    if X.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
            f"is required by {name}: pass at least one column."
        )
    if fitting and X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 "
            f"is required by {name}: fit needs at least one row."
        )


def _columns(table):
    """(name, column) per column: a DataFrame's column arrays (a numpy array
    for numpy dtypes, else the pandas extension array: Categorical,
    IntegerArray, ...), slices of an array."""
    if not _is_dataframe(table):
        return [(f"x{j}", table[:, j]) for j in range(table.shape[1])]
    names = [str(name) for name in table.columns]
    arrays = getattr(table, "_iter_column_arrays", None)
    if arrays is not None:  # a tenth of items()'s time: no Series per column
        return list(zip(names, arrays(), strict=True))
    columns = (column for _, column in table.items())  # pandas without it
    return [
        (name, c.to_numpy() if isinstance(c.dtype, np.dtype) else c.array)
        for name, c in zip(names, columns, strict=True)
    ]


def _is_extension_array(column):
    """A pandas extension array (Categorical, IntegerArray, StringArray, ...)."""
    pd = _pandas()
    return pd is not None and isinstance(column, pd.api.extensions.ExtensionArray)


def _has_the_fitted_columns(estimator, table):
    """Whether table is a DataFrame with exactly the string column names seen
    in fit, in order: scikit-learn's feature-name check (a fifth of a one-row
    transform in scikit-learn 1.9) would then pass without a word."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or not _is_dataframe(table):
        return False
    columns = table.columns
    return len(columns) == len(names) and all(
        type(c) is str and c == n for c, n in zip(columns, names, strict=True)
    )


def _is_missing(value):
    """None, NaN, pandas.NA or pandas.NaT."""
    if value is None or type(value).__name__ in _MISSING_TYPE_NAMES:
        return True
    return isinstance(value, (float, np.floating)) and value != value


# --- column typing -----------------------------------------------------------


def _dtype_is_categorical(dtype, name):
    """from_dtype's rule for one pandas dtype; a TypeError for the untypeable."""
    api = _pandas().api.types
    if (
        isinstance(dtype, _pandas().CategoricalDtype)
        or api.is_bool_dtype(dtype)
        or api.is_object_dtype(dtype)
        or api.is_string_dtype(dtype)
    ):
        return True
    if api.is_complex_dtype(dtype):
        raise ValueError(
            f"Complex data not supported: column {name!r} has dtype {dtype}; "
            "split it into real and imaginary columns."
        )
    if api.is_numeric_dtype(dtype):
        return False
    raise TypeError(
        f"Column {name!r} has dtype {dtype}, which is neither numeric nor "
        "categorical; convert it to numbers (a datetime to a timestamp, for "
        "example) or list it in categorical_features."
    )


def _categorical_mask(table, categorical_features, names):
    """Which input columns are categorical, as a bool ndarray."""
    spec = categorical_features
    n_columns = len(names)
    if spec is None or (isinstance(spec, str) and not _is_dataframe(table)):
        return np.zeros(n_columns, dtype=bool)  # numpy input: numeric unless told
    if isinstance(spec, str):  # "from_dtype" on a DataFrame
        return np.array(
            [
                _dtype_is_categorical(d, n)
                for d, n in zip(table.dtypes, names, strict=True)
            ],
            dtype=bool,
        )
    spec = np.asarray(spec)
    if spec.ndim != 1:
        raise ValueError(
            "categorical_features must be 1-D (names, indices or a bool mask), "
            f"got shape {spec.shape}."
        )
    if spec.size == 0:
        return np.zeros(n_columns, dtype=bool)
    if spec.dtype.kind == "b":
        return _mask_from_bools(spec, n_columns)
    if spec.dtype.kind in "iu":
        return _mask_from_indices(spec, n_columns)
    if spec.dtype.kind in "UO" and all(isinstance(s, str) for s in spec):
        return _mask_from_names(spec, table)
    raise ValueError(
        "categorical_features must hold column names, integer indices or one "
        f"bool per column, got {spec.tolist()!r}."
    )


def _mask_from_bools(spec, n_columns):
    if spec.shape != (n_columns,):
        raise ValueError(
            f"categorical_features as a bool mask needs one entry per column "
            f"({n_columns}), got {spec.shape[0]}."
        )
    return spec.copy()


def _mask_from_indices(spec, n_columns):
    if spec.min() < 0 or spec.max() >= n_columns:
        raise ValueError(
            f"categorical_features holds index {int(spec.max())} or "
            f"{int(spec.min())}, outside [0, {n_columns - 1}]: pass indices of "
            "existing columns."
        )
    mask = np.zeros(n_columns, dtype=bool)
    mask[spec] = True
    return mask


def _mask_from_names(spec, table):
    if not _is_dataframe(table):
        raise ValueError(
            "categorical_features names columns, but X has no column names; "
            "pass a DataFrame, or indices or a bool mask."
        )
    columns = list(table.columns)
    unknown = [str(name) for name in spec if name not in columns]
    if unknown:
        raise ValueError(
            f"categorical_features names {unknown}, which X does not have; "
            f"its columns are {columns}."
        )
    return np.array([name in set(spec) for name in columns], dtype=bool)


# --- numeric columns ---------------------------------------------------------


def _numeric_values(column, name, when):
    """A column as float64 (a copy), NaN where missing; errors name the column."""
    if _is_extension_array(column):  # numpy-backed columns come as ndarrays
        api = _pandas().api.types
        if api.is_numeric_dtype(column.dtype) and not api.is_complex_dtype(
            column.dtype
        ):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            return _refuse_infinity(values.copy(), name, when)
        column = column.to_numpy(dtype=object)
    if column.dtype.kind in "biuf":
        return _refuse_infinity(column.astype(np.float64), name, when)
    if column.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: column {name!r} holds complex numbers "
            f"at {when}; split it into real and imaginary columns."
        )
    if column.dtype.kind not in "OUS":
        raise TypeError(
            f"Column {name!r} is numeric but has dtype {column.dtype} at {when}; "
            "convert it to numbers."
        )
    return _refuse_infinity(_numbers_from_objects(column, name, when), name, when)


def _numeric_block(columns, n_rows, when):
    """The (name, column) pairs as one float64 array (n_rows, len(columns)),
    NaN where missing. numpy numeric columns are copied in directly (one
    infinity check for the whole block: a one-row transform of many columns
    is then not a few calls per column); others go through
    :func:`_numeric_values`. Errors name the column."""
    values = np.empty((n_rows, len(columns)))
    plain = []
    for j, (name, column) in enumerate(columns):
        if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
            values[:, j] = column
            plain.append(j)
        else:
            values[:, j] = _numeric_values(column, name, when)
    if (
        plain
        and np.isinf(values[:, plain] if len(plain) < len(columns) else values).any()
    ):
        for j in plain:
            _refuse_infinity(values[:, j], columns[j][0], when)
    return values


def _numbers_from_objects(values, name, when):
    strings = [v for v in values if isinstance(v, (str, bytes))]
    if strings:
        raise ValueError(
            f"Column {name!r} is numeric but holds strings at {when}, such as "
            f"{strings[0]!r}; convert it to numbers, or list it in "
            "categorical_features when fitting."
        )
    filled = np.array(values, dtype=object)
    filled[[_is_missing(v) for v in values]] = np.nan
    try:
        return filled.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(
            f"Column {name!r} is numeric but its values at {when} are not all "
            f"numbers ({error}); convert them, or list the column in "
            "categorical_features when fitting."
        ) from None


def _refuse_infinity(values, name, when):
    if np.isinf(values).any():
        raise ValueError(
            f"Column {name!r} holds infinite values at {when}; replace them with "
            "finite numbers, or with NaN to have them imputed."
        )
    return values


def _robust_statistics(values, name):
    """Median and robust scale of a column's observed values.

    The scale is 1/(q75 - q25); when the IQR is 0, 1/(0.5 (max - min)); for a
    constant column, 0.
    """
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        raise ValueError(
            f"Column {name!r} has only missing values in fit; drop it or fill it."
        )
    with np.errstate(all="ignore"):  # overflow is checked below
        q25, median, q75 = np.percentile(observed, [25, 50, 75])
        spread = q75 - q25 if q75 > q25 else 0.5 * (observed.max() - observed.min())
        scale = 1.0 / spread if spread > 0 else 0.0
    if not np.isfinite([median, spread, scale]).all():
        raise ValueError(
            f"Column {name!r} spans a range that float64 cannot scale (median "
            f"{median}, spread {spread}); rescale the column."
        )
    return median, scale


def smooth_clip(z):
    """x / sqrt(1 + (x/3)^2): the identity near 0, bounded by +-3."""
    z = np.clip(z, -1e300, 1e300)  # an overflowed +-inf becomes the bound
    return z / np.hypot(1.0, z / SMOOTH_CLIP_BOUND)


def _fit_quantile_normal(values, name_of):
    """QuantileTransformer to a normal with TabM's n_quantiles, fitted on X_num."""
    n_rows = values.shape[0]
    n_quantiles = min(max(min(n_rows // 30, 1000), 10), n_rows)
    transformer = QuantileTransformer(
        n_quantiles=n_quantiles, output_distribution="normal", subsample=None
    )
    with np.errstate(all="ignore"):
        transformer.fit(values)
    bad = ~np.isfinite(transformer.quantiles_).all(axis=0)
    if bad.any():
        raise ValueError(
            f"Column {name_of(np.flatnonzero(bad)[0])!r} spans a range whose "
            "quantiles float64 cannot hold; rescale the column."
        )
    return transformer


# QuantileTransformer's margin: probabilities within it of 0 or 1 are
# clipped before the normal quantile (scikit-learn's BOUNDS_THRESHOLD).
_QUANTILE_MARGIN = 1e-7
# The normal quantiles of the margin and of 1 - margin: the output's clip.
_NORMAL_BOUNDS = tuple(
    float(ndtri(p))
    for p in (_QUANTILE_MARGIN - np.spacing(1), 1 - (_QUANTILE_MARGIN - np.spacing(1)))
)


# Up to this many (rows x quantiles), and from this many columns on,
# _quantile_normal compares every value with all its column's quantiles at
# once rather than calling np.interp twice per column: a one-row transform of
# many columns (all at once costs about as much as ten columns' np.interp).
_VECTOR_LIMIT = 4096
_VECTOR_MIN_COLUMNS = 12


def _interpolate_both_ways(values, quantiles, references):
    """``np.interp(x, q, r) - np.interp(-x, -q[::-1], -r[::-1])`` for every
    column x of ``values`` with its column q of ``quantiles`` (ascending),
    all columns at once, with np.interp's arithmetic step for step (the
    same numbers): for each value, the last of the points at or below it
    (the first at or above it, reversed), then np.interp's branches."""
    n_points, columns = quantiles.shape[0], np.arange(values.shape[1])
    at_or_below = np.count_nonzero(quantiles <= values[:, None, :], axis=1)
    at_or_above = np.count_nonzero(quantiles >= values[:, None, :], axis=1)
    # Both ways as one (2, rows, columns) computation. Upward: the points q
    # (ascending), x0 the last one at or below x. Downward: the points -q
    # reversed, at -x; x0 is then -(q's last one at or above x), at index
    # n_points - at_or_above in q. (Negation is exact.)
    start = np.stack(
        [
            np.clip(at_or_below - 1, 0, n_points - 2),
            np.clip(n_points - at_or_above, 1, n_points - 1),
        ]
    )
    after = start + np.array([1, -1])[:, None, None]
    sign = np.array([1.0, -1.0])[:, None, None]
    out = _interp_step(
        sign * values,
        np.stack([at_or_below, at_or_above]) - 1,
        n_points,
        (sign * quantiles[start, columns], sign * quantiles[after, columns]),
        (sign * references[start], sign * references[after]),
        (
            sign * references[[0, -1]][:, None, None],
            sign * references[[-1, 0]][:, None, None],
        ),
    )
    return out[0] - out[1]


def _interp_step(x, j, n_points, xs, ys, ends):
    """np.interp's value at x between the points (x0, y0) and (x1, y1),
    given j, the index of x0 among the n_points (-1: x is below them all;
    ends: the first and last y)."""
    (x0, x1), (y0, y1), (first, last) = xs, ys, ends
    with np.errstate(all="ignore"):
        slope = (y1 - y0) / (x1 - x0)
        out = slope * (x - x0) + y0
        failed = np.isnan(out)
        if failed.any():  # np.interp then tries from the other end
            other = slope * (x - x1) + y1
            other = np.where(np.isnan(other) & (y0 == y1), y0, other)
            out = np.where(failed, other, out)
    out = np.where(x == x0, y0, out)
    out = np.where(j >= n_points - 1, last, out)
    return np.where(j < 0, first, out)


def _quantile_normal(transformer, values):
    """``transformer.transform(values)`` for a fitted QuantileTransformer to a
    normal, without its per-call validation (most of a one-row transform):
    each column's probability is the mean of the interpolations through its
    quantiles from below and from above (ties get the middle of their
    range), 0 within the margin (1e-7) of the lowest quantile or below it and
    1 within it of the highest or above, then the normal quantile of it,
    clipped at the margin. ``values``: finite float64."""
    references, quantiles = transformer.references_, transformer.quantiles_
    n_rows, n_columns = values.shape
    if n_rows * len(quantiles) <= _VECTOR_LIMIT and n_columns >= _VECTOR_MIN_COLUMNS:
        p = _interpolate_both_ways(values, quantiles, references)
    else:  # many rows: np.interp column by column
        p = np.empty_like(values)
        for j in range(values.shape[1]):
            x, q = values[:, j], quantiles[:, j]
            p[:, j] = np.interp(x, q, references)
            p[:, j] -= np.interp(-x, -q[::-1], -references[::-1])
    p *= 0.5
    # Within the margin of the highest quantile or above: 1; of the lowest or
    # below: 0 (in this order, as scikit-learn's transform sets them).
    p[values + _QUANTILE_MARGIN > quantiles[-1]] = 1.0
    p[values - _QUANTILE_MARGIN < quantiles[0]] = 0.0
    with np.errstate(divide="ignore"):
        z = ndtri(p)
    np.maximum(z, _NORMAL_BOUNDS[0], out=z)
    return np.minimum(z, _NORMAL_BOUNDS[1], out=z)


def _transform_numeric(values, center, scale, quantile_transformer):
    """Scaled numeric block; a missing value is imputed by the median."""
    filled = np.where(np.isnan(values), center, values)
    if quantile_transformer is None:
        with np.errstate(over="ignore", invalid="ignore"):
            z = (filled - center) * scale
    elif len(values):
        z = _quantile_normal(quantile_transformer, filled)
    else:
        z = filled
    z[:, scale == 0] = 0.0  # constant columns
    return smooth_clip(z) if quantile_transformer is None else z


# --- categorical columns -----------------------------------------------------


def _category_key(value):
    """The text that identifies a value's category; None when it is missing.

    Numbers are compared by value, whatever their type: True, 1, 1.0,
    np.int8(1) and "1" are one category, and 2.5 and "2.5" another. Other
    values are compared by ``str(value)``.
    """
    if _is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_, numbers.Integral)):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _category_value(value):
    """The value categories_ shows: a Python bool, int, float or str."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return int(value) if value.is_integer() else value
    return value if isinstance(value, str) else str(value)


def _sort_key(value):
    """Numbers first, in numeric order, then text in lexical order."""
    if isinstance(value, (bool, int, float)):
        return (0, value, "")
    return (1, 0, value)


def _keys_and_values(column):
    """Per row, the category key (None where missing) and the raw value."""
    if _is_extension_array(column) and isinstance(
        column.dtype, _pandas().CategoricalDtype
    ):
        categorical = column  # pandas.Categorical
        codes = np.asarray(categorical.codes)  # -1 where missing
        present, rows = np.unique(codes, return_inverse=True)
        values = categorical.categories.to_numpy(dtype=object)[present]
        values[present < 0] = None  # the -1 code took the last category
        keys = [_category_key(v) for v in values]  # of the present ones only
        return [keys[i] for i in rows.ravel()], values[rows.ravel()]
    if _is_extension_array(column):
        column = column.to_numpy(dtype=object)
    values = np.asarray(column, dtype=object)
    return [_category_key(v) for v in values], values


def _fit_categories(column, name):
    """The observed categories of a column, sorted (empty categories dropped)."""
    keys, values = _keys_and_values(column)
    shown = {}
    for key, value in zip(keys, values, strict=True):
        if key is not None and key not in shown:
            shown[key] = _category_value(value)
    if not shown:
        raise ValueError(
            f"Column {name!r} has only missing values in fit; drop it or fill it."
        )
    return np.array(sorted(shown.values(), key=_sort_key), dtype=object)


@functools.lru_cache(maxsize=256)
def _lookup(categories):
    """{category key: 1-based position} of a fitted column's categories (a
    tuple), built once per fitted column rather than once per transform."""
    return {_category_key(c): i for i, c in enumerate(categories, start=1)}


@functools.lru_cache(maxsize=256)
def _declared_codes(fitted, declared):
    """The code (as :func:`_category_codes` gives it) of each category a
    pandas dtype declares (a tuple, in the dtype's order), then 0 for its
    code -1 (missing): a categorical column's codes index this array."""
    lookup = _lookup(fitted)
    codes = [lookup.get(_category_key(value), 0) for value in declared]
    return np.array(codes + [0], dtype=np.intp)


class _DtypeCodes:
    """The codes (as :func:`_category_codes` gives them) of pandas
    categorical columns, from their dtypes' codes through one table: for
    fitted columns' categories arrays ``fitted`` and the columns' dtypes
    (CategoricalDtype objects, immutable), ``(table, shifts)``: column j's
    code c (-1: missing) becomes ``table[c + shifts[j]]``. Remembered for
    those very objects,
    so that a one-row transform neither lists the dtypes' categories nor
    hashes the fitted ones, and codes all its categorical columns in one
    lookup (most of a 40-categorical-column row's transform otherwise). A
    bounded table that holds the objects it keys by their ids, so that no id
    can pass to another object while the entry lives."""

    def __init__(self, size):
        self.recent = RecentEntries(size)

    def __call__(self, fitted, dtypes):
        key = tuple(map(id, fitted)) + tuple(map(id, dtypes))
        entry = self.recent.get(key)
        if entry is not None and _same_objects(entry[0], fitted + dtypes):
            return entry[1], entry[2]
        tables = [
            _declared_codes(
                tuple(categories), tuple(dtype.categories.to_numpy(dtype=object))
            )
            for categories, dtype in zip(fitted, dtypes, strict=True)
        ]
        # each table ends with code -1's entry; put it first, for code + 1
        tables = [np.roll(t, 1) for t in tables]
        starts = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.intp)
        table = np.concatenate(tables) if tables else np.zeros(0, np.intp)
        self.recent.put(key, (fitted + dtypes, table, starts + 1))
        return table, starts + 1


def _same_objects(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


_codes_of_dtypes = _DtypeCodes(size=64)


def _category_codes(column, categories):
    """0 for missing or unknown, i for the i-th category (1-based)."""
    pd = _pandas()
    if pd is not None and isinstance(column, pd.Categorical):
        # by the dtype's categories, in their order: no key per row
        table, shifts = _codes_of_dtypes((categories,), (column.dtype,))
        return table[column.codes + shifts[0]]
    lookup = _lookup(tuple(categories))
    keys, _ = _keys_and_values(column)
    return np.fromiter((lookup.get(k, 0) for k in keys), dtype=np.intp, count=len(keys))


def _all_category_codes(columns, fitted, n_rows):
    """(n_rows, k) codes of the k categorical columns (:func:`_category_codes`
    each), all categorical-dtype columns through one table lookup."""
    pd = _pandas()
    if pd is None or not all(isinstance(c, pd.Categorical) for c in columns):
        return _stack(
            [_category_codes(c, f) for c, f in zip(columns, fitted, strict=True)],
            n_rows,
            np.intp,
        )
    table, shifts = _codes_of_dtypes(tuple(fitted), tuple(c.dtype for c in columns))
    codes = np.empty((n_rows, len(columns)), dtype=np.intp)
    for j, column in enumerate(columns):
        codes[:, j] = column.codes
    codes += shifts
    return table[codes]


_BINARY_VALUES = np.array([0.0, -1.0, 1.0])  # by code: missing, first, second


def _encoding(n_categories, max_onehot_categories):
    if n_categories <= 2:
        return "binary"
    return "onehot" if n_categories <= max_onehot_categories else "code"


def _one_hot(codes, sizes):
    """One-hot slots of columns of codes (n_rows, k): column j's ``sizes[j]``
    slots side by side, slot ``codes[:, j]`` of them 1, the rest 0."""
    out = np.zeros((codes.shape[0], sum(sizes)))
    if codes.size:
        offsets = np.cumsum([0, *sizes[:-1]])
        out[np.arange(codes.shape[0])[:, None], codes + offsets] = 1.0
    return out


# --- the estimator -----------------------------------------------------------


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """Numeric, categorical, boolean and string columns as features for an MLP.

    Takes a pandas DataFrame as it is, missing values included, or a numpy
    array, and returns one float64 array whose columns come in this order:

    1. ``'numeric'``: each numeric column, robustly scaled and smoothly
       clipped (RealMLP), or mapped to normal quantiles (TabM);
    2. ``'indicator'``: 1 where a numeric column was missing, else 0, for each
       numeric column that had missing values in fit;
    3. ``'binary'``: each categorical column of at most two categories, as
       -1 (first category), +1 (second) or 0 (missing or unknown);
    4. ``'onehot'``: for each column of 3 to ``max_onehot_categories``
       categories, a slot for missing or unknown values, then one per category;
    5. ``'code'``: for each larger column, 0 for missing or unknown and ``i``
       for the ``i``-th category, for an embedding layer.

    Parameters
    ----------
    categorical_features : "from_dtype", None or array-like, default="from_dtype"
        Which input columns are categorical.

        - ``"from_dtype"``: a DataFrame's ``category``, ``object``, string and
          ``bool`` columns (nullable ``boolean`` included); its other numeric
          columns are numeric. A column of another dtype (datetime, period,
          interval) is a TypeError. Every column of a numpy array is numeric.
        - None: every column is numeric.
        - array-like of str (column names), of int (indices) or of bool (one
          per column): these columns are categorical, the others numeric.

    numeric_transform : {"robust_smooth_clip", "quantile_normal"}, \
            default="robust_smooth_clip"
        ``"robust_smooth_clip"`` computes ``z = (x - median) * scale`` and
        returns ``z / sqrt(1 + (z/3)^2)``; ``"quantile_normal"`` maps each
        column through its empirical quantiles to a standard normal
        (scikit-learn's :class:`~sklearn.preprocessing.QuantileTransformer`).

    max_onehot_categories : int, default=8
        Categorical columns with at most this many categories (and more than
        two) are one-hot encoded; larger ones become integer codes.

    add_missing_indicators : bool, default=True
        Whether to add an indicator column for each numeric column that had
        missing values in fit.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Input column names, when X has string column names.

    is_categorical_ : ndarray of bool of shape (n_features_in_,)
        Which input columns are categorical.

    center_ : ndarray of shape (n_numeric_inputs,)
        Median of each numeric input column, over its observed values; also
        the value a missing entry is imputed with.

    scale_ : ndarray of shape (n_numeric_inputs,)
        ``1 / (q75 - q25)`` of each numeric input column; ``1 / (0.5 (max -
        min))`` where the IQR is 0; 0 for a constant column (whose features
        are then 0, whichever the transform).

    missing_indicator_features_ : ndarray of int
        Input indices of the numeric columns given a missing indicator.

    quantile_transformer_ : QuantileTransformer or None
        The fitted transformer for ``numeric_transform="quantile_normal"``.

    categories_ : list of ndarray of object
        For each categorical input column, in input order, the categories
        observed in fit, sorted (numbers numerically, then strings). A
        category declared by a pandas dtype but absent from fit has no slot.

    categorical_encodings_ : ndarray of str
        For each categorical input column: ``'binary'``, ``'onehot'`` or
        ``'code'``.

    feature_kinds_ : ndarray of str of shape (n_features_out,)
        Kind of each output column: ``'numeric'``, ``'indicator'``,
        ``'binary'``, ``'onehot'`` or ``'code'``.

    numeric_columns_ : ndarray of int
        Output indices of the ``'numeric'`` columns (for numeric embeddings).

    onehot_columns_ : ndarray of int
        Output indices of the ``'onehot'`` columns.

    code_columns_ : ndarray of int
        Output indices of the ``'code'`` columns.

    code_cardinalities_ : ndarray of int
        For each code column, its number of embedding slots: the categories
        plus the missing/unknown slot 0.

    See Also
    --------
    sklearn.ensemble.HistGradientBoostingClassifier : types DataFrame columns
        the same way with ``categorical_features="from_dtype"``.
    sklearn.preprocessing.RobustScaler : the scaling, without the clip.

    Notes
    -----
    Categories are matched by value, so a column that was ``category`` in fit
    and is ``object``, ``str`` or ``int`` at transform gives the same features.
    A value's category is identified by text: numbers by their value written
    out, integral ones as integers (``True``, ``1``, ``1.0`` and ``"1"`` are
    one category; ``2.5`` and ``"2.5"`` another), anything else by
    ``str(value)``. Values unseen in fit go to the missing/unknown slot.

    A numeric column holding strings at transform, infinite values, a column
    with only missing values in fit, a changed column set: each is a
    ValueError or TypeError that names the column.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmlp import TabularPreprocessor
    >>> X = pd.DataFrame({
    ...     "age": [20.0, 30.0, 40.0, None],
    ...     "smoker": [True, False, True, False],
    ...     "city": pd.Categorical(["Oslo", "Rome", "Lima", "Oslo"]),
    ... })
    >>> pre = TabularPreprocessor().fit(X)
    >>> pre.get_feature_names_out().tolist()
    ['age', 'age_missing', 'smoker', 'city_missing', 'city_Lima', 'city_Oslo', \
'city_Rome']
    >>> pre.feature_kinds_.tolist()
    ['numeric', 'indicator', 'binary', 'onehot', 'onehot', 'onehot', 'onehot']
    >>> print(pre.transform(X).round(3))
    [[-0.949  0.     1.     0.     0.     1.     0.   ]
     [ 0.     0.    -1.     0.     0.     0.     1.   ]
     [ 0.949  0.     1.     0.     1.     0.     0.   ]
     [ 0.     1.    -1.     0.     0.     1.     0.   ]]
    """

    _parameter_constraints: dict = {
        "categorical_features": [StrOptions({"from_dtype"}), "array-like", None],
        "numeric_transform": [StrOptions({"robust_smooth_clip", "quantile_normal"})],
        "max_onehot_categories": [Interval(Integral, 2, None, closed="left")],
        "add_missing_indicators": ["boolean"],
    }

    def __init__(
        self,
        *,
        categorical_features="from_dtype",
        numeric_transform="robust_smooth_clip",
        max_onehot_categories=8,
        add_missing_indicators=True,
    ):
        self.categorical_features = categorical_features
        self.numeric_transform = numeric_transform
        self.max_onehot_categories = max_onehot_categories
        self.add_missing_indicators = add_missing_indicators

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Type the columns and learn their statistics and categories.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)
            The table; missing values (NaN, None, pandas.NA) are allowed.

        y : None
            Ignored.

        Returns
        -------
        self : TabularPreprocessor
            The fitted transformer.
        """
        table = _as_table(X, self, fitting=True)
        columns = _columns(table)
        names = [name for name, _ in columns]
        is_categorical = _categorical_mask(table, self.categorical_features, names)
        numeric = self._fit_numeric(
            [c for c, cat in zip(columns, is_categorical, strict=True) if not cat],
            np.flatnonzero(~is_categorical),
            table.shape[0],
        )
        categories = [
            _fit_categories(column, name)
            for (name, column), cat in zip(columns, is_categorical, strict=True)
            if cat
        ]
        encodings = np.array(
            [_encoding(len(c), self.max_onehot_categories) for c in categories],
            dtype=str,
        )
        validate_data(self, table, reset=True, skip_check_array=True)
        # Nothing above assigned fitted state; from here on nothing can fail.
        self.is_categorical_ = is_categorical
        self.center_, self.scale_, indicators, self.quantile_transformer_ = numeric
        self.missing_indicator_features_ = indicators
        self.categories_ = categories
        self.categorical_encodings_ = encodings
        self._set_output_layout()
        return self

    def _fit_numeric(self, columns, input_indices, n_rows):
        """center, scale, indicator inputs and quantile transformer (or None)."""
        values = _numeric_block(columns, n_rows, "fit")  # as transform reads them
        statistics = [
            _robust_statistics(v, name)
            for v, (name, _) in zip(values.T, columns, strict=True)
        ]
        center = np.array([s[0] for s in statistics], dtype=np.float64)
        scale = np.array([s[1] for s in statistics], dtype=np.float64)
        had_missing = np.isnan(values).any(axis=0) & self.add_missing_indicators
        quantile_transformer = None
        if self.numeric_transform == "quantile_normal" and columns:
            quantile_transformer = _fit_quantile_normal(values, lambda j: columns[j][0])
        return center, scale, input_indices[had_missing], quantile_transformer

    def _set_output_layout(self):
        """feature_kinds_ and the index arrays the model reads."""
        n_per_kind = {
            "numeric": len(self.center_),
            "indicator": len(self.missing_indicator_features_),
            "binary": int(np.sum(self.categorical_encodings_ == "binary")),
            "onehot": sum(self._slots("onehot")),
            "code": int(np.sum(self.categorical_encodings_ == "code")),
        }
        kinds = np.array(
            [kind for kind in _KINDS for _ in range(n_per_kind[kind])], dtype=str
        )
        self.feature_kinds_ = kinds
        self.numeric_columns_ = np.flatnonzero(kinds == "numeric")
        self.onehot_columns_ = np.flatnonzero(kinds == "onehot")
        self.code_columns_ = np.flatnonzero(kinds == "code")
        self.code_cardinalities_ = np.array(self._slots("code"), dtype=np.intp)

    def _slots(self, encoding):
        """1 + the number of categories, for each categorical column encoded
        as ``encoding``: its one-hot slots, or its codes' range."""
        return [
            len(c) + 1
            for c, e in zip(self.categories_, self.categorical_encodings_, strict=True)
            if e == encoding
        ]

    def transform(self, X):
        """Encode X with what fit learned.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)
            The same columns as in fit; 0 rows are allowed. Values unseen in
            fit and missing values are allowed in every column.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            The features, in the order of ``feature_kinds_``.
        """
        check_is_fitted(self, "feature_kinds_")  # cheaper than a scan
        table = _as_table(X, self, fitting=False)
        if not _has_the_fitted_columns(self, table):  # else nothing to check
            validate_data(self, table, reset=False, skip_check_array=True)
        columns = _columns(table)
        n_rows = table.shape[0]
        values = _numeric_block(
            [
                c
                for c, cat in zip(columns, self.is_categorical_, strict=True)
                if not cat
            ],
            n_rows,
            "transform",
        )
        position = np.cumsum(~self.is_categorical_) - 1
        blocks = [
            _transform_numeric(
                values, self.center_, self.scale_, self.quantile_transformer_
            ),
            np.isnan(values[:, position[self.missing_indicator_features_]]).astype(
                np.float64
            ),
        ]
        codes = _all_category_codes(
            [
                c
                for (_, c), cat in zip(columns, self.is_categorical_, strict=True)
                if cat
            ],
            self.categories_,
            n_rows,
        )
        encodings = self.categorical_encodings_
        blocks += [
            _BINARY_VALUES[codes[:, encodings == "binary"]],
            _one_hot(codes[:, encodings == "onehot"], self._slots("onehot")),
            codes[:, encodings == "code"].astype(np.float64),
        ]
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; by default ``feature_names_in_``, or
            ``x0, x1, ...`` when X had none.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``name`` for numeric, binary and code columns, ``name_missing``
            for indicators and one-hot missing slots, ``name_category`` for
            one-hot slots.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        categorical = names[self.is_categorical_]
        out = {kind: [] for kind in _KINDS}
        out["numeric"] = list(names[~self.is_categorical_])
        out["indicator"] = [
            f"{names[j]}_missing" for j in self.missing_indicator_features_
        ]
        for name, categories, encoding in zip(
            categorical, self.categories_, self.categorical_encodings_, strict=True
        ):
            if encoding == "onehot":
                out[encoding] += [f"{name}_missing"] + [
                    f"{name}_{c}" for c in categories
                ]
            else:
                out[encoding].append(str(name))
        return np.asarray([n for kind in _KINDS for n in out[kind]], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _stack(columns, n_rows, dtype):
    """Columns side by side as (n_rows, len(columns)), also for no column."""
    if columns:
        return np.column_stack(columns)
    return np.empty((n_rows, 0), dtype=dtype)
