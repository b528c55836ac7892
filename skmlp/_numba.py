"""The compiled engine: numpy's engine with its elementwise passes fused by numba.

Between the matrix products of a training step, numpy makes one pass over
memory (and one Python call) per elementwise operation: Adam's update alone is
eleven. :class:`NumbaOps` keeps numpy's engine (``_ops.NumpyOps``) and its
BLAS matrix products, and replaces the elementwise work with kernels that
make one pass each:

- the bias add fused with relu, leaky_relu or identity (forward, after z = aW);
- the derivatives of relu, leaky_relu, elu, tanh and logistic fused with the
  dropout mask (equation (1));
- the bias add fused with softmax or the logistic function (output layer),
  and the cross-entropy loss fused with the output delta;
- the column sums of equation (3), and the gather of a minibatch's rows;
- the SGD (momentum, Nesterov) and Adam updates fused with the L2 penalty.

Each kernel computes what the numpy implementation computes, in the same
order of operations, so that the results are equal bit for bit where the
operations are the same (the optimizer updates, relu; see tests/test_numba.py
for the tolerance of each); sums over rows are sequential here and pairwise
in numpy, which can differ in the last bit.

The kernels are ``nogil`` and single-threaded: numba's ``parallel=True``
(OpenMP) fights OpenBLAS's spinning threads (the next matrix product becomes
2-40 times slower). Scalars are passed in the arrays' dtype, so a float32
kernel stays float32. ``fastmath`` is off: it would break bit-equality.
``error_model="numpy"`` lets the loops vectorize (numba's default checks
every float division for zero, one element at a time): Adam then takes
0.9 ms instead of 4.2 on the wide network's 1.9 million float32 parameters.

This module imports numba; ``_engines.numpy_engine`` imports it only when a fit
first asks for the compiled engine, compiles the kernels for the fit's dtype
then (or loads them from numba's cache), and falls back to numpy (with one
warning) if that fails.
"""

import math

import numba
import numpy as np

from ._activations import LEAKY_SLOPE, MISH_CUTOFF, SELU_ALPHA, SELU_SCALE
from ._layers import _GOLDEN, _MIX_1, _MIX_2
from ._losses import OUTPUTS
from ._ops import NumpyOps


def _kernel(function):
    """numba.njit(nogil=True), with an on-disk cache where one can be written
    (next to this file, or numba's user-wide cache), and without otherwise."""
    # error_model="numpy": a float division by zero gives inf or NaN, as in
    # numpy, instead of a check per element that keeps loops from vectorizing.
    options = dict(nogil=True, error_model="numpy")
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # no writable cache location: compile each process
        return numba.njit(**options)(function)


# ---- optimizers --------------------------------------------------------------


@_kernel
def _adam_loop(p, g, m_sum, v, c, b1, b2, one_minus_b2, eps, l2):
    for i in range(p.shape[0]):
        gi = g[i] + p[i] * l2  # with the L2 penalty's gradient (l2 = 0: none)
        m = m_sum[i] * b1 + gi  # m_sum = b1 m_sum + g
        m_sum[i] = m
        vi = v[i] * b2 + (gi * gi) * one_minus_b2  # v = b2 v + (1 - b2) g^2
        v[i] = vi
        p[i] = p[i] - (m / (np.sqrt(vi) + eps)) * c  # p -= c m_sum / (...)


@_kernel
def _adam(p, g, m_sum, v, c, b1, b2, one_minus_b2, eps, n_weights, l2):
    """Adam over the weights (with the penalty) and the biases (without),
    each a loop from 0 over views, which vectorizes."""
    w, rest = slice(0, n_weights), slice(n_weights, p.shape[0])
    _adam_loop(p[w], g[w], m_sum[w], v[w], c, b1, b2, one_minus_b2, eps, l2)
    zero = p.dtype.type(0)
    _adam_loop(
        p[rest], g[rest], m_sum[rest], v[rest], c, b1, b2, one_minus_b2, eps, zero
    )


@_kernel
def _penalty(g, p, l2):
    for i in range(p.shape[0]):
        g[i] = g[i] + p[i] * l2


@_kernel
def _sgd(p, g, velocity, lr, mu):
    for i in range(p.shape[0]):
        vi = velocity[i] * mu - g[i] * lr  # v = mu v - lr g
        velocity[i] = vi
        p[i] = p[i] + vi


