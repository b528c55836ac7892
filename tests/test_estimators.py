"""BackpropClassifier / BackpropRegressor as scikit-learn users use them."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from skmlp import BackpropClassifier, BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_digits, y_digits = load_digits(return_X_y=True)
X_digits = X_digits[:400] / 16.0
y_digits = y_digits[:400]
X_iris, y_iris = load_iris(return_X_y=True)


def _regression_data(n_outputs=1):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 6))
    Y = np.tanh(X @ rng.normal(size=(6, n_outputs))) + 0.05 * rng.normal(
        size=(150, n_outputs)
    )
    return X, Y.ravel() if n_outputs == 1 else Y


# ---- the same network as scikit-learn's MLP --------------------------------

SETTINGS = [
    {"solver": "adam"},
    {"solver": "sgd"},
    {"solver": "sgd", "nesterovs_momentum": False, "learning_rate": "invscaling"},
    {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.05},
    {"solver": "adam", "early_stopping": True, "batch_size": 50},
    {"solver": "lbfgs"},
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_classifier_follows_mlpclassifier_step_for_step(settings, activation):
    """Same parameters and random_state: the same weights as MLPClassifier.

    scikit-learn's MLP is an independent implementation of the same objective
    and optimizers, so agreement to rounding error checks the objective, the
    optimizers, the schedules, early stopping and the order of random draws.
    """
    kwargs = dict(
        hidden_layer_sizes=(15, 7),
        activation=activation,
        max_iter=25,
        random_state=3,
        **settings,
    )
    ours = BackpropClassifier(**kwargs).fit(X_digits, y_digits)
    ref = MLPClassifier(**kwargs).fit(X_digits, y_digits)
    assert ours.n_iter_ == ref.n_iter_
    for W, W_ref in zip(
        ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True
    ):
        assert_allclose(W, W_ref, rtol=1e-7, atol=1e-9)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-8)
    if settings["solver"] != "lbfgs":
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-8)
        assert ours.validation_scores_ == ref.validation_scores_
    assert_allclose(
        ours.predict_proba(X_digits), ref.predict_proba(X_digits), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_regressor_follows_mlpregressor(loss, solver):
    X, y = _regression_data()
    if loss == "poisson":
        y = np.exp(y)
    kwargs = dict(
        hidden_layer_sizes=(10,),
        solver=solver,
        max_iter=30,
        random_state=0,
        learning_rate_init=0.01,
    )
    if loss == "poisson":
        if "loss" not in MLPRegressor().get_params():
            pytest.skip("MLPRegressor has loss='poisson' from scikit-learn 1.7")
        kwargs["loss"] = loss
    ours = BackpropRegressor(**kwargs).fit(X, y)
    ref = MLPRegressor(**kwargs).fit(X, y)
    assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-7, atol=1e-9)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-8)


def test_multilabel_classifier_follows_mlpclassifier():
    X, Y = make_multilabel_classification(n_samples=80, n_classes=4, random_state=0)
    kwargs = dict(hidden_layer_sizes=(20,), max_iter=30, random_state=0)
    ours = BackpropClassifier(**kwargs).fit(X, Y)
    ref = MLPClassifier(**kwargs).fit(X, Y)
    assert ours.out_activation_ == ref.out_activation_ == "logistic"
    assert_array_equal(ours.predict(X), ref.predict(X))
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-8)


def test_multioutput_squared_error_reports_sklearns_loss():
    """loss_ averages the outputs, as scikit-learn reports it. (Its gradient is
    the exact gradient of that average, checked in test_gradcheck.py, where
    scikit-learn's is n_outputs times larger.) One full-batch epoch reports the
    loss at the initial weights, which both libraries draw identically."""
    X, Y = _regression_data(n_outputs=3)
    kwargs = dict(
        hidden_layer_sizes=(8,), batch_size=len(X), max_iter=1, random_state=0
    )
    ours = BackpropRegressor(**kwargs).fit(X, Y)
    ref = MLPRegressor(**kwargs).fit(X, Y)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-12)


def test_fitted_attributes_match_mlpclassifiers():
    ours = BackpropClassifier(max_iter=5, random_state=0).fit(X_iris, y_iris)
    ref = MLPClassifier(max_iter=5, random_state=0).fit(X_iris, y_iris)
    public = {k for k in vars(ref) if k.endswith("_") and not k.startswith("_")}
    assert public <= set(vars(ours))
    # Every MLPClassifier parameter, same default; extras default to "off".
    ours_params, ref_params = ours.get_params(), ref.get_params()
    assert {k: ours_params[k] for k in ref_params} == ref_params
    assert {k: ours_params[k] for k in set(ours_params) - set(ref_params)} == {
        "class_weight": None,
        "dropout": 0.0,
        "scoring": None,
    }
    assert ours.loss == ref.loss == "log_loss"
    # Both accept sparse X; scikit-learn declares it in the tags from 1.7 on.
    for ours_est, ref_est in [(ours, ref), (BackpropRegressor(), MLPRegressor())]:
        ref_tags = get_tags(ref_est)
        ref_tags.input_tags.sparse = True
        ref_tags.array_api_support = True  # ours also trains on torch, CuPy
        assert get_tags(ours_est) == ref_tags


# ---- where users put it ----------------------------------------------------


def test_in_a_pipeline_with_standard_scaler():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), BackpropClassifier((32,), random_state=0))
    pipe.fit(X[:1200], y[:1200])
    assert pipe.score(X[1200:], y[1200:]) > 0.9


def test_grid_search_in_parallel():
    search = GridSearchCV(
        BackpropClassifier(max_iter=40, random_state=0),
        {"hidden_layer_sizes": [(5,), (20,)], "learning_rate_init": [1e-3, 1e-2]},
        cv=3,
        n_jobs=2,
    ).fit(X_digits, y_digits)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_ == {
        "hidden_layer_sizes": (20,),
        "learning_rate_init": 1e-2,
    }
    assert search.best_score_ > 0.85


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    est = BackpropRegressor(
        loss="poisson", hidden_layer_sizes=(3, 2), alpha=0.5, random_state=0
    )
    X, y = _regression_data()
    est.fit(X, np.exp(y))
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_")


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_joblib_round_trip_and_partial_fit_continues_as_if_never_saved(
    solver, tmp_path
):
    clf = BackpropClassifier((10,), solver=solver, random_state=0)
    uninterrupted = clone(clf)
    for _ in range(3):
        clf.partial_fit(X_digits, y_digits, classes=np.arange(10))
        uninterrupted.partial_fit(X_digits, y_digits, classes=np.arange(10))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.predict_proba(X_digits), clf.predict_proba(X_digits))

    for _ in range(3):  # the optimizer's moments must survive the round trip
        loaded.partial_fit(X_digits, y_digits)
        uninterrupted.partial_fit(X_digits, y_digits)
    assert_allclose(
        loaded.predict_proba(X_digits),
        uninterrupted.predict_proba(X_digits),
        rtol=1e-12,
    )
    assert loaded.loss_ != clf.loss_


def test_lbfgs_model_round_trips_through_joblib(tmp_path):
    reg = BackpropRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    reg.fit(*_regression_data())
    joblib.dump(reg, tmp_path / "m.joblib")
    X, _ = _regression_data()
    assert_array_equal(joblib.load(tmp_path / "m.joblib").predict(X), reg.predict(X))


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_pandas_dataframe_keeps_feature_names(Estimator, early_stopping):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(X_iris, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    y = pd.Series(y_iris, name="species")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "X has feature names" warning
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Estimator(max_iter=20, early_stopping=early_stopping, random_state=0)
        est.fit(X, y).predict(X)
        est.score(X, y)
    assert_array_equal(est.feature_names_in_, X.columns)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X_iris)


# ---- DataFrames that need preprocessing (issue 23) -------------------------


def _frame(**columns):
    """A DataFrame as it comes from a CSV: numbers beside the given columns."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    numbers = {"age": rng.uniform(20, 60, 40), "visits": rng.randint(0, 9, 40)}
    return pd.DataFrame({**numbers, **columns})


def _tabular_name(Estimator):
    if Estimator is BackpropClassifier:
        return "TabularMLPClassifier"
    return "TabularMLPRegressor"


def _state(est):
    """Every attribute, pickled: equal dicts mean an unchanged estimator."""
    return {name: pickle.dumps(value) for name, value in vars(est).items()}


def _refused(est, call, match):
    before = _state(est)
    with pytest.raises(ValueError, match=match):
        call()
    assert _state(est) == before  # a refused call changes nothing


def _fitted_on_numbers(Estimator, X, y):
    est = Estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X[["age", "visits"]], y)


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_non_numeric_columns_are_named_with_the_fix(Estimator):
    """A DataFrame with string or categorical columns is a ValueError that
    names them and shows the fix (scikit-learn's says only "could not convert
    string to float: 'Lyon'"); the refused call changes nothing."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(1)
    city = rng.choice(["Lyon", "Oslo", "Lima"], 40)
    X = _frame(city=city, plan=pd.Categorical(rng.choice(["basic", "pro"], 40)))
    y = np.arange(40) % 2
    fix = rf"OneHotEncoder.*skmlp\.{_tabular_name(Estimator)}"
    est = Estimator(hidden_layer_sizes=(4,), random_state=0)
    _refused(
        est,
        lambda: est.fit(X, y),
        r"X has non-numeric columns \['city', 'plan'\].*" + fix,
    )
    fitted = _fitted_on_numbers(Estimator, X, y)
    _refused(fitted, lambda: fitted.fit(X, y), r"\['city', 'plan'\]")
    as_text = X[["age", "visits"]].astype({"visits": str}).assign(visits="many")
    _refused(
        fitted,
        lambda: fitted.predict(as_text),
        r"X has non-numeric columns \['visits'\]",
    )


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_missing_values_are_named_with_the_fix(Estimator):
    """NaN in a DataFrame: a ValueError naming the columns that hold it, at
    fit, predict and in X_val; the refused call changes nothing."""
    X = _frame()
    X.loc[[3, 7], "age"] = np.nan
    X.loc[5, "visits"] = np.nan
    y = np.arange(40) % 2
    fix = rf"SimpleImputer.*skmlp\.{_tabular_name(Estimator)}"
    est = Estimator(hidden_layer_sizes=(4,), random_state=0)
    named = r"has missing values \(NaN\) in columns \['age', 'visits'\].*"
    _refused(est, lambda: est.fit(X, y), "X " + named + fix)
    fitted = _fitted_on_numbers(Estimator, X.fillna(0), y)
    _refused(fitted, lambda: fitted.predict(X), "X " + named)
    fitted.set_params(warm_start=True)
    _refused(
        fitted, lambda: fitted.fit(X.fillna(0), y, X_val=X, y_val=y), "X_val " + named
    )


def test_dataframes_the_mlp_accepts_train_as_before():
    """Numbers held as objects or as nullable integers convert, as in
    MLPClassifier: the same weights, and no new error."""
    pd = pytest.importorskip("pandas")
    X = _frame(
        counted=pd.Series(np.arange(40) % 5, dtype=object),
        nullable=pd.array(np.arange(40) % 3, dtype="Int64"),
    )
    y = np.arange(40) % 2
    kwargs = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropClassifier(**kwargs).fit(X, y)
        ref = MLPClassifier(**kwargs).fit(X, y)
    for W, W_ref in zip(ours.coefs_, ref.coefs_, strict=True):
        assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)


# ---- dtypes, sparse input, shapes ------------------------------------------


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_float32_trains_and_predicts_in_float32(Estimator, solver):
    X = X_digits.astype(np.float32)
    est = Estimator(hidden_layer_sizes=(8,), solver=solver, max_iter=10, random_state=0)
    est.fit(X, y_digits)
    assert all(W.dtype == np.float32 for W in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X) if Estimator is BackpropClassifier else est.predict(X)
    assert out.dtype == np.float32


def test_float32_regressor_predicts_like_float64():
    """scikit-learn's test_mlp_regressor_dtypes_casting, with an absolute floor:
    a relative tolerance means nothing for predictions near zero."""
    X, y = load_digits(return_X_y=True)
    kwargs = dict(
        alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=150, tol=1e-3
    )
    pred_64 = BackpropRegressor(**kwargs).fit(X[:300], y[:300]).predict(X[300:])
    reg_32 = BackpropRegressor(**kwargs).fit(X[:300].astype(np.float32), y[:300])
    pred_32 = reg_32.predict(X[300:].astype(np.float32))
    assert_allclose(pred_32, pred_64, rtol=5e-4, atol=1e-4 * y.std())


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_gives_the_dense_model(fmt, solver):
    X_sparse = sp.csr_matrix(X_digits).asformat(fmt)
    dense = BackpropClassifier((10,), solver=solver, max_iter=20, random_state=0)
    sparse = clone(dense)
    dense.fit(X_digits, y_digits)
    sparse.fit(X_sparse, y_digits)
    assert_allclose(
        sparse.predict_proba(X_sparse),
        dense.predict_proba(X_digits),
        rtol=1e-8,
        atol=1e-12,
    )


def test_probabilities_are_strictly_inside_zero_one_and_sum_to_one():
    clf = BackpropClassifier(
        (50,), solver="lbfgs", alpha=0, max_iter=500, random_state=0
    ).fit(X_digits, y_digits)
    proba = clf.predict_proba(X_digits)
    assert (proba > 0).all() and (proba < 1).all()
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    assert np.isfinite(clf.predict_log_proba(X_digits)).all()
    assert_allclose(clf.predict_log_proba(X_digits), np.log(proba))


def test_no_hidden_layer_is_logistic_regression():
    clf = BackpropClassifier(
        hidden_layer_sizes=(),
        solver="lbfgs",
        alpha=0,
        tol=1e-10,
        max_iter=2000,
        random_state=0,
    ).fit(X_iris[:100], y_iris[:100])
    assert clf.n_layers_ == 2 and clf.score(X_iris[:100], y_iris[:100]) == 1.0


# ---- training behaviour ----------------------------------------------------


def test_invscaling_rate_after_warm_start_counts_all_samples_seen():
    """Replaces scikit-learn's test_learning_rate_warmstart (private _optimizer)."""
    X, y = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    clf = BackpropClassifier(
        hidden_layer_sizes=4,
        solver="sgd",
        max_iter=1,
        learning_rate="invscaling",
        power_t=0.25,
        warm_start=True,
        random_state=0,
    )
    clf.fit(X, y)
    clf.fit(X, y)
    assert clf.t_ == 8
    assert clf._optimizer_state["learning_rate"] == pytest.approx(0.001 / 9**0.25)


