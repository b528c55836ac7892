"""The core of skmlp: a multilayer perceptron and its backpropagation.

Nothing here knows about scikit-learn. A network with layer sizes
``n_0, n_1, ..., n_L`` has weights ``W_k`` of shape ``(n_{k-1}, n_k)`` and
biases ``b_k`` of shape ``(n_k,)`` for ``k = 1..L``. For a batch ``X = a_0``
of shape ``(n_samples, n_0)`` the forward pass is::

    z_k = a_{k-1} W_k + b_k        a_k = f(z_k)   (f = output activation at k = L)

and the backward pass applies the four matrix equations of backpropagation::

    (1) dL/dz_k     = dL/da_k * f'(z_k)          elementwise
    (2) dL/dW_k     = a_{k-1}^T  dL/dz_k
    (3) dL/db_k     = sum over samples of dL/dz_k
    (4) dL/da_{k-1} = dL/dz_k  W_k^T

Each layer is a :class:`skmlp._layers.Dense`, where these four equations are
written, numbered as here, beside its forward pass: the network is a stack
of Dense layers (the tabular estimators' stacks, ``_stack.py``, add other
layers to the same protocol). At the output, the loss and activation are a
canonical pair, so ``dL/dz_L`` is ``P - Y`` scaled by the sample weights
(see ``_losses.py``).

All parameters live in ONE contiguous flat vector: every weight matrix first,
in layer order, then every bias vector (the packing scikit-learn's MLP uses).
``W_k`` and ``b_k`` are views into it, so an optimizer or L-BFGS updates the
whole network with one vector operation and no packing copies, and the L2
penalty touches one slice, ``params[:n_weights]``.

Array work beyond ``@`` goes through an ops object (``_ops.py``): numpy with
its buffers and in-place fast paths, or any array-API namespace (torch, CuPy)
on its device. The equations are written once, for both.
"""

import functools

import numpy as np

from ._layers import Context, Dense
from ._losses import OUTPUTS
from ._ops import NUMPY


def n_parameters(layer_sizes):
    """Number of weights plus biases of a network with these layer sizes."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in _layer_pairs(layer_sizes))


def _layer_pairs(layer_sizes):
    return list(zip(layer_sizes[:-1], layer_sizes[1:], strict=True))


def unflatten(flat, layer_sizes, xp=None):
    """Per-layer views into a flat parameter (or gradient) vector.

    Parameters
    ----------
    flat : ndarray of shape (n_parameters(layer_sizes),)
        The flat vector; weights first, then biases.
    layer_sizes : sequence of int
        ``[n_features, *hidden_layer_sizes, n_outputs]``.
    xp : array namespace, optional
        The namespace of ``flat`` when it is not a numpy array: views are
        made with its ``reshape``.

    Returns
    -------
    weights : list of ndarray of shape (fan_in, fan_out)
        Views, not copies: writing to them writes to ``flat``.
    biases : list of ndarray of shape (fan_out,)
        Views, not copies.
    """
    weights, biases = [], []
    start = 0
    for fan_in, fan_out in _layer_pairs(layer_sizes):
        end = start + fan_in * fan_out
        part = flat[start:end]
        shape = (fan_in, fan_out)
        weights.append(part.reshape(shape) if xp is None else xp.reshape(part, shape))
        start = end
    for _, fan_out in _layer_pairs(layer_sizes):
        biases.append(flat[start : start + fan_out])
        start += fan_out
    return weights, biases


def flatten(weights, biases, dtype=None):
    """Copy per-layer arrays into one new flat vector (inverse of unflatten)."""
    parts = [np.ravel(w) for w in weights] + [np.ravel(b) for b in biases]
    return np.concatenate(parts).astype(dtype or parts[0].dtype, copy=False)


def output_layer(output):
    """The Output named by ``output`` (a key of OUTPUTS), or ``output`` itself."""
    return OUTPUTS[output] if isinstance(output, str) else output


@functools.lru_cache(maxsize=64)
def dense_layers(layer_sizes, activation, output):
    """The Dense layers of a network: ``activation`` on the hidden layers, the
    output layer's activation (fused with its bias add) on the last."""
    pairs = _layer_pairs(layer_sizes)
    hidden = [Dense(n_in, n_out, activation) for n_in, n_out in pairs[:-1]]
    n_in, n_out = pairs[-1]
    return (*hidden, Dense(n_in, n_out, output=output_layer(output)))


def _sizes(weights):
    return (weights[0].shape[0], *(W.shape[1] for W in weights))


def _mask_dict(masks):
    """Per-hidden-layer masks (None: no dropout there) as Context wants them."""
    if masks is None:
        return None
    return {k: m for k, m in enumerate(masks) if m is not None}