@_kernel
def _sgd_nesterov(p, g, velocity, lr, mu):
    for i in range(p.shape[0]):
        step = g[i] * lr
        vi = velocity[i] * mu - step
        velocity[i] = vi
        p[i] = (p[i] - step) + vi * mu  # p += mu v - lr g


# ---- hidden layers -----------------------------------------------------------


@_kernel
def _bias_relu(z, b):
    """z = max(z + b, 0) in place (NaN stays NaN, as with np.maximum)."""
    zero = z.dtype.type(0)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            x = z[r, j] + b[j]
            z[r, j] = zero if x < zero else x


@_kernel
def _bias(z, b):
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] = z[r, j] + b[j]


@_kernel
def _relu_backward(a, delta, mask, has_mask):
    """delta = (delta * mask) * f'(z), f'(z) = 1 where a > 0, else 0."""
    one, zero = delta.dtype.type(1), delta.dtype.type(0)
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = delta[r, j]
            if has_mask:
                d = d * mask[r, j]
            delta[r, j] = d * (one if a[r, j] > zero else zero)


@_kernel
def _bias_leaky_relu(z, b):
    """z = z + b, times LEAKY_SLOPE where that is negative (NaN stays NaN)."""
    zero, slope = z.dtype.type(0), z.dtype.type(LEAKY_SLOPE)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            x = z[r, j] + b[j]
            z[r, j] = x * slope if x < zero else x


# The derivatives below read the layer's output a (as numpy's do) and apply
# dropout's mask first: delta = (delta * mask) * f'(z), in numpy's order of
# operations, so that they are bit-equal to it.


@_kernel
def _tanh_backward(a, delta, mask, has_mask):
    """f'(z) = 1 - a^2."""
    one = delta.dtype.type(1)
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = delta[r, j] * mask[r, j] if has_mask else delta[r, j]
            delta[r, j] = d * (one - a[r, j] * a[r, j])


@_kernel
def _logistic_backward(a, delta, mask, has_mask):
    """f'(z) = a (1 - a), applied as (delta * a) * (1 - a)."""
    one = delta.dtype.type(1)
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = delta[r, j] * mask[r, j] if has_mask else delta[r, j]
            delta[r, j] = (d * a[r, j]) * (one - a[r, j])


@_kernel
def _leaky_relu_backward(a, delta, mask, has_mask):
    """f'(z) = LEAKY_SLOPE where a <= 0, else 1 (delta unchanged)."""
    zero, slope = delta.dtype.type(0), delta.dtype.type(LEAKY_SLOPE)
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = delta[r, j] * mask[r, j] if has_mask else delta[r, j]
            delta[r, j] = d * slope if a[r, j] <= zero else d


@_kernel
def _elu_backward(a, delta, mask, has_mask):
    """f'(z) = a + 1 where a <= 0, else 1 (delta unchanged)."""
    zero, one = delta.dtype.type(0), delta.dtype.type(1)
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = delta[r, j] * mask[r, j] if has_mask else delta[r, j]
            delta[r, j] = d * (a[r, j] + one) if a[r, j] <= zero else d


@_kernel
def _mask(delta, mask):
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            delta[r, j] = delta[r, j] * mask[r, j]


@_kernel
def _column_sums(delta, out):
    """out[j] = sum over rows of delta[:, j], row by row (sequential)."""
    for j in range(out.shape[0]):
        out[j] = delta[0, j]
    for r in range(1, delta.shape[0]):
        for j in range(out.shape[0]):
            out[j] += delta[r, j]


@_kernel
def _gather(array, rows, out):
    """out[:len(rows)] = array[rows]; returns that view."""
    n = rows.shape[0]
    for r in range(n):
        source = rows[r]
        for j in range(array.shape[1]):
            out[r, j] = array[source, j]
    return out[:n]


# ---- output layers -------------------------------------------------------------


