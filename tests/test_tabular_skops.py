"""Safe persistence of the tabular estimators with skops: a fitted model on a
DataFrame loads trusting skmlp's own types and nothing else, predicts exactly
as before, and its file holds the parameters and statistics, not the rows."""

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from skmlp import TabularMLPClassifier, TabularMLPRegressor

sio = pytest.importorskip("skops.io")

N_ROWS = 4000


def _table(n, rng):
    """Numeric columns (one with missing values), a binary, a one-hot and a
    high-cardinality (embedding) categorical column, with missing values."""
    X = pd.DataFrame(
        {
            "reading": rng.normal(10, 3, n),
            "ratio": rng.uniform(size=n),
            "smoker": rng.choice(["yes", "no"], n),
            "city": pd.Categorical(rng.choice(["Lima", "Oslo", "Rome", "Kyiv"], n)),
            "code": [f"c{i}" for i in rng.randint(0, 40, n)],
        }
    )
    X.loc[rng.rand(n) < 0.1, "reading"] = np.nan
    X.loc[rng.rand(n) < 0.1, "city"] = np.nan
    return X


RNG = np.random.RandomState(0)
X = _table(N_ROWS, RNG)
SIGNAL = X["ratio"] * 3 + X["reading"].fillna(10) / 3 + (X["city"] == "Oslo")


def _fitted(Estimator, **params):
    y = SIGNAL.to_numpy()
    if Estimator is TabularMLPClassifier:
        y = np.digitize(y, np.quantile(y, [0.3, 0.6]))
    est = Estimator(hidden_layer_sizes=(16, 16), max_epochs=2, random_state=0)
    return est.set_params(**params).fit(X, y)


CASES = {
    "classifier, 3 members": (
        TabularMLPClassifier,
        {"n_members": 3, "numeric_transform": "robust_smooth_clip"},
    ),
    "classifier, default quantile map": (TabularMLPClassifier, {}),
    "classifier, piecewise linear": (
        TabularMLPClassifier,
        {"numeric_embedding": "piecewise_linear"},
    ),
    "regressor, 2 members": (
        TabularMLPRegressor,
        {"n_members": 2, "loss": "quantile", "quantile": 0.7},
    ),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def saved(request):
    Estimator, params = CASES[request.param]
    est = _fitted(Estimator, **params)
    return est, sio.dumps(est)


def test_the_file_names_only_skmlps_types_and_loads_trusting_them(saved):
    est, data = saved
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted and all(name.startswith("skmlp.") for name in untrusted)
    assert f"skmlp.{type(est).__name__}" in untrusted
    loaded = sio.loads(data, trusted=untrusted)
    X_new = _table(300, np.random.RandomState(1))
    assert_array_equal(loaded.predict(X_new), est.predict(X_new))
    if isinstance(est, TabularMLPClassifier):
        assert_array_equal(loaded.predict_proba(X_new), est.predict_proba(X_new))


def test_loading_without_trusting_skmlps_types_is_refused(saved):
    _, data = saved
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(data)


def _contents(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_file_holds_no_training_row(saved):
    """No training row, as float64 bytes; with the robust scaling not one
    training value of a numeric column, as bytes or as text. The arrays are
    the parameters and per-column statistics: beyond the parameters and the
    quantile map's table (order statistics of each numeric column, its
    extremes among them; n / 30 per column, at most 1,000), less than one
    float32 column of the training rows."""
    est, data = saved
    contents = _contents(data)
    everything = b"".join(contents.values())
    quantiles = est.preprocessor_.quantile_transformer_
    complete = X[["reading", "ratio"]].dropna().to_numpy()
    for row in complete[:500]:
        assert row.tobytes() not in everything
    if quantiles is None:
        for value in X["ratio"]:
            assert np.float64(value).tobytes() not in everything
            assert repr(float(value)).encode() not in contents["schema.json"]
    arrays = [
        np.load(io.BytesIO(v), allow_pickle=False)  # no pickled object array
        for name, v in contents.items()
        if name.endswith(".npy")
    ]
    table = 0
    if quantiles is not None:
        table = quantiles.quantiles_.nbytes + quantiles.references_.nbytes
        assert quantiles.quantiles_.shape == (N_ROWS // 30, 2)
    surplus = sum(a.nbytes for a in arrays) - est.params_.nbytes - table
    assert 0 <= surplus < N_ROWS * 4


def test_a_default_size_model_pickles_to_its_parameters_and_little_more():
    est = TabularMLPClassifier(max_epochs=1, random_state=0)
    est.fit(X, (SIGNAL > SIGNAL.median()).to_numpy())
    assert est.params_.shape[0] == 3  # three bags
    assert est.params_.size > 100_000  # of three hidden layers of 128
    size = len(pickle.dumps(est))
    assert est.params_.nbytes < size < est.params_.nbytes + 16 * 1024
    skops_size = len(sio.dumps(est))  # plus skops' JSON schema of the objects
    assert skops_size < est.params_.nbytes + 256 * 1024
