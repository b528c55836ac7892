"""Property tests: any input either works, with finite and valid outputs, or
is refused with a ValueError/TypeError. Never another exception, never a
RuntimeWarning (setup.cfg turns those into errors)."""

import os
import pickle
import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skmlp import BackpropClassifier, BackpropRegressor

# 60 examples per test in CI, the same ones every run (a red CI must be
# reproducible, and a new find belongs in a session, not a landing);
# HYPOTHESIS_PROFILE=thorough explores 1000 fresh ones per test.
settings.register_profile("ci", max_examples=60, derandomize=True)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

ELEMENTS = st.one_of(
    st.floats(-1e3, 1e3),
    st.sampled_from(
        [0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, np.nan, np.inf, -np.inf, 1e150, 3e200]
    ),
)


@st.composite
def features(draw, n_rows):
    n_features = draw(st.integers(1, 4))
    kind = draw(
        st.sampled_from(
            [
                "float64",
                "float32",
                "int",
                "bool",
                "object",
                "complex",
                "constant",
                "duplicated",
            ]
        )
    )
    shape = (n_rows, n_features)
    if kind == "int":
        return draw(hnp.arrays(np.int64, shape, elements=st.integers(-1000, 1000)))
    if kind == "bool":
        return draw(hnp.arrays(np.bool_, shape))
    if kind == "object":
        return np.array(
            draw(
                st.lists(
                    st.sampled_from(["a", 1, 2.5, None]),
                    min_size=n_rows * n_features,
                    max_size=n_rows * n_features,
                )
            ),
            dtype=object,
        ).reshape(shape)
    if kind == "complex":
        return draw(
            hnp.arrays(
                np.complex128, shape, elements=st.complex_numbers(max_magnitude=10)
            )
        )
    if kind == "constant":
        return np.full(shape, draw(ELEMENTS))
    X = draw(hnp.arrays(np.float64, shape, elements=ELEMENTS))
    if kind == "duplicated" and n_rows:
        X[: n_rows // 2 + 1] = X[0]
    if kind == "float32":
        with np.errstate(over="ignore"):  # 1e300 becomes inf: hostile on purpose
            return X.astype(np.float32)
    return X


@st.composite
def labels(draw, n_rows):
    n_classes = draw(st.integers(1, 4))
    pool = draw(
        st.sampled_from(
            [
                list(range(n_classes)),
                ["a", "b", "c", "d"][:n_classes],
                [True, False][:n_classes],
                [1, "a", 2.5, None][:n_classes],  # mixed types: numpy can't sort
            ]
        )
    )
    return np.array(
        draw(st.lists(st.sampled_from(pool), min_size=n_rows, max_size=n_rows)),
        dtype=object if len({type(label) for label in pool}) > 1 else None,
    )


@st.composite
def weights(draw, n_rows):
    choice = draw(
        st.sampled_from(
            ["none", "random", "zeros", "negative", "huge", "nan", "some_zero"]
        )
    )
    if choice == "none":
        return None
    values = {"zeros": 0.0, "negative": -1.0, "huge": 1e308, "nan": np.nan}
    if choice in values:
        return np.full(n_rows, values[choice])
    w = np.array(draw(st.lists(st.floats(0, 10), min_size=n_rows, max_size=n_rows)))
    if choice == "some_zero":
        w[::2] = 0.0
    return w


def _check_outputs(est, X):
    if isinstance(est, BackpropClassifier):
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
        assert ((proba >= 0) & (proba <= 1)).all()
        if est.out_activation_ == "softmax" or est.n_outputs_ == 1:
            np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
        est.predict(X)
    else:
        assert np.isfinite(est.predict(X)).all()


def _fit_or_refuse(action):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning, clipping
        try:
            action()
        except (ValueError, TypeError) as error:
            assert str(error), "an error must say what is wrong"
            # Raised by skmlp's or scikit-learn's checks, not deep in numpy.
            innermost = traceback.extract_tb(error.__traceback__)[-1].filename
            assert "numpy" not in innermost and "scipy" not in innermost, (
                f"{type(error).__name__} from {innermost}: {error}"
            )
            return False
    return True


@SETTINGS
@given(data=st.data(), solver=st.sampled_from(["adam", "sgd", "lbfgs"]))
def test_classifier_fit_either_works_or_refuses_clearly(data, solver):
    n_rows = data.draw(st.integers(0, 12))
    X, y, w = (
        data.draw(features(n_rows)),
        data.draw(labels(n_rows)),
        data.draw(weights(n_rows)),
    )
    clf = BackpropClassifier((3,), solver=solver, max_iter=5, random_state=0)
    if _fit_or_refuse(lambda: clf.fit(X, y, sample_weight=w)):
        _fit_or_refuse(lambda: _check_outputs(clf, X))


@SETTINGS
@given(data=st.data(), loss=st.sampled_from(["squared_error", "poisson"]))
def test_regressor_fit_either_works_or_refuses_clearly(data, loss):
    n_rows = data.draw(st.integers(0, 12))
    X, w = data.draw(features(n_rows)), data.draw(weights(n_rows))
    y = data.draw(hnp.arrays(np.float64, n_rows, elements=ELEMENTS))
    reg = BackpropRegressor(
        loss=loss, hidden_layer_sizes=(3,), max_iter=5, random_state=0
    )
    if _fit_or_refuse(lambda: reg.fit(X, y, sample_weight=w)):
        _fit_or_refuse(lambda: _check_outputs(reg, X))


def _state(est):
    """Every attribute, pickled: equal dicts mean byte-identical models."""
    return {name: pickle.dumps(value) for name, value in vars(est).items()}


@st.composite
def targets_for_a_3_class_model(draw, n_rows):
    """1-D labels, known or not, or multilabel indicators of any width."""
    if draw(st.booleans()):
        pool = st.sampled_from([0, 1, 2, 7, "x"])
        return np.array(draw(st.lists(pool, min_size=n_rows, max_size=n_rows)))
    n_columns = draw(st.integers(1, 4))
    return draw(hnp.arrays(np.int64, (n_rows, n_columns), elements=st.integers(0, 1)))


@SETTINGS
@given(data=st.data())
def test_partial_fit_and_predict_on_hostile_batches(data):
    rng = np.random.RandomState(0)
    clf = BackpropClassifier((4,), random_state=0)
    clf.partial_fit(
        rng.normal(size=(20, 3)), rng.randint(3, size=20), classes=[0, 1, 2]
    )
    n_rows = data.draw(st.integers(0, 8))
    X = data.draw(features(n_rows))
    y = data.draw(targets_for_a_3_class_model(n_rows))
    before = _state(clf)
    if not _fit_or_refuse(lambda: clf.partial_fit(X, y)):
        assert _state(clf) == before  # a refused call changes nothing
    _fit_or_refuse(lambda: _check_outputs(clf, X))
    # Whatever happened, the model still predicts finite probabilities.
    _check_outputs(clf, rng.normal(size=(5, 3)))


@SETTINGS
@given(data=st.data(), early_stopping=st.booleans())
def test_a_hostile_validation_set_trains_or_is_refused_and_changes_nothing(
    data, early_stopping
):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 3)), rng.randint(3, size=30)
    clf = BackpropClassifier(
        (4,),
        max_iter=3,
        warm_start=True,
        early_stopping=early_stopping,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning
        clf.fit(X, y)
    n_val = data.draw(st.integers(0, 6))
    X_val = data.draw(features(n_val))
    y_val = data.draw(targets_for_a_3_class_model(n_val))
    w_val = data.draw(weights(n_val))
    before = _state(clf)
    fit = lambda: clf.fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=w_val)  # noqa: E731
    if not _fit_or_refuse(fit):
        assert _state(clf) == before
    _check_outputs(clf, X)


