"""Layers, each with its forward pass and its hand-derived backward side by side.

A layer is configuration only (sizes, activation, fixed state such as bin
edges); its parameters are views into the network's ONE flat vector
(``_stack.Network``), handed to it on every call as a dict ``P`` with the
gradient views ``G`` beside it. The protocol, as in thinc, is::

    Y, backprop = layer.forward(P, G, X, ctx)      # Y: this layer's output
    dX = backprop(dY)                               # writes dL/dP into G

``backprop`` closes over what the forward pass kept, and returns ``dL/dX``, or
None when ``ctx`` says nothing upstream learns (the first layer). Every array
operation goes through ``ctx.ops`` (the engine: numpy, or an array-API
namespace such as torch) or its namespace ``ctx.xp``, so one layer source runs
on every engine.

Shapes: a batch is ``(rows, width)``. With an ensemble of ``k`` members (TabM's
BatchEnsemble), rows are ``k * n``, member-major: rows ``i*n .. (i+1)*n - 1``
belong to member ``i``. A member layer reshapes to ``(k, n, width)`` for its
per-member vectors and back to ``(k * n, width)`` for the shared matmul: one
matmul for all members, never a Python loop over them.

Each layer declares its parameters as :class:`Param` entries with a
learning-rate and a weight-decay multiplier (parameter groups), and whether
the drop-ins' L2 penalty ``alpha`` applies (``penalized``: the weight matrices
of :class:`Dense`).
"""

import math
from dataclasses import dataclass

import numpy as np

from ._activations import ACTIVATIONS

TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Param:
    """One parameter array of a layer: its name, shape and group settings.

    ``lr_scale`` multiplies the learning rate, ``wd_scale`` the decoupled
    weight decay; ``penalized`` entries (the drop-ins' weight matrices) are
    packed first in the flat vector, where the L2 penalty ``alpha`` reads them.
    """

    name: str
    shape: tuple
    penalized: bool = False
    lr_scale: float = 1.0
    wd_scale: float = 1.0

    @property
    def size(self):
        return math.prod(self.shape)


class Context:
    """The settings of one pass through a stack.

    Parameters
    ----------
    ops : NumpyOps or ArrayAPIOps
        The engine of the arrays.
    train : bool
        Training pass: dropout draws (or reads) masks.
    rng : numpy.random.Generator or RandomState, optional
        Where dropout's masks come from (drawn on the host).
    masks : dict, optional
        Fixed dropout masks by layer index (tests and the drop-ins' loop).
    input_grad : bool
        Whether the first layer returns dL/dX (a gradient check of the input).
    outputs, deltas : list, optional
        Per-layer scratch buffers (a drop-in workspace) for Dense layers.
    ones : ndarray, optional
        A workspace's column of ones, for equation (3) as a product.
    exact_sums : bool
        Sum equation (3) over rows as ``np.sum`` does (scikit-learn's order of
        operations, which L-BFGS parity needs) instead of as a product.
    """

    def __init__(
        self,
        ops,
        train=False,
        rng=None,
        masks=None,
        input_grad=False,
        outputs=None,
        deltas=None,
        ones=None,
        exact_sums=False,
    ):
        self.ops, self.xp = ops, ops.xp
        self.train, self.rng, self.masks = train, rng, masks
        self.input_grad = input_grad
        self.outputs, self.deltas, self.ones = outputs, deltas, ones
        self.exact_sums = exact_sums
        self.index = 0  # the layer being run, set by the stack

    def needs_input_grad(self):
        return self.index > 0 or self.input_grad

    def mask(self):
        return None if self.masks is None else self.masks.get(self.index)

    def out(self):
        return None if self.outputs is None else self.outputs[self.index]

    def delta_out(self):
        """Buffer for dL/dX of the current layer (the previous layer's delta)."""
        if self.deltas is None or self.index == 0:
            return None
        return self.deltas[self.index - 1]


def _concat(xp, arrays, axis):
    concat = getattr(xp, "concat", None) or xp.concatenate  # numpy < 2
    return concat(arrays, axis=axis)


def _permute(xp, x, axes):
    permute = getattr(xp, "permute_dims", None) or xp.transpose  # numpy < 2
    return permute(x, axes)


def _apply_activation(ops, name, z):
    """f(z) as a new array (z is left as it is)."""
    activation = ACTIVATIONS[name]
    if ops.is_numpy:
        return activation.forward(z.copy())
    return activation.forward_xp(ops.xp, z)


def _uniform(rng, bound, shape):
    return rng.uniform(-bound, bound, shape)


def _point_in_the_data(z, rng, n_rows=5):
    """Per column j of z (rows, units): sum_i d_ij z[r_ij, j] for n_rows random
    rows r_ij and weights d_j ~ Dirichlet(1, ..., 1) (normalised exponential
    draws): a random point of the column's values' convex hull."""
    units = np.arange(z.shape[1])
    rows = rng.randint(z.shape[0], size=(n_rows, z.shape[1]))
    weights = rng.exponential(size=(n_rows, z.shape[1]))
    weights /= weights.sum(axis=0)
    return (z[rows, units] * weights).sum(axis=0)