def _run(layers, parameters, gradients, X, ctx):
    """The layers in order: (output, the layers' backprop closures)."""
    a, backprops = X, []
    for k, layer in enumerate(layers):
        ctx.index = k
        a, backprop = layer.forward(parameters[k], gradients[k], a, ctx)
        backprops.append(backprop)
    return a, backprops


def forward(X, weights, biases, activation, output, out=None, masks=None, ops=NUMPY):
    """Run the network on X: the output layer's activations ``a_L``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    weights, biases : lists of ndarray
        ``W_1..W_L`` and ``b_1..b_L``.
    activation : str
        Hidden activation, a key of ``ACTIVATIONS``.
    output : str or Output
        The output layer: a key of ``OUTPUTS``, or an ``Output`` (as built by
        ``_losses.huber``).
    out : list of ndarray, optional
        One array of shape (n_samples, n_k) per layer to compute into (see
        :class:`skmlp._ops.Workspace`); new arrays when None.
    masks : list of (ndarray or None), optional
        Inverted-dropout masks, one per hidden layer (entries 0 or 1 / (1 - p);
        None for a layer without dropout). Training only.
    ops : NumpyOps or ArrayAPIOps
        The engine for X's kind of array (see ``_ops.py``).
    """
    layers = dense_layers(_sizes(weights), activation, output)
    if masks is not None:  # a training pass's objective, dropout and all
        parameters = [{"W": W, "b": b} for W, b in zip(weights, biases, strict=True)]
        ctx = Context(ops, outputs=out, masks=_mask_dict(masks))
        return _run(layers, parameters, [None] * len(layers), X, ctx)[0]
    a = X
    for k, (layer, W, b) in enumerate(zip(layers, weights, biases, strict=True)):
        a = layer.predict(W, b, a, ops, None if out is None else out[k])
    return a


