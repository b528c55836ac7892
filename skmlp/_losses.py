"""Output layers: an output activation, its loss, and the loss's gradient.

Each output pairs the activation of the last layer with the loss it is the
canonical link for, so the gradient with respect to the last pre-activation is
simply ``P - Y`` (scaled by the sample weights).

Notation, shared by every function here:

- ``Y``: targets, ndarray of shape (n_samples, n_outputs);
- ``P``: the output layer's activations (probabilities or predictions), same
  shape;
- ``w``: per-sample weights normalised to sum to one, ndarray of shape
  (n_samples,), or None for the plain mean (``w_i = 1 / n_samples``).

A delta function overwrites ``P`` with ``dL/dz`` (so the training loop needs
no extra array) and returns it.

A loss is ``L = sum_i w_i * l_i`` where ``l_i`` is the per-sample loss summed
over the outputs (averaged for the squared error), exactly the data term that
scikit-learn's MLP reports as ``loss_``.

Each output also has generic versions for any array-API namespace (the
``_xp`` functions, taking the namespace first): they return new arrays, and
the loss as a 0-d array of the namespace, so that a loop on a GPU need not
wait for it.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import _ufuncs

from ._activations import identity, identity_xp, logistic, stable_sigmoid_xp

xlogy = _ufuncs.xlogy  # the ufunc, without SCIPY_ARRAY_API's dispatch cost


class Output(NamedTuple):
    """The last layer's activation with its loss and output delta.

    ``loss_from_logits(Y, Z, w)``, where given, is the same loss computed from
    the pre-activations Z without clipping the probabilities: the function
    whose exact gradient ``delta`` is, also where the output saturates (see
    ``check_gradients``).
    """

    activate: Callable[[np.ndarray], np.ndarray]
    loss: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]
    delta: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
    activate_xp: Callable  # (xp, Z) -> P
    loss_xp: Callable  # (xp, Y, P, w) -> 0-d array
    delta_xp: Callable  # (xp, Y, P, w) -> dL/dz
    loss_from_logits: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float] = (
        None
    )


def _weighted_sum(per_element, w):
    """sum_i w_i sum_k l_ik, or the mean over samples of sum_k l_ik when w is None.

    Written with ufunc reductions rather than np.mean/np.sum: this runs once
    per minibatch, where the Python overhead of those wrappers shows.
    """
    if w is None:
        return float(np.add.reduce(per_element, axis=None)) / per_element.shape[0]
    return float(np.add.reduce(np.dot(w, per_element)))


_EPS = {np.dtype(t): float(np.finfo(t).eps) for t in (np.float32, np.float64)}


def clip_probabilities(P, out=None):
    """P clipped to [eps, 1 - eps] (eps of P's dtype): the bounds inside which
    logs are taken, and in which predict_proba reports probabilities.

    Two ufuncs rather than ``np.clip``, whose wrapper costs more than both.
    """
    eps = _EPS[P.dtype]
    clipped = np.maximum(P, eps, out=out)
    return np.minimum(clipped, 1 - eps, out=clipped)


def _scale_by_weights(delta, w, scale=1.0):
    """delta_ik *= w_i * scale (w_i = 1 / n_samples when w is None)."""
    if w is None:
        delta *= scale / delta.shape[0]
    else:
        delta *= w[:, np.newaxis]
        if scale != 1.0:
            delta *= scale
    return delta


def canonical_delta(Y, P, w):
    """dL/dz = w_i (P - Y): the canonical-link gradient of the first four losses."""
    return _scale_by_weights(np.subtract(P, Y, out=P), w)


# ---- softmax + categorical cross-entropy (multiclass) ----------------------


def softmax(z):
    """p_k = exp(z_k - max z) / sum_j exp(z_j - max z), in place."""
    z -= np.maximum.reduce(z, axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=1, keepdims=True)
    return z


def categorical_cross_entropy(Y, P, w):
    """l_i = -sum_k y_ik log p_ik (p clipped to [eps, 1 - eps])."""
    log_p = np.log(clip_probabilities(P))
    log_p *= Y
    return -_weighted_sum(log_p, w)


def categorical_cross_entropy_from_logits(Y, Z, w):
    """l_i = log sum_k exp(z_ik) - sum_k y_ik z_ik (one-hot y), unclipped."""
    shifted = Z - np.max(Z, axis=1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -_weighted_sum(log_p * Y, w)


# ---- logistic + binary cross-entropy (binary and multilabel) ---------------


def binary_cross_entropy(Y, P, w):
    """l_i = -sum_k [y_ik log p_ik + (1 - y_ik) log(1 - p_ik)] for 0/1 targets.

    With y in {0, 1} one term vanishes: l = -log(p) where y = 1 and
    -log(1 - p) where y = 0 (p clipped to [eps, 1 - eps]).
    """
    P = clip_probabilities(P)
    likelihood = np.where(Y, P, 1 - P)
    return -_weighted_sum(np.log(likelihood, out=likelihood), w)


def binary_cross_entropy_from_logits(Y, Z, w):
    """l_i = sum_k [log(1 + exp(z_ik)) - y_ik z_ik], unclipped."""
    return _weighted_sum(np.logaddexp(0, Z) - Y * Z, w)


# ---- identity + squared error (regression) ---------------------------------


def half_squared_error(Y, P, w):
    """l_i = (1 / 2) mean_k (y_ik - p_ik)^2."""
    diff = np.subtract(Y, P)
    diff *= diff
    return 0.5 / P.shape[1] * _weighted_sum(diff, w)


def half_squared_error_delta(Y, P, w):
    """dL/dz = w_i (P - Y) / n_outputs, since the loss averages the outputs."""
    return _scale_by_weights(np.subtract(P, Y, out=P), w, 1.0 / P.shape[1])


# ---- exp + Poisson deviance (regression of counts and rates) ---------------


def exp(z):
    """p = exp(z) > 0."""
    return np.exp(z, out=z)


def half_poisson_deviance(Y, P, w):
    """l_i = sum_k [y log(y / p) - y + p]; zero when p = y."""
    return _weighted_sum(xlogy(Y, Y) - xlogy(Y, P) - Y + P, w)


# ---- identity + absolute error, identity + Huber (robust regression) -------


def mean_absolute_error(Y, P, w):
    """l_i = mean_k |y_ik - p_ik|."""
    residual = np.subtract(P, Y)
    np.abs(residual, out=residual)
    return _weighted_sum(residual, w) / P.shape[1]


def mean_absolute_error_delta(Y, P, w):
    """dL/dz = w_i sign(p - y) / n_outputs (0 where p = y: a subgradient)."""
    delta = np.subtract(P, Y, out=P)
    np.sign(delta, out=delta)
    return _scale_by_weights(delta, w, 1.0 / P.shape[1])


def huber(threshold):
    """Identity output with the Huber loss of the given threshold d:

    l_i = mean_k h(p_ik - y_ik), h(r) = r^2 / 2 if |r| <= d else d (|r| - d / 2),
    squared near the target and linear (so robust to outliers) beyond d.
    """

    def loss(Y, P, w):
        r = np.abs(np.subtract(P, Y))
        quadratic = np.minimum(r, threshold)  # h(r) = q (r - q / 2), q = min(r, d)
        r -= 0.5 * quadratic
        r *= quadratic
        return _weighted_sum(r, w) / P.shape[1]

    def delta(Y, P, w):
        """dL/dz = w_i clip(p - y, -d, d) / n_outputs."""
        residual = np.subtract(P, Y, out=P)
        np.clip(residual, -threshold, threshold, out=residual)
        return _scale_by_weights(residual, w, 1.0 / P.shape[1])

    def loss_xp(xp, Y, P, w):
        r = xp.abs(P - Y)
        quadratic = xp.clip(r, max=threshold)
        return _weighted_sum_xp(xp, quadratic * (r - 0.5 * quadratic), w) / P.shape[1]

    def delta_xp(xp, Y, P, w):
        residual = xp.clip(P - Y, min=-threshold, max=threshold)
        return _scale_by_weights_xp(xp, residual, w, 1.0 / P.shape[1])

    return Output(identity, loss, delta, identity_xp, loss_xp, delta_xp)


def quantile(q):
    """Identity output with the pinball (quantile) loss of level q in (0, 1):

    l_i = mean_k rho(y_ik - p_ik), rho(r) = q r if r >= 0 else (q - 1) r,
    minimised where a share q of the targets lies below the prediction.
    """

    def loss(Y, P, w):
        r = np.subtract(Y, P)
        np.maximum(q * r, (q - 1.0) * r, out=r)  # rho(r): the larger branch
        return _weighted_sum(r, w) / P.shape[1]

    def delta(Y, P, w):
        """dL/dz = w_i (1{p > y} - q) / n_outputs, i.e. 1 - q above the target
        and -q below (0 where p = y: a subgradient)."""
        above, below = P > Y, P < Y
        delta = P  # overwritten in place, as every delta is
        delta[...] = 0.0
        delta[above] = 1.0 - q
        delta[below] = -q
        return _scale_by_weights(delta, w, 1.0 / P.shape[1])

    def loss_xp(xp, Y, P, w):
        r = Y - P
        return (
            _weighted_sum_xp(xp, xp.where(r >= 0, q * r, (q - 1.0) * r), w)
            / (P.shape[1])
        )

    def delta_xp(xp, Y, P, w):
        zero = xp.zeros_like(P)
        delta = xp.where(P > Y, zero + (1.0 - q), xp.where(P < Y, zero - q, zero))
        return _scale_by_weights_xp(xp, delta, w, 1.0 / P.shape[1])

    return Output(identity, loss, delta, identity_xp, loss_xp, delta_xp)


# ---- scikit-learn's order of operations (for L-BFGS) ------------------------


def reference_loss(output, Y, P, sample_weight, by_column=True):
    """The data loss as scikit-learn's MLP computes it, operation for operation.

    The same value as ``output.loss`` (to a few ulps); the order of the
    floating-point operations is scikit-learn's (its
    ``sklearn.neural_network._base`` losses), so that L-BFGS, which amplifies
    a difference in the last bit, follows scikit-learn's trajectory.
    ``sample_weight`` are the raw weights (None: unweighted). ``by_column``:
    scikit-learn >= 1.7 averages each output column over the samples
    (``np.average(axis=0)``) and then adds (or, for the squared error,
    averages) the columns; 1.6 sums every element and divides by n. P is not
    modified. Returns None for an output scikit-learn's MLP does not have.
    """
    eps = _EPS[P.dtype]
    by_column = by_column or sample_weight is not None  # 1.6 had no weights
    if output is OUTPUTS["softmax"]:
        per_element = xlogy(Y, np.clip(P, eps, 1 - eps))
        return -_reference_mean(per_element, sample_weight, by_column)
    if output is OUTPUTS["logistic"]:
        P = np.clip(P, eps, 1 - eps)
        positive, negative = xlogy(Y, P), xlogy(1 - Y, 1 - P)
        if not by_column:  # 1.6: -(sum of each term) / n
            return -(positive.sum() + negative.sum()) / P.shape[0]
        return -_reference_mean(positive + negative, sample_weight, by_column)
    if output is OUTPUTS["identity"]:
        squared = (Y - P) ** 2
        if not by_column:  # 1.6: the mean over every element, halved
            return squared.mean() / 2
        return 0.5 * np.average(squared, weights=sample_weight, axis=0).mean()
    if output is OUTPUTS["exp"]:
        per_element = xlogy(Y, Y / P) - Y + P
        return _reference_mean(per_element, sample_weight, by_column=True)
    return None


def _reference_mean(per_element, sample_weight, by_column):
    """sum_k of the (weighted) mean over samples of column k, in scikit-learn's
    order (see :func:`reference_loss`)."""
    if not by_column:
        return per_element.sum() / per_element.shape[0]
    return np.average(per_element, weights=sample_weight, axis=0).sum()


def unnormalized_delta(output, Y, P, sample_weight):
    """``sum(s) * dL/dz``: the output delta with the raw sample weights (ones
    without), in place of P, as scikit-learn's MLP computes it before dividing
    the gradients by ``sum(s)`` (see :func:`reference_loss`)."""
    if sample_weight is None:
        sample_weight = np.ones(P.shape[0], P.dtype)  # w_i = 1: exact
    return output.delta(Y, P, sample_weight)


# ---- the same outputs for any array-API namespace ---------------------------


def _weighted_sum_xp(xp, per_element, w):
    """sum_i w_i sum_k l_ik (the mean over samples when w is None), 0-d."""
    if w is None:
        return xp.sum(per_element) / per_element.shape[0]
    return xp.sum(w[:, None] * per_element)


def _scale_by_weights_xp(xp, delta, w, scale=1.0):
    if w is None:
        return delta * (scale / delta.shape[0])
    return delta * (w[:, None] * scale)


def _clip_probabilities_xp(xp, P):
    eps = float(xp.finfo(P.dtype).eps)
    return xp.clip(P, min=eps, max=1 - eps)


def canonical_delta_xp(xp, Y, P, w):
    return _scale_by_weights_xp(xp, P - Y, w)


def softmax_xp(xp, z):
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def categorical_cross_entropy_xp(xp, Y, P, w):
    return -_weighted_sum_xp(xp, xp.log(_clip_probabilities_xp(xp, P)) * Y, w)


def binary_cross_entropy_xp(xp, Y, P, w):
    P = _clip_probabilities_xp(xp, P)
    return -_weighted_sum_xp(xp, xp.log(xp.where(Y > 0, P, 1 - P)), w)


def half_squared_error_xp(xp, Y, P, w):
    diff = Y - P
    return 0.5 / P.shape[1] * _weighted_sum_xp(xp, diff * diff, w)


def half_squared_error_delta_xp(xp, Y, P, w):
    return _scale_by_weights_xp(xp, P - Y, w, 1.0 / P.shape[1])


def exp_xp(xp, z):
    return xp.exp(z)


def half_poisson_deviance_xp(xp, Y, P, w):
    positive = Y > 0
    y_log_y = xp.where(positive, Y * xp.log(xp.where(positive, Y, 1.0)), 0.0)
    return _weighted_sum_xp(xp, y_log_y - Y * xp.log(P) - Y + P, w)


def mean_absolute_error_xp(xp, Y, P, w):
    return _weighted_sum_xp(xp, xp.abs(P - Y), w) / P.shape[1]


def mean_absolute_error_delta_xp(xp, Y, P, w):
    return _scale_by_weights_xp(xp, xp.sign(P - Y), w, 1.0 / P.shape[1])


OUTPUTS = {
    "softmax": Output(
        softmax,
        categorical_cross_entropy,
        canonical_delta,
        softmax_xp,
        categorical_cross_entropy_xp,
        canonical_delta_xp,
        categorical_cross_entropy_from_logits,
    ),
    "logistic": Output(
        logistic,
        binary_cross_entropy,
        canonical_delta,
        stable_sigmoid_xp,
        binary_cross_entropy_xp,
        canonical_delta_xp,
        binary_cross_entropy_from_logits,
    ),
    "identity": Output(
        identity,
        half_squared_error,
        half_squared_error_delta,
        identity_xp,
        half_squared_error_xp,
        half_squared_error_delta_xp,
    ),
    "exp": Output(
        exp,
        half_poisson_deviance,
        canonical_delta,
        exp_xp,
        half_poisson_deviance_xp,
        canonical_delta_xp,
    ),
    "absolute_error": Output(
        identity,
        mean_absolute_error,
        mean_absolute_error_delta,
        identity_xp,
        mean_absolute_error_xp,
        mean_absolute_error_delta_xp,
    ),
}
