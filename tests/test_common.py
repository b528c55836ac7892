"""scikit-learn's estimator contract, checked by scikit-learn's own checks.

No expected failures: every check must pass for every solver.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmlp import BackpropClassifier, BackpropRegressor

ESTIMATORS = [
    Estimator(solver=solver)
    for Estimator in (BackpropClassifier, BackpropRegressor)
    for solver in ("adam", "sgd", "lbfgs")
] + [
    BackpropClassifier(class_weight="balanced"),
    BackpropRegressor(loss="absolute_error"),
    BackpropRegressor(loss="huber"),
    BackpropRegressor(loss="quantile", quantile=0.8),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
