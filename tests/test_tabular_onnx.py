"""ONNX export of the tabular estimators: ONNX Runtime reproduces transform,
predict and predict_proba on DataFrames with numeric, categorical and missing
values and with categories unseen in fit."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skmlp import (
    BackpropClassifier,
    TabularMLPClassifier,
    TabularMLPRegressor,
    TabularPreprocessor,
)

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
from skl2onnx import convert_sklearn, to_onnx  # noqa: E402
from skl2onnx.common.data_types import (  # noqa: E402
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)

from skmlp._layers import Activation  # noqa: E402
from skmlp._onnx_tabular import (  # noqa: E402
    dataframe_feeds,
    dataframe_initial_types,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# The float64 graph follows the float64 model to rounding; the float32 graph's
# hidden layers run in float32 (what it achieves: a few 1e-7).
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
CITIES = ["Lima", "Oslo", "Rome", "Kyiv", "Pune"]


def _table(n, rng, unseen=False):
    """Numeric columns (one far from 0, one with missing values, one of
    integers), a binary and a one-hot text column with missing values, a
    high-cardinality one (an embedding) and a category column of numbers."""
    n_codes = 24 if unseen else 20  # codes 20..23: unseen in fit
    X = pd.DataFrame(
        {
            "year": rng.choice(np.arange(1990, 2021), n).astype(float),
            "income": rng.lognormal(3, 1, n),
            "children": rng.randint(0, 5, n),
            "smoker": rng.choice(["yes", "no"], n),
            "city": rng.choice(CITIES + (["Nuuk"] if unseen else []), n),
            "code": [f"c{i}" for i in rng.randint(0, n_codes, n)],
            "grade": pd.Categorical(rng.choice([1, 2, 3, 4], n).astype(float)),
        }
    )
    X.loc[rng.rand(n) < 0.15, "income"] = np.nan
    X.loc[rng.rand(n) < 0.1, "city"] = None
    X.loc[rng.rand(n) < 0.1, "smoker"] = None
    X.loc[rng.rand(n) < 0.1, "grade"] = np.nan
    return X


def _signal(X, rng):
    code = X["code"].str[1:].astype(int)
    return (
        (X["year"] - 2005) / 8
        + np.log(X["income"].fillna(20.0)) / 2
        + (X["city"] == "Oslo")
        - (code % 3 == 0)
        + rng.normal(scale=0.3, size=len(X))
    ).to_numpy()


RNG = np.random.RandomState(0)
X_TRAIN, X_TEST = _table(300, RNG), _table(120, RNG, unseen=True)
SIGNAL = _signal(X_TRAIN, RNG)
TARGETS = {
    "binary": np.where(SIGNAL > np.median(SIGNAL), "high", "low"),
    "multiclass": np.digitize(SIGNAL, np.quantile(SIGNAL, [0.33, 0.66])),
    "regression": 50 * SIGNAL + 300,
    "multi-output": np.column_stack([50 * SIGNAL + 300, np.exp(SIGNAL / 2)]),
}
_FITTED = {}


def _fitted(target, **params):
    """A small fitted model (cached: every dtype and option reuses it)."""
    key = (target, tuple(sorted(params.items())))
    if key not in _FITTED:
        Estimator = TabularMLPClassifier
        if target in ("regression", "multi-output"):
            Estimator = TabularMLPRegressor
        est = Estimator(
            hidden_layer_sizes=(16, 16), max_epochs=12, random_state=0, **params
        )
        _FITTED[key] = est.fit(X_TRAIN, TARGETS[target])
    return _FITTED[key]


def _rounded(X, dtype):
    """X with its float columns rounded to dtype: what the graph reads."""
    X = X.copy()
    for name in X.columns:
        if X[name].dtype == np.float64:
            X[name] = X[name].astype(dtype).astype(np.float64)
    return X


def _run(onx, X):
    """ONNX Runtime's outputs for X: a DataFrame, feeds, or an array for a
    graph of one input."""
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    if isinstance(X, dict):
        return session.run(None, X)
    if isinstance(X, np.ndarray):
        return session.run(None, {session.get_inputs()[0].name: X})
    return session.run(None, dataframe_feeds(session, X))


def _convert(est, dtype, options=None):
    initial_types = dataframe_initial_types(X_TRAIN, dtype)
    options = {id(est): options} if options else None
    return convert_sklearn(est, initial_types=initial_types, options=options)


def _check_classifier(est, dtype):
    labels, proba = _run(_convert(est, dtype, {"zipmap": False}), X_TEST)
    X = _rounded(X_TEST, dtype)
    expected = est.predict_proba(X)
    assert expected.std(axis=0).max() > 0.05  # a model that tells rows apart
    assert proba.dtype == dtype
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_array_equal(labels, est.predict(X))


def _check_regressor(est, dtype):
    (predicted,) = _run(_convert(est, dtype), X_TEST)
    expected = est.predict(_rounded(X_TEST, dtype)).reshape(len(X_TEST), -1)
    assert predicted.shape == expected.shape
    assert predicted.dtype == dtype
    assert (expected.std(axis=0) > 0.05 * est.y_scale_).all()
    # On the scale the network works at: the standardised targets.
    difference = np.abs(predicted - expected) / est.y_scale_
    assert difference.max() <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("embedding", ["periodic", "piecewise_linear", "none"])
@pytest.mark.parametrize("n_members", [1, 3])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_classifier_graph_reproduces_predict_and_predict_proba(
    target, n_members, embedding, dtype
):
    est = _fitted(target, n_members=n_members, numeric_embedding=embedding)
    _check_classifier(est, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "target, params",
    [
        ("regression", {}),
        ("regression", {"n_members": 3, "numeric_embedding": "piecewise_linear"}),
        ("regression", {"loss": "quantile", "quantile": 0.8}),
        ("regression", {"loss": "absolute_error", "numeric_embedding": "none"}),
        ("multi-output", {}),
        ("multi-output", {"n_members": 3}),
        ("regression", {"n_bags": 2, "numeric_embedding": "piecewise_linear"}),
        ("regression", {"numeric_transform": "quantile_normal"}),
    ],
)
def test_regressor_graph_reproduces_predict(target, params, dtype):
    _check_regressor(_fitted(target, **params), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bagged_classifier_graph_averages_its_bags(dtype):
    est = _fitted("multiclass", n_bags=3, n_members=2)
    assert est.params_.shape[0] == 3
    _check_classifier(est, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["selu", "mish", "relu", "gelu", "silu"])
def test_every_parametric_activation_converts(activation, dtype):
    _check_classifier(_fitted("multiclass", activation=activation), dtype)
    _check_regressor(_fitted("regression", activation=activation), dtype)


def test_to_onnx_guesses_one_input_per_column_from_the_dataframe():
    """skl2onnx's own guess from a DataFrame: int64, float64, string and
    category inputs, one per column, named as the columns."""
    est = _fitted("multiclass", n_members=3)
    X = X_TRAIN.dropna().reset_index(drop=True)  # first values tell the types
    onx = to_onnx(est, X[:1], options={"zipmap": False})
    types = {i.name: i.type.tensor_type.elem_type for i in onx.graph.input}
    assert list(types) == list(X.columns)
    feeds = {
        name: (
            X[name].to_numpy().reshape(-1, 1)
            if X[name].dtype.kind in "if"
            # str() per value: pandas 1.5's Categorical.astype(str) warns
            else np.array([str(v) for v in X[name]], dtype=object).reshape(-1, 1)
        )
        for name in X.columns
    }
    feeds["grade"] = X["grade"].to_numpy(dtype=np.int64).reshape(-1, 1)
    labels, proba = _run(onx, feeds)
    np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(labels, est.predict(X))
    np.testing.assert_array_equal(_run(onx, X)[1], proba)  # dataframe_feeds


def test_columns_whose_names_skl2onnx_renames_are_fed_by_position():
    X_train = X_TRAIN.rename(columns={"year": "year.built", "income": "2nd"})
    X_test = X_TEST.rename(columns={"year": "year.built", "income": "2nd"})
    est = TabularMLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, random_state=0)
    est.fit(X_train, TARGETS["binary"])
    onx = convert_sklearn(
        est,
        initial_types=dataframe_initial_types(X_train),
        options={id(est): {"zipmap": False}},
    )
    assert "year.built" not in [i.name for i in onx.graph.input]
    _, proba = _run(onx, X_test)
    expected = est.predict_proba(_rounded(X_test, np.float32))
    np.testing.assert_allclose(proba, expected, atol=TOLERANCE[np.float32])


def test_numpy_input_converts_as_one_float_input_with_categorical_indices():
    rng = np.random.RandomState(1)
    X = np.column_stack(
        [rng.normal(size=300), rng.randint(0, 30, 300), rng.randint(0, 4, 300)]
    ).astype(float)
    X[rng.rand(300) < 0.1, 0] = np.nan
    y = X[:, 1] % 2 + np.nan_to_num(X[:, 0]) + X[:, 2]
    est = TabularMLPRegressor(
        hidden_layer_sizes=(16,),
        max_epochs=12,
        categorical_features=[1, 2],
        random_state=0,
    ).fit(X, y)
    X_new = np.column_stack(
        [rng.normal(size=50), rng.randint(0, 35, 50), rng.randint(-1, 5, 50)]
    ).astype(np.float32)  # codes 30..34 and -1, 4: unseen
    X_new[::7, 1] = np.nan
    onx = to_onnx(est, X_new[:1])
    assert len(onx.graph.input) == 1
    (predicted,) = _run(onx, X_new)
    expected = est.predict(X_new.astype(np.float64))
    difference = np.abs(predicted.ravel() - expected) / est.y_scale_
    assert difference.max() <= TOLERANCE[np.float32]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_onehot_categories", [8, 30])
def test_preprocessor_graph_reproduces_transform(max_onehot_categories, dtype):
    pre = TabularPreprocessor(max_onehot_categories=max_onehot_categories)
    pre.fit(X_TRAIN)
    kinds = {"numeric", "indicator", "binary", "onehot"}
    assert set(pre.feature_kinds_) == kinds | (
        {"code"} if max_onehot_categories == 8 else set()
    )
    (out,) = _run(_convert(pre, dtype), X_TEST)
    expected = pre.transform(_rounded(X_TEST, dtype))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=TOLERANCE[dtype], atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [40, 3000])
def test_preprocessor_graph_reproduces_the_normal_quantile_map(n_rows, dtype):
    """QuantileTransformer's map: interpolation up and down the quantiles
    (repeated ones in discrete columns), the bounds, scipy's ndtri, the clip."""
    rng = np.random.RandomState(2)
    X = pd.DataFrame(
        {
            "normal": rng.normal(size=n_rows),
            "skewed": rng.lognormal(size=n_rows),
            "discrete": rng.choice([0.0, 1.0, 1.0, 1.0, 2.5], n_rows),
            "constant": np.ones(n_rows),
        }
    )
    X.loc[::5, "normal"] = np.nan
    pre = TabularPreprocessor(numeric_transform="quantile_normal").fit(X)
    edges = pd.DataFrame(  # beyond, at and just inside the fitted range
        {
            "normal": [-9.0, 9.0, X["normal"].min(), X["normal"].max() - 1e-8],
            "skewed": [0.0, 1e3, X["skewed"].min() + 1e-8, X["skewed"].max()],
            "discrete": [-1.0, 3.0, 2.5, 1.0 + 1e-6],
            "constant": [0.0, 2.0, 1.0, np.nan],
        }
    )
    X_new = pd.concat([X.sample(frac=1, random_state=0), edges], ignore_index=True)
    types = dataframe_initial_types(X_new, dtype)
    (out,) = _run(convert_sklearn(pre, initial_types=types), X_new)
    expected = pre.transform(_rounded(X_new, dtype))
    # 1.9e-13 seen in float64 on the oldest stack (scipy 1.10, numpy 1.24),
    # 2e-14 on the newest
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOLERANCE[dtype] / 2)


