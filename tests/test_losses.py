"""Output layers: losses against sklearn.metrics, deltas against finite differences."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, log_softmax
from scipy.special import huber as scipy_huber
from sklearn.metrics import (
    log_loss,
    mean_absolute_error,
    mean_pinball_loss,
    mean_poisson_deviance,
    mean_squared_error,
)

from skmlp._losses import OUTPUTS, huber, quantile

OUTPUT_LAYERS = {**OUTPUTS, "huber": huber(0.7), "quantile": quantile(0.3)}


@pytest.mark.parametrize("weighted", [False, True])
def test_losses_match_sklearn_metrics(weighted, rng, make_targets):
    n, k = 30, 4
    s = rng.uniform(0.1, 3, size=n) if weighted else np.ones(n)
    w = s / s.sum() if weighted else None
    z = rng.normal(size=(n, k))

    Y = make_targets("softmax", rng, n, k)
    P = OUTPUTS["softmax"].activate(z.copy())
    expected = log_loss(Y.argmax(1), P, sample_weight=s, labels=range(k))
    assert OUTPUTS["softmax"].loss(Y, P, w) == pytest.approx(expected, rel=1e-12)

    Y = make_targets("logistic", rng, n, k)
    P = OUTPUTS["logistic"].activate(z.copy())
    expected = sum(
        log_loss(Y[:, j], P[:, j], sample_weight=s, labels=[0, 1]) for j in range(k)
    )
    assert OUTPUTS["logistic"].loss(Y, P, w) == pytest.approx(expected, rel=1e-12)

    Y = make_targets("identity", rng, n, k)
    expected = 0.5 * mean_squared_error(Y, z, sample_weight=s)
    assert OUTPUTS["identity"].loss(Y, z.copy(), w) == pytest.approx(
        expected, rel=1e-12
    )

    Y = make_targets("exp", rng, n, k)
    P = OUTPUTS["exp"].activate(z.copy())
    expected = sum(
        0.5 * mean_poisson_deviance(Y[:, j], P[:, j], sample_weight=s) for j in range(k)
    )
    assert OUTPUTS["exp"].loss(Y, P, w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("output", sorted(OUTPUT_LAYERS))
@pytest.mark.parametrize("weighted", [False, True])
def test_delta_is_the_gradient_of_the_loss_wrt_the_last_preactivation(
    output, weighted, rng, make_targets
):
    n, k = 12, 3
    Y = make_targets(output, rng, n, k)
    w = rng.uniform(0.1, 2, size=n) if weighted else None
    w = None if w is None else w / w.sum()
    z = rng.normal(size=(n, k))
    spec = OUTPUT_LAYERS[output]

    def loss_at(z_):
        return spec.loss(Y, spec.activate(z_.copy()), w)

    numeric = np.zeros_like(z)
    eps = 1e-6
    for idx in np.ndindex(*z.shape):
        step = np.zeros_like(z)
        step[idx] = eps
        numeric[idx] = (loss_at(z + step) - loss_at(z - step)) / (2 * eps)
    delta = spec.delta(Y, spec.activate(z.copy()), w)
    assert_allclose(delta, numeric, rtol=1e-6, atol=1e-10)


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    P = OUTPUTS["softmax"].activate(z)
    assert_allclose(P, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize("weighted", [False, True])
def test_robust_regression_losses_match_independent_formulas(weighted, rng):
    n, k = 40, 3
    s = rng.uniform(0.1, 3, size=n) if weighted else np.ones(n)
    w = s / s.sum() if weighted else None
    Y, P = rng.normal(size=(n, k)), rng.normal(scale=2, size=(n, k))
    expected = mean_absolute_error(Y, P, sample_weight=s)
    loss = OUTPUT_LAYERS["absolute_error"].loss(Y, P.copy(), w)
    assert loss == pytest.approx(expected, rel=1e-12)
    for threshold in (0.3, 1.0, 100.0):
        per_element = scipy_huber(threshold, P - Y)  # d r^2/2 or d(|r| - d/2)
        expected = np.average(per_element.mean(axis=1), weights=s)
        loss = huber(threshold).loss(Y, P.copy(), w)
        assert loss == pytest.approx(expected, rel=1e-12)
    for q in (0.05, 0.5, 0.9):
        expected = mean_pinball_loss(Y, P, alpha=q, sample_weight=s)
        loss = quantile(q).loss(Y, P.copy(), w)
        assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("output", ["softmax", "logistic"])
def test_loss_from_logits_is_the_cross_entropy(output, make_targets, rng):
    """The unclipped loss that check_gradients differences, against scipy's
    log_softmax and expit."""
    Z = rng.normal(scale=3.0, size=(30, 4))
    Y = make_targets(output, rng, 30, 4)
    w = rng.uniform(size=30)
    w /= w.sum()
    if output == "softmax":
        per_sample = -(Y * log_softmax(Z, axis=1)).sum(axis=1)
    else:
        P = expit(Z)
        per_sample = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum(axis=1)
    expected = (w * per_sample).sum()
    assert OUTPUTS[output].loss_from_logits(Y, Z, w) == pytest.approx(
        expected, rel=1e-12
    )
