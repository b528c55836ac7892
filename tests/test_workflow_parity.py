"""Everyday workflows with only the import swapped: the drop-ins behave as
scikit-learn's MLPClassifier / MLPRegressor on the same data (issue 25).

Each reference value comes from scikit-learn's MLP fitted beside skmlp.
"""

import inspect
import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification, make_moons
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor

X_cls, y_cls = make_classification(n_samples=300, n_features=8, random_state=1)

# scikit-learn's MLP takes sample_weight from 1.7 on.
needs_weighted_mlp = pytest.mark.skipif(
    "sample_weight" not in inspect.signature(MLPClassifier.fit).parameters,
    reason="this scikit-learn's MLP takes no sample_weight",
)


def _assert_same_fit(ours, ref, rtol=1e-9):
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=rtol)
    for W, W_ref in zip(
        ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True
    ):
        assert_allclose(W, W_ref, rtol=1e-7, atol=1e-12)


# ---- 1. metadata routing ------------------------------------------------------


class _ValidationConsumer(ClassifierMixin, BaseEstimator):
    """A member that asks for X_val and y_val, whatever scikit-learn's version
    (HistGradientBoosting takes them from 1.8 on)."""

    def fit(self, X, y, X_val=None, y_val=None):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        self.saw_validation_ = X_val is not None and y_val is not None
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def _sibling(kind):
    if kind == "custom":
        return _ValidationConsumer().set_fit_request(X_val=True, y_val=True)
    hgb = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    try:
        return hgb.set_fit_request(X_val=True, y_val=True)
    except TypeError:  # scikit-learn < 1.8: its fit takes no X_val
        pytest.skip("this HistGradientBoosting takes no X_val")


