"""Hidden-layer activations, each beside its derivative.

Every activation is a pair of in-place functions:

- ``forward(z)`` overwrites the pre-activation ``z`` with ``a = f(z)`` and
  returns it;
- ``backward(a, delta)`` turns ``delta = dL/da`` into ``dL/dz = dL/da * f'(z)``
  in place, with ``f'(z)`` written from the layer's *output* ``a``, so the
  forward pass need not keep the pre-activations. gelu, silu and mish have no
  such form: they are marked ``from_input`` and their ``backward(z, delta)`` takes
  the pre-activation, which the forward pass then keeps.

All are stable for any finite input: no overflow warning for ``|z|`` up to the
float range.

Each activation also has a generic pair for arrays of any array-API namespace
(torch, CuPy, array-api-strict), written beside the numpy pair:
``forward_xp(xp, z)`` returns ``f(z)`` and ``backward_xp(xp, a, delta)``
returns ``dL/dz``, as new arrays (the array API has no ``out=``). The ops
layer (``_ops.py``) picks the pair that suits the arrays; a parity test keeps
the two equal.
"""

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import _ufuncs

# scipy's ufuncs themselves, not their public wrappers: with SCIPY_ARRAY_API=1
# the wrappers look up the array namespace on every call (5-7 us each).
expit, ndtr = _ufuncs.expit, _ufuncs.ndtr

LEAKY_SLOPE = 0.01  # leaky_relu's slope for z < 0
# SELU's constants (Klambauer et al., 2017): the fixed point of mean 0 and
# variance 1 for standard-normal weights.
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class Activation(NamedTuple):
    """An activation function and its derivative: in place on numpy arrays,
    and as new arrays of any array-API namespace (the ``_xp`` pair)."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], None]
    forward_xp: Callable
    backward_xp: Callable
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
    """f(z) = z for z > 0, else 0.01 z: max(z, 0.01 z), as the slope is below 1
    (a masked multiply, ``where=z < 0``, is ten times slower)."""
    return np.maximum(z, z * LEAKY_SLOPE, out=z)


def leaky_relu_backward(a, delta):
    """f'(z) = 1 where z > 0 (a > 0), else 0.01."""
    np.multiply(delta, LEAKY_SLOPE, out=delta, where=a <= 0)


def elu(z):
    """f(z) = z for z > 0, else exp(z) - 1 (expm1: exact near 0, -1 far below),
    as max(z, 0) + expm1(min(z, 0)): one of the two terms is 0 (a masked
    expm1, ``where=z < 0``, is four times slower)."""
    negative_part = np.expm1(np.minimum(z, 0.0))
    np.maximum(z, 0.0, out=z)
    z += negative_part
    return z


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


def selu(z):
    """f(z) = lambda z for z > 0, else lambda alpha (exp(z) - 1) (SELU), as
    lambda (max(z, 0) + alpha expm1(min(z, 0)))."""
    negative_part = np.expm1(np.minimum(z, 0.0))
    negative_part *= SELU_ALPHA
    np.maximum(z, 0.0, out=z)
    z += negative_part
    z *= SELU_SCALE
    return z


def selu_backward(a, delta):
    """f'(z) = lambda where z > 0 (a > 0), else lambda alpha exp(z) =
    a + lambda alpha."""
    delta *= np.where(a > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA)


# Beyond this, tanh(softplus(z)) is 1 to double precision, and exp(2z) would
# overflow float32 near z = 44.
MISH_CUTOFF = 20.0


def _mish_terms(z):
    """u = e^z (z capped) and n = u (u + 2): tanh(softplus(z)) = n / (n + 2),
    since (1 + u)^2 = n + 1. One exp instead of exp, log1p and tanh."""
    u = np.exp(np.minimum(z, MISH_CUTOFF))
    n = u + 2.0
    n *= u
    return u, n


def mish(z):
    """f(z) = z tanh(softplus(z)) (Misra, 2019) = z n / (n + 2), n = e^z (e^z + 2)."""
    _, n = _mish_terms(z)
    z *= n
    n += 2.0
    z /= n
    return z


def mish_backward(z, delta):
    """f'(z) = t + z (1 - t^2) sigmoid(z), t = n / (n + 2); with
    1 - t^2 = 4 (n + 1) / (n + 2)^2 and sigmoid(z) = u / (1 + u), (1 + u)^2 =
    n + 1: f'(z) = n / (n + 2) + 4 z u (1 + u) / (n + 2)^2."""
    u, n = _mish_terms(z)
    d = n + 2.0
    second = u + 1.0
    second *= u
    second *= z
    second *= 4.0
    second /= d
    second += n  # (n + 4 z u (1 + u) / (n + 2)) / (n + 2)
    second /= d
    delta *= second


# ---- the same functions for any array-API namespace -------------------------