def test_adaptive_rate_falls_below_1e_minus_6_before_stopping():
    """Replaces scikit-learn's test_adaptive_learning_rate (private _optimizer)."""
    clf = BackpropClassifier(
        tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive", random_state=0
    )
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.n_iter_ < 3000 and clf._optimizer_state["learning_rate"] < 1e-6


def test_all_zero_weight_minibatch_is_skipped_not_a_crash():
    """scikit-learn's MLP raises ZeroDivisionError here."""
    sw = np.ones(len(y_digits))
    sw[:50] = 0  # with shuffle=False and batch_size=50 the first batch weighs 0
    kwargs = dict(
        hidden_layer_sizes=(10,),
        batch_size=50,
        shuffle=False,
        max_iter=5,
        random_state=0,
    )
    weighted = BackpropClassifier(**kwargs).fit(X_digits, y_digits, sample_weight=sw)
    without = BackpropClassifier(**kwargs)
    without.fit(X_digits[50:], y_digits[50:])  # the same minibatches, the same steps
    assert_allclose(weighted.coefs_[0], without.coefs_[0], rtol=1e-12)
    assert_allclose(weighted.loss_curve_, without.loss_curve_, rtol=1e-12)


def test_divergence_stops_restores_finite_weights_and_warns():
    # Unscaled iris, a linear network and a large step: the loss overflows.
    reg = BackpropRegressor(
        hidden_layer_sizes=(100,),
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="diverged at epoch"):
        reg.fit(X_iris, y_iris.astype(float))
    X = X_iris
    assert not np.isfinite(reg.loss_curve_[-1])
    assert all(np.isfinite(W).all() for W in reg.coefs_)
    assert np.isfinite(reg.predict(X)).all()


