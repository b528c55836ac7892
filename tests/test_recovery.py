"""What a fit leaves behind when training goes wrong, pinned weight by weight.

Each test compares the state the code leaves with what an independent
computation says it must be: a shorter fit with the same random_state, the
Glorot draws made here from the generator, scikit-learn's MLP continuing from
the same weights with a fresh optimizer, or the state before a refused call.
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_squared_error
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_info, threadpool_limits

from skmlp import BackpropClassifier, BackpropRegressor

X_iris, y_iris = load_iris(return_X_y=True)
X_digits, y_digits = load_digits(return_X_y=True)
X_digits, y_digits = X_digits[:500] / 16.0, y_digits[:500]
X_reg, y_reg = make_regression(300, 5, noise=1.0, random_state=0)
y_reg = y_reg / y_reg.std()


def _state(est, names=None):
    """Every attribute (or those named), pickled: equal dicts mean
    byte-identical models."""
    names = vars(est) if names is None else names
    return {name: pickle.dumps(vars(est)[name]) for name in names if name in vars(est)}


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _parameters(est, ref):
    """Pairs of matching weight and bias arrays of two models."""
    return zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_, strict=True)


def _assert_same_weights(est, ref):
    for a, b in _parameters(est, ref):
        assert_array_equal(a, b)


# ---- early stopping keeps the best epoch ------------------------------------


def test_early_stopping_keeps_exactly_the_best_epochs_weights():
    kwargs = dict(hidden_layer_sizes=(20,), early_stopping=True, random_state=0)
    est = _quiet_fit(BackpropClassifier(max_iter=200, **kwargs), X_digits, y_digits)
    best_epoch = int(np.argmax(est.validation_scores_)) + 1  # the first best
    assert best_epoch < est.n_iter_  # it went on past the best epoch
    # The same split and shuffles, stopped at the best epoch.
    ref = _quiet_fit(
        BackpropClassifier(max_iter=best_epoch, **kwargs), X_digits, y_digits
    )
    _assert_same_weights(est, ref)


# ---- a rise: noise keeps the weights, an explosion restores them -------------


@pytest.mark.parametrize("seed", [1, 5])
def test_a_small_rise_is_noise_and_keeps_scikit_learns_trajectory(seed):
    """Warm-started sgd that ends a few percent above its first epoch (a
    wobble) keeps its weights, as MLPRegressor does, and does not warn."""
    kwargs = dict(
        hidden_layer_sizes=(10,),
        solver="sgd",
        learning_rate_init=0.05,
        batch_size=16,
        momentum=0.0,
        n_iter_no_change=1000,
        warm_start=True,
        random_state=seed,
    )
    est = _quiet_fit(BackpropRegressor(max_iter=200, **kwargs), X_iris, y_iris)
    ref = _quiet_fit(MLPRegressor(max_iter=200, **kwargs), X_iris, y_iris)
    est.set_params(max_iter=10)
    ref.set_params(max_iter=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_iris, y_iris)
    _quiet_fit(ref, X_iris, y_iris)
    second = est.loss_curve_[200:]
    assert second[-1] > second[0]  # the loss did rise in the second fit
    assert not [w for w in caught if "diverged" in str(w.message)]
    for a, b in _parameters(est, ref):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


_EXPLODING = dict(
    hidden_layer_sizes=(20,),
    activation="identity",
    solver="sgd",
    learning_rate_init=0.3,
    momentum=0.9,
    batch_size=50,
    n_iter_no_change=100,
    random_state=0,
)


@pytest.mark.filterwarnings(
    "ignore:Stochastic Optimizer:sklearn.exceptions.ConvergenceWarning"
)
def test_an_explosion_that_stays_finite_restores_the_lowest_loss_epoch():
    est = BackpropRegressor(max_iter=4, **_EXPLODING)
    with pytest.warns(ConvergenceWarning, match="training loss rose"):
        est.fit(X_reg, y_reg)
    curve = np.array(est.loss_curve_)
    assert np.isfinite(curve).all() and curve[-1] > 1e6 * curve.min()
    lowest_epoch = int(np.argmin(curve)) + 1
    assert lowest_epoch > 1  # so a shorter fit is the reference
    # The weights at the start of the lowest-loss epoch: the end of the one before.
    ref = _quiet_fit(
        BackpropRegressor(max_iter=lowest_epoch - 1, **_EXPLODING), X_reg, y_reg
    )
    _assert_same_weights(est, ref)
    # loss_ is the objective of the kept weights: half the squared error plus
    # the L2 penalty as one minibatch carries it, by scikit-learn's metric.
    penalty = 0.5 * est.alpha / 50 * sum((W**2).sum() for W in est.coefs_)
    expected = 0.5 * mean_squared_error(y_reg, est.predict(X_reg)) + penalty
    assert est.loss_ == pytest.approx(expected, rel=1e-10)


_NAN_DIVERGING = dict(_EXPLODING, activation="relu", learning_rate_init=0.5)


def test_a_non_finite_loss_restores_the_lowest_loss_epoch_and_resets_moments():
    est = BackpropRegressor(max_iter=60, **_NAN_DIVERGING)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch"):
        est.fit(X_reg, y_reg)
    curve = np.array(est.loss_curve_)
    assert not np.isfinite(curve[-1]) and len(curve) == est.n_iter_
    lowest_epoch = int(np.nanargmin(np.where(np.isfinite(curve), curve, np.nan))) + 1
    assert lowest_epoch > 1
    ref = _quiet_fit(
        BackpropRegressor(max_iter=lowest_epoch - 1, **_NAN_DIVERGING), X_reg, y_reg
    )
    _assert_same_weights(est, ref)
    assert np.isfinite(est.loss_)

    # One more epoch continues from those weights with a fresh optimizer (no
    # velocity): what scikit-learn's MLP does from the same weights when it
    # builds a new optimizer.
    sk = _quiet_fit(
        MLPRegressor(max_iter=lowest_epoch - 1, **_NAN_DIVERGING), X_reg, y_reg
    )
    del sk._optimizer  # scikit-learn then starts a new one in partial_fit
    sk.partial_fit(X_reg, y_reg)
    est.partial_fit(X_reg, y_reg)
    for a, b in _parameters(est, sk):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_divergence_in_the_first_epoch_keeps_the_initial_weights_and_a_loss(
    b2_settings,
):
    """The issue's B2: the loss overflows within epoch 1. The initial weights
    are restored: the Glorot draws of random_state, made here by hand."""
    est = BackpropRegressor(**b2_settings)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 1"):
        est.fit(X_iris, y_iris)
    rng = np.random.RandomState(0)
    for (fan_in, fan_out), W, b in zip(
        [(4, 100), (100, 1)], est.coefs_, est.intercepts_, strict=True
    ):
        bound = np.sqrt(6 / (fan_in + fan_out))
        assert_array_equal(W, rng.uniform(-bound, bound, (fan_in, fan_out)))
        assert_array_equal(b, rng.uniform(-bound, bound, fan_out))
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 1
    penalty = 0.5 * est.alpha / 10 * sum((W**2).sum() for W in est.coefs_)
    expected = 0.5 * mean_squared_error(y_iris, est.predict(X_iris)) + penalty
    assert est.loss_ == pytest.approx(expected, rel=1e-10)


# ---- a refused call changes nothing ------------------------------------------


def _fitted(solver):
    return _quiet_fit(
        BackpropClassifier((8,), solver=solver, max_iter=5, random_state=0),
        X_iris,
        y_iris,
    )


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_a_refit_on_overflowing_input_changes_nothing(solver):
    # A fixed seed: with 1/256 chance per seed, all eight relu units of the
    # refit's fresh draw are dead on the constant rows, and the fit is then
    # legitimately finite (seed 281 does that), so nothing is refused.
    est = _quiet_fit(
        BackpropRegressor(
            hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0
        ),
        X_iris,
        y_iris,
    )
    before, predictions = _state(est), est.predict(X_iris)
    with pytest.raises(ValueError, match="non-finite|overflow"):
        est.fit(np.full((20, 4), 1e200), y_iris[40:60])
    assert _state(est) == before
    assert_array_equal(est.predict(X_iris), predictions)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("continued", ["partial_fit", "warm_start"])
def test_a_continued_fit_that_fails_mid_training_changes_nothing(solver, continued):
    """A continued call trains on a copy of the fitted weights, optimizer
    state and curves. Here it takes two steps on normal rows, then its third
    minibatch overflows: the loss is not finite, and even the weights it
    started from overflow on this data, so the call is refused. The committed
    model, optimizer state and curves included, is as before."""
    est = _quiet_fit(
        BackpropRegressor(
            hidden_layer_sizes=(8,),
            solver=solver,
            max_iter=5,
            batch_size=50,
            shuffle=False,
            warm_start=continued == "warm_start",
            random_state=0,
        ),
        X_iris,
        y_iris,
    )
    before, predictions = _state(est), est.predict(X_iris)
    late_overflow = X_iris.copy()
    late_overflow[100:] = 1e200  # the third minibatch of 50
    with pytest.raises(ValueError, match="overflow"):
        if continued == "partial_fit":
            est.partial_fit(late_overflow, y_iris)
        else:
            est.fit(late_overflow, y_iris)
    assert _state(est) == before
    assert_array_equal(est.predict(X_iris), predictions)


def test_a_refit_refused_by_the_validation_split_changes_nothing():
    """The issue's B1: a 2-class subset with a 1% validation split."""
    est = _fitted("adam")
    before = _state(est)
    est.set_params(early_stopping=True, validation_fraction=0.01)
    with pytest.raises(ValueError, match="validation set is too small.*classes = 2"):
        est.fit(X_iris[40:60], y_iris[40:60])
    est.set_params(early_stopping=False, validation_fraction=0.1)
    assert _state(est) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda est: est.partial_fit(X_iris, y_iris, sample_weight=np.zeros(150)),
        lambda est: est.partial_fit(X_iris[:, :3], y_iris),
        lambda est: est.partial_fit(X_iris, np.where(y_iris == 2, 7, y_iris)),
        lambda est: est.set_params(warm_start=True, hidden_layer_sizes=(9,)).fit(
            X_iris, y_iris
        ),
        lambda est: est.fit(X_iris, y_iris, X_val=X_iris[:5], y_val=y_iris[:4]),
    ],
    ids=["zero weights", "features", "new class", "architecture", "X_val"],
)
def test_refused_calls_on_a_fitted_model_change_nothing(call):
    est = _fitted("adam")
    before = _state(est)
    with pytest.raises(ValueError):
        call(est)
    est.set_params(warm_start=False, hidden_layer_sizes=(8,))
    assert _state(est) == before


