"""The two-thread path for large networks (skmlp/_parallel.py).

Every fast path is checked against the straightforward computation it
replaces: the whole minibatch's gradient on one thread, the optimizer step on
the summed gradient, scikit-learn's MLP.
"""

import os
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from skmlp import BackpropClassifier, BackpropRegressor, _parallel
from skmlp._chunks import CHUNK, _pool_map, over_range, part_bounds
from skmlp._network import MLP, n_parameters
from skmlp._optimizers import SGD, Adam
from skmlp._parallel import TwoHalves, single_threaded_blas, worth_splitting

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

two_cores = pytest.mark.skipif(
    (os.cpu_count() or 1) < 2, reason="the two-thread path needs two cores"
)


def _blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("n_rows", [1, 2, 37, 64])
def test_two_halves_add_up_to_the_whole_minibatch(
    output, weighted, alpha, n_rows, rng, make_targets
):
    sizes = [6, 9, 5, 3]
    net = MLP(sizes, "tanh", output, rng.normal(size=n_parameters(sizes)))
    X = rng.normal(size=(n_rows, 6))
    Y = make_targets(output, rng, n_rows, 3)
    sw = rng.uniform(0.1, 3.0, size=n_rows) if weighted else None
    masks = [(rng.uniform(size=(n_rows, 9)) > 0.3) / 0.7, None]

    halves = TwoHalves(net, batch_size=64)
    loss, grad, other = halves.loss_and_grad(X, Y, sw, alpha, masks)
    total = grad.copy() if other is None else grad + other

    ref_loss, ref_grad = net.loss_and_grad(
        X, Y, sw, alpha, penalty_gradient=False, masks=masks
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(total, ref_grad, rtol=1e-10, atol=1e-14)


def _on_two_threads(apply):
    """apply(part) for parts (0, 2) and (1, 2) at once, as a split step does."""
    _pool_map(lambda i: apply((i, 2)), (0, 1))


@pytest.mark.parametrize("size", [50, 3 * CHUNK + 7])
def test_two_parts_on_two_threads_equal_one_pass(size, rng):
    a, b = rng.normal(size=size), rng.normal(size=size)
    expected = np.sqrt(np.abs(a)) * b + a

    def update(x, y, tmp):
        np.abs(x, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp *= y
        x += tmp

    _on_two_threads(
        lambda part: over_range(update, (a, b), *part_bounds(size, *part), 1000)
    )
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("Optimizer", [Adam, SGD])
@pytest.mark.parametrize("size", [40, 3 * CHUNK + 11])
@pytest.mark.parametrize("in_parts", [False, True])
def test_a_step_on_two_gradients_equals_a_step_on_their_sum(
    Optimizer, size, in_parts, rng
):
    n_weights = size - 5
    params = rng.normal(size=size)
    g, other = rng.normal(size=size), rng.normal(size=size)

    def make(p):
        state = Optimizer.new_state(p, 0.01)
        if Optimizer is Adam:
            return Adam(state, 0.01, 0.9, 0.999, 1e-8, n_weights)
        return SGD(state, 0.01, "constant", 0.9, True, 0.5, n_weights)

    split, whole = params.copy(), params.copy()
    opt_split, opt_whole = make(split), make(whole)
    for _ in range(3):
        grad = g.copy()
        if in_parts:  # each thread its half of the vector, as in a split step
            update = opt_split.prepare()
            _on_two_threads(
                lambda part, u=update, gr=grad: opt_split.apply(
                    u, split, gr, 0.01, other, part
                )
            )
        else:
            opt_split.step(split, grad, l2=0.01, other=other)
        opt_whole.step(whole, g + other, l2=0.01)
    np.testing.assert_allclose(split, whole, rtol=1e-13, atol=1e-15)


@pytest.fixture
def split_small_networks(monkeypatch):
    """Make the two-thread path take networks of any size, and count its steps."""
    monkeypatch.setattr(_parallel, "MIN_MULTIPLY_ADDS", 0)
    calls = []
    original = TwoHalves.step

    def counted(self, *args, **kwargs):
        calls.append(_blas_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TwoHalves, "step", counted)
    return calls


@two_cores
@pytest.mark.parametrize(
    "solver, early_stopping", [("adam", False), ("adam", True), ("sgd", False)]
)
def test_split_training_follows_scikit_learn(
    split_small_networks, solver, early_stopping
):
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    params = dict(
        hidden_layer_sizes=(32,),
        batch_size=100,
        max_iter=4,
        random_state=3,
        early_stopping=early_stopping,
        validation_fraction=0.2,
        solver=solver,
        learning_rate_init=0.05 if solver == "sgd" else 0.001,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropClassifier(**params).fit(X, y)
        theirs = MLPClassifier(**params).fit(X, y)
    assert split_small_networks, "the two-thread path was not taken"
    # The gradient is summed in two parts: equal up to rounding.
    ours_all, theirs_all = (
        ours.coefs_ + ours.intercepts_,
        theirs.coefs_ + theirs.intercepts_,
    )
    for a, b in zip(ours_all, theirs_all, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if early_stopping:  # scored on the validation set, two halves at a time
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)


@two_cores
def test_blas_is_single_threaded_during_a_split_fit_and_restored_after(
    split_small_networks, rng
):
    before = _blas_threads()
    if before < 2:
        pytest.skip("BLAS runs one thread here: the two-thread path stays off")
    X, y = rng.normal(size=(300, 5)), rng.normal(size=300)
    BackpropRegressor(hidden_layer_sizes=(16,), batch_size=64, max_iter=2).fit(X, y)
    assert set(split_small_networks) == {1}
    assert _blas_threads() == before


@two_cores
def test_a_user_limit_on_blas_threads_keeps_one_thread(split_small_networks, rng):
    X = rng.normal(size=(300, 5))
    assert worth_splitting([5, 16, 1], X, 64) == (_blas_threads() >= 2)
    with threadpool_limits(limits=1, user_api="blas"):
        assert not worth_splitting([5, 16, 1], X, 64)
        BackpropRegressor(hidden_layer_sizes=(16,), batch_size=64, max_iter=2).fit(
            X, X[:, 0]
        )
    assert not split_small_networks


def test_sparse_input_or_a_tiny_minibatch_keeps_one_thread(rng):
    from scipy import sparse

    big = [784, 1024, 1024, 10]
    assert not worth_splitting(big, sparse.random(300, 784, format="csr"), 256)
    assert not worth_splitting(big, np.zeros((300, 784)), 2)


@two_cores
def test_concurrent_split_fits_equal_serial_ones_and_restore_blas(
    split_small_networks, rng
):
    before = _blas_threads()
    X, y = rng.normal(size=(400, 8)), rng.randint(0, 3, size=400)

    def fit(seed):
        return BackpropClassifier(
            (24,), batch_size=64, max_iter=3, random_state=seed
        ).fit(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = [fit(seed) for seed in (0, 1)]
        results = [None, None]
        threads = [
            threading.Thread(target=lambda i=i: results.__setitem__(i, fit(i)))
            for i in (0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for a, b in zip(serial, results, strict=True):
        for wa, wb in zip(a.coefs_, b.coefs_, strict=True):
            np.testing.assert_array_equal(wa, wb)
    assert _blas_threads() == before


def test_single_threaded_blas_nests_and_restores(rng):
    before = _blas_threads()
    with single_threaded_blas():
        with single_threaded_blas():
            assert _blas_threads() == 1
        assert _blas_threads() == 1
    assert _blas_threads() == before


def _adam_and_halves(rng, sizes=(4, 8, 3)):
    net = MLP(list(sizes), "relu", "softmax", rng.normal(size=n_parameters(sizes)))
    opt = Adam(Adam.new_state(net.params, 0.01), 0.01, 0.9, 0.999, 1e-8, net.n_weights)
    return net, opt, TwoHalves(net, batch_size=64)


@pytest.mark.parametrize("failing", [0, 1])
def test_an_error_in_either_half_is_raised_and_no_step_is_taken(failing, rng):
    net, opt, halves = _adam_and_halves(rng)
    before = net.params.copy()
    X, Y = rng.normal(size=(64, 4)), np.eye(3)[rng.randint(3, size=64)]

    def fail(*args, **kwargs):
        raise RuntimeError(f"half {failing} failed")

    (net if failing == 0 else halves.twin).loss_and_grad = fail
    with pytest.raises(RuntimeError, match=f"half {failing} failed"):
        halves.step(opt, X, Y, None, 1e-3, None, 64)
    np.testing.assert_array_equal(net.params, before)
    assert opt.state["t"] == 0


def test_a_split_step_with_a_non_finite_loss_is_skipped(rng):
    net, opt, halves = _adam_and_halves(rng)
    before = net.params.copy()
    X, Y = rng.normal(size=(64, 4)), np.eye(3)[rng.randint(3, size=64)]
    X[40, 0] = np.nan  # in the second half only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss = halves.step(opt, X, Y, None, 1e-3, None, 64)
    assert not np.isfinite(loss)
    np.testing.assert_array_equal(net.params, before)
    assert opt.state["t"] == 0


def test_a_split_step_equals_a_step_on_the_whole_minibatch(rng):
    net, opt, halves = _adam_and_halves(rng)
    twin_net = MLP(net.layer_sizes, "relu", "softmax", net.params.copy())
    twin_opt = Adam(
        Adam.new_state(twin_net.params, 0.01), 0.01, 0.9, 0.999, 1e-8, net.n_weights
    )
    for _ in range(3):
        X, Y = rng.normal(size=(64, 4)), np.eye(3)[rng.randint(3, size=64)]
        loss = halves.step(opt, X, Y, None, 1e-2, None, 64)
        ref_loss, grad = twin_net.loss_and_grad(
            X, Y, None, 1e-2, penalty_gradient=False
        )
        twin_opt.step(twin_net.params, grad, l2=1e-2 / 64)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(net.params, twin_net.params, rtol=1e-12, atol=1e-15)


@two_cores
def test_ctrl_c_in_a_split_fit_keeps_the_last_epoch_and_restores_blas(
    split_small_networks, monkeypatch
):
    X, y = load_digits(return_X_y=True)
    X = X[:500] / 16.0
    y = y[:500]
    kwargs = dict(hidden_layer_sizes=(20,), random_state=0, batch_size=100)
    reference = BackpropClassifier(max_iter=2, **kwargs).fit(X, y)
    before = _blas_threads()

    calls = {"n": 0}
    real_half = TwoHalves._half

    def interrupted(self, i, *args):
        if i == 0:  # Ctrl-C arrives in the main thread, mid-epoch 3
            calls["n"] += 1
            if calls["n"] == 2 * 5 + 3:
                raise KeyboardInterrupt
        return real_half(self, i, *args)

    monkeypatch.setattr(TwoHalves, "_half", interrupted)
    clf = BackpropClassifier(max_iter=50, **kwargs)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert clf.n_iter_ == 2
    for W, W_ref in zip(clf.coefs_, reference.coefs_, strict=True):
        np.testing.assert_array_equal(W, W_ref)
    assert _blas_threads() == before


@pytest.mark.parametrize("n_rows", [5, 64, 301])
def test_split_forward_equals_the_network_forward(n_rows, rng):
    sizes = [6, 9, 3]
    net = MLP(sizes, "relu", "softmax", rng.normal(size=n_parameters(sizes)))
    X = rng.normal(size=(n_rows, 6))
    halves = TwoHalves(net, batch_size=64)
    np.testing.assert_allclose(halves.forward(X), net.forward(X), rtol=1e-14)