def test_hand_set_weights_are_used_by_partial_fit():
    """Assigning new arrays to coefs_ makes them the weights training starts from."""
    clf = BackpropClassifier((3,), solver="sgd", random_state=0)
    clf.partial_fit(X_iris, y_iris, classes=[0, 1, 2])
    clf.coefs_ = [np.zeros_like(W) for W in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    assert_allclose(clf.predict_proba(X_iris[:2]), 1 / 3)
    clf.partial_fit(X_iris, y_iris)
    assert clf.coefs_[1].any() and clf.coefs_[0].base is clf.coefs_[1].base


def test_partial_fit_is_not_offered_by_lbfgs():
    assert not hasattr(BackpropClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(BackpropRegressor(solver="lbfgs"), "partial_fit")


def test_verbose_prints_one_readable_line_per_epoch(capsys):
    BackpropClassifier(
        (3,),
        max_iter=3,
        verbose=True,
        early_stopping=True,
        n_iter_no_change=50,
        random_state=0,
    ).fit(X_iris, y_iris)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"Iteration {epoch}, loss = ")
        assert "validation loss = " in line and "validation accuracy = " in line
        assert line.endswith(" s")


# ---- bad input -------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
@pytest.mark.parametrize(
    "X, match",
    [
        ([[1.0, np.nan], [2.0, 1.0]], "NaN"),
        ([[1.0, np.inf], [2.0, 1.0]], "infinity"),
        ([["a", "b"], ["c", "d"]], "could not convert|string"),
        (np.empty((0, 3)), "0 sample"),
    ],
)
def test_bad_X_is_a_clear_value_error(Estimator, X, match):
    with pytest.raises(ValueError, match=match):
        Estimator().fit(X, [0, 1][: len(X)] if len(X) else [])


def test_wrong_number_of_features_at_predict():
    clf = BackpropClassifier(max_iter=5, random_state=0).fit(X_iris, y_iris)
    with pytest.raises(ValueError, match="4 features"):
        clf.predict(X_iris[:, :3])


def test_predict_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        BackpropClassifier(random_state=0).predict(X_iris)


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="one class"):
        BackpropClassifier(random_state=0).fit(X_iris[:10], np.zeros(10))
    with pytest.raises(ValueError, match="at least 2 classes"):
        BackpropClassifier(random_state=0).partial_fit(
            X_iris[:10], np.zeros(10), classes=[0]
        )


