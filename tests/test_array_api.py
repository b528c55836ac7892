"""Training and predicting on arrays of other namespaces (torch, array-api-strict)
under scikit-learn's array_api_dispatch.

The reference for every fit on torch is the same fit on numpy: the random
draws (initial weights, shuffles, dropout masks, the validation split) are
made on the host generator either way, so the two follow the same trajectory
and differ only by the rounding of their matrix products.

The torch tensors live on ``SKMLP_TEST_DEVICE`` (default ``cpu``): on a machine
with a GPU, ``SKMLP_TEST_DEVICE=cuda pytest tests/test_array_api.py`` runs the
same tests on it (and they skip, as absent, where that device is not).
"""

import os
import pickle
import warnings

import numpy as np
import pytest
import scipy
import scipy.sparse
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor
from skmlp._ops import to_host

torch = pytest.importorskip(
    "torch",
    reason="torch is not installed (the test extra leaves it out: Linux's default "
    "torch is the CUDA build); for these tests install its CPU build: "
    "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu",
)

if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 14):
    pytest.skip(
        "scikit-learn's array API dispatch needs scipy >= 1.14",
        allow_module_level=True,
    )

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # balanced_accuracy on a small validation split, on numpy and torch alike
    pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true"),
]

X_iris, y_iris = load_iris(return_X_y=True)
X_iris = StandardScaler().fit_transform(X_iris)
X_digits, y_digits = load_digits(return_X_y=True)
X_digits = X_digits[:400] / 16.0
y_digits = y_digits[:400]


def _dispatch():
    return sklearn.config_context(array_api_dispatch=True)


DEVICE = os.environ.get("SKMLP_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda") and not torch.cuda.is_available():
    pytest.skip(f"SKMLP_TEST_DEVICE={DEVICE}: no such device", allow_module_level=True)


def _t(array):
    """A numpy array as a torch tensor on the test device."""
    return None if array is None else torch.asarray(np.asarray(array), device=DEVICE)


def _np(tensor):
    return tensor.cpu().numpy()


def _fit_both(make, X, y, **fit_params):
    """The same estimator fitted on numpy and, under dispatch, on torch."""
    ours_np = make().fit(X, y, **fit_params)
    with _dispatch():
        ours_t = make().fit(_t(X), _t(y), **{k: _t(v) for k, v in fit_params.items()})
    return ours_np, ours_t


def _proba(est, X):
    with _dispatch():
        out = est.predict_proba(_t(X)) if hasattr(est, "predict_proba") else None
        out = est.predict(_t(X)) if out is None else out
    assert isinstance(out, torch.Tensor)
    return _np(out)


CLASSIFIER_CASES = {
    "adam": {},
    "sgd momentum": dict(solver="sgd", learning_rate_init=0.05),
    "sgd nesterov adaptive": dict(
        solver="sgd", learning_rate="adaptive", n_iter_no_change=2
    ),
    "sgd invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.1),
    "lbfgs": dict(solver="lbfgs"),
    "early stopping": dict(early_stopping=True, n_iter_no_change=3),
    "balanced": dict(class_weight="balanced"),
    "dropout": dict(dropout=0.2),
    "gelu and l2": dict(activation="gelu", alpha=0.1),
    "scoring loss": dict(early_stopping=True, scoring="loss"),
    "scoring by name": dict(early_stopping=True, scoring="balanced_accuracy"),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIER_CASES))
def test_a_torch_fit_follows_the_numpy_fit(case):
    def make():
        return BackpropClassifier(
            (16,), max_iter=40, random_state=0, **CLASSIFIER_CASES[case]
        )

    ours_np, ours_t = _fit_both(make, X_digits, y_digits)
    assert ours_t.n_iter_ == ours_np.n_iter_
    assert_allclose(ours_t.loss_curve_, ours_np.loss_curve_, rtol=1e-9)
    assert_allclose(
        _proba(ours_t, X_digits), ours_np.predict_proba(X_digits), atol=1e-6
    )
    if ours_np.early_stopping:
        # A scorer by name computes on the device, in torch's float32 default.
        assert_allclose(
            ours_t.validation_scores_, ours_np.validation_scores_, rtol=1e-7
        )
    for W in ours_t.coefs_ + ours_t.intercepts_:
        assert isinstance(W, torch.Tensor)
        assert W.device.type == torch.device(DEVICE).type
    for value in ours_t._optimizer_state.values() if ours_t._optimizer_state else ():
        assert isinstance(value, (int, float, torch.Tensor))