def _bias_gradient(ops, delta, ones, exact_sums, out):
    """(3) dL/db = 1^T dL/dz: as np.sum adds (scikit-learn's order, which
    L-BFGS parity needs) or as a product with a column of ones."""
    if exact_sums:
        ops.column_sums(delta, out)
    else:
        ops.bias_gradient(delta, ones, out)


class Layer:
    """Base: a layer with no parameters and no fixed state.

    ``predict_bags(P, X, ops)``, where a layer has it: the outputs of B
    copies of the layer, each with its own parameters, for prediction only
    (no backward pass), on the engine ``ops``, with the arithmetic of
    ``forward``: P's arrays have a leading bag axis (B, *shape); X is (n, d),
    one input for every copy, or (B, n, d); the output is (B, n, d_out) (or
    (n, d_out) for a layer without parameters given (n, d)). Several trained
    networks of the same layers (bags) then predict in one pass.
    """

    params = ()
    predict_bags = None

    def initialize(self, P, X, rng):
        """Fill the parameter views ``P`` (host numpy arrays) before training;
        ``X``: what this layer receives, on the host (data-dependent init)."""


class Dense(Layer):
    """A fully connected layer with its activation fused: ``a = f(z)``,

    ``z = c X W + b``, with ``c = 1`` (standard parametrisation) or
    ``c = 1 / sqrt(n_in)`` (NTK parametrisation, ``ntk=True``).

    Shapes: X (rows, n_in), W (n_in, n_out), b (n_out,), a (rows, n_out).

    With ``output`` (an ``_losses.Output``), f is the output activation,
    fused with the bias add, and backprop receives dL/dz itself (the loss's
    delta): the last layer of a drop-in network.

    The four equations of backpropagation, for ``delta = dL/dz``::

        (1) dL/dz = dL/da * f'(z)          (times dropout's mask m when the
                                            next layer saw f(z) * m)
        (2) dL/dW = c X^T dL/dz
        (3) dL/db = 1^T dL/dz              (sum over rows)
        (4) dL/dX = c dL/dz W^T

    f' is read from the output a (or from z for ``from_input`` activations),
    as ``_activations.py`` defines it.

    Initialisation: ``init='glorot'`` draws scikit-learn's MLP init (uniform
    in +-sqrt(6 / (n_in + n_out)), +-sqrt(2 / ...) for logistic) for W and b;
    ``init='normal'`` (for ``ntk=True``) draws W from N(0, 1), b = 0;
    ``init='zeros'`` starts an output layer at 0 (W = 0, b = 0);
    ``init='data'`` (RealMLP's, with ``ntk=True``) draws W from N(0, 1),
    rescales each unit so that its pre-activation ``c X W`` has unit standard
    deviation on the initialisation rows, and sets each bias to minus a
    random convex combination of that pre-activation at 5 random rows
    (weights from a flat Dirichlet; RealMLP's "he+5"), so every unit starts
    with its kink inside the data.
    """

    def __init__(
        self,
        n_in,
        n_out,
        activation="identity",
        *,
        ntk=False,
        init="glorot",
        penalized=True,
        weight_lr_scale=1.0,
        weight_wd_scale=1.0,
        bias_lr_scale=1.0,
        bias_wd_scale=1.0,
        output=None,
    ):
        self.n_in, self.n_out, self.activation = n_in, n_out, activation
        self.ntk, self.init = ntk, init
        self.output = output
        self._from_input = ACTIVATIONS[activation].from_input
        self.scale = 1 / math.sqrt(n_in) if ntk else 1.0
        self.params = (
            Param("W", (n_in, n_out), penalized, weight_lr_scale, weight_wd_scale),
            Param("b", (n_out,), False, bias_lr_scale, bias_wd_scale),
        )

    def initialize(self, P, X, rng):
        if self.init == "data":
            W = rng.standard_normal((self.n_in, self.n_out))
            z = (X @ W) * self.scale
            std = z.std(axis=0)
            std[~(std > 0)] = 1.0  # a unit no row moves keeps its scale
            P["W"][...] = W / std
            P["b"][...] = -_point_in_the_data(z / std, rng)
            return
        if self.init == "normal":  # NTK: N(0, 1) weights, zero biases
            P["W"][...] = rng.standard_normal((self.n_in, self.n_out))
            P["b"][...] = 0.0
            return
        if self.init == "zeros":  # an output layer that starts at 0
            P["W"][...] = 0.0
            P["b"][...] = 0.0
            return
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = math.sqrt(factor / (self.n_in + self.n_out))
        P["W"][...] = _uniform(rng, bound, (self.n_in, self.n_out))
        P["b"][...] = _uniform(rng, bound, (self.n_out,))

    def _activate(self, ops, z, b):
        """(a, what f' reads): a = f(c z + b), in place in z where the engine
        can; f' reads z for ``from_input`` activations, else a."""
        if self.ntk:
            fused = getattr(ops, "scale_bias", None)
            if self.output is None and self.activation == "identity" and fused:
                if fused(z, b, self.scale) is not None:  # z = c z + b, one pass
                    return z, z
            z *= self.scale
        if self.output is not None:  # the bias add fused with the output's f
            return ops.output_activate(self.output, z, b), None
        a, z_kept = ops.activate(self.activation, z, b, self._from_input)
        return a, (z_kept if self._from_input else a)

    def predict(self, W, b, X, ops, out=None):
        """The layer's output for X, keeping nothing for a backward pass."""
        return self._activate(ops, ops.matmul(X, W, out), b)[0]

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.) An output layer returns c X W + b: its
        output activation is the caller's."""
        xp = ops.xp
        z = xp.matmul(X, P["W"])
        if self.ntk:
            z = z * self.scale
        z = z + P["b"][:, None, :]
        if self.output is not None:
            return z
        return _apply_activation(ops, self.activation, z)

    def forward(self, P, G, X, ctx):
        ops, W, k = ctx.ops, P["W"], ctx.index
        z = ops.matmul(X, W, None if ctx.outputs is None else ctx.outputs[k])  # X W
        a, f_input = self._activate(ops, z, P["b"])
        mask = None if ctx.masks is None else ctx.masks.get(k)
        if mask is not None and self.output is None:
            a = a * mask  # inverted dropout: the next layer sees f(z) m
        if G is None:  # a prediction: nothing to learn
            return a, None
        needs_input_grad = k > 0 or ctx.input_grad
        delta_out = None if ctx.deltas is None or k == 0 else ctx.deltas[k - 1]
        ones, exact_sums, ntk, c = ctx.ones, ctx.exact_sums, self.ntk, self.scale
        fused_sums = None
        if ntk and not exact_sums:
            fused_sums = getattr(ops, "column_sums_then_scale", None)

        def backprop(dA):
            # (1) dL/dz = dL/da * f'(z) (* m); at the output, dA is dL/dz.
            delta = dA
            if self.output is None:
                delta = ops.activation_backward(self.activation, f_input, dA, mask)
            if not ntk:
                ops.weight_gradient(X, delta, G["W"])  # (2) dL/dW = X^T dL/dz
                _bias_gradient(ops, delta, ones, exact_sums, G["b"])  # (3)
            else:  # z = c X W + b: c scales (2) and (4), not (3)
                # the compiled engine sums (3) and scales delta in one pass
                if fused_sums is None or fused_sums(delta, G["b"], c) is None:
                    _bias_gradient(ops, delta, ones, exact_sums, G["b"])
                    delta = delta * c
                ops.weight_gradient(X, delta, G["W"])  # (2)
            if not needs_input_grad:
                return None
            return ops.matmul(delta, W.T, delta_out)  # (4) dL/dX = dL/dz W^T

        return a, backprop


