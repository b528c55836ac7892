"""TabularPreprocessor: each transform against its formula, written out here."""

import doctest
import io
import os
import pickle
import traceback
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmlp import TabularPreprocessor, _preprocessing

settings.register_profile("ci", max_examples=60, derandomize=True)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def smooth_clip(z):
    return z / np.sqrt(1 + (z / 3) ** 2)


def robust(x, fit_values):
    """RealMLP's scaling of x by the observed values of its column in fit."""
    observed = fit_values[~np.isnan(fit_values)]
    q25, median, q75 = np.percentile(observed, [25, 50, 75])
    spread = q75 - q25 if q75 > q25 else 0.5 * (observed.max() - observed.min())
    z = (x - median) / spread if spread > 0 else np.zeros_like(x)
    return smooth_clip(np.where(np.isnan(x), 0.0, z))


def fit_transform(X, X_new=None, **params):
    pre = TabularPreprocessor(**params).fit(X)
    return pre, pre.transform(X if X_new is None else X_new)


# --- numeric columns ---------------------------------------------------------


def test_numeric_columns_are_robustly_scaled_then_smoothly_clipped(rng):
    X = np.c_[rng.standard_t(2, size=50), rng.exponential(size=50) * 100]
    pre, Z = fit_transform(X)
    for j in range(2):
        np.testing.assert_allclose(Z[:, j], robust(X[:, j], X[:, j]), rtol=1e-12)
        q25, q75 = np.percentile(X[:, j], [25, 75])
        np.testing.assert_allclose(pre.center_[j], np.median(X[:, j]))
        np.testing.assert_allclose(pre.scale_[j], 1 / (q75 - q25))
    assert (np.abs(Z) < 3).all()


def test_the_smooth_clip_tends_to_three_for_huge_values():
    X = np.array([[0.0], [1.0], [2.0], [1e300]])
    Z = TabularPreprocessor().fit(X[:3]).transform(X)
    np.testing.assert_allclose(Z[:, 0], [smooth_clip(-1.0), 0, smooth_clip(1.0), 3])


def test_a_column_whose_iqr_is_zero_is_scaled_by_its_half_range():
    x = np.array([0.0, 0, 0, 0, 0, 0, 5, -1])
    pre, Z = fit_transform(x[:, None])
    assert pre.scale_[0] == 1 / (0.5 * (5 - -1))
    np.testing.assert_allclose(Z[:, 0], smooth_clip(x / 3))


@pytest.mark.parametrize("numeric_transform", ["robust_smooth_clip", "quantile_normal"])
def test_a_constant_column_becomes_zero(numeric_transform):
    X = pd.DataFrame({"c": [7.0, 7.0, 7.0], "v": [1.0, 2.0, 3.0]})
    pre = TabularPreprocessor(numeric_transform=numeric_transform).fit(X)
    Z = pre.transform(pd.DataFrame({"c": [7.0, -1e6, np.nan], "v": [1.0, 2, 3]}))
    assert pre.scale_[0] == 0
    assert (Z[:, 0] == 0).all()


def test_missing_values_in_fit_are_imputed_by_the_median_and_flagged():
    x = np.array([1.0, np.nan, 4.0, 10.0, np.nan, 2.0])
    pre, Z = fit_transform(pd.DataFrame({"a": x}))
    assert pre.center_[0] == np.median([1.0, 4.0, 10.0, 2.0])
    np.testing.assert_allclose(Z[:, 0], robust(x, x))
    assert Z[1, 0] == 0 and Z[4, 0] == 0  # the median, scaled
    np.testing.assert_array_equal(Z[:, 1], np.isnan(x).astype(float))
    assert pre.feature_kinds_.tolist() == ["numeric", "indicator"]
    assert pre.get_feature_names_out().tolist() == ["a", "a_missing"]


def test_missing_values_at_transform_in_a_column_complete_in_fit_are_imputed():
    x = np.array([1.0, 2.0, 3.0, 8.0])
    x_new = np.array([np.nan, 3.0])
    pre, Z = fit_transform(pd.DataFrame({"a": x}), pd.DataFrame({"a": x_new}))
    assert Z.shape == (2, 1)  # no indicator: no missing value in fit
    np.testing.assert_allclose(Z[:, 0], robust(x_new, x))