def test_labels_of_mixed_types_are_named():
    """numpy cannot order them (MLPClassifier raises its TypeError)."""
    y = np.array([1, "a", 2.0] * 50, dtype=object)
    with pytest.raises(ValueError, match=r"y mixes label types \(float, int, str\)"):
        BackpropClassifier(random_state=0).fit(X_iris, y)


@pytest.mark.parametrize(
    "first, then, match",
    [
        ("multilabel", "1-D", "y holds 1-D targets, but the model was fitted on multi"),
        ("1-D", "multilabel", "y holds multilabel .* fitted on 1-D targets"),
        ("multilabel", "2 columns", "y has 2 indicator columns, but the model was"),
    ],
)
@pytest.mark.parametrize("call", ["partial_fit", "warm_start"])
def test_continuing_on_targets_of_another_kind_is_refused(first, then, match, call):
    """MLPClassifier's partial_fit takes a 1-D y for a multilabel model and
    trains on mis-shaped targets; skmlp refuses, and changes nothing."""
    Y3 = np.column_stack([y_iris == 0, y_iris == 1, y_iris > 0]).astype(int)
    targets = {"multilabel": Y3, "1-D": y_iris, "2 columns": Y3[:, :2]}
    est = BackpropClassifier(
        (5,), max_iter=3, warm_start=call == "warm_start", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_iris, targets[first])
    coefs = [W.copy() for W in est.coefs_]
    with pytest.raises(ValueError, match=match):
        getattr(est, "partial_fit" if call == "partial_fit" else "fit")(
            X_iris, targets[then]
        )
    for a, b in zip(est.coefs_, coefs, strict=True):
        assert_array_equal(a, b)


