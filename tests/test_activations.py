"""Each activation and its derivative, against independent computations."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit

from skmlp._activations import ACTIVATIONS

REFERENCE = {  # f(z) written independently (scipy / plain numpy)
    "identity": lambda z: z,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_reference(name, rng):
    z = rng.normal(scale=3, size=(50, 7))
    assert_allclose(ACTIVATIONS[name].forward(z.copy()), REFERENCE[name](z), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_central_differences(name, rng):
    z = rng.normal(scale=2, size=(40, 5))
    z = z[np.abs(z) > 1e-3].reshape(-1, 1)  # keep away from relu's kink
    eps = 1e-6
    numeric = (REFERENCE[name](z + eps) - REFERENCE[name](z - eps)) / (2 * eps)
    upstream = rng.normal(size=z.shape)
    delta = upstream.copy()
    ACTIVATIONS[name].backward(ACTIVATIONS[name].forward(z.copy()), delta)
    assert_allclose(delta, upstream * numeric, rtol=1e-6, atol=1e-9)


def test_logistic_derivative_is_not_the_tutorials_doubled_one():
    """The tutorial's dsigmoid returned 2 s (1 - s); at z = 0 the truth is 1/4."""
    delta = np.ones((1, 1))
    ACTIVATIONS["logistic"].backward(
        ACTIVATIONS["logistic"].forward(np.zeros((1, 1))), delta
    )
    assert delta[0, 0] == pytest.approx(0.25)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite_without_warnings(name, dtype):
    # pytest turns RuntimeWarning into errors (setup.cfg), so an overflow fails here.
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    a = ACTIVATIONS[name].forward(z.copy())
    delta = np.ones_like(a)
    ACTIVATIONS[name].backward(a, delta)
    assert a.dtype == dtype and np.isfinite(a).all() and np.isfinite(delta).all()
