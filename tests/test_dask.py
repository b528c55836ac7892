"""Beyond one process with Dask: a cluster-backed grid search and out-of-core
training with dask-ml's Incremental. Each test module run starts a small
LocalCluster on loopback and shuts it down."""

import os
import warnings

import dask.array as da
import joblib
import pytest
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from skmlp import BackpropClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = make_classification(1200, 10, n_informative=6, random_state=0)


@pytest.fixture(scope="module")
def client():
    # distributed sets OPENBLAS_NUM_THREADS=1 etc. in this process's environment
    # for its workers; restore it so later tests' subprocesses are unaffected.
    environment = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's start-up chatter
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        dask_client = Client(cluster)
    yield dask_client
    dask_client.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environment)


def test_grid_search_on_the_cluster_matches_the_local_one(client):
    grid = {"hidden_layer_sizes": [(5,), (20,)], "learning_rate_init": [1e-3, 1e-2]}
    search = GridSearchCV(BackpropClassifier(max_iter=50, random_state=0), grid, cv=3)
    with joblib.parallel_config(backend="dask"):
        on_cluster = search.fit(X, y)
        cluster_scores = on_cluster.cv_results_["mean_test_score"].copy()
        cluster_best = on_cluster.best_params_
    local = GridSearchCV(BackpropClassifier(max_iter=50, random_state=0), grid, cv=3)
    local.fit(X, y)
    assert cluster_best == local.best_params_
    assert_array_equal(cluster_scores, local.cv_results_["mean_test_score"])
    assert len(client.scheduler_info()["workers"]) == 2


def test_incremental_over_a_chunked_array_equals_streaming_the_blocks(client):
    X_dask = da.from_array(X, chunks=200)  # 6 blocks
    y_dask = da.from_array(y, chunks=200)
    assert X_dask.numblocks[0] == 6
    model = Incremental(
        BackpropClassifier((20,), random_state=0),
        shuffle_blocks=False,
        scoring="accuracy",
    )
    in_memory = BackpropClassifier((20,), random_state=0)
    for _ in range(30):
        model.partial_fit(X_dask, y_dask, classes=[0, 1])
        for start in range(0, len(X), 200):  # the same blocks, in order
            in_memory.partial_fit(
                X[start : start + 200], y[start : start + 200], classes=[0, 1]
            )
    assert_array_equal(model.predict(X_dask).compute(), in_memory.predict(X))
    full_fit = BackpropClassifier(
        (20,), max_iter=15 * 6, batch_size=200, shuffle=False, random_state=0
    ).fit(X, y)
    score = model.score(X_dask, y_dask)
    assert score > 0.85
    assert abs(score - full_fit.score(X, y)) < 0.05
