"""The array operations beneath the four equations, one engine per kind of array.

The core (``_network.py``), the optimizers and the training loop do all their
array work beyond ``@`` through an *ops* object, chosen once per fit from the
training data (:func:`get_ops`):

- :data:`NUMPY` (:class:`NumpyOps`) for numpy arrays and scipy.sparse input:
  writes into preallocated buffers (``out=``), works in place, and runs long
  elementwise passes in cache-sized chunks. Every such trick lives here.
- :class:`ArrayAPIOps` for any other array-API namespace (torch on CPU, CUDA
  or MPS, CuPy, array-api-strict) under scikit-learn's
  ``array_api_dispatch``: the same operations written with the standard's
  functions, returning new arrays, on the arrays' own device.

Both implement the same small set: matrix products into a buffer, the bias
add, an activation's forward and backward, an output layer's activation,
loss and delta, the L2 penalty, the SGD and Adam updates, and gathering
minibatch rows. The activations' and losses' own formulas sit in
``_activations.py`` and ``_losses.py``, each numpy version beside its generic
one. ``tests/test_ops.py`` runs every operation on both and compares them.
"""

import math

import numpy as np

from ._activations import ACTIVATIONS
from ._losses import reference_loss, unnormalized_delta

CHUNK = 1 << 15  # elements per chunk: 128 KiB of float32, 256 KiB of float64


def over_range(update, arrays, start, stop, chunk=CHUNK):
    """``update(*chunk_views, scratch)`` over [start, stop) of the arrays, in
    chunks of at most ``chunk`` elements (the scratch array is shared)."""
    if stop <= start:
        return
    scratch = np.empty(min(chunk, stop - start), dtype=arrays[0].dtype)
    for begin in range(start, stop, chunk):
        end = min(begin + chunk, stop)
        update(*(a[begin:end] for a in arrays), scratch[: end - begin])


def _update_in_chunks(update, params, grad, moments, n_weights, l2):
    """Run ``update(p, g, *moments, scratch)`` over the parameters in chunks.

    A numpy expression such as ``p -= lr * m / (np.sqrt(v) + eps)`` makes a
    full pass (and a full-size temporary) per operation; chunk by chunk each
    chunk stays in cache and the only temporary is one small scratch array.
    With l2 > 0, ``l2 * params`` is first added to the weights' part of the
    gradient (the first ``n_weights`` entries), in the same pass.
    """
    if params.size <= CHUNK:  # a small network: the fewest numpy calls
        scratch = np.empty(params.size, dtype=params.dtype)
        if l2:
            w = slice(0, n_weights)
            _add_penalty_gradient(grad[w], params[w], l2, scratch[w])
        update(params, grad, *moments, scratch)
        return
    arrays = (params, grad, *moments)

    def with_penalty(p, g, *rest):
        _add_penalty_gradient(g, p, l2, rest[-1])
        update(p, g, *rest)

    cut = n_weights if l2 else 0  # the penalty applies below the cut only
    over_range(with_penalty, arrays, 0, cut)
    over_range(update, arrays, cut, params.size)


def _add_penalty_gradient(grad, weights, l2, scratch):
    """grad += l2 * weights (the L2 penalty's gradient), through scratch."""
    np.multiply(weights, l2, out=scratch)
    grad += scratch


class Workspace:
    """Scratch arrays for passes over minibatches of at most ``max_rows`` rows.

    ``outputs[k]`` receives layer k's pre-activation and then, in place, its
    activation; ``deltas[k]`` receives dL/da of hidden layer k; ``ones`` is
    the column of ones that sums over rows in equation (3). Reusing them
    across minibatches keeps the training loop free of allocations. A
    workspace belongs to one training loop: never share it between threads.
    """

    def __init__(self, layer_sizes, max_rows, dtype):
        self.max_rows = max_rows
        self.outputs = [np.empty((max_rows, n), dtype) for n in layer_sizes[1:]]
        self.deltas = [np.empty((max_rows, n), dtype) for n in layer_sizes[1:-1]]
        self.ones = np.ones(max_rows, dtype)

    def rows(self, n):
        """Views of the first n rows: (outputs, deltas, ones)."""
        if n == self.max_rows:  # every minibatch but an epoch's last
            return self.outputs, self.deltas, self.ones
        assert n <= self.max_rows, "a minibatch larger than its workspace"
        return (
            [b[:n] for b in self.outputs],
            [b[:n] for b in self.deltas],
            self.ones[:n],
        )


