"""ONNX export: skl2onnx's calls convert skmlp's models, and ONNX Runtime runs
them to the results of predict and predict_proba."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor
from skmlp._activations import ACTIVATIONS

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
from skl2onnx import convert_sklearn, to_onnx  # noqa: E402
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_iris, y_iris = load_iris(return_X_y=True)
X_scaled = StandardScaler().fit_transform(X_iris)
# Float32 graphs against the float64 model, and float64 graphs.
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-9}


def _run(onx, X, options=None):
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def _targets(kind, rng):
    if kind == "binary int":
        return BackpropClassifier, (y_iris > 0).astype(int) * 7 - 3  # labels -3, 4
    if kind == "multiclass str":
        return BackpropClassifier, np.array(["setosa", "versicolor", "virginica"])[
            y_iris
        ]
    if kind == "multilabel":
        _, Y = make_multilabel_classification(150, 4, n_classes=3, random_state=0)
        return BackpropClassifier, Y
    if kind == "regression":
        return BackpropRegressor, X_iris[:, 0] * 2 - X_iris[:, 1]
    if kind == "multi-output":
        return BackpropRegressor, np.column_stack([X_iris[:, 0], X_iris[:, 2] ** 2])
    return BackpropRegressor, rng.poisson(X_iris[:, 2])  # poisson


def _fitted(kind, activation, rng):
    Estimator, y = _targets(kind, rng)
    kwargs = {"loss": "poisson"} if kind == "poisson" else {}
    est = Estimator(
        hidden_layer_sizes=(7, 5),
        activation=activation,
        max_iter=40,
        learning_rate_init=0.01,
        random_state=0,
        **kwargs,
    )
    return est.fit(X_scaled, y)


KINDS = [
    "binary int",
    "multiclass str",
    "multilabel",
    "regression",
    "multi-output",
    "poisson",
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_onnx_runtime_reproduces_predict_and_predict_proba(
    activation, kind, dtype, rng
):
    est = _fitted(kind, activation, rng)
    X = X_scaled.astype(dtype)
    options = {"zipmap": False} if isinstance(est, BackpropClassifier) else None
    outputs = _run(to_onnx(est, X[:1], options=options), X)
    tolerance = TOLERANCE[dtype]
    if isinstance(est, BackpropRegressor):
        (predicted,) = outputs
        expected = est.predict(X_scaled).reshape(len(X), -1)
        assert predicted.shape == expected.shape  # (n, n_outputs), never (2n, 1)
        assert predicted.dtype == dtype
        np.testing.assert_allclose(predicted, expected, rtol=tolerance, atol=tolerance)
        return
    labels, proba = outputs
    np.testing.assert_array_equal(labels, est.predict(X_scaled))
    assert proba.dtype == dtype
    np.testing.assert_allclose(proba, est.predict_proba(X_scaled), atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_saturating_inputs_stay_finite_and_equal(activation, dtype, rng):
    for kind in ("multiclass str", "binary int"):
        est = _fitted(kind, activation, rng)
        X = (X_scaled * 1e4).astype(dtype)  # |z| in the thousands and beyond
        labels, proba = _run(to_onnx(est, X[:1], options={"zipmap": False}), X)
        assert np.isfinite(proba).all()
        np.testing.assert_array_equal(labels, est.predict(X.astype(np.float64)))
        expected = est.predict_proba(X.astype(np.float64))
        np.testing.assert_allclose(proba, expected, atol=TOLERANCE[dtype])


def test_a_model_trained_in_float32_converts_in_float32():
    X = X_scaled.astype(np.float32)
    est = BackpropClassifier((9,), max_iter=40, random_state=0).fit(X, y_iris)
    assert est.coefs_[0].dtype == np.float32
    labels, proba = _run(to_onnx(est, X[:1], options={"zipmap": False}), X)
    np.testing.assert_array_equal(labels, est.predict(X))
    np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-6)


def test_zipmap_options_as_for_mlpclassifier():
    est = BackpropClassifier((6,), max_iter=30, random_state=0).fit(X_scaled, y_iris)
    X = X_scaled[:5].astype(np.float32)
    expected = est.predict_proba(X_scaled[:5])
    labels, dicts = _run(to_onnx(est, X), X)  # zipmap=True: a dict per row
    assert [sorted(d) for d in dicts] == [[0, 1, 2]] * 5
    np.testing.assert_allclose(
        [[d[c] for c in range(3)] for d in dicts], expected, atol=1e-6
    )
    columns = _run(to_onnx(est, X, options={"zipmap": "columns"}), X)
    np.testing.assert_allclose(np.column_stack(columns[1:]), expected, atol=1e-6)


def test_nocl_gives_class_indices():
    y = np.array(["a", "b", "c"])[y_iris]
    est = BackpropClassifier((6,), max_iter=30, random_state=0).fit(X_scaled, y)
    X = X_scaled.astype(np.float32)
    labels, _ = _run(to_onnx(est, X[:1], options={"zipmap": False, "nocl": True}), X)
    np.testing.assert_array_equal(labels, np.searchsorted(est.classes_, est.predict(X)))


def test_convert_sklearn_with_initial_types_and_a_whole_pipeline():
    pipe = make_pipeline(
        StandardScaler(), BackpropClassifier((8,), max_iter=40, random_state=0)
    ).fit(X_iris, y_iris)
    onx = convert_sklearn(
        pipe,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(pipe[-1]): {"zipmap": False}},
    )
    labels, proba = _run(onx, X_iris.astype(np.float32))
    np.testing.assert_array_equal(labels, pipe.predict(X_iris))
    np.testing.assert_allclose(proba, pipe.predict_proba(X_iris), atol=1e-5)
    reg = make_pipeline(
        StandardScaler(),
        BackpropRegressor(hidden_layer_sizes=(8,), max_iter=40, random_state=0),
    )
    reg.fit(X_iris, y_iris.astype(float))
    onx = convert_sklearn(reg, initial_types=[("input", DoubleTensorType([None, 4]))])
    (predicted,) = _run(onx, X_iris)
    np.testing.assert_allclose(predicted.ravel(), reg.predict(X_iris), rtol=1e-9)


def test_float_labels_that_are_whole_numbers_become_int64():
    y = y_iris.astype(float) + 1.0
    est = BackpropClassifier((6,), max_iter=30, random_state=0).fit(X_scaled, y)
    X = X_scaled.astype(np.float32)
    labels, _ = _run(to_onnx(est, X[:1], options={"zipmap": False}), X)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, est.predict(X))


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_an_unfitted_estimator_is_refused_by_name(Estimator):
    with pytest.raises(NotFittedError, match=Estimator.__name__):
        to_onnx(Estimator(), X_scaled[:1].astype(np.float32))


def test_an_unsupported_option_is_refused_by_name():
    est = BackpropRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    est.fit(X_scaled, y_iris.astype(float))
    with pytest.raises(Exception, match="zipmap"):
        to_onnx(est, X_scaled[:1].astype(np.float32), options={"zipmap": False})


@pytest.mark.parametrize("skl2onnx_first", [False, True])
def test_import_order_does_not_matter_and_skmlp_does_not_import_skl2onnx(
    skl2onnx_first,
):
    code = f"""
