"""Training loops: minibatch epochs for SGD/Adam, and the L-BFGS driver.

A fit works on a :class:`TrainingState` of its own: a copy of everything
training changes (the flat parameters, the optimizer's state, the curves and
counters). The loops ask the core (:class:`skmlp._network.MLP`) for
``loss, grad``, let an optimizer update the state's parameters, and record
each epoch in the state. The estimator builds the state before the call and
commits it when the call succeeds, so a call that raises leaves the estimator
exactly as it was. Nothing here writes to the estimator; it only reads its
hyperparameters.

The call chain of a stochastic fit reads top-down::

    fit_stochastic -> _run_epochs -> run_epoch -> train_step
                                  -> update_stopping_state, _on_plateau
                   -> _settle (which weights the fit keeps: early stopping's
                      best, or after a divergence the lowest-loss epoch's)
"""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._network import MLP, output_layer
from ._optimizers import make_optimizer, new_optimizer_state

_TOO_LARGE = (
    # scikit-learn's wording first, so code matching on it keeps working.
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed. (The loss overflowed before any "
    "step: scale the features, for example with sklearn.preprocessing."
    "StandardScaler, and for regression the targets too.)"
)

# A fit whose last epoch's loss is more than this many times its first
# epoch's (or its starting weights') has exploded while staying finite;
# below it, a rise is noise.
EXPLOSION_FACTOR = 10.0


@dataclass
class TrainingState:
    """Everything a fit call changes, apart from the estimator until it succeeds.

    ``params`` is the flat parameter vector (weights, then biases) that the
    network views; ``optimizer`` the optimizer's state dict (None before the
    first stochastic step). The rest are the fitted attributes of the same
    names, with a trailing underscore on the estimator.
    """

    params: np.ndarray
    optimizer: dict | None = None
    n_iter: int = 0
    t: int = 0
    loss: float | None = None
    loss_curve: list = field(default_factory=list)
    best_loss: float | None = np.inf
    no_improvement_count: int = 0
    validation_scores: list | None = None
    validation_loss_curve: list | None = None
    best_validation_score: float | None = None
    best_params: np.ndarray | None = None  # early stopping's best, so far


def _is_number(value):
    return isinstance(value, (int, float))


def copy_optimizer_state(state, ops):
    """A copy of an optimizer state dict whose arrays are not shared."""
    if state is None:
        return None
    return {k: v if _is_number(v) else ops.copy(v) for k, v in state.items()}


def copy_optimizer_state_into(target, source):
    """Write the optimizer state ``source`` into ``target`` (a state dict of
    the same layout), arrays in place: an optimizer object holds its state
    dict itself, and a snapshot's buffers are reused."""
    for key, value in source.items():
        if _is_number(value):
            target[key] = value
        else:
            target[key][...] = value


class Minibatches:
    """The training data, served in minibatches through reused buffers.

    With shuffling, the rows of each minibatch are gathered into the same
    preallocated arrays every step (numpy's ``take(..., out=)``), so an epoch
    allocates nothing per step and never copies X as a whole; without
    shuffling, minibatches are views. ``workspace`` holds the network's
    scratch arrays for one minibatch (None on other array namespaces).

    Each minibatch comes with its total sample weight as a Python float,
    computed on the host from ``host_weight`` (the weights as numpy), so
    that a loop on a device never waits for one. Random draws (the dropout
    masks) are made on the host generator and moved to the arrays' device.
    """

    def __init__(
        self, net, X, Y, sample_weight, batch_size, shuffle, dropout=None, rng=None
    ):
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.batch_size, self.shuffle = batch_size, shuffle
        self.dropout, self.rng = dropout, rng  # rates per hidden layer, or None
        self.ops = ops = net.ops
        self._hidden_widths = net.layer_sizes[1:-1]
        self._dtype = ops.to_numpy(net.params[:1]).dtype  # for the masks
        self.workspace = ops.workspace(net.layer_sizes, batch_size, self._dtype)
        self.host_weight = (
            None if sample_weight is None else ops.to_numpy(sample_weight)
        )
        dense = ops.is_numpy and isinstance(X, np.ndarray)
        self._X_buffer = np.empty((batch_size, X.shape[1]), X.dtype) if dense else None
        self._Y_buffer = (
            np.empty((batch_size, Y.shape[1]), Y.dtype) if ops.is_numpy else None
        )

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
            masks.append(self.ops.asarray(kept))
        return masks

    def epoch(self, order):
        """Yield (X, Y, sample_weight, total weight, dropout masks) minibatches,
        in ``order`` (a host permutation) when shuffling."""
        n, ops = self.X.shape[0], self.ops
        on_device = None
        if self.shuffle and not ops.is_numpy:
            on_device = ops.asarray(order)  # one transfer per epoch
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.shuffle:
                rows = order[start:stop]
                picked = rows if on_device is None else on_device[start:stop]
                X = ops.take_rows(self.X, picked, self._X_buffer)
                Y = ops.take_rows(self.Y, picked, self._Y_buffer)
                sw = self.sample_weight
                sw = None if sw is None else ops.take_rows(sw, picked)
            else:
                rows = slice(start, stop)
                X, Y = self.X[rows], self.Y[rows]
                sw = None if self.sample_weight is None else self.sample_weight[rows]
            weight = stop - start
            if sw is not None:  # on the host: a device need not be waited for
                on_host = sw if ops.is_numpy else self.host_weight[rows]
                weight = float(np.add.reduce(on_host))
            yield X, Y, sw, weight, self.dropout_masks(stop - start)


class EpochHooks:
    """Tells scikit-learn callbacks (``sklearn.callback``) about every epoch.

    ``context`` is the fit's root callback context; ``X`` and ``y`` are the
    data as the user passed them (what a ScoringMonitor scores on);
    ``snapshot()`` returns the fitted attributes of the model as it stands
    (copies), from which the callbacks' ``fitted_estimator`` is built.
    """

    def __init__(self, context, X, y, snapshot):
        self.context, self.X, self.y, self.snapshot = context, X, y, snapshot

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
            reconstruction_attributes=self.snapshot,  # built on demand
        )


