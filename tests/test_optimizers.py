"""Optimizer steps against closed-form updates written out by hand."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skmlp._optimizers import SGD, Adam


def _sgd(momentum, nesterov, schedule="constant", lr=0.1):
    params = np.array([1.0, -2.0, 3.0])
    return params, SGD(
        SGD.new_state(params, lr), lr, schedule, momentum, nesterov, power_t=0.5
    )


def test_plain_sgd_step_is_minus_lr_times_gradient():
    params, opt = _sgd(momentum=0.0, nesterov=False)
    opt.step(params, np.array([1.0, 1.0, -2.0]))
    assert_allclose(params, [0.9, -2.1, 3.2])


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_steps_follow_the_recurrence(nesterov):
    params, opt = _sgd(momentum=0.5, nesterov=nesterov)
    g1, g2 = np.array([1.0, 0.0, 2.0]), np.array([-1.0, 4.0, 0.0])
    opt.step(params, g1)
    opt.step(params, g2)
    # By hand: v1 = -0.1 g1, v2 = 0.5 v1 - 0.1 g2; Nesterov adds 0.5 v - 0.1 g.
    v1 = -0.1 * g1
    v2 = 0.5 * v1 - 0.1 * g2
    if nesterov:
        expected = (
            np.array([1.0, -2.0, 3.0]) + (0.5 * v1 - 0.1 * g1) + (0.5 * v2 - 0.1 * g2)
        )
    else:
        expected = np.array([1.0, -2.0, 3.0]) + v1 + v2
    assert_allclose(params, expected, rtol=1e-15)


def test_adam_first_steps_match_the_paper():
    params = np.array([0.5, -0.5])
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = Adam(Adam.new_state(params, lr), lr, b1, b2, eps)
    g1, g2 = np.array([0.2, -3.0]), np.array([0.4, 1.0])
    opt.step(params, g1)
    opt.step(params, g2)
    # Kingma & Ba, Algorithm 1 with the "epsilon hat" form, written out for t = 1, 2.
    m1, v1 = 0.1 * g1, 0.001 * g1**2
    step1 = lr * np.sqrt(1 - b2) / (1 - b1) * m1 / (np.sqrt(v1) + eps)
    m2, v2 = 0.9 * m1 + 0.1 * g2, 0.999 * v1 + 0.001 * g2**2
    step2 = lr * np.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (np.sqrt(v2) + eps)
    assert_allclose(params, np.array([0.5, -0.5]) - step1 - step2, rtol=1e-14)
    assert opt.state["t"] == 2


def test_first_adam_step_moves_each_parameter_by_about_lr():
    params = np.zeros(3)
    opt = Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8)
    opt.step(params, np.array([5.0, -0.01, 300.0]))
    # |step| = lr |g| / (|g| + eps / sqrt(1 - b2)): epsilon shifts it by 3e-5 for 0.01.
    assert_allclose(params, [-0.01, 0.01, -0.01], rtol=1e-4)


def test_invscaling_schedule():
    _, opt = _sgd(0.9, True, schedule="invscaling", lr=0.2)
    opt.end_epoch(n_samples_seen=99)
    assert opt.state["learning_rate"] == pytest.approx(0.2 / 100**0.5)


def test_adaptive_schedule_divides_by_five_until_1e_minus_6():
    _, opt = _sgd(0.9, True, schedule="adaptive", lr=1e-4)
    rates = []
    while not opt.on_plateau():
        rates.append(opt.state["learning_rate"])
    assert_allclose(rates, [2e-5, 4e-6, 8e-7])


@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
def test_non_adaptive_sgd_and_adam_stop_at_a_plateau(schedule):
    assert _sgd(0.9, True, schedule=schedule)[1].on_plateau()
    assert Adam(Adam.new_state(np.zeros(1), 0.1), 0.1, 0.9, 0.999, 1e-8).on_plateau()


def test_optimizer_state_is_plain_data():
    params = np.zeros(4)
    for state in (SGD.new_state(params, 0.1), Adam.new_state(params, 0.1)):
        assert all(isinstance(v, (np.ndarray, int, float)) for v in state.values())


@pytest.mark.parametrize("in_parts", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "sgd", "nesterov"])
def test_chunked_threaded_update_equals_the_plain_formula(solver, dtype, in_parts, rng):
    """Large vectors are updated chunk by chunk, whole or as two parts on two
    threads (a split step); the result must be the one-line numpy formula's,
    in the parameters' dtype."""
    from skmlp._chunks import CHUNK, _pool_map

    size = 5 * CHUNK + 123  # several chunks per thread and a ragged end
    params = rng.normal(size=size).astype(dtype)
    grads = [rng.normal(size=size).astype(dtype) for _ in range(3)]
    expected = params.astype(np.float64)
    if solver == "adam":
        opt = Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8)
        m = v = 0.0
        for t, g in enumerate(grads, start=1):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
            lr = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            expected = expected - lr * m / (np.sqrt(v) + 1e-8)
    else:
        nesterov = solver == "nesterov"
        opt = SGD(SGD.new_state(params, 0.1), 0.1, "constant", 0.9, nesterov, 0.5)
        vel = 0.0
        for g in grads:
            vel = 0.9 * vel - 0.1 * g
            expected = expected + (0.9 * vel - 0.1 * g if nesterov else vel)
    for g in grads:
        if in_parts:
            update = opt.prepare()
            _pool_map(
                lambda i, u=update, g=g: opt.apply(u, params, g, part=(i, 2)), (0, 1)
            )
        else:
            opt.step(params, g)
    assert params.dtype == dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(params, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("size", [50, 300_000])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_fused_penalty_step_equals_step_on_the_full_gradient(solver, size, rng):
    """step(p, g, l2) adds l2 * W to the weights' gradient inside its own pass."""
    n_weights = size * 3 // 4  # the rest are biases: no penalty
    params = rng.normal(size=size)
    grad = rng.normal(size=size)
    full_grad = grad.copy()
    full_grad[:n_weights] += 0.3 * params[:n_weights]

    def make():
        if solver == "adam":
            return Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8, n_weights)
        return SGD(
            SGD.new_state(params, 0.1), 0.1, "constant", 0.9, True, 0.5, n_weights
        )

    fused, plain = params.copy(), params.copy()
    make().step(fused, grad.copy(), l2=0.3)
    make().step(plain, full_grad)
    assert_allclose(fused, plain, rtol=1e-13, atol=1e-15)


def test_adam_state_saved_with_averaged_moments_resumes_the_same(rng):
    """Models saved before Adam kept running sums hold m and v; they resume
    exactly as if they had been trained by the current code."""
    params = rng.normal(size=20).astype(np.float32)
    grads = [rng.normal(size=20).astype(np.float32) for _ in range(4)]
    new = Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8)
    for g in grads[:2]:
        new.step(params, g)
    s = new.state
    old_state = {
        "m": s["m_sum"] * (1 - 0.9),  # the averaged moments of the old layout
        "v": s["v_sum"] * (1 - 0.999),
        "t": s["t"],
        "learning_rate": s["learning_rate"],
    }
    resumed_params = params.copy()
    resumed = Adam(old_state, 0.01, 0.9, 0.999, 1e-8)
    for g in grads[2:]:
        new.step(params, g)
        resumed.step(resumed_params, g)
    assert resumed.state["m_sum"].dtype == np.float32
    assert_allclose(resumed_params, params, rtol=1e-6)
