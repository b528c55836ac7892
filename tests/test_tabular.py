"""TabularMLPClassifier and TabularMLPRegressor: the estimator contract, each
recipe component against its formula, accuracy against the drop-ins' pipeline
on small real tables, and bad input refused with the model unchanged."""

import copy
import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmlp import (
    BackpropClassifier,
    TabularMLPClassifier,
    TabularMLPRegressor,
    TabularPreprocessor,
    _tabular,
)
from skmlp._layers import Context, Dropout
from skmlp._ops import NUMPY
from skmlp._schedules import coslog4, flat_cos
from skmlp._tabular import auto_batch_size

pd = pytest.importorskip("pandas")

SMALL = dict(hidden_layer_sizes=(16,), max_epochs=12, n_bags=1, random_state=0)


# Integer sample weights cannot train exactly as repeated rows do: the random
# validation split and the minibatches see other rows (the drop-ins' adam and
# sgd have no split by default, and shuffle rows, not weights, alike).
REPEATED_ROWS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatches and a random validation split: weights are not repeated rows"
    ),
}
CHECKED = dict(hidden_layer_sizes=(32,), max_epochs=40, random_state=0)


@parametrize_with_checks(
    [
        TabularMLPClassifier(**CHECKED),
        TabularMLPClassifier(**CHECKED, n_members=3),
        TabularMLPClassifier(**CHECKED, n_bags=2),
        TabularMLPRegressor(**CHECKED),
        TabularMLPRegressor(**CHECKED, numeric_embedding="piecewise_linear"),
        TabularMLPRegressor(**CHECKED, numeric_transform="robust_smooth_clip"),
        TabularMLPRegressor(**CHECKED, loss="quantile", quantile=0.5, n_members=2),
    ],
    expected_failed_checks=lambda estimator: REPEATED_ROWS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ---- recipe components against their formulas --------------------------------


@pytest.mark.parametrize(
    "t, expected",
    [
        (0.0, 0.0),
        (1 / 15, 0.0),  # log2(2) = 1: the first cycle ends
        (1 / 30, 0.5 * (1 - math.cos(2 * math.pi * math.log2(1.5)))),
        (3 / 15, 0.0),  # log2(4) = 2
        ((2**1.5 - 1) / 15, 1.0),  # log2(1 + 15 t) = 1.5: the second peak
        (0.5, 0.5 * (1 - math.cos(2 * math.pi * math.log2(8.5)))),
    ],
)
def test_coslog4_matches_its_formula(t, expected):
    assert coslog4(t) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "t, expected", [(0.0, 1.0), (0.49, 1.0), (0.5, 1.0), (0.75, 0.5), (1.0, 0.0)]
)
def test_flat_cos_is_flat_then_a_half_cosine(t, expected):
    assert flat_cos(t) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "n, size",
    [
        (10, 64),
        (1024, 64),
        (1025, 256),
        (8192, 256),
        (30_000, 256),
        (30_001, 512),
        (100_000, 512),
        (100_001, 1024),
    ],
)
def test_batch_size_follows_the_rule(n, size):
    assert auto_batch_size(n) == size