class NumpyOps:
    """numpy arrays (and scipy.sparse X): buffers, in-place work, chunks."""

    xp = np
    device = None
    is_numpy = True
    # Losses come back as Python floats, so a loop checks each minibatch's.
    scalar_losses = True

    # ---- arrays --------------------------------------------------------------

    def asarray(self, array, dtype=None):
        """A host (numpy) array as an array of this engine."""
        return np.asarray(array, dtype=dtype)

    def to_numpy(self, array):
        return array

    def describe(self):
        return "numpy arrays"

    def copy(self, array):
        return array.copy()

    def astype_like(self, array, like):
        """array in like's dtype (itself when it already is)."""
        return array.astype(like.dtype, copy=False)

    def zeros_like(self, array):
        return np.zeros_like(array)

    def all_finite(self, array):
        """Whether every entry is finite (one reduction: NaN and inf stick)."""
        return math.isfinite(np.add.reduce(array, axis=None))

    def workspace(self, layer_sizes, max_rows, dtype):
        return Workspace(layer_sizes, max_rows, dtype)

    def take_rows(self, array, rows, out=None):
        """array[rows], into ``out`` (a buffer of at least len(rows) rows)."""
        if out is None:  # sparse X
            return array[rows]
        return array.take(rows, axis=0, out=out[: len(rows)])

    def indices(self, values):
        """Float entries holding whole numbers, as an index array."""
        return values.astype(np.intp)

    # ---- the four equations' building blocks ---------------------------------

    def matmul(self, a, b, out=None):
        """a @ b, written into ``out`` when given and ``a`` is a dense array.

        ``np.dot`` takes the BLAS path with less overhead than ``np.matmul``
        (up to 4 us less per call on the tiny matrices of a small network); it
        needs one dtype throughout and a C-contiguous ``out``, as a workspace
        provides.
        """
        if out is None or not isinstance(a, np.ndarray):
            return a @ b  # scipy.sparse @ ndarray gives an ndarray
        if a.dtype == b.dtype == out.dtype and out.flags.c_contiguous:
            return np.dot(a, b, out=out)
        return np.matmul(a, b, out=out)

    def activate(self, activation, z, b, keep_input=False):
        """(f(z + b), z + b if keep_input else None), in place in z."""
        z += b
        kept = z.copy() if keep_input else None
        return ACTIVATIONS[activation].forward(z), kept

    def activation_backward(self, activation, f_input, delta, mask=None):
        """delta * mask * f'(z), in place in delta (mask: dropout's, or None)."""
        if mask is not None:
            delta *= mask
        ACTIVATIONS[activation].backward(f_input, delta)
        return delta

    def output_activate(self, output, z, b):
        z += b
        return output.activate(z)

    def output_loss(self, output, Y, P, w):
        return output.loss(Y, P, w)

    def output_loss_and_delta(self, output, Y, P, w):
        """(loss, dL/dz), the delta in place of P."""
        return output.loss(Y, P, w), output.delta(Y, P, w)

    def reference_loss(self, output, Y, P, sample_weight, by_column):
        """The data loss in scikit-learn's order of operations (see
        ``_losses.reference_loss``); None for an output scikit-learn lacks."""
        return reference_loss(output, Y, P, sample_weight, by_column)

    def unnormalized_delta(self, output, Y, P, sample_weight):
        """sum(s) * dL/dz, in place of P: scikit-learn's output delta."""
        return unnormalized_delta(output, Y, P, sample_weight)

    def column_sums(self, delta, out):
        """(3) out = the sum over rows of delta, as ``np.sum(axis=0)`` adds."""
        np.add.reduce(delta, axis=0, out=out)

    def reference(self):
        """The engine whose every operation in ``loss_and_grad(...,
        sklearn_order=...)`` is bit-equal to scikit-learn's MLP's (L-BFGS)."""
        return self

    def weight_gradient(self, a, delta, out):
        """(2) out = a^T delta (a dense or sparse)."""
        if isinstance(a, np.ndarray):
            self.matmul(a.T, delta, out=out)
        else:
            out[...] = a.T @ delta

    def bias_gradient(self, delta, ones, out):
        """(3) out = 1^T delta, as a matrix-vector product (``ones``: a
        workspace's column of ones, or None to make one)."""
        if ones is None:
            ones = np.ones(delta.shape[0], delta.dtype)
        self.matmul(ones, delta, out=out)

    def sum_of_squares(self, x):
        return float(np.dot(x, x))

    def add_penalty_gradient(self, grad, params, l2):
        """grad += l2 * params, in chunks."""
        size = grad.size
        if size <= CHUNK:
            _add_penalty_gradient(grad, params, l2, np.empty(size, grad.dtype))
            return
        over_range(
            lambda g, p, tmp: _add_penalty_gradient(g, p, l2, tmp),
            (grad, params),
            0,
            size,
        )

    # ---- optimizer updates, in place on the flat vector ---------------------

    def sgd_update(self, params, grad, velocity, lr, mu, nesterov, n_weights, l2):
        """v = mu v - lr g;  p += v  (Nesterov: p += mu v - lr g)."""

        def update(p, g, v, tmp):
            np.multiply(g, lr, out=tmp)  # tmp = lr g
            v *= mu
            v -= tmp  # v = mu v - lr g
            if nesterov:
                p -= tmp  # look ahead: p += mu v - lr g
                np.multiply(v, mu, out=tmp)
                p += tmp
            else:
                p += v

        _update_in_chunks(update, params, grad, (velocity,), n_weights, l2)

    def adam_update(self, params, grad, m_sum, v, c, b1, b2, eps, n_weights, l2):
        """m_sum = b1 m_sum + g;  v = b2 v + (1 - b2) g^2;
        p -= c m_sum / (sqrt(v) + eps)."""
        one_minus_b2 = 1.0 - b2

        def update(p, g, m_sum, v, tmp):
            m_sum *= b1
            m_sum += g  # m_sum = b1 m_sum + g
            np.multiply(g, g, out=tmp)
            tmp *= one_minus_b2
            v *= b2
            v += tmp  # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m_sum, tmp, out=tmp)
            tmp *= c
            p -= tmp  # p -= c m_sum / (sqrt(v) + eps)

        _update_in_chunks(update, params, grad, (m_sum, v), n_weights, l2)


