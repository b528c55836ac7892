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

Usage: python benchmarks/bench_gpu.py [--device cuda] [--workloads wide medium]
       [--epochs 3] [--repeats 3]
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
from bench_fit import WORKLOADS, sklearn_like, teacher_data  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skmlp import BackpropClassifier  # noqa: E402

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
        "--workloads", nargs="+", default=["wide", "medium"], choices=["wide", "medium"]
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