@pytest.mark.parametrize(
    "params",
    [
        dict(loss="squared_error"),
        dict(loss="huber", solver="sgd"),
        dict(loss="quantile", quantile=0.8),
        dict(loss="poisson"),
    ],
    ids=lambda p: p["loss"],
)
def test_a_torch_regressor_with_weights_and_a_validation_set_follows_numpy(params):
    rng = np.random.RandomState(0)
    y = np.abs(X_iris[:, :2] @ [1.0, 0.5]) + rng.uniform(size=150)
    sw = rng.uniform(0.5, 2, size=150)

    def make():
        return BackpropRegressor(
            hidden_layer_sizes=(8,), max_iter=30, random_state=0, **params
        )

    ours_np, ours_t = _fit_both(
        make,
        X_iris[:100],
        y[:100],
        sample_weight=sw[:100],
        X_val=X_iris[100:],
        y_val=y[100:],
    )
    assert_allclose(_proba(ours_t, X_iris), ours_np.predict(X_iris), atol=1e-6)
    assert_allclose(ours_t.validation_scores_, ours_np.validation_scores_, rtol=1e-8)


def test_float32_trains_in_float32_on_torch_within_float32_noise():
    X32 = X_digits.astype(np.float32)

    def make():
        return BackpropClassifier((16,), max_iter=20, random_state=0)

    ours_np, ours_t = _fit_both(make, X32, y_digits)
    assert ours_t.coefs_[0].dtype == torch.float32
    proba = _proba(ours_t, X32)
    assert proba.dtype == np.float32
    assert_allclose(proba, ours_np.predict_proba(X32), atol=1e-4)


def test_partial_fit_and_warm_start_continue_on_the_device():
    def run(to):
        est = BackpropClassifier((8,), random_state=0, warm_start=True, max_iter=5)
        with _dispatch():
            for _ in range(3):
                est.partial_fit(to(X_iris), to(y_iris), classes=to(np.arange(3)))
            est.fit(to(X_iris), to(y_iris))  # warm start: 5 more epochs
        return est

    ours_np, ours_t = run(np.asarray), run(_t)
    assert ours_t.t_ == ours_np.t_ == 150 * 8
    assert_allclose(_proba(ours_t, X_iris), ours_np.predict_proba(X_iris), atol=1e-9)


@pytest.mark.parametrize(
    "y",
    [
        np.array(["setosa", "versicolor", "virginica"])[y_iris],
        (y_iris == 2).astype(int),
        make_multilabel_classification(150, 4, n_classes=3, random_state=0)[1],
    ],
    ids=["strings", "binary", "multilabel"],
)
def test_labels_decode_like_numpy(y):
    def make():
        return BackpropClassifier((8,), max_iter=20, random_state=0)

    ours_np = make().fit(X_iris, y)
    with _dispatch():
        # Strings cannot live on a device: y is passed as numpy, as users do.
        ours_t = make().fit(_t(X_iris), y if y.dtype.kind == "U" else _t(y))
        labels = ours_t.predict(_t(X_iris))
    expected = ours_np.predict(X_iris)
    assert_array_equal(to_host(labels), expected)
    if y.dtype.kind != "U":
        assert isinstance(labels, torch.Tensor)


def test_predicting_with_another_namespace_is_a_clear_error():
    with _dispatch():
        est = BackpropClassifier((4,), max_iter=3, random_state=0)
        est.fit(_t(X_iris), _t(y_iris))
        for method in ("predict", "predict_proba", "predict_log_proba"):
            with pytest.raises(
                ValueError,
                match=rf"BackpropClassifier\.{method}\(\) must use the same namespace",
            ):
                getattr(est, method)(X_iris)
        with pytest.raises(ValueError, match="same namespace"):
            est.predict(scipy.sparse.csr_matrix(X_iris))
    with pytest.raises(ValueError, match="fitted on torch arrays.*move_estimator_to"):
        est.predict(X_iris)  # dispatch off: numpy X for a torch model


def test_sparse_input_trains_with_numpy_under_dispatch():
    with _dispatch():
        est = BackpropClassifier((4,), max_iter=3, random_state=0)
        est.fit(scipy.sparse.csr_matrix(X_iris), y_iris)
    assert isinstance(est.coefs_[0], np.ndarray)