def stable_sigmoid_xp(xp, z):
    """1 / (1 + exp(-z)) from exp(-|z|) <= 1: no overflow on either side."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# erf on [0, ERF_RANGE] as a Chebyshev series where a namespace has no erf of
# its own (the array API standard has none); beyond it erf is 1 to double
# precision (erfc(6) = 2e-17).
ERF_RANGE, ERF_DEGREE = 6.0, 40


@functools.cache
def erf_chebyshev():
    """Chebyshev coefficients of erf(x), x = ERF_RANGE (u + 1) / 2, u in
    [-1, 1]: interpolated at Chebyshev points from scipy's erf, so no constant
    is copied from anywhere. Largest error on [0, 6]: about 1.5e-15."""
    from numpy.polynomial import chebyshev

    return chebyshev.chebinterpolate(
        lambda u: _ufuncs.erf(ERF_RANGE * (u + 1) / 2), ERF_DEGREE
    )


def _erf_xp(xp, x):
    """erf(x): the namespace's own (torch, CuPy), else the Chebyshev series."""
    native = _native_erf(xp)
    if native is not None:
        return native(x)
    magnitude = xp.abs(x)
    u = xp.clip(magnitude, max=ERF_RANGE) * (2.0 / ERF_RANGE) - 1.0
    coefficients = erf_chebyshev()
    b1 = b2 = xp.zeros_like(u)
    for c in coefficients[:0:-1]:  # Clenshaw: b_k = 2u b_{k+1} - b_{k+2} + c_k
        b1, b2 = 2.0 * u * b1 - b2 + float(c), b1
    series = u * b1 - b2 + float(coefficients[0])
    # Exactly 1 beyond the range, so that z Phi(z) is exactly 0 for z << 0.
    series = xp.where(magnitude >= ERF_RANGE, xp.ones_like(series), series)
    return xp.where(x < 0, -series, series)


def _native_erf(xp):
    name = getattr(xp, "__name__", "")
    if "torch" in name:
        import torch

        return torch.special.erf
    if "cupy" in name:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf
    return None


def normal_cdf_xp(xp, z):
    """Phi(z) = (1 + erf(z / sqrt 2)) / 2."""
    return 0.5 * (1.0 + _erf_xp(xp, z * (1 / math.sqrt(2))))


def identity_xp(xp, z):
    return z


def identity_backward_xp(xp, a, delta):
    return delta


def logistic_xp(xp, z):
    return stable_sigmoid_xp(xp, z)


def logistic_backward_xp(xp, a, delta):
    return delta * (a * (1.0 - a))


def tanh_xp(xp, z):
    return xp.tanh(z)


def tanh_backward_xp(xp, a, delta):
    return delta * (1.0 - a * a)


# Elementwise max/clip rather than where: torch's where is 30 times slower
# on the CPU, and max(z, 0) keeps a NaN a NaN, as numpy's engine does.


def relu_xp(xp, z):
    return xp.clip(z, min=0.0)


def relu_backward_xp(xp, a, delta):
    return delta * xp.astype(a > 0, delta.dtype)  # delta * 1 or delta * 0


def leaky_relu_xp(xp, z):
    return xp.maximum(z, z * LEAKY_SLOPE)


def leaky_relu_backward_xp(xp, a, delta):
    return xp.where(a <= 0, delta * LEAKY_SLOPE, delta)


def elu_xp(xp, z):
    return xp.clip(z, min=0.0) + xp.expm1(xp.clip(z, max=0.0))


def elu_backward_xp(xp, a, delta):
    return xp.where(a <= 0, delta * (a + 1.0), delta)


def softplus_xp(xp, z):
    """max(z, 0) + log(1 + exp(-|z|)): logaddexp(0, z) without overflow."""
    return _softplus_of_input_xp(xp, z)


def softplus_backward_xp(xp, a, delta):
    return delta * -xp.expm1(-a)


def gelu_xp(xp, z):
    return z * normal_cdf_xp(xp, z)


def gelu_backward_xp(xp, z, delta):
    density = xp.exp(-0.5 * z * z) * (_INV_SQRT_2PI * z)
    return delta * (density + normal_cdf_xp(xp, z))


def silu_xp(xp, z):
    return z * stable_sigmoid_xp(xp, z)


def silu_backward_xp(xp, z, delta):
    s = stable_sigmoid_xp(xp, z)
    return delta * (s * (1.0 + z * (1.0 - s)))


def selu_xp(xp, z):
    negative_part = SELU_ALPHA * xp.expm1(xp.clip(z, max=0.0))
    return SELU_SCALE * (xp.clip(z, min=0.0) + negative_part)


def selu_backward_xp(xp, a, delta):
    return xp.where(a > 0, delta * SELU_SCALE, delta * (a + SELU_SCALE * SELU_ALPHA))


def _softplus_of_input_xp(xp, z):
    return xp.clip(z, min=0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def mish_xp(xp, z):
    return z * xp.tanh(_softplus_of_input_xp(xp, z))


def mish_backward_xp(xp, z, delta):
    t = xp.tanh(_softplus_of_input_xp(xp, z))
    return delta * (t + z * (1.0 - t * t) * stable_sigmoid_xp(xp, z))


def _pair(name, from_input=False):
    functions = globals()
    return Activation(
        functions[name],
        functions[f"{name}_backward"],
        functions[f"{name}_xp"],
        functions[f"{name}_backward_xp"],
        from_input,
    )


ACTIVATIONS = {
    name: _pair(name, from_input=name in ("gelu", "silu", "mish"))
    for name in (
        "identity",
        "logistic",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "softplus",
        "gelu",
        "silu",
        "selu",
        "mish",
    )
}
