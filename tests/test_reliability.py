"""Reliability: determinism, threads, bounded memory, interruption, streaming."""

import hashlib
import os
import subprocess
import sys
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, mean_squared_error
from threadpoolctl import threadpool_info

from skmlp import BackpropClassifier, BackpropRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_digits, y_digits = load_digits(return_X_y=True)
X_digits = X_digits[:500] / 16.0
y_digits = y_digits[:500]

_FINGERPRINT = """
import hashlib, warnings
import numpy as np
from sklearn.datasets import load_digits
from skmlp import BackpropClassifier
warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
clf = BackpropClassifier((64, 32), solver="{solver}", max_iter=5, random_state=7)
clf.fit(X[:500] / 16.0, y[:500])
parts = [a.tobytes() for a in clf.coefs_ + clf.intercepts_]
parts.append(clf.predict_proba(X[:100] / 16.0).tobytes())
print(hashlib.sha256(b"".join(parts)).hexdigest())
"""


def _fingerprint(est, X):
    parts = [a.tobytes() for a in est.coefs_ + est.intercepts_]
    parts.append(est.predict_proba(X).tobytes())
    return hashlib.sha256(b"".join(parts)).hexdigest()


# ---- determinism -----------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_same_random_state_is_bit_identical_in_process_and_across_processes(solver):
    fits = [
        BackpropClassifier((64, 32), solver=solver, max_iter=5, random_state=7).fit(
            X_digits, y_digits
        )
        for _ in range(2)
    ]
    local = {_fingerprint(f, X_digits[:100]) for f in fits}
    assert len(local) == 1
    # Bit-identity holds for the same BLAS thread count (reductions split
    # across threads round differently), so the child gets this process's.
    threads = str(
        max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
    other = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT.format(solver=solver)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    assert local == {other}


def test_warm_start_and_partial_fit_sequences_are_reproducible():
    def run():
        clf = BackpropClassifier((16,), warm_start=True, max_iter=3, random_state=1)
        clf.fit(X_digits, y_digits)
        clf.fit(X_digits, y_digits)
        inc = BackpropClassifier((16,), random_state=1)
        for start in range(0, 500, 100):
            inc.partial_fit(
                X_digits[start : start + 100],
                y_digits[start : start + 100],
                classes=np.arange(10),
            )
        return _fingerprint(clf, X_digits), _fingerprint(inc, X_digits)

    assert run() == run()


# ---- threads ---------------------------------------------------------------


def test_one_model_serves_eight_threads_with_serial_results():
    clf = BackpropClassifier((32,), max_iter=20, random_state=0).fit(X_digits, y_digits)
    rows = [X_digits[i::8] for i in range(8)]
    serial = [(clf.predict(r), clf.predict_proba(r)) for r in rows]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        for _ in range(20):
            results[i] = (clf.predict(rows[i]), clf.predict_proba(rows[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (labels, proba), (labels_ref, proba_ref) in zip(results, serial, strict=True):
        assert_array_equal(labels, labels_ref)
        assert_array_equal(proba, proba_ref)


def test_two_models_fit_concurrently_without_interfering():
    # Large enough that the optimizers' two-thread chunked path is used.
    X, y = make_classification(2000, 100, n_classes=3, n_informative=20, random_state=0)
    models = [BackpropClassifier((600,), max_iter=3, random_state=s) for s in (0, 1)]
    serial = [_fingerprint(clone(m).fit(X, y), X[:50]) for m in models]
    threads = [threading.Thread(target=m.fit, args=(X, y)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [_fingerprint(m, X[:50]) for m in models] == serial


# ---- bounded memory at predict ---------------------------------------------


def test_predict_on_a_million_rows_stays_within_working_memory():
    rng = np.random.RandomState(0)
    reg = BackpropRegressor(hidden_layer_sizes=(1024,), max_iter=2, random_state=0)
    reg.fit(rng.normal(size=(200, 8)), rng.normal(size=200))
    X = rng.normal(size=(1_000_000, 8))  # 64 MB; hidden activations would be 8 GB
    tracemalloc.start()
    with config_context(working_memory=32):
        pred = reg.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 120 * 2**20  # output 8 MB + two 32 MiB chunks of activations
    rows = rng.choice(len(X), 1000, replace=False)
    with config_context(working_memory=4096):  # one pass, no chunking
        assert_allclose(pred[rows], reg.predict(X[rows]), rtol=1e-12)


def test_chunked_and_unchunked_predictions_are_equal():
    clf = BackpropClassifier((50,), max_iter=10, random_state=0).fit(X_digits, y_digits)
    with config_context(working_memory=0.01):  # a few rows per chunk
        assert clf._rows_per_chunk() < 30
        chunked = clf.predict_proba(X_digits)
    # BLAS blocks by row count, so only rounding may differ.
    assert_allclose(chunked, clf.predict_proba(X_digits), rtol=1e-12, atol=1e-15)


# ---- bad values at predict -------------------------------------------------


def test_overflowing_prediction_is_a_value_error_not_inf():
    reg = BackpropRegressor(
        hidden_layer_sizes=(5,), activation="identity", max_iter=5, random_state=0
    )
    reg.fit(X_digits, y_digits.astype(float))
    # Weights whose output for these rows certainly overflows (64 * 1e308):
    # the trained ones may cancel, and did on one numpy but not another.
    for W in reg.coefs_:
        W[...] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="not finite"):
            reg.predict(np.full((2, 64), 1e308))


# ---- interruption: tests/test_recovery.py (weights and optimizer state) ----


# ---- streaming from disk ---------------------------------------------------


def test_partial_fit_streams_a_memmap_in_bounded_memory(tmp_path):
    rng = np.random.RandomState(0)
    n, d, chunk = 200_000, 20, 5_000
    X = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(n, d)
    )
    y = np.lib.format.open_memmap(
        tmp_path / "y.npy", mode="w+", dtype=np.int64, shape=(n,)
    )
    w = rng.normal(size=d)
    for start in range(0, n, chunk):  # write the data chunk by chunk
        block = rng.normal(size=(chunk, d))
        X[start : start + chunk] = block
        y[start : start + chunk] = block @ w > 0
    X.flush()
    y.flush()
    del X, y

    X = np.load(tmp_path / "X.npy", mmap_mode="r")  # 32 MB on disk
    y = np.load(tmp_path / "y.npy", mmap_mode="r")
    clf = BackpropClassifier((16,), random_state=0)
    tracemalloc.start()
    for start in range(0, n, chunk):
        clf.partial_fit(
            X[start : start + chunk], y[start : start + chunk], classes=[0, 1]
        )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * chunk * d * 8  # a few chunks' worth, far below the 32 MB
    assert clf.score(X[:20_000], y[:20_000]) > 0.9


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_a_loss_that_explodes_but_stays_finite_is_caught(Estimator):
    """The issue's example: learning_rate_init=10 with sgd on unscaled data.

    The loss grows by orders of magnitude yet stays finite, so no NaN check
    sees it: the weights of the lowest-loss epoch's start are restored and
    loss_ is their objective, half the squared error or the log-loss (by
    scikit-learn's metrics) plus the L2 penalty of a minibatch of 200.
    """
    X, y = load_digits(return_X_y=True)  # pixel values 0..16: unscaled
    est = Estimator(solver="sgd", learning_rate_init=10, max_iter=50, random_state=0)
    with pytest.warns(ConvergenceWarning, match="training loss rose"):
        est.fit(X, y)
    assert est.loss_curve_[-1] > 10 * est.loss_  # an explosion, by the rule
    assert np.isfinite(est.loss_curve_).all()
    penalty = 0.5 * est.alpha / 200 * sum((W**2).sum() for W in est.coefs_)
    if Estimator is BackpropClassifier:
        data_loss = log_loss(y, est.predict_proba(X))
    else:
        data_loss = 0.5 * mean_squared_error(y, est.predict(X))
    assert est.loss_ == pytest.approx(data_loss + penalty, rel=1e-9)
    assert est.loss_ < min(est.loss_curve_)


def test_ordinary_training_is_not_mistaken_for_divergence():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        BackpropClassifier((20,), max_iter=300, random_state=0).fit(X_digits, y_digits)
    assert not [w for w in caught if "diverged" in str(w.message)]
