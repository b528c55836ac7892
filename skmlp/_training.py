"""Training loops: minibatch epochs for SGD/Adam, and the L-BFGS driver.

The loops ask the core (:class:`skmlp._network.MLP`) for ``loss, grad``, let an
optimizer update the flat parameter vector, and record the epoch on the
estimator (``loss_curve_``, ``validation_scores_``, ...), with the meaning
scikit-learn's MLP gives those attributes.

The call chain of a stochastic fit reads top-down::

    fit_stochastic -> _run_epochs -> run_epoch -> train_step
                                  -> update_stopping_state, _on_plateau
                                  -> _handle_divergence
                   -> _handle_rise (when the fit ended worse than it began)
"""

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._network import Workspace, output_layer
from ._optimizers import make_optimizer, new_optimizer_state
from ._parallel import TwoHalves, single_threaded_blas, worth_splitting

_TOO_LARGE = (
    # scikit-learn's wording first, so code matching on it keeps working.
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed. (The loss overflowed before any "
    "step: scale the features, for example with sklearn.preprocessing."
    "StandardScaler, and for regression the targets too.)"
)


class Minibatches:
    """The training data, served in minibatches through reused buffers.

    With shuffling, the rows of each minibatch are gathered into the same
    preallocated arrays every step (``take(..., out=)``), so an epoch
    allocates nothing per step and never copies X as a whole; without
    shuffling, minibatches are views. ``workspace`` holds the network's
    scratch arrays for one minibatch (None when ``workspace=False``: the two
    threads of ``_parallel.TwoHalves`` bring their own).
    """

    def __init__(
        self,
        net,
        X,
        Y,
        sample_weight,
        batch_size,
        shuffle,
        dropout=None,
        rng=None,
        workspace=True,
    ):
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.batch_size, self.shuffle = batch_size, shuffle
        self.dropout, self.rng = dropout, rng  # rates per hidden layer, or None
        self._hidden_widths = net.layer_sizes[1:-1]
        self._dtype = net.params.dtype  # the training dtype, for the masks
        self.workspace = None  # not needed when two threads bring their own
        if workspace:
            self.workspace = Workspace(net.layer_sizes, batch_size, net.params.dtype)
        dense = isinstance(X, np.ndarray)
        self._X_buffer = np.empty((batch_size, X.shape[1]), X.dtype) if dense else None
        self._Y_buffer = np.empty((batch_size, Y.shape[1]), Y.dtype)

    def _gather(self, array, rows, buffer):
        if buffer is None:  # sparse X
            return array[rows]
        return array.take(rows, axis=0, out=buffer[: len(rows)])

    def dropout_masks(self, n_rows):
        """Inverted-dropout masks for one minibatch: per hidden unit and row,
        0 with probability p, else 1 / (1 - p); None where p = 0."""
        if self.dropout is None:
            return None
        masks = []
        for p, width in zip(self.dropout, self._hidden_widths, strict=True):
            if p == 0:
                masks.append(None)
                continue
            kept = (self.rng.random_sample((n_rows, width)) >= p).astype(self._dtype)
            kept *= 1.0 / (1.0 - p)
            masks.append(kept)
        return masks

    def epoch(self, order):
        """Yield (X, Y, sample_weight, dropout masks) minibatches, in ``order``
        when shuffling."""
        n = self.X.shape[0]
        for start in range(0, n, self.batch_size):
            batch = slice(start, min(start + self.batch_size, n))
            if not self.shuffle:
                sw = None if self.sample_weight is None else self.sample_weight[batch]
                X = self.X[batch]
                yield X, self.Y[batch], sw, self.dropout_masks(X.shape[0])
                continue
            rows = order[batch]
            sw = None if self.sample_weight is None else self.sample_weight[rows]
            yield (
                self._gather(self.X, rows, self._X_buffer),
                self._gather(self.Y, rows, self._Y_buffer),
                sw,
                self.dropout_masks(len(rows)),
            )


class EpochHooks:
    """Tells scikit-learn callbacks (``sklearn.callback``) about every epoch.

    ``context`` is the fit's root callback context; ``X`` and ``y`` are the
    data as the user passed them (what a ScoringMonitor scores on).
    """

    def __init__(self, context, X, y):
        self.context, self.X, self.y = context, X, y

    def begin(self, est):
        epoch = self.context.subcontext(task_name="epoch")
        epoch.call_on_fit_task_begin(estimator=est, X=self.X, y=self.y)
        return epoch

    def end(self, est, epoch):
        """Report the finished epoch; returns True if a callback asks to stop."""
        return epoch.call_on_fit_task_end(
            estimator=est,
            X=self.X,
            y=self.y,
            reconstruction_attributes=lambda: {  # a snapshot, built on demand
                "coefs_": [W.copy() for W in est.coefs_],
                "intercepts_": [b.copy() for b in est.intercepts_],
                "n_iter_": est.n_iter_,
            },
        )


def train_step(
    net, optimizer, X, Y, sample_weight, alpha, workspace, masks=None, halves=None
):
    """One optimizer step on one minibatch; returns (loss, weight of the batch).

    A minibatch whose sample weights are all zero carries no information: it
    is skipped (no step) and reported with weight 0. So is the step of a
    minibatch whose loss is not finite (the caller stops the epoch). With
    ``halves`` (a ``_parallel.TwoHalves``), two threads share the step.
    """
    if sample_weight is None:
        batch_weight = X.shape[0]
    else:
        batch_weight = float(sample_weight.sum())
        if batch_weight <= 0:
            return 0.0, 0.0
    if halves is not None:
        loss = halves.step(optimizer, X, Y, sample_weight, alpha, masks, batch_weight)
        return loss, batch_weight
    # The optimizer adds the penalty's gradient in its own pass over the weights.
    loss, grad = net.loss_and_grad(
        X, Y, sample_weight, alpha, workspace, penalty_gradient=False, masks=masks
    )
    if math.isfinite(loss):
        optimizer.step(net.params, grad, l2=alpha / batch_weight)
    return loss, batch_weight


def run_epoch(est, net, optimizer, batches, order, first, halves=None):
    """One pass over the data in minibatches; returns the mean training loss.

    With shuffling, the rows are visited in the order ``order`` (a permutation
    that the caller reshuffles every epoch).

    The mean weighs each minibatch's loss by its total sample weight. Stops at
    the first non-finite minibatch loss and returns it; if that happens before
    any step of this fit (``first``), the data, not the optimizer, is at fault
    and a ValueError says so.
    """
    total_loss = total_weight = 0.0
    for X, Y, sw, masks in batches.epoch(order):
        loss, weight = train_step(
            net, optimizer, X, Y, sw, est.alpha, batches.workspace, masks, halves
        )
        if not math.isfinite(loss):
            if first:
                raise ValueError(_TOO_LARGE)
            return loss
        first = first and weight == 0
        total_loss += loss * weight
        total_weight += weight
    return total_loss / total_weight if total_weight else np.nan


def split_validation(est, X, Y, sample_weight, rng):
    """Hold out ``validation_fraction`` of the data for early stopping."""
    # Like scikit-learn: stratify single-output classification only.
    stratify = Y if est._stratify_split and Y.shape[1] == 1 else None
    arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
    parts = train_test_split(
        *arrays, random_state=rng, test_size=est.validation_fraction, stratify=stratify
    )
    if sample_weight is None:
        parts += [None, None]
    X_train, X_val, Y_train, Y_val, sw_train, sw_val = parts
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    return (X_train, Y_train, sw_train), (X_val, Y_val, sw_val)


def resolve_batch_size(est, n_samples):
    if est.batch_size == "auto":
        return min(200, n_samples)
    if est.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. "
            "It is going to be clipped"
        )
    return int(np.clip(est.batch_size, 1, n_samples))