def train_step(net, optimizer, batch, alpha, workspace):
    """One optimizer step on one minibatch; returns (loss, rows it stands for).

    ``batch`` is (X, Y, sample_weight, total weight, dropout masks). A
    minibatch whose sample weights are all zero carries no information: it
    is skipped (no step) and reported with 0 rows. So is the step of a
    minibatch whose loss is not finite (the caller stops the epoch); on
    another array namespace than numpy the loss stays on the device and the
    epoch's loss answers for its minibatches.
    """
    X, Y, sample_weight, batch_weight, masks = batch
    if batch_weight <= 0:
        return 0.0, 0.0
    # The optimizer adds the penalty's gradient in its own pass over the weights.
    loss, grad = net.loss_and_grad(
        X,
        Y,
        sample_weight,
        alpha,
        workspace,
        penalty_gradient=False,
        masks=masks,
        weight_sum=batch_weight,
    )
    if not net.ops.scalar_losses or math.isfinite(loss):
        optimizer.step(net.params, grad, l2=alpha / batch_weight)
    return loss, X.shape[0]


def run_epoch(est, net, optimizer, batches, order, first):
    """One pass over the data in minibatches; returns the mean training loss.

    With shuffling, the rows are visited in the order ``order`` (a permutation
    that the caller reshuffles every epoch).

    The mean weighs each minibatch's loss (its weighted mean loss, with the
    penalty as that minibatch carries it) by its number of rows, not by its
    total sample weight: scikit-learn's MLP does so in every version that
    takes sample weights (1.7 on), and its ``tol`` test reads this curve.
    A skipped minibatch (all weights zero) counts for nothing. Stops at
    the first non-finite minibatch loss and returns it; if that happens before
    any step of this fit (``first``), the data, not the optimizer, is at fault
    and a ValueError says so.
    """
    total_loss = 0.0
    total_rows = 0
    check_each = net.ops.scalar_losses
    for batch in batches.epoch(order):
        loss, rows = train_step(net, optimizer, batch, est.alpha, batches.workspace)
        if check_each and not math.isfinite(loss):
            if first:
                raise ValueError(_TOO_LARGE)
            return loss
        first = first and rows == 0
        total_loss += loss * rows
        total_rows += rows
    return float(total_loss) / total_rows if total_rows else np.nan