class Activation(Layer):
    """``Y = f(X)`` elementwise, for stacks whose linear layers carry none."""

    def __init__(self, activation):
        self.activation = activation

    def forward(self, P, G, X, ctx):
        Y = _apply_activation(ctx.ops, self.activation, X)
        f_input = X if ACTIVATIONS[self.activation].from_input else Y

        def backprop(dY):
            return ctx.ops.activation_backward(self.activation, f_input, dY * 1)

        return Y, backprop


class ParametricActivation(Layer):
    """RealMLP's parametric activation, one alpha per unit, alpha = 1 at init:

    ``Y = X + alpha * (f(X) - X)``  (alpha = 0: identity; alpha = 1: f).

    Shapes: X, Y (rows, width); alpha (width,). Backward::

        dL/dalpha = sum over rows of dL/dY * (f(X) - X)
        dL/dX     = dL/dY * (1 - alpha) + f'(X) * (alpha dL/dY)
    """

    def __init__(self, width, activation, lr_scale=1.0, wd_scale=0.0):
        self.width, self.activation = width, activation
        self.params = (Param("alpha", (width,), False, lr_scale, wd_scale),)

    def initialize(self, P, X, rng):
        P["alpha"][...] = 1.0

    def forward(self, P, G, X, ctx):
        xp, alpha = ctx.xp, P["alpha"]
        fused = getattr(ctx.ops, "parametric_forward", None)
        done = fused(self.activation, X, alpha) if fused else None
        if done is not None:  # the compiled engine: Y, f(X) - X and f'(X)
            Y, difference, slope = done

            def fused_backprop(dY):
                dX = ctx.ops.parametric_backward(
                    dY, alpha, difference, slope, G["alpha"]
                )
                if dX is not None:
                    return dX
                G["alpha"][...] = xp.sum(dY * difference, axis=0)
                return dY * (1.0 - alpha) + (dY * alpha) * slope

            return Y, fused_backprop
        fX = _apply_activation(ctx.ops, self.activation, X)
        difference = fX - X
        Y = X + alpha * difference
        f_input = X if ACTIVATIONS[self.activation].from_input else fX

        def backprop(dY):
            G["alpha"][...] = xp.sum(dY * difference, axis=0)
            through_f = ctx.ops.activation_backward(
                self.activation, f_input, dY * alpha
            )
            return dY * (1.0 - alpha) + through_f

        return Y, backprop

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.)"""
        difference = _apply_activation(ops, self.activation, X) - X
        return X + P["alpha"][:, None, :] * difference


class Scale(Layer):
    """A learnable per-feature scale (RealMLP's first layer, lr x6 there):

    ``Y = X * s``, s (width,) initialised to 1. Backward::

        dL/ds = sum over rows of dL/dY * X          dL/dX = dL/dY * s
    """

    def __init__(self, width, lr_scale=6.0, wd_scale=0.0):
        self.width = width
        self.params = (Param("s", (width,), False, lr_scale, wd_scale),)

    def initialize(self, P, X, rng):
        P["s"][...] = 1.0

    def forward(self, P, G, X, ctx):
        xp, s = ctx.xp, P["s"]

        def backprop(dY):
            G["s"][...] = xp.sum(dY * X, axis=0)
            return dY * s

        return X * s, backprop

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.)"""
        return X * P["s"][:, None, :]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def dropout_bits(size, seed):
    """``size`` 16-bit random numbers from a 64-bit ``seed``: entry i is lane
    i % 4 (bits 16 (i % 4) and up) of splitmix64's output for the counter
    ``seed + (i // 4 + 1) * golden`` (Steele et al., 2014). A counter-based
    generator: the compiled engine's kernel (``_numba._dropout``) computes the
    same bits element by element, so both engines draw the same masks."""
    counters = np.arange(1, (size + 3) // 4 + 1, dtype=np.uint64)
    z = np.uint64(seed) + counters * _GOLDEN  # wraps modulo 2^64
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z ^= z >> np.uint64(31)
    lanes = [(z >> np.uint64(16 * k)) & np.uint64(0xFFFF) for k in range(4)]
    return np.stack(lanes, axis=1).ravel()[:size].astype(np.uint16)


def _draw_seed(rng):
    """A 63-bit seed from a RandomState or a Generator."""
    if hasattr(rng, "integers"):
        return int(rng.integers(np.iinfo(np.int64).max))
    return int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64))