def record_validation(est, net, validation, penalty_weight, halves=None):
    """Score the current weights on the validation set and record the epoch.

    Appends to ``validation_scores_`` (accuracy or R^2) and to
    ``validation_loss_curve_``: the data loss on the validation set plus the
    L2 penalty as one training minibatch carries it (``penalty_weight`` is a
    minibatch's expected total weight), so the curve compares with
    ``loss_curve_``.
    """
    X_val, Y_val, sw_val = validation
    out = net.forward(X_val) if halves is None else halves.forward(X_val)
    score = est._score_outputs(out, Y_val, sw_val)
    w, _ = net._normalized_weights(sw_val, X_val.shape[0])
    loss = output_layer(net.output).loss(Y_val, out, w)
    loss += net._penalty(est.alpha, penalty_weight)
    est.validation_scores_.append(score)
    est.validation_loss_curve_.append(float(loss))
    improved = score > est.best_validation_score_
    if improved:
        est.best_validation_score_ = score
    return score, improved


def update_stopping_state(est, net, validation, penalty_weight, halves=None):
    """Track the best loss or validation score and count epochs without progress.

    Mirrors scikit-learn: an epoch improves when it beats the best by more than
    ``tol``. With early stopping the count follows the validation score and the
    best-scoring weights are kept aside; otherwise it follows the training
    loss (a validation set, if given, is then only recorded).
    """
    if validation is not None:
        best_before = est.best_validation_score_
        score, improved = record_validation(
            est, net, validation, penalty_weight, halves
        )
        if est.early_stopping:
            if score < best_before + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if improved:
                est._best_params = net.params.copy()
            return
    if est.loss_ > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    est.best_loss_ = min(est.best_loss_, est.loss_)