def split_validation(est, X, Y, sample_weight, rng, ops):
    """Hold out ``validation_fraction`` of the data for early stopping.

    On another array namespace than numpy, the split is drawn on the host (of
    row numbers: the same draws as for numpy arrays) and its rows gathered on
    the device.
    """
    # Like scikit-learn: stratify single-output classification only.
    stratify = Y if est._stratify_split and Y.shape[1] == 1 else None
    arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
    if not ops.is_numpy:
        rows = np.arange(X.shape[0])
        if stratify is not None:
            stratify = ops.to_numpy(stratify)
        parts = _split(est, (rows,), stratify, rng)
        picked = [ops.asarray(part) for part in parts]
        parts = [ops.take_rows(a, p) for a in arrays for p in picked]
    else:
        parts = _split(est, arrays, stratify, rng)
    if sample_weight is None:
        parts += [None, None]
    X_train, X_val, Y_train, Y_val, sw_train, sw_val = parts
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    return (X_train, Y_train, sw_train), (X_val, Y_val, sw_val)


def _split(est, arrays, stratify, rng):
    """train_test_split of the arrays, with a clear error when too small."""
    try:
        return train_test_split(
            *arrays,
            random_state=rng,
            test_size=est.validation_fraction,
            stratify=stratify,
        )
    except ValueError as error:  # e.g. fewer validation rows than classes
        raise ValueError(
            f"The validation set is too small ({error}). Increase "
            "'validation_fraction' or the size of your dataset."
        ) from error


def resolve_batch_size(est, n_samples):
    if est.batch_size == "auto":
        return min(200, n_samples)
    if est.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. "
            "It is going to be clipped"
        )
    return int(np.clip(est.batch_size, 1, n_samples))


def objective(net, data, alpha, penalty_weight):
    """The training objective of the current weights on ``data`` = (X, Y, sw),
    as an epoch's loss reports it: the weighted mean data loss plus the L2
    penalty as one training minibatch carries it (``penalty_weight`` is a
    minibatch's expected total weight). Returns (objective, network output)."""
    X, Y, sw = data
    out = net.forward(X)
    w, _ = net._normalized_weights(sw, X.shape[0])
    loss = net.ops.output_loss(output_layer(net.output), Y, out, w)
    return float(loss + net._penalty(alpha, penalty_weight)), out


def record_validation(est, state, net, validation, penalty_weight, score):
    """Score the current weights on the validation set and record the epoch.

    Appends to ``validation_scores`` (``score(out, validation, loss)``: by
    default accuracy or R^2) and to ``validation_loss_curve``, the objective
    on the validation set (see :func:`objective`), which compares with
    ``loss_curve``.
    """
    loss, out = objective(net, validation, est.alpha, penalty_weight)
    score = score(out, validation, loss)
    state.validation_scores.append(score)
    state.validation_loss_curve.append(loss)
    improved = score > state.best_validation_score
    if improved:
        state.best_validation_score = score
    return score, improved


def update_stopping_state(est, state, net, validation, penalty_weight, score):
    """Track the best loss or validation score and count epochs without progress.

    Mirrors scikit-learn: an epoch improves when it beats the best by more than
    ``tol``. With early stopping the count follows the validation score and the
    best-scoring weights are kept aside; otherwise it follows the training
    loss (a validation set, if given, is then only recorded).
    """
    if validation is not None:
        best_before = state.best_validation_score
        score, improved = record_validation(
            est, state, net, validation, penalty_weight, score
        )
        if est.early_stopping:
            if score < best_before + est.tol:
                state.no_improvement_count += 1
            else:
                state.no_improvement_count = 0
            if improved:
                state.best_params = net.ops.copy(net.params)
            return
    if state.loss > state.best_loss - est.tol:
        state.no_improvement_count += 1
    else:
        state.no_improvement_count = 0
    state.best_loss = min(state.best_loss, state.loss)


def _epoch_report(est, state, validation, seconds):
    """One line for the epoch just recorded (verbose), read from the records."""
    line = f"Iteration {state.n_iter}, loss = {state.loss_curve[-1]:.8f}"
    if validation is not None:
        line += (
            f", validation loss = {state.validation_loss_curve[-1]:.8f}"
            f", validation {est._score_label()} = {state.validation_scores[-1]:.4f}"
        )
    return line + f", {seconds:.2f} s"


def _on_plateau(est, state, optimizer):
    """No progress for n_iter_no_change epochs: stop, or lower the step size.

    Returns True to stop. Only SGD's 'adaptive' schedule continues, with the
    learning rate divided by 5.
    """
    what = "Validation score" if est.early_stopping else "Training loss"
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
        state.no_improvement_count = 0
    return stop