import sys
import numpy as np
if {skl2onnx_first}:
    import skl2onnx
import skmlp
assert ("skl2onnx" in sys.modules) == {skl2onnx_first}
from skl2onnx import to_onnx
X = np.random.RandomState(0).normal(size=(30, 3)).astype(np.float32)
est = skmlp.BackpropRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(X, X[:, 0])
print(to_onnx(est, X[:1]).graph.output[0].name)
"""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "variable"


def test_the_readme_example_runs():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Deploy with ONNX", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_exact_gelu_graph_is_z_times_the_normal_cdf(dtype):
    """A network whose output is gelu(x) itself, against scipy's ndtr, from
    deep in the negative tail to large x (the double graph's erf is its own
    Chebyshev series: ONNX Runtime has no double Erf)."""
    from scipy.special import ndtr

    x = np.concatenate([np.linspace(-40, 40, 4001), [-1e4, -9.0, 1e-12, 9.0, 1e4]])
    est = BackpropRegressor(
        hidden_layer_sizes=(1,), activation="gelu", max_iter=1, random_state=0
    )
    est.fit(x[:10, None], x[:10])
    est.coefs_ = [np.ones((1, 1)), np.ones((1, 1))]
    est.intercepts_ = [np.zeros(1), np.zeros(1)]
    (out,) = _run(to_onnx(est, x[:1, None].astype(dtype)), x[:, None].astype(dtype))
    expected = x * ndtr(x)
    np.testing.assert_allclose(
        est.predict(x[:, None]), expected, rtol=1e-15, atol=1e-300
    )
    # Absolute error per unit of |x| (zPhi(z) cancels in the tail: 1 + erf).
    bound = (1e-13 if dtype == np.float64 else 2e-6) * np.maximum(1, np.abs(x))
    assert (np.abs(out.ravel() - expected) <= bound).all()


@pytest.mark.parametrize(
    "loss, extra",
    [("quantile", {"quantile": 0.9}), ("huber", {}), ("absolute_error", {})],
)
def test_robust_and_quantile_regressors_are_plain_regression_graphs(loss, extra):
    est = BackpropRegressor(
        loss=loss, hidden_layer_sizes=(6,), max_iter=30, random_state=0, **extra
    ).fit(X_scaled, X_iris[:, 0])
    (predicted,) = _run(to_onnx(est, X_scaled[:1]), X_scaled)
    np.testing.assert_allclose(predicted.ravel(), est.predict(X_scaled), rtol=1e-12)


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_a_model_on_a_device_numpy_cannot_read_converts_as_it_is(Estimator):
    """array-api-strict's 'device1' stands in for a GPU: numpy cannot read
    its arrays. The converter copies the weights to the host itself, and ONNX
    Runtime reproduces the device model's predictions."""
    xp = pytest.importorskip("array_api_strict")
    import scipy
    import sklearn

    if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 14):
        pytest.skip("scikit-learn's array API dispatch needs scipy >= 1.14")
    device = xp.Device("device1")
    y = y_iris if Estimator is BackpropClassifier else X_scaled[:, 0] - X_scaled[:, 1]
    with sklearn.config_context(array_api_dispatch=True):
        est = Estimator(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
        est.fit(xp.asarray(X_scaled, device=device), xp.asarray(y, device=device))
        assert est.coefs_[0].device == device
        options = {"zipmap": False} if Estimator is BackpropClassifier else None
        onx = to_onnx(est, X_scaled[:1], options=options)
        on_device = est.predict(xp.asarray(X_scaled, device=device))
        if Estimator is BackpropClassifier:
            proba = est.predict_proba(xp.asarray(X_scaled, device=device))
    cpu = xp.Device("CPU_DEVICE")
    outputs = _run(onx, X_scaled)
    if Estimator is BackpropRegressor:
        expected = np.asarray(on_device.to_device(cpu))
        np.testing.assert_allclose(outputs[0].ravel(), expected, rtol=1e-9)
        return
    np.testing.assert_array_equal(outputs[0], np.asarray(on_device.to_device(cpu)))
    np.testing.assert_allclose(outputs[1], np.asarray(proba.to_device(cpu)), atol=1e-9)
