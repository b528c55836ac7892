"""Accuracy and fit time on the ten DEV tables: skmlp's tabular estimators
against HistGradientBoosting, LightGBM, RealMLP-TD, TabM-D and the drop-in
pipeline.

Protocol (issue "TabularMLPClassifier / TabularMLPRegressor"): the tables of
``dev_suite.py`` (missing targets dropped, at most 12,000 rows); for each seed
s one 80/20 split, ``train_test_split(random_state=s)``, stratified for
classification; every model fits the same training part (its own validation
split, if any, comes from it) and is scored on the same test part.

Error: 1 - accuracy (classification), RMSE / std(y_test) (regression).
Printed per dataset: each model's mean error over the seeds. Summary per
model: the geometric mean over datasets of (its mean error / HGB's mean
error), the datasets where its mean error is below HGB's ("wins"), and the
median over all fits of the fit seconds per 1,000 training rows. Then a table
of each model's fit seconds per 1,000 rows per dataset, with the tabular fits'
matmul rate (the Dense layers' FLOPs per second of fit) as a share of this
machine's float32 matmul peak, measured at the end of the run.

Models (each skipped with a message when its package is missing):
- ``tabular``: skmlp.TabularMLPClassifier / TabularMLPRegressor (defaults);
- ``backprop``: skmlp.BackpropClassifier / Regressor in a pipeline of median
  imputation + StandardScaler and constant imputation + OneHotEncoder;
- ``hgb``: HistGradientBoosting, ``categorical_features='from_dtype'``;
- ``lightgbm``: LightGBM's defaults (pandas categories natively);
- ``realmlp``: pytabkit's RealMLP_TD (``device='cpu'``);
- ``tabm``: pytabkit's TabM_D (slow on a CPU: only with ``--tabm``).

Usage: python benchmarks/bench_tabular.py [--seeds 0 1 2] [--datasets ...]
       [--models tabular hgb ...] [--tabm] [--json out.json]
       [--param name=value ...]   (extra parameters for the tabular model)
Needs the ``bench`` extra: ``pip install -e ".[bench]"``.
"""

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev_suite  # noqa: E402
import profile_tabular  # noqa: E402

import skmlp  # noqa: E402

MODELS = ["tabular", "backprop", "hgb", "lightgbm", "realmlp", "tabm"]
NEEDS = {"lightgbm": "lightgbm", "realmlp": "pytabkit", "tabm": "pytabkit"}


def _drop_in_pipeline(task, seed):
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    columns = make_column_transformer(
        (numeric, make_column_selector(dtype_include="number")),
        (categorical, make_column_selector(dtype_exclude="number")),
    )
    Estimator = (
        skmlp.BackpropClassifier
        if task == "classification"
        else skmlp.BackpropRegressor
    )
    return make_pipeline(columns, Estimator(random_state=seed))


def make_model(name, task, seed, tabular_params):
    """A fresh model for one fit; None when its package is not installed."""
    classification = task == "classification"
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        return None
    if name == "tabular":
        Estimator = (
            skmlp.TabularMLPClassifier if classification else skmlp.TabularMLPRegressor
        )
        return Estimator(random_state=seed, **tabular_params)
    if name == "backprop":
        return _drop_in_pipeline(task, seed)
    if name == "hgb":
        Estimator = (
            HistGradientBoostingClassifier
            if classification
            else HistGradientBoostingRegressor
        )
        return Estimator(categorical_features="from_dtype", random_state=seed)
    if name == "lightgbm":
        import lightgbm

        Estimator = (
            lightgbm.LGBMClassifier if classification else lightgbm.LGBMRegressor
        )
        return Estimator(random_state=seed, verbose=-1)
    import pytabkit

    kind = "RealMLP_TD" if name == "realmlp" else "TabM_D"
    Estimator = getattr(
        pytabkit, f"{kind}_{'Classifier' if classification else 'Regressor'}"
    )
    return Estimator(device="cpu", random_state=seed, verbosity=0)


def error(task, y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if task == "classification":
        return float(np.mean(y_true != y_pred))
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)) / np.std(y_true))


def run_one(model_name, dataset, seed, tabular_params):
    X, y, task = dev_suite.load(dataset)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=seed, stratify=stratify
    )
    model = make_model(model_name, task, seed, tabular_params)
    if model is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        y_pred = model.predict(X_test)
    extra = {}
    if model_name == "tabular":  # the Dense layers' matmul FLOPs per second
        n_val = math.floor(model.validation_fraction * len(X_train))
        flops = profile_tabular.dense_flops(
            model, len(X_train) - n_val, n_val, model.n_iter_
        )
        extra["matmul_gflops_per_s"] = flops / seconds / 1e9
    return {
        **extra,
        "model": model_name,
        "dataset": dataset,
        "seed": seed,
        "error": error(task, y_test, np.asarray(y_pred).reshape(np.shape(y_test))),
        "fit_s": seconds,
        "fit_s_per_1000": 1000 * seconds / len(X_train),
        "n_train": len(X_train),
    }


