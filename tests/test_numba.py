"""The compiled engine (numba kernels) against numpy's, and how it is chosen.

Where a kernel performs the numpy implementation's operations in the same
order (the bias add and relu, relu's derivative with dropout's mask, the
SGD and Adam updates with the L2 penalty), the results must be equal bit for
bit, in float64 and float32. Softmax and the cross-entropy differ in the
order of their sums and in the exp/log of the math library: to a few ulps,
checked here at 1e-14 (float64) and 1e-6 (float32) relative.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits

import skmlp._engines as engines_module
from skmlp import BackpropClassifier
from skmlp._engines import CompiledEngineWarning, numpy_engine
from skmlp._losses import OUTPUTS
from skmlp._ops import NUMPY

pytest.importorskip("numba")

from skmlp._numba import NumbaOps  # noqa: E402

NUMBA = NumbaOps()
DTYPES = [np.float64, np.float32]
CLOSE = {np.float64: 1e-14, np.float32: 1e-6}


def _arrays(rng, dtype, *shapes):
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "identity", "leaky_relu"])
def test_bias_and_activation_are_bit_equal(dtype, activation, rng):
    z, b = _arrays(rng, dtype, (50, 7), (7,))
    z[0, 0] = np.nan  # a diverged value stays NaN
    expected, _ = NUMPY.activate(activation, z.copy(), b)
    got, _ = NUMBA.activate(activation, z.copy(), b)
    assert_array_equal(got, expected)


FUSED_DERIVATIVES = ["relu", "identity", "leaky_relu", "elu", "tanh", "logistic"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FUSED_DERIVATIVES)
@pytest.mark.parametrize("dropout", [False, True])
def test_derivative_with_dropout_mask_is_bit_equal(dtype, activation, dropout, rng):
    z, delta = _arrays(rng, dtype, (50, 7), (50, 7))
    z *= 4  # saturating tanh and logistic too
    a, _ = NUMPY.activate(activation, z, np.zeros(7, dtype))  # the layer's output
    a[0, 0] = np.nan  # a diverged value
    mask = None
    if dropout:
        mask = ((rng.uniform(size=(50, 7)) > 0.3) / 0.7).astype(dtype)
    expected = NUMPY.activation_backward(activation, a, delta.copy(), mask)
    got = NUMBA.activation_backward(activation, a, delta.copy(), mask)
    assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["adam", "sgd", "nesterov"])
def test_optimizer_updates_are_bit_equal(dtype, solver, rng):
    size, n_weights = 1000, 600
    params, grad = _arrays(rng, dtype, (size,), (size,))
    moments = [np.abs(m) for m in _arrays(rng, dtype, (size,), (size,))]
    results = []
    for engine in (NUMPY, NUMBA):
        p, g, m = params.copy(), grad.copy(), [x.copy() for x in moments]
        if solver == "adam":
            engine.adam_update(
                p, g, m[0], m[1], 0.01, 0.9, 0.999, 1e-8, n_weights, 0.05
            )
        else:
            nesterov = solver == "nesterov"
            engine.sgd_update(p, g, m[0], 0.01, 0.9, nesterov, n_weights, 0.05)
        results.append((p, m))
    (p_np, m_np), (p_nb, m_nb) = results
    assert p_nb.dtype == dtype
    assert_array_equal(p_nb, p_np)
    for expected, got in zip(m_np, m_nb, strict=True):
        assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "logistic"])
@pytest.mark.parametrize("weighted", [False, True])
def test_output_loss_and_delta_agree_to_a_few_ulps(dtype, output, weighted, rng):
    n, k = 64, 5
    z, b = _arrays(rng, dtype, (n, k), (k,))
    z[0] = [-60, -1, 0, 1, 60]  # clipped probabilities
    if output == "softmax":
        Y = np.eye(k, dtype=bool)[rng.randint(k, size=n)]
    else:
        Y = rng.uniform(size=(n, k)) > 0.5
    w = rng.uniform(size=n).astype(dtype) if weighted else None
    w = None if w is None else w / w.sum()
    spec = OUTPUTS[output]
    P = NUMPY.output_activate(spec, z.copy(), b)
    P_nb = NUMBA.output_activate(spec, z.copy(), b)
    assert_allclose(P_nb, P, rtol=CLOSE[dtype], atol=0)
    loss, delta = NUMPY.output_loss_and_delta(spec, Y, P.copy(), w)
    loss_nb, delta_nb = NUMBA.output_loss_and_delta(spec, Y, P.copy(), w)
    assert loss_nb == pytest.approx(loss, rel=CLOSE[dtype])
    assert_array_equal(delta_nb, delta)  # the same P gives the same P - Y


@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_gather_is_exact_and_column_sums_agree(dtype, rng):
    X = rng.normal(size=(100, 6)).astype(dtype)
    Y = rng.uniform(size=(100, 3)) > 0.5
    rows = rng.permutation(100)[:30]
    for array in (X, Y):
        buffer = np.empty((40, array.shape[1]), array.dtype)
        got = NUMBA.take_rows(array, rows, buffer)
        assert got.shape == (30, array.shape[1])
        assert_array_equal(got, array[rows])
    delta = X[:50]
    out_np, out_nb = np.empty(6, dtype), np.empty(6, dtype)
    NUMPY.bias_gradient(delta, np.ones(50, dtype), out_np)
    NUMBA.bias_gradient(delta, None, out_nb)
    assert_allclose(out_nb, out_np, rtol=CLOSE[dtype] * 10, atol=CLOSE[dtype])


def test_a_fit_uses_the_compiled_engine_and_matches_numpy(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X = X[:500] / 16
    monkeypatch.setenv("SKMLP_ENGINE", "numba")
    numpy_engine(np.float64)  # compiled (or loaded) before counting
    calls = []
    original = NumbaOps.adam_update

    def counting(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(NumbaOps, "adam_update", counting)
    fits = {}
    for engine in ("numba", "numpy"):
        monkeypatch.setenv("SKMLP_ENGINE", engine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[engine] = BackpropClassifier((32,), max_iter=15, random_state=0).fit(
                X, y[:500]
            )
    assert len(calls) == 15 * 3  # 3 minibatches of at most 200 rows per epoch
    # Bit-equal steps but for the loss's sums and softmax's exp: the same fit.
    assert_allclose(fits["numba"].loss_curve_, fits["numpy"].loss_curve_, rtol=1e-12)
    for W, W_ref in zip(fits["numba"].coefs_, fits["numpy"].coefs_, strict=True):
        assert_allclose(W, W_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "leaky_relu", "elu"])
def test_a_fit_with_another_fused_activation_matches_numpy(activation, monkeypatch):
    """The kernels are called (counted) and the fit is numpy's."""
    import skmlp._numba as compiled

    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16, y[:400]
    numpy_engine(np.float64)
    calls = []
    kernel = compiled._BACKWARD[activation]
    monkeypatch.setitem(
        compiled._BACKWARD, activation, lambda *a: calls.append(1) or kernel(*a)
    )
    fits = {}
    for engine in ("numba", "numpy"):
        monkeypatch.setenv("SKMLP_ENGINE", engine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[engine] = BackpropClassifier(
                (24, 12), activation=activation, max_iter=10, random_state=0
            ).fit(X, y)
    assert len(calls) == 10 * 2 * 2  # epochs x minibatches x hidden layers
    assert_allclose(fits["numba"].loss_curve_, fits["numpy"].loss_curve_, rtol=1e-12)
    for W, W_ref in zip(fits["numba"].coefs_, fits["numpy"].coefs_, strict=True):
        assert_allclose(W, W_ref, rtol=1e-10, atol=1e-13)


def test_skmlp_engine_chooses(monkeypatch):
    monkeypatch.setenv("SKMLP_ENGINE", "numpy")
    assert numpy_engine(np.float64) is NUMPY
    monkeypatch.setenv("SKMLP_ENGINE", "numba")
    assert isinstance(numpy_engine(np.float64), NumbaOps)
    monkeypatch.setenv("SKMLP_ENGINE", "fast please")
    with pytest.raises(ValueError, match="SKMLP_ENGINE='fast please'.*'numpy'"):
        numpy_engine(np.float64)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_broken_numba_falls_back_to_numpy_with_one_warning(monkeypatch):
    def broken(self, dtype):
        raise RuntimeError("LLVM ERROR: this CPU lacks an instruction")

    monkeypatch.setattr(NumbaOps, "compile", broken)
    monkeypatch.setattr(engines_module, "_NUMPY_ENGINES", {})
    monkeypatch.delenv("SKMLP_ENGINE", raising=False)
    with pytest.warns(CompiledEngineWarning, match="LLVM ERROR.*numpy engine"):
        assert numpy_engine(np.float64) is NUMPY
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledEngineWarning)  # no second one
        assert numpy_engine(np.float64) is NUMPY
        X, y = load_digits(return_X_y=True)
        BackpropClassifier((4,), max_iter=300, random_state=0).fit(X[:50] / 16, y[:50])
    monkeypatch.setenv("SKMLP_ENGINE", "numba")  # required: the error itself
    with pytest.raises(RuntimeError, match="LLVM ERROR"):
        numpy_engine(np.float64)