def test_weights_that_underflow_the_training_dtype_are_refused():
    """Found by the thorough hypothesis profile: float32 training with weights
    that are positive in float64 but all round to 0 in float32 divided the
    L2 penalty by a zero total (ZeroDivisionError)."""
    weights = np.zeros(150)
    weights[::7] = 1e-50  # positive, below float32's smallest subnormal
    X32 = X_iris.astype(np.float32)
    with pytest.raises(ValueError, match="round to zero in float32.*multiply"):
        BackpropClassifier(random_state=0).fit(X32, y_iris, sample_weight=weights)
    # In float64 the same weights train, as their ratios are all that matter.
    BackpropClassifier(max_iter=5, random_state=0).fit(
        X_iris, y_iris, sample_weight=weights
    )


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (-np.ones(150), "Negative values"),
        (np.full(150, np.nan), "NaN"),
        (np.zeros(150), "at least one non-zero"),
        (np.ones(3), "shape"),
    ],
)
def test_bad_sample_weight(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        BackpropClassifier(random_state=0).fit(
            X_iris, y_iris, sample_weight=sample_weight
        )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes must be > 0"),
        ({"hidden_layer_sizes": (10.5,)}, "hidden_layer_sizes must hold integers"),
        ({"activation": "softsign"}, "activation"),
        ({"solver": "rmsprop"}, "solver"),
        ({"learning_rate_init": 0}, "learning_rate_init"),
        ({"momentum": 1.5}, "momentum"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        BackpropClassifier(**params).fit(X_iris, y_iris)


def test_poisson_refuses_negative_targets():
    with pytest.raises(ValueError, match="non-negative"):
        BackpropRegressor(loss="poisson", random_state=0).fit(X_iris, X_iris[:, 0] - 6)


def test_changing_architecture_under_warm_start_is_explained():
    clf = BackpropClassifier((5,), warm_start=True, max_iter=3, random_state=0).fit(
        X_iris, y_iris
    )
    clf.set_params(hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="warm_start=False"):
        clf.fit(X_iris, y_iris)


def test_overflowing_input_is_a_value_error_not_a_warning():
    X = np.finfo(np.float64).max * np.random.RandomState(0).uniform(size=(10, 2))
    with pytest.raises(ValueError, match="scale the features"):
        BackpropRegressor(random_state=0).fit(X, np.arange(10.0))


@pytest.mark.parametrize("shuffle", [True, False])
def test_minibatches_serve_the_rows_of_the_given_order(shuffle, rng):
    from skmlp._network import MLP, n_parameters
    from skmlp._training import Minibatches

    X, Y, sw = rng.normal(size=(23, 4)), rng.normal(size=(23, 2)), rng.uniform(size=23)
    net = MLP([4, 3, 2], "relu", "identity", np.zeros(n_parameters([4, 3, 2])))
    order = rng.permutation(23) if shuffle else np.arange(23)
    sizes = []
    # Shuffled minibatches share one buffer: check each before the next is served.
    batches = Minibatches(net, X, Y, sw, 10, shuffle).epoch(order)
    for Xb, Yb, swb, total, masks in batches:
        assert masks is None  # no dropout
        rows = order[10 * len(sizes) : 10 * len(sizes) + 10]
        assert_array_equal(Xb, X[rows])
        assert_array_equal(Yb, Y[rows])
        assert_array_equal(swb, sw[rows])
        assert total == pytest.approx(sw[rows].sum(), rel=1e-15)
        sizes.append(len(Xb))
    assert sizes == [10, 10, 3]


# ---- the lean prediction path ----------------------------------------------


@pytest.mark.parametrize(
    "y",
    [
        np.array(["no", "yes"])[np.arange(150) % 2],
        np.array(["b", "a", "c"])[y_iris],
        make_multilabel_classification(150, 4, n_classes=3, random_state=0)[1],
    ],
    ids=["binary", "multiclass", "multilabel"],
)
def test_decoding_equals_labelbinarizer_inverse_transform(y, rng):
    clf = BackpropClassifier((3,), max_iter=2, random_state=0).fit(X_iris, y)
    outputs = rng.uniform(size=(40, clf.n_outputs_))
    outputs[:5] = 0.5  # ties and the threshold itself
    expected = clf._label_binarizer.inverse_transform(
        outputs.ravel() if clf.n_outputs_ == 1 else outputs
    )
    assert_array_equal(clf._decode(outputs), expected)


def test_lean_and_general_prediction_paths_agree():
    clf = BackpropClassifier((8,), max_iter=20, random_state=0).fit(X_iris, y_iris)
    X = X_iris[::7]
    lean = clf.predict_proba(X)
    assert_array_equal(clf.predict_proba(X.tolist()), lean)  # general path
    assert_array_equal(clf.predict_proba(np.asfortranarray(X)), lean)
    assert_allclose(clf.predict_proba(X.astype(np.float32)), lean, rtol=1e-5)
    assert_array_equal(clf.predict(X), clf.predict(X.tolist()))


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([[1.0, np.nan, 0, 0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf, 0, 0]]), ValueError, "infinity"),
        (np.ones((1, 3)), ValueError, "4 features"),
        (np.ones((0, 4)), ValueError, "0 sample"),
        (np.ones(4), ValueError, "2D array"),
    ],
)
def test_lean_prediction_path_keeps_the_input_checks(X, error, match):
    clf = BackpropClassifier((3,), max_iter=2, random_state=0).fit(X_iris, y_iris)
    for method in (clf.predict, clf.predict_proba, clf.predict_log_proba):
        with pytest.raises(error, match=match):
            method(X)