def summarize(results, datasets, models, reference="hgb"):
    """Mean error per (model, dataset), and each model's summary row.

    A model's ratio to the reference on a dataset compares the two on the
    seeds both ran (a model run on fewer seeds meets the reference's errors
    on those seeds only).
    """
    errors = {(r["model"], r["dataset"], r["seed"]): r["error"] for r in results}
    mean, summary = {}, {}
    for model in models:
        ratios = []
        for dataset in datasets:
            seeds = sorted(s for m, d, s in errors if m == model and d == dataset)
            if not seeds:
                continue
            mean[model, dataset] = statistics.fmean(
                errors[model, dataset, s] for s in seeds
            )
            shared = [s for s in seeds if (reference, dataset, s) in errors]
            base = [errors[reference, dataset, s] for s in shared]
            if shared and statistics.fmean(base) > 0:
                own = statistics.fmean(errors[model, dataset, s] for s in shared)
                ratios.append(own / statistics.fmean(base))
        times = [r["fit_s_per_1000"] for r in results if r["model"] == model]
        if ratios:
            summary[model] = {
                "geo_mean_ratio": math.exp(statistics.fmean(map(math.log, ratios))),
                "wins": sum(r < 1 for r in ratios),
                "n": len(ratios),
                "median_fit_s_per_1000": statistics.median(times),
            }
    return mean, summary


def print_times(results, datasets, models, peaks):
    """Fit seconds per 1,000 training rows per dataset (median over seeds),
    and the tabular fits' share of the float32 matmul peak."""
    shown = [m for m in models if any(r["model"] == m for r in results)]
    print("\nFit seconds per 1,000 training rows (median over seeds)\n")
    print("| dataset | " + " | ".join(shown) + " | tabular matmul GFLOP/s |")
    print("|---|" + "---|" * (len(shown) + 1))
    for d in datasets:
        cells = []
        for m in shown:
            times = [
                r["fit_s_per_1000"]
                for r in results
                if (r["model"], r["dataset"]) == (m, d)
            ]
            cells.append(f"{statistics.median(times):.2f}" if times else "-")
        rates = [
            r["matmul_gflops_per_s"]
            for r in results
            if (r["model"], r["dataset"]) == ("tabular", d)
            and "matmul_gflops_per_s" in r
        ]
        rate = statistics.median(rates) if rates else None
        cells.append(
            "-"
            if rate is None
            else f"{rate:.1f} ({rate / peaks[0]:.0%} of 1 thread, "
            f"{rate / peaks[1]:.0%} of all)"
        )
        print(f"| {d} | " + " | ".join(cells) + " |")


def print_tables(mean, summary, datasets, models):
    shown = [m for m in models if m in summary]
    print("\nMean error over seeds (1 - accuracy; RMSE / std(y) for regression)\n")
    print("| dataset | " + " | ".join(shown) + " |")
    print("|---|" + "---|" * len(shown))
    for d in datasets:
        cells = [f"{mean[m, d]:.4f}" if (m, d) in mean else "-" for m in shown]
        print(f"| {d} | " + " | ".join(cells) + " |")
    print(
        "\n| model | error / HGB, geo-mean | wins vs HGB "
        "| median fit s per 1,000 rows |"
    )
    print("|---|---|---|---|")
    for m in shown:
        s = summary[m]
        print(
            f"| {m} | {s['geo_mean_ratio']:.3f} | {s['wins']}/{s['n']} | "
            f"{s['median_fit_s_per_1000']:.2f} |"
        )
    if "tabular" in summary:
        for other in ("realmlp", "hgb"):
            if other in summary:
                ratio = (
                    summary["tabular"]["median_fit_s_per_1000"]
                    / summary[other]["median_fit_s_per_1000"]
                )
                print(f"\nfit time tabular / {other}: {ratio:.2f}")


def _parse_params(pairs):
    params = {}
    for pair in pairs:
        name, value = pair.split("=", 1)
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(dev_suite.DATASETS))
    parser.add_argument("--models", nargs="+", default=MODELS[:-1], choices=MODELS)
    parser.add_argument("--tabm", action="store_true", help="also run TabM-D (slow)")
    parser.add_argument("--json", help="write every fit's result here")
    parser.add_argument("--resume", help="a --json file of earlier results to reuse")
    parser.add_argument("--param", nargs="*", default=[], help="tabular name=value")
    args = parser.parse_args()
    models = list(args.models) + (["tabm"] if args.tabm else [])
    tabular_params = _parse_params(args.param)
    for name in models:
        if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
            print(f"skipping {name}: pip install {NEEDS[name]} (the bench extra)")
    results = json.loads(Path(args.resume).read_text()) if args.resume else []
    done = {(r["model"], r["dataset"], r["seed"]) for r in results}
    for dataset in args.datasets:
        for seed in args.seeds:
            for name in models:
                if (name, dataset, seed) in done:
                    continue
                result = run_one(name, dataset, seed, tabular_params)
                if result is None:
                    continue
                results.append(result)
                print(
                    f"{dataset:10s} seed {seed} {name:9s} error {result['error']:.4f} "
                    f"fit {result['fit_s']:7.2f} s",
                    flush=True,
                )
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
    mean, summary = summarize(results, args.datasets, models)
    print_tables(mean, summary, args.datasets, models)
    peaks = profile_tabular.matmul_peak(1), profile_tabular.matmul_peak(None)
    print(
        f"\nfloat32 matmul peak of this machine, measured now: {peaks[0]:.0f} "
        f"GFLOP/s with 1 thread, {peaks[1]:.0f} with all"
    )
    print_times(results, args.datasets, models, peaks)


if __name__ == "__main__":
    main()
