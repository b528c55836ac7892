"""The two engines of the ops layer agree: every operation, numpy vs generic.

NumpyOps (buffers, in place, chunks) and ArrayAPIOps (the array API
standard's functions) implement the same operations; each is run here on the
same float64 inputs, the generic one on array-api-strict and on torch (CPU),
and the results must agree to 1e-12. Were the two to drift, the numpy fit and
the GPU fit of the same model would drift with them.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skmlp._activations import ACTIVATIONS
from skmlp._losses import OUTPUTS, huber, quantile
from skmlp._network import MLP, n_parameters
from skmlp._ops import CHUNK, NUMPY, ArrayAPIOps
from skmlp._optimizers import SGD, Adam

TOL = dict(rtol=1e-12, atol=1e-12)


def _strict():
    xp = pytest.importorskip("array_api_strict")
    return ArrayAPIOps(xp, xp.asarray(0.0).device)


def _torch():
    torch = pytest.importorskip("torch")
    from sklearn.externals.array_api_compat import torch as xp

    return ArrayAPIOps(xp, torch.device("cpu"))


@pytest.fixture(params=["array_api_strict", "torch"])
def ops(request):
    return _strict() if request.param == "array_api_strict" else _torch()


def _on(ops, array):
    return ops.asarray(np.array(array, copy=True))


def _back(ops, array):
    return np.asarray(ops.to_numpy(array))


def _pre_activations(rng, shape=(40, 7)):
    z = 3 * rng.normal(size=shape)
    z[0, :] = [-700.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 700.0]  # saturating
    return z


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_forward_and_backward_agree(ops, name, rng):
    z, delta = _pre_activations(rng), rng.normal(size=(40, 7))
    b = np.array([0.0, 0.5, 0.0, -0.25, 0.0, 1.0, 0.0])  # keeps row 0's extremes
    mask = (rng.uniform(size=z.shape) > 0.3) / 0.7
    keep = ACTIVATIONS[name].from_input
    with np.errstate(over="ignore", under="ignore"):
        a, z_kept = NUMPY.activate(name, z.copy(), b, keep_input=keep)
        a_xp, z_kept_xp = ops.activate(name, _on(ops, z), _on(ops, b), keep)
        assert_allclose(_back(ops, a_xp), a, **TOL)
        f_input = z_kept if keep else a
        if keep:
            assert_allclose(_back(ops, z_kept_xp), z + b, **TOL)
        for m in (None, mask):
            expected = NUMPY.activation_backward(
                name, f_input.copy(), delta.copy(), None if m is None else m.copy()
            )
            got = ops.activation_backward(
                name,
                _on(ops, f_input),
                _on(ops, delta),
                None if m is None else _on(ops, m),
            )
            assert_allclose(_back(ops, got), expected, **TOL)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu"])
def test_a_nan_stays_nan_on_both_engines(ops, name):
    """A diverged value must not be hidden: numpy's max(z, 0) keeps NaN, and
    so must the generic engine (a where(z > 0, z, 0) would make it 0)."""
    z = np.array([[np.nan, -1.0, 2.0]])
    # numpy 1.24's expm1 warns on NaN; the estimators silence such warnings.
    with np.errstate(invalid="ignore"):
        a, _ = NUMPY.activate(name, z.copy(), np.zeros(3))
        a_xp, _ = ops.activate(name, _on(ops, z), _on(ops, np.zeros(3)), False)
    assert np.isnan(a[0, 0]) and np.isnan(_back(ops, a_xp)[0, 0])
    assert_allclose(_back(ops, a_xp), a, **TOL)
    delta = np.array([[1.0, np.nan, np.inf]])  # relu: NaN * 0 and inf * 0 are NaN
    with np.errstate(invalid="ignore"):
        expected = NUMPY.activation_backward(name, a.copy(), delta.copy())
        got = ops.activation_backward(name, _on(ops, a), _on(ops, delta))
    got = _back(ops, got)
    assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_allclose(got, expected, **TOL)


_OUTPUTS = {**OUTPUTS, "huber": huber(0.7), "quantile": quantile(0.3)}


@pytest.mark.parametrize("name", sorted(_OUTPUTS))
@pytest.mark.parametrize("weighted", [False, True])
def test_output_activation_loss_and_delta_agree(ops, name, weighted, rng, make_targets):
    output = _OUTPUTS[name]
    kind = name if name in OUTPUTS else "identity"
    z = rng.normal(size=(30, 3))
    if kind == "logistic":
        z[0] = [-40.0, 0.0, 40.0]  # clipped probabilities
    Y = make_targets(kind, rng, 30, 3)
    w = rng.uniform(size=30) if weighted else None
    w = None if w is None else w / w.sum()
    b = rng.normal(size=3)
    P = NUMPY.output_activate(output, z.copy(), b)
    P_xp = ops.output_activate(output, _on(ops, z), _on(ops, b))
    assert_allclose(_back(ops, P_xp), P, **TOL)
    w_xp = None if w is None else _on(ops, w)
    loss = NUMPY.output_loss(output, Y, P.copy(), w)
    loss_xp = ops.output_loss(output, _on(ops, Y), P_xp, w_xp)
    assert float(loss_xp) == pytest.approx(loss, rel=1e-12, abs=1e-12)
    both = NUMPY.output_loss_and_delta(output, Y, P.copy(), w)
    both_xp = ops.output_loss_and_delta(output, _on(ops, Y), ops.copy(P_xp), w_xp)
    assert float(both_xp[0]) == pytest.approx(both[0], rel=1e-12, abs=1e-12)
    assert_allclose(_back(ops, both_xp[1]), both[1], **TOL)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
@pytest.mark.parametrize("dropout", [False, True])
def test_loss_and_gradient_of_a_network_agree(ops, activation, dropout, rng):
    """Matmul, bias add, equations (1)-(4) and the penalty, all at once."""
    sizes = [5, 8, 6, 3]
    params = 0.5 * rng.normal(size=n_parameters(sizes))
    X, Y = rng.normal(size=(25, 5)), np.eye(3)[rng.randint(3, size=25)]
    sw = rng.uniform(0.5, 2, size=25)
    masks = None
    if dropout:
        masks = [(rng.uniform(size=(25, n)) > 0.3) / 0.7 for n in sizes[1:-1]]
    ours = MLP(sizes, activation, "softmax", params.copy())
    loss, grad = ours.loss_and_grad(X, Y, sw, 0.3, masks=masks)
    net_xp = MLP(sizes, activation, "softmax", _on(ops, params), ops)
    masks_xp = None if masks is None else [_on(ops, m) for m in masks]
    loss_xp, grad_xp = net_xp.loss_and_grad(
        _on(ops, X), _on(ops, Y), _on(ops, sw), 0.3, masks=masks_xp
    )
    assert float(loss_xp) == pytest.approx(loss, rel=1e-12)
    assert_allclose(_back(ops, grad_xp), grad, **TOL)
    assert_allclose(_back(ops, net_xp.forward(_on(ops, X))), ours.forward(X), **TOL)


_OPTIMIZERS = {  # class, hyperparameters after the state (n_weights = 40)
    "adam": (Adam, (0.01, 0.9, 0.999, 1e-8, 40)),
    "momentum": (SGD, (0.01, "constant", 0.9, False, 0.5, 40)),
    "nesterov": (SGD, (0.01, "constant", 0.9, True, 0.5, 40)),
}


def _three_steps(name, ops, params, grads):
    cls, hyperparameters = _OPTIMIZERS[name]
    state = cls.new_state(params, 0.01, ops)
    optimizer = cls(state, *hyperparameters, ops)
    for g in grads:
        optimizer.step(params, g, l2=0.05)
    return params, state


@pytest.mark.parametrize("name", sorted(_OPTIMIZERS))
@pytest.mark.parametrize("size", [100, CHUNK + 100], ids=["one pass", "chunked"])
def test_optimizer_updates_agree(ops, name, size, rng):
    params, grads = rng.normal(size=size), rng.normal(size=(3, size))
    expected, state = _three_steps(name, NUMPY, params.copy(), list(grads.copy()))
    got, state_xp = _three_steps(
        name, ops, _on(ops, params), [_on(ops, g) for g in grads]
    )
    assert_allclose(_back(ops, got), expected, **TOL)
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            assert_allclose(_back(ops, state_xp[key]), value, **TOL)
        else:
            assert state_xp[key] == value


def test_whole_number_floats_become_indices_that_gather_their_rows(ops, rng):
    table = rng.normal(size=(6, 3))
    codes = np.array([5.0, 0.0, 2.0, 2.0, 1.0])
    index = ops.indices(_on(ops, codes))
    assert np.asarray(_back(ops, index)).dtype.kind == "i"
    gathered = ops.take_rows(_on(ops, table), index)
    assert_array_equal(_back(ops, gathered), table[[5, 0, 2, 2, 1]])


def test_rows_are_gathered_and_sums_agree(ops, rng):
    X = rng.normal(size=(20, 4))
    rows = rng.permutation(20)[:7]
    buffer = np.empty((10, 4))
    expected = NUMPY.take_rows(X, rows, buffer)
    assert_array_equal(_back(ops, ops.take_rows(_on(ops, X), _on(ops, rows))), X[rows])
    assert_array_equal(expected, X[rows])
    x = rng.normal(size=50)
    assert float(ops.sum_of_squares(_on(ops, x))) == pytest.approx(
        NUMPY.sum_of_squares(x), rel=1e-14
    )
    x[3] = np.nan
    assert not ops.all_finite(_on(ops, x)) and not NUMPY.all_finite(x)
    assert ops.all_finite(_on(ops, X)) and NUMPY.all_finite(X)
