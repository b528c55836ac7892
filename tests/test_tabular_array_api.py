"""TabularMLPClassifier / TabularMLPRegressor on arrays of other namespaces
(torch, array-api-strict) under scikit-learn's array_api_dispatch.

The preprocessing runs on the host with numpy either way; the network trains
on the input's namespace and device. The reference for every such fit is the
same fit on numpy in float64: the split, the initialisation, the shuffles and
the dropout masks (a counter-based generator) are drawn on the host, so both
take the same steps and differ only by the rounding of their operations.

array-api-strict's ``device1`` stands in for a GPU: numpy cannot read an array
there, so a step that quietly converted device arrays would fail. The torch
tensors live on ``SKMLP_TEST_DEVICE`` (default ``cpu``).
"""

import os
import pickle

import numpy as np
import pytest
import scipy
import sklearn
from numpy.testing import assert_allclose, assert_array_equal

from skmlp import TabularMLPClassifier, TabularMLPRegressor
from skmlp._ops import to_host
from skmlp._optimizers import Adam

if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 14):
    pytest.skip(
        "scikit-learn's array API dispatch needs scipy >= 1.14",
        allow_module_level=True,
    )

DEVICE = os.environ.get("SKMLP_TEST_DEVICE", "cpu")

# float64 fits of a few epochs agree to ~3e-14 (predictions) on every namespace.
RTOL, ATOL = 1e-9, 1e-12


def _dispatch():
    return sklearn.config_context(array_api_dispatch=True)


def _torch():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"SKMLP_TEST_DEVICE={DEVICE}: no such device")
    return torch, lambda a: torch.asarray(np.asarray(a), device=DEVICE)


def _strict(device=None):
    xp = pytest.importorskip("array_api_strict", reason="array-api-strict missing")
    device = xp.Device(device) if device else None
    return xp, lambda a: xp.asarray(np.asarray(a), device=device)


NAMESPACES = {
    "torch": _torch,
    "array_api_strict": _strict,
    "array_api_strict device1": lambda: _strict("device1"),
}


@pytest.fixture(params=sorted(NAMESPACES))
def namespace(request):
    """(the namespace's module, numpy -> an array of it on the test device)."""
    return NAMESPACES[request.param]()


def _of(xp, array):
    """Whether array belongs to the namespace xp (torch, or array-api-strict)."""
    return type(array).__module__.split(".")[0] == xp.__name__.split(".")[0]