def test_preprocessor_graph_smoothly_clips_extreme_values():
    """Values far outside the training range, up to where (x/3)^2 overflows:
    the graph's sqrt(1 + t^2) gives way to |t|, as hypot does."""
    X = pd.DataFrame({"x": np.linspace(-5, 5, 40)})
    pre = TabularPreprocessor().fit(X)
    extreme = pd.DataFrame({"x": [0.1, 1e3, -1e8, 1e140, 1e160, -1e200, 1e308]})
    types = dataframe_initial_types(extreme, np.float64)
    (out,) = _run(convert_sklearn(pre, initial_types=types), extreme)
    np.testing.assert_allclose(out, pre.transform(extreme), rtol=1e-15)


def test_a_preprocessor_in_a_pipeline_feeds_a_drop_in():
    pipe = make_pipeline(
        TabularPreprocessor(),
        BackpropClassifier((8,), max_iter=60, random_state=0),
    ).fit(X_TRAIN, TARGETS["multiclass"])
    types = dataframe_initial_types(X_TRAIN, np.float32)
    onx = convert_sklearn(
        pipe, initial_types=types, options={id(pipe[-1]): {"zipmap": False}}
    )
    labels, proba = _run(onx, X_TEST)
    X = _rounded(X_TEST, np.float32)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(labels, pipe.predict(X))