def test_label_smoothed_loss_and_gradient_match_the_formula():
    """What the classifier trains on: targets (1 - e) y + e / C, the loss
    -sum_k t_k log softmax(z)_k, and its gradient softmax(z) - t."""
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(6, 3))
    labels = rng.randint(0, 3, size=6)
    e, C = 0.1, 3
    T = np.full((6, 3), e / C)
    T[np.arange(6), labels] += 1 - e

    def formula(Z):
        log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return -(T * log_p).sum(axis=1).mean()

    output = TabularMLPClassifier(label_smoothing=e)._output()
    P = output.activate(Z.copy())
    assert output.loss(T, P.copy(), None) == pytest.approx(formula(Z), rel=1e-12)
    eps = 1e-6
    numeric = np.empty_like(Z)
    for i in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[i] += eps
        Zm[i] -= eps
        numeric[i] = (formula(Zp) - formula(Zm)) / (2 * eps)
    assert_allclose(output.delta(T, P.copy(), None), numeric, rtol=1e-6, atol=1e-10)
    # the fitted classifier's targets are those T
    X = rng.normal(size=(60, 2))
    y = np.array(["a", "b", "c"])[rng.randint(0, 3, size=60)]
    captured = {}
    clf = TabularMLPClassifier(**SMALL)
    original = clf._fit_network

    def capture(X, Y, *args):
        captured["Y"] = Y
        return original(X, Y, *args)

    clf._fit_network = capture
    clf.fit(X, y)
    expected = np.full((60, 3), e / 3)
    expected[np.arange(60), np.searchsorted(["a", "b", "c"], y)] += 1 - e
    assert_allclose(captured["Y"], expected, rtol=1e-6)


def test_regression_targets_are_standardised_and_predictions_clipped():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(120, 3))
    y = 1000 * X[:, 0] + 5.0
    reg = TabularMLPRegressor(**SMALL).fit(X, y)
    assert reg.y_mean_ == pytest.approx(y.mean())
    assert reg.y_scale_ == pytest.approx(y.std())
    # predict = clip(network output * std + mean, min y, max y), written out
    wild = rng.normal(scale=30, size=(200, 3))
    network = reg._networks(np.float64)[0].predict(reg.preprocessor_.transform(wild))
    expected = np.clip(network[:, 0] * y.std() + y.mean(), y.min(), y.max())
    assert_allclose(reg.predict(wild), expected, rtol=1e-12)
    assert (network[:, 0] * y.std() + y.mean() > y.max()).any() or (
        network[:, 0] * y.std() + y.mean() < y.min()
    ).any(), "some wild rows must need the clip"
    # Affine equivariance: the same fit on (y - 5) / 1000 predicts the same,
    # rescaled (the network sees identical standardised targets).
    small = TabularMLPRegressor(**SMALL).fit(X, (y - 5.0) / 1000)
    assert_allclose(reg.predict(X), small.predict(X) * 1000 + 5.0, rtol=1e-4)


def test_the_kept_weights_are_those_a_fit_stopped_at_the_best_epoch_ends_with():
    X, y = load_breast_cancer(return_X_y=True)
    params = dict(hidden_layer_sizes=(32,), max_epochs=15, n_bags=1, random_state=7)
    full = TabularMLPClassifier(**params).fit(X, y)
    best = full.best_epoch_
    assert 0 <= best < full.n_iter_ - 1, "the test needs a best epoch before the last"
    assert full.validation_scores_[best] == min(full.validation_scores_)
    assert all(
        s > min(full.validation_scores_) for s in full.validation_scores_[best + 1 :]
    )

    class StoppedEarly(TabularMLPClassifier):
        def _epochs_to_run(self):
            return best + 1  # same schedule horizon (max_epochs), fewer epochs

    shorter = StoppedEarly(**params).fit(X, y)
    assert shorter.n_iter_ == best + 1
    assert_allclose(full.params_, shorter.params_, rtol=0, atol=0)
    assert_allclose(full.predict_proba(X), shorter.predict_proba(X))


def test_dropout_and_weight_decay_follow_flat_cos_and_lr_follows_coslog4():
    X, y = load_breast_cancer(return_X_y=True)
    seen = []
    clf = TabularMLPClassifier(
        hidden_layer_sizes=(8,), max_epochs=4, n_bags=1, random_state=0
    )
    original = clf._step

    def spy(net, optimizer, batch, t, rng):
        loss = original(net, optimizer, batch, t, rng)
        rate = next(layer.rate for layer in net.layers if isinstance(layer, Dropout))
        seen.append((t, optimizer.learning_rate_init, optimizer.weight_decay, rate))
        return loss

    clf._step = spy
    clf.fit(X, y)
    for t, lr, wd, rate in seen:
        assert lr == pytest.approx(0.04 * coslog4(t), abs=1e-15)
        assert wd == pytest.approx(0.02 * flat_cos(t), abs=1e-15)
        assert rate == pytest.approx(0.15 * flat_cos(t), abs=1e-15)
    ts = [s[0] for s in seen]
    assert ts[0] == 0 and ts == sorted(ts) and ts[-1] < 1