@st.composite
def frames(draw, n_rows):
    """DataFrames as they come: columns of numbers (NaN and inf included),
    strings, categories, numbers held as objects, nullable integers, dates."""
    pd = pytest.importorskip("pandas")
    kinds = draw(
        st.lists(
            st.sampled_from(
                ["float", "string", "category", "object_numbers", "nullable", "date"]
            ),
            min_size=1,
            max_size=4,
        )
    )
    columns = {}
    for i, kind in enumerate(kinds):
        if kind == "float":
            values = draw(hnp.arrays(np.float64, n_rows, elements=ELEMENTS))
        elif kind in ("string", "category"):
            pool = st.sampled_from(["a", "b", None])
            values = draw(st.lists(pool, min_size=n_rows, max_size=n_rows))
            values = pd.Categorical(values) if kind == "category" else values
        elif kind == "object_numbers":
            pool = st.sampled_from([0, 1, 2.5, None])
            values = pd.Series(
                draw(st.lists(pool, min_size=n_rows, max_size=n_rows)), dtype=object
            )
        elif kind == "nullable":
            pool = st.sampled_from([0, 3, None])
            values = pd.array(
                draw(st.lists(pool, min_size=n_rows, max_size=n_rows)), dtype="Int64"
            )
        else:
            values = pd.date_range("2024-01-01", periods=n_rows)
        columns[f"{kind}_{i}"] = values
    return pd.DataFrame(columns)


@SETTINGS
@given(data=st.data())
def test_a_hostile_dataframe_trains_or_is_refused_naming_a_column(data):
    """Any DataFrame either trains or is refused by a ValueError/TypeError; a
    refusal for a column's content names a column; a refused warm-started
    refit changes nothing."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    n_rows = data.draw(st.integers(2, 8))
    X = data.draw(frames(n_rows))
    y = rng.randint(2, size=n_rows)
    clf = BackpropClassifier((3,), max_iter=2, warm_start=True, random_state=0)
    numbers = pd.DataFrame(rng.normal(size=X.shape), columns=X.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning
        clf.fit(numbers, y)
    before = _state(clf)
    if _fit_or_refuse(lambda: clf.fit(X, y)):
        _fit_or_refuse(lambda: _check_outputs(clf, X))
        return
    assert _state(clf) == before
    with pytest.raises((ValueError, TypeError)) as refusal:
        clf.fit(X, y)
    message = str(refusal.value)
    if "non-numeric" in message or "missing values" in message:
        assert any(repr(column) in message for column in X.columns)


def test_the_strategies_reach_both_outcomes():
    """Guard against a property test that only ever sees refusals."""
    X, y = np.random.RandomState(0).normal(size=(8, 2)), np.array([0, 1] * 4)
    assert _fit_or_refuse(
        lambda: BackpropClassifier((3,), max_iter=2, random_state=0).fit(X, y)
    )
    with pytest.raises(ValueError):
        BackpropClassifier(random_state=0).fit(np.full((2, 2), np.nan), [0, 1])