class Dropout(Layer):
    """Inverted dropout: ``Y = X * m``, m_ij = 1 / (1 - rate) with probability
    1 - rate, else 0; identity outside training. ``dL/dX = dL/dY * m``.

    Each call draws one seed from ``ctx.rng``; the mask's 16-bit random
    numbers come from it through a counter-based generator
    (:func:`dropout_bits`), the same on every engine. The rate is rounded to a
    multiple of 1/65536, and the kept entries are scaled by the exact inverse
    of the resulting keep probability, so E[m] = 1 still holds exactly.
    """

    def __init__(self, rate):
        self.rate = rate

    def forward(self, P, G, X, ctx):
        threshold = min(round(self.rate * 65536), 65535)
        if not ctx.train or threshold == 0:
            return X, lambda dY: dY
        scale = 65536 / (65536 - threshold)
        mask = ctx.mask()
        if mask is None:
            seed = _draw_seed(ctx.rng)
            fused = getattr(ctx.ops, "dropout", None)
            done = fused(X, seed, threshold, scale) if fused else None
            if done is not None:  # the compiled engine: X m and m, one pass
                Y, mask = done
                return Y, lambda dY: dY * mask
            bits = dropout_bits(math.prod(X.shape), seed).reshape(X.shape)
            if ctx.ops.is_numpy:
                mask = np.multiply(bits >= threshold, scale, dtype=X.dtype)
            else:
                host = (bits >= threshold) * scale
                mask = ctx.ops.astype_like(ctx.ops.asarray(host), X)
        return X * mask, lambda dY: dY * mask

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.) The identity, as outside training."""
        return X


class _ColumnSplit:
    """The numeric columns an embedding encodes, and the ones it passes on.

    Output columns: every numeric column's block first (in ``numeric``
    order), then the other input columns in their order.
    """

    def __init__(self, n_in, numeric):
        self.n_in = n_in
        self.numeric = np.asarray(numeric, dtype=np.intp)
        self.others = np.setdiff1d(np.arange(n_in), self.numeric)
        order = np.concatenate([self.numeric, self.others])
        self.inverse = np.argsort(order)  # block columns -> input positions

    def split(self, ctx, X):
        xp = ctx.xp
        numeric = xp.take(X, ctx.ops.asarray(self.numeric), axis=1)
        others = xp.take(X, ctx.ops.asarray(self.others), axis=1)
        return numeric, others

    def split_bags(self, ops, X, n_bags):
        """numeric (..., n, m) and others (B, n, rest) of X (n, d) or (B, n, d)."""
        xp = ops.xp
        numeric = xp.take(X, ops.asarray(self.numeric), axis=X.ndim - 1)
        others = xp.take(X, ops.asarray(self.others), axis=X.ndim - 1)
        return numeric, xp.broadcast_to(others, (n_bags, *others.shape[-2:]))

    def merge_gradients(self, ctx, d_numeric, d_others):
        """dL/dX in input column order from the two parts' gradients."""
        xp = ctx.xp
        joined = _concat(xp, [d_numeric, d_others], axis=1)
        return xp.take(joined, ctx.ops.asarray(self.inverse), axis=1)