# ---- accuracy against the drop-ins' pipeline (fixed seeds) --------------------


SHIFTS = {
    "red": -1.0,
    "green": -0.5,
    "blue": 0.0,
    "grey": 0.5,
    "black": 1.0,
    "white": 1.5,
}


def _interaction_table(n, rng):
    """y = [sin(3 (x - shift(colour))) + noise > 0]: a periodic function of a
    number whose phase a category sets. One-hot columns and a standardised x
    give a plain MLP the inputs but not the shape; z is noise."""
    colour = rng.choice(sorted(SHIFTS), size=n)
    x = rng.normal(size=n)
    shift = np.array([SHIFTS[c] for c in colour])
    y = (np.sin(3 * (x - shift)) + 0.1 * rng.normal(size=n) > 0).astype(int)
    X = pd.DataFrame(
        {"colour": pd.Categorical(colour), "x": x, "z": rng.normal(size=n)}
    )
    return X, y


def test_on_a_categorical_interaction_the_tabular_classifier_beats_the_pipeline():
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X, y = _interaction_table(1500, rng)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, test_size=0.5
    )
    tabular = TabularMLPClassifier(random_state=0).fit(X_train, y_train)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["colour"]), (StandardScaler(), ["x", "z"])
        ),
        BackpropClassifier(random_state=0, max_iter=500),
    ).fit(X_train, y_train)
    tabular_error = 1 - tabular.score(X_test, y_test)
    pipeline_error = 1 - pipeline.score(X_test, y_test)
    # Measured: tabular 0.088, pipeline 0.116 on 750 test rows (HGB: 0.084).
    assert tabular_error < pipeline_error - 0.01, (tabular_error, pipeline_error)


# ---- bad input ---------------------------------------------------------------


def _fitted_table_model():
    """A model told which columns are categorical: a numeric column holding
    strings is then an error, not a new categorical column."""
    rng = np.random.RandomState(2)
    X, y = _interaction_table(80, rng)
    model = TabularMLPClassifier(**SMALL, categorical_features=["colour"])
    return model.fit(X, y), X, y


def _snapshot(model):
    return pickle.dumps(model.__dict__)


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (
            lambda X, y: (
                X.astype({"x": object}).assign(x=["7"] + ["a"] * (len(X) - 1)),
                y,
            ),
            "'x'",
        ),
        (lambda X, y: (X.assign(z=np.nan), y), "z"),  # all missing
        (lambda X, y: (X, np.zeros(len(y))), "one class"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    ],
)
def test_bad_input_is_refused_by_name_and_the_model_is_unchanged(make_bad, message):
    model, X, y = _fitted_table_model()
    before = _snapshot(model)
    bad_X, bad_y = make_bad(X, y)
    with pytest.raises(ValueError, match=message):
        model.fit(bad_X, bad_y)
    assert _snapshot(model) == before


def test_a_table_with_other_columns_at_predict_is_refused():
    model, X, _ = _fitted_table_model()
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X.rename(columns={"z": "w"}))


def test_strings_in_a_numeric_column_at_predict_are_refused_by_name():
    model, X, _ = _fitted_table_model()
    X_bad = X.astype({"x": object})
    X_bad.loc[0, "x"] = "seven"
    with pytest.raises(ValueError, match="'x'"):
        model.predict(X_bad)