@pytest.mark.parametrize(
    "Estimator, call",
    [
        (BackpropRegressor, lambda est: est.fit(np.full((150, 4), 1e200), y_iris)),
        (BackpropClassifier, lambda est: est.fit(X_iris, np.zeros(150))),
        (
            BackpropClassifier,
            lambda est: est.partial_fit(X_iris, y_iris, classes=[0, 1]),
        ),
        (
            BackpropClassifier,
            lambda est: est.partial_fit(
                X_iris, y_iris, classes=np.array([0.0, 1, np.nan])
            ),
        ),
    ],
    ids=["overflow", "one class", "unknown class", "NaN class"],
)
def test_a_failed_first_call_leaves_no_fitted_attributes(Estimator, call):
    est = Estimator(hidden_layer_sizes=(8,), random_state=0)
    before = _state(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError):
            call(est)
    assert _state(est) == before


def test_nan_in_classes_is_named():
    with pytest.raises(ValueError, match="classes holds NaN"):
        BackpropClassifier(random_state=0).partial_fit(
            X_iris, y_iris, classes=np.array([0.0, 1.0, np.nan])
        )


def test_an_error_raised_by_a_callback_changes_nothing():
    pytest.importorskip("sklearn.callback")  # scikit-learn >= 1.9
    from sklearn.callback import ScoringMonitor

    def failing_scorer(est, X, y):
        raise RuntimeError("the callback failed")

    est = _fitted("adam")
    before = _state(est)
    est.set_callbacks(ScoringMonitor(scoring=failing_scorer))
    with pytest.raises(RuntimeError, match="callback failed"):
        est.fit(X_iris, y_iris)
    assert _state(est, before) == before
    added = set(vars(est)) - set(before)
    assert not [name for name in added if name.endswith("_")]  # no fitted ones


