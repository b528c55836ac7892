"""skmlp on torch tensors (array API dispatch) against plain PyTorch, on one device.

Trains the wide and medium workloads of ``bench_fit.py`` three ways, in one
process, interleaved over repeats:

- ``skmlp[device]``: BackpropClassifier fitted on torch tensors on ``--device``
  under ``sklearn.config_context(array_api_dispatch=True)``;
- ``torch[device]``: an ``nn.Sequential`` of the same architecture, Adam with
  the same hyperparameters, the same batch size, shuffled minibatches, no
  L2 penalty on either side (alpha=0), no host sync per step;
- ``skmlp[numpy]``: the same BackpropClassifier on numpy arrays on the host's
  CPU, for the "times our own CPU speed" column (one repeat: it is slow).

Columns: s/epoch (median), ratio (median of torch time / skmlp time per repeat:
> 1 means skmlp is faster), TFLOP/s (6 * n_samples * weights per epoch / s),
and for skmlp[device] its speed-up over skmlp[numpy].

The ``tabular`` workload trains TabularMLPClassifier with its defaults
(RealMLP-TD: periodic embeddings, three hidden layers of 256, batch 256 here,
a 20% validation split scored every epoch) on a synthetic numeric table,
twice: on torch tensors on ``--device`` under array API dispatch (the
preprocessing on the host, the network on the device) and on numpy on the
host (the compiled engine, one repeat). Its ratio column is the numpy fit's
s/epoch over the device fit's (> 1: the device is faster). There is no plain
PyTorch counterpart: the recipe has no ``nn`` equivalent to compare with.

Usage: python benchmarks/bench_gpu.py [--device cuda]
       [--workloads wide medium tabular] [--epochs 3] [--repeats 3]
On a machine without a GPU, ``--device cpu`` runs the same comparison on the CPU.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy is imported

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from bench_fit import (  # noqa: E402
    WORKLOADS,
    Workload,
    sklearn_like,
    teacher_data,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skmlp import BackpropClassifier, TabularMLPClassifier  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("bench_gpu.py needs torch: pip install torch")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_skmlp(w, epochs, X, y, device):
    """s/epoch of BackpropClassifier on X, y (torch tensors, or numpy if
    device is None), and its held-out predict function."""
    est = sklearn_like(BackpropClassifier, w, epochs).set_params(alpha=0.0)
    with warnings.catch_warnings(), sklearn.config_context(array_api_dispatch=True):
        warnings.simplefilter("ignore", ConvergenceWarning)
        if device is not None:
            _sync(device)
        start = time.perf_counter()
        est.fit(X, y)
        if device is not None:
            _sync(device)
        seconds = time.perf_counter() - start
    return seconds / epochs, est


def fit_torch(w, epochs, X, y, device):
    torch.manual_seed(0)
    sizes = [w.n_features, *w.hidden, w.n_classes]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b, dtype=X.dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), device=device)
        for i in range(0, len(X), w.batch_size):
            rows = order[i : i + w.batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X[rows]), y[rows]).backward()
            opt.step()
    _sync(device)
    return (time.perf_counter() - start) / epochs, model


TABULAR = Workload("tabular float32", 20_000, 32, (256, 256, 256), 2, 256, np.float32)


def fit_tabular(epochs, X, y, device, w=TABULAR):
    """s/epoch of TabularMLPClassifier's defaults on X, y (torch tensors on
    device under array API dispatch, or numpy if device is None), and the
    fitted model. Per-fit work (preprocessing, initialisation) is included."""
    est = TabularMLPClassifier(
        batch_size=w.batch_size, max_epochs=epochs, dtype="float32", random_state=0
    )
    with sklearn.config_context(array_api_dispatch=True):
        if device is not None:
            _sync(device)
        start = time.perf_counter()
        est.fit(X, y)
        if device is not None:
            _sync(device)
        seconds = time.perf_counter() - start
    return seconds / epochs, est


def run_tabular(device, epochs, repeats, w=TABULAR):
    """Device fits (median s/epoch, accuracy) and one host numpy fit."""
    X, y, X_test, y_test = teacher_data(w)
    Xd = torch.asarray(X, device=device)
    yd = torch.asarray(y.astype(np.int64), device=device)
    fit_tabular(1, Xd[:1024], yd[:1024], device, w)  # warm-up: kernels, allocator
    fit_tabular(1, X[:1024], y[:1024], None, w)  # the compiled engine's kernels
    times = []
    for _ in range(repeats):
        seconds, est = fit_tabular(epochs, Xd, yd, device, w)
        times.append(seconds)
    with sklearn.config_context(array_api_dispatch=True):
        labels = est.predict(torch.asarray(X_test, device=device)).cpu().numpy()
    cpu_seconds, cpu_est = fit_tabular(epochs, X, y, None, w)
    accuracy = (
        float(np.mean(labels == y_test)),
        float(np.mean(cpu_est.predict(X_test) == y_test)),
    )
    return statistics.median(times), cpu_seconds, accuracy


def print_tabular(device, epochs, repeats, w=TABULAR):
    seconds, cpu, (acc_device, acc_cpu) = run_tabular(device, epochs, repeats, w)
    print(
        f"{w.name}: {w.n_samples} x {w.n_features} numeric, TabularMLPClassifier "
        f"defaults (hidden {w.hidden}, batch {w.batch_size}), {epochs} epochs"
    )
    print(
        f"  skmlp[{device.type}]  {seconds:8.4f} s/epoch  ratio {cpu / seconds:5.2f}  "
        f"acc {acc_device:.3f}  (ratio: skmlp[numpy] s/epoch / this)"
    )
    print(f"  skmlp[numpy] {cpu:8.4f} s/epoch  ratio  1.00  acc {acc_cpu:.3f}")


def run(w, device, epochs, repeats):
    X, y, X_test, y_test = teacher_data(w)
    Xd = torch.asarray(X, device=device)
    yd = torch.asarray(y.astype(np.int64), device=device)
    fit_skmlp(w, 1, Xd, yd, device)  # warm-up: kernels, allocator
    fit_torch(w, 1, Xd, yd, device)
    times = {"skmlp": [], "torch": []}
    for _ in range(repeats):
        seconds, est = fit_skmlp(w, epochs, Xd, yd, device)
        times["skmlp"].append(seconds)
        seconds, model = fit_torch(w, epochs, Xd, yd, device)
        times["torch"].append(seconds)
    with sklearn.config_context(array_api_dispatch=True):
        labels = est.predict(torch.asarray(X_test, device=device)).cpu().numpy()
    acc_skmlp = float(np.mean(labels == y_test))
    with torch.no_grad():
        out = model(torch.asarray(X_test, device=device)).argmax(1).cpu().numpy()
    acc_torch = float(np.mean(out == y_test))
    cpu_seconds, _ = fit_skmlp(w, 1, X, y, None)  # numpy on the host
    return times, (acc_skmlp, acc_torch), cpu_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default)
    parser.add_argument(
        "--workloads",
        nargs="+",
        default=["wide", "medium", "tabular"],
        choices=["wide", "medium", "tabular"],
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {device} ({name}), torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )
    for key in args.workloads:
        if key == "tabular":
            print_tabular(device, args.epochs, args.repeats)
            continue
        w = WORKLOADS[key]
        times, (acc_s, acc_t), cpu = run(w, device, args.epochs, args.repeats)
        s_med = statistics.median(times["skmlp"])
        t_med = statistics.median(times["torch"])
        ratio = statistics.median(
            t / s for s, t in zip(times["skmlp"], times["torch"], strict=True)
        )
        tflops = w.flops_per_epoch / 1e12
        print(
            f"{w.name}: {w.n_samples} x {w.n_features}, hidden {w.hidden}, "
            f"batch {w.batch_size}"
        )
        print(
            f"  skmlp[{device.type}]  {s_med:8.4f} s/epoch  ratio {ratio:5.2f}  "
            f"{tflops / s_med:7.3f} TFLOP/s  acc {acc_s:.3f}  "
            f"{cpu / s_med:6.1f}x skmlp[numpy]"
        )
        print(
            f"  torch[{device.type}]  {t_med:8.4f} s/epoch  ratio  1.00  "
            f"{tflops / t_med:7.3f} TFLOP/s  acc {acc_t:.3f}"
        )
        print(f"  skmlp[numpy] {cpu:8.4f} s/epoch (one epoch, host CPU)")


if __name__ == "__main__":
    main()