def test_missing_values_and_unseen_categories_at_predict_still_predict():
    model, X, _ = _fitted_table_model()
    X_new = X.head(5).copy()
    X_new["colour"] = pd.Categorical(["purple", None, "red", "grey", "blue"])
    X_new.loc[1, "x"] = np.nan
    proba = model.predict_proba(X_new)
    assert proba.shape == (5, 2) and np.isfinite(proba).all()
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("numeric_transform", ["quantile_normal", "robust_smooth_clip"])
def test_a_fitted_models_pickle_holds_no_training_data(numeric_transform):
    rng = np.random.RandomState(4)
    sizes, tables = [], []
    for n in (200, 4000):
        X, y = _interaction_table(n, rng)
        model = TabularMLPClassifier(**SMALL, numeric_transform=numeric_transform)
        blob = pickle.dumps(model.fit(X, y))
        sizes.append(len(blob))
        assert X["x"].to_numpy()[:50].tobytes() not in blob  # no run of rows
        quantiles = model.preprocessor_.quantile_transformer_
        tables.append(0 if quantiles is None else quantiles.quantiles_.nbytes)
    # 20 times the rows: the same size, but for the quantile map's table (n /
    # 30 quantiles per numeric column, at most 1,000), stored with its levels.
    assert sizes[1] < sizes[0] * 1.05 + 2 * (tables[1] - tables[0])
    if numeric_transform == "robust_smooth_clip":
        assert sizes[1] < sizes[0] * 1.05


def test_class_weight_equals_the_same_sample_weights():
    rng = np.random.RandomState(5)
    X, y = _interaction_table(150, rng)
    weighted = TabularMLPClassifier(**SMALL, class_weight={0: 3.0, 1: 1.0}).fit(X, y)
    by_rows = TabularMLPClassifier(**SMALL).fit(
        X, y, sample_weight=np.where(y == 0, 3.0, 1.0)
    )
    assert_allclose(weighted.params_, by_rows.params_, rtol=0, atol=0)
    unweighted = TabularMLPClassifier(**SMALL).fit(X, y)
    assert not np.allclose(weighted.params_, unweighted.params_)


