"""Stochastic optimizers over the one flat parameter vector.

An optimizer updates ``params`` in place from ``grad``. Its state (moments,
step count, current learning rate) is a plain dict of numpy arrays and numbers,
kept by the estimator between ``partial_fit`` calls, so a pickled or
skops-saved model holds no optimizer object. The learning-rate schedules are
here too; deciding *when* to stop is the training loop's job.

Speed: an update is a handful of elementwise passes over the parameters, run
chunk by chunk (``_chunks.py``); in a split fit each of two threads applies it
to its part of the vector (``apply(..., part=(i, 2))``, ``_parallel.py``).
``step`` can also add the L2 penalty's gradient to the weights' part of the
gradient in that same pass (``l2``), which saves a full pass over the weights.
"""

import math

import numpy as np

from ._chunks import CHUNK, THREAD_CHUNK, over_range, part_bounds
from ._network import add_penalty_gradient


def _update_in_chunks(update, params, grad, state, n_weights, l2, other, part):
    """Run ``update(p, g, *state, scratch)`` over the parameters, chunk by chunk.

    In the same pass, before the update: ``other`` (None, or the gradient of
    the other half of a split minibatch, see ``_parallel.py``) is added to
    ``grad``, and with l2 > 0 so is ``l2 * params`` to the weights' part of
    the gradient (the first ``n_weights`` entries). ``part`` is None for the
    whole vector, or ``(i, n)``: only the i-th of n equal parts (one thread's
    share of a split step).
    """
    extra = () if other is None else (other,)
    arrays = (params, grad, *extra, *state)
    size = params.size
    if part is None and size <= CHUNK:  # a small network: fewest numpy calls
        scratch = np.empty(size, dtype=params.dtype)
        if other is not None:
            grad += other
        if l2:
            w = slice(0, n_weights)
            add_penalty_gradient(grad[w], params[w], l2, scratch[w])
        update(params, grad, *state, scratch)
        return

    def chunk_update(penalty):
        def run(p, g, *rest):
            if extra:
                g += rest[0]
            if penalty:
                add_penalty_gradient(g, p, l2, rest[-1])
            update(p, g, *rest[len(extra) :])

        return run

    def run_range(start, stop, chunk):
        cut = min(max(n_weights, start), stop) if l2 else start  # penalty below
        over_range(chunk_update(True), arrays, start, cut, chunk)
        over_range(chunk_update(False), arrays, cut, stop, chunk)

    if part is None:
        run_range(0, size, CHUNK)
    else:
        run_range(*part_bounds(size, *part), THREAD_CHUNK)


class _Optimizer:
    """What SGD and Adam share: a step is ``prepare`` then ``apply``.

    ``prepare`` advances the step count and schedule and returns the
    elementwise update; ``apply`` runs it over the parameters, or over one
    part of them, so that two threads can share a step (``_parallel.py``).
    """

    def step(self, params, grad, l2=0.0, other=None):
        """Update params in place; l2 > 0 first adds l2 * W to the weights' grad
        (and ``other``, if given, is added to the gradient)."""
        self.apply(self.prepare(), params, grad, l2, other)

    def apply(self, update, params, grad, l2=0.0, other=None, part=None):
        """Run ``update`` (from :meth:`prepare`) over params, or part (i, n)."""
        _update_in_chunks(
            update,
            params,
            grad,
            self._moments(),
            self.n_weights,
            l2,
            other,
            part,
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

    is computed from the moments without their (1 - b) factors, the running
    sums ``m_sum = m / (1 - b1)`` and ``v_sum = v / (1 - b2)``: each then
    takes one pass fewer over the parameters, and the same update reads::

        p -= c_t m_sum / (sqrt(v_sum) + eps'),
        c_t = lr_t (1 - b1) / sqrt(1 - b2),   eps' = eps / sqrt(1 - b2)

    ``state`` holds ``m_sum`` and ``v_sum`` (like params), the step count
    ``t`` and ``learning_rate``, the bias-corrected step size lr_t of the
    last step.
    """

    def __init__(self, state, learning_rate_init, beta_1, beta_2, epsilon, n_weights=0):
        if "m" in state:  # a model saved before the running sums: convert
            state["m_sum"] = state.pop("m") / (1 - beta_1)
            state["v_sum"] = state.pop("v") / (1 - beta_2)
        self.state = state
        self.n_weights = n_weights
        self.learning_rate_init = learning_rate_init
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    @staticmethod
    def new_state(params, learning_rate_init):
        return {
            "m_sum": np.zeros_like(params),
            "v_sum": np.zeros_like(params),
            "t": 0,
            "learning_rate": float(learning_rate_init),
        }

    def _moments(self):
        return (self.state["m_sum"], self.state["v_sum"])

    def prepare(self):
        s, b1, b2 = self.state, self.beta_1, self.beta_2
        s["t"] += 1
        # Step sizes as Python floats (an np.float64 would promote float32).
        lr = self.learning_rate_init * math.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"])
        s["learning_rate"] = lr
        c = lr * (1 - b1) / math.sqrt(1 - b2)
        eps = self.epsilon / math.sqrt(1 - b2)

        def update(p, g, m_sum, v_sum, tmp):
            m_sum *= b1
            m_sum += g  # m_sum = b1 m_sum + g
            np.multiply(g, g, out=tmp)
            v_sum *= b2
            v_sum += tmp  # v_sum = b2 v_sum + g^2
            np.sqrt(v_sum, out=tmp)
            tmp += eps
            np.divide(m_sum, tmp, out=tmp)
            tmp *= c
            p -= tmp  # p -= c m_sum / (sqrt(v_sum) + eps'): lr_t m / (sqrt(v) + eps)

        return update

    def reset_moments(self):
        """Forget both moments and restart the bias correction."""
        self.state["m_sum"].fill(0)
        self.state["v_sum"].fill(0)
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
