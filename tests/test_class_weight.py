"""class_weight on BackpropClassifier, with scikit-learn's meaning."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris, make_classification
from sklearn.metrics import recall_score
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from skmlp import BackpropClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_iris, y_iris = load_iris(return_X_y=True)
LABELS = np.array(["setosa", "versicolor", "virginica"])[y_iris]


def _fit(**kwargs):
    sw = kwargs.pop("sample_weight", None)
    return BackpropClassifier((5,), max_iter=30, random_state=0, **kwargs).fit(
        X_iris, LABELS, sample_weight=sw
    )


def test_balanced_weights_raise_minority_recall_on_a_1_to_20_problem():
    X, y = make_classification(
        2100,
        10,
        weights=[20 / 21, 1 / 21],
        n_informative=4,
        class_sep=0.6,
        random_state=0,
    )
    recall = {}
    for class_weight in (None, "balanced"):
        clf = BackpropClassifier((20,), class_weight=class_weight, random_state=0)
        clf.fit(X[:1500], y[:1500])
        recall[class_weight] = recall_score(y[1500:], clf.predict(X[1500:]))
    assert recall["balanced"] > recall[None] + 0.2


@pytest.mark.parametrize(
    "class_weight", ["balanced", {"setosa": 3.0, "virginica": 0.5}]
)
def test_class_weight_is_the_sample_weight_sklearn_computes(class_weight):
    """Reference: sklearn.utils.class_weight.compute_sample_weight."""
    expected = _fit(sample_weight=compute_sample_weight(class_weight, LABELS))
    ours = _fit(class_weight=class_weight)
    for W, W_ref in zip(ours.coefs_, expected.coefs_, strict=True):
        assert_allclose(W, W_ref, rtol=1e-12)


def test_class_weight_multiplies_sample_weight():
    sw = np.random.RandomState(0).uniform(0.5, 2.0, size=len(LABELS))
    class_weight = {"versicolor": 4.0}
    both = _fit(class_weight=class_weight, sample_weight=sw)
    product = _fit(sample_weight=sw * compute_sample_weight(class_weight, LABELS))
    assert_allclose(both.coefs_[0], product.coefs_[0], rtol=1e-12)


def test_balanced_in_partial_fit_balances_each_batch():
    kwargs = dict(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    classes = np.unique(LABELS)
    ours = BackpropClassifier(class_weight="balanced", **kwargs)
    reference = BackpropClassifier(**kwargs)
    for rows in (slice(0, 90), slice(60, 150)):  # batches with uneven classes
        ours.partial_fit(X_iris[rows], LABELS[rows], classes=classes)
        reference.partial_fit(
            X_iris[rows],
            LABELS[rows],
            classes=classes,
            sample_weight=compute_sample_weight("balanced", LABELS[rows]),
        )
    assert_allclose(ours.coefs_[0], reference.coefs_[0], rtol=1e-12)


def test_balanced_uses_weighted_class_totals():
    """Reference: compute_class_weight on the rows repeated as often as their
    integer weights say (the weighted class counts, on every scikit-learn)."""
    sw = np.random.RandomState(1).randint(1, 4, size=len(LABELS)).astype(float)
    per_class = compute_class_weight(
        "balanced", classes=np.unique(LABELS), y=np.repeat(LABELS, sw.astype(int))
    )
    expected_sw = sw * per_class[np.searchsorted(np.unique(LABELS), LABELS)]
    ours = _fit(class_weight="balanced", sample_weight=sw)
    reference = _fit(sample_weight=expected_sw)
    assert_allclose(ours.coefs_[0], reference.coefs_[0], rtol=1e-12)


def test_multilabel_balanced_is_the_product_over_labels():
    Y = np.stack([y_iris == 0, y_iris != 2], axis=1).astype(int)
    ours = BackpropClassifier(
        (5,), class_weight="balanced", max_iter=20, random_state=0
    ).fit(X_iris, Y)
    reference = BackpropClassifier((5,), max_iter=20, random_state=0).fit(
        X_iris, Y, sample_weight=compute_sample_weight("balanced", Y)
    )
    assert_allclose(ours.coefs_[0], reference.coefs_[0], rtol=1e-12)


def test_bad_class_weights_are_refused():
    with pytest.raises(ValueError, match="not in class"):
        _fit(class_weight={"rose": 2.0})
    with pytest.raises(ValueError, match="class_weight"):
        _fit(class_weight="even")
    with pytest.raises(ValueError, match="weight 0"):
        _fit(class_weight={"setosa": 0.0, "versicolor": 0.0, "virginica": 0.0})
    Y = np.stack([y_iris == 0, y_iris == 1], axis=1).astype(int)
    with pytest.raises(ValueError, match="multilabel"):
        BackpropClassifier(class_weight={0: 2.0}, random_state=0).fit(X_iris, Y)