def test_no_indicator_is_added_when_add_missing_indicators_is_false():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0]})
    pre = TabularPreprocessor(add_missing_indicators=False).fit(X)
    assert pre.feature_kinds_.tolist() == ["numeric"]


def test_quantile_normal_maps_the_kth_of_n_values_to_the_normal_quantile_k_over_n():
    # 9 distinct values and 9 quantiles: the k-th smallest is the k/8 quantile.
    x = np.array([3.0, -1.0, 0.5, 10.0, 2.0, 7.0, -4.0, 1.0, 100.0])
    pre, Z = fit_transform(x[:, None], numeric_transform="quantile_normal")
    ranks = np.argsort(np.argsort(x))
    bound = norm.ppf(1 - 1e-7)  # QuantileTransformer's clip of the tails
    expected = np.clip(norm.ppf(ranks / 8), -bound, bound)
    np.testing.assert_allclose(Z[:, 0], expected, atol=1e-9)
    Z_missing = pre.transform(np.array([[np.nan]]))
    np.testing.assert_allclose(Z_missing, [[0.0]], atol=1e-12)  # the median


@pytest.mark.parametrize("limit", [0, 10**9], ids=["np.interp", "all at once"])
def test_quantile_normal_transform_equals_scikit_learns_quantile_transformer(
    monkeypatch, limit
):
    # skmlp maps through the fitted QuantileTransformer's quantiles itself
    # (its transform's validation cost a one-row predict 3 ms); scikit-learn's
    # transform is the reference: ties, the fitted extremes, values beyond
    # them, a heavy tail and a column of two values. Both of skmlp's ways:
    # np.interp per column (many rows), every column at once (few rows).
    monkeypatch.setattr(_preprocessing, "_VECTOR_LIMIT", limit)
    monkeypatch.setattr(_preprocessing, "_VECTOR_MIN_COLUMNS", 1)
    rng = np.random.RandomState(0)
    fit_rows = np.column_stack(
        [
            rng.lognormal(sigma=2.0, size=500),
            rng.randint(0, 5, size=500).astype(float),
            rng.normal(size=500),
            np.where(rng.rand(500) < 0.9, 1.0, 2.0),
        ]
    )
    pre = TabularPreprocessor(numeric_transform="quantile_normal").fit(fit_rows)
    quantiles = pre.quantile_transformer_.quantiles_
    new = np.vstack(
        [
            rng.lognormal(sigma=3.0, size=(200, 4)) * rng.choice([-1, 1], (200, 4)),
            quantiles,  # every fitted quantile exactly
            quantiles[[0, -1]] + 5e-8,  # within the margin of the extremes
            quantiles[[0, -1]] - 5e-8,
            quantiles[[0, -1]] + 3e-7,  # beyond it
            quantiles[[0, -1]] - 3e-7,
            fit_rows.min(axis=0) - 1,
            fit_rows.max(axis=0) + 1,
        ]
    )
    expected = pre.quantile_transformer_.transform(new)
    np.testing.assert_allclose(pre.transform(new), expected, rtol=0, atol=1e-12)


def test_quantile_normal_gives_a_row_alone_the_numbers_it_gets_among_many(
    monkeypatch,
):
    # A few rows are mapped all columns at once, many rows by np.interp per
    # column: a row's features must not depend on the way, to the last bit
    # (ties, every fitted quantile and its neighbouring floats, beyond).
    rng = np.random.RandomState(1)
    fit_rows = np.column_stack(
        [rng.randint(0, 4, 900).astype(float), rng.standard_t(2, 900)]
    )
    pre = TabularPreprocessor(numeric_transform="quantile_normal").fit(fit_rows)
    q = pre.quantile_transformer_.quantiles_
    new = np.vstack(
        [q, np.nextafter(q, np.inf), np.nextafter(q, -np.inf), q - 1, q + 1]
        + [rng.standard_t(2, (400, 2))]
    )
    assert len(new) * len(q) > _preprocessing._VECTOR_LIMIT  # np.interp's way
    monkeypatch.setattr(_preprocessing, "_VECTOR_MIN_COLUMNS", 1)  # rows alone
    whole = pre.transform(new)
    alone = np.vstack([pre.transform(row[None, :]) for row in new])
    np.testing.assert_array_equal(alone, whole)