def test_a_device_model_pickles_and_moves_to_numpy():
    with _dispatch():
        est = BackpropClassifier((8,), max_iter=10, random_state=0)
        est.fit(_t(X_iris), _t(y_iris))
        expected = _np(est.predict_proba(_t(X_iris)))
        loaded = pickle.loads(pickle.dumps(est))
        assert_array_equal(_np(loaded.predict_proba(_t(X_iris))), expected)
    array_api = pytest.importorskip("sklearn.utils._array_api")
    if not hasattr(array_api, "move_estimator_to"):
        pytest.skip("move_estimator_to is new in scikit-learn 1.9")
    on_host = array_api.move_estimator_to(est, np, None)
    assert isinstance(on_host.coefs_[0], np.ndarray)
    assert_allclose(on_host.predict_proba(X_iris), expected, rtol=1e-12)
    skops_io = pytest.importorskip("skops.io")
    dumped = skops_io.dumps(on_host)
    restored = skops_io.loads(dumped, trusted=skops_io.get_untrusted_types(data=dumped))
    assert_allclose(restored.predict_proba(X_iris), expected, rtol=1e-12)


def test_a_refused_refit_on_the_device_changes_nothing():
    with _dispatch():
        est = BackpropRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        est.fit(_t(X_iris), _t(y_iris))
        before = [W.clone() for W in est.coefs_ + est.intercepts_]
        curve = list(est.loss_curve_)
        with pytest.raises(ValueError, match="non-finite|overflow"):
            est.fit(_t(np.full((20, 4), 1e200)), _t(y_iris[40:60]))
    for W, saved in zip(est.coefs_ + est.intercepts_, before, strict=True):
        assert torch.equal(W, saved)
    assert est.loss_curve_ == curve


def test_divergence_on_the_device_keeps_what_numpy_keeps(b2_settings):
    """The issue's B2 (divergence inside the first epoch): on a device the
    loss is read once per epoch, and the same weights are restored."""

    def make():
        return BackpropRegressor(**b2_settings)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours_np, ours_t = _fit_both(make, X_iris, y_iris)
    for W, expected in zip(ours_t.coefs_, ours_np.coefs_, strict=True):
        assert_allclose(_np(W), expected, rtol=1e-12)
    assert ours_t.loss_ == pytest.approx(ours_np.loss_, rel=1e-9)


def test_array_api_strict_trains_every_solver():
    xp = pytest.importorskip("array_api_strict")
    for solver in ("adam", "sgd", "lbfgs"):

        def make(solver=solver):
            return BackpropClassifier((8,), solver=solver, max_iter=20, random_state=0)

        ours_np = make().fit(X_iris, y_iris)
        with _dispatch():
            ours_x = make().fit(xp.asarray(X_iris), xp.asarray(y_iris))
            proba = ours_x.predict_proba(xp.asarray(X_iris))
        assert type(proba).__module__.startswith("array_api_strict")
        assert_allclose(np.asarray(proba), ours_np.predict_proba(X_iris), atol=1e-9)


def test_callbacks_see_every_epoch_on_the_device():
    callback = pytest.importorskip("sklearn.callback")  # scikit-learn >= 1.9
    monitor = callback.ScoringMonitor(scoring="accuracy")
    est = BackpropClassifier((8,), max_iter=6, random_state=0).set_callbacks(monitor)
    with _dispatch():
        est.fit(_t(X_iris), _t(y_iris))
        final = float(np.mean(_np(est.predict(_t(X_iris))) == y_iris))
    epochs = [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    assert len(epochs) == est.n_iter_ == 6
    assert epochs[-1]["accuracy"] == pytest.approx(final, rel=1e-6)


@pytest.mark.parametrize("labels", ["int", "str"])
def test_a_device_model_exports_to_onnx_as_it_is(labels):
    """skl2onnx converts the model where it lives: its weights and labels are
    copied to the host as the graph's constants. ONNX Runtime reproduces the
    device model's own predictions."""
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    y = y_iris if labels == "int" else np.array(["a", "b", "c"])[y_iris]
    with _dispatch():
        est = BackpropClassifier((8,), max_iter=30, random_state=0).fit(
            _t(X_iris), y if labels == "str" else _t(y)
        )
        assert isinstance(est.coefs_[0], torch.Tensor)
        onx = to_onnx(est, X_iris[:1], options={"zipmap": False})
        expected_labels = est.predict(_t(X_iris))
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got_labels, got_proba = session.run(None, {"X": X_iris})
    if labels == "int":
        expected_labels = _np(expected_labels)
    assert_array_equal(got_labels, expected_labels)
    assert_allclose(got_proba, _proba(est, X_iris), atol=1e-9)
