"""Every layer's backward pass against central finite differences, alone and in
stacks, for every output and loss, with dropout masks and with k > 1 members;
and a deliberately wrong derivative in each layer is caught."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skmlp._layers import (
    Activation,
    BatchEnsembleDense,
    CategoricalEmbedding,
    Context,
    Dense,
    Dropout,
    EnsembleAdapter,
    MemberHeads,
    ParametricActivation,
    PeriodicEmbedding,
    PiecewiseLinearEncoding,
    Scale,
)
from skmlp._losses import huber, quantile
from skmlp._ops import NUMPY
from skmlp._stack import Network

N, D, K = 7, 5, 3
NUMERIC = [0, 2, 3]


def _layer_cases():
    """(name, layer, rows of input, kept for a data-dependent init)."""
    return {
        "dense": (Dense(D, 4, "tanh"), N),
        "dense_ntk_selu": (Dense(D, 4, "selu", ntk=True, init="data"), N),
        "dense_mish": (Dense(D, 4, "mish"), N),
        "activation_gelu": (Activation("gelu"), N),
        "parametric_selu": (ParametricActivation(D, "selu"), N),
        "parametric_mish": (ParametricActivation(D, "mish"), N),
        "scale": (Scale(D), N),
        "periodic": (PeriodicEmbedding(D, NUMERIC), N),
        "piecewise_linear": (PiecewiseLinearEncoding(D, NUMERIC, n_bins=4), N),
        "adapter": (EnsembleAdapter(K, D), N),
        "batch_ensemble_first": (
            BatchEnsembleDense(D, 4, K, expand=True, random_signs=True),
            N,
        ),
        "batch_ensemble_ntk": (BatchEnsembleDense(D, 4, K, ntk=True), K * N),
        "member_heads": (MemberHeads(D, 2, K), K * N),
    }


LAYERS = _layer_cases()


def _setup(layer, rows, seed=0):
    """A one-layer network initialised on random rows; its perturbed
    parameters (so that no init symmetry hides a term) and an input X."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(rows, D))
    net = Network([layer], "identity")
    net.initialize(X, rng)
    net.params += 0.1 * rng.normal(size=net.params.shape)
    return net, X, rng


def _layer_loss(net, X, R):
    """A linear functional of the layer's output: L = sum(Y * R)."""
    Y, _ = net.forward(X, Context(NUMPY))
    return float(np.sum(Y * R))


def _layer_gradients(net, X, R):
    ctx = Context(NUMPY, input_grad=True)
    Y, (backprop,) = net.forward(X, ctx)
    dX = backprop(R.copy())
    return net.grad.copy(), dX


def _central(f, x, eps=1e-6):
    """Central differences of f() with respect to every entry of x, in place."""
    numeric = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        plus = f()
        x[i] = original - eps
        minus = f()
        x[i] = original
        numeric[i] = (plus - minus) / (2 * eps)
    return numeric


def _relative_error(a, b):
    scale = max(np.abs(a).max(), np.abs(b).max())
    return float(np.abs(a - b).max() / scale) if scale > 0 else 0.0


def _check_layer(net, X, rng):
    Y, _ = net.forward(X, Context(NUMPY))
    R = rng.normal(size=Y.shape)
    grad, dX = _layer_gradients(net, X, R)
    errors = {}
    if net.n_parameters:
        numeric = _central(lambda: _layer_loss(net, X, R), net.params)
        errors["params"] = _relative_error(grad, numeric)
    numeric_X = _central(lambda: _layer_loss(net, X, R), X)
    errors["X"] = _relative_error(dX, numeric_X)
    return errors


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layers_backward_matches_central_differences(name):
    layer, rows = LAYERS[name]
    net, X, rng = _setup(layer, rows)
    if isinstance(layer, PiecewiseLinearEncoding):  # away from the bin edges
        X = X + 1e-3 * np.sign(rng.normal(size=X.shape))
    for part, error in _check_layer(net, X, rng).items():
        assert error < 1e-6, (name, part, error)


def _wrong_gradient(layer, target):
    """The layer with one gradient (a parameter's, or dL/dX) off by 5%."""
    forward = layer.forward

    def wrong_forward(P, G, X, ctx):
        Y, backprop = forward(P, G, X, ctx)

        def wrong_backprop(dY):
            dX = backprop(dY)
            if target == "X":
                return dX * 1.05
            G[target][...] *= 1.05
            return dX

        return Y, wrong_backprop

    layer.forward = wrong_forward
    return layer