# --- categorical columns -----------------------------------------------------


def test_two_categories_become_one_minus_one_plus_one_feature():
    X = pd.DataFrame({"s": ["no", "yes", None, "yes"]})
    X_new = pd.DataFrame({"s": ["yes", "no", "maybe", None]})
    pre, Z = fit_transform(X, X_new)
    assert pre.categories_[0].tolist() == ["no", "yes"]
    np.testing.assert_array_equal(Z[:, 0], [1.0, -1.0, 0.0, 0.0])
    assert pre.feature_kinds_.tolist() == ["binary"]


def test_bool_columns_are_binary():
    X = pd.DataFrame({"b": [True, False, True]})
    pre, Z = fit_transform(X)
    np.testing.assert_array_equal(Z[:, 0], [1.0, -1.0, 1.0])
    assert pre.categories_[0].tolist() == [False, True]


def test_a_single_category_is_minus_one_and_missing_is_zero():
    pre, Z = fit_transform(pd.DataFrame({"s": ["a", "a", None]}))
    np.testing.assert_array_equal(Z[:, 0], [-1.0, -1.0, 0.0])


def test_three_to_eight_categories_are_one_hot_after_a_missing_slot():
    X = pd.DataFrame({"c": ["b", "a", "c", None, "a"]})
    X_new = pd.DataFrame({"c": ["c", "zzz", None, "a"]})
    pre, Z = fit_transform(X, X_new)
    assert pre.categories_[0].tolist() == ["a", "b", "c"]
    codes = [3, 0, 0, 1]  # slot 0: missing or unknown
    np.testing.assert_array_equal(Z, np.eye(4)[codes])
    assert pre.get_feature_names_out().tolist() == ["c_missing", "c_a", "c_b", "c_c"]


def test_more_categories_than_max_onehot_become_codes_for_an_embedding():
    values = [f"v{i}" for i in range(10)]
    X = pd.DataFrame({"c": values + [None]})
    X_new = pd.DataFrame({"c": ["v3", None, "new", "v0"]})
    pre, Z = fit_transform(X, X_new)
    np.testing.assert_array_equal(Z[:, 0], [4.0, 0.0, 0.0, 1.0])
    assert pre.code_cardinalities_.tolist() == [11]
    assert pre.code_columns_.tolist() == [0]


@pytest.mark.parametrize(("max_onehot", "kind"), [(2, "code"), (3, "onehot")])
def test_max_onehot_categories_is_the_largest_one_hot_column(max_onehot, kind):
    X = pd.DataFrame({"c": ["a", "b", "c"]})
    pre = TabularPreprocessor(max_onehot_categories=max_onehot).fit(X)
    assert pre.categorical_encodings_.tolist() == [kind]


def test_categories_declared_by_the_dtype_but_unseen_in_fit_have_no_slot():
    column = pd.Categorical(["a", "b", "a"], categories=["a", "b", "c", "d"])
    pre, Z = fit_transform(
        pd.DataFrame({"c": column}),
        pd.DataFrame({"c": pd.Categorical(["c", "b"], categories=list("abcd"))}),
    )
    assert pre.categories_[0].tolist() == ["a", "b"]
    np.testing.assert_array_equal(Z[:, 0], [0.0, 1.0])


FIT_COLUMN = pd.Categorical([1, 2, 3, 2, None], categories=[1, 2, 3])
SAME_VALUES = {  # each holds 3, 1, missing, 2, and 99 (unknown)
    "category of ints": pd.Categorical([3, 1, None, 2, 99]),
    "int64": np.array([3, 1, 99, 2, 99]),  # 99 for the missing value
    "float64 with NaN": [3.0, 1.0, np.nan, 2.0, 99.0],
    "object ints": np.array([3, 1, None, 2, 99], dtype=object),
    "strings": ["3", "1", None, "2", "99"],
    "nullable Int64": pd.array([3, 1, None, 2, 99], dtype="Int64"),
    "category of strings": pd.Categorical(["3", "1", None, "2", "99"]),
}