class PeriodicEmbedding(Layer):
    """RealMLP's "PBLD" numeric embedding: for each numeric column j,

    ``h_j = cos(2 pi w_j x_j + phi_j)``  (w_j, phi_j in R^F, F = 16),
    ``e_j = h_j V_j + c_j``              (V_j: F x p, p = 3),

    and the layer outputs ``[x_j, e_j]`` (1 + p values) for every numeric
    column, then the other columns unchanged. Init: w ~ N(0, sigma^2)
    (sigma = 0.1), phi ~ U[-pi, pi], V and c uniform in +-1/sqrt(F); learning
    rate x0.1 for all four; weight decay x ``wd_scale`` for w and V, x
    ``bias_wd_scale`` for phi and c.

    Shapes (m numeric columns, n rows): w, phi (m, F); V (m, F, p); c (m, p);
    internally u, h (m, n, F) and e (m, n, p): the m columns' small linear
    maps are one batched matmul. Backward, with g = dL/de (m, n, p)::

        dL/dc = sum_n g          dL/dV = h^T g          dL/dh = g V^T
        dL/du = -sin(u) dL/dh    dL/dphi = sum_n dL/du
        dL/dw = 2 pi sum_n x dL/du
        dL/dx_j = dL/d(x_j passed on) + 2 pi sum_F w dL/du
    """

    def __init__(
        self,
        n_in,
        numeric,
        n_frequencies=16,
        n_embedding=3,
        sigma=0.1,
        lr_scale=0.1,
        wd_scale=0.0,
        bias_wd_scale=0.0,
    ):
        self.columns = _ColumnSplit(n_in, numeric)
        self.sigma = sigma
        m, F, p = len(self.columns.numeric), n_frequencies, n_embedding
        self.n_out = m * (1 + p) + len(self.columns.others)
        self.params = (
            Param("w", (m, F), False, lr_scale, wd_scale),
            Param("phi", (m, F), False, lr_scale, bias_wd_scale),
            Param("V", (m, F, p), False, lr_scale, wd_scale),
            Param("c", (m, p), False, lr_scale, bias_wd_scale),
        )

    def initialize(self, P, X, rng):
        m, F = P["w"].shape
        P["w"][...] = rng.normal(scale=self.sigma, size=(m, F))
        P["phi"][...] = rng.uniform(-math.pi, math.pi, (m, F))
        P["V"][...] = _uniform(rng, 1 / math.sqrt(F), P["V"].shape)
        P["c"][...] = _uniform(rng, 1 / math.sqrt(F), P["c"].shape)

    def forward(self, P, G, X, ctx):
        xp = ctx.xp
        w, phi, V = P["w"], P["phi"], P["V"]
        fused = getattr(ctx.ops, "periodic_forward", None)
        columns = (self.columns.numeric, self.columns.others)
        kept = fused(X, *columns, w, phi, V, P["c"]) if fused else None
        if kept is not None:  # the compiled engine: one kernel each way
            input_grad = ctx.needs_input_grad()

            def fused_backprop(dY):
                return ctx.ops.periodic_backward(
                    dY, X, *columns, kept, w, G, input_grad
                )

            return kept[0], fused_backprop
        numeric, others = self.columns.split(ctx, X)  # (n, m), (n, rest)
        x = _permute(xp, numeric, (1, 0))[:, :, None]  # (m, n, 1)
        u = (TWO_PI * x) * w[:, None, :] + phi[:, None, :]  # (m, n, F)
        h = xp.cos(u)
        e = xp.matmul(h, V) + P["c"][:, None, :]  # (m, n, p)
        blocks = _concat(xp, [x, e], axis=2)  # (m, n, 1 + p)
        n = X.shape[0]
        Y = _concat(
            xp, [xp.reshape(_permute(xp, blocks, (1, 0, 2)), (n, -1)), others], axis=1
        )
        needs_input_grad = ctx.needs_input_grad()

        def backprop(dY):
            m, width = w.shape[0], blocks.shape[2]
            d_blocks = _permute(
                xp, xp.reshape(dY[:, : m * width], (n, m, width)), (1, 0, 2)
            )
            g = d_blocks[:, :, 1:]  # dL/de (m, n, p)
            G["c"][...] = xp.sum(g, axis=1)
            G["V"][...] = xp.matmul(_permute(xp, h, (0, 2, 1)), g)
            du = -xp.sin(u) * xp.matmul(g, _permute(xp, V, (0, 2, 1)))
            G["phi"][...] = xp.sum(du, axis=1)
            G["w"][...] = TWO_PI * xp.sum(du * x, axis=1)
            if not needs_input_grad:
                return None
            dx = d_blocks[:, :, 0] + TWO_PI * xp.sum(du * w[:, None, :], axis=2)
            return self.columns.merge_gradients(
                ctx, _permute(xp, dx, (1, 0)), dY[:, m * width :]
            )

        return Y, backprop

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.)"""
        xp = ops.xp
        w, phi, V, c = P["w"], P["phi"], P["V"], P["c"]
        n_bags, n = w.shape[0], X.shape[-2]
        numeric, others = self.columns.split_bags(ops, X, n_bags)
        last_two = (numeric.ndim - 1, numeric.ndim - 2)
        x = _permute(xp, numeric, (*range(numeric.ndim - 2), *last_two))
        x = x[..., None]  # (B or none, m, n, 1)
        u = (TWO_PI * x) * w[:, :, None, :] + phi[:, :, None, :]  # (B, m, n, F)
        e = xp.matmul(xp.cos(u), V) + c[:, :, None, :]  # (B, m, n, p)
        x = xp.broadcast_to(x, (*e.shape[:-1], 1))
        blocks = _concat(xp, [x, e], axis=3)  # (B, m, n, 1 + p)
        flat = xp.reshape(_permute(xp, blocks, (0, 2, 1, 3)), (n_bags, n, -1))
        return _concat(xp, [flat, others], axis=2)


class PiecewiseLinearEncoding(Layer):
    """Piecewise-linear encoding of numeric columns (Gorishniy et al., 2022).

    Each numeric column j gets T bins with edges ``q_0 < ... < q_T`` at the
    training rows' quantiles (``initialize``: fixed state, not parameters).
    Component t of the encoding is ``(x - q_{t-1}) / (q_t - q_{t-1})``
    clipped to [0, 1]; the first component is not clipped below, the last
    not above, so the encoding extrapolates linearly. A bin of zero width (a
    repeated quantile) is the step ``x >= q_t``. Output: T values per numeric
    column, then the other columns. No parameters; dL/dx_j sums
    ``dL/de_t / width_t`` over the components whose clip is inactive.
    """

    def __init__(self, n_in, numeric, n_bins=48):
        self.columns = _ColumnSplit(n_in, numeric)
        self.n_bins = n_bins
        self.n_out = len(self.columns.numeric) * n_bins + len(self.columns.others)
        self.edges = None  # (m, T + 1), set by initialize

    def initialize(self, P, X, rng):
        """The bin edges, from the first initialisation's rows; a later one
        (another bag of the same layers) keeps them, since the weights
        already trained read the features through them."""
        if self.edges is not None:
            return
        numeric = np.asarray(X, dtype=np.float64)[:, self.columns.numeric]
        levels = np.linspace(0, 1, self.n_bins + 1)
        self.edges = np.quantile(numeric, levels, axis=0).T
        self._host_bins = self._bins_from_edges()

    def _bins_from_edges(self):
        """Per flattened (column, bin): lower edge, 1 / width (0 for a zero
        width), has a width, first bin (open below), last bin (open above),
        live: all but the repeats of a zero-width bin (a value that holds
        many quantiles, as in a column of a few distinct values, gets one
        step ``x >= q``; its repeats would be copies of it, and output 0)."""
        lower = self.edges[:, :-1]
        width = self.edges[:, 1:] - lower
        inverse = np.where(width > 0, 1 / np.where(width > 0, width, 1), 0.0)
        low_open = np.zeros_like(width, dtype=bool)
        low_open[:, 0] = True
        high_open = np.zeros_like(low_open)
        high_open[:, -1] = True
        live = np.ones_like(low_open)
        live[:, 1:] = (width[:, 1:] > 0) | (lower[:, 1:] != lower[:, :-1])
        return tuple(
            a.ravel() for a in (lower, inverse, width > 0, low_open, high_open, live)
        )

    def _bins(self, ctx, like):
        """The bins on the engine, computed once per fit on the host."""
        if getattr(self, "_host_bins", None) is None:  # edges set by hand
            self._host_bins = self._bins_from_edges()
        lower, inverse, has_width, low_open, high_open, live = self._host_bins
        ops = ctx.ops
        return (
            ops.astype_like(ops.asarray(lower), like),
            ops.astype_like(ops.asarray(inverse), like),
            ops.asarray(has_width),
            ops.asarray(low_open),
            ops.asarray(high_open),
            ops.asarray(live),
        )

    def forward(self, P, G, X, ctx):
        xp = ctx.xp
        numeric, others = self.columns.split(ctx, X)
        n, m, T = X.shape[0], numeric.shape[1], self.n_bins
        lower, inverse, has_width, low_open, high_open, live = self._bins(ctx, X)
        x = xp.reshape(
            xp.broadcast_to(numeric[:, :, None], (n, m, T)), (n, m * T)
        )  # each column repeated over its bins
        ramp = (x - lower) * inverse
        zeros, ones = xp.zeros_like(ramp), xp.ones_like(ramp)
        step = xp.where(x >= lower, ones, zeros)  # zero-width bins
        ramp = xp.where(has_width, ramp, step)
        encoded = xp.where(low_open | (ramp > 0), ramp, zeros)
        encoded = xp.where(high_open | (encoded < 1), encoded, ones)
        encoded = xp.where(live, encoded, zeros)  # a zero-width bin's repeats
        inside = (encoded == ramp) & has_width  # the clip is inactive
        inside &= (ramp > 0) | low_open
        inside &= (ramp < 1) | high_open
        slope = xp.where(inside, inverse, xp.zeros_like(inverse))
        Y = _concat(xp, [encoded, others], axis=1)
        needs_input_grad = ctx.needs_input_grad()

        def backprop(dY):
            if not needs_input_grad:
                return None
            d_encoded = xp.reshape(dY[:, : m * T] * slope, (n, m, T))
            return self.columns.merge_gradients(
                ctx, xp.sum(d_encoded, axis=2), dY[:, m * T :]
            )

        return Y, backprop

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.) No parameters: the bags share the encoding,
        so X (n, d) gives one output (n, d_out) for them all."""
        xp = ops.xp
        rows = xp.reshape(X, (-1, X.shape[-1]))
        Y, _ = self.forward(P, None, rows, Context(ops))
        return xp.reshape(Y, (*X.shape[:-1], Y.shape[-1]))