NUMPY = NumpyOps()


class ArrayAPIOps:
    """Arrays of any array-API namespace ``xp``, on ``device``.

    The same operations as :class:`NumpyOps`, written with the standard's
    functions: new arrays instead of ``out=`` buffers, in-place operators
    (``+=``, which the standard has) for the optimizer's updates of the flat
    vector. Losses stay 0-d arrays on the device (``scalar_losses`` False), so
    a training loop reads them once per epoch instead of waiting for the
    device after every minibatch.
    """

    is_numpy = False
    scalar_losses = False

    def __init__(self, xp, device):
        self.xp, self.device = xp, device

    def __eq__(self, other):
        return (
            isinstance(other, ArrayAPIOps)
            and self.xp is other.xp
            and self.device == other.device
        )

    def __hash__(self):
        return hash((id(self.xp), str(self.device)))

    # ---- arrays --------------------------------------------------------------

    def asarray(self, array, dtype=None):
        """A host (numpy) array, converted to ``dtype`` (a numpy dtype) there
        first, as an array of this namespace on this device."""
        array = np.asarray(array, dtype=dtype)
        return self.xp.asarray(array, device=self.device)  # torch, CuPy take numpy

    def to_numpy(self, array):
        from sklearn.utils._array_api import _convert_to_numpy

        return np.asarray(_convert_to_numpy(array, self.xp))

    def describe(self):
        """'torch on cuda:0', for messages."""
        name = self.xp.__name__.rsplit(".", 1)[-1]
        return f"{name} arrays on device {self.device}"

    def copy(self, array):
        return self.xp.asarray(array, copy=True)

    def astype_like(self, array, like):
        return self.xp.astype(array, like.dtype, copy=False)

    def zeros_like(self, array):
        return self.xp.zeros_like(array)

    def all_finite(self, array):
        return bool(self.xp.all(self.xp.isfinite(array)))

    def workspace(self, layer_sizes, max_rows, dtype):
        return None  # no buffers: every operation makes its result

    def take_rows(self, array, rows, out=None):
        return self.xp.take(array, rows, axis=0)

    def indices(self, values):
        return self.xp.astype(values, self.xp.int64)

    # ---- the four equations' building blocks ---------------------------------

    def matmul(self, a, b, out=None):
        return a @ b

    # z and delta are fresh products of matmul, owned here: updated in place.

    def activate(self, activation, z, b, keep_input=False):
        z += b
        return ACTIVATIONS[activation].forward_xp(self.xp, z), z if keep_input else None

    def activation_backward(self, activation, f_input, delta, mask=None):
        if mask is not None:
            delta *= mask
        return ACTIVATIONS[activation].backward_xp(self.xp, f_input, delta)

    def output_activate(self, output, z, b):
        return output.activate_xp(self.xp, z + b)

    def output_loss(self, output, Y, P, w):
        return output.loss_xp(self.xp, Y, P, w)

    def output_loss_and_delta(self, output, Y, P, w):
        return output.loss_xp(self.xp, Y, P, w), output.delta_xp(self.xp, Y, P, w)

    def reference_loss(self, output, Y, P, sample_weight, by_column):
        return None  # no scikit-learn to follow here: output_loss answers

    def unnormalized_delta(self, output, Y, P, sample_weight):
        xp = self.xp
        if sample_weight is None:
            sample_weight = xp.ones(P.shape[0], dtype=P.dtype, device=self.device)
        return output.delta_xp(xp, Y, P, sample_weight)

    def column_sums(self, delta, out):
        self.bias_gradient(delta, None, out)

    def reference(self):
        return self

    def weight_gradient(self, a, delta, out):
        out[...] = a.T @ delta  # (2); out is a view into the flat gradient

    def bias_gradient(self, delta, ones, out):
        out[...] = self.xp.sum(delta, axis=0)  # (3)

    def sum_of_squares(self, x):
        return x @ x  # an inner product: no temporary x * x

    def add_penalty_gradient(self, grad, params, l2):
        grad += params * l2

    # ---- optimizer updates, in place on the flat vector ---------------------
    # grad is the network's scratch buffer, overwritten by the next gradient:
    # the updates use it for their intermediate terms, so that a step makes
    # one or two temporaries instead of five (numpy's operations, same order).

    def sgd_update(self, params, grad, velocity, lr, mu, nesterov, n_weights, l2):
        if l2:
            self.add_penalty_gradient(grad[:n_weights], params[:n_weights], l2)
        grad *= lr  # the step, lr g
        velocity *= mu
        velocity -= grad  # v = mu v - lr g
        if nesterov:
            params -= grad
            params += velocity * mu
        else:
            params += velocity

    def adam_update(self, params, grad, m_sum, v, c, b1, b2, eps, n_weights, l2):
        if l2:
            self.add_penalty_gradient(grad[:n_weights], params[:n_weights], l2)
        m_sum *= b1
        m_sum += grad  # m_sum = b1 m_sum + g
        grad *= grad
        grad *= 1.0 - b2
        v *= b2
        v += grad  # v = b2 v + (1 - b2) g^2
        denominator = self.xp.sqrt(v)
        denominator += eps
        step = m_sum / denominator
        step *= c
        params -= step  # p -= c m_sum / (sqrt(v) + eps)