@_kernel
def _bias_softmax(z, b):
    """Per row: z = softmax(z + b) = exp(x - max x) / sum exp(x - max x)."""
    for r in range(z.shape[0]):
        top = z[r, 0] + b[0]
        for j in range(z.shape[1]):
            x = z[r, j] + b[j]
            z[r, j] = x
            if x > top:
                top = x
        total = z.dtype.type(0)
        for j in range(z.shape[1]):
            e = math.exp(z[r, j] - top)
            z[r, j] = e
            total += e
        for j in range(z.shape[1]):
            z[r, j] = z[r, j] / total


@_kernel
def _bias_sigmoid(z, b):
    """z = 1 / (1 + exp(-(z + b))), from exp(-|x|) <= 1 (no overflow)."""
    one = z.dtype.type(1)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            x = z[r, j] + b[j]
            if x >= 0:
                z[r, j] = one / (one + math.exp(-x))
            else:
                e = math.exp(x)
                z[r, j] = e / (one + e)


@_kernel
def _cross_entropy_and_delta(P, Y, w, has_w, eps, binary):
    """The loss (softmax: -sum y log p; logistic, per output: -log p where y,
    -log(1 - p) where not; p clipped to [eps, 1 - eps]) weighted by w (the
    mean without weights), and P overwritten with dL/dz = w_i (p - y)."""
    n, k = P.shape
    one, zero = P.dtype.type(1), P.dtype.type(0)
    inv_n = one / P.dtype.type(n)
    total = 0.0
    for r in range(n):
        row = 0.0
        for j in range(k):
            p = P[r, j]
            q = min(max(p, eps), one - eps)
            if Y[r, j]:
                row += math.log(q)
            elif binary:
                row += math.log(one - q)
            P[r, j] = (p - (one if Y[r, j] else zero)) * (w[r] if has_w else inv_n)
        total += row * w[r] if has_w else row
    return -total if has_w else -total / n


# ---- the tabular layers (``_layers.py``) ---------------------------------------
# Transcendental functions stay numpy's: its SIMD exp, expm1, cos and sin are
# 8-15 times faster here than numba's scalar libm calls; the kernels do the
# arithmetic around them in one pass.


@_kernel
def _adamw_loop(p, g, m_sum, v, c, keep, b1, b2, one_minus_b2, eps):
    for i in range(p.shape[0]):
        gi = g[i]
        m = m_sum[i] * b1 + gi
        m_sum[i] = m
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        v[i] = vi
        p[i] = p[i] * keep - (m / (np.sqrt(vi) + eps)) * c


@_kernel
def _adamw_runs(p, g, m_sum, v, starts, stops, cs, keeps, b1, b2, one_minus_b2, eps):
    """AdamW over runs of the flat vector, each with its own step factor
    cs[r] (c times the run's lr scale) and decay factor keeps[r] (1 - lr wd
    wd_scale): p = p keeps[r] - cs[r] m_sum / (sqrt(v) + eps), in numpy's
    order of operations (``NumpyOps.adam_update`` after ``p *= keep``). Each
    run is a loop from 0 over views, which vectorizes (a loop from starts[r]
    does not: 4.6 times slower on 140,000 float32 parameters)."""
    for r in range(starts.shape[0]):
        run = slice(starts[r], stops[r])
        _adamw_loop(
            p[run],
            g[run],
            m_sum[run],
            v[run],
            cs[r],
            keeps[r],
            b1,
            b2,
            one_minus_b2,
            eps,
        )


