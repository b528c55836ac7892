"""ONNX export of the tabular estimators: TabularPreprocessor, TabularMLP*.

Registered with skl2onnx by ``_onnx.register()``, so the calls that convert
the drop-ins convert these too::

    onx = to_onnx(model, X_df[:1])                      # a DataFrame: one input
    onx = convert_sklearn(model, initial_types=[        # per column, as for a
        ("age", FloatTensorType([None, 1])),            # ColumnTransformer
        ("city", StringTensorType([None, 1])), ...])
    onx = to_onnx(model, X[:1].astype(np.float32))      # an array: one input

Inputs. Either one input per input column (skl2onnx's convention for a
DataFrame: shape ``[None, 1]``, matched to ``feature_names_in_`` by name when
the names are the columns', else by position), or one numeric input of shape
``[None, n_features_in_]``. A numeric column takes any numeric or bool input
(NaN where missing). A categorical column takes a string input, matched to
its categories by text as ``TabularPreprocessor`` matches them (``"1"`` is
the category 1; any text that is no category, "" or "nan" for instance, is
the missing/unknown slot), or a numeric input, matched by value (NaN: the
missing slot).

The graph's float type is float64 when an input is DoubleTensorType, else
float32; it is the type of the outputs and of the hidden layers. The numeric
preprocessing and the embeddings run in float64 whatever the graph's type (a
column such as a year, far from 0 relative to its spread, would lose its
digits to float32 before it is centred), and so do the regressor's
de-standardisation and clipping; the network between them runs in the graph's
type.

The graph, in the order of ``transform`` and ``predict``::

    numeric: x <- median where missing; z = (x - median) * scale (0 where the
             scale is 0); z / sqrt(1 + (z/3)^2)      (or the quantile map)
    indicator: isnan(x);  binary: -1, +1, 0;  one-hot with slot 0;  code
    CategoricalEmbedding: E_j[code]   PeriodicEmbedding: [x, cos(2 pi w x +
    phi) V + c]   PiecewiseLinearEncoding: clipped ramps   Scale: X s
    EnsembleAdapter: X r_i (a member axis in front: (k, n, width))
    Dense: (X W) / sqrt(n_in) + b   ParametricActivation: X + alpha (f(X) - X)
    output: Dense or MemberHeads; softmax; the members' mean
    regressor: clip(out * y_scale + y_mean, y_min, y_max)

For a DataFrame, ``dataframe_initial_types(X, dtype)`` gives the initial
types and ``dataframe_feeds(session, X)`` ONNX Runtime's feeds. Dropout acts
in training only: it is absent. Classifiers output labels and
probabilities as the drop-ins do (options ``zipmap`` and ``nocl``); ONNX's
ZipMap takes float32 only, so a float64 graph needs ``zipmap=False`` or
``'columns'``.
"""

import functools
import math

import numpy as np

from ._layers import (
    CategoricalEmbedding,
    Dense,
    Dropout,
    EnsembleAdapter,
    MemberHeads,
    ParametricActivation,
    PeriodicEmbedding,
    PiecewiseLinearEncoding,
    Scale,
)
from ._losses import OUTPUTS
from ._onnx import _check_fitted, _Graph, _hidden_activation, _label_values
from ._ops import to_host
from ._preprocessing import SMOOTH_CLIP_BOUND, _category_key, _pandas
from ._stack import Network

# sqrt(1 + t^2) for |t| below this, |t| above (where t^2 would overflow).
_HYPOT_SWITCH = 1e150


# --- inputs ------------------------------------------------------------------


def _types():
    from skl2onnx.common import data_types

    return data_types


def _is_double(variable):
    return isinstance(variable.type, _types().DoubleTensorType)


def _is_string(variable):
    return isinstance(variable.type, _types().StringTensorType)


def _float_types(operator):
    """(onnx element type, numpy dtype, skl2onnx tensor type) of the graph."""
    from skl2onnx.proto import onnx_proto

    t = _types()
    if any(_is_double(v) for v in operator.inputs):
        return onnx_proto.TensorProto.DOUBLE, np.float64, t.DoubleTensorType
    return onnx_proto.TensorProto.FLOAT, np.float32, t.FloatTensorType


def _numeric_category_values(categories):
    """Each category as the number an input value must equal to be it (NaN
    for a category no number is: text such as "abc" or "1.0")."""
    values = []
    for c in categories:
        key = _category_key(c)
        try:
            number = float(key)
        except ValueError:
            number = np.nan
        values.append(number if _category_key(number) == key else np.nan)
    return np.array(values, dtype=np.float64)


def _column_names(pre):
    names = getattr(pre, "feature_names_in_", None)
    if names is None:
        return [f"x{j}" for j in range(pre.n_features_in_)]
    return [str(n) for n in names]