def _compat():
    from sklearn.externals import array_api_compat

    return array_api_compat


def is_foreign_array(array):
    """An array of an array-API namespace other than numpy (torch, CuPy, ...)."""
    if array is None or isinstance(array, np.ndarray):
        return False
    if not hasattr(array, "__dlpack__") or not _compat().is_array_api_obj(array):
        return False  # lists, pandas, scipy.sparse: numpy's business
    return not _compat().is_numpy_array(array)


def engine_of(array):
    """The engine an array belongs to, whatever the configuration says:
    :data:`NUMPY`, or an ArrayAPIOps on the array's namespace and device."""
    if not is_foreign_array(array):
        return NUMPY
    compat = _compat()
    return ArrayAPIOps(compat.array_namespace(array), compat.device(array))


def to_host(array):
    """A numpy copy of an array of another namespace (anything else as is)."""
    if not is_foreign_array(array):
        return array
    return engine_of(array).to_numpy(array)


def get_ops(X):
    """The engine for training on or predicting for X: :data:`NUMPY`, unless
    scikit-learn's ``array_api_dispatch`` is on and X belongs to another
    array-API namespace (everything then follows X's namespace and device)."""
    from sklearn import get_config

    if isinstance(X, np.ndarray) or not get_config().get("array_api_dispatch"):
        return NUMPY
    return engine_of(X)
