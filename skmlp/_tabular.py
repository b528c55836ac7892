"""TabularMLPClassifier and TabularMLPRegressor: an MLP recipe for real tables.

The estimators take a table as it comes (a DataFrame with numeric, categorical
and missing values, or an array), own their preprocessing
(:class:`~skmlp.TabularPreprocessor`), and train a stack of hand-derived
layers (``_layers.py``) with RealMLP-TD's published recipe as named defaults,
changed where the DEV tables (``benchmarks/bench_tabular.py``) measured
better per second of fit:

- numeric columns mapped through their quantiles to a normal (RealMLP's
  robust scale and smooth clip squeezed long tails together: hpc_data's
  counts); one-hot up to 8 categories, +-1 binaries, learned 8-dimensional
  embeddings above;
- periodic numeric embeddings (PBLD), a per-feature scale (lr x6);
- three hidden layers of 128 (RealMLP-TD: 256) in the NTK parametrisation
  with data-dependent initialisation, each followed by a parametric
  activation (SELU for classification, Mish for regression) and dropout;
- AdamW with betas (0.9, 0.95); the learning rate on the "coslog4" schedule,
  dropout (0.15) and weight decay (0.02) flat for half of training then
  cosine to 0; biases at lr x0.1 without decay; the scale decayed with 36 lr
  wd, the alphas and the periodic embeddings with 0.01 lr wd (RealMLP-TD's
  factors);
- label smoothing 0.1 (classification); standardised targets and predictions
  clipped to the training range (regression);
- 64 epochs (RealMLP-TD: 256) on an internal validation split (20%,
  stratified), and the weights of the best epoch (the latest of ties)
  restored at the end;
- three such networks ("bags", ``n_bags``), each with its own validation
  split, initialisation and shuffles, their predictions averaged: a bagged
  ensemble, as tabular benchmarks ensemble MLPs, for less time than one
  RealMLP-TD fit.

``n_members > 1`` trains an ensemble of that many members as one computation
(TabM-mini: a member-wise random-sign adapter in front of a shared MLP, and
one output head per member); predictions average the members' outputs.

The training loop reads top-down: ``fit -> _fit_network -> _train ->
_run_epoch -> _step``; it works on its own copies and the estimator commits
its fitted attributes only when everything succeeded.

Under scikit-learn's ``array_api_dispatch``, a numeric array of another
namespace (torch on CPU or GPU, CuPy, array-api-strict) trains the network on
that namespace and device (``_ops.ArrayAPIOps``), as the drop-ins do. The
preprocessing (quantiles, categories, labels) runs on the host with numpy:
fit copies X to the host once, preprocesses it, and moves the features to the
device once; the initialisation, the split, the shuffles and the dropout
masks are drawn on the host, so a float64 fit follows the numpy fit step for
step. On the device stay the weights (``params_``), the minibatch losses
(read once per epoch) and the best epoch's copy; the validation predictions
come to the host once per epoch to be scored. predict and predict_proba
take X of the fitted namespace and device, preprocess it on the host chunk by
chunk, and answer on the device. A DataFrame, a list or a numpy array takes
the host path whatever the configuration.
"""

import copy
import math
import time
import weakref
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
)
from threadpoolctl import threadpool_limits

from ._engines import numpy_engine
from ._layers import (
    CategoricalEmbedding,
    Context,
    Dense,
    Dropout,
    EnsembleAdapter,
    MemberHeads,
    ParametricActivation,
    PeriodicEmbedding,
    PiecewiseLinearEncoding,
    Scale,
)
from ._losses import OUTPUTS, quantile
from ._ops import engine_of, get_ops, to_host
from ._optimizers import Adam
from ._preprocessing import TabularPreprocessor
from ._recent import RecentEntries
from ._schedules import SCHEDULES
from ._stack import Network
from ._validation import _fitted_engine, _store_init_params

# The batch size by the number of training rows: (at most, batch). RealMLP-TD
# trains at 256 whatever the size (pytabkit's 64/128/256/512 rule applies only
# to batch_size='auto'); 256 measured better than that rule's 64 and 128 on
# the DEV tables (3 seeds, geo-mean error / HGB 1.046 against 1.082, the rest
# of the recipe as it was) and takes fewer steps. Up to 1,024 rows skmlp keeps
# 64: at 256 a small table gets one or two steps per epoch (check_estimator's
# 160-row regression scored R^2 < 0.5 in 40 epochs).
_BATCH_SIZES = ((1024, 64), (30_000, 256), (100_000, 512))
# Weight decay multipliers, as RealMLP-TD decays these parameters (a factor's
# lr and wd multipliers both enter its decay there): the scale (lr x6) decays
# with 6 x 6 = 36 times lr * wd, the parametric activations' alphas and the
# periodic embeddings (lr x0.1) with 0.1 x 0.1. Measured on the DEV tables
# (3 seeds, geo-mean error / HGB): 1.082 without either, 1.049 with the
# scale's, 1.056 with the small ones (benchmarks/README.md).
_SCALE_WD, _SMALL_WD = 6.0, 0.1
_INIT_ROWS = 1024  # rows the data-dependent initialisation looks at
_PREDICT_ROWS = 8192  # rows per chunk at predict time (bounded memory)
_ONE_PASS_ROWS = 256  # up to this many rows, all bags in one pass (one call
# per layer instead of one per bag and layer: per-call overhead, not work, is
# most of a small predict's time)