@pytest.mark.parametrize(
    "name, target",
    [
        (name, target)
        for name, (layer, _) in sorted(LAYERS.items())
        for target in [p.name for p in layer.params] + ["X"]
    ],
)
def test_a_wrong_derivative_in_any_layer_is_caught(name, target):
    layer, rows = _layer_cases()[name]  # a fresh layer to patch
    net, X, rng = _setup(_wrong_gradient(layer, target), rows)
    errors = _check_layer(net, X, rng)
    assert errors["params" if target != "X" else "X"] > 1e-3


def test_a_parametric_activation_that_forgets_alpha_in_its_derivative_is_caught(
    monkeypatch,
):
    """A plausible slip: dL/dX = dL/dY f'(X), the wrapper's alpha forgotten."""
    layer = ParametricActivation(D, "selu")
    net, X, rng = _setup(layer, N)
    assert _check_layer(net, X, rng)["X"] < 1e-6
    forward = layer.forward

    def slipped(P, G, X, ctx):
        Y, backprop = forward(P, G, X, ctx)
        fX = X.copy()
        from skmlp._activations import ACTIVATIONS

        a = ACTIVATIONS["selu"].forward(fX)

        def wrong(dY):
            backprop(dY)
            delta = dY.copy()
            ACTIVATIONS["selu"].backward(a, delta)
            return delta

        return Y, wrong

    monkeypatch.setattr(layer, "forward", slipped)
    assert _check_layer(net, X, rng)["X"] > 1e-3


def _embedding_setup(wrong=None):
    """A table with two code columns (cardinalities 3 and 5) among numbers."""
    rng = np.random.RandomState(7)
    X = rng.normal(size=(N, D))
    X[:, 1] = rng.randint(0, 3, size=N)
    X[:, 4] = rng.randint(0, 5, size=N)
    layer = CategoricalEmbedding(D, [1, 4], [3, 5], dim=2)
    if wrong is not None:
        layer = _wrong_gradient(layer, wrong)
    net = Network([layer], "identity").initialize(X, rng)
    Y, _ = net.forward(X, Context(NUMPY))
    R = rng.normal(size=Y.shape)
    grad, dX = _layer_gradients(net, X, R)
    numeric = _central(lambda: _layer_loss(net, X, R), net.params)
    numbers = X[:, [0, 2, 3]]  # codes are indices: only the numbers vary

    def loss_of_numbers():
        X[:, [0, 2, 3]] = numbers
        return _layer_loss(net, X, R)

    numeric_X = _central(loss_of_numbers, numbers)
    return (
        _relative_error(grad, numeric),
        _relative_error(dX[:, [0, 2, 3]], numeric_X),
        dX[:, [1, 4]],
    )


def test_categorical_embedding_backward_matches_central_differences():
    params_error, numbers_error, codes_gradient = _embedding_setup()
    assert params_error < 1e-6 and numbers_error < 1e-6
    assert not codes_gradient.any()


@pytest.mark.parametrize("target", ["E0", "E1", "X"])
def test_a_wrong_embedding_gradient_is_caught(target):
    params_error, numbers_error, _ = _embedding_setup(wrong=target)
    assert (numbers_error if target == "X" else params_error) > 1e-3


def test_categorical_embedding_looks_up_each_codes_row():
    X = np.array([[0.5, 2.0], [-1.0, 0.0], [2.0, 1.0]])
    layer = CategoricalEmbedding(2, [1], [3], dim=2)
    net = Network([layer], "identity")
    E = np.arange(6.0).reshape(3, 2)
    net.views[0]["E0"][...] = E
    Y, _ = net.forward(X)
    assert_allclose(Y, np.c_[E[[2, 0, 1]], X[:, 0]])


# ---- stacks -----------------------------------------------------------------

