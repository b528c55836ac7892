"""Training and prediction speed: skmlp against MLPClassifier (and PyTorch).

Everything runs in ONE process on identical data with identical settings
(adam, the same batch size, a fixed number of epochs: tol=0 and a huge
n_iter_no_change, so nothing stops early). After a warm-up, the libraries run
interleaved (A B C A B C ...) over the repeats, so drift on a shared machine
hits them alike. Ratios are medians of per-repeat ratios.

Rows: ``skmlp`` is the compiled engine (numba's fused kernels, when numba is
installed) and ``skmlp-np`` the pure numpy engine (``SKMLP_ENGINE=numpy``).

Columns:
- s/epoch: median seconds per training epoch;
- ratio: median of (reference time / skmlp time) per repeat (> 1: skmlp faster);
- GFLOP/s: 6 * n_samples * sum(fan_in * fan_out) per epoch (forward 2, backward
  4 flops per weight and sample) divided by s/epoch;
- %peak: that share of the numpy matmul peak of the same dtype (a 2048 x 2048
  matmul), per round of repeats against the peak measured right after that
  round, then the median; the peak printed is the median of those peaks;
- MiB: peak memory allocated during one fit, by tracemalloc (numpy's and
  Python's allocations; PyTorch's are not traced and show as n/a);
- acc: held-out accuracy.

Usage: python benchmarks/bench_fit.py [--workloads wide medium small predict]
       [--repeats 3] [--epochs 2] [--activation relu] [--json out.json]
"""

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import skmlp
from skmlp import BackpropClassifier
from skmlp._activations import ACTIVATIONS

# PyTorch is optional (the table then has no PyTorch column) and trains in a
# child process: its OpenMP threads, once started, slow this process's BLAS
# on a 2-core machine (measured: a medium skmlp epoch 0.93 s before PyTorch
# has trained in the process, 1.71 s after).
HAVE_TORCH = importlib.util.find_spec("torch") is not None
torch = None  # imported in the child only


@dataclass
class Workload:
    name: str
    n_samples: int
    n_features: int
    hidden: tuple
    n_classes: int
    batch_size: int
    dtype: type
    activation: str = "relu"

    @property
    def flops_per_epoch(self):
        sizes = [self.n_features, *self.hidden, self.n_classes]
        return (
            6
            * self.n_samples
            * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        )


WORKLOADS = {
    "wide": Workload("wide float32", 20_000, 784, (1024, 1024), 10, 256, np.float32),
    "medium": Workload("medium float64", 100_000, 100, (256, 256), 10, 256, np.float64),
    "small": Workload("small float64", 100_000, 20, (16,), 2, 200, np.float64),
}


def teacher_data(w, seed=0):
    """Labels from a random teacher network, so accuracy means something."""
    rng = np.random.RandomState(seed)
    n_test = max(2000, w.n_samples // 10)
    X = rng.normal(size=(w.n_samples + n_test, w.n_features)).astype(w.dtype)
    hidden = np.tanh(X @ rng.normal(size=(w.n_features, 32)) / np.sqrt(w.n_features))
    y = np.argmax(hidden @ rng.normal(size=(32, w.n_classes)), axis=1)
    return X[: w.n_samples], y[: w.n_samples], X[w.n_samples :], y[w.n_samples :]


def matmul_peak(dtype, n=2048, repeats=5):
    a = np.random.RandomState(0).rand(n, n).astype(dtype)
    a @ a
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def sklearn_like(cls, w, epochs):
    return cls(
        hidden_layer_sizes=w.hidden,
        activation=w.activation,
        solver="adam",
        batch_size=w.batch_size,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**9,
        random_state=0,
    )


def fit_sklearn_like(cls, w, epochs, X, y):
    est = sklearn_like(cls, w, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds / epochs, est.predict


def fit_torch(w, epochs, X, y):
    """The same MLP in PyTorch: Glorot-uniform-like init, Adam, shuffled batches."""
    torch.manual_seed(0)
    dtype = torch.float32 if w.dtype == np.float32 else torch.float64
    sizes = [w.n_features, *w.hidden, w.n_classes]
    activation = {
        "identity": torch.nn.Identity,
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "logistic": torch.nn.Sigmoid,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
        "elu": torch.nn.ELU,
        "softplus": torch.nn.Softplus,
        "gelu": torch.nn.GELU,
        "silu": torch.nn.SiLU,
    }[w.activation]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(activation())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), w.batch_size):
            rows = order[i : i + w.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[rows]), yt[rows])
            loss.backward()
            opt.step()
    seconds = (time.perf_counter() - start) / epochs

    def predict(X_new):
        with torch.no_grad():
            return model(torch.from_numpy(X_new)).argmax(1).numpy()

    return seconds, predict


