"""Stochastic optimizers over the one flat parameter vector.

An optimizer updates ``params`` in place from ``grad``. Its state (moments,
step count, current learning rate) is a plain dict of numpy arrays and numbers,
kept by the estimator between ``partial_fit`` calls, so a pickled or
skops-saved model holds no optimizer object. The learning-rate schedules are
here too; deciding *when* to stop is the training loop's job.

The elementwise updates themselves are the ops layer's (``_ops.py``): in
place and chunk by chunk on numpy, with the standard's in-place operators on
other array-API namespaces. ``step`` can also add the L2 penalty's gradient
to the weights' part of the gradient in that same pass (``l2``), which saves
a full pass over the weights.
"""

import math

import numpy as np

from ._ops import NUMPY


class _Optimizer:
    """What SGD and Adam share: the engine (``ops``) their updates run on, and
    parameter groups.

    ``groups``: None (one group: the drop-ins), or runs ``(start, stop,
    lr_scale, wd_scale)`` covering the flat vector (``_stack.Network.groups``):
    each run steps with the learning rate times ``lr_scale``, and decays with
    ``weight_decay * wd_scale`` (decoupled, as AdamW: ``p <- p - lr wd p``,
    with the run's lr before Adam's bias correction, applied before the
    update). The L2 penalty ``l2`` of :meth:`step` still reads the first
    ``n_weights`` entries, whichever runs they fall in.
    """

    ops = NUMPY
    groups = None
    weight_decay = 0.0

    def _runs(self, learning_rate):
        """(slice, lr_scale, decay lr * lr_scale * wd * wd_scale, weights in it)
        for each group, ``learning_rate`` the optimizer's base rate."""
        for start, stop, lr_scale, wd_scale in self.groups:
            decay = learning_rate * lr_scale * self.weight_decay * wd_scale
            n_weights = max(0, min(self.n_weights, stop) - start)
            yield slice(start, stop), lr_scale, decay, n_weights

    def _run_arrays(self, c, learning_rate):
        """(starts, stops, step factors c lr_scale, keep factors 1 - decay)
        of the runs, as arrays for a fused update."""
        if getattr(self, "_bounds", None) is None or self._bounds[0] != self.groups:
            starts = np.array([g[0] for g in self.groups], dtype=np.intp)
            stops = np.array([g[1] for g in self.groups], dtype=np.intp)
            lr_scales = np.array([g[2] for g in self.groups], dtype=np.float64)
            wd_scales = np.array([g[3] for g in self.groups], dtype=np.float64)
            self._bounds = (self.groups, starts, stops, lr_scales, wd_scales)
        _, starts, stops, lr_scales, wd_scales = self._bounds
        decay = learning_rate * lr_scales * self.weight_decay * wd_scales
        return starts, stops, c * lr_scales, 1.0 - decay

    def _decay(self, params, decay):
        if decay:
            params *= 1.0 - decay  # decoupled weight decay: p -= lr wd p


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
        ops=NUMPY,
        groups=None,
        weight_decay=0.0,
    ):
        self.state, self.ops = state, ops
        self.n_weights = n_weights
        self.groups, self.weight_decay = groups, weight_decay
        self.learning_rate_init = learning_rate_init
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    @staticmethod
    def new_state(params, learning_rate_init, ops=NUMPY):
        return {
            "velocity": ops.zeros_like(params),
            "learning_rate": float(learning_rate_init),
        }

    def step(self, params, grad, l2=0.0):
        """v = mu v - lr g, p += v (Nesterov: p += mu v - lr g), in place; l2 > 0
        first adds l2 * W to the weights' gradient (``grad`` is overwritten)."""
        velocity, lr = self.state["velocity"], float(self.state["learning_rate"])
        if self.groups is None:
            self.ops.sgd_update(
                params,
                grad,
                velocity,
                lr,
                self.momentum,
                self.nesterov,
                self.n_weights,
                l2,
            )
            return
        for run, lr_scale, decay, n_weights in self._runs(lr):
            self._decay(params[run], decay)
            self.ops.sgd_update(
                params[run],
                grad[run],
                velocity[run],
                lr * lr_scale,
                self.momentum,
                self.nesterov,
                n_weights,
                l2,
            )

    def reset_moments(self):
        """Forget the velocity (after a divergence it may hold the overflow)."""
        self.state["velocity"][...] = 0

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

    def __init__(
        self,
        state,
        learning_rate_init,
        beta_1,
        beta_2,
        epsilon,
        n_weights=0,
        ops=NUMPY,
        groups=None,
        weight_decay=0.0,
    ):
        self.groups, self.weight_decay = groups, weight_decay
        # Models saved by earlier versions: convert their moments.
        if "m" in state:  # textbook averages m and v
            state["m_sum"] = state.pop("m") / (1 - beta_1)
        if "v_sum" in state:  # running sum v / (1 - b2)
            state["v"] = state.pop("v_sum") * (1 - beta_2)
        self.state, self.ops = state, ops
        self.n_weights = n_weights
        self.learning_rate_init = learning_rate_init
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    @staticmethod
    def new_state(params, learning_rate_init, ops=NUMPY):
        return {
            "m_sum": ops.zeros_like(params),
            "v": ops.zeros_like(params),
            "t": 0,
            "learning_rate": float(learning_rate_init),
        }

    def step(self, params, grad, l2=0.0):
        """One Adam step in place; l2 > 0 first adds l2 * W to the weights'
        gradient (``grad`` is overwritten)."""
        s, b1, b2 = self.state, self.beta_1, self.beta_2
        s["t"] += 1
        # Step sizes as Python floats (an np.float64 would promote float32).
        lr = self.learning_rate_init * math.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"])
        s["learning_rate"] = lr
        c = lr * (1 - b1)  # p -= c m_sum / (sqrt(v) + eps) = lr_t m / (...)
        if self.groups is None:
            self.ops.adam_update(
                params,
                grad,
                s["m_sum"],
                s["v"],
                c,
                b1,
                b2,
                self.epsilon,
                self.n_weights,
                l2,
            )
            return
        # Per run: c scales with the run's lr; the decay uses the lr before
        # Adam's bias correction (AdamW's lr * wd).
        fused = getattr(self.ops, "adamw_runs", None)
        if fused is not None and not l2:  # the compiled engine: one pass
            runs = self._run_arrays(c, self.learning_rate_init)
            done = fused(params, grad, s["m_sum"], s["v"], runs, b1, b2, self.epsilon)
            if done is not None:
                return
        for run, lr_scale, decay, n_weights in self._runs(self.learning_rate_init):
            self._decay(params[run], decay)
            self.ops.adam_update(
                params[run],
                grad[run],
                s["m_sum"][run],
                s["v"][run],
                c * lr_scale,
                b1,
                b2,
                self.epsilon,
                n_weights,
                l2,
            )

    def reset_moments(self):
        """Forget both moments and restart the bias correction."""
        self.state["m_sum"][...] = 0
        self.state["v"][...] = 0
        self.state["t"] = 0

    def end_epoch(self, n_samples_seen):
        """Adam's step size is not scheduled."""

    def on_plateau(self):
        """Adam stops at a plateau."""
        return True


def make_optimizer(
    solver, state, est, n_weights, ops=NUMPY, groups=None, weight_decay=0.0
):
    """The optimizer named by ``est.solver``, with ``est``'s hyperparameters.

    ``n_weights``: how many leading entries of the flat vector are weights
    (the rest are biases, which the L2 penalty does not touch); ``groups``
    and ``weight_decay``: see :class:`_Optimizer`.
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
            ops,
            groups,
            weight_decay,
        )
    return Adam(
        state,
        est.learning_rate_init,
        est.beta_1,
        est.beta_2,
        est.epsilon,
        n_weights,
        ops,
        groups,
        weight_decay,
    )


def new_optimizer_state(solver, params, learning_rate_init, ops=NUMPY):
    cls = SGD if solver == "sgd" else Adam
    return cls.new_state(params, learning_rate_init, ops)
