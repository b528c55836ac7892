"""Two cores for large networks: every minibatch in two halves, one per thread.

Why: numpy's matmuls use every core, but the elementwise work between them
(activations, the optimizer's update: about a quarter of a step of a wide
network) runs on one. A second Python thread cannot take the other core over:
after each matmul, OpenBLAS's idle worker threads spin on it for a while.
Measured on the 2-core benchmark machine: right after a matmul, an Adam update
of 1.9 M float32 parameters takes 4.4 ms on one thread and as long on two;
with BLAS single-threaded, 2.4 ms on two.

So, for networks whose step is dominated by large matmuls, skmlp does what
training on two devices does. During the fit, BLAS runs single-threaded, and
two threads each compute the loss and gradient of one half of every minibatch
with the unchanged core (the rows are independent until the weight gradient
sums over them, and ``weight_total`` makes the halves' results add up to the
minibatch's). The threads then meet at a barrier, and each adds the two
gradients over its half of the parameter vector and updates that half. The
matmuls of two half minibatches, one per core, take 0 to 5% longer than
OpenBLAS's own two threads on the whole minibatch (benchmarks/README.md); the
elementwise work, which now really runs on two cores, more than pays for it.

Used only when it pays: dense X, two cores, a BLAS allowed two threads (a
limit the user set, such as ``OPENBLAS_NUM_THREADS=1`` in a Dask worker, is
respected) and enough multiply-adds per minibatch. The result equals the
one-thread computation up to rounding: the gradient is summed in two parts.
"""

import math
import os
import threading
from concurrent.futures import wait
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

from ._chunks import _executor, _pool_map
from ._network import MLP, Workspace

# Multiply-adds per minibatch (batch size x weights) from which two halves
# win. Measured per step on the 2-core benchmark machine, one thread -> two:
# 784-100-10 at batch 200 (16 M) 1666 -> 1704 us; 200-200-10 (8 M) 1041 ->
# 1149 us; 100-256-256-10 at batch 256 (24 M) 2690 -> 2530 us; 784-1024-1024-10
# at batch 256 (476 M) 20.3 -> 19.0 ms.
MIN_MULTIPLY_ADDS = 20_000_000
MIN_HALF_ROWS = 32

_limit_lock = threading.Lock()
_limit_users = 0  # fits running now with BLAS limited by this module
_limiter = None
_original_threads = None  # the BLAS thread count before the first of them
_blas = None  # threadpoolctl's view of the BLAS libraries, found once


def _blas_libraries():
    """The process's BLAS libraries (numpy's among them), looked up once.

    Looking them up costs about 0.25 ms (threadpoolctl scans the loaded
    libraries), which a partial_fit on one minibatch would feel; numpy's BLAS,
    the one skmlp's matmuls use, is loaded before skmlp, so one look suffices.
    """
    global _blas
    if _blas is None:
        try:
            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # an unusual platform: then skmlp keeps one thread
            _blas = []
    return _blas


def _current_blas_threads():
    return max((lib.num_threads for lib in _blas_libraries()), default=1)


def _blas_threads():
    """Threads the process's BLAS may use, as it was before any split fit."""
    with _limit_lock:
        if _limit_users:
            return _original_threads
    return _current_blas_threads()


def worth_splitting(layer_sizes, X, batch_size):
    """True when two half minibatches on two threads beat one on BLAS threads."""
    if not isinstance(X, np.ndarray) or (os.cpu_count() or 1) < 2:
        return False
    if batch_size < 2 * MIN_HALF_ROWS:
        return False
    pairs = zip(layer_sizes[:-1], layer_sizes[1:], strict=True)
    multiply_adds = batch_size * sum(fan_in * fan_out for fan_in, fan_out in pairs)
    return multiply_adds >= MIN_MULTIPLY_ADDS and _blas_threads() >= 2


@contextmanager
def single_threaded_blas():
    """BLAS limited to one thread while any split fit runs (process-wide).

    Counted, so that concurrent fits restore the original limit only when the
    last of them ends.
    """
    global _limit_users, _limiter, _original_threads
    with _limit_lock:
        if _limit_users == 0:
            _original_threads = _current_blas_threads()
            _limiter = [(lib, lib.num_threads) for lib in _blas_libraries()]
            for lib, _ in _limiter:
                lib.set_num_threads(1)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                for lib, threads in _limiter:
                    lib.set_num_threads(threads)
                _limiter = None