class MLP:
    """A multilayer perceptron whose parameters are one flat vector.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_features, *hidden_layer_sizes, n_outputs]``.
    activation : str
        Hidden activation, a key of ``ACTIVATIONS``.
    output : str
        Output activation (and with it the loss), a key of ``OUTPUTS``.
    params : ndarray of shape (n_parameters(layer_sizes),)
        The flat parameter vector; used in place, not copied. An array of
        another namespace when ``ops`` is an ArrayAPIOps.
    ops : NumpyOps or ArrayAPIOps, default=NUMPY
        The engine for the arrays (see ``_ops.py``).
    """

    def __init__(self, layer_sizes, activation, output, params, ops=NUMPY):
        if params.shape != (n_parameters(layer_sizes),):
            raise ValueError(
                f"params has shape {params.shape}; layer sizes {list(layer_sizes)} "
                f"need ({n_parameters(layer_sizes)},)."
            )
        self.layer_sizes = list(layer_sizes)
        self.activation = activation
        self.output = output
        self.params = params
        self.ops = ops
        xp = None if ops.is_numpy else ops.xp
        self.weights, self.biases = unflatten(params, self.layer_sizes, xp)
        self.n_weights = sum(W.shape[0] * W.shape[1] for W in self.weights)
        self._weights_flat = params[: self.n_weights]
        self.grad = ops.zeros_like(params)  # loss_and_grad writes here
        grad_weights, grad_biases = unflatten(self.grad, self.layer_sizes, xp)
        self.layers = dense_layers(tuple(self.layer_sizes), activation, output)
        self._parameters = [
            {"W": W, "b": b} for W, b in zip(self.weights, self.biases, strict=True)
        ]
        self._gradients = [
            {"W": W, "b": b} for W, b in zip(grad_weights, grad_biases, strict=True)
        ]

    def forward(self, X, out=None, masks=None):
        """Output of the network for X (see :func:`forward`)."""
        return forward(
            X,
            self.weights,
            self.biases,
            self.activation,
            self.output,
            out,
            masks,
            self.ops,
        )

    def _normalized_weights(self, sample_weight, n_samples, total=None):
        """(w, total): the rows' weights divided by their sum (None: uniform),
        and that sum (n_samples when unweighted; ``total`` when the caller
        knows it, which spares a device a round trip)."""
        if sample_weight is None:
            return None, n_samples
        if total is None:
            total = float(self.ops.xp.sum(sample_weight))
        return self.ops.astype_like(sample_weight / total, self.params), total

    def _penalty(self, alpha, weight_sum):
        """L2 term alpha / (2 sum s) * sum_k ||W_k||^2 (weights are params[:n_w])."""
        return 0.5 * alpha / weight_sum * self.ops.sum_of_squares(self._weights_flat)

    def loss(self, X, Y, sample_weight=None, alpha=0.0, masks=None):
        """The training objective of :meth:`loss_and_grad`, without the gradient."""
        w, weight_sum = self._normalized_weights(sample_weight, X.shape[0])
        P = self.forward(X, masks=masks)
        data_loss = self.ops.output_loss(output_layer(self.output), Y, P, w)
        return data_loss + self._penalty(alpha, weight_sum)

    def loss_and_grad(
        self,
        X,
        Y,
        sample_weight=None,
        alpha=0.0,
        workspace=None,
        penalty_gradient=True,
        masks=None,
        weight_sum=None,
        sklearn_order=None,
    ):
        """Training objective and its gradient at the current parameters.

        The objective is scikit-learn's MLP objective::

            L = sum_i w_i l(y_i, p_i) + alpha / (2 sum_i s_i) * sum_k ||W_k||^2

        with ``s`` the sample weights (all ones when None) and ``w = s / sum s``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Y : ndarray of shape (n_samples, n_outputs)
            Targets: floats, or booleans for class indicators.
        sample_weight : ndarray of shape (n_samples,) or None
            Non-negative weights with a positive sum.
        alpha : float
            L2 penalty strength.
        workspace : skmlp._ops.Workspace, optional
            Scratch arrays with at least n_samples rows, reused between calls.
        penalty_gradient : bool, default=True
            If False, the gradient omits the penalty term ``alpha / sum(s) * W``
            (the loss still includes the penalty): the training loop lets the
            optimizer add it in the same pass as its update.
        masks : list of (ndarray or None), optional
            Dropout masks for the hidden layers (see :func:`forward`).
        weight_sum : float, optional
            ``sum(sample_weight)``, when the caller knows it.
        sklearn_order : tuple of int, optional
            The (major, minor) version of scikit-learn whose MLP's order of
            floating-point operations to follow, for L-BFGS (which amplifies
            a difference in the last bit until the fits part): the loss by
            its formulas, the output delta with the raw weights, and the
            gradients divided by ``sum(s)`` only after the penalty's
            gradient ``alpha W`` is added. The same values to a few ulps.
            None: skmlp's order, which scales the delta first.

        Returns
        -------
        loss : float, or a 0-d array of the ops' namespace
        grad : ndarray of shape (n_parameters,)
            The network's own gradient buffer (``self.grad``), overwritten by
            the next call: copy it to keep it.
        """
        ops = self.ops
        n = X.shape[0]
        w, weight_sum = self._normalized_weights(sample_weight, n, weight_sum)
        outputs, deltas, ones = (None,) * 3 if workspace is None else workspace.rows(n)
        ctx = Context(
            ops,
            train=True,
            masks=_mask_dict(masks),
            outputs=outputs,
            deltas=deltas,
            ones=ones,
            exact_sums=sklearn_order is not None,
        )
        P, backprops = _run(self.layers, self._parameters, self._gradients, X, ctx)
        output = output_layer(self.output)
        if sklearn_order is None:
            # The loss, and dL/dz_L = w_i (P - Y) for the canonical pairs.
            loss, delta = ops.output_loss_and_delta(output, Y, P, w)
        else:  # sum(s) dL/dz_L = s_i (P - Y); divided by sum(s) at the end
            by_column = tuple(sklearn_order) >= (1, 7)
            loss = ops.reference_loss(output, Y, P, sample_weight, by_column)
            if loss is None:  # an output of skmlp's own
                loss = ops.output_loss(output, Y, P, w)
            delta = ops.unnormalized_delta(output, Y, P, sample_weight)
        for backprop in reversed(backprops):  # layer L down to 1: (1)-(4)
            delta = backprop(delta)

        if sklearn_order is not None:
            return self._penalty_and_division(loss, alpha, weight_sum)
        if alpha:
            loss += self._penalty(alpha, weight_sum)
            if penalty_gradient:
                n_w = self.n_weights
                ops.add_penalty_gradient(
                    self.grad[:n_w], self.params[:n_w], alpha / weight_sum
                )
        return loss, self.grad

    def _penalty_and_division(self, loss, alpha, weight_sum):
        """scikit-learn's last steps, in its order: the loss plus
        ``(alpha / 2) * sum_k ||W_k||^2 / sum(s)``, the squares summed layer
        by layer; the gradients ``(a^T delta + alpha W) / sum(s)`` and
        ``1^T delta / sum(s)`` from the unnormalised delta."""
        ops = self.ops
        squares = 0.0
        for W in self.weights:
            squares += ops.sum_of_squares(ops.xp.reshape(W, (-1,)))
        loss += (0.5 * alpha) * squares / weight_sum
        if alpha:
            n_w = self.n_weights
            ops.add_penalty_gradient(self.grad[:n_w], self.params[:n_w], alpha)
        self.grad /= weight_sum
        return loss, self.grad