def _input_layout(operator, pre):
    """How the inputs hold the columns: ("columns", [variable per column]) or
    ("single", variable). Refuses, by name, what the graph cannot read."""
    inputs, names = list(operator.inputs), _column_names(pre)
    n_columns = pre.n_features_in_
    categorical = [j for j in range(n_columns) if pre.is_categorical_[j]]
    if len(inputs) == 1 and n_columns > 1:
        single = inputs[0]
        _check_single_input(single, pre, names, categorical)
        return "single", single
    if len(inputs) != n_columns:
        raise ValueError(
            f"{type(operator.raw_operator).__name__} was fitted on {n_columns} "
            f"columns but the graph has {len(inputs)} inputs: give one input per "
            "column (shape [None, 1], as skl2onnx does for a DataFrame) or one "
            f"numeric input of shape [None, {n_columns}]."
        )
    by_name = {v.raw_name: v for v in inputs}
    if sorted(by_name) == sorted(names):
        inputs = [by_name[name] for name in names]
    for j, variable in enumerate(inputs):
        _check_column_input(variable, j, pre, names)
    return "columns", inputs


def _check_single_input(variable, pre, names, categorical):
    shape = getattr(variable.type, "shape", None) or []
    if _is_string(variable):
        raise TypeError(
            f"The input {variable.raw_name!r} is a string tensor holding every "
            "column; give each column its own input (shape [None, 1]) so that "
            "numeric columns are numbers, or one numeric input."
        )
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != pre.n_features_in_:
        raise ValueError(
            f"The input {variable.raw_name!r} has {shape[1]} columns; the model "
            f"was fitted on {pre.n_features_in_}."
        )
    for k, j in enumerate(categorical):
        if np.isnan(_numeric_category_values(pre.categories_[k])).all():
            raise TypeError(
                f"Column {names[j]!r} has text categories, which a numeric input "
                "cannot hold; give each column its own input (a DataFrame), the "
                "text columns as StringTensorType([None, 1])."
            )


def _check_column_input(variable, j, pre, names):
    shape = getattr(variable.type, "shape", None) or []
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != 1:
        raise ValueError(
            f"The input {variable.raw_name!r} for column {names[j]!r} has "
            f"{shape[1]} columns; a column's input has shape [None, 1]."
        )
    if not pre.is_categorical_[j]:
        if _is_string(variable):
            raise TypeError(
                f"Column {names[j]!r} is numeric, but its input "
                f"{variable.raw_name!r} is a string tensor; declare it "
                "FloatTensorType or DoubleTensorType([None, 1])."
            )
        return
    k = int(np.sum(pre.is_categorical_[:j]))
    numbers = _numeric_category_values(pre.categories_[k])
    if not _is_string(variable) and np.isnan(numbers).all():
        raise TypeError(
            f"Column {names[j]!r} has text categories, but its input "
            f"{variable.raw_name!r} is {type(variable.type).__name__}; declare "
            "it StringTensorType([None, 1]) (skl2onnx guesses an integer type "
            "for a pandas category column whose first value is missing)."
        )


# --- graph helpers -----------------------------------------------------------


def _int64_type():
    from skl2onnx.proto import onnx_proto

    return onnx_proto.TensorProto.INT64


def _string_type():
    from skl2onnx.proto import onnx_proto

    return onnx_proto.TensorProto.STRING


def _int64(graph, stem, values):
    return graph.constant(stem, values, _int64_type(), np.int64)


def _bool(graph, stem, values):
    from skl2onnx.proto import onnx_proto

    return graph.constant(stem, values, onnx_proto.TensorProto.BOOL, bool)


def _take_columns(graph, X, indices):
    """X[:, indices] (a Gather along axis 1)."""
    return graph.node("Gather", [X, _int64(graph, "columns", indices)], axis=1)


def _concat(graph, blocks, axis=1):
    blocks = [b for b in blocks if b is not None]
    if len(blocks) == 1:
        return blocks[0]
    return graph.node("Concat", blocks, axis=axis)


def _reduce(graph, op_type, x, axis):
    """A Reduce* op over one axis, dropped: attribute before opset 18 (13 for
    ReduceSum), input from then on."""
    opset = graph.container.target_opset
    if opset >= (13 if op_type == "ReduceSum" else 18):
        return graph.node(op_type, [x, _int64(graph, "axes", [axis])], keepdims=0)
    return graph.node(op_type, [x], axes=[axis], keepdims=0)


def _cast(graph, x, proto_type):
    return graph.node("Cast", [x], "cast", to=proto_type)


# --- TabularPreprocessor -----------------------------------------------------