@pytest.mark.parametrize("column", SAME_VALUES.values(), ids=SAME_VALUES.keys())
def test_categories_are_matched_by_value_when_the_dtype_changes(column):
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": FIT_COLUMN}))
    Z = pre.transform(pd.DataFrame({"c": column}))
    codes = [3, 1, 0, 2, 0]  # slot 0: missing or unknown
    np.testing.assert_array_equal(Z, np.eye(4)[codes])


def test_categorical_dtypes_in_any_order_of_categories_code_by_value():
    # Unordered dtypes with the same categories in another order compare
    # equal in pandas, but their codes differ: each frame's values must find
    # their own categories, however often the dtypes are met (the codes are
    # remembered per dtype object).
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": ["a", "b", "c", "a"]}))
    values = ["c", "a", None, "b", "z"]
    expected = np.eye(4)[[3, 1, 0, 2, 0]]  # slot 0: missing or unknown
    for _ in range(3):
        for order in (list("abcz"), list("zcba"), list("bzca")):
            column = pd.Categorical(values, categories=order)
            Z = pre.transform(pd.DataFrame({"c": column}))
            np.testing.assert_array_equal(Z, expected)


def test_many_categorical_dtype_columns_code_as_their_object_columns_do():
    # The categorical-dtype columns of a frame are coded through one table
    # (each column's codes shifted into its own stretch): every column,
    # missing values (pandas code -1) and unknown categories included, must
    # code as the same values in object columns do (a key per value).
    rng = np.random.RandomState(0)
    names = [list("ab"), list("pqrst"), [f"v{i}" for i in range(30)], list("xyz")]
    fit = pd.DataFrame(
        {f"c{j}": rng.choice(levels, 60) for j, levels in enumerate(names)}
    )
    pre = TabularPreprocessor(max_onehot_categories=8).fit(fit.astype("category"))
    assert sorted(set(pre.categorical_encodings_)) == ["binary", "code", "onehot"]
    new = {}
    for j, levels in enumerate(names):
        values = rng.choice(levels, 25).astype(object)
        values[[j, 4 + j]] = None, "unseen"
        new[f"c{j}"] = values
    objects = pd.DataFrame(new)
    dtypes = objects.astype("category")
    assert dtypes.isna().any().all()  # code -1 in every column
    expected = pre.transform(objects)
    for _ in range(2):  # built, then remembered
        np.testing.assert_array_equal(pre.transform(dtypes), expected)
        for i in range(3):  # one row alone, as a one-row predict sends it
            np.testing.assert_array_equal(
                pre.transform(dtypes.iloc[i : i + 1]), expected[i : i + 1]
            )


def test_strings_in_fit_match_numbers_at_transform():
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": ["1", "2.5", "x", "1"]}))
    Z = pre.transform(pd.DataFrame({"c": [1, 2.5, 1.0, "x"]}))
    # categories sorted as text: "1", "2.5", "x"
    np.testing.assert_array_equal(Z, np.eye(4)[[1, 2, 1, 3]])


def test_a_bool_column_matches_ones_and_zeros_at_transform():
    pre = TabularPreprocessor().fit(pd.DataFrame({"b": [True, False]}))
    Z = pre.transform(pd.DataFrame({"b": [1.0, 0.0, np.nan]}))
    np.testing.assert_array_equal(Z[:, 0], [1.0, -1.0, 0.0])


# --- typing, layout and the scikit-learn contract ---------------------------


def mixed_frame():
    return pd.DataFrame(
        {
            "num": [1.0, np.nan, 3.0, 4.0],
            "flag": [True, False, True, True],
            "color": pd.Categorical(["r", "g", "b", "r"]),
            "city": [f"c{i}" for i in range(4)],
            "count": [1, 2, 3, 4],
        }
    )


