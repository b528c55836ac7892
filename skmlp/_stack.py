"""A stack of layers over ONE flat parameter vector, and its loss and gradient.

:class:`Network` lays out every layer's parameters (``_layers.Param``) in one
contiguous vector: the ``penalized`` arrays (weight matrices under the L2
penalty ``alpha``) first, in layer order, then all the others in layer order.
A stack of :class:`~skmlp._layers.Dense` layers is thereby packed exactly as
scikit-learn's MLP packs its coefficients (every weight matrix, then every
bias), so optimizers, L-BFGS, warm starts, pickles and the recovery logic see
one vector whatever the layers are.

The forward pass runs the layers in order, keeping each one's ``backprop``
closure; :meth:`Network.loss_and_grad` then applies the output layer's loss
and delta (``_losses.py``) and the closures in reverse order.

With ``n_members = k > 1`` (TabM's ensembles), the last layer returns ``k n``
rows, member-major. The training loss is the MEAN of the members' losses (each
member is trained as a model of its own), never the loss of their mean
prediction: the targets and normalised sample weights are repeated for each
member and the weights divided by k. :meth:`Network.predict` averages the
members' outputs (their probabilities, for a classifier).

Parameter groups: :meth:`Network.groups` gives the runs of the flat vector
that share a learning-rate and a weight-decay multiplier, for the optimizers.
"""

import numpy as np

from ._layers import Context
from ._losses import OUTPUTS
from ._ops import NUMPY


def _output(output):
    return OUTPUTS[output] if isinstance(output, str) else output


