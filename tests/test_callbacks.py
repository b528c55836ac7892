"""scikit-learn's callback API (sklearn.callback, scikit-learn >= 1.9)."""

import warnings

import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier

callback = pytest.importorskip("sklearn.callback")  # absent before 1.9: no feature
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_iris(return_X_y=True)


class StopAfter:
    """A FitCallback that asks to stop after n epochs."""

    def __init__(self, n_epochs):
        self.n_epochs, self.epochs_seen = n_epochs, 0

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context):
        if context.task_name != "epoch":
            return False
        self.epochs_seen += 1
        return self.epochs_seen >= self.n_epochs


def test_scoring_monitor_records_every_epoch():
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = BackpropClassifier((8,), max_iter=7, random_state=0).set_callbacks(monitor)
    clf.fit(X, y)
    rows = monitor.get_logs().data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert len(epochs) == clf.n_iter_ == 7
    # The last epoch's snapshot is the final model: sklearn.metrics agrees.
    assert epochs[-1]["accuracy"] == accuracy_score(y, clf.predict(X))


def test_a_callbacks_stop_request_ends_training_cleanly():
    stop = StopAfter(3)
    clf = BackpropClassifier((8,), max_iter=100, random_state=0).set_callbacks(stop)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "maximum iterations" warning either
        clf.fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == 3
    assert clf.score(X, y) > 0


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_progress_bar_runs_for_each_solver_and_in_a_pipeline(solver, capsys):
    pytest.importorskip("rich")
    clf = BackpropClassifier((8,), solver=solver, max_iter=5, random_state=0)
    clf.set_callbacks(callback.ProgressBar()).fit(X, y)
    pipe = make_pipeline(
        StandardScaler(), BackpropClassifier((8,), max_iter=5, random_state=0)
    )
    pipe.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert "BackpropClassifier - fit" in capsys.readouterr().out


def test_progress_bar_propagates_into_grid_search(capsys):
    pytest.importorskip("rich")
    search = GridSearchCV(
        BackpropClassifier(max_iter=5, random_state=0),
        {"hidden_layer_sizes": [(4,), (8,)]},
        cv=2,
    )
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert "BackpropClassifier - fit" in capsys.readouterr().out


def test_partial_fit_runs_without_callback_hooks():
    stop = StopAfter(1)
    clf = BackpropClassifier((8,), random_state=0).set_callbacks(stop)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y)
    assert stop.epochs_seen == 0