def _epoch_report(est, validation, seconds):
    """One line for the epoch just recorded (verbose), read from the records."""
    line = f"Iteration {est.n_iter_}, loss = {est.loss_curve_[-1]:.8f}"
    if validation is not None:
        line += (
            f", validation loss = {est.validation_loss_curve_[-1]:.8f}"
            f", validation {est._score_name} = {est.validation_scores_[-1]:.4f}"
        )
    return line + f", {seconds:.2f} s"


def _on_plateau(est, optimizer, early_stopping):
    """No progress for n_iter_no_change epochs: stop, or lower the step size.

    Returns True to stop. Only SGD's 'adaptive' schedule continues, with the
    learning rate divided by 5.
    """
    what = "Validation score" if early_stopping else "Training loss"
    stop = optimizer.on_plateau()
    if est.verbose:
        action = (
            "Stopping."
            if stop
            else f"Setting learning rate to {optimizer.state['learning_rate']:f}"
        )
        print(
            f"{what} did not improve more than tol={est.tol:f} for "
            f"{est.n_iter_no_change} consecutive epochs. {action}"
        )
    if not stop:
        est._no_improvement_count = 0
    return stop


def _diverged(loss, params):
    """A non-finite epoch loss, or weights that are no longer finite."""
    return not (math.isfinite(loss) and math.isfinite(np.add.reduce(params)))


def _handle_divergence(est, net, optimizer, best_start, loss, validation):
    """After a diverged epoch: record it, restore safe weights, and say so.

    The weights restored are those at the start of the epoch with the lowest
    training loss: finite, and known to give a finite loss (the weights at the
    end of the last finite epoch can already be too large to predict with).
    The optimizer's moments are cleared: they may hold the overflow.
    """
    best_epoch, weights = best_start
    net.params[...] = weights
    optimizer.reset_moments()
    est.loss_curve_.append(float(loss))
    if validation is not None:
        est.validation_scores_.append(float("nan"))
        est.validation_loss_curve_.append(float("nan"))
    what = (
        f"the loss became {loss}"
        if not math.isfinite(loss)
        else ("the weights became non-finite")
    )
    warnings.warn(
        f"Training diverged at epoch {est.n_iter_ + 1}: {what}. Training stopped "
        f"and the weights from the start of epoch {best_epoch} (the lowest "
        "training loss) were restored. Scale the inputs (e.g. StandardScaler) "
        "or lower learning_rate_init.",
        ConvergenceWarning,
    )


