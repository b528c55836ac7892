"""Stochastic optimizers over the one flat parameter vector.

An optimizer updates ``params`` in place from ``grad``. Its state (moments,
step count, current learning rate) is a plain dict of numpy arrays and numbers,
kept by the estimator between ``partial_fit`` calls, so a pickled or
skops-saved model holds no optimizer object. The learning-rate schedules are
here too; deciding *when* to stop is the training loop's job.

Speed: an update is a handful of elementwise passes over the parameters, run
chunk by chunk (``_chunks.py``) so that each chunk stays in cache. ``step``
can also add the L2 penalty's gradient to the weights' part of the gradient
in that same pass (``l2``), which saves a full pass over the weights.
"""

import math

import numpy as np

from ._chunks import CHUNK, over_range
from ._network import add_penalty_gradient


def _update_in_chunks(update, params, grad, moments, n_weights, l2):
    """Run ``update(p, g, *moments, scratch)`` over the parameters in chunks.

    With l2 > 0, ``l2 * params`` is first added to the weights' part of the
    gradient (the first ``n_weights`` entries), in the same pass.
    """
    if params.size <= CHUNK:  # a small network: the fewest numpy calls
        scratch = np.empty(params.size, dtype=params.dtype)
        if l2:
            w = slice(0, n_weights)
            add_penalty_gradient(grad[w], params[w], l2, scratch[w])
        update(params, grad, *moments, scratch)
        return
    arrays = (params, grad, *moments)

    def with_penalty(p, g, *rest):
        add_penalty_gradient(g, p, l2, rest[-1])
        update(p, g, *rest)

    cut = n_weights if l2 else 0  # the penalty applies below the cut only
    over_range(with_penalty, arrays, 0, cut)
    over_range(update, arrays, cut, params.size)


class _Optimizer:
    """What SGD and Adam share: a step is ``prepare`` (advance the step count
    and schedule, return the elementwise update) then the update's passes."""

    def step(self, params, grad, l2=0.0):
        """Update params in place; l2 > 0 first adds l2 * W to the weights'
        gradient (``grad`` is used as scratch and overwritten)."""
        _update_in_chunks(
            self.prepare(), params, grad, self._moments(), self.n_weights, l2
        )


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum or Nesterov momentum.

    ``state`` holds ``velocity`` (like params) and ``learning_rate``.
    """

    def __init__(
        self,
        state,
        learning_rate_init,
        schedule,
        momentum,
        nesterov,
        power_t,
        n_weights=0,
    ):
        self.state = state
        self.n_weights = n_weights
        self.learning_rate_init = learning_rate_init
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    @staticmethod
    def new_state(params, learning_rate_init):
        return {
            "velocity": np.zeros_like(params),
            "learning_rate": float(learning_rate_init),
        }

    def _moments(self):
        return (self.state["velocity"],)

    def prepare(self):
        lr, mu, nesterov = (
            float(self.state["learning_rate"]),
            self.momentum,
            self.nesterov,
        )

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

        return update

    def reset_moments(self):
        """Forget the velocity (after a divergence it may hold the overflow)."""
        self.state["velocity"].fill(0)

    def end_epoch(self, n_samples_seen):
        """'invscaling': lr = lr_init / (t + 1)^power_t, t = samples seen."""
        if self.schedule == "invscaling":
            self.state["learning_rate"] = (
                self.learning_rate_init / (n_samples_seen + 1) ** self.power_t
            )

    def on_plateau(self):
        """Return True to stop; 'adaptive' divides lr by 5 until it is <= 1e-6."""
        if self.schedule != "adaptive" or self.state["learning_rate"] <= 1e-6:
            return True
        self.state["learning_rate"] /= 5.0
        return False


class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2014) with bias-corrected step size.

    The textbook update, with g the gradient and t the step count::

        m = b1 m + (1 - b1) g        v = b2 v + (1 - b2) g^2
        p -= lr_t m / (sqrt(v) + eps),   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)

    The first moment is kept as the running sum ``m_sum = m / (1 - b1)``,
    which takes one pass fewer per step (``m_sum = b1 m_sum + g``); the
    update then reads ``p -= c_t m_sum / (sqrt(v) + eps)`` with
    ``c_t = lr_t (1 - b1)``. The second moment stays the textbook average:
    a running sum ``v / (1 - b2)`` would be 1000 times larger and overflow
    float32 at gradients near 1e17 instead of near 1e19, where ``g^2``
    itself overflows. (``m_sum`` is only 10 times ``m``: it cannot overflow
    before ``g^2`` does.)

    ``state`` holds ``m_sum`` and ``v`` (like params), the step count ``t``
    and ``learning_rate``, the bias-corrected step size lr_t of the last step.
    """

    def __init__(self, state, learning_rate_init, beta_1, beta_2, epsilon, n_weights=0):
        # Models saved by earlier versions: convert their moments.
        if "m" in state:  # textbook averages m and v
            state["m_sum"] = state.pop("m") / (1 - beta_1)
        if "v_sum" in state:  # running sum v / (1 - b2)
            state["v"] = state.pop("v_sum") * (1 - beta_2)
        self.state = state
        self.n_weights = n_weights
        self.learning_rate_init = learning_rate_init
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    @staticmethod
    def new_state(params, learning_rate_init):
        return {
            "m_sum": np.zeros_like(params),
            "v": np.zeros_like(params),
            "t": 0,
            "learning_rate": float(learning_rate_init),
        }

    def _moments(self):
        return (self.state["m_sum"], self.state["v"])

    def prepare(self):
        s, b1, b2 = self.state, self.beta_1, self.beta_2
        s["t"] += 1
        # Step sizes as Python floats (an np.float64 would promote float32).
        lr = self.learning_rate_init * math.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"])
        s["learning_rate"] = lr
        c, eps, one_minus_b2 = lr * (1 - b1), self.epsilon, 1 - b2

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
            p -= tmp  # p -= c m_sum / (sqrt(v) + eps): lr_t m / (sqrt(v) + eps)

        return update

    def reset_moments(self):
        """Forget both moments and restart the bias correction."""
        self.state["m_sum"].fill(0)
        self.state["v"].fill(0)
        self.state["t"] = 0

    def end_epoch(self, n_samples_seen):
        """Adam's step size is not scheduled."""

    def on_plateau(self):
        """Adam stops at a plateau."""
        return True


def make_optimizer(solver, state, est, n_weights):
    """The optimizer named by ``est.solver``, with ``est``'s hyperparameters.

    ``n_weights``: how many leading entries of the flat vector are weights
    (the rest are biases, which the L2 penalty does not touch).
    """
    if solver == "sgd":
        return SGD(
            state,
            est.learning_rate_init,
            est.learning_rate,
            est.momentum,
            est.nesterovs_momentum,
            est.power_t,
            n_weights,
        )
    return Adam(
        state, est.learning_rate_init, est.beta_1, est.beta_2, est.epsilon, n_weights
    )


def new_optimizer_state(solver, params, learning_rate_init):
    cls = SGD if solver == "sgd" else Adam
    return cls.new_state(params, learning_rate_init)