def auto_batch_size(n_samples):
    """64 up to 1,024 rows, 256 up to 30,000, 512 up to 100,000, else 1,024
    (RealMLP-TD trains at 256 throughout)."""
    for limit, size in _BATCH_SIZES:
        if n_samples <= limit:
            return size
    return 1024


def build_layers(preprocessor, n_outputs, est, activation):
    """The stack for the preprocessor's columns: embeddings, scale, hidden
    blocks (NTK Dense, parametric activation, dropout), output."""
    width = len(preprocessor.feature_kinds_)
    numeric = list(preprocessor.numeric_columns_)
    layers = []
    codes = list(preprocessor.code_columns_)
    if codes:
        embedding = CategoricalEmbedding(
            width, codes, preprocessor.code_cardinalities_, est.embedding_dim
        )
        # The embedding's output: the code blocks, then the other columns.
        others = list(embedding.columns.others)
        numeric = [len(codes) * est.embedding_dim + others.index(j) for j in numeric]
        layers.append(embedding)
        width = embedding.n_out
    if numeric and est.numeric_embedding == "periodic":
        layers.append(
            PeriodicEmbedding(
                width, numeric, wd_scale=_SMALL_WD, bias_wd_scale=_SMALL_WD
            )
        )
    elif numeric and est.numeric_embedding == "piecewise_linear":
        layers.append(PiecewiseLinearEncoding(width, numeric))
    if len(layers) > (1 if codes else 0):
        width = layers[-1].n_out
    layers.append(Scale(width, lr_scale=6.0, wd_scale=_SCALE_WD))
    k = est.n_members
    if k > 1:
        layers.append(EnsembleAdapter(k, width))
    for size in est.hidden_layer_sizes:
        layers += [
            Dense(
                width,
                size,
                ntk=True,
                init="data",
                penalized=False,
                bias_lr_scale=0.1,
                bias_wd_scale=0.0,
            ),
            ParametricActivation(size, activation, lr_scale=0.1, wd_scale=_SMALL_WD),
            Dropout(est.dropout),
        ]
        width = size
    if k > 1:
        layers.append(MemberHeads(width, n_outputs, k, init="zeros"))
    else:
        layers.append(Dense(width, n_outputs, ntk=True, init="zeros", penalized=False))
    return layers


class _Result:
    """What a training run hands back for the estimator to commit."""

    def __init__(self, params, loss_curve, validation_scores, best_epoch, n_iter):
        self.params, self.loss_curve = params, loss_curve
        self.validation_scores, self.best_epoch = validation_scores, best_epoch
        self.n_iter = n_iter


class _Batches:
    """The minibatches of a fit: (X, Y, w, total weight) rows of a batch, w
    None without sample weights.

    X, Y and w come as host (numpy) arrays. The numpy engines gather each
    batch into buffers allocated once per fit (the compiled engine's gather
    kernel). Another namespace's engine gets the three arrays moved to its
    device once, here, and each epoch's row order once per epoch; each
    batch's total weight is then summed on the host (a Python float), so that
    no step waits for the device.
    """

    def __init__(self, X, Y, w, batch_size, ops):
        self.ops, self.batch_size = ops, batch_size
        self.arrays = [a for a in (X, Y, w) if a is not None]
        self.host_weight = None if ops.is_numpy else w
        if ops.is_numpy:
            self.buffers = [
                np.empty((batch_size,) + a.shape[1:], a.dtype) for a in self.arrays
            ]
        else:
            self.arrays = [ops.asarray(a) for a in self.arrays]  # to the device
            self.buffers = [None] * len(self.arrays)
        self.weighted = w is not None

    def epoch(self, order):
        """The minibatches of one pass over the rows in ``order`` (host indices)."""
        index = order if self.ops.is_numpy else self.ops.asarray(order)
        n = len(order)
        for begin in range(0, n, self.batch_size):
            rows = slice(begin, min(begin + self.batch_size, n))  # stop within
            yield self.gather(index[rows], order[rows])

    def gather(self, rows, host_rows):
        ops = self.ops
        batch = [
            ops.take_rows(a, rows, out)
            if a.ndim == 2 or not ops.is_numpy
            else a.take(rows)
            for a, out in zip(self.arrays, self.buffers, strict=True)
        ]
        if not self.weighted:
            return (*batch, None, None)
        if self.host_weight is None:  # numpy: the network sums the weights
            return (*batch, None)
        return (*batch, float(np.add.reduce(self.host_weight[host_rows])))


