"""check_gradients: backprop agrees with finite differences everywhere, and the
check itself catches a wrong derivative."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning

from skmlp import BackpropClassifier, BackpropRegressor, check_gradients
from skmlp._activations import ACTIVATIONS

ACTIVATION_NAMES = sorted(ACTIVATIONS)


def _problem(kind, rng, n=25):
    X = rng.normal(size=(n, 4))
    if kind == "binary":
        return BackpropClassifier, X, rng.randint(2, size=n)
    if kind == "multiclass":
        return BackpropClassifier, X, rng.choice(["a", "b", "c"], size=n)
    if kind == "multilabel":
        X, Y = make_multilabel_classification(n, 4, n_classes=3, random_state=0)
        return BackpropClassifier, X / X.max(), Y
    if kind == "squared_error":
        return BackpropRegressor, X, rng.normal(size=(n, 2))
    if kind in ("absolute_error", "huber", "quantile"):
        return BackpropRegressor, X, 3 * rng.normal(size=(n, 2))
    return BackpropRegressor, X, rng.poisson(2.0, size=n)  # poisson


def _fitted(Estimator, X, y, activation, alpha, kind):
    regression_losses = ("poisson", "absolute_error", "huber", "quantile")
    kwargs = {"loss": kind} if kind in regression_losses else {}
    est = Estimator(
        hidden_layer_sizes=(5, 3),
        activation=activation,
        alpha=alpha,
        max_iter=3,
        random_state=0,
        **kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize(
    "kind",
    [
        "binary",
        "multiclass",
        "multilabel",
        "squared_error",
        "poisson",
        "absolute_error",
        "huber",
        "quantile",
    ],
)
@pytest.mark.parametrize(
    "alpha, weighted", [(0.0, False), (1e-2, False), (0.0, True), (0.5, True)]
)
def test_backprop_matches_finite_differences(activation, kind, alpha, weighted, rng):
    Estimator, X, y = _problem(kind, rng)
    est = _fitted(Estimator, X, y, activation, alpha, kind)
    sw = rng.uniform(0.0, 3.0, size=X.shape[0]) if weighted else None
    assert check_gradients(est, X, y, sample_weight=sw) < 1e-6


def test_float32_and_sparse_models_are_checked_in_float64(rng):
    X, y = rng.normal(size=(20, 4)), rng.randint(3, size=20)
    est = _fitted(BackpropClassifier, X.astype(np.float32), y, "tanh", 0.1, "")
    assert est.coefs_[0].dtype == np.float32
    assert check_gradients(est, sp.csr_matrix(X.astype(np.float32)), y) < 1e-6


def test_a_wrong_derivative_gives_a_large_error(monkeypatch, rng):
    """The tutorial's bug: dsigmoid = 2 s (1 - s). check_gradients must see it."""
    Estimator, X, y = _problem("multiclass", rng)
    est = _fitted(Estimator, X, y, "logistic", 0.0, "multiclass")
    correct = check_gradients(est, X, y)

    def doubled_backward(a, delta):
        delta *= 2 * a * (1 - a)

    wrong_pair = ACTIVATIONS["logistic"]._replace(backward=doubled_backward)
    monkeypatch.setitem(ACTIVATIONS, "logistic", wrong_pair)
    wrong = check_gradients(est, X, y)
    assert correct < 1e-8
    assert wrong > 0.1


def test_check_gradients_leaves_the_estimator_unchanged(rng):
    Estimator, X, y = _problem("binary", rng)
    est = _fitted(Estimator, X, y, "relu", 0.1, "binary")
    before = [W.copy() for W in est.coefs_]
    check_gradients(est, X, y)
    for W, W0 in zip(est.coefs_, before, strict=True):
        np.testing.assert_array_equal(W, W0)


def test_check_gradients_needs_a_fitted_estimator_and_positive_epsilon(rng):
    from sklearn.exceptions import NotFittedError

    X, y = rng.normal(size=(5, 2)), [0, 1, 0, 1, 1]
    with pytest.raises(NotFittedError):
        check_gradients(BackpropClassifier(random_state=0), X, y)
    est = _fitted(BackpropClassifier, X, y, "relu", 0.0, "binary")
    with pytest.raises(ValueError, match="epsilon"):
        check_gradients(est, X, y, epsilon=0)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_a_saturated_classifier_is_checked_correctly(kind, rng):
    """Output weights scaled up until the probabilities saturate at the
    clipping bounds: backprop's P - Y is still the exact gradient, and the
    check must agree (clipping flattens the reported loss, not the model)."""
    Estimator, X, y = _problem(kind, rng)
    est = _fitted(Estimator, X, y, "tanh", 0.0, kind)
    est.coefs_[-1] *= 1e3
    est.intercepts_[-1] *= 1e3
    proba = est.predict_proba(X)
    eps = np.finfo(np.float64).eps
    assert ((proba <= eps) | (proba >= 1 - eps)).mean() > 0.3  # saturated
    assert check_gradients(est, X, y, epsilon=1e-7) < 1e-6
