"""loss='quantile': the pinball loss predicts conditional quantiles."""

import numpy as np
import pytest
from sklearn.metrics import mean_pinball_loss

from skmlp import BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _heteroscedastic(n, rng):
    """y = x + skewed noise whose spread grows with |x|: every quantile of y
    given x differs from its mean, and the interval widens with |x|."""
    X = rng.uniform(-2, 2, size=(n, 1))
    spread = 0.2 + 0.5 * np.abs(X[:, 0])
    return X, X[:, 0] + spread * (rng.exponential(size=n) - 1.0)


def _model(**kwargs):
    settings = dict(
        hidden_layer_sizes=(32,),
        max_iter=500,
        tol=1e-6,
        n_iter_no_change=30,
        random_state=0,
    )
    return BackpropRegressor(**{**settings, **kwargs})


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return _heteroscedastic(4000, rng), _heteroscedastic(4000, rng)


@pytest.fixture(scope="module")
def squared_error_model(data):
    (X, y), _ = data
    return _model().fit(X, y)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_the_share_below_the_prediction_is_the_quantile(q, data, squared_error_model):
    (X, y), (X_test, y_test) = data
    predicted = _model(loss="quantile", quantile=q).fit(X, y).predict(X_test)
    assert abs(np.mean(y_test < predicted) - q) < 0.025  # held-out coverage
    # Its pinball loss (scikit-learn's metric) beats the mean's.
    ours = mean_pinball_loss(y_test, predicted, alpha=q)
    mean_model = mean_pinball_loss(y_test, squared_error_model.predict(X_test), alpha=q)
    assert ours < mean_model


def test_two_quantiles_make_an_interval_that_widens_with_the_noise(data):
    (X, y), (X_test, y_test) = data
    low = _model(loss="quantile", quantile=0.1).fit(X, y).predict(X_test)
    high = _model(loss="quantile", quantile=0.9).fit(X, y).predict(X_test)
    inside = (low <= y_test) & (y_test <= high)
    assert abs(inside.mean() - 0.8) < 0.04
    width = high - low
    wide, narrow = np.abs(X_test[:, 0]) > 1.5, np.abs(X_test[:, 0]) < 0.5
    assert width[wide].mean() > 2 * width[narrow].mean()


def test_sample_weight_counts_like_repeated_rows():
    """Integer weights train like repeated rows (lbfgs: full batch, no shuffles)."""
    rng = np.random.RandomState(1)
    X, y = _heteroscedastic(60, rng)
    counts = rng.randint(1, 4, size=60)
    kwargs = dict(loss="quantile", quantile=0.7, solver="lbfgs", max_iter=50)
    weighted = _model(**kwargs).fit(X, y, sample_weight=counts)
    repeated = _model(**kwargs).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2])
def test_quantile_outside_the_open_unit_interval_is_refused(q):
    with pytest.raises(ValueError, match="'quantile' parameter"):
        BackpropRegressor(loss="quantile", quantile=q, random_state=0).fit(
            [[0.0], [1.0]], [0.0, 1.0]
        )


def test_the_readme_interval_example_runs(data):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("**Prediction intervals**", 1)[1].split("```python\n", 1)[1]
    code = "\n".join(line[2:] for line in block.split("  ```", 1)[0].splitlines())
    (X, y), (X_new, y_new) = data
    namespace = {"X": X, "y": y, "X_new": X_new}
    exec(compile(code, "README.md", "exec"), namespace)
    low, high = namespace["interval"]
    assert abs(np.mean((low <= y_new) & (y_new <= high)) - 0.8) < 0.05