class _BaseTabularMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, the network,
    the training loop and the chunked forward pass."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like"],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "n_bags": [Interval(Integral, 1, None, closed="left")],
        "numeric_embedding": [StrOptions({"periodic", "piecewise_linear", "none"})],
        "numeric_transform": [StrOptions({"robust_smooth_clip", "quantile_normal"})],
        "activation": [StrOptions({"auto", "selu", "mish", "relu", "gelu", "silu"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if (
            sizes.ndim != 1
            or not np.issubdtype(sizes.dtype, np.integer)
            or (sizes < 1).any()
        ):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _fit_network(self, X, Y, sample_weight, stratify, output, rng, engine):
        """Preprocess, build, then split and train each bag: (preprocessor,
        layers, results), one result per bag.

        X, Y and sample_weight are on the host; the preprocessing runs there,
        with numpy. ``engine`` is where the network trains: the numpy engines
        (:data:`~skmlp._ops.NUMPY`), or another array namespace's
        (:class:`~skmlp._ops.ArrayAPIOps`), to whose device the features,
        targets and weights then move once."""
        preprocessor = TabularPreprocessor(
            categorical_features=self.categorical_features,
            numeric_transform=self.numeric_transform,
        ).fit(X)
        features = preprocessor.transform(X).astype(self.dtype)
        layers = build_layers(preprocessor, Y.shape[1], self, self._activation())
        results = []
        # One BLAS thread: on minibatches of 64-1024 rows a second thread costs
        # more than it brings, and on a busy machine OpenBLAS's waiting threads
        # made fits 10-30 times slower (benchmarks/README.md). The previous
        # limits return when training ends.
        with threadpool_limits(limits=1, user_api="blas"):
            for bag in range(self.n_bags):  # each with its own validation rows
                if self.verbose and self.n_bags > 1:
                    print(f"Bag {bag + 1} of {self.n_bags}")
                train, val = self._split(features.shape[0], stratify, rng)
                results.append(
                    self._train(
                        layers,
                        output,
                        features,
                        Y,
                        sample_weight,
                        train,
                        val,
                        rng,
                        engine,
                    )
                )
        return preprocessor, layers, results

    def _split(self, n, stratify, rng):
        """Row indices of the training and validation parts (validation None
        when the data are too few to spare any)."""
        rows = np.arange(n)
        n_val = math.floor(self.validation_fraction * n)
        if n_val < 1 or n - n_val < 1:
            return rows, None
        seed = rng.randint(np.iinfo(np.int32).max)
        if stratify is not None:
            counts = np.unique(stratify, return_counts=True)[1]
            if counts.min() < 2 or n_val < len(counts):
                stratify = None
        train, val = train_test_split(
            rows, test_size=n_val, random_state=seed, stratify=stratify
        )
        return np.sort(train), np.sort(val)

    def _train(self, layers, output, X, Y, sample_weight, train, val, rng, engine):
        """The epochs: the weights of the best one, and the curves.

        X, Y and sample_weight are host arrays; the initialisation reads X on
        the host, the steps run on ``engine``'s arrays (see ``_Batches``).
        """
        dtype = np.dtype(self.dtype)
        net, optimizer = self._start(layers, output, X, train, rng, engine)
        ops = net.ops
        batch_size = self._batch_size(len(train))
        steps_per_epoch = math.ceil(len(train) / batch_size)
        total_steps = self.max_epochs * steps_per_epoch
        w = None if sample_weight is None else sample_weight.astype(dtype)
        # The validation passes read the training vector without a gradient.
        scorer = Network(
            layers, output, net.params, self.n_members, ops, trainable=False
        )
        batches = _Batches(X, Y, w, batch_size, ops)
        held_out = None if val is None else _held_out(ops, X, Y, w, val)
        best = (np.inf, -1, ops.copy(net.params))
        loss_curve, scores = [], []
        for epoch in range(self._epochs_to_run()):
            start = time.perf_counter()
            loss = self._run_epoch(
                net,
                optimizer,
                batches,
                train,
                epoch * steps_per_epoch,
                total_steps,
                rng,
            )
            loss_curve.append(loss)
            if held_out is not None:
                scores.append(self._validation_error(scorer, *held_out))
                if scores[-1] <= best[0]:  # the latest of ties
                    best = (scores[-1], epoch, ops.copy(net.params))
            if self.verbose:
                shown = f", validation error {scores[-1]:.5f}" if scores else ""
                print(
                    f"Epoch {epoch + 1}, loss {loss:.5f}{shown} "
                    f"({time.perf_counter() - start:.2f} s)"
                )
            if not math.isfinite(loss):
                break
        if held_out is None:
            best = (np.nan, len(loss_curve) - 1, ops.copy(net.params))
        return _Result(best[2], loss_curve, scores or None, best[1], len(loss_curve))

    def _start(self, layers, output, X, train, rng, engine):
        """The network, initialised from training rows of the host's X, and
        its AdamW optimizer, on ``engine`` (numpy's: the compiled one)."""
        dtype = np.dtype(self.dtype)
        ops = numpy_engine(dtype) if engine.is_numpy else engine
        net = Network(layers, output, n_members=self.n_members, ops=ops, dtype=dtype)
        init_rows = train[rng.permutation(len(train))[:_INIT_ROWS]]
        net.initialize(X[init_rows], rng)
        optimizer = Adam(
            Adam.new_state(net.params, 0.0, ops),
            0.0,
            0.9,
            0.95,
            1e-8,
            ops=ops,
            groups=net.groups(),
        )
        return net, optimizer

    def _epochs_to_run(self):
        """Epochs this fit runs; the schedules' horizon is max_epochs either way
        (a seam for tests that stop a fit early to compare its weights)."""
        return self.max_epochs

    def _batch_size(self, n_train):
        if self.batch_size == "auto":
            return auto_batch_size(n_train)
        return min(self.batch_size, n_train)

    def _run_epoch(self, net, optimizer, batches, rows, step, total, rng):
        """One pass over the shuffled training rows; the mean minibatch loss
        (on a device the losses stay there, and are read once, here)."""
        order = rows[rng.permutation(len(rows))]
        losses = []
        for batch in batches.epoch(order):
            losses.append(self._step(net, optimizer, batch, step / total, rng))
            step += 1
        if net.ops.scalar_losses:
            return float(np.mean(losses))
        xp = net.ops.xp
        return float(xp.mean(xp.stack(losses)))

    def _step(self, net, optimizer, batch, t, rng):
        """One AdamW step with the schedules at t (the fraction of training
        done); the minibatch's loss (a Python float, or on a device a 0-d
        array, not waited for). ``batch``: X, Y, w and w's total or None."""
        flat_cos = SCHEDULES["flat_cos"](t)
        optimizer.learning_rate_init = self._learning_rate() * SCHEDULES["coslog4"](t)
        optimizer.weight_decay = self.weight_decay * flat_cos
        dropout = self.dropout * flat_cos
        for layer in net.layers:
            if isinstance(layer, Dropout):
                layer.rate = dropout
        ctx = Context(net.ops, train=True, rng=rng)
        X, Y, w, weight_sum = batch
        loss, grad = net.loss_and_grad(X, Y, w, ctx=ctx, weight_sum=weight_sum)
        optimizer.step(net.params, grad)
        return float(loss) if net.ops.scalar_losses else loss

    def _networks(self, dtype=None, ops=None):
        """The fitted networks, one per bag, on ``ops`` (default: the fitted
        weights' engine), their weights in ``dtype`` (a numpy dtype; default:
        as fitted)."""
        ops = ops or engine_of(self.params_)
        params = self.params_
        key = (dtype and np.dtype(dtype), ops, id(self.layers_))
        networks = _PREDICT_NETWORKS.get(params, key)
        if networks is not None:  # built for these weights (building them
            return networks  # is a seventh of a one-row predict)
        if dtype is not None:
            params = (
                params.astype(dtype)
                if ops.is_numpy
                else ops.xp.astype(params, getattr(ops.xp, np.dtype(dtype).name))
            )
        networks = _Bags(
            Network(
                self.layers_,
                self._output(),
                params[bag, ...],
                self.n_members,
                ops,
                trainable=False,
            )
            for bag in range(params.shape[0])
        )
        networks.stack(params)
        _PREDICT_NETWORKS.put(self.params_, key, networks)
        return networks

    def _engine(self, X, method):
        """The engine of the fitted model, X's own (else a ValueError)."""
        return _fitted_engine(self, self.params_, X, method)

    def _forward(self, X, method="predict"):
        """The bags' and members' averaged outputs for X, chunk by chunk of rows through
        preprocessing and network (memory bounded by the chunk, whatever the
        row count), in float64 whatever the training dtype: a row's prediction
        then does not depend on which other rows share its chunk, to float64's
        rounding.

        A model fitted on another namespace's arrays (under array API
        dispatch) takes X of that namespace and device: X comes to the host
        for the preprocessing, each chunk's features go to the device, and
        the outputs stay there (in float32 on a device without float64)."""
        check_is_fitted(self, "params_")  # cheaper than a scan
        ops = self._engine(X, method)
        if ops.is_numpy:
            nets = self._networks(np.float64)
            out = [
                _mean_prediction(nets, self.preprocessor_.transform(chunk))
                for chunk in _row_chunks(X, _PREDICT_ROWS)
            ]
            if not out:
                return np.empty((0, self.n_outputs_))
            return np.concatenate(out)
        dtype = _widest_float(ops)
        nets = self._networks(dtype, ops)
        out = [
            _mean_prediction(
                nets, ops.asarray(self.preprocessor_.transform(chunk), dtype)
            )
            for chunk in _row_chunks(to_host(X), _PREDICT_ROWS)
        ]
        return out[0] if len(out) == 1 else ops.xp.concat(out, axis=0)

    def __sklearn_array_api_convert__(self, converter):
        """``move_estimator_to``'s hook: a copy whose network weights
        (``params_``) are converted; the preprocessor and the target
        statistics (``classes_``, ``y_mean_``, ...) stay numpy, on the host,
        where the preprocessing and the labels are computed."""
        moved = copy.copy(self)
        moved.params_ = converter(self.params_)
        return moved

    def _commit(self, preprocessor, layers, results):
        self.preprocessor_ = preprocessor
        self.n_features_in_ = preprocessor.n_features_in_
        if hasattr(preprocessor, "feature_names_in_"):
            self.feature_names_in_ = preprocessor.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.layers_ = layers
        params = _stack_rows([r.params for r in results])
        if isinstance(params, np.ndarray):  # predict's networks then stay valid
            params.flags.writeable = False  # for as long as the array lives
        self.params_ = params
        first = results[0]
        self.loss_curve_ = first.loss_curve
        self.validation_scores_ = first.validation_scores
        self.best_epoch_ = first.best_epoch
        self.best_epochs_ = np.array([r.best_epoch for r in results], dtype=int)
        self.n_iter_ = first.n_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.non_deterministic = False
        return tags


class TabularMLPClassifier(ClassifierMixin, _BaseTabularMLP):
    """An MLP classifier for tables: RealMLP-TD's recipe, hand-derived.

    Takes a DataFrame as it comes (numeric, categorical, boolean and string
    columns, missing values) or an array, and trains the recipe described in
    the module ``skmlp._tabular``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(128, 128, 128)
        Widths of the hidden layers (RealMLP-TD's 256 measured no better on
        the DEV tables, at twice the time).
    n_members : int, default=1
        Members of an ensemble trained as one computation (TabM-mini);
        predictions average their probabilities.
    n_bags : int, default=3
        Networks trained one after the other, each on its own random
        validation split (so that together they learn from every row) and
        with its own initialisation, shuffling and dropout; predictions
        average their probabilities. Fit time grows with it; 3 gave the most
        accuracy per second on the DEV tables.
    numeric_embedding : {"periodic", "piecewise_linear", "none"}, default="periodic"
        How numeric columns enter: PBLD periodic embeddings (4 values per
        column), piecewise-linear encodings (48 bins), or as they are.
    numeric_transform : {"robust_smooth_clip", "quantile_normal"}, \
            default="quantile_normal"
        How numeric columns are scaled before the embedding, as in
        :class:`~skmlp.TabularPreprocessor`: each column's empirical
        quantiles mapped to a normal, or a robust scale then a smooth clip
        to +-3 (RealMLP's; values far in a long tail end up close together).
    activation : {"auto", "selu", "mish", "relu", "gelu", "silu"}, default="auto"
        Hidden activation, wrapped as a parametric one; "auto" is "selu".
    dropout : float, default=0.15
        Dropout rate after each hidden layer (flat, then cosine to 0).
    weight_decay : float, default=0.02
        Decoupled weight decay (flat, then cosine to 0).
    label_smoothing : float, default=0.1
        Targets ``(1 - e) y + e / n_classes``.
    learning_rate : "auto" or float, default="auto"
        Peak learning rate of the coslog4 schedule; "auto" is 0.04.
    batch_size : "auto" or int, default="auto"
        "auto": 64 up to 1,024 training rows, 256 up to 30,000, 512 up to
        100,000, else 1,024.
    max_epochs : int, default=64
        Epochs of each bag; the best epoch's weights are kept (RealMLP-TD's
        256 measured no better on the DEV tables, at four times the time).
    validation_fraction : float, default=0.2
        Share of the training rows held out (stratified) to pick the best
        epoch by classification error; 0 keeps the last epoch.
    categorical_features : "from_dtype", None or array-like, default="from_dtype"
        As for :class:`~skmlp.TabularPreprocessor`.
    embedding_dim : int, default=8
        Size of the learned embedding of each high-cardinality column.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of training and prediction.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the initialisation, shuffling and dropout.
    verbose : bool, default=False
        Print each epoch's loss and validation error.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    preprocessor_ : TabularPreprocessor
    layers_ : list of layers
    params_ : ndarray of shape (n_bags, n_parameters)
        Each bag's flat parameter vector, of its kept (best) epoch. A numpy
        array is read-only (predict reuses the networks it built on it);
        assign an edited copy to change the weights.
    loss_curve_ : list of float
        Mean training loss of each epoch (of the first bag).
    validation_scores_ : list of float or None
        Validation error of each epoch (None without a validation split; of
        the first bag).
    best_epoch_ : int
        Epoch (from 0) whose weights were kept (in the first bag).
    best_epochs_ : ndarray of shape (n_bags,)
        Each bag's kept epoch.
    n_iter_ : int
        Epochs run (by each bag).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skmlp import TabularMLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> clf = TabularMLPClassifier(hidden_layer_sizes=(32,), max_epochs=20,
    ...                            random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **_BaseTabularMLP._parameter_constraints,
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(128, 128, 128),
        n_members=1,
        n_bags=3,
        numeric_embedding="periodic",
        numeric_transform="quantile_normal",
        activation="auto",
        dropout=0.15,
        weight_decay=0.02,
        label_smoothing=0.1,
        learning_rate="auto",
        batch_size="auto",
        max_epochs=64,
        validation_fraction=0.2,
        categorical_features="from_dtype",
        embedding_dim=8,
        class_weight=None,
        dtype="float32",
        random_state=None,
        verbose=False,
    ):
        _store_init_params(self, locals())

    def _activation(self):
        return "selu" if self.activation == "auto" else self.activation

    def _learning_rate(self):
        return 0.04 if self.learning_rate == "auto" else self.learning_rate

    def _output(self):
        return OUTPUTS["softmax"]  # with label-smoothed (soft) targets

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the preprocessing and the network on the table X.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)
            Missing values and categorical columns are allowed. Under array
            API dispatch, a numeric array of another namespace (torch, CuPy,
            array-api-strict) is preprocessed on the host with numpy and the
            network trains on its namespace and device.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : TabularMLPClassifier
        """
        self._hidden_sizes()
        engine, X, y, sample_weight = _engine_and_host_data(X, y, sample_weight)
        _check_rows(X, y)
        y = _check_y(y, estimator=self)  # one column; NaN and None refused
        check_classification_targets(y)
        check_consistent_length(_rows_of(X), y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                "y has only one class "
                f"({encoder.classes_[0]!r}): a classifier needs at least two."
            )
        codes = encoder.transform(y)
        weight = _weights(sample_weight, X, self.class_weight, y)
        n_classes = len(encoder.classes_)
        e = self.label_smoothing
        Y = np.full((len(y), n_classes), e / n_classes, dtype=self.dtype)
        Y[np.arange(len(y)), codes] += 1 - e
        rng = check_random_state(self.random_state)
        preprocessor, layers, results = self._fit_network(
            X, Y, weight, codes, self._output(), rng, engine
        )
        self.classes_ = encoder.classes_
        self.n_outputs_ = n_classes
        self._commit(preprocessor, layers, results)
        return self

    def _validation_error(self, net, X, Y, w):
        """Share of (weighted) validation rows whose class is missed (X on the
        network's engine, Y and w on the host: on a device only the predicted
        classes come to the host)."""
        predicted = net.ops.to_numpy(net.ops.xp.argmax(net.predict(X), axis=1))
        wrong = predicted != np.argmax(Y, axis=1)
        return float(np.average(wrong, weights=_validation_weights(w)))

    def predict_proba(self, X):
        """Class probabilities, the members' average.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            An array of X's namespace and device for a model fitted under
            array API dispatch.
        """
        return self._forward(X, "predict_proba")

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            For a model fitted under array API dispatch, numeric labels are an
            array of X's namespace and device (other labels stay numpy).
        """
        proba = self._forward(X, "predict")
        if isinstance(proba, np.ndarray):
            return self.classes_[np.argmax(proba, axis=1)]
        ops = engine_of(proba)
        index = ops.xp.argmax(proba, axis=1)
        if self.classes_.dtype.kind in "biuf":
            return ops.xp.take(ops.asarray(self.classes_), index, axis=0)
        return self.classes_[ops.to_numpy(index)]


class TabularMLPRegressor(RegressorMixin, _BaseTabularMLP):
    """An MLP regressor for tables: RealMLP-TD's recipe, hand-derived.

    As :class:`TabularMLPClassifier`, for real-valued targets (one or
    several columns): targets are standardised for training, and predictions
    are clipped to the range of the training targets.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "quantile"}, default="squared_error"
        Training loss.
    quantile : float, default=0.5
        The level of the quantile (pinball) loss, with ``loss="quantile"``.
    activation : {"auto", "selu", "mish", "relu", "gelu", "silu"}, default="auto"
        "auto" is "mish".
    learning_rate : "auto" or float, default="auto"
        "auto" is 0.2.
    validation_fraction : float, default=0.2
        Share of the training rows held out to pick the best epoch by the
        validation loss; 0 keeps the last epoch.

    The other parameters are those of :class:`TabularMLPClassifier`, but for
    ``label_smoothing`` and ``class_weight``.

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        Standardisation of the targets.
    y_min_, y_max_ : ndarray of shape (n_outputs,)
        Range predictions are clipped to.

    The other attributes are those of :class:`TabularMLPClassifier`, but for
    ``classes_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmlp import TabularMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X[:, 0] - 2 * X[:, 1]
    >>> reg = TabularMLPRegressor(hidden_layer_sizes=(32,), max_epochs=20,
    ...                           random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        **_BaseTabularMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "quantile"})],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        loss="squared_error",
        quantile=0.5,
        hidden_layer_sizes=(128, 128, 128),
        n_members=1,
        n_bags=3,
        numeric_embedding="periodic",
        numeric_transform="quantile_normal",
        activation="auto",
        dropout=0.15,
        weight_decay=0.02,
        learning_rate="auto",
        batch_size="auto",
        max_epochs=64,
        validation_fraction=0.2,
        categorical_features="from_dtype",
        embedding_dim=8,
        dtype="float32",
        random_state=None,
        verbose=False,
    ):
        _store_init_params(self, locals())

    def _activation(self):
        return "mish" if self.activation == "auto" else self.activation

    def _learning_rate(self):
        return 0.2 if self.learning_rate == "auto" else self.learning_rate

    def _output(self):
        if self.loss == "quantile":
            return quantile(self.quantile)
        return OUTPUTS["identity" if self.loss == "squared_error" else self.loss]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the preprocessing and the network on the table X.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)
            Missing values and categorical columns are allowed. Under array
            API dispatch, a numeric array of another namespace (torch, CuPy,
            array-api-strict) is preprocessed on the host with numpy and the
            network trains on its namespace and device.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : TabularMLPRegressor
        """
        self._hidden_sizes()
        engine, X, y, sample_weight = _engine_and_host_data(X, y, sample_weight)
        _check_rows(X, y)
        y = _check_y(y, multi_output=True, y_numeric=True, estimator=self)
        check_consistent_length(_rows_of(X), y)
        single_output = y.ndim == 1
        y = y.reshape(len(y), -1).astype(np.float64)
        weight = _weights(sample_weight, X, None, None)
        mean = y.mean(axis=0)
        scale = y.std(axis=0)
        scale[~(scale > 0)] = 1.0
        Y = ((y - mean) / scale).astype(self.dtype)
        rng = check_random_state(self.random_state)
        preprocessor, layers, results = self._fit_network(
            X, Y, weight, None, self._output(), rng, engine
        )
        self.y_mean_, self.y_scale_ = mean, scale
        self.y_min_, self.y_max_ = y.min(axis=0), y.max(axis=0)
        self.n_outputs_ = y.shape[1]
        self._single_output = single_output
        self._commit(preprocessor, layers, results)
        return self

    def _validation_error(self, net, X, Y, w):
        """The validation loss (of the standardised targets), computed on the
        host (X on the network's engine, Y and w on the host)."""
        w = _validation_weights(w)
        P = net.ops.to_numpy(net.predict(X))
        return float(self._output().loss(Y, P, None if w is None else w / w.sum()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predicted targets, clipped to the training range.

        Parameters
        ----------
        X : {DataFrame, array-like} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            An array of X's namespace and device for a model fitted under
            array API dispatch.
        """
        standardised = self._forward(X, "predict")
        if isinstance(standardised, np.ndarray):
            y = np.clip(
                standardised * self.y_scale_ + self.y_mean_, self.y_min_, self.y_max_
            )
            return y.ravel() if self._single_output else y
        ops = engine_of(standardised)
        scale, mean, low, high = (
            ops.astype_like(ops.asarray(a), standardised)
            for a in (self.y_scale_, self.y_mean_, self.y_min_, self.y_max_)
        )
        y = ops.xp.clip(standardised * scale + mean, min=low, max=high)
        return ops.xp.reshape(y, (-1,)) if self._single_output else y


def _n_rows(X):
    return _num_samples(X)


class _NetworkCache:
    """The networks predict built for a fitted numpy weight array, for the
    next predict on the same weights (building them is a seventh of a
    one-row predict): a few recent ones, held here rather than on the
    estimator (whose __dict__ predict must not change). An entry serves only
    the very array it was built for (a weak reference: a new fit's array
    never meets an old one's networks) and only while that array holds the
    values it had: fit leaves ``params_`` read-only (and the owner of its
    data), so that identity suffices while it stays so; for any other array
    (one unpickled, or assigned) a copy of its values is kept and compared,
    and weights edited in place rebuild the networks."""

    def __init__(self, size):
        self.recent = RecentEntries(size)

    def get(self, params, key):
        entry = self.recent.get(id(params))
        if entry is None or entry[0]() is not params or entry[1] != key:
            return None
        if entry[2] is None and params.flags.writeable:  # made writeable since
            return None
        if entry[2] is not None and not np.array_equal(entry[2], params):
            return None  # edited in place
        return entry[3]

    def put(self, params, key, networks):
        if not isinstance(params, np.ndarray):  # device arrays: not cached
            return
        frozen = not params.flags.writeable and params.flags.owndata
        values = None if frozen else params.copy()  # a view: its base may change
        entry = (weakref.ref(params), key, values, networks)
        self.recent.put(id(params), entry)


_PREDICT_NETWORKS = _NetworkCache(size=4)


def _stack_rows(vectors):
    """Equal-length vectors as the rows of one array, on their engine."""
    if isinstance(vectors[0], np.ndarray):
        return np.stack(vectors)
    return engine_of(vectors[0]).xp.stack(vectors)


class _Bags(list):
    """The bags' networks (a list), and where every layer can predict for
    all bags at once (``Layer.predict_bags``: one member), their
    weights as per-layer views with a leading bag axis: a prediction is then
    one pass through the layers instead of one per bag (a one-row predict
    is mostly per-call overhead)."""

    views = None

    def stack(self, params):
        """Views of params (n_bags, n_parameters), the networks' weights."""
        first = self[0]
        if first.n_members != 1:
            return
        if any(layer.predict_bags is None for layer in first.layers):
            return
        views = [{} for _ in first.layers]
        reshape = first.ops.xp.reshape
        for i, p, start, stop in first.layout:
            views[i][p.name] = reshape(params[:, start:stop], (-1, *p.shape))
        self.views = views

    def predict(self, X):
        """The mean over bags of the outputs for X, through every layer's
        predict_bags."""
        first, a, xp = self[0], X, self[0].ops.xp
        for layer, P in zip(first.layers, self.views, strict=True):
            a = layer.predict_bags(P, a, first.ops)
        n_bags, n, width = a.shape
        out = xp.reshape(first.activate(xp.reshape(a, (n_bags * n, width))), a.shape)
        return _average([out[b, ...] for b in range(n_bags)])


def _average(outputs):
    """The mean of a sequence of equally shaped outputs, added in order."""
    total = outputs[0]
    for other in outputs[1:]:
        total = total + other
    return total / len(outputs) if len(outputs) > 1 else total


def _mean_prediction(nets, X):
    """The mean of the networks' outputs for X (each already its members'
    mean): up to _ONE_PASS_ROWS rows in one pass for all bags where they
    can (the same numbers), else network by network (a large chunk's
    intermediate arrays for one bag at a time)."""
    if getattr(nets, "views", None) is not None and X.shape[0] <= _ONE_PASS_ROWS:
        return nets.predict(X)
    return _average([net.predict(X) for net in nets])


def _row_chunks(X, size):
    """X in chunks of at most ``size`` rows (a DataFrame's with ``iloc``, an
    array's by slicing); other containers whole. At least one chunk, so that
    a table of 0 rows still goes through validation."""
    n = _n_rows(X)
    if n <= size or not (hasattr(X, "iloc") or isinstance(X, np.ndarray)):
        yield X
        return
    rows = X.iloc if hasattr(X, "iloc") else X
    for begin in range(0, n, size):
        yield rows[begin : begin + size]


def _engine_and_host_data(X, y, sample_weight):
    """The engine fit trains on (``_ops.get_ops``), and fit's data as the
    preprocessing reads them: under array API dispatch, arrays of another
    namespace come to the host as numpy (the quantiles, categories and labels
    are computed there); otherwise everything as it is."""
    engine = get_ops(X)
    if not engine.is_numpy:
        X, y, sample_weight = to_host(X), to_host(y), to_host(sample_weight)
    return engine, X, y, sample_weight


def _held_out(ops, X, Y, w, rows):
    """The validation rows, gathered once per fit: X on the engine (it goes
    through the network), Y and w on the host (the scores are computed there)."""
    return ops.asarray(X[rows]), Y[rows], None if w is None else w[rows]


def _widest_float(ops):
    """The numpy dtype of the widest float ``ops``'s device has (float64, but
    float32 on devices without float64, such as Apple's MPS)."""
    from sklearn.utils._array_api import _max_precision_float_dtype

    widest = _max_precision_float_dtype(ops.xp, ops.device)
    return np.dtype(np.float64 if widest == ops.xp.float64 else np.float32)


def _validation_weights(w):
    """The validation rows' weights, or None (all equal) where they sum to 0:
    the split may hold only rows of weight 0."""
    return None if w is None or not w.sum() > 0 else w


def _check_rows(X, y):
    """y given, and X with at least one row (scikit-learn's wording)."""
    if y is None:
        raise ValueError(
            "requires y to be passed, but the target y is None: pass the "
            "targets as fit's second argument."
        )
    if _n_rows(X) == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={getattr(X, 'shape', None)}) "
            "while a minimum of 1 is required."
        )


def _rows_of(X):
    """X itself where it has a length; its row count where it only has a shape."""
    return np.empty(_num_samples(X)) if not hasattr(X, "__len__") else X


def _weights(sample_weight, X, class_weight, y):
    """Row weights (None when all equal): sample_weight times class weights."""
    if sample_weight is None and class_weight is None:
        return None
    n = _n_rows(X)
    weight = _check_sample_weight(
        sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True
    )
    if class_weight is not None:
        weight = weight * compute_sample_weight(class_weight, y)
    if not weight.sum() > 0:
        raise ValueError("sample_weight must have a positive sum.")
    return weight