class TwoHalves:
    """Minibatch steps computed as two halves on two threads.

    :meth:`step` is one optimizer step, in one hand-over to the second
    thread: each thread computes the loss and gradient of its half of the
    rows, the two meet at a barrier, and each updates its half of the
    parameters with the summed gradient. :meth:`loss_and_grad` is the
    gradient alone, as :meth:`MLP.loss_and_grad` with
    ``penalty_gradient=False`` but returning ``(loss, grad, other)``: the
    minibatch's gradient is ``grad + other``.
    """

    def __init__(self, net, batch_size):
        self.net = net
        # The same parameters (a view, not a copy) with a gradient buffer of its own.
        self.twin = MLP(net.layer_sizes, net.activation, net.output, net.params)
        half = (batch_size + 1) // 2
        self.workspaces = [
            Workspace(net.layer_sizes, half, net.params.dtype) for _ in range(2)
        ]
        n_w = net.n_weights
        self._weight_halves = (net.params[: n_w // 2], net.params[n_w // 2 : n_w])

    def _half(self, i, X, Y, sample_weight, alpha, masks, total):
        """(loss share, squared norm of half the weights) of rows half i."""
        n = X.shape[0]
        rows = slice(0, n // 2) if i == 0 else slice(n // 2, n)
        sw = None if sample_weight is None else sample_weight[rows]
        half_masks = None
        if masks is not None:
            half_masks = [None if m is None else m[rows] for m in masks]
        loss, _ = (self.net, self.twin)[i].loss_and_grad(
            X[rows],
            Y[rows],
            sw,
            0.0,
            self.workspaces[i],
            penalty_gradient=False,
            masks=half_masks,
            weight_total=total,
        )
        weights = self._weight_halves[i]
        return loss, float(np.dot(weights, weights)) if alpha else 0.0

    @staticmethod
    def _total_loss(halves, alpha, total):
        (loss_a, norm_a), (loss_b, norm_b) = halves
        # The L2 term of MLP._penalty, from the two halves' squared norms.
        return loss_a + loss_b + 0.5 * alpha / total * (norm_a + norm_b)

    def loss_and_grad(self, X, Y, sample_weight, alpha, masks=None):
        n = X.shape[0]
        if n < 2:
            loss, grad = self.net.loss_and_grad(
                X, Y, sample_weight, alpha, self.workspaces[0], False, masks
            )
            return loss, grad, None
        total = n if sample_weight is None else float(sample_weight.sum())
        halves = _pool_map(
            lambda i: self._half(i, X, Y, sample_weight, alpha, masks, total), (0, 1)
        )
        return self._total_loss(halves, alpha, total), self.net.grad, self.twin.grad

    def forward(self, X):
        """The network's output for X, half the rows on each thread (BLAS is
        single-threaded during the fit: the validation set's pass needs both)."""
        n = X.shape[0]
        if n < 2 * MIN_HALF_ROWS:
            return self.net.forward(X)
        parts = _pool_map(
            lambda i: self.net.forward(X[: n // 2] if i == 0 else X[n // 2 :]), (0, 1)
        )
        return np.concatenate(parts)

    def step(self, optimizer, X, Y, sample_weight, alpha, masks, total):
        """One optimizer step on the minibatch; returns its loss.

        ``total`` is the minibatch's total sample weight (its row count when
        unweighted), as ``train_step`` has it. As there, no step is taken when
        the loss is not finite.
        """
        l2 = alpha / total
        if X.shape[0] < 2:  # nothing to split: the core alone
            loss, grad = self.net.loss_and_grad(
                X, Y, sample_weight, alpha, self.workspaces[0], False, masks
            )
            if math.isfinite(loss):
                optimizer.step(self.net.params, grad, l2)
            return loss

        halves, plan = [None, None], {}

        def meet():  # run once, by the last thread to reach the barrier
            plan["loss"] = self._total_loss(halves, alpha, total)
            finite = math.isfinite(plan["loss"])
            plan["update"] = optimizer.prepare() if finite else None

        barrier = threading.Barrier(2, action=meet)

        def job(i):
            try:
                halves[i] = self._half(i, X, Y, sample_weight, alpha, masks, total)
                barrier.wait()
            except BaseException:
                barrier.abort()  # the other thread must not wait forever
                raise
            if plan["update"] is not None:  # this thread's half of the parameters
                optimizer.apply(
                    plan["update"],
                    self.net.params,
                    self.net.grad,
                    l2,
                    other=self.twin.grad,
                    part=(i, 2),
                )

        other = _executor().submit(job, 1)
        try:
            job(0)
        except threading.BrokenBarrierError:
            wait([other])
            other.result()  # the other thread's own error, when it failed first
            raise
        finally:
            wait([other])  # never return while the other thread still writes
        other.result()
        return plan["loss"]