def test_outputs_come_numeric_indicator_binary_onehot_code():
    pre = TabularPreprocessor(max_onehot_categories=3).fit(mixed_frame())
    kinds = ["numeric"] * 2 + ["indicator", "binary"] + ["onehot"] * 4 + ["code"]
    assert pre.feature_kinds_.tolist() == kinds
    assert pre.numeric_columns_.tolist() == [0, 1]
    assert pre.onehot_columns_.tolist() == [4, 5, 6, 7]
    assert pre.code_columns_.tolist() == [8]
    assert pre.code_cardinalities_.tolist() == [5]
    assert pre.is_categorical_.tolist() == [False, True, True, True, False]
    names = ["num", "count", "num_missing", "flag", "color_missing"]
    names += ["color_b", "color_g", "color_r", "city"]
    assert pre.get_feature_names_out().tolist() == names
    assert pre.transform(mixed_frame()).shape == (4, 9)


@pytest.mark.parametrize(
    "categorical_features",
    [["flag", "color", "city"], [1, 2, 3], [False, True, True, True, False]],
)
def test_categorical_features_by_name_index_or_mask_override_dtypes(
    categorical_features,
):
    X = mixed_frame()
    X["flag"] = X["flag"].astype(int)  # numeric by dtype, categorical when told
    pre = TabularPreprocessor(categorical_features=categorical_features).fit(X)
    assert pre.is_categorical_.tolist() == [False, True, True, True, False]


def test_numpy_arrays_are_numeric_unless_told():
    X = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"]], dtype=object)
    with pytest.raises(ValueError, match="'x1' is numeric but holds strings"):
        TabularPreprocessor().fit(X)
    pre, Z = fit_transform(X, categorical_features=[1])
    np.testing.assert_array_equal(Z[:, 1], [-1.0, 1.0, -1.0])


def test_a_zero_row_transform_returns_zero_rows():
    X = mixed_frame()
    pre = TabularPreprocessor().fit(X)
    assert pre.transform(X.iloc[:0]).shape == (0, len(pre.feature_kinds_))
    pre = TabularPreprocessor().fit(np.ones((3, 2)))
    assert pre.transform(np.ones((0, 2))).shape == (0, 2)


class _FrameWithoutColumnArrays(pd.DataFrame):
    """A DataFrame as a pandas without ``_iter_column_arrays`` would give it."""

    _iter_column_arrays = None

    @property
    def _constructor(self):
        return _FrameWithoutColumnArrays


def test_extension_dtypes_encode_as_their_numpy_equivalents_on_both_paths():
    # Nullable and pyarrow-free extension columns (Int64, boolean, string,
    # Categorical) read through the column arrays must give what the same
    # table in plain numpy dtypes (NaN, None, object) gives, with pandas's
    # column iterator and without it.
    extension = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 40, 5], dtype="Int64"),
            "x": [0.5, 1.5, np.nan, 2.0, 8.0],
            "b": pd.array([True, False, None, True, True], dtype="boolean"),
            "s": pd.array(["a", "b", None, "a", "c"], dtype="string"),
            "c": pd.Categorical(["u", "v", "u", None, "w"]),
        }
    )
    plain = pd.DataFrame(
        {
            "n": [1.0, np.nan, 3.0, 40.0, 5.0],
            "x": [0.5, 1.5, np.nan, 2.0, 8.0],
            "b": np.array([True, False, None, True, True], dtype=object),
            "s": np.array(["a", "b", None, "a", "c"], dtype=object),
            "c": np.array(["u", "v", "u", None, "w"], dtype=object),
        }
    )
    expected = TabularPreprocessor().fit(plain).transform(plain)
    pre = TabularPreprocessor().fit(extension)
    np.testing.assert_array_equal(pre.transform(extension), expected)
    np.testing.assert_array_equal(
        pre.transform(_FrameWithoutColumnArrays(extension)), expected
    )
    np.testing.assert_array_equal(
        TabularPreprocessor()
        .fit(_FrameWithoutColumnArrays(extension))
        .transform(extension),
        expected,
    )


def test_set_output_pandas_names_the_columns():
    pre = TabularPreprocessor().set_output(transform="pandas")
    Z = pre.fit_transform(mixed_frame())
    assert list(Z.columns) == list(pre.get_feature_names_out())


def test_it_works_inside_a_pipeline_and_after_clone_and_pickle():
    X = mixed_frame()
    pipeline = make_pipeline(TabularPreprocessor())
    expected = pipeline.fit_transform(X)
    restored = pickle.loads(pickle.dumps(pipeline))
    np.testing.assert_array_equal(restored.transform(X), expected)
    np.testing.assert_array_equal(clone(pipeline).fit_transform(X), expected)


