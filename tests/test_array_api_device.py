"""A stand-in for a GPU on any machine: array-api-strict's ``device1``.

numpy cannot read an array that lives on array-api-strict's ``device1``
(``np.asarray`` raises), just as it cannot read a CUDA tensor. So every fit,
prediction and refusal here fails if some step of skmlp quietly converts a
device array to numpy, a bug that torch on the CPU (``tests/test_array_api.py``)
cannot show. The reference for each result is the same call on numpy.
"""

import warnings

import numpy as np
import pytest
import scipy
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor

xp = pytest.importorskip(
    "array_api_strict",
    reason="array-api-strict is not installed: pip install -e '.[test]' installs it",
)
if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 14):
    pytest.skip(
        "scikit-learn's array API dispatch needs scipy >= 1.14",
        allow_module_level=True,
    )

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DEVICE = xp.Device("device1")
CPU = xp.Device("CPU_DEVICE")
X_iris, y_iris = load_iris(return_X_y=True)
X_iris = StandardScaler().fit_transform(X_iris)


def _d(array):
    """A numpy array on device1 (None stays None)."""
    return None if array is None else xp.asarray(np.asarray(array), device=DEVICE)


def _host(array):
    """A device1 array (or numpy's) as numpy."""
    if isinstance(array, np.ndarray):
        return array
    assert array.device == DEVICE  # answers stay on the model's device
    return np.asarray(array.to_device(CPU))


def _both(make, method, X, y, **kwargs):
    """make().method(...) on numpy, and on device1 under dispatch."""
    on_numpy = getattr(make(), method)(X, y, **kwargs)
    with sklearn.config_context(array_api_dispatch=True):
        on_device = getattr(make(), method)(
            _d(X), _d(y), **{k: _d(v) for k, v in kwargs.items()}
        )
    return on_numpy, on_device


CLASSIFIERS = {
    "adam": {},
    "sgd nesterov adaptive": dict(solver="sgd", learning_rate="adaptive"),
    "lbfgs": dict(solver="lbfgs"),
    "early stopping by loss": dict(early_stopping=True, scoring="loss"),
    "early stopping by scorer": dict(
        early_stopping=True, scoring="neg_log_loss", n_iter_no_change=3
    ),
    "balanced dropout gelu": dict(
        class_weight="balanced", dropout=0.1, activation="gelu"
    ),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIERS))
def test_a_classifier_trains_and_predicts_on_the_device(case):
    def make():
        return BackpropClassifier(
            (8,), max_iter=25, random_state=0, **CLASSIFIERS[case]
        )

    ours_np, ours_d = _both(make, "fit", X_iris, y_iris)
    with sklearn.config_context(array_api_dispatch=True):
        X = _d(X_iris)
        proba = _host(ours_d.predict_proba(X))
        log_proba = _host(ours_d.predict_log_proba(X))
        labels = _host(ours_d.predict(X))
        score = ours_d.score(X, _d(y_iris))
    assert all(W.device == DEVICE for W in ours_d.coefs_ + ours_d.intercepts_)
    assert ours_d.n_iter_ == ours_np.n_iter_
    assert_allclose(proba, ours_np.predict_proba(X_iris), atol=1e-9)
    assert_allclose(log_proba, ours_np.predict_log_proba(X_iris), atol=1e-8)
    assert_array_equal(labels, ours_np.predict(X_iris))
    assert score == pytest.approx(ours_np.score(X_iris, y_iris))
    if ours_np.early_stopping:
        assert_allclose(
            ours_d.validation_scores_, ours_np.validation_scores_, rtol=1e-8
        )


@pytest.mark.parametrize("loss", ["squared_error", "huber", "quantile", "poisson"])
def test_a_regressor_with_weights_and_a_validation_set_on_the_device(loss):
    rng = np.random.RandomState(0)
    y = np.abs(X_iris[:, :2] @ [1.0, 0.5]) + rng.uniform(size=150)
    sw = rng.uniform(0.5, 2, size=150)

    def make():
        return BackpropRegressor(
            loss=loss, hidden_layer_sizes=(8,), max_iter=20, random_state=0
        )

    ours_np, ours_d = _both(
        make,
        "fit",
        X_iris[:100],
        y[:100],
        sample_weight=sw[:100],
        X_val=X_iris[100:],
        y_val=y[100:],
    )
    with sklearn.config_context(array_api_dispatch=True):
        predicted = _host(ours_d.predict(_d(X_iris)))
        score = ours_d.score(_d(X_iris), _d(y))
    assert_allclose(predicted, ours_np.predict(X_iris), rtol=1e-9, atol=1e-12)
    assert_allclose(ours_d.validation_scores_, ours_np.validation_scores_, rtol=1e-8)
    assert score == pytest.approx(ours_np.score(X_iris, y))


def test_partial_fit_then_warm_start_on_the_device():
    def run(to):
        est = BackpropClassifier((8,), warm_start=True, max_iter=4, random_state=0)
        with sklearn.config_context(array_api_dispatch=True):
            for _ in range(2):
                est.partial_fit(to(X_iris), to(y_iris), classes=to(np.arange(3)))
            est.fit(to(X_iris), to(y_iris))
        return est

    ours_np, ours_d = run(np.asarray), run(_d)
    with sklearn.config_context(array_api_dispatch=True):
        proba = _host(ours_d.predict_proba(_d(X_iris)))
    assert_allclose(proba, ours_np.predict_proba(X_iris), atol=1e-9)


@pytest.mark.parametrize(
    "y",
    [
        np.array(["a", "b", "c"])[y_iris],
        make_multilabel_classification(150, 4, n_classes=3, random_state=0)[1],
    ],
    ids=["strings", "multilabel"],
)
def test_labels_of_every_kind_on_the_device(y):
    def make():
        return BackpropClassifier((8,), max_iter=15, random_state=0)

    ours_np = make().fit(X_iris, y)
    with sklearn.config_context(array_api_dispatch=True):
        # String labels cannot live on a device: they stay numpy.
        y_given = y if y.dtype.kind == "U" else _d(y)
        ours_d = make().fit(_d(X_iris), y_given)
        labels = _host(ours_d.predict(_d(X_iris)))
    assert_array_equal(labels, ours_np.predict(X_iris))


def test_divergence_and_a_refused_refit_leave_what_numpy_leaves(b2_settings):
    def make():
        return BackpropRegressor(**b2_settings)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours_np, ours_d = _both(make, "fit", X_iris, y_iris.astype(float))
    for W, expected in zip(ours_d.coefs_, ours_np.coefs_, strict=True):
        assert_allclose(_host(W), expected, rtol=1e-12)
    before = [_host(W).copy() for W in ours_d.coefs_]
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError):
            ours_d.fit(_d(np.full((20, 4), 1e200)), _d(y_iris[:20].astype(float)))
    for W, expected in zip(ours_d.coefs_, before, strict=True):
        assert_array_equal(_host(W), expected)