OUTPUTS_AND_TARGETS = {
    "identity": lambda rng, n: rng.normal(size=(n, 2)),  # squared error
    "logistic": lambda rng, n: rng.randint(0, 2, size=(n, 2)).astype(float),
    "softmax": lambda rng, n: np.eye(3)[rng.randint(0, 3, size=n)],
    "exp": lambda rng, n: rng.poisson(2.0, size=(n, 2)).astype(float),  # Poisson
    "absolute_error": lambda rng, n: rng.normal(size=(n, 2)),
    "huber": lambda rng, n: 3 * rng.normal(size=(n, 2)),  # both of its branches
    "quantile": lambda rng, n: rng.normal(size=(n, 2)),
}
# Every output and loss the estimators train with (huber and quantile are
# built with their parameter).
OUTPUT_OBJECTS = {"huber": huber(1.0), "quantile": quantile(0.3)}


def _stacks(n_outputs):
    """Stacks as the tabular estimators will build them."""
    width = 6
    pbld_width = len(NUMERIC) * 4 + (D - len(NUMERIC))
    return {
        "realmlp": (
            [
                Scale(D),
                PeriodicEmbedding(D, NUMERIC),
                Dense(pbld_width, width, "identity", ntk=True, init="data"),
                ParametricActivation(width, "selu"),
                Dropout(0.3),
                Dense(width, width, "identity", ntk=True, init="data"),
                ParametricActivation(width, "mish"),
                Dense(width, n_outputs, ntk=True),
            ],
            1,
        ),
        "drop_in_with_masks": (
            [
                Dense(D, width, "relu"),
                Dense(width, width, "tanh"),
                Dense(width, n_outputs),
            ],
            1,
        ),
        "tabm": (
            [
                PiecewiseLinearEncoding(D, NUMERIC, n_bins=3),
                BatchEnsembleDense(
                    len(NUMERIC) * 3 + 2, width, K, expand=True, random_signs=True
                ),
                Activation("relu"),
                Dropout(0.2),
                BatchEnsembleDense(width, width, K),
                Activation("relu"),
                MemberHeads(width, n_outputs, K),
            ],
            K,
        ),
        "tabm_mini": (
            [
                EnsembleAdapter(K, D),
                Dense(D, width, "selu"),
                Dense(width, width, "gelu"),
                MemberHeads(width, n_outputs, K),
            ],
            K,
        ),
    }


STACK_NAMES = ["realmlp", "drop_in_with_masks", "tabm", "tabm_mini"]


def _fixed_masks(net, X, rng):
    """Dropout masks for the Dropout layers, and for the hidden Dense layers
    (the drop-ins' fused masks): every hidden layer of these stacks gets one."""
    masks, a, ctx = {}, X, Context(NUMPY)
    for i, layer in enumerate(net.layers):
        ctx.index = i
        before = a
        a, _ = layer.forward(net.views[i], net.grad_views[i], a, ctx)
        shape = None
        if isinstance(layer, Dropout):
            shape = before.shape
        elif isinstance(layer, Dense) and layer.activation != "identity":
            shape = a.shape
        if shape is not None:
            masks[i] = (rng.uniform(size=shape) > 0.4) / 0.6
    return masks


@pytest.mark.parametrize("output", sorted(OUTPUTS_AND_TARGETS))
@pytest.mark.parametrize("stack", STACK_NAMES)
@pytest.mark.parametrize("weighted", [False, True])
def test_stack_gradient_matches_central_differences(stack, output, weighted):
    rng = np.random.RandomState(1)
    n_outputs = 3 if output == "softmax" else 2
    layers, k = _stacks(n_outputs)[stack]
    X = rng.normal(size=(N, D))
    Y = OUTPUTS_AND_TARGETS[output](rng, N)
    sample_weight = rng.uniform(0.5, 2, size=N) if weighted else None
    net = Network(layers, OUTPUT_OBJECTS.get(output, output), n_members=k)
    net.initialize(X, rng)
    net.params += 0.05 * rng.normal(size=net.params.shape)
    masks = _fixed_masks(net, X, rng)
    assert masks, "every stack here has dropout somewhere"
    alpha = 0.3

    def objective():
        ctx = Context(NUMPY, train=True, masks=masks)
        return net.loss(X, Y, sample_weight, alpha, ctx)

    loss, grad = net.loss_and_grad(
        X, Y, sample_weight, alpha, Context(NUMPY, train=True, masks=masks)
    )
    assert loss == pytest.approx(objective(), rel=1e-12)
    numeric = _central(objective, net.params)
    assert _relative_error(grad, numeric) < 1e-6