def _table(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.exponential(size=n)
    score = X[:, 0] - X[:, 1] ** 2 + np.sin(2 * X[:, 2])
    weight = rng.uniform(0.2, 2.0, size=n)
    return X, score, weight


CASES = {
    "default": {},
    "two members": dict(n_members=2),
    "two bags": dict(n_bags=2, numeric_embedding="piecewise_linear"),
    "piecewise linear": dict(numeric_embedding="piecewise_linear"),
    "weighted": dict(weighted=True),
}


def _make(Estimator, case, dtype="float64", max_epochs=4):
    params = {k: v for k, v in CASES[case].items() if k != "weighted"}
    return Estimator(
        hidden_layer_sizes=(16, 16),
        max_epochs=max_epochs,
        dtype=dtype,
        random_state=0,
        **params,
    )


def _task(Estimator):
    """(X, y, sample weights, the model's output method) for the estimator."""
    X, score, weight = _table()
    if Estimator is TabularMLPClassifier:
        y = np.digitize(score, np.quantile(score, [0.33, 0.66]))  # 3 classes
        return X, y, weight, "predict_proba"
    return X, score, weight, "predict"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("Estimator", [TabularMLPClassifier, TabularMLPRegressor])
def test_a_fit_on_another_namespace_follows_the_numpy_fit(namespace, Estimator, case):
    xp, to = namespace
    X, y, weight, method = _task(Estimator)
    sample_weight = weight if CASES[case].get("weighted") else None
    on_numpy = _make(Estimator, case).fit(X, y, sample_weight=sample_weight)
    with _dispatch():
        ours = _make(Estimator, case).fit(
            to(X), to(y), sample_weight=None if sample_weight is None else to(weight)
        )
        out = getattr(ours, method)(to(X))
        labels = ours.predict(to(X))
    assert _of(xp, ours.params_) and _of(xp, out) and _of(xp, labels)
    if ours.n_bags > 1 and ours.n_members == 1:  # 240 rows: one pass for all bags
        assert ours._networks().views is not None
    assert ours.best_epoch_ == on_numpy.best_epoch_
    assert_allclose(ours.loss_curve_, on_numpy.loss_curve_, rtol=RTOL)
    assert_allclose(ours.validation_scores_, on_numpy.validation_scores_, rtol=RTOL)
    assert_allclose(to_host(out), getattr(on_numpy, method)(X), rtol=RTOL, atol=ATOL)
    if Estimator is TabularMLPClassifier:
        assert_array_equal(to_host(labels), on_numpy.predict(X))
        assert isinstance(ours.classes_, np.ndarray)  # labels live on the host


def test_float32_trains_in_float32_on_the_namespace_within_float32_noise(namespace):
    xp, to = namespace
    X, y, _, _ = _task(TabularMLPRegressor)
    on_numpy = _make(TabularMLPRegressor, "default", "float32", 2).fit(X, y)
    with _dispatch():
        ours = _make(TabularMLPRegressor, "default", "float32", 2).fit(to(X), to(y))
        predicted = ours.predict(to(X))
    assert ours.params_.dtype == xp.float32
    # Predictions are computed in float64 (as on numpy), from float32 weights.
    assert_allclose(to_host(predicted), on_numpy.predict(X), rtol=1e-4, atol=1e-4)


def test_a_table_with_categories_under_dispatch_trains_on_the_host():
    pd = pytest.importorskip("pandas")
    X, y, _, _ = _task(TabularMLPClassifier)
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["colour"] = pd.Categorical(np.array(["red", "green", "blue"])[y])
    frame.loc[::9, "a"] = np.nan
    expected = _make(TabularMLPClassifier, "default").fit(frame, y)
    with _dispatch():
        ours = _make(TabularMLPClassifier, "default").fit(frame, y)
        proba = ours.predict_proba(frame)
    assert isinstance(ours.params_, np.ndarray) and isinstance(proba, np.ndarray)
    assert_array_equal(proba, expected.predict_proba(frame))


def test_string_labels_stay_numpy_and_numeric_ones_follow_x(namespace):
    xp, to = namespace
    X, y, _, _ = _task(TabularMLPClassifier)
    names = np.array(["low", "mid", "high"])[y]
    expected = _make(TabularMLPClassifier, "default").fit(X, names).predict(X)
    with _dispatch():
        labels = _make(TabularMLPClassifier, "default").fit(to(X), names).predict(to(X))
    assert isinstance(labels, np.ndarray)
    assert_array_equal(labels, expected)


def test_predicting_with_another_namespace_is_a_clear_error(namespace):
    _, to = namespace
    X, y, _, _ = _task(TabularMLPRegressor)
    with _dispatch():
        est = _make(TabularMLPRegressor, "default", max_epochs=1).fit(to(X), to(y))
        with pytest.raises(ValueError, match=r"Regressor\.predict\(\) must use"):
            est.predict(X)
    with pytest.raises(ValueError, match="move_estimator_to"):
        est.predict(to(X))  # dispatch off: the model's arrays are not numpy's


def test_a_device_model_pickles_and_moves_to_numpy(namespace):
    _, to = namespace
    X, y, _, _ = _task(TabularMLPClassifier)
    with _dispatch():
        est = _make(TabularMLPClassifier, "two members", max_epochs=2)
        est.fit(to(X), to(y))
        expected = to_host(est.predict_proba(to(X)))
        loaded = pickle.loads(pickle.dumps(est))
        assert_array_equal(to_host(loaded.predict_proba(to(X))), expected)
    array_api = pytest.importorskip("sklearn.utils._array_api")
    if not hasattr(array_api, "move_estimator_to"):
        pytest.skip("move_estimator_to is new in scikit-learn 1.9")
    on_host = array_api.move_estimator_to(est, np, None)
    assert isinstance(on_host.params_, np.ndarray)
    assert on_host.preprocessor_ is est.preprocessor_  # host state stays as it is
    assert_allclose(on_host.predict_proba(X), expected, rtol=1e-12)


@pytest.mark.parametrize("t", [1, 2])
def test_grouped_adamw_updates_every_group_in_place(namespace, t):
    """The grouped update slices the flat vectors per group: on every namespace
    those slices are views, and the steps land in the parameters and moments
    as on numpy (checked against numpy's own steps)."""
    from skmlp._ops import NUMPY, get_ops

    _, to = namespace
    rng = np.random.RandomState(0)
    params, grads = rng.normal(size=12), rng.normal(size=(t, 12))
    groups = [(0, 5, 1.0, 1.0), (5, 9, 0.1, 0.0), (9, 12, 6.0, 1.0)]

    def run(ops, to):
        p = to(params.copy())
        opt = Adam(Adam.new_state(p, 0.0, ops), 0.05, 0.9, 0.95, 1e-8, ops=ops)
        opt.groups, opt.weight_decay = groups, 0.02
        for g in grads:
            opt.step(p, to(g.copy()))
        return to_host(p), to_host(opt.state["v"])

    with _dispatch():
        ops = get_ops(to(params))
    expected = run(NUMPY, np.asarray)
    got = run(ops, to)
    assert not np.allclose(expected[0], params)  # every group moved
    for a, b in zip(got, expected, strict=True):
        assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_a_device_model_exports_to_onnx_with_host_weights(namespace):
    """The converter copies a device model's weights to the host (numpy cannot
    read array-api-strict's device1, as it cannot read a GPU's memory)."""
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    _, to = namespace
    X, y, _, _ = _task(TabularMLPClassifier)
    with _dispatch():
        est = _make(TabularMLPClassifier, "two members", max_epochs=2)
        est.fit(to(X), to(y))
        expected = to_host(est.predict_proba(to(X)))
    onx = to_onnx(est, X[:1].astype(np.float32), options={id(est): {"zipmap": False}})
    session = ort.InferenceSession(onx.SerializeToString())
    feed = {session.get_inputs()[0].name: X.astype(np.float32)}
    assert_allclose(session.run(None, feed)[1], expected, atol=1e-5)