class _Columns:
    """The input columns as graph tensors: the numeric ones as one float64
    block, each categorical one as its code (float64, shape (n, 1))."""

    def __init__(self, g64, operator, pre):
        self.g64, self.pre = g64, pre
        self.layout, self.inputs = _input_layout(operator, pre)

    def _column(self, j):
        if self.layout == "single":
            return _take_columns(self.g64, self.inputs.full_name, [j]), self.inputs
        variable = self.inputs[j]
        shape = _int64(self.g64, "shape", [-1, 1])
        return self.g64.node("Reshape", [variable.full_name, shape]), variable

    def numeric(self):
        """(n, m) float64, NaN where missing; None without numeric columns."""
        g64, pre = self.g64, self.pre
        numeric = np.flatnonzero(~pre.is_categorical_)
        if len(numeric) == 0:
            return None
        if self.layout == "single":
            block = _take_columns(g64, self.inputs.full_name, numeric)
            return _cast(g64, block, g64.proto_type)
        return _concat(
            g64, [_cast(g64, self._column(j)[0], g64.proto_type) for j in numeric]
        )

    def code(self, j, categories):
        """0 for missing or unknown, i for the i-th category: (n, 1) float64."""
        g64 = self.g64
        column, variable = self._column(j)
        if _is_string(variable):
            code = g64.node(
                "LabelEncoder",
                [column],
                domain="ai.onnx.ml",
                op_version=2,
                keys_strings=[_category_key(c).encode("utf-8") for c in categories],
                values_int64s=list(range(1, len(categories) + 1)),
                default_int64=0,
            )
            return _cast(g64, code, g64.proto_type)
        values = _numeric_category_values(categories).reshape(1, -1)
        number = _cast(g64, column, g64.proto_type)
        hits = g64.node("Equal", [number, g64.constant("categories", values)])
        slots = np.arange(1, len(categories) + 1, dtype=np.float64).reshape(-1, 1)
        return g64.node(
            "MatMul",
            [_cast(g64, hits, g64.proto_type), g64.constant("slots", slots)],
        )


def _smooth_clip(g64, z):
    """z / hypot(1, z/3), as sqrt(1 + t^2) (|t| where t^2 would overflow)."""
    z = g64.node(
        "Min",
        [
            g64.node("Max", [z, g64.constant("low", -1e300)]),
            g64.constant("high", 1e300),
        ],
    )
    t = g64.node("Div", [z, g64.constant("bound", SMOOTH_CLIP_BOUND)])
    magnitude = g64.node("Abs", [t])
    square = g64.node("Add", [g64.node("Mul", [t, t]), g64.constant("one", 1.0)])
    small = g64.node("Less", [magnitude, g64.constant("switch", _HYPOT_SWITCH)])
    hypot = g64.node("Where", [small, g64.node("Sqrt", [square]), magnitude])
    return g64.node("Div", [z, hypot])


def _numeric_features(g64, pre, values):
    """The 'numeric' block: imputed, then robustly scaled and smoothly
    clipped, or mapped to normal quantiles; 0 for a constant column."""
    center = g64.constant("center", pre.center_.reshape(1, -1))
    missing = g64.node("IsNaN", [values])
    filled = g64.node("Where", [missing, center, values])
    if pre.quantile_transformer_ is None:
        scale = g64.constant("scale", pre.scale_.reshape(1, -1))
        z = g64.node("Mul", [g64.node("Sub", [filled, center]), scale])
    else:
        z = _quantile_normal(g64, pre.quantile_transformer_, filled)
    constant = _bool(g64, "constant", (pre.scale_ == 0).reshape(1, -1))
    z = g64.node("Where", [constant, g64.constant("zero", 0.0), z])
    return _smooth_clip(g64, z) if pre.quantile_transformer_ is None else z


# --- the normal quantile map (numeric_transform="quantile_normal") ----------