def test_the_ensemble_loss_is_the_mean_of_the_members_losses():
    """Not the loss of the mean prediction: each member's own cross-entropy,
    computed here member by member with an independent formula."""
    rng = np.random.RandomState(2)
    layers, k = _stacks(3)["tabm_mini"]
    X = rng.normal(size=(N, D))
    Y = np.eye(3)[rng.randint(0, 3, size=N)]
    net = Network(layers, "softmax", n_members=k).initialize(X, rng)
    Z, _ = net.forward(X)
    members = Z.reshape(k, N, 3)
    log_p = members - np.log(np.exp(members).sum(axis=2, keepdims=True))
    expected = np.mean([-(Y * log_p[i]).sum(axis=1).mean() for i in range(k)])
    assert net.loss(X, Y) == pytest.approx(expected, rel=1e-10)
    mean_prediction = np.exp(log_p).mean(axis=0)
    assert_allclose(net.predict(X), mean_prediction, rtol=1e-12)
    assert net.loss(X, Y) != pytest.approx(
        -(Y * np.log(mean_prediction)).sum(axis=1).mean(), rel=1e-6
    )


def test_a_dense_only_stack_is_packed_as_scikit_learns_mlp():
    """Every weight matrix, in layer order, then every bias."""
    net = Network([Dense(3, 4, "relu"), Dense(4, 2)], "identity")
    starts = {(i, p.name): (start, stop) for i, p, start, stop in net.layout}
    assert starts == {
        (0, "W"): (0, 12),
        (1, "W"): (12, 20),
        (0, "b"): (20, 24),
        (1, "b"): (24, 26),
    }
    assert net.n_weights == 20


def test_groups_are_runs_of_equal_multipliers():
    layers = [Scale(D), Dense(D, 3, ntk=True, bias_lr_scale=0.1, bias_wd_scale=0.0)]
    net = Network(layers, "identity")
    # Dense's W is penalized, so packed first; then Scale's s, then Dense's b.
    assert net.groups() == [(0, 15, 1.0, 1.0), (15, 20, 6.0, 0.0), (20, 23, 0.1, 0.0)]


def test_data_dependent_init_gives_unit_std_preactivations_with_kinks_in_the_data():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(200, D)) * [1, 10, 0.1, 5, 1]
    layer = Dense(D, 8, "identity", ntk=True, init="data")
    net = Network([layer], "identity").initialize(X, rng)
    W, b = net.views[0]["W"], net.views[0]["b"]
    z = X @ W / np.sqrt(D)
    assert_allclose(z.std(axis=0), 1.0, rtol=1e-10)
    # The same draws, replayed: each bias is minus a Dirichlet(1)-weighted
    # average of the unit's (standardised) pre-activations at 5 random rows.
    replay = np.random.RandomState(3)
    replay.normal(size=(200, D))  # X's draw
    W0 = replay.standard_normal((D, 8))
    z0 = X @ W0 / np.sqrt(D)
    z0 /= z0.std(axis=0)
    rows = replay.randint(200, size=(5, 8))
    d = replay.exponential(size=(5, 8))
    d /= d.sum(axis=0)
    expected = -np.array([d[:, j] @ z0[rows[:, j], j] for j in range(8)])
    assert_allclose(b, expected, rtol=1e-12)
    assert ((-b >= z.min(axis=0)) & (-b <= z.max(axis=0))).all()


def test_periodic_embedding_matches_its_formula():
    layer = PeriodicEmbedding(D, NUMERIC)
    net, X, _ = _setup(layer, N)
    P = net.views[0]
    Y, _ = net.forward(X)
    for position, j in enumerate(NUMERIC):
        x = X[:, j : j + 1]
        h = np.cos(2 * np.pi * P["w"][position] * x + P["phi"][position])
        e = h @ P["V"][position] + P["c"][position]
        assert_allclose(Y[:, 4 * position], X[:, j])
        assert_allclose(Y[:, 4 * position + 1 : 4 * position + 4], e, rtol=1e-12)
    others = [j for j in range(D) if j not in NUMERIC]
    assert_allclose(Y[:, 4 * len(NUMERIC) :], X[:, others])