@dataclass
class _Fit:
    """What one stochastic fit call works with, passed to the epoch loop."""

    net: object
    optimizer: object
    batches: Minibatches
    validation: object  # (X_val, Y_val, sample_weight_val) or None
    rng: object
    incremental: bool
    progress: "_FitProgress"
    penalty_weight: float  # a minibatch's expected total sample weight
    hooks: object = None  # EpochHooks, or None without callbacks
    halves: object = None  # _parallel.TwoHalves, or None for one thread


class _FitProgress:
    """What one fit call has seen so far, for restoring weights when needed."""

    def __init__(self, params):
        self.start_weights = params.copy()  # at the start of the current epoch
        self.best_start = None  # (epoch, weights at its start), lowest loss
        self.lowest_loss = np.inf
        self.first_loss = None

    def record(self, epoch, loss):
        if self.first_loss is None:
            self.first_loss = loss
        if loss < self.lowest_loss:
            self.best_start, self.lowest_loss = (epoch, self.start_weights), loss


def fit_stochastic(
    est,
    net,
    X,
    Y,
    sample_weight,
    rng,
    incremental,
    given=None,
    dropout=None,
    hooks=None,
):
    """Minibatch training with SGD or Adam (one epoch when ``incremental``).

    ``given`` is the user's validation set (X_val, Y_val, sample_weight_val);
    without it, early stopping holds out ``validation_fraction`` of the data.
    """
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    if not incremental or getattr(est, "_optimizer_state", None) is None:
        est._optimizer_state = new_optimizer_state(
            est.solver, net.params, est.learning_rate_init
        )
    optimizer = make_optimizer(est.solver, est._optimizer_state, est, net.n_weights)
    train, validation = (X, Y, sample_weight), given
    if est.early_stopping and given is None:
        train, validation = split_validation(est, X, Y, sample_weight, rng)
    if validation is not None and est.validation_scores_ is None:
        est.validation_scores_, est.validation_loss_curve_ = [], []
        est.best_validation_score_ = -np.inf
    if est.early_stopping and getattr(est, "_best_params", None) is None:
        est._best_params = net.params.copy()
    batch_size = resolve_batch_size(est, train[0].shape[0])
    halves = None
    if worth_splitting(net.layer_sizes, train[0], batch_size):
        halves = TwoHalves(net, batch_size)
    batches = Minibatches(
        net, *train, batch_size, est.shuffle, dropout, rng, workspace=halves is None
    )
    train_weight = train[0].shape[0] if train[2] is None else float(train[2].sum())
    penalty_weight = train_weight * batch_size / train[0].shape[0]

    est.n_iter_ = 0
    progress = _FitProgress(net.params)
    fit = _Fit(
        net,
        optimizer,
        batches,
        validation,
        rng,
        incremental,
        progress,
        penalty_weight,
        hooks,
        halves,
    )
    try:
        with single_threaded_blas() if halves is not None else nullcontext():
            _run_epochs(est, fit)
    except KeyboardInterrupt:
        # Back to the weights at the start of the interrupted epoch: consistent
        # with loss_curve_, which records complete epochs only.
        net.params[...] = progress.start_weights
        warnings.warn(
            "Training interrupted by user. The weights from the end of the last "
            f"complete epoch ({est.n_iter_}) were kept."
        )
    if est.early_stopping:
        net.params[...] = est._best_params
    elif est.n_iter_ > 1 and est.loss_ > progress.first_loss:
        _handle_rise(est, net, optimizer, progress)


def _reshuffled(order, rng):
    """``sklearn.utils.shuffle(order, random_state=rng)``, the same draws and
    result, without its input checks (1 ms per epoch on 100k rows)."""
    positions = np.arange(order.shape[0])
    rng.shuffle(positions)
    return order[positions]


