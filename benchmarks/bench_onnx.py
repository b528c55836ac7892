"""ONNX export: agreement with predict / predict_proba, and one-row latency.

For every kind of model skmlp trains (each of the nine hidden activations;
binary, multiclass and multilabel classifiers; single- and multi-output,
Poisson regressors), converted with skl2onnx in float32 and float64 and run in
ONNX Runtime, prints the largest absolute difference from predict_proba (or
predict), and whether the labels are equal. Then the one-row latency of an
ONNX Runtime session against ``predict``/``predict_proba`` in the same process
(informational: ONNX Runtime is the deployment path, not a claim of skmlp's).

Usage: python benchmarks/bench_onnx.py [--repeats 2000]
Needs ``pip install "skmlp[onnx]"``.
"""

import argparse
import time
import warnings

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skmlp import BackpropClassifier, BackpropRegressor
from skmlp._activations import ACTIVATIONS


def _session(onx):
    return ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def _models(activation):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    _, Y_multilabel = make_multilabel_classification(
        150, 4, n_classes=3, random_state=0
    )
    rng = np.random.RandomState(0)
    common = dict(
        hidden_layer_sizes=(16, 8),
        activation=activation,
        max_iter=60,
        learning_rate_init=0.01,
        random_state=0,
    )
    targets = {
        "binary": (BackpropClassifier(**common), y > 0),
        "multiclass": (BackpropClassifier(**common), np.array(["a", "b", "c"])[y]),
        "multilabel": (BackpropClassifier(**common), Y_multilabel),
        "regression": (BackpropRegressor(**common), X[:, 0] - 2 * X[:, 1]),
        "multi-output": (BackpropRegressor(**common), X[:, :2] ** 2),
        "poisson": (BackpropRegressor(loss="poisson", **common), rng.poisson(2, 150)),
    }
    for kind, (est, target) in targets.items():
        yield kind, est.fit(X, target), X


def agreement():
    print("max |ONNX Runtime - skmlp| over all nine activations, iris (150 rows)")
    print(f"  {'model kind':14s} {'float32':>10s} {'float64':>10s}  labels equal")
    worst, labels_equal = {}, {}
    for activation in sorted(ACTIVATIONS):
        for kind, est, X in _models(activation):
            for dtype in (np.float32, np.float64):
                classifier = isinstance(est, BackpropClassifier)
                options = {"zipmap": False} if classifier else None
                outputs = _session(
                    to_onnx(est, X[:1].astype(dtype), options=options)
                ).run(None, {"X": X.astype(dtype)})
                if classifier:
                    expected = est.predict_proba(X)
                    same = np.array_equal(outputs[0], est.predict(X))
                    labels_equal[kind] = labels_equal.get(kind, True) and same
                else:
                    expected = est.predict(X).reshape(len(X), -1)
                key = (kind, dtype, activation == "gelu")
                gap = float(np.abs(outputs[-1] - expected).max())
                worst[key] = max(worst.get(key, 0.0), gap)
    for kind in (
        "binary",
        "multiclass",
        "multilabel",
        "regression",
        "multi-output",
        "poisson",
    ):
        float32, float64 = (
            max(worst[(kind, dtype, gelu)] for gelu in (False, True))
            for dtype in (np.float32, np.float64)
        )
        gelu64 = worst[(kind, np.float64, True)]
        print(
            f"  {kind:14s} {float32:10.1e} {float64:10.1e}  "
            f"{labels_equal.get(kind, '-')}  (float64 gelu alone: {gelu64:.1e})"
        )


def latency(repeats):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = BackpropClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X, y)
    row64, row32 = X[:1], X[:1].astype(np.float32)
    session = _session(to_onnx(est, row32, options={"zipmap": False}))

    def timed(call):
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        return (time.perf_counter() - start) / repeats * 1e6

    onnx_us = timed(lambda: session.run(None, {"X": row32}))
    predict_us = timed(lambda: est.predict(row64))
    proba_us = timed(lambda: est.predict_proba(row64))
    print("\none-row latency (digits, hidden (64,)), µs per call")
    print(f"  ONNX Runtime (labels and probabilities)  {onnx_us:7.1f}")
    print(f"  skmlp predict                           {predict_us:7.1f}")
    print(f"  skmlp predict_proba                     {proba_us:7.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agreement()
        latency(args.repeats)


if __name__ == "__main__":
    main()
