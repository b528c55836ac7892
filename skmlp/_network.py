"""The core of skmlp: a multilayer perceptron and its backpropagation.

Nothing here knows about scikit-learn. A network with layer sizes
``n_0, n_1, ..., n_L`` has weights ``W_k`` of shape ``(n_{k-1}, n_k)`` and
biases ``b_k`` of shape ``(n_k,)`` for ``k = 1..L``. For a batch ``X = a_0``
of shape ``(n_samples, n_0)`` the forward pass is::

    z_k = a_{k-1} W_k + b_k        a_k = f(z_k)   (f = output activation at k = L)

and the backward pass applies the four matrix equations of backpropagation
(in :meth:`MLP.loss_and_grad`, numbered there as here)::

    (1) dL/dz_k     = dL/da_k * f'(z_k)          elementwise
    (2) dL/dW_k     = a_{k-1}^T  dL/dz_k
    (3) dL/db_k     = sum over samples of dL/dz_k
    (4) dL/da_{k-1} = dL/dz_k  W_k^T

At the output, the loss and activation are a canonical pair, so ``dL/dz_L``
is ``P - Y`` scaled by the sample weights (see ``_losses.py``).

All parameters live in ONE contiguous flat vector: every weight matrix first,
in layer order, then every bias vector (the packing scikit-learn's MLP uses).
``W_k`` and ``b_k`` are views into it, so an optimizer or L-BFGS updates the
whole network with one vector operation and no packing copies, and the L2
penalty touches one slice, ``params[:n_weights]``.

Array work beyond ``@`` goes through an ops object (``_ops.py``): numpy with
its buffers and in-place fast paths, or any array-API namespace (torch, CuPy)
on its device. The equations here are written once, for both.
"""

import numpy as np

from ._activations import ACTIVATIONS
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


def forward(
    X,
    weights,
    biases,
    activation,
    output,
    keep_activations=False,
    out=None,
    masks=None,
    ops=NUMPY,
):
    """Run the network on X.

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
    keep_activations : bool
        If True, return ``([a_0 = X, a_1, ..., a_L], derivative_inputs)`` for
        the backward pass, where ``a_k`` is what layer k+1 consumes (after
        dropout) and ``derivative_inputs[k]`` is what hidden layer k's f'
        reads when that is not ``a_{k+1}``: its pre-activation z (for
        ``from_input`` activations) or its output before dropout; else None.
        Otherwise return only ``a_L``.
    out : list of ndarray, optional
        One array of shape (n_samples, n_k) per layer to compute into (see
        :class:`skmlp._ops.Workspace`); new arrays when None.
    masks : list of (ndarray or None), optional
        Inverted-dropout masks, one per hidden layer (entries 0 or 1 / (1 - p);
        None for a layer without dropout). Training only.
    ops : NumpyOps or ArrayAPIOps
        The engine for X's kind of array (see ``_ops.py``).
    """
    from_input = ACTIVATIONS[activation].from_input
    keep_input = keep_activations and from_input
    a = X
    activations, derivative_inputs = [X], []
    last = len(weights) - 1
    for k, (W, b) in enumerate(zip(weights, biases, strict=True)):
        z = ops.matmul(a, W, None if out is None else out[k])  # a_{k-1} W_k
        # z_k = a_{k-1} W_k + b_k, then a_k = f(z_k): the ops add the bias
        # in the same pass as the activation.
        if k == last:
            a = ops.output_activate(output_layer(output), z, b)
        else:
            a, z_kept = ops.activate(activation, z, b, keep_input)
            mask = None if masks is None else masks[k]
            if mask is None:  # f' reads z, or the layer's output activations[k+1]
                derivative_inputs.append(z_kept)
            else:  # inverted dropout: the next layer sees f(z) * mask
                derivative_inputs.append(z_kept if from_input else a)
                a = a * mask
        if keep_activations:
            activations.append(a)
    return (activations, derivative_inputs) if keep_activations else a


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
        self._grad_weights, self._grad_biases = unflatten(
            self.grad, self.layer_sizes, xp
        )

    def forward(self, X, keep_activations=False, out=None, masks=None):
        """Output of the network for X (see :func:`forward`)."""
        return forward(
            X,
            self.weights,
            self.biases,
            self.activation,
            self.output,
            keep_activations=keep_activations,
            out=out,
            masks=masks,
            ops=self.ops,
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
        if workspace is None:
            outputs, deltas, ones = None, None, None
        else:
            outputs, deltas, ones = workspace.rows(n)
        activations, derivative_inputs = self.forward(
            X, keep_activations=True, out=outputs, masks=masks
        )
        output, P = output_layer(self.output), activations[-1]
        if sklearn_order is None:
            # The loss, and dL/dz_L = w_i (P - Y) for the canonical pairs.
            loss, delta = ops.output_loss_and_delta(output, Y, P, w)
        else:  # sum(s) dL/dz_L = s_i (P - Y); divided by sum(s) at the end
            by_column = tuple(sklearn_order) >= (1, 7)
            loss = ops.reference_loss(output, Y, P, sample_weight, by_column)
            if loss is None:  # an output of skmlp's own
                loss = ops.output_loss(output, Y, P, w)
            delta = ops.unnormalized_delta(output, Y, P, sample_weight)

        for k in range(len(self.weights) - 1, -1, -1):
            # activations[k] is a_{k-1} for the layer whose weights are weights[k].
            ops.weight_gradient(activations[k], delta, self._grad_weights[k])  # (2)
            if sklearn_order is None:
                ops.bias_gradient(delta, ones, self._grad_biases[k])  # (3) 1^T dL/dz
            else:
                ops.column_sums(delta, self._grad_biases[k])  # (3), as np.sum adds
            if k > 0:  # no dL/da_0: nothing learns from the input layer's error
                delta = ops.matmul(
                    delta, self.weights[k].T, None if deltas is None else deltas[k - 1]
                )  # (4) dL/da_{k-1} = dL/dz_k W_k^T
                # (1) dL/dz_{k-1} = dL/da * f'(z), f' read from the output (or
                # z); with dropout, the layer's output was f(z) * m, so m too.
                f_input = derivative_inputs[k - 1]
                delta = ops.activation_backward(
                    self.activation,
                    activations[k] if f_input is None else f_input,
                    delta,
                    None if masks is None else masks[k - 1],
                )

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