def test_piecewise_linear_encoding_matches_its_formula():
    rng = np.random.RandomState(5)
    X_train = rng.normal(size=(100, D))
    layer = PiecewiseLinearEncoding(D, [1], n_bins=4)
    Network([layer], "identity").initialize(X_train, rng)
    edges = np.quantile(X_train[:, 1], [0, 0.25, 0.5, 0.75, 1])
    x = np.array([edges[0] - 1, (edges[1] + edges[2]) / 2, edges[4] + 2])
    X = np.zeros((3, D))
    X[:, 1] = x
    Y, _ = layer.forward({}, {}, X, Context(NUMPY))
    expected = np.array(
        [
            [(x[0] - edges[0]) / (edges[1] - edges[0]), 0, 0, 0],  # below: linear
            [1, 0.5, 0, 0],
            [1, 1, 1, (x[2] - edges[3]) / (edges[4] - edges[3])],  # above: linear
        ]
    )
    assert_allclose(Y[:, :4], expected, rtol=1e-12)
    assert_allclose(Y[:, 4:], X[:, [0, 2, 3, 4]])


def test_piecewise_linear_encoding_gives_a_repeated_quantile_one_step():
    # A column of three values, 0 (half the rows), 1 and 3: its 9 quantiles
    # (numpy's linear rule) are 0, 0, 0, 0, 0.5, 1, 1.5, 3, 3. Written out:
    # the first bin is the step x >= 0 and its two repeats are 0; four ramps;
    # the last bin, of zero width, the step x >= 3.
    column = np.array([0.0] * 50 + [1.0] * 25 + [3.0] * 25)
    X_train = np.column_stack([column, np.zeros(100)])
    layer = PiecewiseLinearEncoding(2, [0], n_bins=8)
    Network([layer], "identity").initialize(X_train, np.random.RandomState(0))
    assert_allclose(layer.edges[0], [0, 0, 0, 0, 0.5, 1, 1.5, 3, 3], atol=1e-12)
    x = np.array([-1.0, 0.0, 0.25, 1.0, 2.5, 3.0, 4.0])
    Y, _ = layer.forward({}, {}, np.column_stack([x, np.zeros(7)]), Context(NUMPY))

    def ramp(low, high):
        return np.clip((x - low) / (high - low), 0, 1)

    def step(q):
        return (x >= q).astype(float)

    zero = np.zeros_like(x)
    expected = np.column_stack(
        [
            step(0), zero, zero,
            ramp(0, 0.5), ramp(0.5, 1), ramp(1, 1.5), ramp(1.5, 3),
            step(3),
        ]
    )  # fmt: skip
    assert_allclose(Y[:, :8], expected, rtol=1e-12)


def test_batch_ensemble_members_compute_their_own_linear_maps():
    """Member i: ((x r_i) W) s_i + b_i, written out member by member."""
    layer = BatchEnsembleDense(D, 4, K, expand=True, random_signs=True)
    net, X, _ = _setup(layer, N)
    P = net.views[0]
    Y, _ = net.forward(X)
    for i in range(K):
        expected = ((X * P["r"][i]) @ P["W"]) * P["s"][i] + P["b"][i]
        assert_allclose(Y[i * N : (i + 1) * N], expected, rtol=1e-12)


# ---- engines ----------------------------------------------------------------


def _array_api_ops(name):
    from skmlp._ops import ArrayAPIOps

    if name == "torch":
        torch = pytest.importorskip("torch")
        from sklearn.externals.array_api_compat import torch as xp

        return ArrayAPIOps(xp, torch.device("cpu"))
    xp = pytest.importorskip("array_api_strict")
    return ArrayAPIOps(xp, xp.asarray(0.0).device)


def _compiled_ops():
    pytest.importorskip("numba")
    from skmlp._numba import NumbaOps

    return NumbaOps()


