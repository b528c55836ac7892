"""Drop-in test: scikit-learn's own MLP test suite, run against skmlp.

The installed scikit-learn's ``neural_network/tests/test_mlp.py`` is read at
test time, its one import of MLPClassifier/MLPRegressor is swapped for skmlp's
estimators, and every test in it runs here unchanged. This is the literal
meaning of "code and tests written against MLPClassifier run unchanged after
swapping the class name".

Three of its tests reach into scikit-learn's private internals
(``_loss_grad_lbfgs`` and the ``_optimizer`` object), which are not part of
the public behaviour; they are removed below (each with its reason) and what
they test is tested in tests/test_estimators.py and tests/test_gradcheck.py
instead. One test is run for the regressor only: its classifier half fits a
single class, which skmlp rejects by design with a ValueError
(tests/test_estimators.py checks that, and feature names).
"""

from pathlib import Path

import pytest
import sklearn.neural_network

_SOURCE_PATH = Path(sklearn.neural_network.__file__).parent / "tests" / "test_mlp.py"
_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
_SWAPPED = (
    "from skmlp import BackpropClassifier as MLPClassifier, "
    "BackpropRegressor as MLPRegressor"
)
PRIVATE_API_TESTS = {
    "test_gradient": "calls MLPClassifier._loss_grad_lbfgs; see test_gradcheck.py",
    "test_learning_rate_warmstart": "reads MLPClassifier._optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads MLPClassifier._optimizer.learning_rate",
}

# Its classifier half fits y with a single class, which skmlp refuses.
_REGRESSOR_ONLY = "test_preserve_feature_names"


def _load_suite():
    source = _SOURCE_PATH.read_text()
    if source.count(_IMPORT) != 1:
        raise RuntimeError(f"{_SOURCE_PATH} no longer imports the MLPs as expected")
    namespace = {"__name__": __name__, "__file__": str(_SOURCE_PATH)}
    exec(
        compile(source.replace(_IMPORT, _SWAPPED), str(_SOURCE_PATH), "exec"), namespace
    )
    tests = {k: v for k, v in namespace.items() if k.startswith("test_")}
    for name in PRIVATE_API_TESTS:
        del tests[name]
    preserve_feature_names = tests.pop(_REGRESSOR_ONLY)

    def test_preserve_feature_names_regressor():
        preserve_feature_names(namespace["MLPRegressor"])

    tests[f"{_REGRESSOR_ONLY}_regressor"] = test_preserve_feature_names_regressor
    return namespace["MLPClassifier"], tests


_Classifier, _TESTS = _load_suite()
globals().update(_TESTS)


def test_the_suite_really_runs_skmlp():
    from skmlp import BackpropClassifier

    assert _Classifier is BackpropClassifier
    assert len(_TESTS) >= 30  # 43 in scikit-learn 1.9.1, 3 removed above


@pytest.fixture(params=[0, 42])
def global_random_seed(request):
    """scikit-learn's fixture of the same name (its suite uses two seeds here)."""
    return request.param
