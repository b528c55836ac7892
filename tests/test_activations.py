"""Each activation and its derivative, against independent computations."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import erfc, expit

from skmlp._activations import ACTIVATIONS

REFERENCE = {  # f(z) written independently (scipy / plain numpy)
    "identity": lambda z: z,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
    "softplus": lambda z: np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0),
    # Phi(z) = erfc(-z / sqrt 2) / 2: no cancellation for negative z.
    "gelu": lambda z: 0.5 * z * erfc(-z / np.sqrt(2)),
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: no overflow for very negative z.
    "silu": lambda z: z * 0.5 * (1 + np.tanh(z / 2)),
    # SELU's constants as its paper defines them, not read from skmlp.
    "selu": lambda z: (
        1.0507009873554805
        * np.where(z > 0, z, 1.6732632423543772 * (np.exp(np.minimum(z, 0)) - 1))
    ),
    "mish": lambda z: z * np.tanh(np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)),
}


# gelu's and silu's references use other special functions (erfc, tanh) whose
# last bits differ from ndtr's and expit's, and which round to 0 in the far tail
# (tanh(-25) == -1): compare to 1e-12 relative, 1e-15 absolute.
TOLERANCE = {
    "gelu": (1e-12, 1e-15),
    "silu": (1e-12, 1e-15),
    "selu": (1e-12, 1e-15),
    "mish": (1e-12, 1e-15),
}


def _derivative_applied(name, z, upstream):
    """Run the activation's backward on upstream = dL/da; returns dL/dz."""
    act = ACTIVATIONS[name]
    delta = upstream.copy()
    a = act.forward(z.copy())
    act.backward(z if act.from_input else a, delta)
    return delta


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_reference(name, rng):
    z = rng.normal(scale=3, size=(50, 7))
    rtol, atol = TOLERANCE.get(name, (1e-14, 0.0))
    assert_allclose(
        ACTIVATIONS[name].forward(z.copy()), REFERENCE[name](z), rtol=rtol, atol=atol
    )


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_central_differences(name, rng):
    z = rng.normal(scale=2, size=(40, 5))
    z = z[np.abs(z) > 1e-3].reshape(-1, 1)  # keep away from relu's kink
    eps = 1e-6
    numeric = (REFERENCE[name](z + eps) - REFERENCE[name](z - eps)) / (2 * eps)
    upstream = rng.normal(size=z.shape)
    delta = _derivative_applied(name, z, upstream)
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
    with np.errstate(under="ignore"):  # exp(-5e7) -> 0 is the right answer
        a = ACTIVATIONS[name].forward(z.copy())
        delta = _derivative_applied(name, z, np.ones_like(z))
    assert a.dtype == dtype and np.isfinite(a).all() and np.isfinite(delta).all()
    assert_allclose(a, REFERENCE[name](z.astype(np.float64)), rtol=1e-6, atol=1e-15)