def test_zipmap_and_nocl_options_as_for_the_drop_ins():
    est = _fitted("binary")
    expected = est.predict_proba(_rounded(X_TEST, np.float32))
    labels, dicts = _run(_convert(est, np.float32), X_TEST)  # zipmap=True: dicts
    assert [sorted(d) for d in dicts] == [["high", "low"]] * len(X_TEST)
    np.testing.assert_allclose(
        [[d["high"], d["low"]] for d in dicts], expected, atol=1e-5
    )
    columns = _run(_convert(est, np.float32, {"zipmap": "columns"}), X_TEST)
    np.testing.assert_allclose(np.column_stack(columns[1:]), expected, atol=1e-5)
    labels, _ = _run(_convert(est, np.float32, {"zipmap": False, "nocl": True}), X_TEST)
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))


def test_zipmap_on_a_float64_graph_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="zipmap=True needs float32"):
        _convert(_fitted("binary"), np.float64)


def test_an_unsupported_layer_is_refused_by_name():
    est = copy.deepcopy(_fitted("binary"))
    est.layers_.append(Activation("tanh"))  # no parameters: the vector fits
    with pytest.raises(NotImplementedError, match="layer Activation has no ONNX"):
        _convert(est, np.float32, {"zipmap": False})


def test_inputs_the_graph_cannot_read_are_refused_by_column():
    est = _fitted("binary")
    types = dataframe_initial_types(X_TRAIN, np.float32)
    with pytest.raises(ValueError, match="7 columns but the graph has 6 inputs"):
        convert_sklearn(est, initial_types=types[:-1])
    guessed = [
        (n, Int64TensorType([None, 1])) if n == "city" else (n, t) for n, t in types
    ]
    with pytest.raises(TypeError, match="'city' has text categories"):
        convert_sklearn(est, initial_types=guessed)
    text = [
        (n, StringTensorType([None, 1])) if n == "year" else (n, t) for n, t in types
    ]
    with pytest.raises(TypeError, match="'year' is numeric"):
        convert_sklearn(est, initial_types=text)
    with pytest.raises(TypeError, match="'smoker' has text categories"):
        convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 7]))])
    with pytest.raises(TypeError, match="a string tensor holding every column"):
        convert_sklearn(est, initial_types=[("X", StringTensorType([None, 7]))])
    with pytest.raises(ValueError, match="has 5 columns"):
        convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 5]))])


@pytest.mark.parametrize("Estimator", [TabularMLPClassifier, TabularMLPRegressor])
def test_an_unfitted_estimator_is_refused_by_name(Estimator):
    with pytest.raises(NotFittedError, match=Estimator.__name__):
        to_onnx(Estimator(), X_TRAIN.dropna()[:1])