@pytest.mark.parametrize("numeric_transform", ["robust_smooth_clip", "quantile_normal"])
def test_skops_round_trips_it_trusting_nothing_but_skmlp(numeric_transform):
    sio = pytest.importorskip("skops.io")
    X = mixed_frame()
    pre = TabularPreprocessor(numeric_transform=numeric_transform).fit(X)
    dumped = sio.dumps(pre)
    assert sio.get_untrusted_types(data=dumped) == ["skmlp.TabularPreprocessor"]
    loaded = sio.loads(dumped, trusted=["skmlp.TabularPreprocessor"])
    np.testing.assert_array_equal(loaded.transform(X), pre.transform(X))


def test_polars_dataframes_are_typed_like_pandas_ones():
    pl = pytest.importorskip("polars")
    X = pl.DataFrame({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    pre = TabularPreprocessor().fit(X)
    assert pre.feature_kinds_.tolist() == ["numeric", "binary"]


# --- errors that name the column ---------------------------------------------


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (pd.DataFrame({"a": [np.nan, np.nan]}), ValueError, "'a' has only missing"),
        (pd.DataFrame({"s": [None, None]}), ValueError, "'s' has only missing"),
        (pd.DataFrame({"a": [1.0, np.inf]}), ValueError, "'a' holds infinite"),
        (
            pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2021-01-01"])}),
            TypeError,
            "'t' has dtype datetime64",
        ),
        (pd.DataFrame({"z": [1j, 2j]}), ValueError, "Complex data not supported"),
        (pd.DataFrame(index=range(3)), ValueError, "0 feature"),
        (pd.DataFrame({"a": []}), ValueError, "0 sample"),
    ],
)
def test_untypeable_or_empty_columns_are_refused_by_name(X, error, match):
    with pytest.raises(error, match=match):
        TabularPreprocessor().fit(X)