class EnsembleAdapter(Layer):
    """TabM-mini's adapter: the start of the member axis.

    ``Y_i = X * r_i`` for members i = 1..k: X (n, width) -> Y (k n, width),
    r (k, width) initialised to random signs (+-1), so that the members of a
    shared MLP behind it differ from the first step. Backward::

        dL/dr_i = sum over rows of dL/dY_i * X      dL/dX = sum_i dL/dY_i * r_i
    """

    def __init__(self, n_members, width, init="random_signs", lr_scale=1.0):
        self.n_members, self.width, self.init = n_members, width, init
        self.params = (Param("r", (n_members, width), False, lr_scale, 0.0),)

    def initialize(self, P, X, rng):
        if self.init == "random_signs":
            P["r"][...] = 2.0 * rng.randint(0, 2, size=P["r"].shape) - 1.0
        else:
            P["r"][...] = 1.0

    def forward(self, P, G, X, ctx):
        xp, r, k = ctx.xp, P["r"], self.n_members
        n = X.shape[0]
        Y = xp.reshape(X[None, :, :] * r[:, None, :], (k * n, self.width))
        needs_input_grad = ctx.needs_input_grad()

        def backprop(dY):
            d3 = xp.reshape(dY, (k, n, self.width))
            G["r"][...] = xp.sum(d3 * X[None, :, :], axis=1)
            return xp.sum(d3 * r[:, None, :], axis=0) if needs_input_grad else None

        return Y, backprop