@pytest.mark.parametrize("engine", ["array_api_strict", "torch", "numba"])
@pytest.mark.parametrize("stack", STACK_NAMES)
@pytest.mark.parametrize("output", ["softmax", "identity"])
def test_every_engine_gives_numpys_loss_and_gradient(engine, stack, output):
    """The same layer source on torch, array-api-strict and the compiled
    engine: loss, gradient and predictions equal numpy's to rounding."""
    ops = _compiled_ops() if engine == "numba" else _array_api_ops(engine)
    rng = np.random.RandomState(6)
    n_outputs = 3 if output == "softmax" else 2
    layers, k = _stacks(n_outputs)[stack]
    X = rng.normal(size=(N, D))
    Y = OUTPUTS_AND_TARGETS[output](rng, N)
    w = rng.uniform(0.5, 2, size=N)
    reference = Network(layers, output, n_members=k).initialize(X, rng)
    # Off the data-dependent init, which puts one row exactly at each unit's
    # kink, where engines may take either side's derivative.
    reference.params += 0.05 * rng.normal(size=reference.params.shape)
    masks = _fixed_masks(reference, X, rng)
    loss, grad = reference.loss_and_grad(
        X, Y, w, 0.1, Context(NUMPY, train=True, masks=masks)
    )
    prediction = reference.predict(X)

    def on(array):
        return ops.asarray(array)

    net = Network(layers, output, on(reference.params), n_members=k, ops=ops)
    engine_masks = {i: on(m) for i, m in masks.items()}
    engine_loss, engine_grad = net.loss_and_grad(
        on(X), on(Y), on(w), 0.1, Context(ops, train=True, masks=engine_masks)
    )
    assert float(engine_loss) == pytest.approx(float(loss), rel=1e-12)
    assert_allclose(np.asarray(ops.to_numpy(engine_grad)), grad, rtol=1e-10, atol=1e-13)
    assert_allclose(
        np.asarray(ops.to_numpy(net.predict(on(X)))), prediction, rtol=1e-12
    )


def test_dropout_masks_keep_the_expected_share_and_mean_one():
    rng = np.random.RandomState(8)
    X = np.ones((400, 250), dtype=np.float32)
    Y, backprop = Dropout(0.3).forward({}, {}, X, Context(NUMPY, train=True, rng=rng))
    kept = Y > 0
    # 100,000 Bernoulli(0.7) draws: the share is 0.7 within 5 standard errors
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.21 / kept.size)
    scale = Y[kept]
    assert_allclose(scale, 65536 / (65536 - round(0.3 * 65536)), rtol=1e-6)
    assert_allclose(backprop(np.ones_like(X)), Y)  # the same mask backward
    evaluated, _ = Dropout(0.3).forward({}, {}, X, Context(NUMPY, train=False))
    assert evaluated is X


def _bag_cases():
    """The layers with predict_bags, and an input for them (codes in
    columns 1 and 4 for the embedding)."""
    cases = {
        name: layer
        for name, (layer, _) in _layer_cases().items()
        if layer.predict_bags is not None
    }
    cases["dropout"] = Dropout(0.3)
    cases["output_dense"] = Dense(D, 3, ntk=True, init="data", output=None)
    cases["embedding"] = CategoricalEmbedding(D, [1, 4], [3, 5], dim=2)
    return cases


BAG_LAYERS = sorted(_bag_cases())


@pytest.mark.parametrize("engine", ["numpy", "array_api_strict", "torch"])
@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("name", BAG_LAYERS)
def test_predict_bags_gives_each_bags_forward(name, shared_input, engine):
    # B = 3 copies of a layer, each with its own parameters, in one call:
    # bag b's slice must be what the layer's numpy forward gives with bag b's
    # parameters (its own input slice when the input has a bag axis), on
    # every engine.
    ops = NUMPY if engine == "numpy" else _array_api_ops(engine)
    layer = _bag_cases()[name]
    rng = np.random.RandomState(3)
    inputs = rng.normal(size=(3, N, D))
    inputs[:, :, 1] = rng.randint(0, 3, size=(3, N))  # codes for the embedding
    inputs[:, :, 4] = rng.randint(0, 5, size=(3, N))
    nets = []
    for b in range(3):
        net = Network([layer], "identity").initialize(inputs[b], rng)
        net.params += 0.1 * rng.normal(size=net.params.shape)
        nets.append(net)
    flat = np.stack([net.params for net in nets])
    P = {
        p.name: flat[:, start:stop].reshape((3, *p.shape))
        for _, p, start, stop in nets[0].layout
    }
    X = inputs[0] if shared_input else inputs
    stacked = layer.predict_bags(
        {k: ops.asarray(v) for k, v in P.items()}, ops.asarray(X), ops
    )
    stacked = np.asarray(ops.to_numpy(stacked))
    for b, net in enumerate(nets):
        own, _ = layer.forward(
            net.views[0], None, X if shared_input else X[b], Context(NUMPY)
        )
        got = stacked if stacked.ndim == 2 else stacked[b]
        assert_allclose(got, own, rtol=1e-12, atol=1e-14)