def _interp(g64, x, knots, values):
    """``np.interp(x[:, j], knots[:, j], values)`` for every column j.

    With j the last knot at or below x: the line through knots j and j + 1,
    ``slope_j (x - knot_j) + values_j`` as numpy computes it (values_j where x
    is knot_j; slope 0 beyond the last knot), values_0 below the first.
    """
    Q, m = knots.shape
    below = g64.node(
        "Less",
        [
            g64.node("Reshape", [x, _int64(g64, "shape", [-1, m, 1])]),
            g64.constant("knots", knots.T[None]),
        ],
    )  # (n, m, Q): the knots above x
    at_or_below = _cast(g64, g64.node("Not", [below]), g64.proto_type)
    last = g64.node(
        "Sub", [_reduce(g64, "ReduceSum", at_or_below, 2), g64.constant("one", 1.0)]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.diff(values)[:, None] / np.diff(knots, axis=0)
    slopes = np.vstack([np.nan_to_num(slopes, posinf=0, neginf=0), np.zeros(m)])
    index = g64.node(
        "Add",
        [
            g64.node("Max", [last, g64.constant("zero", 0.0)]),
            g64.constant("offset", Q * np.arange(m, dtype=np.float64)[None]),
        ],
    )
    index = _cast(g64, index, _int64_type())

    def table(stem, array):  # (Q, m) -> its entries at (last, column)
        flat = g64.constant(stem, np.broadcast_to(array, (Q, m)).T.ravel())
        return g64.node("Gather", [flat, index], axis=0)

    knot, value = table("knot", knots), table("value", values[:, None])
    line = g64.node("Sub", [x, knot])
    line = g64.node("Add", [g64.node("Mul", [table("slope", slopes), line]), value])
    before = g64.node("Less", [last, g64.constant("zero", 0.0)])
    return g64.node("Where", [before, g64.constant("first", values[0]), line])


def _quantile_normal(g64, transformer, x):
    """QuantileTransformer(output_distribution='normal').transform: the mean
    of the interpolations up and down the quantiles (repeated quantiles meet
    halfway), 0 and 1 at the bounds, then the normal quantile, clipped."""
    from sklearn.preprocessing._data import BOUNDS_THRESHOLD

    knots, references = transformer.quantiles_, transformer.references_
    up = _interp(g64, x, knots, references)
    down = _interp(g64, g64.node("Neg", [x]), -knots[::-1], -references[::-1])
    p = g64.node("Mul", [g64.node("Sub", [up, down]), g64.constant("half", 0.5)])
    bound = g64.constant("bound", BOUNDS_THRESHOLD)
    above = g64.node(
        "Greater", [g64.node("Add", [x, bound]), g64.constant("top", knots[-1:])]
    )
    p = g64.node("Where", [above, g64.constant("one", 1.0), p])
    below = g64.node(
        "Less", [g64.node("Sub", [x, bound]), g64.constant("bottom", knots[:1])]
    )
    p = g64.node("Where", [below, g64.constant("zero", 0.0), p])
    return _normal_quantile(g64, p)


def _normal_quantile(g64, p):
    """scipy's ndtri(p), clipped as QuantileTransformer clips it: Chebyshev
    series (``_ndtri_chebyshev``) in p - 1/2 at the centre, in
    s = sqrt(-2 log y) in the tails (y = p, or 1 - p above; odd symmetry)."""
    from scipy.stats import norm
    from sklearn.preprocessing._data import BOUNDS_THRESHOLD

    from ._onnx import _clenshaw

    lowest = BOUNDS_THRESHOLD - np.spacing(1)  # below: clipped in any case
    centre, tail = _ndtri_chebyshev()
    p = g64.node(
        "Min",
        [
            g64.node("Max", [p, g64.constant("lowest", lowest)]),
            g64.constant("highest", 1 - lowest),
        ],
    )
    u = g64.node(
        "Mul",
        [
            g64.node("Sub", [p, g64.constant("half", 0.5)]),
            g64.constant("c", 1 / (0.5 - _NDTRI_TAIL)),
        ],
    )
    middle = _clenshaw(g64, u, centre)
    upper = g64.node("Greater", [p, g64.constant("upper", 1 - _NDTRI_TAIL)])
    y = g64.node("Where", [upper, g64.node("Sub", [g64.constant("one", 1.0), p]), p])
    s = g64.node(
        "Sqrt", [g64.node("Mul", [g64.node("Log", [y]), g64.constant("c", -2.0)])]
    )
    low, high = _NDTRI_S_RANGE
    u = g64.node(
        "Sub",
        [
            g64.node(
                "Mul",
                [
                    g64.node("Sub", [s, g64.constant("low", low)]),
                    g64.constant("c", 2 / (high - low)),
                ],
            ),
            g64.constant("one", 1.0),
        ],
    )
    lower_tail = _clenshaw(g64, u, tail)
    tails = g64.node("Where", [upper, g64.node("Neg", [lower_tail]), lower_tail])
    in_tail = g64.node(
        "Or",
        [
            upper,
            g64.node("Not", [g64.node("Greater", [p, g64.constant("t", _NDTRI_TAIL)])]),
        ],
    )
    x = g64.node("Where", [in_tail, tails, middle])
    clip_min, clip_max = norm.ppf(lowest), norm.ppf(1 - lowest)
    return g64.node(
        "Min",
        [
            g64.node("Max", [x, g64.constant("clip_min", clip_min)]),
            g64.constant("clip_max", clip_max),
        ],
    )


_NDTRI_TAIL = math.exp(-2.0)  # below: the tail series (scipy's switch too)
_NDTRI_S_RANGE = (2.0, 5.7)  # s = sqrt(-2 log p) for p in [1e-7, e^-2]
_NDTRI_DEGREE = 40


@functools.cache
def _ndtri_chebyshev():
    """Chebyshev coefficients of scipy's ndtri on [-1, 1]: at the centre of
    u = (p - 1/2) / (1/2 - e^-2), in the lower tail of u = the map of
    s = sqrt(-2 log p) from _NDTRI_S_RANGE. Interpolated at Chebyshev points
    from scipy.special.ndtri, so no constant is copied from anywhere. Largest
    error for p in [1e-7, 1 - 1e-7]: about 3e-14."""
    from numpy.polynomial import chebyshev
    from scipy.special import ndtri

    low, high = _NDTRI_S_RANGE
    centre = chebyshev.chebinterpolate(
        lambda u: ndtri(0.5 + (0.5 - _NDTRI_TAIL) * u), _NDTRI_DEGREE
    )
    tail = chebyshev.chebinterpolate(
        lambda u: ndtri(np.exp(-0.5 * (low + (high - low) * (u + 1) / 2) ** 2)),
        _NDTRI_DEGREE,
    )
    return centre, tail


def _indicators(g64, pre, values):
    if len(pre.missing_indicator_features_) == 0:
        return None
    position = np.cumsum(~pre.is_categorical_) - 1
    observed = _take_columns(g64, values, position[pre.missing_indicator_features_])
    return _cast(g64, g64.node("IsNaN", [observed]), g64.proto_type)


def _categorical_features(g64, pre, columns):
    """The binary, one-hot and code blocks, each in column order."""
    blocks = {"binary": [], "onehot": [], "code": []}
    categorical = np.flatnonzero(pre.is_categorical_)
    for j, categories, encoding in zip(
        categorical, pre.categories_, pre.categorical_encodings_, strict=True
    ):
        code = columns.code(j, categories)
        if encoding == "binary":  # first category -1, second +1, missing 0
            first = g64.node("Equal", [code, g64.constant("one", 1.0)])
            second = g64.node("Equal", [code, g64.constant("two", 2.0)])
            zero = g64.constant("zero", 0.0)
            plus = g64.node("Where", [second, g64.constant("plus", 1.0), zero])
            code = g64.node("Where", [first, g64.constant("minus", -1.0), plus])
        elif encoding == "onehot":  # slot 0: missing or unknown
            slots = np.arange(len(categories) + 1, dtype=np.float64).reshape(1, -1)
            hits = g64.node("Equal", [code, g64.constant("slots", slots)])
            code = _cast(g64, hits, g64.proto_type)
        blocks[str(encoding)].append(code)
    return [b for kind in ("binary", "onehot", "code") for b in blocks[kind]]


def _features(g64, operator, pre):
    """``pre.transform`` as a float64 graph tensor of shape (n, n_features_out)."""
    columns = _Columns(g64, operator, pre)
    values = columns.numeric()
    blocks = []
    if values is not None:
        blocks += [_numeric_features(g64, pre, values), _indicators(g64, pre, values)]
    blocks += _categorical_features(g64, pre, columns)
    return _concat(g64, blocks)


def _graphs(scope, operator, container):
    """The float64 graph (preprocessing, embeddings) and the graph's own."""
    from skl2onnx.proto import onnx_proto

    proto_type, dtype, _ = _float_types(operator)
    g64 = _Graph(scope, container, onnx_proto.TensorProto.DOUBLE, np.float64)
    return g64, _Graph(scope, container, proto_type, dtype)


def convert_preprocessor(scope, operator, container):
    """skl2onnx converter: ``transform``, in the graph's float type."""
    pre = operator.raw_operator
    _check_fitted(pre)
    g64, graph = _graphs(scope, operator, container)
    features = _features(g64, operator, pre)
    graph.node(
        "Cast", [features], output=operator.outputs[0].full_name, to=graph.proto_type
    )


def preprocessor_shapes(operator):
    """skl2onnx shape calculator: (n, n_features_out)."""
    pre = operator.raw_operator
    _check_fitted(pre)
    _input_layout(operator, pre)
    n = operator.inputs[0].get_first_dimension()
    tensor_type = _float_types(operator)[2]
    operator.outputs[0].type = tensor_type([n, len(pre.feature_kinds_)])


# --- the layers --------------------------------------------------------------


def _split(g, columns, X):
    """A _ColumnSplit's (numeric, others) parts; others None when empty."""
    numeric = _take_columns(g, X, columns.numeric)
    others = _take_columns(g, X, columns.others) if len(columns.others) else None
    return numeric, others


def _embedding(g, layer, P, X):
    """E_j[code_j] for each code column, then the other columns."""
    codes, others = _split(g, layer.columns, X)
    blocks = []
    for i in range(len(layer.cardinalities)):
        code = g.node("Gather", [codes, _int64(g, "i", i)], axis=1)  # (n,)
        index = _cast(g, code, _int64_type())
        blocks.append(g.node("Gather", [g.constant("E", P[f"E{i}"]), index], axis=0))
    return _concat(g, blocks + [others])


def _cos(g, u):
    """cos(u) without ONNX's Cos: at opset 22 (skl2onnx's default with onnx
    1.23) Cos has a new version that ONNX Runtime 1.23, skmlp's floor, has no
    kernel for. u is reduced to r = u - 2 pi floor(u / (2 pi) + 1/2) in
    [-pi, pi] (Floor: unchanged since opset 13), then cos(r) = sum_k (-1)^k
    r^(2k) / (2k)! for k <= 14, by Horner's rule in r^2: the first term left
    out is below pi^30 / 30! < 4e-18, the sums' rounding about 1e-15 (the
    graph runs this in float64)."""
    turns = g.node(
        "Floor",
        [
            g.node(
                "Add",
                [
                    g.node("Mul", [u, g.constant("inv_two_pi", 1 / (2 * np.pi))]),
                    g.constant("half", 0.5),
                ],
            )
        ],
    )
    r = g.node("Sub", [u, g.node("Mul", [turns, g.constant("two_pi", 2 * np.pi)])])
    r2 = g.node("Mul", [r, r])
    terms = [(-1) ** k / math.factorial(2 * k) for k in range(15)]
    total = g.constant("c", terms[-1])
    for term in reversed(terms[:-1]):
        total = g.node("Add", [g.node("Mul", [total, r2]), g.constant("c", term)])
    return total


def _periodic(g, layer, P, X):
    """[x_j, cos(2 pi w_j x_j + phi_j) V_j + c_j] per numeric column j."""
    numeric, others = _split(g, layer.columns, X)
    m, p = P["c"].shape
    x = g.node("Reshape", [numeric, _int64(g, "shape", [-1, m, 1])])  # (n, m, 1)
    u = g.node(
        "Mul",
        [
            g.node("Mul", [x, g.constant("two_pi", 2 * np.pi)]),
            g.constant("w", P["w"][None]),
        ],
    )
    u = g.node("Add", [u, g.constant("phi", P["phi"][None])])  # (n, m, F)
    # e = h V + c per column as a product and a sum over F, not a batched
    # MatMul between transposes: ONNX Runtime 1.23 fuses those into a
    # FusedMatMul it has only in float32, and a float64 graph then fails.
    F = P["w"].shape[1]
    h = g.node("Reshape", [_cos(g, u), _int64(g, "shape", [-1, m, F, 1])])
    products = g.node("Mul", [h, g.constant("V", P["V"][None])])  # (n, m, F, p)
    e = _reduce(g, "ReduceSum", products, 2)  # (n, m, p)
    e = g.node("Add", [e, g.constant("c", P["c"][None])])
    blocks = g.node("Concat", [x, e], axis=2)
    flat = g.node("Reshape", [blocks, _int64(g, "shape", [-1, m * (1 + p)])])
    return _concat(g, [flat, others])


def _piecewise_linear(g, layer, P, X):
    """Each numeric column's ramps over its bins, clipped but at open ends."""
    numeric, others = _split(g, layer.columns, X)
    m, T = len(layer.columns.numeric), layer.n_bins
    lower, inverse, has_width, low_open, high_open, live = layer._bins_from_edges()
    x = _take_columns(g, numeric, np.repeat(np.arange(m), T))  # (n, m T)
    lower_c = g.constant("lower", lower)
    ramp = g.node("Mul", [g.node("Sub", [x, lower_c]), g.constant("inverse", inverse)])
    zero, one = g.constant("zero", 0.0), g.constant("one", 1.0)
    step = g.node("Where", [g.node("Less", [x, lower_c]), zero, one])
    ramp = g.node("Where", [_bool(g, "has_width", has_width), ramp, step])
    keep = g.node(
        "Or", [_bool(g, "low_open", low_open), g.node("Greater", [ramp, zero])]
    )
    encoded = g.node("Where", [keep, ramp, zero])
    keep = g.node(
        "Or", [_bool(g, "high_open", high_open), g.node("Less", [encoded, one])]
    )
    encoded = g.node("Where", [keep, encoded, one])
    if not live.all():  # a zero-width bin's repeats output 0
        encoded = g.node("Where", [_bool(g, "live", live), encoded, zero])
    return _concat(g, [encoded, others])


def _scale(g, layer, P, X):
    return g.node("Mul", [X, g.constant("s", P["s"])])


def _ensemble_adapter(g, layer, P, X):
    """(n, width) -> (k, n, width): member i's rows are X r_i."""
    k, width = P["r"].shape
    X = g.node("Reshape", [X, _int64(g, "shape", [1, -1, width])])
    return g.node("Mul", [X, g.constant("r", P["r"][:, None, :])])


def _dense(g, layer, P, X):
    """f((X W) c + b), c = 1/sqrt(n_in) for NTK (after the product, as
    Dense._activate scales it)."""
    if layer.output is not None:
        raise NotImplementedError(
            "A Dense layer with a fused output has no tabular ONNX export."
        )
    z = g.node("MatMul", [X, g.constant("W", P["W"])])
    if layer.ntk:
        z = g.node("Mul", [z, g.constant("ntk", layer.scale)])
    z = g.node("Add", [z, g.constant("b", P["b"])])
    return _hidden_activation(g, layer.activation, z)


def _parametric_activation(g, layer, P, X):
    """X + alpha (f(X) - X)."""
    difference = g.node("Sub", [_hidden_activation(g, layer.activation, X), X])
    scaled = g.node("Mul", [difference, g.constant("alpha", P["alpha"])])
    return g.node("Add", [X, scaled])


def _member_heads(g, layer, P, X):
    """(k, n, n_in) @ (k, n_in, n_out) + b_i: one head per member."""
    z = g.node("MatMul", [X, g.constant("W", P["W"])])
    return g.node("Add", [z, g.constant("b", P["b"][:, None, :])])


# Layer type: (graph piece, whether it runs in float64 before the network).
_LAYERS = {
    CategoricalEmbedding: (_embedding, True),
    PeriodicEmbedding: (_periodic, True),
    PiecewiseLinearEncoding: (_piecewise_linear, True),
    Scale: (_scale, True),
    EnsembleAdapter: (_ensemble_adapter, False),
    Dense: (_dense, False),
    ParametricActivation: (_parametric_activation, False),
    Dropout: (lambda g, layer, P, X: X, False),
    MemberHeads: (_member_heads, False),
}


def _network_output(g64, graph, est, features):
    """The bags' mean of the members' mean of the output activations: (n,
    n_outputs)."""
    # The weights as host float64 constants, wherever the model trained (a
    # torch or CuPy device's params_ are copied to the host first).
    params = np.asarray(to_host(est.params_), dtype=np.float64)
    outputs = [_bag_output(g64, graph, est, features, bag) for bag in params]
    if len(outputs) == 1:
        return outputs[0]
    total = graph.node("Sum", outputs)
    return graph.node("Div", [total, graph.constant("n_bags", len(outputs))])


def _bag_output(g64, graph, est, features, params):
    """One bag's network: the members' mean of its output activations."""
    net = Network(est.layers_, est._output(), params, est.n_members, trainable=False)
    a, in_double = features, True
    for layer, P in zip(net.layers, net.views, strict=True):
        if type(layer) not in _LAYERS:
            raise NotImplementedError(
                f"{type(est).__name__}'s layer {type(layer).__name__} has no "
                "ONNX export."
            )
        piece, double = _LAYERS[type(layer)]
        if in_double and not double:
            a, in_double = _cast(g64, a, graph.proto_type), False
        a = piece(g64 if in_double else graph, layer, P, a)
    output = est._output()
    if output is OUTPUTS["softmax"]:
        a = graph.node("Softmax", [a], axis=-1)
    elif output.activate is not OUTPUTS["identity"].activate:
        raise NotImplementedError(
            f"{type(est).__name__}'s output activation has no ONNX export."
        )
    if net.n_members > 1:  # (k, n, n_outputs) -> the mean over members
        total = _reduce(graph, "ReduceSum", a, 0)
        a = graph.node("Div", [total, graph.constant("k", net.n_members)])
    return a


# --- the estimators ----------------------------------------------------------


def _forward(scope, operator, container):
    est = operator.raw_operator
    _check_fitted(est)
    g64, graph = _graphs(scope, operator, container)
    features = _features(g64, operator, est.preprocessor_)
    return g64, graph, _network_output(g64, graph, est, features)


def convert_classifier(scope, operator, container):
    """skl2onnx converter: labels and probabilities (predict, predict_proba)."""
    est = operator.raw_operator
    g64, graph, proba = _forward(scope, operator, container)
    label_name, proba_name = (v.full_name for v in operator.outputs[:2])
    graph.node("Identity", [proba], output=proba_name)
    index = graph.node("ArgMax", [proba], axis=1, keepdims=0)
    nocl = scope.get_options(est, dict(nocl=False))["nocl"]
    labels, integer = _label_values(est, nocl)
    label_type = _int64_type() if integer else _string_type()
    classes = graph.constant("classes", labels, label_type, labels.dtype)
    graph.node("Gather", [classes, index], output=label_name, axis=0)


def convert_regressor(scope, operator, container):
    """skl2onnx converter: clip(out * y_scale + y_mean, y_min, y_max), the
    de-standardisation in float64."""
    est = operator.raw_operator
    g64, graph, out = _forward(scope, operator, container)
    y = g64.node(
        "Mul", [_cast(g64, out, g64.proto_type), g64.constant("y_scale", est.y_scale_)]
    )
    y = g64.node("Add", [y, g64.constant("y_mean", est.y_mean_)])
    y = g64.node("Max", [y, g64.constant("y_min", est.y_min_)])
    y = g64.node("Min", [y, g64.constant("y_max", est.y_max_)])
    graph.node("Cast", [y], output=operator.outputs[0].full_name, to=graph.proto_type)


def classifier_shapes(operator):
    """skl2onnx shape calculator: labels (n,), probabilities (n, n_classes)."""
    est = operator.raw_operator
    _check_fitted(est)
    _input_layout(operator, est.preprocessor_)
    t = _types()
    n = operator.inputs[0].get_first_dimension()
    nocl = operator.scope_inst.get_options(est, dict(nocl=False))["nocl"]
    integer = _label_values(est, nocl)[1]
    label, proba = operator.outputs[:2]
    label.type = (t.Int64TensorType if integer else t.StringTensorType)([n])
    proba.type = _float_types(operator)[2]([n, len(est.classes_)])


def regressor_shapes(operator):
    """skl2onnx shape calculator: predictions (n, n_outputs)."""
    est = operator.raw_operator
    _check_fitted(est)
    _input_layout(operator, est.preprocessor_)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_types(operator)[2]([n, est.n_outputs_])


def parse_classifier(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: label and probabilities in the graph's float type
    (whichever input comes first), then the ZipMap the options ask for."""
    from skl2onnx._parse import _apply_zipmap, _get_sklearn_operator_name

    _check_fitted(model)
    t = _types()
    float_type = (
        t.DoubleTensorType
        if any(isinstance(v.type, t.DoubleTensorType) for v in inputs)
        else t.FloatTensorType
    )
    zipmap = scope.get_options(model, dict(zipmap=True))["zipmap"]
    if zipmap is True and float_type is t.DoubleTensorType:
        raise ValueError(
            "zipmap=True needs float32 probabilities (ONNX's ZipMap takes "
            "float only), but a float64 input makes this graph float64: pass "
            "options={'zipmap': False} or 'columns', or float32 inputs."
        )
    alias = _get_sklearn_operator_name(type(model))
    operator = scope.declare_local_operator(alias, model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", t.Int64TensorType())
    proba = scope.declare_local_variable("probabilities", float_type())
    operator.outputs += [label, proba]
    if zipmap is False:
        return operator.outputs
    return _apply_zipmap(zipmap, scope, model, float_type(), [label, proba])


# --- feeding a DataFrame -----------------------------------------------------


def _is_text_column(column):
    """Whether a DataFrame column goes in as strings: a column whose dtype is
    not numeric or bool, but for a category column of numbers."""
    api = _pandas().api.types
    dtype = column.dtype
    if isinstance(dtype, _pandas().CategoricalDtype):
        return not api.is_numeric_dtype(dtype.categories.dtype)
    return not (api.is_numeric_dtype(dtype) or api.is_bool_dtype(dtype))


def dataframe_initial_types(X, dtype=np.float32):
    """skl2onnx's initial types for a DataFrame: one input per column.

    Text columns (strings, objects, categories of text) as
    ``StringTensorType([None, 1])``, every other column as
    ``FloatTensorType`` or ``DoubleTensorType([None, 1])`` by ``dtype``,
    which makes the graph's float type. Named as the columns (skl2onnx may
    rename an input whose name is not an identifier: ``a.b`` becomes
    ``a_b``); :func:`dataframe_feeds` feeds them.

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features)
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32

    Returns
    -------
    initial_types : list of (str, skl2onnx tensor type)
        For ``convert_sklearn(model, initial_types=...)``.
    """
    t = _types()
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.")
    float_type = t.FloatTensorType if dtype == np.float32 else t.DoubleTensorType
    return [
        (
            str(name),
            (t.StringTensorType if _is_text_column(X[name]) else float_type)([None, 1]),
        )
        for name in X.columns
    ]


# ONNX Runtime's input types and the numpy dtype of their numbers.
_FEED_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def dataframe_feeds(session, X):
    """ONNX Runtime's feeds for a graph with one input per column.

    Each of ``session``'s inputs gets the column of its name, else the column
    at its position (skl2onnx renames columns such as ``a.b``), shaped
    (n, 1): as the input's type (NaN where a float is missing), or for a
    string input each value as ``TabularPreprocessor`` identifies its
    category (``1.0`` as ``"1"``) and a missing value as ``""``.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
    X : DataFrame of shape (n_samples, n_features)

    Returns
    -------
    feeds : dict of str to ndarray of shape (n_samples, 1)
        For ``session.run(None, feeds)``.
    """
    inputs = session.get_inputs()
    if len(inputs) != X.shape[1]:
        raise ValueError(
            f"The graph has {len(inputs)} inputs and X {X.shape[1]} columns: "
            "dataframe_feeds feeds a graph with one input per column."
        )
    feeds = {}
    for position, graph_input in enumerate(inputs):
        name = graph_input.name
        column = X[name] if name in X.columns else X.iloc[:, position]
        if graph_input.type == "tensor(string)":
            keys = [_category_key(v) for v in column.to_numpy(dtype=object)]
            values = np.array(["" if k is None else k for k in keys], dtype=object)
        elif graph_input.type in _FEED_DTYPES:
            dtype = np.dtype(_FEED_DTYPES[graph_input.type])
            missing = {"na_value": np.nan} if dtype.kind == "f" else {}
            values = column.to_numpy(dtype=dtype, **missing)
        else:
            raise TypeError(
                f"Input {name!r} has type {graph_input.type}, which "
                "dataframe_feeds does not fill."
            )
        feeds[name] = values.reshape(-1, 1)
    return feeds


def register(update_registered_converter):
    """Register the tabular converters (called by ``_onnx.register``)."""
    from ._preprocessing import TabularPreprocessor
    from ._tabular import TabularMLPClassifier, TabularMLPRegressor

    update_registered_converter(
        TabularPreprocessor,
        "SkmlpTabularPreprocessor",
        preprocessor_shapes,
        convert_preprocessor,
    )
    update_registered_converter(
        TabularMLPClassifier,
        "SkmlpTabularMLPClassifier",
        classifier_shapes,
        convert_classifier,
        parser=parse_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(
        TabularMLPRegressor,
        "SkmlpTabularMLPRegressor",
        regressor_shapes,
        convert_regressor,
    )
