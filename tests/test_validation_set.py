"""A validation set of the user's choosing: fit(..., X_val=, y_val=)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_digits(return_X_y=True)
X_train, y_train = X[:1000] / 16.0, y[:1000]
X_val, y_val = X[1000:1400] / 16.0, y[1000:1400]


def test_early_stopping_monitors_the_given_set_and_keeps_its_best_weights():
    clf = BackpropClassifier((20,), early_stopping=True, max_iter=200, random_state=0)
    clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert clf.n_iter_ < 200  # stopped on the validation score
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The kept weights are the best-scoring epoch's: sklearn.metrics agrees.
    assert accuracy_score(y_val, clf.predict(X_val)) == clf.best_validation_score_


def test_validation_loss_curve_is_the_objective_on_the_validation_set():
    """Reference: sklearn.metrics.log_loss plus the L2 term of one minibatch."""
    clf = BackpropClassifier(
        (20,), alpha=0.01, batch_size=100, max_iter=15, random_state=0
    )
    clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    penalty = 0.01 / (2 * 100) * sum((W**2).sum() for W in clf.coefs_)
    expected = log_loss(y_val, clf.predict_proba(X_val)) + penalty
    assert clf.validation_loss_curve_[-1] == pytest.approx(expected, rel=1e-10)
    assert clf.validation_scores_[-1] == accuracy_score(y_val, clf.predict(X_val))


def test_without_early_stopping_the_set_is_only_observed():
    kwargs = dict(hidden_layer_sizes=(20,), max_iter=15, random_state=0)
    observed = BackpropClassifier(**kwargs).fit(
        X_train, y_train, X_val=X_val, y_val=y_val
    )
    plain = BackpropClassifier(**kwargs).fit(X_train, y_train)
    for W, W_ref in zip(observed.coefs_, plain.coefs_, strict=True):
        assert_array_equal(W, W_ref)
    assert plain.validation_scores_ is None and plain.validation_loss_curve_ is None
    assert len(observed.validation_scores_) == 15


def test_internal_split_also_records_a_validation_loss_curve():
    clf = BackpropClassifier((20,), early_stopping=True, max_iter=30, random_state=0)
    clf.fit(X_train, y_train)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert np.isfinite(clf.validation_loss_curve_).all()


def test_regressor_scores_r2_with_validation_weights():
    rng = np.random.RandomState(0)
    sw_val = rng.uniform(0.5, 2, size=len(y_val))
    reg = BackpropRegressor(hidden_layer_sizes=(20,), max_iter=10, random_state=0)
    reg.fit(
        X_train,
        y_train.astype(float),
        X_val=X_val,
        y_val=y_val.astype(float),
        sample_weight_val=sw_val,
    )
    expected = r2_score(y_val, reg.predict(X_val), sample_weight=sw_val)
    assert reg.validation_scores_[-1] == pytest.approx(expected, rel=1e-12)


def test_pipeline_routes_x_val_through_its_transformers():
    with config_context(enable_metadata_routing=True):
        mlp = BackpropClassifier((20,), max_iter=10, random_state=0)
        mlp.set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline(
            [("scale", StandardScaler()), ("mlp", mlp)], transform_input=["X_val"]
        )
        pipe.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    scaler = StandardScaler().fit(X_train)
    manual = BackpropClassifier((20,), max_iter=10, random_state=0).fit(
        scaler.transform(X_train), y_train, X_val=scaler.transform(X_val), y_val=y_val
    )
    assert_allclose(pipe[-1].validation_scores_, manual.validation_scores_)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"X_val": X_val}, "both X_val and y_val"),
        ({"sample_weight_val": np.ones(3)}, "without X_val"),
        ({"X_val": X_val[:, :10], "y_val": y_val}, "features"),
        ({"X_val": X_val[:2], "y_val": [0, 99]}, "`y_val` has classes not in"),
        (
            {"X_val": X_val[:3], "y_val": np.array([1, "a", 2.0], dtype=object)},
            r"y_val mixes label types \(float, int, str\)",
        ),
        (
            {"X_val": X_val[:2], "y_val": np.eye(2, dtype=int)},
            "y_val holds multilabel .* but y holds 1-D targets",
        ),
    ],
)
def test_bad_validation_sets_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BackpropClassifier((5,), max_iter=2, random_state=0).fit(
            X_train, y_train, **kwargs
        )


def test_lbfgs_refuses_a_validation_set():
    with pytest.raises(ValueError, match="lbfgs has no epochs"):
        BackpropClassifier(solver="lbfgs", random_state=0).fit(
            X_train, y_train, X_val=X_val, y_val=y_val
        )


@pytest.mark.parametrize(
    "bad", [{"dropout": (0.1, 0.2)}, {"X_val": X_val[:, :10], "y_val": y_val}]
)
def test_a_refused_refit_keeps_the_fitted_weights(bad):
    clf = BackpropClassifier((20,), max_iter=5, random_state=0).fit(X_train, y_train)
    before = [W.copy() for W in clf.coefs_]
    params = {k: v for k, v in bad.items() if k == "dropout"}
    fit_params = {k: v for k, v in bad.items() if k != "dropout"}
    with pytest.raises(ValueError):
        clf.set_params(**params).fit(X_train, y_train, **fit_params)
    for W, W_before in zip(clf.coefs_, before, strict=True):
        assert_array_equal(W, W_before)


def test_a_refit_refused_after_validation_keeps_classes_and_features():
    """New y and X pass validation, then a bad sample_weight refuses the call:
    the fitted model (classes, feature count, weights) must stay as it was."""
    clf = BackpropClassifier((20,), max_iter=5, random_state=0).fit(X_train, y_train)
    before = clf.predict_proba(X_val)
    classes, n_features = clf.classes_.copy(), clf.n_features_in_
    X_new = np.hstack([X_train, X_train[:, :3]])
    y_new = np.where(y_train == y_train[0], 99, y_train)  # a class never seen
    with pytest.raises(ValueError, match="sample_weight|negative"):
        clf.fit(X_new, y_new, sample_weight=-np.ones(len(y_new)))
    assert_array_equal(clf.classes_, classes)
    assert clf.n_features_in_ == n_features
    assert_array_equal(clf.predict_proba(X_val), before)


@pytest.mark.parametrize(
    "y_val, match",
    [
        (y_train[:50], "y_val holds 1-D targets, but y holds multilabel"),
        (np.ones((50, 3), dtype=int), "y_val has 3 indicator columns, but y holds 2"),
    ],
)
def test_a_multilabel_fit_refuses_a_y_val_of_another_kind(y_val, match):
    """Before, a 1-D y_val for a multilabel model was encoded as if it were
    indicators and silently trained on."""
    Y = np.column_stack([y_train % 2, y_train > 4]).astype(int)
    with pytest.raises(ValueError, match=match):
        BackpropClassifier((5,), max_iter=2, random_state=0).fit(
            X_train, Y, X_val=X_train[:50], y_val=y_val
        )


@pytest.mark.parametrize("outputs, val_outputs", [(1, 2), (2, 1)])
def test_a_regressor_refuses_a_y_val_with_other_columns(outputs, val_outputs):
    rng = np.random.RandomState(0)
    y = rng.normal(size=(len(X_train), outputs)).squeeze()
    y_val_wrong = rng.normal(size=(20, val_outputs)).squeeze()
    with pytest.raises(ValueError, match=f"y_val has {val_outputs} target column"):
        BackpropRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(
            X_train, y, X_val=X_train[:20], y_val=y_val_wrong
        )
