"""Safe persistence with skops: no pickle, and nothing to trust but skmlp's own
estimator classes, because the fitted state is plain arrays and numbers."""

import numpy as np
import pytest
import skops.io as sio
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits

from skmlp import BackpropClassifier, BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_digits(return_X_y=True)
X = X[:300] / 16.0
y = y[:300]


@pytest.mark.parametrize(
    "est",
    [
        BackpropClassifier((16,), max_iter=10, random_state=0),
        BackpropClassifier((16,), solver="sgd", max_iter=10, random_state=0),
        BackpropClassifier((16,), solver="lbfgs", max_iter=10, random_state=0),
        BackpropRegressor(hidden_layer_sizes=(16,), max_iter=10, random_state=0),
        BackpropClassifier(
            (16,),
            class_weight="balanced",
            activation="gelu",
            early_stopping=True,
            max_iter=10,
            random_state=0,
        ),
    ],
    ids=["adam", "sgd", "lbfgs", "regressor", "extras"],
)
def test_round_trip_trusts_only_skmlps_class(est, tmp_path):
    est.fit(X, y.astype(float) if isinstance(est, BackpropRegressor) else y)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    assert sio.get_untrusted_types(file=path) == [f"skmlp.{type(est).__name__}"]
    loaded = sio.load(path, trusted=[f"skmlp.{type(est).__name__}"])
    assert_array_equal(loaded.predict(X), est.predict(X))


def test_loading_without_trusting_the_class_is_refused(tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(BackpropClassifier((4,), max_iter=3, random_state=0).fit(X, y), path)
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.load(path)


def test_partial_fit_continues_after_a_skops_round_trip_as_if_never_saved(tmp_path):
    clf = BackpropClassifier((16,), random_state=0)
    uninterrupted = clone(clf)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
        uninterrupted.partial_fit(X, y, classes=np.arange(10))
    sio.dump(clf, tmp_path / "mid.skops")
    loaded = sio.load(tmp_path / "mid.skops", trusted=["skmlp.BackpropClassifier"])
    for _ in range(3):
        loaded.partial_fit(X, y)
        uninterrupted.partial_fit(X, y)
    assert_allclose(loaded.predict_proba(X), uninterrupted.predict_proba(X), rtol=1e-12)