@pytest.mark.parametrize("sibling", ["hist_gradient_boosting", "custom"])
def test_x_val_routed_to_a_sibling_does_not_make_the_drop_in_raise(sibling):
    """The issue's case: a VotingClassifier routes X_val/y_val to a member
    that asked for them; the MLP member did not ask, and MLPClassifier fits.
    So does BackpropClassifier, to the same ensemble."""
    X_train, X_val, y_train, y_val = train_test_split(X_cls, y_cls, random_state=0)
    probabilities = {}
    with sklearn.config_context(enable_metadata_routing=True):
        for mlp in (MLPClassifier, BackpropClassifier):
            vote = VotingClassifier(
                [
                    ("other", _sibling(sibling)),
                    ("mlp", mlp(max_iter=30, random_state=0)),
                ],
                voting="soft",
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                vote.fit(X_train, y_train, X_val=X_val, y_val=y_val)
            probabilities[mlp] = vote.predict_proba(X_val)
            if sibling == "custom":
                assert vote.estimators_[0].saw_validation_
    assert_allclose(
        probabilities[BackpropClassifier], probabilities[MLPClassifier], atol=1e-12
    )


def _routing_outcome(mlp):
    """What routing sample_weight to a VotingClassifier does with this MLP
    as the member that did not ask for it: 'fits', or the error's name."""
    X_train, _, y_train, _ = train_test_split(X_cls, y_cls, random_state=0)
    other = LogisticRegression().set_fit_request(sample_weight=True)
    vote = VotingClassifier(
        [("other", other), ("mlp", mlp(max_iter=5, random_state=0))], voting="soft"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            vote.fit(X_train, y_train, sample_weight=np.ones(len(y_train)))
    except Exception as error:
        return type(error).__name__
    return "fits"


def test_routed_sample_weight_is_treated_as_the_mlp_treats_it():
    """scikit-learn 1.6's MLP takes no sample_weight, so weights routed to a
    sibling leave it alone; from 1.7 it takes them, and an unset request
    raises. The drop-in does what the installed MLP does."""
    with sklearn.config_context(enable_metadata_routing=True):
        outcome = _routing_outcome(BackpropClassifier)
        assert outcome == _routing_outcome(MLPClassifier)


def test_requested_x_val_is_still_routed():
    """set_fit_request(X_val=True, y_val=True) keeps routing them (the README's
    Pipeline recipe): every epoch is scored on the routed validation set."""
    X_train, X_val, y_train, y_val = train_test_split(X_cls, y_cls, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        mlp = BackpropClassifier(max_iter=4, random_state=0).set_fit_request(
            X_val=True, y_val=True
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            make_pipeline(StandardScaler(), mlp).fit(
                X_train, y_train, X_val=X_val, y_val=y_val
            )
    assert len(mlp.validation_scores_) == mlp.n_iter_ == 4


# ---- 2. the sample-weighted loss curve ------------------------------------------


@needs_weighted_mlp
@pytest.mark.parametrize("batch_size", [32, 50])
@pytest.mark.parametrize(
    "ours, reference",
    [(BackpropClassifier, MLPClassifier), (BackpropRegressor, MLPRegressor)],
    ids=["classifier", "regressor"],
)
def test_weighted_minibatch_loss_curve_and_stopping_epoch_follow_the_mlp(
    ours, reference, batch_size
):
    """With integer weights 0-2 and minibatches, each epoch's loss is averaged
    over minibatches as scikit-learn's MLP averages it, so the tol /
    n_iter_no_change test stops at the same epoch (the issue: 85 and 203
    epochs for scikit-learn, 500 and 248 for skmlp before)."""
    sample_weight = np.random.RandomState(0).randint(0, 3, 300)
    kwargs = dict(batch_size=batch_size, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = ours(**kwargs).fit(X_cls, y_cls, sample_weight=sample_weight)
        ref = reference(**kwargs).fit(X_cls, y_cls, sample_weight=sample_weight)
    assert ref.n_iter_ < 500  # stopped by the tol test, not max_iter
    _assert_same_fit(fitted, ref)
    assert fitted.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-9)


# ---- 3. warnings ----------------------------------------------------------------


def _convergence_warnings(estimator, *filter_args, **filter_kwargs):
    """ConvergenceWarnings that reach a user who set this filter."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings(*filter_args, **filter_kwargs)
        estimator.fit(X_cls, y_cls)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("mlp", [MLPClassifier, BackpropClassifier])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_filter_by_category_silences_both(mlp, solver):
    """The README's line, ``filterwarnings("ignore",
    category=ConvergenceWarning)``, silences MLPClassifier and skmlp alike."""
    estimator = mlp(solver=solver, max_iter=3, random_state=0)
    assert _convergence_warnings(estimator, "always") != []  # it does warn
    assert _convergence_warnings(estimator, "ignore", category=ConvergenceWarning) == []


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_filter_by_sklearn_module_silences_only_sklearns_mlp(solver):
    """scikit-learn's gallery filters ``module="sklearn"``. skmlp's warnings
    come from skmlp's modules and honestly say so: that filter leaves them
    (a documented difference), ``module="sklearn|skmlp"`` catches both."""
    kwargs = dict(solver=solver, max_iter=3, random_state=0)
    gallery = dict(category=ConvergenceWarning, module="sklearn")
    both = dict(category=ConvergenceWarning, module="sklearn|skmlp")
    assert _convergence_warnings(MLPClassifier(**kwargs), "ignore", **gallery) == []
    ours = _convergence_warnings(BackpropClassifier(**kwargs), "ignore", **gallery)
    assert ours != []
    assert _convergence_warnings(BackpropClassifier(**kwargs), "ignore", **both) == []


# ---- 4. long L-BFGS runs ----------------------------------------------------------


def _gallery_moons():
    """plot_mlp_alpha's first data set, scaled and split as the gallery does."""
    X, y = make_moons(noise=0.3, random_state=0)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.4, random_state=42)


@pytest.mark.parametrize("alpha", [0.1, 0.316, 1.0])
def test_long_lbfgs_runs_follow_the_mlp_to_the_last_iteration(alpha):
    """plot_mlp_alpha (hidden_layer_sizes=[10, 10], max_iter=2000): the
    objective is evaluated in scikit-learn's order of operations, so L-BFGS,
    which amplifies a one-ulp difference tenfold every ten iterations, takes
    the same iterations to the same weights (it parted after about 100
    iterations before: 231 vs 206 iterations at alpha=0.316)."""
    X_train, X_test, y_train, _ = _gallery_moons()
    kwargs = dict(
        solver="lbfgs",
        alpha=alpha,
        random_state=1,
        max_iter=2000,
        early_stopping=True,
        hidden_layer_sizes=[10, 10],
    )
    ours = BackpropClassifier(**kwargs).fit(X_train, y_train)
    ref = MLPClassifier(**kwargs).fit(X_train, y_train)
    assert ours.n_iter_ == ref.n_iter_ > 100
    assert ours.loss_ == ref.loss_
    for W, W_ref in zip(
        ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True
    ):
        assert_array_equal(W, W_ref)
    # Prediction computes 1 - p its own way: equal to an ulp.
    assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-15)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(dict(activation="tanh", weighted=True), marks=needs_weighted_mlp),
        dict(activation="logistic", weighted=False),
        pytest.param(
            dict(activation="identity", weighted=True), marks=needs_weighted_mlp
        ),
    ],
    ids=["tanh-weighted", "logistic", "identity-weighted"],
)
def test_long_lbfgs_regression_follows_the_mlp(settings):
    """The same for the regressor, with and without sample weights."""
    settings = dict(settings)
    weighted = settings.pop("weighted")
    X, y = X_cls, X_cls[:, :3] @ [1.0, -0.5, 0.25] + 0.1 * y_cls
    kwargs = dict(solver="lbfgs", random_state=0, max_iter=300, **settings)
    fit = dict(sample_weight=np.random.RandomState(0).rand(300)) if weighted else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropRegressor(hidden_layer_sizes=(12, 6), **kwargs).fit(X, y, **fit)
        ref = MLPRegressor(hidden_layer_sizes=(12, 6), **kwargs).fit(X, y, **fit)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == ref.loss_
    assert_array_equal(ours.predict(X), ref.predict(X))


def test_float32_lbfgs_stays_float32_where_the_mlp_turns_float64():
    """A documented difference: MLPClassifier's L-BFGS leaves float32 input's
    weights as scipy's float64 (and computes in float64); skmlp trains and
    keeps them in float32, as both do for sgd and adam. The fits agree to
    float32 precision, not bit for bit."""
    X, y = X_cls.astype(np.float32), y_cls
    kwargs = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropClassifier(**kwargs).fit(X, y)
        ref = MLPClassifier(**kwargs).fit(X, y)
    assert ours.coefs_[0].dtype == np.float32
    assert ref.coefs_[0].dtype == np.float64
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_make_pipeline_names_the_step_after_the_class():
    """A documented difference: make_pipeline names the step
    'backpropclassifier', so a grid keyed 'mlpclassifier__alpha' is renamed."""
    pipe = make_pipeline(StandardScaler(), BackpropClassifier())
    theirs = make_pipeline(StandardScaler(), MLPClassifier())
    assert list(theirs.named_steps) == ["standardscaler", "mlpclassifier"]
    assert list(pipe.named_steps) == ["standardscaler", "backpropclassifier"]
    clone(pipe).set_params(backpropclassifier__alpha=0.1)
    with pytest.raises(ValueError, match="mlpclassifier"):
        clone(pipe).set_params(mlpclassifier__alpha=0.1)