def test_strings_in_a_column_numeric_in_fit_are_refused_by_name():
    pre = TabularPreprocessor().fit(pd.DataFrame({"age": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="'age' is numeric but holds strings"):
        pre.transform(pd.DataFrame({"age": ["young", "old"]}))


def test_a_changed_column_set_is_refused():
    pre = TabularPreprocessor().fit(mixed_frame())
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        pre.transform(mixed_frame().rename(columns={"city": "town"}))
    with pytest.raises(ValueError, match="missing:\n- city"):
        pre.transform(mixed_frame().drop(columns="city"))


@pytest.mark.parametrize(
    ("categorical_features", "match"),
    [(["nope"], "names \\['nope'\\]"), ([7], "index 7"), ([True], "one entry per")],
)
def test_bad_categorical_features_are_refused(categorical_features, match):
    pre = TabularPreprocessor(categorical_features=categorical_features)
    with pytest.raises(ValueError, match=match):
        pre.fit(mixed_frame())


def test_a_failed_refit_leaves_the_fitted_transformer_as_it_was():
    pre = TabularPreprocessor().fit(mixed_frame())
    before = pickle.dumps(pre)
    with pytest.raises(ValueError, match="'bad' has only missing"):
        pre.fit(pd.DataFrame({"x": [1.0, 2.0], "bad": [np.nan, np.nan]}))
    assert pickle.dumps(pre) == before


# --- scikit-learn's checks and the docstring ---------------------------------


@parametrize_with_checks(
    [
        TabularPreprocessor(),
        TabularPreprocessor(numeric_transform="quantile_normal"),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_the_docstring_example_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(TabularPreprocessor, globs={}):
        runner.run(test, out=io.StringIO().write)
    assert runner.failures == 0 and runner.tries > 0


# --- hostile input -----------------------------------------------------------

HOSTILE_COLUMNS = {
    "float": lambda d, n: d(
        st.lists(
            st.one_of(
                st.floats(-1e3, 1e3),
                st.sampled_from([0.0, 1e300, -1e300, 1e-300, np.nan, np.inf]),
            ),
            min_size=n,
            max_size=n,
        )
    ),
    "int": lambda d, n: np.array(
        d(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype=np.int64
    ),
    "bool": lambda d, n: np.array(
        d(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool
    ),
    "nullable": lambda d, n: pd.array(
        d(st.lists(st.sampled_from([True, False, None]), min_size=n, max_size=n)),
        dtype="boolean",
    ),
    "mixed objects": lambda d, n: np.array(
        d(
            st.lists(
                st.sampled_from(["a", "", 1, 2.5, None, np.nan, True]),
                min_size=n,
                max_size=n,
            )
        ),
        dtype=object,
    ),
    "category": lambda d, n: pd.Categorical(
        d(st.lists(st.sampled_from(["x", "y", None]), min_size=n, max_size=n)),
        categories=["x", "y", "unused"],
    ),
    "string": lambda d, n: pd.array(
        d(st.lists(st.sampled_from(["p", "", None]), min_size=n, max_size=n)),
        dtype="string",
    ),
    "Int64": lambda d, n: pd.array(
        d(st.lists(st.sampled_from([1, -7, None]), min_size=n, max_size=n)),
        dtype="Int64",
    ),
    "float32": lambda d, n: np.array(
        d(st.lists(st.floats(-1e3, 1e3, width=32), min_size=n, max_size=n)),
        dtype=np.float32,
    ),
    "all missing": lambda d, n: [np.nan] * n,
    "datetime": lambda d, n: pd.to_datetime([0] * n),
    "complex": lambda d, n: np.ones(n, dtype=complex),
}


@st.composite
def hostile_frames(draw, names=None):
    n_rows = draw(st.integers(0, 6))
    names = names or draw(
        st.sampled_from([["a"], ["a", "b"], ["a", "b", "c"], [0, 1], ["a", 1]])
    )
    kinds = draw(
        st.lists(
            st.sampled_from(list(HOSTILE_COLUMNS)),
            min_size=len(names),
            max_size=len(names),
        )
    )
    return pd.DataFrame(
        {
            name: HOSTILE_COLUMNS[kind](draw, n_rows)
            for name, kind in zip(names, kinds, strict=True)
        }
    )


def works_or_refuses_clearly(action):
    """True when action ran; False when skmlp or sklearn refused with a reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is a failure too
        try:
            action()
        except (ValueError, TypeError) as error:
            assert str(error), "an error must say what is wrong"
            innermost = traceback.extract_tb(error.__traceback__)[-1].filename
            assert not any(lib in innermost for lib in ("numpy", "scipy", "pandas")), (
                f"{type(error).__name__} from {innermost}: {error}"
            )
            return False
    return True


def check_output(pre, X):
    Z = pre.transform(X)
    assert Z.shape == (len(X), len(pre.feature_kinds_))
    assert np.isfinite(Z).all()


@SETTINGS
@given(
    data=st.data(),
    numeric_transform=st.sampled_from(["robust_smooth_clip", "quantile_normal"]),
)
def test_hostile_frames_are_encoded_finitely_or_refused_clearly(
    data, numeric_transform
):
    X = data.draw(hostile_frames())
    pre = TabularPreprocessor(numeric_transform=numeric_transform)
    if works_or_refuses_clearly(lambda: pre.fit(X)):
        assert works_or_refuses_clearly(lambda: check_output(pre, X))


@SETTINGS
@given(data=st.data())
def test_a_hostile_transform_or_refit_leaves_the_fitted_state_untouched(data):
    pre = TabularPreprocessor().fit(mixed_frame().iloc[:, :3])
    before = pickle.dumps(pre)
    X = data.draw(hostile_frames(names=["num", "flag", "color"]))
    works_or_refuses_clearly(lambda: check_output(pre, X))
    assert pickle.dumps(pre) == before
    if not works_or_refuses_clearly(lambda: pre.fit(X)):
        assert pickle.dumps(pre) == before


def test_the_hostile_strategies_reach_both_outcomes():
    assert works_or_refuses_clearly(lambda: TabularPreprocessor().fit(mixed_frame()))
    bad = pd.DataFrame({"a": [np.nan]})
    assert not works_or_refuses_clearly(lambda: TabularPreprocessor().fit(bad))