def fit_torch_in_child(key, activation, epochs):
    """fit_torch in a fresh process on the same data: (s/epoch, a predictor
    that returns its held-out labels)."""
    done = subprocess.run(
        [sys.executable, __file__, "--torch-child", key, activation, str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, labels = json.loads(done.stdout.splitlines()[-1])
    return seconds, lambda X_new: np.asarray(labels)


def torch_child(key, activation, epochs):
    global torch
    import torch

    w = dataclasses.replace(WORKLOADS[key], activation=activation)
    X, y, X_test, _ = teacher_data(w)
    fit_torch(w, 1, X, y)  # warm-up, as for the others
    seconds, predict = fit_torch(w, epochs, X, y)
    print(json.dumps([seconds, predict(X_test).tolist()]))


def traced_peak_mib(fit):
    tracemalloc.start()
    fit()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def with_engine(engine, fit):
    """Run fit with SKMLP_ENGINE set to engine ('numba' or 'numpy')."""
    saved = os.environ.get("SKMLP_ENGINE")
    os.environ["SKMLP_ENGINE"] = engine
    try:
        return fit()
    finally:
        if saved is None:
            del os.environ["SKMLP_ENGINE"]
        else:
            os.environ["SKMLP_ENGINE"] = saved


def skmlp_runners(w, epochs, X, y):
    """skmlp with each engine it can use here: numba's fused kernels (when
    installed) under the name 'skmlp', the pure numpy engine as 'skmlp-np'."""

    def fit():
        return fit_sklearn_like(BackpropClassifier, w, epochs, X, y)

    runners = {}
    if importlib.util.find_spec("numba") is not None:
        runners["skmlp"] = lambda: with_engine("numba", fit)
        runners["skmlp-np"] = lambda: with_engine("numpy", fit)
    else:
        runners["skmlp"] = lambda: with_engine("numpy", fit)
    return runners


def run_fit_workload(key, repeats, epochs, activation="relu"):
    w = dataclasses.replace(WORKLOADS[key], activation=activation)
    X, y, X_test, y_test = teacher_data(w)
    runners = skmlp_runners(w, epochs, X, y)
    if activation in ("identity", "logistic", "tanh", "relu"):  # MLPClassifier's
        runners["sklearn"] = lambda: fit_sklearn_like(MLPClassifier, w, epochs, X, y)
    if HAVE_TORCH:
        runners["torch"] = lambda: fit_torch_in_child(key, activation, epochs)
    for name, run in runners.items():  # warm-up (imports, BLAS threads, caches)
        if name != "torch":  # the child warms up itself
            run()
    times = {name: [] for name in runners}
    peaks = []  # measured between the rounds, so each round has its own
    predictors = {}
    for _ in range(repeats):
        for name, run in runners.items():
            seconds, predictors[name] = run()
            times[name].append(seconds)
        peaks.append(matmul_peak(w.dtype, repeats=3))
    memory = {
        name: traced_peak_mib(run) if name != "torch" else None
        for name, run in runners.items()
    }
    peak = statistics.median(peaks)
    rows = {}
    for name in runners:
        median = statistics.median(times[name])
        gflops = w.flops_per_epoch / median / 1e9
        rows[name] = {
            "seconds_per_epoch": median,
            "ratio_vs_skmlp": statistics.median(
                r / s for r, s in zip(times[name], times["skmlp"], strict=True)
            ),
            "gflops": gflops,
            # Per round: that round's GFLOP/s over the peak measured right
            # after it, then the median (drift on a shared machine cancels).
            "share_of_peak": statistics.median(
                w.flops_per_epoch / t / 1e9 / p
                for t, p in zip(times[name], peaks, strict=True)
            ),
            "peak_mib": memory[name],
            "accuracy": float(np.mean(predictors[name](X_test) == y_test)),
        }
    name = w.name if activation == "relu" else f"{w.name}, {activation}"
    return {"workload": name, "matmul_peak_gflops": peak, "rows": rows}


def run_predict_workload(repeats, n_calls=2000):
    """One-row predict and predict_proba latency of a digits model."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    models = {"skmlp": BackpropClassifier, "sklearn": MLPClassifier}
    fitted = {}
    for name, cls in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted[name] = cls(
                hidden_layer_sizes=(64,), random_state=0, max_iter=50
            ).fit(X, y)
    row = X[:1]
    result = {}
    for method in ("predict", "predict_proba"):
        times = {name: [] for name in fitted}
        for est in fitted.values():  # warm-up
            getattr(est, method)(row)
        for _ in range(repeats):
            for name, est in fitted.items():
                call = getattr(est, method)
                start = time.perf_counter()
                for _ in range(n_calls):
                    call(row)
                times[name].append((time.perf_counter() - start) / n_calls)
        result[method] = {
            name: {
                "microseconds": statistics.median(t) * 1e6,
                "ratio_vs_skmlp": statistics.median(
                    r / s for r, s in zip(t, times["skmlp"], strict=True)
                ),
            }
            for name, t in times.items()
        }
    return {"workload": "one-row predict (digits, hidden (64,))", "rows": result}


def print_fit_table(result):
    print(
        f"\n{result['workload']}  (numpy matmul peak in this run: "
        f"{result['matmul_peak_gflops']:.0f} GFLOP/s)"
    )
    print(
        f"  {'':8s} {'s/epoch':>8s} {'ratio':>6s} {'GFLOP/s':>8s} {'%peak':>6s} "
        f"{'MiB':>7s} {'acc':>6s}"
    )
    for name, r in result["rows"].items():
        mib = "n/a" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        print(
            f"  {name:8s} {r['seconds_per_epoch']:8.3f} {r['ratio_vs_skmlp']:6.2f} "
            f"{r['gflops']:8.1f} {100 * r['share_of_peak']:5.0f}% {mib:>7s} "
            f"{r['accuracy']:6.3f}"
        )


def print_predict_table(result):
    print(f"\n{result['workload']}")
    for method, rows in result["rows"].items():
        cells = "  ".join(
            f"{name} {r['microseconds']:7.1f} µs (ratio {r['ratio_vs_skmlp']:.2f})"
            for name, r in rows.items()
        )
        print(f"  {method:14s} {cells}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        default=["wide", "medium", "small", "predict"],
        choices=[*WORKLOADS, "predict"],
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--activation",
        default="relu",
        choices=sorted(ACTIVATIONS),
        help="the hidden layers' (MLPClassifier's row only for its four)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--torch-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_child:
        key, activation, epochs = args.torch_child
        return torch_child(key, activation, int(epochs))

    import threadpoolctl

    blas = [
        (i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()
    ]
    machine = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "skmlp": skmlp.__version__,
        "torch": importlib.metadata.version("torch") if HAVE_TORCH else None,
        "platform": platform.platform(),
        "blas": blas,
    }
    print("machine:", machine)
    results = []
    for name in args.workloads:
        if name == "predict":
            results.append(run_predict_workload(args.repeats))
            print_predict_table(results[-1])
        else:
            results.append(
                run_fit_workload(name, args.repeats, args.epochs, args.activation)
            )
            print_fit_table(results[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
