"""The numpy core: flat parameter layout, forward pass, backpropagated gradients."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, softmax

from skmlp._activations import ACTIVATIONS
from skmlp._losses import OUTPUTS
from skmlp._network import MLP, flatten, n_parameters, unflatten

LAYERS = [5, 4, 3, 2]


def _network(
    rng, layer_sizes=LAYERS, activation="tanh", output="softmax", dtype=np.float64
):
    params = rng.normal(scale=0.5, size=n_parameters(layer_sizes)).astype(dtype)
    return MLP(layer_sizes, activation, output, params)


def test_parameters_are_views_into_one_flat_vector(rng):
    net = _network(rng)
    assert net.params.size == 5 * 4 + 4 * 3 + 3 * 2 + 4 + 3 + 2
    for array in net.weights + net.biases:
        assert array.base is net.params
    net.weights[1][2, 0] = 123.0  # writing a view writes the flat vector
    assert 123.0 in net.params
    net.params[-1] = -7.0  # ...and the flat vector is the biases' storage
    assert net.biases[-1][-1] == -7.0
    assert net.n_weights == 5 * 4 + 4 * 3 + 3 * 2


def test_flatten_inverts_unflatten(rng):
    flat = rng.normal(size=n_parameters(LAYERS))
    weights, biases = unflatten(flat, LAYERS)
    assert [w.shape for w in weights] == [(5, 4), (4, 3), (3, 2)]
    assert_array_equal(flatten(weights, biases), flat)


def test_forward_matches_a_plain_reference(rng):
    net = _network(rng, activation="logistic", output="softmax")
    X = rng.normal(size=(10, 5))
    a = X
    for k, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = a @ W + b
        a = expit(z) if k < 2 else softmax(z, axis=1)
    assert_allclose(net.forward(X), a, rtol=1e-13)


def _finite_difference_gradient(net, X, Y, sw, alpha, eps=1e-6):
    numeric = np.empty_like(net.params)
    for i in range(net.params.size):
        orig = net.params[i]
        net.params[i] = orig + eps
        plus = net.loss(X, Y, sw, alpha)
        net.params[i] = orig - eps
        minus = net.loss(X, Y, sw, alpha)
        net.params[i] = orig
        numeric[i] = (plus - minus) / (2 * eps)
    return numeric


@pytest.mark.parametrize(
    "activation, output", list(itertools.product(sorted(ACTIVATIONS), sorted(OUTPUTS)))
)
@pytest.mark.parametrize("alpha, weighted", [(0.0, False), (0.3, True)])
def test_backprop_gradient_matches_finite_differences(
    activation, output, alpha, weighted, rng, make_targets
):
    net = _network(rng, activation=activation, output=output)
    X = rng.normal(size=(17, 5))
    Y = make_targets(output, rng, 17, 2)
    sw = rng.uniform(0, 3, size=17) if weighted else None
    loss, grad = net.loss_and_grad(X, Y, sw, alpha)
    assert loss == pytest.approx(net.loss(X, Y, sw, alpha), rel=1e-14)
    numeric = _finite_difference_gradient(net, X, Y, sw, alpha)
    assert np.abs(grad - numeric).max() / np.abs(numeric).max() < 1e-6


def test_l2_penalty_is_sklearns_alpha_over_twice_the_weight_sum(rng):
    net = _network(rng, activation="identity", output="identity")
    X, Y = rng.normal(size=(8, 5)), rng.normal(size=(8, 2))
    sw = rng.uniform(0.5, 2, size=8)
    squared_weights = sum((W**2).sum() for W in net.weights)  # biases excluded
    penalty = net.loss(X, Y, sw, alpha=0.7) - net.loss(X, Y, sw, alpha=0.0)
    assert penalty == pytest.approx(0.7 / (2 * sw.sum()) * squared_weights, rel=1e-12)


def test_integer_weights_equal_repeated_rows(rng, make_targets):
    net = _network(rng, activation="relu", output="logistic")
    X, Y = rng.normal(size=(9, 5)), make_targets("logistic", rng, 9, 2)
    counts = rng.randint(0, 4, size=9)
    counts[0] = 1
    loss_w, grad_w = net.loss_and_grad(X, Y, counts.astype(float), alpha=0.1)
    grad_w = grad_w.copy()  # the network reuses its gradient buffer
    loss_r, grad_r = net.loss_and_grad(
        np.repeat(X, counts, 0), np.repeat(Y, counts, 0), None, alpha=0.1
    )
    assert loss_w == pytest.approx(loss_r, rel=1e-12)
    assert_allclose(grad_w, grad_r, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_gives_the_dense_gradient(fmt, rng, make_targets):
    net = _network(rng)
    X = rng.normal(size=(12, 5)) * (rng.uniform(size=(12, 5)) > 0.5)
    Y = make_targets("softmax", rng, 12, 2)
    loss_d, grad_d = net.loss_and_grad(X, Y, None, 0.1)
    grad_d = grad_d.copy()  # the network reuses its gradient buffer
    loss_s, grad_s = net.loss_and_grad(sp.csr_matrix(X).asformat(fmt), Y, None, 0.1)
    assert loss_s == pytest.approx(loss_d, rel=1e-13)
    assert_allclose(grad_s, grad_d, rtol=1e-12, atol=1e-15)


def test_float32_network_computes_in_float32(rng, make_targets):
    net = _network(rng, dtype=np.float32)
    X = rng.normal(size=(6, 5)).astype(np.float32)
    Y = make_targets("softmax", rng, 6, 2).astype(np.float32)
    _, grad = net.loss_and_grad(X, Y, None, 0.1)
    assert net.forward(X).dtype == np.float32 and grad.dtype == np.float32


def test_network_without_hidden_layers_is_a_glm(rng):
    net = _network(rng, layer_sizes=[5, 2], activation="relu", output="logistic")
    X = rng.normal(size=(4, 5))
    assert_allclose(net.forward(X), expit(X @ net.weights[0] + net.biases[0]))


def test_wrong_sized_parameter_vector_is_refused():
    with pytest.raises(ValueError, match="need"):
        MLP([3, 2, 1], "relu", "identity", np.zeros(5))


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("weighted", [False, True])
def test_workspace_pass_equals_the_allocating_pass(output, weighted, rng, make_targets):
    """Training reuses scratch arrays across minibatches of varying size."""
    from skmlp._ops import Workspace

    net = _network(rng, activation="relu", output=output)
    workspace = Workspace(net.layer_sizes, max_rows=20, dtype=np.float64)
    for n in (20, 7, 20):  # a full batch, a short last batch, a full one again
        X, Y = rng.normal(size=(n, 5)), make_targets(output, rng, n, 2)
        sw = rng.uniform(0.1, 2, size=n) if weighted else None
        loss_ref, grad_ref = net.loss_and_grad(X, Y, sw, alpha=0.2)
        grad_ref = grad_ref.copy()
        loss, grad = net.loss_and_grad(X, Y, sw, alpha=0.2, workspace=workspace)
        assert loss == pytest.approx(loss_ref, rel=1e-14)
        assert_allclose(grad, grad_ref, rtol=1e-13, atol=1e-16)


# Where dropout's masks go: (layer sizes, one rate per hidden layer). Every hidden
# layer carries a mask in some case, alone and beside the others, so a wrong
# derivative under the mask of any layer (the last hidden one included) fails.
DROPOUT_PLACEMENTS = {
    "first of two": ([5, 4, 3, 2], [0.5, 0.0]),
    "last of two": ([5, 4, 3, 2], [0.0, 0.5]),
    "both of two": ([5, 4, 3, 2], [0.5, 0.5]),
    "the only one": ([5, 4, 2], [0.5]),
}


def _engines():
    """The numpy engine, and the compiled one (fused derivative with the mask)
    where numba is installed."""
    from skmlp._engines import numpy_engine
    from skmlp._ops import NUMPY

    compiled = numpy_engine(np.float64)
    return [NUMPY] if compiled is NUMPY else [NUMPY, compiled]


def _dropout_case(rng, make_targets, activation, placement, ops):
    """A network, data and fixed inverted-dropout masks (0 or 1 / (1 - p))."""
    layers, rates = DROPOUT_PLACEMENTS[placement]
    params = rng.normal(scale=0.5, size=n_parameters(layers))
    net = MLP(layers, activation, "softmax", params, ops=ops)
    X, Y = rng.normal(size=(15, 5)), make_targets("softmax", rng, 15, 2)
    masks = [
        None if p == 0 else (rng.uniform(size=(15, n)) >= p) / (1 - p)
        for p, n in zip(rates, layers[1:-1], strict=True)
    ]
    for mask in filter(lambda m: m is not None, masks):
        assert mask.min() == 0 and mask.max() == 2.0  # some units dropped, some kept
    return net, X, Y, masks


def _dropout_gradient_error(net, X, Y, masks):
    """Backprop against central differences of the loss with the same masks."""
    _, grad = net.loss_and_grad(X, Y, None, 0.1, masks=masks)
    grad = grad.copy()  # the network reuses its gradient buffer
    numeric = np.empty_like(net.params)
    for i in range(net.params.size):
        original = net.params[i]
        net.params[i] = original + 1e-6
        plus = net.loss(X, Y, None, 0.1, masks=masks)
        net.params[i] = original - 1e-6
        minus = net.loss(X, Y, None, 0.1, masks=masks)
        net.params[i] = original
        numeric[i] = (plus - minus) / 2e-6
    return np.abs(grad - numeric).max() / np.abs(numeric).max(), grad


@pytest.mark.parametrize("ops", _engines(), ids=lambda ops: type(ops).__name__)
@pytest.mark.parametrize("placement", DROPOUT_PLACEMENTS)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dropout_backward_matches_finite_differences_with_fixed_masks(
    activation, placement, ops, rng, make_targets
):
    """Inverted dropout: the gradient of the loss with the same fixed masks."""
    net, X, Y, masks = _dropout_case(rng, make_targets, activation, placement, ops)
    error, grad = _dropout_gradient_error(net, X, Y, masks)
    assert error < 1e-6
    # ...and the masks matter: the gradient differs from the mask-free one.
    _, plain = net.loss_and_grad(X, Y, None, 0.1)
    assert np.abs(plain - grad).max() > 1e-3


class _ForgetsDerivativeUnderMask:
    """An engine with one deliberate bug: under ``mask`` its backward step is
    delta * mask, without the activation's derivative f'(z)."""

    def __init__(self, ops, mask):
        self._ops, self._mask = ops, mask

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def activation_backward(self, activation, f_input, delta, mask=None):
        if mask is self._mask:
            delta *= mask
            return delta
        return self._ops.activation_backward(activation, f_input, delta, mask)


@pytest.mark.parametrize("placement", ["both of two", "the only one"])
@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"identity"}))
def test_dropout_check_catches_a_forgotten_derivative_under_the_last_mask(
    activation, placement, rng, make_targets
):
    """The check above fails if f'(z) is dropped where the last hidden layer
    has a mask (identity is left out: its f' is 1, so nothing is dropped)."""
    from skmlp._ops import NUMPY

    net, X, Y, masks = _dropout_case(rng, make_targets, activation, placement, NUMPY)
    net.ops = _ForgetsDerivativeUnderMask(NUMPY, masks[-1])
    error, _ = _dropout_gradient_error(net, X, Y, masks)
    assert error > 1e-3