def test_without_numba_numpy_is_used_and_numba_required_says_how(monkeypatch):
    real_find_spec = engines_module.importlib.util.find_spec
    monkeypatch.setattr(
        engines_module.importlib.util,
        "find_spec",
        lambda name: None if name == "numba" else real_find_spec(name),
    )
    monkeypatch.setattr(engines_module, "_NUMPY_ENGINES", {})
    monkeypatch.delenv("SKMLP_ENGINE", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an optional extra: silence
        assert numpy_engine(np.float32) is NUMPY
    monkeypatch.setenv("SKMLP_ENGINE", "numba")
    with pytest.raises(ImportError, match=r"skmlp\[fast\]"):
        numpy_engine(np.float32)


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    """numba raises at decoration when no cache location is writable (a
    read-only install, no home): the kernel is then compiled per process."""
    import skmlp._numba as compiled

    real_njit = compiled.numba.njit

    def njit(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(**options)

    monkeypatch.setattr(compiled.numba, "njit", njit)
    kernel = compiled._kernel(lambda x: x + 1)
    assert kernel(1.5) == 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_targets_take_numpys_loss_and_delta(dtype):
    """Label-smoothed targets (not 0/1) must not reach the fused kernel, which
    reads class indicators: the compiled engine equals the formula
    -sum t log p and its delta p - t (mean over rows)."""
    rng = np.random.RandomState(3)
    Z = rng.normal(size=(6, 3)).astype(dtype)
    T = np.full((6, 3), 0.1 / 3, dtype=dtype)
    T[np.arange(6), rng.randint(0, 3, 6)] += 0.9
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    loss, delta = NUMBA.output_loss_and_delta(OUTPUTS["softmax"], T, P.copy(), None)
    assert loss == pytest.approx(-(T * np.log(P)).sum(axis=1).mean(), rel=CLOSE[dtype])
    assert_allclose(delta, (P - T) / 6, rtol=CLOSE[dtype] * 10, atol=1e-7)


# ---- the tabular layers' kernels ---------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_grouped_adamw_kernel_is_bit_equal_to_numpys_run_by_run(dtype, rng):
    """One fused pass over every parameter group equals numpy's loop over the
    runs (decay p *= 1 - lr wd wd_scale, then Adam with lr lr_scale), bit for
    bit, over several steps of a decaying schedule."""
    from skmlp._optimizers import Adam

    groups = [(0, 7, 1.0, 1.0), (7, 9, 0.1, 0.0), (9, 30, 6.0, 0.5), (30, 31, 1, 1)]
    params = rng.normal(size=31).astype(dtype)
    states, optimizers = [], []
    for ops in (NUMPY, NUMBA):
        state = Adam.new_state(params, 0.0, ops)
        optimizers.append(
            Adam(state, 0.0, 0.9, 0.95, 1e-8, ops=ops, groups=groups, weight_decay=0.02)
        )
        states.append((params.copy(), state))
    for step in range(5):
        grad = rng.normal(size=31).astype(dtype)
        for optimizer, (p, _) in zip(optimizers, states, strict=True):
            optimizer.learning_rate_init = 0.04 / (step + 1)
            optimizer.step(p, grad.copy())
    (p_numpy, s_numpy), (p_numba, s_numba) = states
    assert_array_equal(p_numba, p_numpy)
    assert_array_equal(s_numba["m_sum"], s_numpy["m_sum"])
    assert_array_equal(s_numba["v"], s_numpy["v"])
    assert not np.array_equal(p_numpy, params)  # the steps did move them


def _splitmix64_lanes(seed, size):
    """The dropout generator in plain Python integers (independent of both
    engines' vectorised code): lane i % 4 of splitmix64(seed + (i//4 + 1) g)."""
    mask64 = (1 << 64) - 1
    out = []
    for i in range(size):
        z = (seed + (i // 4 + 1) * 0x9E3779B97F4A7C15) & mask64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        z ^= z >> 31
        out.append((z >> (16 * (i % 4))) & 0xFFFF)
    return np.array(out)


def test_dropout_bits_are_splitmix64_lanes():
    from skmlp._layers import dropout_bits

    for seed in (0, 12345, 2**63 - 25):
        assert_array_equal(dropout_bits(203, seed), _splitmix64_lanes(seed, 203))


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_dropout_draws_numpys_masks(dtype):
    """Same rng, same masks on both engines (and so the same fits)."""
    from skmlp._layers import Context, Dropout

    X = np.random.RandomState(0).normal(size=(67, 33)).astype(dtype)
    results = []
    for ops in (NUMPY, NUMBA):
        ctx = Context(ops, train=True, rng=np.random.RandomState(3))
        Y, backprop = Dropout(0.3).forward({}, {}, X, ctx)
        results.append((Y, backprop(np.ones_like(X))))
    (Y_numpy, m_numpy), (Y_numba, m_numba) = results
    assert_array_equal(Y_numba, Y_numpy)
    assert_array_equal(m_numba, m_numpy)
    kept = m_numpy > 0
    assert 0.6 < kept.mean() < 0.8 and Y_numpy.dtype == dtype


def test_dropout_bits_are_uniform_and_seeds_give_other_masks():
    from skmlp._layers import dropout_bits

    bits = dropout_bits(160_000, 7)
    counts = np.bincount(bits >> 12, minlength=16)  # 16 equal buckets
    expected = len(bits) / 16
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 45  # 15 degrees of freedom: P(chi2 > 45) < 1e-4
    # Neighbouring entries and neighbouring seeds are not correlated.
    a, b = bits[:-1].astype(float), bits[1:].astype(float)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    other = dropout_bits(160_000, 8).astype(float)
    assert abs(np.corrcoef(bits.astype(float), other)[0, 1]) < 0.02


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["selu", "mish"])
def test_fused_parametric_activation_equals_its_formula(dtype, activation, rng):
    """Y = X + alpha (f(X) - X), dL/dalpha = sum dY (f(X) - X) and dL/dX =
    dY (1 - alpha) + dY alpha f'(X), f and f' from _activations' numpy code,
    over the whole range (including Mish's cutoff and SELU's negative side)."""
    from skmlp._activations import ACTIVATIONS

    X = (rng.normal(size=(40, 9)) * 8).astype(dtype)
    X[0, :3] = (-30, 0, 30)
    alpha = rng.uniform(0.2, 1.5, size=9).astype(dtype)
    dY = rng.normal(size=X.shape).astype(dtype)
    Y, D, F = NUMBA.parametric_forward(activation, X, alpha)
    dalpha = np.empty_like(alpha)
    dX = NUMBA.parametric_backward(dY, alpha, D, F, dalpha)
    f = ACTIVATIONS[activation]
    fX = f.forward(X.astype(np.float64))
    slope = np.ones_like(fX)
    f.backward(X.astype(np.float64) if f.from_input else fX, slope)
    tol = CLOSE[dtype] * 10
    assert_allclose(Y, X + alpha * (fX - X), rtol=tol, atol=tol)
    assert_allclose(dalpha, (dY * (fX - X)).sum(axis=0), rtol=tol * 10, atol=tol * 10)
    assert_allclose(dX, dY * (1 - alpha) + dY * alpha * slope, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ntk_scale_and_bias_kernels_equal_numpy(dtype, rng):
    z, b, delta = _arrays(rng, dtype, (20, 6), (6,), (20, 6))
    expected = z * dtype(0.125) + b
    NUMBA.scale_bias(z, b, 0.125)
    assert_array_equal(z, expected)
    sums = np.empty(6, dtype)
    scaled = delta * dtype(0.125)
    column_sums = delta.sum(axis=0)
    NUMBA.column_sums_then_scale(delta, sums, 0.125)
    assert_array_equal(delta, scaled)
    assert_allclose(sums, column_sums, rtol=CLOSE[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_periodic_embedding_equals_numpys_layer(dtype, input_grad):
    """The PBLD kernels against the layer's numpy code (itself checked against
    central differences in test_layers): output, every parameter's gradient
    and dL/dX, with numeric and passed-on columns interleaved."""
    from skmlp._layers import Context, PeriodicEmbedding
    from skmlp._stack import Network

    rng = np.random.RandomState(0)
    X = rng.normal(size=(37, 7)).astype(dtype)
    layer = PeriodicEmbedding(7, [5, 0, 3, 4])
    results = []
    for ops in (NUMPY, NUMBA):
        net = Network([layer], "identity", ops=ops, dtype=dtype)
        net.initialize(X, np.random.RandomState(1))
        ctx = Context(ops, train=True, input_grad=input_grad)
        Y, backprop = layer.forward(net.views[0], net.grad_views[0], X, ctx)
        dX = backprop(np.random.RandomState(2).normal(size=Y.shape).astype(dtype))
        results.append((Y, net.grad.copy(), dX))
    (Y, grad, dX), (Y_fused, grad_fused, dX_fused) = results
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert Y_fused.dtype == dtype
    assert_allclose(Y_fused, Y, rtol=tol, atol=tol)
    assert_allclose(grad_fused, grad, rtol=tol, atol=tol * 10)
    if input_grad:
        assert_allclose(dX_fused, dX, rtol=tol, atol=tol)
    else:
        assert dX is None and dX_fused is None


def _tabular_frame(n=300):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.exponential(size=n),
            "city": pd.Categorical(rng.choice(list("pqrstuvwxyz"), size=n)),
            "flag": pd.Categorical(rng.choice(["yes", "no"], size=n)),
        }
    )
    X.loc[::7, "a"] = np.nan
    y = X["b"] * (X["city"].cat.codes % 3) + np.nan_to_num(X["a"])
    return X, y.to_numpy()


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize(
    "dtype, epochs, rtol", [("float64", 8, 1e-9), ("float32", 2, 1e-4)]
)
def test_tabular_fits_on_both_engines_give_the_same_predictions(
    task, dtype, epochs, rtol, monkeypatch
):
    """Every fused kernel of a tabular fit (embeddings, NTK Dense, parametric
    SELU/Mish, dropout masks, grouped AdamW) against the numpy engine, end to
    end: the same masks and the same steps, so the same model up to rounding.
    In float32 rounding differences grow over many steps as in any reordered
    float32 training (after 16 epochs on DEV tables: parameters 1e-2 apart),
    hence 2 epochs there; in float64, 8 epochs agree to 1e-9."""
    from skmlp import TabularMLPClassifier, TabularMLPRegressor

    X, y = _tabular_frame()
    if task == "classification":
        y = (y > np.median(y)).astype(int)
        Estimator = TabularMLPClassifier
    else:
        Estimator = TabularMLPRegressor
    predictions = []
    for engine in ("numba", "numpy"):
        monkeypatch.setenv("SKMLP_ENGINE", engine)
        model = Estimator(
            hidden_layer_sizes=(32, 32), max_epochs=epochs, dtype=dtype, random_state=0
        ).fit(X, y)
        predictions.append(
            model.predict_proba(X) if task == "classification" else model.predict(X)
        )
    compiled, numpy_only = predictions
    assert_allclose(
        compiled, numpy_only, rtol=rtol, atol=rtol * np.abs(numpy_only).max()
    )
    if task == "regression":  # the fit did learn something, on both
        assert np.corrcoef(compiled, y)[0, 1] > 0.3
