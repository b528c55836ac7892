"""scoring=: what validation_scores_, early stopping and the kept weights follow."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score, get_scorer

from skmlp import BackpropClassifier, BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_digits, y_digits = load_digits(return_X_y=True)
X_digits, y_digits = X_digits[:600] / 16.0, y_digits[:600]
X_train, y_train = X_digits[:450], y_digits[:450]
X_val, y_val = X_digits[450:], y_digits[450:]
X_reg, y_reg = make_regression(400, 8, noise=10.0, random_state=0)
y_reg = y_reg / y_reg.std()


def _classifier(**kwargs):
    return BackpropClassifier(hidden_layer_sizes=(20,), random_state=0, **kwargs)


def test_loss_scores_are_the_negative_validation_loss_and_stop_on_it():
    est = _classifier(
        early_stopping=True, scoring="loss", max_iter=300, learning_rate_init=0.01
    )
    est.fit(X_digits, y_digits)
    assert_array_equal(est.validation_scores_, -np.array(est.validation_loss_curve_))
    best_epoch = int(np.argmin(est.validation_loss_curve_)) + 1
    assert best_epoch < est.n_iter_
    assert est.best_validation_score_ == -min(est.validation_loss_curve_)
    # The kept weights are the best epoch's: a fit stopped there has them.
    shorter = _classifier(
        early_stopping=True,
        scoring="loss",
        max_iter=best_epoch,
        learning_rate_init=0.01,
    )
    shorter.fit(X_digits, y_digits)
    for a, b in zip(est.coefs_, shorter.coefs_, strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_scorer_name_is_scikit_learns_scorer_on_the_kept_model(weighted):
    sw_val = np.random.RandomState(0).uniform(0.5, 2, size=len(y_val))
    est = _classifier(early_stopping=True, scoring="neg_log_loss", max_iter=200)
    est.fit(
        X_train,
        y_train,
        X_val=X_val,
        y_val=y_val,
        sample_weight_val=sw_val if weighted else None,
    )
    kwargs = {"sample_weight": sw_val} if weighted else {}
    expected = get_scorer("neg_log_loss")(est, X_val, y_val, **kwargs)
    assert est.best_validation_score_ == pytest.approx(expected, rel=1e-10)
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_a_callable_scorer_sees_the_model_and_the_labels():
    calls = []

    def balanced(estimator, X, y):
        calls.append(y)
        return balanced_accuracy_score(y, estimator.predict(X))

    est = _classifier(early_stopping=True, scoring=balanced, max_iter=60)
    est.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert all(np.array_equal(y, y_val) for y in calls)  # labels, not indicators
    expected = balanced_accuracy_score(y_val, est.predict(X_val))
    assert est.best_validation_score_ == pytest.approx(expected, rel=1e-12)


def _mae_regressor(**kwargs):
    return BackpropRegressor(
        hidden_layer_sizes=(16,),
        early_stopping=True,
        scoring="neg_mean_absolute_error",
        random_state=0,
        **kwargs,
    )


def test_the_internal_split_is_scored_too_for_a_regressor():
    est = _mae_regressor(max_iter=50).fit(X_reg, y_reg)
    scores = np.array(est.validation_scores_)
    assert (scores < 0).all() and len(scores) == est.n_iter_
    assert est.best_validation_score_ == scores.max()


def test_a_regressor_keeps_the_weights_scikit_learns_metric_ranks_best():
    """On X_val with weights: best_validation_score_ is scikit-learn's weighted
    negative MAE of the kept model, and it is the best of the recorded ones."""
    from sklearn.metrics import mean_absolute_error

    sw_val = np.random.RandomState(1).uniform(0.5, 2, size=100)
    est = _mae_regressor(n_iter_no_change=5, learning_rate_init=0.05, max_iter=300)
    est.fit(
        X_reg[:300],
        y_reg[:300],
        X_val=X_reg[300:],
        y_val=y_reg[300:],
        sample_weight_val=sw_val,
    )
    expected = -mean_absolute_error(
        y_reg[300:], est.predict(X_reg[300:]), sample_weight=sw_val
    )
    assert est.best_validation_score_ == pytest.approx(expected, rel=1e-10)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert int(np.argmax(est.validation_scores_)) + 1 < est.n_iter_  # went past it


def test_monitoring_without_early_stopping_records_the_scorer():
    est = _classifier(scoring="accuracy", max_iter=5)
    est.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    default = _classifier(max_iter=5).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    # 'accuracy' by name is the default score, computed another way.
    assert est.validation_scores_ == pytest.approx(default.validation_scores_)


def test_an_unknown_scorer_name_is_refused_before_training():
    est = _classifier(scoring="accurracy")
    with pytest.raises(ValueError, match="'scoring' parameter"):
        est.fit(X_train, y_train)
    assert not hasattr(est, "coefs_")


def test_a_scorer_that_fails_is_named_and_changes_nothing():
    est = _classifier(max_iter=3).fit(X_train, y_train)
    coefs = [W.copy() for W in est.coefs_]
    est.set_params(scoring=lambda estimator, X, y: 1 / 0, early_stopping=True)
    with pytest.raises(ValueError, match="scoring=.*failed on the validation data"):
        est.fit(X_train, y_train)
    for a, b in zip(est.coefs_, coefs, strict=True):
        assert_array_equal(a, b)
    assert est.n_iter_ == 3


def test_verbose_and_the_display_name_the_metric(capsys):
    est = _classifier(scoring="neg_log_loss", max_iter=2, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert "validation neg_log_loss = " in capsys.readouterr().out
    assert _classifier(scoring="loss")._score_label() == "score (negative loss)"
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skmlp import LossCurveDisplay

    display = LossCurveDisplay.from_estimator(est)
    assert display.ax_score_.get_ylabel() == "validation neg_log_loss"