def _diverged(loss, net):
    """A non-finite epoch loss, or weights that are no longer finite."""
    return not (math.isfinite(loss) and net.ops.all_finite(net.params))


class _Progress:
    """What one fit call has seen, to restore weights when it must.

    At the start of every epoch it keeps a copy of the weights and of the
    optimizer's state (Ctrl-C returns to both); it remembers the weights at
    the start of the epoch with the lowest training loss (divergence returns
    to them) and the first epoch's loss (to tell an explosion from noise).
    The weights the call started from are not copied: ``starting_params()``
    rebuilds them when an explosion must be judged. At most two weight
    copies and one optimizer copy are alive; their buffers are reused.
    """

    def __init__(self, state, starting_params, ops):
        self.state, self.ops = state, ops
        self.starting_params = starting_params
        self.epochs = 0  # completed in this call
        self.start_params = None  # the weights at the current epoch's start
        self.start_optimizer = None
        self.lowest = None  # (epoch, weights at its start, loss)
        self.first_loss = None

    def begin_epoch(self):
        reusable = self.start_params is not None and (
            self.lowest is None or self.lowest[1] is not self.start_params
        )
        if reusable:
            self.start_params[...] = self.state.params
        else:
            self.start_params = self.ops.copy(self.state.params)
        if self.start_optimizer is None:
            self.start_optimizer = copy_optimizer_state(self.state.optimizer, self.ops)
        else:
            copy_optimizer_state_into(self.start_optimizer, self.state.optimizer)

    def end_epoch(self, loss):
        self.epochs += 1
        if self.first_loss is None:
            self.first_loss = loss
        if self.lowest is None or loss < self.lowest[2]:
            self.lowest = (self.state.n_iter, self.start_params, loss)

    def lowest_start(self):
        """(epoch, weights at its start) of the lowest-loss epoch; before any
        finite epoch, epoch 1 and the weights the call started from."""
        if self.lowest is None:
            return 1, self.start_params
        return self.lowest[:2]

    def back_to_epoch_start(self):
        """Ctrl-C: the weights and optimizer state of the last complete epoch."""
        self.state.params[...] = self.start_params
        copy_optimizer_state_into(self.state.optimizer, self.start_optimizer)

    def exploded(self, net, train, alpha, penalty_weight):
        """The last epoch's loss exceeds EXPLOSION_FACTOR times the lower of
        the first epoch's loss and the objective of the weights this call
        started from (the first epoch may have exploded already)."""
        if self.epochs < 2 or not self.state.loss > self.first_loss:
            return False  # no rise at all: nothing more to compute
        start = MLP(
            net.layer_sizes, net.activation, net.output, self.starting_params(), net.ops
        )
        start_loss, _ = objective(start, train, alpha, penalty_weight)
        reference = min(self.first_loss, start_loss)  # start_loss may be inf
        return self.state.loss > EXPLOSION_FACTOR * reference


@dataclass
class _Fit:
    """What one stochastic fit call works with, passed to the epoch loop."""

    est: object  # read for hyperparameters only
    state: TrainingState
    net: object
    optimizer: object
    batches: Minibatches
    validation: object  # (X_val, Y_val, sample_weight_val) or None
    rng: object
    incremental: bool
    progress: _Progress
    penalty_weight: float  # a minibatch's expected total sample weight
    hooks: object = None  # EpochHooks, or None without callbacks
    score: object = None  # score(out, validation, loss) for validation_scores