# ---- Ctrl-C keeps weights and optimizer state of one epoch -------------------


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_ctrl_c_keeps_the_weights_and_optimizer_state_of_the_last_epoch(
    solver, monkeypatch
):
    import skmlp._training as training

    kwargs = dict(
        hidden_layer_sizes=(20,), solver=solver, random_state=0, batch_size=50
    )
    reference = _quiet_fit(BackpropClassifier(max_iter=3, **kwargs), X_digits, y_digits)
    calls = {"n": 0}
    real_step = training.train_step

    def interrupted_step(*args):
        calls["n"] += 1
        if calls["n"] == 3 * 10 + 4:  # 10 minibatches per epoch: mid-epoch 4
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(training, "train_step", interrupted_step)
    est = BackpropClassifier(max_iter=50, **kwargs)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X_digits, y_digits)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    _assert_same_weights(est, reference)
    for key, value in reference._optimizer_state.items():
        assert_array_equal(est._optimizer_state[key], value)
    assert np.isfinite(est.predict_proba(X_digits)).all()


# ---- no process-wide side effects --------------------------------------------


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_a_large_fit_leaves_other_threads_blas_limits_alone():
    """The issue's B4: another thread limits BLAS to one thread after a large
    fit starts and lifts the limit after it ends. That thread sees its limit
    throughout, and the process ends with its original thread counts."""
    original = _blas_threads()
    X = np.random.RandomState(0).normal(size=(512, 784)).astype(np.float32)
    y = np.arange(512) % 10
    started, fit_done, seen = threading.Event(), threading.Event(), []

    def other_user():
        started.wait()
        with threadpool_limits(limits=1, user_api="blas"):
            seen.append(_blas_threads())
            fit_done.wait()
            seen.append(_blas_threads())

    import skmlp._training as training

    real_step = training.train_step

    def step_and_signal(*args):
        started.set()
        return real_step(*args)

    other = threading.Thread(target=other_user)
    other.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(training, "train_step", step_and_signal)
            _quiet_fit(
                BackpropClassifier(
                    (1024, 1024), max_iter=2, batch_size=256, random_state=0
                ),
                X,
                y,
            )
    finally:
        started.set()
        fit_done.set()
        other.join()
    assert seen == [[1] * len(original)] * 2
    assert _blas_threads() == original


def test_string_labels_for_a_numeric_model_are_unknown_classes_without_warnings():
    est = _fitted("adam")
    before = _state(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # numpy 1.x: str vs int
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="classes not in"):
            est.partial_fit(X_iris[:3], ["x", "x", "x"])
    assert _state(est) == before