def test_an_ensembles_prediction_averages_its_members_probabilities():
    X, y = load_breast_cancer(return_X_y=True)
    model = TabularMLPClassifier(**SMALL, n_members=4).fit(X, y)
    (net,) = model._networks(np.float64)
    features = model.preprocessor_.transform(X[:10])
    Z, _ = net.forward(features, Context(NUMPY))
    members = Z.reshape(4, 10, 2).astype(np.float64)
    p = np.exp(members - members.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    assert_allclose(model.predict_proba(X[:10]), p.mean(axis=0), rtol=1e-5)


def test_numeric_transform_reaches_the_preprocessing():
    # A long tail: the smooth clip squeezes the largest values towards 3,
    # the quantile map spreads them as normal quantiles.
    rng = np.random.RandomState(0)
    X = rng.lognormal(sigma=2.0, size=(300, 2))
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    model = TabularMLPClassifier(**SMALL, numeric_transform="quantile_normal")
    features = model.fit(X, y).preprocessor_.transform(X)
    expected = TabularPreprocessor(numeric_transform="quantile_normal").fit(X)
    assert_allclose(features, expected.transform(X), rtol=0, atol=0)
    assert model.preprocessor_.quantile_transformer_ is not None
    robust = TabularMLPClassifier(**SMALL, numeric_transform="robust_smooth_clip")
    clipped = robust.fit(X, y).preprocessor_.transform(X)
    assert np.abs(clipped).max() < 3 and np.abs(features).max() > 3


def test_the_first_bag_is_the_single_fit_and_the_others_differ():
    # The bags draw from one random stream in turn, so the first bag of an
    # n_bags fit is exactly the n_bags=1 fit; the others hold out other rows
    # and start elsewhere.
    X, y = load_breast_cancer(return_X_y=True)
    single = TabularMLPClassifier(**SMALL).fit(X, y)
    bagged = TabularMLPClassifier(**dict(SMALL, n_bags=3)).fit(X, y)
    assert single.params_.shape == (1, bagged.params_.shape[1])
    assert bagged.params_.shape[0] == 3
    assert_allclose(bagged.params_[0], single.params_[0], rtol=0, atol=0)
    assert bagged.best_epochs_[0] == bagged.best_epoch_ == single.best_epoch_
    assert bagged.loss_curve_ == single.loss_curve_
    for other in bagged.params_[1:]:
        assert np.abs(other - bagged.params_[0]).max() > 1e-3


def _softmax_of(net, features):
    Z, _ = net.forward(features, Context(NUMPY))
    Z = Z.astype(np.float64)
    p = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def test_a_bagged_prediction_averages_its_bags_probabilities():
    X, y = load_breast_cancer(return_X_y=True)
    model = TabularMLPClassifier(**dict(SMALL, n_bags=3)).fit(X, y)
    features = model.preprocessor_.transform(X[:10])
    per_bag = [_softmax_of(net, features) for net in model._networks(np.float64)]
    assert len(per_bag) == 3
    assert model._networks(np.float64).views is not None  # one pass for all bags
    assert_allclose(model.predict_proba(X[:10]), np.mean(per_bag, axis=0), rtol=1e-6)
    assert not np.allclose(per_bag[0], per_bag[1], rtol=1e-3)
    # more rows than one pass takes go bag by bag: the same numbers
    assert len(X) > _tabular._ONE_PASS_ROWS
    assert_allclose(
        model.predict_proba(X)[:10], model.predict_proba(X[:10]), rtol=1e-12
    )


def test_a_bagged_regression_averages_the_bags_before_clipping():
    X, y = load_diabetes(return_X_y=True)
    params = dict(SMALL, numeric_embedding="piecewise_linear")
    model = TabularMLPRegressor(**dict(params, n_bags=2)).fit(X, y)
    assert model._networks(np.float64).views is not None  # one pass for all bags
    features = model.preprocessor_.transform(X[:20])
    standardised = np.mean(
        [net.predict(features) for net in model._networks(np.float64)], axis=0
    )
    expected = np.clip(
        standardised[:, 0] * model.y_scale_[0] + model.y_mean_[0],
        model.y_min_[0],
        model.y_max_[0],
    )
    assert_allclose(model.predict(X[:20]), expected, rtol=1e-10)
    # The bags share the first bag's bin edges: its network predicts as the
    # single fit does (a later bag re-binning would shift its inputs).
    single = TabularMLPRegressor(**params).fit(X, y)
    first = model._networks(np.float64)[0].predict(features)[:, 0]
    assert_allclose(
        np.clip(
            first * model.y_scale_[0] + model.y_mean_[0],
            model.y_min_[0],
            model.y_max_[0],
        ),
        single.predict(X[:20]),
        rtol=1e-10,
    )


def test_predict_answers_for_the_weights_the_model_holds_now():
    # predict reuses the networks it built for a weight array; weights edited
    # in place, a refit and a copy must each be predicted from their own.
    X, y = load_breast_cancer(return_X_y=True)
    model = TabularMLPClassifier(**dict(SMALL, n_bags=2)).fit(X, y)
    before = model.predict_proba(X[:20])
    with pytest.raises(ValueError, match="read-only"):
        model.params_[1] *= 0.5  # fit's weights are read-only
    assert_allclose(model.predict_proba(X[:20]), before, rtol=0, atol=0)
    model.params_.flags.writeable = True  # made writeable: edits are seen
    model.params_[1] *= 0.5  # the second bag's weights, in place
    edited = model.predict_proba(X[:20])
    assert not np.allclose(edited, before)
    assert_allclose(edited, copy.deepcopy(model).predict_proba(X[:20]), rtol=1e-12)
    model.params_[1] *= 2.0  # and again, now that its values are compared
    assert_allclose(model.predict_proba(X[:20]), before, rtol=1e-12)
    # a read-only view of a writeable array: edits through the base are seen
    base = model.params_.copy()
    model.params_ = base[:]
    model.params_.flags.writeable = False
    model.predict_proba(X[:20])
    base[1] *= 0.5
    assert_allclose(model.predict_proba(X[:20]), edited, rtol=1e-12)
    model.set_params(random_state=1).fit(X, y)
    refit = TabularMLPClassifier(**dict(SMALL, n_bags=2, random_state=1)).fit(X, y)
    assert_allclose(model.predict_proba(X[:20]), refit.predict_proba(X[:20]))


def test_validation_rows_of_weight_zero_alone_still_pick_an_epoch():
    """A split whose validation rows all weigh 0 scores them unweighted
    instead of dividing by zero."""
    rng = np.random.RandomState(6)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    weights = np.zeros(100)
    probe = TabularMLPClassifier(**SMALL)
    _, val = probe._split(100, y, np.random.RandomState(0))  # the fit's split
    assert val is not None
    weights[np.setdiff1d(np.arange(100), val)] = 1.0  # only training rows weigh
    model = TabularMLPClassifier(**SMALL).fit(X, y, sample_weight=weights)
    assert len(model.validation_scores_) == SMALL["max_epochs"]
    assert np.isfinite(model.validation_scores_).all()


def test_prediction_runs_in_chunks_of_rows_with_bounded_memory(monkeypatch):
    """predict_proba on 30,000 rows, 1,024 at a time through preprocessing and
    network: the peak of Python-allocated memory stays near one chunk's work
    (without chunks it is ~150 MB here), and the result equals one pass's."""
    import tracemalloc

    import skmlp._tabular as tabular

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0).astype(int)
    clf = TabularMLPClassifier(
        hidden_layer_sizes=(64, 64), max_epochs=2, random_state=0
    ).fit(X, y)
    big = pd.DataFrame(rng.normal(size=(30_000, 6)), columns=list("abcdef"))
    clf_frame = TabularMLPClassifier(
        hidden_layer_sizes=(64, 64), max_epochs=2, random_state=0
    ).fit(pd.DataFrame(X, columns=list("abcdef")), y)
    for model, data in ((clf, big.to_numpy()), (clf_frame, big)):
        monkeypatch.setattr(tabular, "_PREDICT_ROWS", 10**9)
        whole = model.predict_proba(data)
        monkeypatch.setattr(tabular, "_PREDICT_ROWS", 1024)
        tracemalloc.start()
        try:
            chunked = model.predict_proba(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 30e6, peak
        assert_allclose(chunked, whole, rtol=1e-12)


def test_weight_decay_reaches_the_scale_alphas_and_embeddings_as_in_realmlp_td():
    """RealMLP-TD decays the scale with 36 lr wd (its lr x6 and wd x6), the
    parametric activations' alphas and all four periodic-embedding arrays
    with 0.01 lr wd (lr x0.1, wd x0.1), the hidden weights with lr wd and no
    bias; the fitted stack's parameter groups say exactly that."""
    from skmlp._layers import (
        Dense,
        ParametricActivation,
        PeriodicEmbedding,
        Scale,
    )

    X, y = load_breast_cancer(return_X_y=True)
    clf = TabularMLPClassifier(hidden_layer_sizes=(8,), max_epochs=1, random_state=0)
    clf.fit(X[:100], y[:100])
    expected = {
        Scale: {"s": (6.0, 6.0)},
        ParametricActivation: {"alpha": (0.1, 0.1)},
        PeriodicEmbedding: {n: (0.1, 0.1) for n in ("w", "phi", "V", "c")},
        Dense: {"W": (1.0, 1.0), "b": (0.1, 0.0)},
    }
    seen = set()
    for layer in clf.layers_[:-1]:  # the output layer: below
        for p in layer.params:
            want = expected[type(layer)][p.name]
            assert (p.lr_scale, p.wd_scale) == want, (type(layer).__name__, p.name)
            seen.add(type(layer))
    assert seen == set(expected)