@_kernel
def _scale_bias(z, b, c):
    """z = z c + b in place (Dense's NTK factor and bias, one pass)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] = z[r, j] * c + b[j]


@_kernel
def _column_sums_then_scale(delta, out, c):
    """out = the column sums of delta (row by row), then delta *= c."""
    for j in range(out.shape[0]):
        out[j] = delta[0, j]
    for r in range(1, delta.shape[0]):
        for j in range(out.shape[0]):
            out[j] += delta[r, j]
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            delta[r, j] = delta[r, j] * c


@_kernel
def _parametric_selu(X, E, alpha, Y, D, F, lam, lam_alpha, selu_alpha):
    """Y = x + alpha (f - x), D = f - x, F = f'(x) for SELU, with
    E = expm1(min(x, 0)): f = lam (max(x, 0) + selu_alpha E) (numpy's order),
    f' = lam where f > 0, else f + lam selu_alpha."""
    zero = X.dtype.type(0)
    for r in range(X.shape[0]):
        for j in range(X.shape[1]):
            x = X[r, j]
            f = ((x if x > zero else zero) + E[r, j] * selu_alpha) * lam
            d = f - x
            D[r, j] = d
            Y[r, j] = x + alpha[j] * d
            F[r, j] = lam if f > zero else f + lam_alpha


@_kernel
def _parametric_mish(X, U, alpha, Y, D, F):
    """As _parametric_selu for Mish, with U = exp(min(x, cutoff)) and
    n = U (U + 2): f = x n / (n + 2), f' = (n + 4 x U (1 + U) / (n + 2)) /
    (n + 2) (``_activations.mish`` and ``mish_backward``, same order)."""
    one, two, four = X.dtype.type(1), X.dtype.type(2), X.dtype.type(4)
    for r in range(X.shape[0]):
        for j in range(X.shape[1]):
            x, u = X[r, j], U[r, j]
            n = (u + two) * u
            q = n + two
            f = (x * n) / q
            d = f - x
            D[r, j] = d
            Y[r, j] = x + alpha[j] * d
            F[r, j] = (n + (((u + one) * u) * x) * four / q) / q


@_kernel
def _parametric_backward(dY, alpha, D, F, dX, dalpha):
    """dalpha = column sums of dY D (row by row); dX = dY (1 - alpha) +
    (dY alpha) f'."""
    one = dY.dtype.type(1)
    for j in range(dalpha.shape[0]):
        dalpha[j] = dY[0, j] * D[0, j]
    for r in range(1, dY.shape[0]):
        for j in range(dalpha.shape[0]):
            dalpha[j] += dY[r, j] * D[r, j]
    for r in range(dY.shape[0]):
        for j in range(dY.shape[1]):
            d, a = dY[r, j], alpha[j]
            dX[r, j] = d * (one - a) + (d * a) * F[r, j]


@_kernel
def _pbld_angles(X, numeric, w, phi, two_pi, U):
    """U[j, r, f] = (2 pi x_rj) w_jf + phi_jf for the numeric columns j."""
    for j in range(numeric.shape[0]):
        column = numeric[j]
        for r in range(X.shape[0]):
            x = two_pi * X[r, column]
            for f in range(w.shape[1]):
                U[j, r, f] = x * w[j, f] + phi[j, f]


@_kernel
def _pbld_output(X, numeric, others, H, VT, c, Y):
    """Y's blocks [x_j, H_j V_j + c_j] per numeric column, then the other
    columns; VT is V transposed to (m, p, F)."""
    m, p = VT.shape[0], VT.shape[1]
    width = 1 + p
    for r in range(X.shape[0]):
        for j in range(m):
            Y[r, j * width] = X[r, numeric[j]]
            for k in range(p):
                e = c[j, k]
                for f in range(VT.shape[2]):
                    e += H[j, r, f] * VT[j, k, f]
                Y[r, j * width + 1 + k] = e
        for t in range(others.shape[0]):
            Y[r, m * width + t] = X[r, others[t]]


@_kernel
def _pbld_backward(
    dY, X, numeric, others, H, S, w, VT, two_pi, dw, dphi, dVT, dc, dX, input_grad
):
    """The PeriodicEmbedding's gradients (see its docstring), one pass over
    the rows: g = dL/de, dL/dh = g V^T, dL/du = -sin(u) dL/dh."""
    m, p, F = VT.shape[0], VT.shape[1], VT.shape[2]
    width = 1 + p
    dw[...] = 0
    dphi[...] = 0
    dVT[...] = 0
    dc[...] = 0
    du = np.empty(F, dY.dtype)
    for j in range(m):
        column = numeric[j]
        for r in range(dY.shape[0]):
            for f in range(F):
                du[f] = 0
            for k in range(p):
                g = dY[r, j * width + 1 + k]
                dc[j, k] += g
                for f in range(F):
                    dVT[j, k, f] += H[j, r, f] * g
                    du[f] += g * VT[j, k, f]
            x = X[r, column]
            through = dY.dtype.type(0)
            for f in range(F):
                d = -S[j, r, f] * du[f]
                dphi[j, f] += d
                dw[j, f] += x * d
                through += d * w[j, f]
            if input_grad:
                dX[r, column] = dY[r, j * width] + two_pi * through
    for j in range(m):
        for f in range(F):
            dw[j, f] = two_pi * dw[j, f]
    if input_grad:
        for r in range(dY.shape[0]):
            for t in range(others.shape[0]):
                dX[r, others[t]] = dY[r, m * width + t]


@_kernel
def _splitmix64(seed, counter):
    z = seed + counter * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@_kernel
def _dropout(X, seed, threshold, scale, Y, mask):
    """Y = X m and mask = m, m = scale where the entry's 16 random bits are >=
    threshold, else 0; the bits of entry i (row-major) are lane i % 4 of
    splitmix64(seed + (i // 4 + 1) golden) (``_layers.dropout_bits``). Four
    entries per hash, without a branch per entry in the main loop."""
    x, y, m = X.reshape(-1), Y.reshape(-1), mask.reshape(-1)
    n, zero = x.shape[0], X.dtype.type(0)
    limit, low = np.uint64(threshold), np.uint64(0xFFFF)
    seed = np.uint64(seed)
    for g in range(n // 4):
        z = _splitmix64(seed, np.uint64(g + 1))
        for lane in range(4):
            bits = (z >> np.uint64(16 * lane)) & low
            keep = scale if bits >= limit else zero
            m[4 * g + lane] = keep
            y[4 * g + lane] = x[4 * g + lane] * keep
    z = _splitmix64(seed, np.uint64(n // 4 + 1))
    for i in range(n - n % 4, n):  # the last, partial group
        bits = (z >> np.uint64(16 * (i % 4))) & low
        keep = scale if bits >= limit else zero
        m[i] = keep
        y[i] = x[i] * keep


# Derivatives read from the layer's output, by activation.
_BACKWARD = {
    "relu": _relu_backward,
    "tanh": _tanh_backward,
    "logistic": _logistic_backward,
    "leaky_relu": _leaky_relu_backward,
    "elu": _elu_backward,
}


def _fusable(*arrays):
    """Whether the fused kernels take these arrays: C-contiguous numpy arrays
    of one float dtype (float32 or float64)."""
    first = arrays[0]
    return all(
        type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == first.dtype
        for a in arrays
    ) and first.dtype in (np.float32, np.float64)


class NumbaOps(NumpyOps):
    """numpy's engine with fused compiled kernels for the elementwise work
    (float32 and float64 dense arrays; anything else takes numpy's way)."""

    def activate(self, activation, z, b, keep_input=False):
        if activation == "relu" and not keep_input:
            _bias_relu(z, b)
            return z, None
        if activation == "identity" and not keep_input:
            _bias(z, b)
            return z, None
        if activation == "leaky_relu" and not keep_input:
            _bias_leaky_relu(z, b)
            return z, None
        # tanh, logistic, elu, softplus, gelu, silu: numpy's SIMD exp and
        # tanh are faster than numba's scalar libm calls, so numpy's way.
        return super().activate(activation, z, b, keep_input)

    def activation_backward(self, activation, f_input, delta, mask=None):
        masked = mask is not None
        if activation in _BACKWARD:
            _BACKWARD[activation](f_input, delta, mask if masked else delta, masked)
            return delta
        if activation == "identity" and masked:
            _mask(delta, mask)
            return delta
        # softplus, gelu, silu: their exp and erf cost more than the passes.
        return super().activation_backward(activation, f_input, delta, mask)

    def output_activate(self, output, z, b):
        if output is OUTPUTS["softmax"]:
            _bias_softmax(z, b)
            return z
        if output is OUTPUTS["logistic"]:
            _bias_sigmoid(z, b)
            return z
        return super().output_activate(output, z, b)

    def output_loss_and_delta(self, output, Y, P, w):
        binary = output is OUTPUTS["logistic"]
        # The fused kernel reads class indicators (boolean Y); soft targets,
        # such as label-smoothed ones, take numpy's loss and delta.
        if Y.dtype != np.bool_ or not (binary or output is OUTPUTS["softmax"]):
            return super().output_loss_and_delta(output, Y, P, w)
        eps = P.dtype.type(np.finfo(P.dtype).eps)
        weights = P[:, 0] if w is None else w  # unread without weights
        loss = _cross_entropy_and_delta(P, Y, weights, w is not None, eps, binary)
        return float(loss), P

    def sgd_update(self, params, grad, velocity, lr, mu, nesterov, n_weights, l2):
        t = params.dtype.type
        if l2:
            _penalty(grad[:n_weights], params[:n_weights], t(l2))
        (_sgd_nesterov if nesterov else _sgd)(params, grad, velocity, t(lr), t(mu))

    def adam_update(self, params, grad, m_sum, v, c, b1, b2, eps, n_weights, l2):
        t = params.dtype.type
        n_weights = n_weights if l2 else 0  # the penalty's part: the weights
        _adam(
            params,
            grad,
            m_sum,
            v,
            t(c),
            t(b1),
            t(b2),
            t(1.0 - b2),
            t(eps),
            n_weights,
            t(l2),
        )

    def bias_gradient(self, delta, ones, out):
        """(3) out = the column sums of delta."""
        _column_sums(delta, out)

    def column_sums(self, delta, out):
        """(3) as ``np.sum(axis=0)`` adds: row after row for several columns
        (this kernel), pairwise for one (numpy's contiguous reduction)."""
        if delta.shape[1] > 1 and isinstance(delta, np.ndarray):
            _column_sums(delta, out)
        else:
            super().column_sums(delta, out)

    def reference(self):
        """This engine with numpy's output layer: scikit-learn's order of
        operations for L-BFGS (see ``NumpyOps.reference``)."""
        return _REFERENCE

    def take_rows(self, array, rows, out=None):
        if out is None or not isinstance(array, np.ndarray) or array.ndim != 2:
            return super().take_rows(array, rows, out)
        return _gather(array, rows, out)

    # ---- the tabular layers' fused passes ------------------------------------
    # Each returns None where it does not apply (other dtypes, layouts or
    # activations): the layer then takes its own numpy way.

    def adamw_runs(self, params, grad, m_sum, v, runs, b1, b2, eps):
        """AdamW over ``runs`` = (starts, stops, step factors, keep factors)
        of the flat vector, one pass (see ``_adamw_runs``)."""
        if not _fusable(params, grad, m_sum, v):
            return None
        t = params.dtype.type
        starts, stops, cs, keeps = runs
        _adamw_runs(
            params,
            grad,
            m_sum,
            v,
            starts,
            stops,
            cs.astype(params.dtype),
            keeps.astype(params.dtype),
            t(b1),
            t(b2),
            t(1.0 - b2),
            t(eps),
        )
        return params

    def scale_bias(self, z, b, c):
        """z = z c + b in place (Dense's NTK factor and bias)."""
        if not _fusable(z, b):
            return None
        _scale_bias(z, b, z.dtype.type(c))
        return z

    def column_sums_then_scale(self, delta, out, c):
        """out = column sums of delta, then delta *= c, in place."""
        if not _fusable(delta, out):
            return None
        _column_sums_then_scale(delta, out, delta.dtype.type(c))
        return delta

    def parametric_forward(self, activation, X, alpha):
        """(Y, D, F) of ``ParametricActivation``: Y = X + alpha (f(X) - X),
        D = f(X) - X, F = f'(X), for SELU and Mish."""
        if activation not in ("selu", "mish") or not _fusable(X, alpha):
            return None
        Y, D, F = np.empty_like(X), np.empty_like(X), np.empty_like(X)
        t = X.dtype.type
        if activation == "selu":
            E = np.minimum(X, t(0))
            np.expm1(E, out=E)
            lam = t(SELU_SCALE)
            _parametric_selu(
                X, E, alpha, Y, D, F, lam, t(SELU_SCALE * SELU_ALPHA), t(SELU_ALPHA)
            )
        else:
            U = np.minimum(X, t(MISH_CUTOFF))
            np.exp(U, out=U)
            _parametric_mish(X, U, alpha, Y, D, F)
        return Y, D, F

    def parametric_backward(self, dY, alpha, D, F, dalpha):
        """dL/dX, and dL/dalpha written into ``dalpha``."""
        if not _fusable(dY, alpha, D, F, dalpha):
            return None
        dX = np.empty_like(dY)
        _parametric_backward(dY, alpha, D, F, dX, dalpha)
        return dX

    def periodic_forward(self, X, numeric, others, w, phi, V, c):
        """``PeriodicEmbedding``'s output and what its backward pass reads:
        (Y, cos(U), sin(U), V^T), with numpy's SIMD cos and sin."""
        if not _fusable(X, w, phi, V, c):
            return None
        t = X.dtype.type
        m, F = w.shape
        n = X.shape[0]
        U = np.empty((m, n, F), X.dtype)
        _pbld_angles(X, numeric, w, phi, t(2 * math.pi), U)
        H, S = np.cos(U), np.sin(U, out=U)
        VT = np.ascontiguousarray(V.transpose(0, 2, 1))
        Y = np.empty((n, m * (1 + V.shape[2]) + len(others)), X.dtype)
        _pbld_output(X, numeric, others, H, VT, c, Y)
        return Y, H, S, VT

    def periodic_backward(self, dY, X, numeric, others, kept, w, G, input_grad):
        """dL/dX (None without ``input_grad``), the parameters' gradients
        written into G; after :meth:`periodic_forward`, whatever dY is."""
        dY = np.ascontiguousarray(dY, dtype=X.dtype)
        _, H, S, VT = kept
        dVT = np.empty_like(VT)
        dX = np.empty_like(X) if input_grad else X[:0]
        _pbld_backward(
            dY,
            X,
            numeric,
            others,
            H,
            S,
            w,
            VT,
            X.dtype.type(2 * math.pi),
            G["w"],
            G["phi"],
            dVT,
            G["c"],
            dX,
            input_grad,
        )
        G["V"][...] = dVT.transpose(0, 2, 1)
        return dX if input_grad else None

    def dropout(self, X, seed, threshold, scale):
        """(X m, m): ``Dropout``'s mask from ``seed`` and its product."""
        if not _fusable(X):
            return None
        Y, mask = np.empty_like(X), np.empty_like(X)
        _dropout(X, np.uint64(seed), threshold, X.dtype.type(scale), Y, mask)
        return Y, mask

    def compile(self, dtype):
        """Compile (or load from the cache) every kernel for dtype, on tiny
        arrays of the layouts a fit passes."""
        z, b = np.ones((2, 3), dtype), np.zeros(3, dtype)
        for activation in ("relu", "identity", "leaky_relu"):
            self.activate(activation, z, b)
        for activation in ("relu", "tanh", "logistic", "elu", "leaky_relu"):
            self.activation_backward(activation, z, z.copy(), z.copy())
            self.activation_backward(activation, z, z.copy())
        self.activation_backward("identity", z, z.copy(), z.copy())
        Y = np.eye(3, dtype=bool)[:2]
        for output in (OUTPUTS["softmax"], OUTPUTS["logistic"]):
            P = self.output_activate(output, z.copy(), b)
            self.output_loss_and_delta(output, Y, P, None)
            self.output_loss_and_delta(output, Y, P, np.ones(2, dtype))
        self.bias_gradient(z, None, b)
        self.take_rows(z, np.arange(2), np.empty_like(z))
        self.take_rows(Y, np.arange(2), np.empty_like(Y))
        p = np.ones(4, dtype)
        self.sgd_update(p, p.copy(), p.copy(), 0.1, 0.9, True, 2, 0.1)
        self.adam_update(p, p.copy(), p.copy(), p.copy(), 0.1, 0.9, 0.99, 1e-8, 2, 0.1)
        # The tabular layers' kernels.
        runs = (np.array([0, 2]), np.array([2, 4]), np.ones(2), np.ones(2))
        self.adamw_runs(p, p.copy(), p.copy(), p.copy(), runs, 0.9, 0.99, 1e-8)
        self.scale_bias(z, b, 0.5)
        self.column_sums_then_scale(z, b, 0.5)
        for activation in ("selu", "mish"):
            _, D, F = self.parametric_forward(activation, z, b)
            self.parametric_backward(z, b, D, F, b.copy())
        self.dropout(z, 1, 100, 1.5)


class _ReferenceOps(NumbaOps):
    """The compiled engine where it is bit-equal to numpy's: numpy's softmax
    and scipy's expit at the output (the fused output kernels sum and
    exponentiate in another order)."""

    output_activate = NumpyOps.output_activate

    def reference(self):
        return self


_REFERENCE = _ReferenceOps()