class BatchEnsembleDense(Layer):
    """TabM's BatchEnsemble linear layer: k members sharing one W,

    ``Y_i = ((X_i * r_i) W c) * s_i + b_i``, c = 1 or 1/sqrt(n_in) (``ntk``).

    Shapes: X (k n, n_in), or (n, n_in) with ``expand=True`` (every member
    reads the same rows: the first layer); W (n_in, n_out); r (k, n_in);
    s, b (k, n_out); Y (k n, n_out). The members' rows go through W as one
    (k n, n_in) @ (n_in, n_out) product. Init: W and b uniform in
    +-1/sqrt(n_in); r random signs when ``random_signs`` (TabM: only the first
    layer's), else 1; s = 1. Backward, with g_i = dL/dY_i and z_i = (X_i r_i) W c::

        dL/db_i = sum_n g_i     dL/ds_i = sum_n g_i * z_i     dz = g * s
        dL/dW = c (X r)^T dz    d(X r) = c dz W^T
        dL/dr_i = sum_n d(X r)_i * X_i     dL/dX_i = d(X r)_i * r_i
    """

    def __init__(
        self, n_in, n_out, n_members, *, expand=False, random_signs=False, ntk=False
    ):
        self.n_in, self.n_out, self.n_members = n_in, n_out, n_members
        self.expand, self.random_signs = expand, random_signs
        self.scale = 1 / math.sqrt(n_in) if ntk else 1.0
        k = n_members
        self.params = (
            Param("W", (n_in, n_out)),
            Param("r", (k, n_in), wd_scale=0.0),
            Param("s", (k, n_out), wd_scale=0.0),
            Param("b", (k, n_out), wd_scale=0.0),
        )

    def initialize(self, P, X, rng):
        bound = 1 / math.sqrt(self.n_in)
        P["W"][...] = _uniform(rng, bound, P["W"].shape)
        P["b"][...] = _uniform(rng, bound, P["b"].shape)
        P["s"][...] = 1.0
        if self.random_signs:
            P["r"][...] = 2.0 * rng.randint(0, 2, size=P["r"].shape) - 1.0
        else:
            P["r"][...] = 1.0

    def forward(self, P, G, X, ctx):
        xp, k = ctx.xp, self.n_members
        W, r, s = P["W"], P["r"], P["s"]
        n = X.shape[0] if self.expand else X.shape[0] // k
        X3 = X[None, :, :] if self.expand else xp.reshape(X, (k, n, self.n_in))
        Xr = xp.reshape(X3 * r[:, None, :], (k * n, self.n_in))
        z3 = xp.reshape(xp.matmul(Xr, W) * self.scale, (k, n, self.n_out))
        Y = xp.reshape(z3 * s[:, None, :] + P["b"][:, None, :], (k * n, self.n_out))
        needs_input_grad = ctx.needs_input_grad()

        def backprop(dY):
            g = xp.reshape(dY, (k, n, self.n_out))
            G["b"][...] = xp.sum(g, axis=1)
            G["s"][...] = xp.sum(g * z3, axis=1)
            dz = xp.reshape(g * s[:, None, :], (k * n, self.n_out)) * self.scale
            G["W"][...] = xp.matmul(Xr.T, dz)
            dXr = xp.reshape(xp.matmul(dz, W.T), (k, n, self.n_in))
            G["r"][...] = xp.sum(dXr * X3, axis=1)
            if not needs_input_grad:
                return None
            dX3 = dXr * r[:, None, :]
            if self.expand:
                return xp.sum(dX3, axis=0)
            return xp.reshape(dX3, (k * n, self.n_in))

        return Y, backprop