def fit_stochastic(
    est,
    state,
    net,
    X,
    Y,
    sample_weight,
    rng,
    incremental,
    *,
    given,
    dropout,
    hooks,
    starting_params,
    score,
):
    """Minibatch training with SGD or Adam (one epoch when ``incremental``).

    ``state`` is the fit's own TrainingState, updated in place; ``net`` views
    its parameters. ``given`` is the user's validation set (X_val, Y_val,
    sample_weight_val); without it, early stopping holds out
    ``validation_fraction`` of the data. ``dropout`` holds the rates per
    hidden layer (or None), ``hooks`` an EpochHooks (or None without
    callbacks). ``starting_params()`` returns the weights the call starts
    from; ``score(out, validation, loss)`` is an epoch's validation score
    (see ``record_validation``); a ``score.trial`` attribute asks for one
    call before the first epoch, so that a failing scorer fails early.
    """
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    if not incremental or state.optimizer is None:
        state.optimizer = new_optimizer_state(
            est.solver, state.params, est.learning_rate_init, net.ops
        )
    optimizer = make_optimizer(est.solver, state.optimizer, est, net.n_weights, net.ops)
    train, validation = (X, Y, sample_weight), given
    if est.early_stopping and given is None:
        train, validation = split_validation(est, X, Y, sample_weight, rng, net.ops)
    if validation is not None and state.validation_scores is None:
        state.validation_scores, state.validation_loss_curve = [], []
        state.best_validation_score = -np.inf
    if validation is not None and getattr(score, "trial", False):
        score(net.forward(validation[0]), validation, np.nan)  # fail early
    if est.early_stopping and state.best_params is None:
        state.best_params = net.ops.copy(state.params)
    batch_size = resolve_batch_size(est, train[0].shape[0])
    batches = Minibatches(net, *train, batch_size, est.shuffle, dropout, rng)
    train_weight = train[0].shape[0]
    if train[2] is not None:
        train_weight = float(batches.host_weight.sum())
    penalty_weight = train_weight * batch_size / train[0].shape[0]

    state.n_iter = 0
    progress = _Progress(state, starting_params, net.ops)
    fit = _Fit(
        est,
        state,
        net,
        optimizer,
        batches,
        validation,
        rng,
        incremental,
        progress,
        penalty_weight,
        hooks,
        score,
    )
    diverged = None
    try:
        diverged = _run_epochs(fit)
    except KeyboardInterrupt:
        # Back to the start of the interrupted epoch: consistent with
        # loss_curve_, which records complete epochs only.
        progress.back_to_epoch_start()
        warnings.warn(
            "Training interrupted by user. The weights from the end of the last "
            f"complete epoch ({state.n_iter}) were kept."
        )
    _settle(fit, train, diverged)


def _reshuffled(order, rng):
    """``sklearn.utils.shuffle(order, random_state=rng)``, the same draws and
    result, without its input checks (1 ms per epoch on 100k rows)."""
    positions = np.arange(order.shape[0])
    rng.shuffle(positions)
    return order[positions]


def _run_epochs(fit):
    """Epochs until max_iter, a plateau, divergence, a callback's stop request,
    or one epoch (incremental). Returns the non-finite loss of a diverged
    epoch (recorded in the curves), or None."""
    est, state, net, optimizer = fit.est, fit.state, fit.net, fit.optimizer
    batches, validation, progress, hooks = (
        fit.batches,
        fit.validation,
        fit.progress,
        fit.hooks,
    )
    order = np.arange(batches.X.shape[0])
    for _ in range(est.max_iter):
        started = time.perf_counter()
        epoch = None if hooks is None else hooks.begin(est)
        if est.shuffle:
            order = _reshuffled(order, fit.rng)
        progress.begin_epoch()
        loss = run_epoch(est, net, optimizer, batches, order, progress.epochs == 0)
        state.n_iter += 1
        if _diverged(loss, net):
            state.loss_curve.append(float(loss))
            if validation is not None:
                state.validation_scores.append(float("nan"))
                state.validation_loss_curve.append(float("nan"))
            return loss
        progress.end_epoch(loss)
        state.loss = loss
        state.t += batches.X.shape[0]
        state.loss_curve.append(loss)
        update_stopping_state(
            est, state, net, validation, fit.penalty_weight, fit.score
        )
        if est.verbose:
            print(_epoch_report(est, state, validation, time.perf_counter() - started))
        if epoch is not None and hooks.end(est, epoch):
            return None  # a callback asked to stop: the epoch is complete
        optimizer.end_epoch(state.t)
        if state.no_improvement_count > est.n_iter_no_change and _on_plateau(
            est, state, optimizer
        ):
            return None
        if fit.incremental:
            return None
        if state.n_iter == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
    return None


