"""Public gradient check: backpropagation against central finite differences."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._network import MLP, flatten, forward, output_layer


def _unclipped_objective(net, X, Y, sample_weight, alpha):
    """The training objective, with the loss computed from the logits where
    the output layer offers that (no clipping of probabilities)."""
    from_logits = output_layer(net.output).loss_from_logits
    if from_logits is None:
        return net.loss(X, Y, sample_weight, alpha)
    Z = forward(X, net.weights, net.biases, net.activation, "identity")
    w, weight_sum = net._normalized_weights(sample_weight, X.shape[0])
    return from_logits(Y, Z, w) + net._penalty(alpha, weight_sum)


def check_gradients(estimator, X, y, *, sample_weight=None, epsilon=1e-6):
    """Relative error between backpropagated and finite-difference gradients.

    At the fitted estimator's current parameters, compute the gradient ``g`` of
    its training objective (data loss + L2 penalty, weighted by
    ``sample_weight``) by backpropagation, and its central finite differences
    ``n_i = (L(theta + epsilon e_i) - L(theta - epsilon e_i)) / (2 epsilon)``
    over every weight and bias, all in float64. The objective is the
    deterministic one: without dropout, even when the estimator trains with
    ``dropout > 0`` (the dropout backward pass is tested separately, with
    fixed masks).

    For the classifiers' cross-entropy, the finite differences are taken of
    the *unclipped* objective, computed from the output layer's
    pre-activations (log-softmax, ``log(1 + e^z)``). That is the function whose
    exact gradient backpropagation computes (``P - Y``). The loss that
    training reports clips probabilities to ``[eps, 1 - eps]``, which makes it
    flat where the network saturates; differencing it there would report a
    large error for a correct model.

    Parameters
    ----------
    estimator : BackpropClassifier or BackpropRegressor
        A fitted estimator; it is not modified.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Input data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets, as they would be passed to ``fit``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    epsilon : float, default=1e-6
        Finite-difference step.

    Returns
    -------
    error : float
        ``max|g - n| / max(max|g|, max|n|)``: a max-norm ratio, so tiny
        gradient components do not dominate. 0.0 when both are zero. Correct
        backpropagation gives about 1e-8 or less; a wrong derivative gives a
        large value.

    Notes
    -----
    It costs ``2 * n_parameters`` evaluations of the objective on all of X:
    use a small network and a few dozen samples.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmlp import BackpropClassifier, check_gradients
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BackpropClassifier(hidden_layer_sizes=(5,), activation="tanh",
    ...                          random_state=0)
    >>> clf = clf.partial_fit(X, y, classes=[0, 1, 2])  # one epoch: mid-training
    >>> error = check_gradients(clf, X, y, sample_weight=y + 1.0)
    >>> error < 1e-6  # backprop is right; a wrong derivative gives a large error
    True
    """
    check_is_fitted(estimator)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
    with np.errstate(over="ignore", invalid="ignore"):
        X, Y = estimator._validate_input(X, y, incremental=True, reset=False)
        sample_weight = estimator._validate_sample_weight(sample_weight, X)
    X = X.astype(np.float64)
    Y = Y.reshape(X.shape[0], -1).astype(np.float64)
    if sample_weight is not None:
        sample_weight = sample_weight.astype(np.float64)

    layer_sizes = [X.shape[1]] + [W.shape[1] for W in estimator.coefs_]
    params = flatten(estimator.coefs_, estimator.intercepts_, dtype=np.float64)
    net = MLP(layer_sizes, estimator.activation, estimator._output_layer(), params)
    alpha = estimator.alpha
    with np.errstate(over="ignore", under="ignore"):
        _, backprop = net.loss_and_grad(X, Y, sample_weight, alpha)
        numeric = np.empty_like(params)
        for i in range(params.size):
            original = params[i]
            params[i] = original + epsilon
            loss_plus = _unclipped_objective(net, X, Y, sample_weight, alpha)
            params[i] = original - epsilon
            loss_minus = _unclipped_objective(net, X, Y, sample_weight, alpha)
            params[i] = original
            numeric[i] = (loss_plus - loss_minus) / (2 * epsilon)
    scale = max(np.abs(backprop).max(), np.abs(numeric).max())
    return float(np.abs(backprop - numeric).max() / scale) if scale > 0 else 0.0