def _run_epochs(est, fit):
    """Epochs until max_iter, a plateau, divergence, a callback's stop request,
    or one epoch (incremental)."""
    net, optimizer, batches, validation = (
        fit.net,
        fit.optimizer,
        fit.batches,
        fit.validation,
    )
    progress, hooks = fit.progress, fit.hooks
    order = np.arange(batches.X.shape[0])
    first = True
    for _ in range(est.max_iter):
        started = time.perf_counter()
        epoch = None if hooks is None else hooks.begin(est)
        if est.shuffle:
            order = _reshuffled(order, fit.rng)
        progress.start_weights = net.params.copy()
        loss = run_epoch(est, net, optimizer, batches, order, first, fit.halves)
        first = False
        if _diverged(loss, net.params):
            best = progress.best_start or (est.n_iter_ + 1, progress.start_weights)
            _handle_divergence(est, net, optimizer, best, loss, validation)
            est.n_iter_ += 1
            if epoch is not None:
                hooks.end(est, epoch)
            return
        est.n_iter_ += 1
        progress.record(est.n_iter_, loss)
        est.loss_ = loss
        est.t_ += batches.X.shape[0]
        est.loss_curve_.append(loss)
        update_stopping_state(est, net, validation, fit.penalty_weight, fit.halves)
        if est.verbose:
            print(_epoch_report(est, validation, time.perf_counter() - started))
        if epoch is not None and hooks.end(est, epoch):
            return  # a callback asked to stop: the epoch is complete and recorded
        optimizer.end_epoch(est.t_)
        if est._no_improvement_count > est.n_iter_no_change and _on_plateau(
            est, optimizer, est.early_stopping
        ):
            return
        if fit.incremental:
            return
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )


def _handle_rise(est, net, optimizer, progress):
    """The fit ended with a higher training loss than its first epoch had.

    Training made the model worse (typically a step size far too large for
    the data's scale, where the loss explodes but stays finite): restore the
    weights from the start of the lowest-loss epoch, and say so.
    """
    best_epoch, weights = progress.best_start
    net.params[...] = weights
    optimizer.reset_moments()
    warnings.warn(
        f"Training diverged: the training loss rose from {progress.first_loss:.4g} "
        f"(epoch 1) to {est.loss_:.4g} (epoch {est.n_iter_}). The weights from "
        f"the start of epoch {best_epoch} (the lowest training loss, "
        f"{progress.lowest_loss:.4g}) were restored. Scale the inputs (e.g. "
        "StandardScaler) or lower learning_rate_init.",
        ConvergenceWarning,
    )
    est.loss_ = progress.lowest_loss


def fit_lbfgs(est, net, X, Y, sample_weight):
    """Full-batch L-BFGS-B (scipy) over the flat parameter vector."""
    workspace = Workspace(net.layer_sizes, X.shape[0], net.params.dtype)
    loss_curve = []

    def objective(flat):
        net.params[...] = flat
        loss, g = net.loss_and_grad(X, Y, sample_weight, est.alpha, workspace)
        if not math.isfinite(loss):  # the line search then backs off
            return np.inf, np.zeros(g.shape, dtype=np.float64)
        return loss, g.astype(np.float64)

    def record(intermediate_result):
        loss_curve.append(float(intermediate_result.fun))
        if est.verbose:
            print(f"Iteration {len(loss_curve)}, loss = {loss_curve[-1]:.8f}")

    start = net.params.astype(np.float64)
    if not math.isfinite(objective(start)[0]):
        raise ValueError(_TOO_LARGE)
    result = scipy.optimize.minimize(
        objective,
        start,
        method="L-BFGS-B",
        jac=True,
        callback=record,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
    if not (np.isfinite(result.x).all() and math.isfinite(result.fun)):
        net.params[...] = start  # keep the model as it was, then say why
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may "
            "contain large values and need to be preprocessed."
        )
    net.params[...] = result.x
    est.n_iter_ = int(result.nit)
    est.loss_ = float(result.fun)
    est.loss_curve_ = loss_curve
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}): {result.message}. Increase max_iter "
            "or max_fun, or scale the data.",
            ConvergenceWarning,
        )