class MemberHeads(Layer):
    """k separate linear output heads, one per member: ``Y_i = X_i W_i + b_i``.

    Shapes: X (k n, n_in); W (k, n_in, n_out); b (k, n_out); Y (k n, n_out):
    one batched matmul (k, n, n_in) @ (k, n_in, n_out). Init uniform in
    +-1/sqrt(n_in), or 0 (``init='zeros'``). Backward::

        dL/dW_i = X_i^T g_i     dL/db_i = sum_n g_i     dL/dX_i = g_i W_i^T
    """

    def __init__(self, n_in, n_out, n_members, init="uniform"):
        self.n_in, self.n_out, self.n_members = n_in, n_out, n_members
        self.init = init
        self.params = (
            Param("W", (n_members, n_in, n_out)),
            Param("b", (n_members, n_out), wd_scale=0.0),
        )

    def initialize(self, P, X, rng):
        if self.init == "zeros":  # every head starts at 0, as Dense's 'zeros'
            P["W"][...] = 0.0
            P["b"][...] = 0.0
            return
        bound = 1 / math.sqrt(self.n_in)
        P["W"][...] = _uniform(rng, bound, P["W"].shape)
        P["b"][...] = _uniform(rng, bound, P["b"].shape)

    def forward(self, P, G, X, ctx):
        xp, k, W = ctx.xp, self.n_members, P["W"]
        n = X.shape[0] // k
        X3 = xp.reshape(X, (k, n, self.n_in))
        Y = xp.matmul(X3, W) + P["b"][:, None, :]
        needs_input_grad = ctx.needs_input_grad()

        def backprop(dY):
            g = xp.reshape(dY, (k, n, self.n_out))
            G["W"][...] = xp.matmul(_permute(xp, X3, (0, 2, 1)), g)
            G["b"][...] = xp.sum(g, axis=1)
            if not needs_input_grad:
                return None
            dX = xp.matmul(g, _permute(xp, W, (0, 2, 1)))
            return xp.reshape(dX, (k * n, self.n_in))

        return xp.reshape(Y, (k * n, self.n_out)), backprop


class CategoricalEmbedding(Layer):
    """Learned embeddings of integer-coded categorical columns.

    Column j holds codes 0..C_j - 1 (0: missing or unknown, as
    ``TabularPreprocessor`` codes them) and becomes the row ``E_j[code]`` of
    its table E_j (C_j, d). Output: every code column's d values first (in
    ``columns`` order), then the other columns. As a product with the one-hot
    matrix O_j (n, C_j) of the codes, ``e_j = O_j E_j``, so the backward pass
    is ``dL/dE_j = O_j^T dL/de_j``. Codes are indices, not numbers: their
    gradient is 0. Init: N(0, 1/d) entries.
    """

    def __init__(self, n_in, columns, cardinalities, dim=8, lr_scale=1.0):
        self.columns = _ColumnSplit(n_in, columns)
        self.cardinalities = [int(c) for c in cardinalities]
        self.dim = dim
        self.n_out = len(self.cardinalities) * dim + len(self.columns.others)
        self.params = tuple(
            Param(f"E{i}", (c, dim), False, lr_scale, 0.0)
            for i, c in enumerate(self.cardinalities)
        )

    def initialize(self, P, X, rng):
        for i, c in enumerate(self.cardinalities):
            P[f"E{i}"][...] = rng.normal(
                scale=1 / math.sqrt(self.dim), size=(c, self.dim)
            )

    def _one_hot(self, xp, codes, c):
        slots = xp.arange(c, dtype=codes.dtype)
        hit = codes[:, None] == slots[None, :]
        return xp.where(hit, xp.ones_like(hit, dtype=codes.dtype), 0 * codes[:, None])

    def forward(self, P, G, X, ctx):
        xp = ctx.xp
        codes, others = self.columns.split(ctx, X)
        # e_j = O_j E_j is row code of E_j: gathered (exactly the product for
        # finite tables, without an (n, C_j) matrix per column); the one-hot
        # matrices are built for the backward pass only.
        blocks = [
            ctx.ops.take_rows(P[f"E{i}"], ctx.ops.indices(codes[:, i]))
            for i in range(len(self.cardinalities))
        ]
        Y = _concat(xp, blocks + [others], axis=1)
        needs_input_grad, d = ctx.needs_input_grad(), self.dim

        def backprop(dY):
            for i, c in enumerate(self.cardinalities):
                O = self._one_hot(xp, codes[:, i], c)
                G[f"E{i}"][...] = xp.matmul(O.T, dY[:, i * d : (i + 1) * d])
            if not needs_input_grad:
                return None
            n_codes = len(self.cardinalities)
            return self.columns.merge_gradients(
                ctx, xp.zeros_like(codes), dY[:, n_codes * d :]
            )

        return Y, backprop

    def predict_bags(self, P, X, ops):
        """(Layer.predict_bags.)"""
        xp = ops.xp
        n_bags = P["E0"].shape[0] if self.cardinalities else 1
        codes, others = self.columns.split_bags(ops, X, n_bags)
        blocks = []
        for i in range(len(self.cardinalities)):
            E = P[f"E{i}"]  # (B, C_i, d)
            if codes.ndim == 2:  # one input for every bag: the same rows of each
                blocks.append(xp.take(E, ops.indices(codes[:, i]), axis=1))
            else:  # each bag its own codes
                rows = [
                    xp.take(E[b, ...], ops.indices(codes[b, :, i]), axis=0)
                    for b in range(n_bags)
                ]
                blocks.append(xp.stack(rows))
        return _concat(xp, blocks + [others], axis=2)
