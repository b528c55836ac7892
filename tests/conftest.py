import os

# scikit-learn's array API dispatch needs scipy's own array API support, which
# scipy reads from the environment when it is first imported: set it here,
# before anything imports scipy, so that the array API tests (and
# scikit-learn's own array API checks in test_common.py) run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import importlib.util

import numpy as np
import pytest

TORCH_CPU = (
    "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"
)


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def pytest_report_header(config):
    """Say up front why the torch tests will skip, and how to run them."""
    if not _installed("torch"):
        return (
            "torch: not installed, so the tests on torch tensors skip "
            "(the test extra leaves it out: Linux's default torch is the CUDA "
            f"build). To run them, install its CPU build: {TORCH_CPU}"
        )
    return None


@pytest.fixture
def rng():
    """A fresh, seeded generator per test: no global seeds."""
    return np.random.RandomState(0)


def _targets(output, rng, n, k):
    """Targets of the kind each output layer is trained on."""
    if output == "softmax":
        return np.eye(k)[rng.randint(k, size=n)]
    if output == "logistic":
        return (rng.uniform(size=(n, k)) > 0.5).astype(float)
    if output == "exp":
        return rng.poisson(1.5, size=(n, k)).astype(float)
    return rng.normal(size=(n, k))


@pytest.fixture
def make_targets():
    """make_targets(output, rng, n, k): targets for an output layer."""
    return _targets


@pytest.fixture
def b2_settings():
    """Issue #9's B2: a BackpropRegressor whose loss overflows within epoch 1
    on iris, so divergence must restore the initial weights."""
    return dict(
        hidden_layer_sizes=(100,),
        activation="identity",
        solver="sgd",
        learning_rate_init=100,
        batch_size=10,
        random_state=0,
    )