def _settle(fit, train, diverged):
    """Decide which weights the fit keeps.

    - Normally the last epoch's, or with early stopping the best-scoring
      epoch's (as scikit-learn).
    - After a divergence (a non-finite loss or weights: ``diverged``), or an
      explosion that stayed finite (the last epoch's loss more than
      EXPLOSION_FACTOR times the first's): the weights from the start of this
      call's lowest-loss epoch (epoch 1: the weights the call began with),
      which gave a finite loss; with early stopping, the best-scoring ones.
      The optimizer's moments are cleared (they may hold the overflow),
      ``loss_`` becomes the objective of the kept weights on the training
      data, and a ConvergenceWarning says what happened.
    """
    est, state, net, progress = fit.est, fit.state, fit.net, fit.progress
    exploded = diverged is None and progress.exploded(
        net, train, est.alpha, fit.penalty_weight
    )
    if diverged is None and not exploded:
        if est.early_stopping:
            net.params[...] = state.best_params
        return
    lowest_epoch, lowest_params = progress.lowest_start()
    net.params[...] = state.best_params if est.early_stopping else lowest_params
    fit.optimizer.reset_moments()
    loss, _ = objective(net, train, est.alpha, fit.penalty_weight)
    if not math.isfinite(loss):  # even the starting weights overflow: refuse
        raise ValueError(_TOO_LARGE)
    state.loss = loss
    if diverged is not None:
        cause = "the weights became non-finite"
        if not math.isfinite(diverged):
            cause = f"the loss became {diverged}"
        what = f"Training diverged at epoch {state.n_iter}: {cause}. It stopped"
    else:
        what = (
            f"Training diverged: the training loss rose from "
            f"{progress.first_loss:.4g} (epoch 1) to {state.loss_curve[-1]:.4g} "
            f"(epoch {state.n_iter})"
        )
    kept = (
        "the weights with the best validation score were kept"
        if est.early_stopping
        else f"the weights from the start of epoch {lowest_epoch} (the lowest "
        "training loss) were restored"
    )
    warnings.warn(
        f"{what}, and {kept}. Scale the inputs (e.g. StandardScaler) or lower "
        "learning_rate_init.",
        ConvergenceWarning,
    )


def _sklearn_version():
    """(major, minor) of the installed scikit-learn."""
    return tuple(int(part) for part in sklearn.__version__.split(".")[:2])


def fit_lbfgs(est, state, net, X, Y, sample_weight):
    """Full-batch L-BFGS-B (scipy) over the flat parameter vector.

    The objective is evaluated in scikit-learn's order of operations (see
    ``MLP.loss_and_grad``'s ``sklearn_order``), by the engine's operations
    that are bit-equal to scikit-learn's (``ops.reference()``): L-BFGS on a
    non-convex problem amplifies a one-ulp difference about tenfold every ten
    iterations, so a long run follows scikit-learn's, and the engines each
    other's, only if every evaluation is bit-equal.
    """
    ops = net.ops.reference()
    net = MLP(net.layer_sizes, net.activation, net.output, net.params, ops)
    dtype = ops.to_numpy(net.params[:1]).dtype
    workspace = ops.workspace(net.layer_sizes, X.shape[0], dtype)
    loss_curve = []
    last = {}  # the latest evaluation: the iterate the callback reports
    order = _sklearn_version()

    def loss_and_grad(flat):
        # scipy works on the host in float64; the network, in its own place.
        net.params[...] = flat if ops.is_numpy else ops.asarray(flat, dtype)
        loss, g = net.loss_and_grad(
            X, Y, sample_weight, est.alpha, workspace, sklearn_order=order
        )
        loss = float(loss)
        last.update(x=flat.copy(), loss=loss)
        if not math.isfinite(loss):  # the line search then backs off
            return np.inf, np.zeros(g.shape, dtype=np.float64)
        return loss, ops.to_numpy(g).astype(np.float64)

    def record(xk):  # the callback(xk) form: every supported scipy passes it
        if not np.array_equal(xk, last["x"]):  # not expected: evaluate it
            loss_and_grad(xk)
        loss_curve.append(float(last["loss"]))
        if est.verbose:
            print(f"Iteration {len(loss_curve)}, loss = {loss_curve[-1]:.8f}")

    start = ops.to_numpy(net.params).astype(np.float64)
    if not math.isfinite(loss_and_grad(start)[0]):
        raise ValueError(_TOO_LARGE)
    result = scipy.optimize.minimize(
        loss_and_grad,
        start,
        method="L-BFGS-B",
        jac=True,
        callback=record,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
    if not (np.isfinite(result.x).all() and math.isfinite(result.fun)):
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may "
            "contain large values and need to be preprocessed."
        )
    net.params[...] = result.x if ops.is_numpy else ops.asarray(result.x, dtype)
    state.n_iter = int(result.nit)
    state.loss = float(result.fun)
    state.loss_curve = loss_curve
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}): {result.message}. Increase max_iter "
            "or max_fun, or scale the data.",
            ConvergenceWarning,
        )
