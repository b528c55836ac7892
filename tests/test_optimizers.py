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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "sgd", "nesterov"])
def test_chunked_update_equals_the_plain_formula(solver, dtype, rng):
    """Large vectors are updated chunk by chunk; the result must be the
    one-line numpy formula's, in the parameters' dtype."""
    from skmlp._ops import CHUNK

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


@pytest.mark.parametrize("layout", ["averaged", "running sums"])
def test_adam_states_saved_by_earlier_versions_resume_the_same(layout, rng):
    """Models saved by earlier versions hold the averaged moments m and v, or
    the running sums m / (1 - b1) and v / (1 - b2); they resume as if they had
    been trained by the current code."""
    params = rng.normal(size=20).astype(np.float32)
    grads = [rng.normal(size=20).astype(np.float32) for _ in range(4)]
    new = Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8)
    for g in grads[:2]:
        new.step(params, g)
    s = new.state
    m, v = s["m_sum"] * (1 - 0.9), s["v"].copy()
    if layout == "averaged":
        old_state = {"m": m, "v": v}
    else:
        old_state = {"m_sum": m / (1 - 0.9), "v_sum": v / (1 - 0.999)}
    old_state.update(t=s["t"], learning_rate=s["learning_rate"])
    resumed_params = params.copy()
    resumed = Adam(old_state, 0.01, 0.9, 0.999, 1e-8)
    for g in grads[2:]:
        new.step(params, g)
        resumed.step(resumed_params, g)
    assert resumed.state["m_sum"].dtype == resumed.state["v"].dtype == np.float32
    assert_allclose(resumed_params, params, rtol=1e-6)


@pytest.mark.parametrize("dtype, gradient", [(np.float32, 1e18), (np.float64, 1e152)])
def test_adam_does_not_overflow_before_the_textbook_form(dtype, gradient):
    """Gradients whose square fits the dtype (1e36 < 3.4e38 in float32, 1e304
    in float64) keep every step finite and each parameter moving by about lr,
    as the textbook moments computed in a wider type say. Running sums of g^2
    (1000 times v) overflowed here and froze the parameters."""
    params = np.zeros(3, dtype=dtype)
    opt = Adam(Adam.new_state(params, 0.01), 0.01, 0.9, 0.999, 1e-8)
    g = np.array([gradient, -gradient, gradient / 3], dtype=dtype)
    reference, m, v = np.zeros(3, dtype=np.longdouble), 0.0, 0.0
    for t in range(1, 2001):
        opt.step(params, g.copy())
        wide = g.astype(np.longdouble) / gradient  # scale-free textbook Adam
        m = 0.9 * m + 0.1 * wide
        v = 0.999 * v + 0.001 * wide**2
        lr = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        reference -= lr * m / np.sqrt(v)
    assert np.isfinite(opt.state["v"]).all()
    assert_allclose(params, reference.astype(np.float64), rtol=1e-4)
    assert abs(params[0]) > 19  # 2000 steps of about 0.01 each


# ---- parameter groups and decoupled weight decay ------------------------------

# Two runs of the flat vector: entries 0-2 (lr x1, wd x1) and 3-4 (lr x0.1, no wd).
GROUPS = [(0, 3, 1.0, 1.0), (3, 5, 0.1, 0.0)]
P0 = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
G1 = np.array([0.3, -1.0, 2.0, 0.5, -4.0])
G2 = np.array([-0.2, 0.4, 1.0, 2.0, 1.0])


def test_adamw_steps_with_group_multipliers_match_the_formula():
    lr, b1, b2, eps, wd = 0.04, 0.9, 0.95, 1e-8, 0.02
    params = P0.copy()
    opt = Adam(
        Adam.new_state(params, lr), lr, b1, b2, eps, groups=GROUPS, weight_decay=wd
    )
    opt.step(params, G1.copy())
    opt.step(params, G2.copy())
    # Written out: per entry, its group's lr_j = lr * lr_scale_j and decay
    # d_j = lr * lr_scale_j * wd * wd_scale_j; AdamW: p <- p (1 - d_j), then
    # p <- p - lr_j sqrt(1 - b2^t) / (1 - b1^t) m_t / (sqrt(v_t) + eps).
    lr_j = lr * np.array([1, 1, 1, 0.1, 0.1])
    d_j = lr_j * wd * np.array([1, 1, 1, 0, 0])
    expected, m, v = P0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate([G1, G2], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        expected = expected * (1 - d_j)
        expected -= lr_j * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    assert_allclose(params, expected, rtol=1e-13)


@pytest.mark.parametrize(
    "momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)]
)
def test_sgd_steps_with_group_multipliers_match_the_formula(momentum, nesterov):
    lr, wd = 0.1, 0.5
    params = P0.copy()
    opt = SGD(
        SGD.new_state(params, lr),
        lr,
        "constant",
        momentum,
        nesterov,
        power_t=0.5,
        groups=GROUPS,
        weight_decay=wd,
    )
    opt.step(params, G1.copy())
    opt.step(params, G2.copy())
    lr_j = lr * np.array([1, 1, 1, 0.1, 0.1])
    d_j = lr_j * wd * np.array([1, 1, 1, 0, 0])
    expected, velocity = P0.copy(), np.zeros(5)
    for g in (G1, G2):
        expected = expected * (1 - d_j)
        velocity = momentum * velocity - lr_j * g
        expected += momentum * velocity - lr_j * g if nesterov else velocity
    assert_allclose(params, expected, rtol=1e-13)


def test_the_l2_penalty_reaches_the_weights_across_groups():
    """alpha's gradient l2 * W on the first n_weights entries, group by group:
    the same step as one group with the same multipliers everywhere."""
    lr, l2 = 0.01, 0.3
    one_group, grouped = P0.copy(), P0.copy()
    plain = Adam(Adam.new_state(one_group, lr), lr, 0.9, 0.999, 1e-8, n_weights=4)
    split = Adam(
        Adam.new_state(grouped, lr),
        lr,
        0.9,
        0.999,
        1e-8,
        n_weights=4,
        groups=[(0, 2, 1.0, 1.0), (2, 5, 1.0, 1.0)],
    )
    plain.step(one_group, G1.copy(), l2=l2)
    split.step(grouped, G1.copy(), l2=l2)
    assert_allclose(grouped, one_group, rtol=1e-15)
    # By hand: the first step's running sum m_sum = g + l2 W on the weights
    # (entries 0-3), g alone on entry 4.
    expected_m = G1 + l2 * P0 * np.array([1, 1, 1, 1, 0])
    assert_allclose(split.state["m_sum"], expected_m, rtol=1e-15)