class Network:
    """Layers over one flat parameter vector.

    Parameters
    ----------
    layers : list of Layer
        Applied in order to a batch of shape (n, n_features).
    output : str or Output
        The output activation and its loss (a key of ``_losses.OUTPUTS``).
    params : ndarray of shape (n_parameters,), optional
        The flat vector, used in place; zeros of ``dtype`` when None (call
        :meth:`initialize`).
    n_members : int, default=1
        Members of an ensemble trained as one computation (see module doc).
    ops : NumpyOps or ArrayAPIOps, default=NUMPY
    dtype : numpy dtype, default=float64
        Of a new parameter vector.
    trainable : bool, default=True
        False for prediction only: no gradient vector is allocated, and the
        layers keep nothing for a backward pass (:meth:`loss_and_grad` is
        then unavailable).
    """

    def __init__(
        self,
        layers,
        output,
        params=None,
        n_members=1,
        ops=NUMPY,
        dtype=np.float64,
        trainable=True,
    ):
        self.layers, self.output = list(layers), output
        self.n_members, self.ops = n_members, ops
        self.layout = self._layout()
        self.n_parameters = sum(stop - start for _, _, start, stop in self.layout)
        self.n_weights = sum(
            stop - start for _, p, start, stop in self.layout if p.penalized
        )
        if params is None:
            params = ops.asarray(np.zeros(self.n_parameters, dtype))
        if tuple(params.shape) != (self.n_parameters,):
            raise ValueError(
                f"params has shape {tuple(params.shape)}; these layers need "
                f"({self.n_parameters},)."
            )
        self.params = params
        self.views = self._views(params)
        if trainable:
            self.grad = ops.zeros_like(params)
            self.grad_views = self._views(self.grad)
        else:
            self.grad, self.grad_views = None, [None] * len(self.layers)

    def _layout(self):
        """(layer index, Param, start, stop) for every parameter array."""
        entries = [(i, p) for i, layer in enumerate(self.layers) for p in layer.params]
        ordered = [e for e in entries if e[1].penalized]
        ordered += [e for e in entries if not e[1].penalized]
        layout, start = [], 0
        for i, p in ordered:
            layout.append((i, p, start, start + p.size))
            start += p.size
        return layout

    def _views(self, flat):
        views = [{} for _ in self.layers]
        xp = self.ops.xp
        for i, p, start, stop in self.layout:
            part = flat[start:stop]
            views[i][p.name] = (
                part.reshape(p.shape)
                if self.ops.is_numpy
                else xp.reshape(part, p.shape)
            )
        return views

    def groups(self):
        """Runs ``(start, stop, lr_scale, wd_scale)`` covering the vector, each
        the longest stretch of entries with the same two multipliers."""
        runs = []
        for _, p, start, stop in self.layout:
            if runs and runs[-1][2:] == (p.lr_scale, p.wd_scale):
                runs[-1] = (runs[-1][0], stop, p.lr_scale, p.wd_scale)
            else:
                runs.append((start, stop, p.lr_scale, p.wd_scale))
        return runs

    def initialize(self, X, random_state):
        """Initialise every layer in order on the host, each seeing what the
        layers before it make of X (for data-dependent inits), then copy the
        vector to the engine's arrays.

        X : ndarray of shape (n, n_features), host numpy (a sample of rows).
        random_state : numpy RandomState.
        """
        host = np.zeros(
            self.n_parameters, np.asarray(self.ops.to_numpy(self.params)).dtype
        )
        views = Network(
            self.layers, self.output, host, self.n_members, trainable=False
        ).views
        ctx = Context(NUMPY)
        a = np.asarray(X, dtype=host.dtype)
        for i, layer in enumerate(self.layers):
            layer.initialize(views[i], a, random_state)
            ctx.index = i
            a, _ = layer.forward(views[i], None, a, ctx)
        self.params[...] = self.ops.asarray(host)
        return self

    def forward(self, X, ctx=None):
        """(output of the last layer, the layers' backprop closures)."""
        ctx = ctx or Context(self.ops)
        backprops = []
        a = X
        for i, layer in enumerate(self.layers):
            ctx.index = i
            a, backprop = layer.forward(self.views[i], self.grad_views[i], a, ctx)
            backprops.append(backprop)
        return a, backprops

    def activate(self, Z):
        """The output activation of the last layer's pre-activations Z."""
        output = _output(self.output)
        if self.ops.is_numpy:
            return output.activate(Z)
        return output.activate_xp(self.ops.xp, Z)

    def predict(self, X):
        """The output layer's activations, averaged over members: (n, n_outputs)."""
        Z, _ = self.forward(X)
        P = self.activate(Z)
        k = self.n_members
        if k == 1:
            return P
        return self.ops.xp.mean(self.ops.xp.reshape(P, (k, -1, P.shape[1])), axis=0)

    def _member_targets(self, Y, sample_weight, weight_sum=None):
        """Targets and normalised weights repeated for each member (weights / k):
        the loss over all rows is then the mean of the members' losses."""
        xp, k = self.ops.xp, self.n_members
        w = None
        if sample_weight is not None:
            if weight_sum is None:
                weight_sum = float(xp.sum(sample_weight))  # waits for a device
            w = sample_weight / weight_sum
        if k == 1:
            return Y, w
        concat = getattr(xp, "concat", None) or xp.concatenate
        Yk = concat([Y] * k, axis=0)
        return Yk, None if w is None else concat([w / k] * k, axis=0)

    def _penalty(self, alpha, weight_sum):
        weights = self.params[: self.n_weights]
        return 0.5 * alpha / weight_sum * self.ops.sum_of_squares(weights)

    def loss(self, X, Y, sample_weight=None, alpha=0.0, ctx=None, weight_sum=None):
        """The training objective of :meth:`loss_and_grad`, without the gradient."""
        Z, _ = self.forward(X, ctx)
        Yk, w = self._member_targets(Y, sample_weight, weight_sum)
        loss = self.ops.output_loss(_output(self.output), Yk, self.activate(Z), w)
        if alpha:
            loss += self._penalty(alpha, self._weight_sum(X, sample_weight, weight_sum))
        return loss

    def _weight_sum(self, X, sample_weight, weight_sum=None):
        if sample_weight is None:
            return X.shape[0]
        if weight_sum is not None:
            return weight_sum
        return float(self.ops.xp.sum(sample_weight))

    def loss_and_grad(
        self, X, Y, sample_weight=None, alpha=0.0, ctx=None, weight_sum=None
    ):
        """Objective and its gradient (``self.grad``, overwritten next call).

        ``L = mean over members of sum_i w_i l(y_i, p_i)
        + alpha / (2 sum_i s_i) * ||penalized parameters||^2``,
        with ``w = s / sum s`` (s: sample weights, all ones when None).
        ``weight_sum``, when the caller knows it, is ``sum s`` as a Python
        float: on a device, summing here would wait for the device.

        Returns
        -------
        loss : float, or a 0-d array of the ops' namespace
        grad : ndarray of shape (n_parameters,)
            Also dL/dX is kept as ``self.input_grad`` when ``ctx.input_grad``.
        """
        ctx = ctx or Context(self.ops, train=True)
        Z, backprops = self.forward(X, ctx)
        Yk, w = self._member_targets(Y, sample_weight, weight_sum)
        loss, delta = self.ops.output_loss_and_delta(
            _output(self.output), Yk, self.activate(Z), w
        )
        for backprop in reversed(backprops):
            delta = backprop(delta)
        self.input_grad = delta
        if alpha:
            weight_sum = self._weight_sum(X, sample_weight, weight_sum)
            loss += self._penalty(alpha, weight_sum)
            n_w = self.n_weights
            self.ops.add_penalty_gradient(
                self.grad[:n_w], self.params[:n_w], alpha / weight_sum
            )
        return loss, self.grad
