"""Dropout: inverted, during stochastic training only, drawn from random_state.

The backward pass with fixed masks is checked against finite differences in
tests/test_network.py."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits

from skmlp import BackpropClassifier, BackpropRegressor
from skmlp._network import MLP, forward, n_parameters
from skmlp._training import Minibatches

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_digits(return_X_y=True)
X_train, y_train, X_test, y_test = X[:1200] / 16, y[:1200], X[1200:] / 16, y[1200:]


def test_masks_drop_a_fraction_p_and_rescale_the_rest():
    net = MLP(
        [64, 500, 300, 10],
        "relu",
        "softmax",
        np.zeros(n_parameters([64, 500, 300, 10])),
    )
    batches = Minibatches(
        net,
        X_train,
        np.zeros((1200, 10)),
        None,
        200,
        True,
        dropout=[0.3, 0.0],
        rng=np.random.RandomState(0),
    )
    first, second = batches.dropout_masks(200)
    assert second is None
    assert set(np.unique(first)) == {0.0, 1 / 0.7}
    assert abs((first == 0).mean() - 0.3) < 0.01
    assert abs(first.mean() - 1.0) < 0.02  # inverted: expectation 1


def test_dropout_fits_are_reproducible_and_differ_from_plain_fits():
    kwargs = dict(hidden_layer_sizes=(64,), max_iter=10, random_state=0)
    a = BackpropClassifier(dropout=0.3, **kwargs).fit(X_train, y_train)
    b = BackpropClassifier(dropout=0.3, **kwargs).fit(X_train, y_train)
    plain = BackpropClassifier(**kwargs).fit(X_train, y_train)
    assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.allclose(a.coefs_[0], plain.coefs_[0])


def test_prediction_uses_no_dropout():
    clf = BackpropClassifier((64,), dropout=0.5, max_iter=10, random_state=0)
    clf.fit(X_train, y_train)
    first = clf.predict_proba(X_test)
    assert_array_equal(first, clf.predict_proba(X_test))  # deterministic
    plain = forward(X_test, clf.coefs_, clf.intercepts_, "relu", "softmax")
    assert_allclose(first, np.clip(plain, 1e-16, 1), rtol=1e-12, atol=1e-15)


def test_a_network_with_dropout_still_learns():
    clf = BackpropClassifier(
        (128, 64), dropout=(0.2, 0.1), max_iter=60, random_state=0
    ).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.9


def test_regressor_accepts_dropout():
    reg = BackpropRegressor(
        hidden_layer_sizes=(16,), dropout=0.1, max_iter=5, random_state=0
    ).fit(X_train, y_train.astype(float))
    assert np.isfinite(reg.predict(X_test)).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_layer_sizes": (8, 8), "dropout": (0.1,)}, "one rate per hidden"),
        ({"dropout": (0.5, 1.0)}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": 0.2, "solver": "lbfgs"}, "lbfgs"),
    ],
)
def test_bad_dropout_is_refused(params, match):
    with pytest.raises(ValueError, match=match):
        BackpropClassifier(max_iter=2, **params).fit(X_train, y_train)
