"""LossCurveDisplay draws exactly the fitted curves (Agg backend, no window)."""

import sys

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skmlp import BackpropClassifier, BackpropRegressor, LossCurveDisplay  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_iris(return_X_y=True)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_lines_hold_the_training_and_validation_curves():
    clf = BackpropClassifier((8,), early_stopping=True, max_iter=40, random_state=0)
    clf.fit(X, y)
    display = LossCurveDisplay.from_estimator(clf)
    epochs = np.arange(1, clf.n_iter_ + 1)
    for key, curve in [
        ("loss", clf.loss_curve_),
        ("validation_loss", clf.validation_loss_curve_),
        ("validation_score", clf.validation_scores_),
    ]:
        assert_array_equal(display.lines_[key].get_xdata(), epochs)
        assert_array_equal(display.lines_[key].get_ydata(), curve)
    assert display.ax_score_.get_ylabel() == "validation accuracy"
    assert display.figure_ is display.ax_.figure


def test_without_validation_only_the_training_loss_is_drawn():
    reg = BackpropRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    reg.fit(X, y.astype(float))
    display = LossCurveDisplay.from_estimator(reg)
    assert set(display.lines_) == {"loss"} and display.ax_score_ is None


def test_draws_on_the_given_axes_and_plots_lbfgs_iterations():
    clf = BackpropClassifier((8,), solver="lbfgs", max_iter=30, random_state=0)
    clf.fit(X, y)
    _, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(clf, ax=ax)
    assert display.ax_ is ax
    assert_array_equal(display.lines_["loss"].get_ydata(), clf.loss_curve_)


def test_unfitted_estimator_is_refused():
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(BackpropClassifier(random_state=0))


def test_missing_matplotlib_gives_a_clear_error(monkeypatch):
    clf = BackpropClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import fails
    with pytest.raises(ImportError, match="skmlp\\[plot\\]"):
        LossCurveDisplay.from_estimator(clf)


def test_demo_saves_its_plot(tmp_path, capsys):
    from skmlp.__main__ import save_loss_plot

    clf = BackpropClassifier((4,), max_iter=5, random_state=0)
    clf.fit(X, y, X_val=X[::3], y_val=y[::3])
    save_loss_plot(clf, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert "saved to" in capsys.readouterr().out