def test_finite_values_whose_sum_overflows_are_still_accepted():
    reg = BackpropRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    reg.fit(X_iris, y_iris.astype(float))
    reg.coefs_ = [np.zeros_like(W) for W in reg.coefs_]  # output = last intercept
    X = np.full((1, 4), 1e308)  # finite, but the lean check's sum overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert_allclose(reg.predict(X), reg.intercepts_[-1])


# ---- robust regression losses ----------------------------------------------


def test_huber_with_a_huge_threshold_is_the_squared_error_model():
    """Within its threshold the Huber loss is r^2 / 2: the same objective."""
    X, y = _regression_data()
    kwargs = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    huber = BackpropRegressor(loss="huber", huber_delta=1e10, **kwargs).fit(X, y)
    squared = BackpropRegressor(loss="squared_error", **kwargs).fit(X, y)
    assert_allclose(huber.predict(X), squared.predict(X), rtol=1e-10)


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_losses_ignore_gross_outliers(loss):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    clean = X[:, 0] + 0.1 * rng.normal(size=300)
    y = clean.copy()
    y[:15] += 50  # 5% gross outliers
    kwargs = dict(hidden_layer_sizes=(10,), max_iter=500, random_state=0)
    robust = BackpropRegressor(loss=loss, **kwargs).fit(X, y)
    squared = BackpropRegressor(**kwargs).fit(X, y)
    robust_error = np.median(np.abs(robust.predict(X[15:]) - clean[15:]))
    squared_error = np.median(np.abs(squared.predict(X[15:]) - clean[15:]))
    assert robust_error < 0.2 < squared_error


@pytest.mark.parametrize(
    "y, classes",
    [
        (np.array([3, 7, 7, 3, 3]), None),
        (np.array(["b", "a", "c", "a", "b"]), None),
        (np.array([True, False, True, True, False]), None),
        (np.array([1.0, 2.0, 1.0, 4.0, 1.0]), None),
        (np.array([1, 1, 2, 1, 2]), [0, 1, 2, 5]),  # partial_fit: more classes than y
    ],
)
def test_target_encoding_equals_label_binarizer(y, classes):
    from sklearn.preprocessing import LabelBinarizer

    clf = BackpropClassifier(hidden_layer_sizes=(3,), max_iter=1, random_state=0)
    X = np.arange(len(y) * 2, dtype=float).reshape(len(y), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if classes is None:
            clf.fit(X, y)
        else:
            clf.partial_fit(X, y, classes=classes)
    expected = LabelBinarizer().fit(clf.classes_).transform(y).astype(bool)
    np.testing.assert_array_equal(clf._encode(y), expected)
