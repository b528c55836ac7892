"""The scikit-learn shell: validation, target encoding, dispatch, fitted state.

``BackpropClassifier`` and ``BackpropRegressor`` take the parameters of
scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` with the same names,
defaults and meaning, and expose the same fitted attributes. The numerics live
in ``_network.py`` (forward and backward pass), ``_optimizers.py`` and
``_training.py``.

Fitted state is plain data: ``coefs_`` and ``intercepts_`` (lists of arrays),
numbers, lists, the optimizer's state dict and a fitted ``LabelBinarizer``.

Every fit or partial_fit call is a transaction (``_transaction.py``): it
validates, trains a copy of the fitted state and commits it only when the
call succeeds. Input validation and target encoding helpers live in
``_validation.py``; this module holds the estimators' parameters, their
validation of a call's data, and prediction.
"""

import copy
import math
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
)
from sklearn.metrics import accuracy_score, get_scorer, get_scorer_names, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d, gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._activations import ACTIVATIONS
from ._engines import numpy_engine
from ._losses import clip_probabilities, huber
from ._losses import quantile as pinball
from ._network import forward
from ._ops import engine_of, to_host
from ._transaction import FitTransaction
from ._validation import (
    _FLOAT_DTYPES,
    _MLP_TAKES_WEIGHTS,
    _STOCHASTIC_SOLVERS,
    _accepts_sample_weight,
    _attach_unique,
    _balanced,
    _check_classes,
    _dtype_of,
    _fitted_engine,
    _has_unknown_labels,
    _naming_columns,
    _store_init_params,
)

try:  # scikit-learn >= 1.9: set_callbacks(ProgressBar(), ScoringMonitor(...))
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: no callbacks, nothing else changes

    class CallbackSupportMixin:
        """Stand-in for scikit-learn versions without sklearn.callback."""


class _BaseBackprop(FitTransaction, CallbackSupportMixin, BaseEstimator):
    """Shared machinery of BackpropClassifier and BackpropRegressor."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "scoring": [StrOptions({"loss", *get_scorer_names()}), callable, None],
    }

    # Metadata routing: fit's extra parameters are not requested unless the
    # user asks (set_fit_request(X_val=True, y_val=True)). MLPClassifier has no
    # such parameters, so a meta-estimator that routes X_val/y_val to another
    # member (a HistGradientBoosting) must not make the drop-in raise
    # UnsetMetadataPassedError. False, not UNUSED: set_fit_request keeps them.
    # scikit-learn 1.6's MLP takes no sample_weight either: there, routed
    # sample weights are skmlp's too only when asked for.
    __metadata_request__fit = {
        "X_val": False,
        "y_val": False,
        "sample_weight_val": False,
        **({} if _MLP_TAKES_WEIGHTS else {"sample_weight": False}),
    }
    __metadata_request__partial_fit = (
        {} if _MLP_TAKES_WEIGHTS else {"sample_weight": False}
    )

    # ---- fitting -----------------------------------------------------------

    def _score_label(self):
        """The name of the validation score, for the verbose line and plots."""
        if self.scoring is None:
            return self._score_name
        if self.scoring == "loss":
            return "score (negative loss)"
        return getattr(self.scoring, "__name__", None) or str(self.scoring)

    def _validation_scorer(self, state, layer_sizes, ops):
        """``score(out, validation, loss)``: the number recorded in
        validation_scores_ for one epoch, from the network's output on the
        validation set and the validation loss, as ``scoring`` asks.

        A scorer (a name or a callable) sees a copy of the model with the
        current weights, the validation X and its labels or targets, and the
        validation sample weights when it accepts them.
        """
        if self.scoring is None:  # accuracy or R^2, as scikit-learn's MLP
            return lambda out, data, loss: self._score_outputs(
                to_host(out), *map(to_host, data[1:])
            )
        if self.scoring == "loss":
            return lambda out, data, loss: -loss
        scoring = self.scoring
        scorer = get_scorer(scoring) if isinstance(scoring, str) else scoring
        weighted = _accepts_sample_weight(scorer)

        def score(out, data, loss):
            X_val, Y_val, sw_val = data
            if not ops.all_finite(out):
                return np.nan
            model = copy.copy(self)
            model.__dict__.update(self._fitted_attributes(state, layer_sizes))
            model.__dict__.pop("feature_names_in_", None)  # X_val is validated
            kwargs = {} if sw_val is None or not weighted else {"sample_weight": sw_val}
            y_val = self._decode(to_host(Y_val))
            if not ops.is_numpy and y_val.dtype.kind in "biuf":
                y_val = ops.asarray(y_val)  # beside the predictions, for metrics
            try:
                return float(scorer(model, X_val, y_val, **kwargs))
            except Exception as error:
                raise ValueError(
                    f"scoring={scoring!r} failed on the validation data: {error}. "
                    "Pass a scorer name of sklearn.metrics.get_scorer_names() that "
                    "suits this estimator, or a callable scorer(estimator, X, y)."
                ) from error

        score.trial = True  # run it once before training, to fail early
        return score

    def _output_layer(self, out_activation=None):
        """The core's output layer: activation, loss and output delta (of the
        fitted model, or of ``out_activation``)."""
        return out_activation or self.out_activation_

    def _with_class_weight(self, Y, sample_weight, incremental, dtype):
        """Sample weights with class weights folded in (classifiers only)."""
        return sample_weight

    @staticmethod
    def _targets_in_dtype(Y, dtype):
        """Targets in the training dtype; class indicators stay boolean."""
        if Y.dtype == bool:
            return Y
        converted = Y.astype(dtype, copy=False)
        if not np.isfinite(converted).all():
            raise ValueError(
                f"y has values beyond the range of {np.dtype(dtype)}, the dtype X "
                "trains in: scale y (e.g. divide it by its standard deviation) or "
                "pass X as float64."
            )
        return converted

    def _validate_sample_weight(self, sample_weight, X):
        """Non-negative, finite weights with a positive, finite total, in X's dtype.

        Only the weights' ratios enter the data loss; their total scales the L2
        penalty (``alpha / sum(s)``), so weights divided by c train like
        ``alpha`` divided by c.
        """
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        with np.errstate(over="ignore"):
            total = sample_weight.sum()
        largest = np.finfo(X.dtype).max
        if not total <= largest:
            raise ValueError(
                f"sample_weight sums to {total:.3g}, beyond the range of {X.dtype} "
                "(the dtype X trains in): divide the weights and alpha by the same "
                "constant, which leaves the objective's minimiser unchanged."
            )
        if total <= 0:
            raise ValueError(
                "sample_weight sums to zero: at least one non-zero (positive) "
                "weight is needed."
            )
        in_dtype = sample_weight.astype(X.dtype, copy=False)
        if not in_dtype.any():  # every non-zero weight underflowed
            raise ValueError(
                f"sample_weight's non-zero weights (the largest is "
                f"{sample_weight.max():.3g}) round to zero in {X.dtype}, the "
                "dtype X trains in: multiply the weights and alpha by the same "
                "constant, which leaves the objective's minimiser unchanged."
            )
        return in_dtype

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        X_val=None,
        y_val=None,
        sample_weight_val=None,
    ):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 input trains in float32; anything else is
            converted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or real numbers (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights. A minibatch whose weights are all
            zero is skipped.
        X_val, y_val : array-like, default=None
            A validation set of your choosing (sgd and adam). It replaces the
            internal ``validation_fraction`` split: with ``early_stopping=True``
            training stops on its score and keeps the best-scoring weights;
            without, it is only monitored. Either way ``validation_scores_``
            and ``validation_loss_curve_`` record it every epoch. In a
            Pipeline, route it with ``transform_input=["X_val"]`` and
            ``set_fit_request(X_val=True, y_val=True)``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Sample weights of the validation set.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validation = (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, validation=validation)

    def _callback_context(self, X, y):
        """The fit's root callback context (one subtask per epoch), or None
        when scikit-learn has no callback API."""
        if not hasattr(self, "_init_callback_context"):
            return None
        # Neither callbacks of its own nor a meta-estimator's context to join:
        # skip the per-epoch bookkeeping.
        if not (
            hasattr(self, "_skl_callbacks") or hasattr(self, "_parent_callback_ctx")
        ):
            return None
        stochastic = self.solver in _STOCHASTIC_SOLVERS
        context = self._init_callback_context(
            max_subtasks=self.max_iter if stochastic else 0
        )
        context.call_on_fit_task_begin(estimator=self, X=X, y=y)
        return context

    def _dropout_rates(self, n_hidden):
        """One dropout rate per hidden layer, or None when there is none."""
        rates = self.dropout
        if isinstance(rates, Real):
            rates = [float(rates)] * n_hidden
        rates = [float(p) for p in rates]
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout has {len(rates)} rates but the network has {n_hidden} "
                "hidden layers: pass one rate per hidden layer, or a single float."
            )
        if any(not 0 <= p < 1 for p in rates):
            raise ValueError(f"dropout rates must be in [0, 1), got {rates}.")
        if not any(rates):
            return None
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                "dropout needs solver='sgd' or 'adam': it is noise added to "
                "minibatch training, which lbfgs does not do."
            )
        return rates

    def _validation_set(self, validation, dtype, n_outputs):
        """The user's validation set validated and encoded like the training
        data (``n_outputs`` columns), or None when none was given."""
        X_val, y_val, sample_weight_val = validation
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val was given without X_val, y_val.")
            return None
        if X_val is None or y_val is None:
            raise ValueError("Pass both X_val and y_val, or neither.")
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                "X_val needs solver='sgd' or 'adam': lbfgs has no epochs to "
                "monitor or stop early."
            )
        X_val, Y_val = self._validate_input(
            X_val, y_val, incremental=True, reset=False, y_name="y_val"
        )
        sample_weight_val = self._validate_sample_weight(sample_weight_val, X_val)
        Y_val = self._targets_in_dtype(Y_val.reshape(X_val.shape[0], -1), dtype)
        if Y_val.shape[1] != n_outputs:
            raise ValueError(
                f"y_val has {Y_val.shape[1]} target column(s) but y has "
                f"{n_outputs}: pass y_val with the same columns as y."
            )
        return X_val.astype(dtype, copy=False), Y_val, sample_weight_val

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ---- prediction --------------------------------------------------------

    def _validate_X(self, X):
        """X validated for prediction, as ``validate_data(reset=False)`` does.

        A lean path serves the common case, a 2-D float ndarray: it makes the
        same checks (fitted, feature count, no feature names expected, finite,
        non-empty) without scikit-learn's general machinery, which dominates
        the cost of predicting a few rows. Anything else takes the general path.
        """
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)
        if (
            type(X) is np.ndarray
            and X.ndim == 2
            and (X.dtype == np.float64 or X.dtype == np.float32)
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and "feature_names_in_" not in self.__dict__
            and math.isfinite(np.add.reduce(X, axis=None))  # NaN/inf make it so
        ):
            return X
        with _naming_columns(self, X):
            return validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=_FLOAT_DTYPES, reset=False
            )

    def _engine(self, X, method):
        """The engine of the fitted model, X's own (else a ValueError)."""
        return _fitted_engine(self, self.coefs_[0], X, method)

    def _forward(self, X, check_input=True, method="predict"):
        """Network output for X, computed in row chunks that fit in memory.

        With check_input (the public methods), X is validated first and a
        non-finite output is a ValueError: an input far outside the training
        data's range can overflow a finite network, and that is reported, not
        returned. A model fitted on another namespace's arrays (a GPU's)
        computes there, for X of that namespace and device.
        """
        coefs = self.__dict__.get("coefs_")
        if coefs is None:
            check_is_fitted(self)
        if not (type(X) is np.ndarray and type(coefs[0]) is np.ndarray):
            # Only now look up namespaces: numpy's one-row predict stays lean.
            ops = self._engine(X, method) if check_input else engine_of(coefs[0])
            if not ops.is_numpy:
                return self._forward_elsewhere(X, ops, check_input)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            if check_input:
                X = self._validate_X(X)
            # A chunk holds at least one row, so one row is never split.
            rows = 1 if X.shape[0] == 1 else self._rows_per_chunk()
            if X.shape[0] <= rows:
                out = self._forward_rows(X)
            else:
                out = np.empty(
                    (X.shape[0], self.n_outputs_),
                    np.result_type(X.dtype, self.coefs_[0].dtype),
                )
                for batch in gen_batches(X.shape[0], rows):
                    out[batch] = self._forward_rows(X[batch])
        # One reduction answers for the common case; a sum of large finite
        # outputs can overflow, so only then look at every element.
        if check_input and not (
            math.isfinite(np.add.reduce(out, axis=None)) or np.isfinite(out).all()
        ):
            raise ValueError(
                "The network's output is not finite for some rows of X: their "
                "values are too large for this model. Transform X as the "
                "training data was (e.g. with the same StandardScaler)."
            )
        return out

    def _forward_rows(self, X):
        ops = numpy_engine(X.dtype)  # the compiled engine's fused kernels
        return forward(
            X,
            self.coefs_,
            self.intercepts_,
            self.activation,
            self._output_layer(),
            ops=ops,
        )

    def _forward_elsewhere(self, X, ops, check_input):
        """``_forward`` for a model and X of another array namespace."""
        xp = ops.xp
        if check_input:
            X = validate_data(self, X, dtype=(xp.float64, xp.float32), reset=False)
        dtype = xp.result_type(X.dtype, self.coefs_[0].dtype)
        coefs = [xp.astype(W, dtype, copy=False) for W in self.coefs_]
        intercepts = [xp.astype(b, dtype, copy=False) for b in self.intercepts_]
        X = xp.astype(X, dtype, copy=False)
        output = self._output_layer()
        parts = [
            forward(X[rows, ...], coefs, intercepts, self.activation, output, ops=ops)
            for rows in gen_batches(X.shape[0], self._rows_per_chunk())
        ]
        out = parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)
        if check_input and not ops.all_finite(out):
            raise ValueError(
                "The network's output is not finite for some rows of X: their "
                "values are too large for this model. Transform X as the "
                "training data was (e.g. with the same StandardScaler)."
            )
        return out

    def _rows_per_chunk(self):
        """Rows whose activations fit in scikit-learn's ``working_memory``.

        A row needs, at the widest layer boundary, its input and output
        activations: ``itemsize * max(n_k + n_{k+1})`` bytes.
        """
        itemsize = _dtype_of(self.coefs_[0]).itemsize
        row_bytes = itemsize * max(sum(W.shape) for W in self.coefs_)
        return max(1, int(get_config()["working_memory"] * 2**20 // row_bytes))

    def _score_outputs(self, out, Y, sample_weight):
        """Accuracy or R^2 of network outputs against encoded targets (NaN for
        non-finite outputs)."""
        if not np.isfinite(out).all():
            return np.nan
        return float(
            self._score_function(
                self._decode(Y), self._decode(out), sample_weight=sample_weight
            )
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags


class BackpropClassifier(ClassifierMixin, _BaseBackprop):
    """Multilayer perceptron classifier trained by hand-written backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters, defaults, fitted attributes and methods. It minimises
    the log-loss (softmax + cross-entropy for multiclass, logistic + binary
    cross-entropy for binary and multilabel targets) plus an L2 penalty, with
    L-BFGS, SGD or Adam.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
'softplus', 'gelu', 'silu'}, default='relu'
        Activation function of the hidden layers. The first four are
        MLPClassifier's; leaky_relu (slope 0.01), elu, softplus, gelu (exact,
        with the normal CDF) and silu are skmlp's additions.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimizer: L-BFGS-B (scipy), SGD with momentum, or Adam.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / (2 * sum(sample_weight)) *
        sum_k ||W_k||^2``.
    batch_size : int or 'auto', default='auto'
        Minibatch size for the stochastic solvers; 'auto' is
        ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step-size schedule of ``solver='sgd'``.
    learning_rate_init : float, default=0.001
        Initial step size (sgd, adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (sgd, adam) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle samples every epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the early-stopping split and shuffling.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress.
    verbose : bool, default=False
        Print progress.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    momentum : float, default=0.9
        Momentum of SGD, in [0, 1].
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd with momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its
        accuracy stops improving; the best-scoring weights are kept.
    validation_fraction : float, default=0.1
        Held-out share for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without progress before stopping (sgd, adam).
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, ``{label: weight}``; classes not named weigh 1.
        'balanced' weighs each class by ``n_samples / (n_classes * count)``.
        Multiplied into ``sample_weight``. 'balanced' uses the weighted class
        totals; in ``partial_fit`` it balances each call's batch; for
        multilabel targets it multiplies the per-label weights (the only
        class_weight accepted there). Not a parameter of MLPClassifier.
    dropout : float or tuple of float, default=0.0
        Probability of dropping each hidden unit during stochastic training
        (sgd, adam): one rate for every hidden layer, or one per hidden layer.
        Inverted dropout: kept units are scaled by ``1 / (1 - p)`` so that
        prediction, which uses no dropout, needs no rescaling. The masks are
        drawn from ``random_state``. Not a parameter of MLPClassifier.
    scoring : str, callable or None, default=None
        What a validation set (the ``validation_fraction`` split of early
        stopping, or ``X_val``) is scored with, per epoch: the numbers in
        ``validation_scores_`` that early stopping maximises and whose best
        epoch's weights it keeps. None: the estimator's ``score`` (accuracy,
        or R^2 for the regressor), as in MLPClassifier. 'loss': the negative
        validation loss, so ``validation_scores_ == -validation_loss_curve_``.
        Any name of ``sklearn.metrics.get_scorer_names()``, or a callable
        ``scorer(estimator, X, y)``; ``sample_weight_val`` is passed to it when
        it accepts ``sample_weight``. HistGradientBoosting's meaning. Not a
        parameter of MLPClassifier.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    loss_ : float
        Training objective at the end of the last epoch (iteration for lbfgs).
    best_loss_ : float or None
        Lowest training loss seen (None with early stopping).
    loss_curve_ : list of float
        Training loss per epoch (per iteration for lbfgs).
    validation_scores_ : list of float or None
        Held-out accuracy per epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best held-out accuracy with early stopping, else None.
    t_ : int
        Number of training samples seen by the stochastic solver.
    coefs_ : list of ndarray of shape (n_units_k-1, n_units_k)
        Weight matrices, one per layer.
    intercepts_ : list of ndarray of shape (n_units_k,)
        Bias vectors, one per layer.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X had string column names.
    n_iter_ : int
        Number of epochs (iterations for lbfgs) run by the last fit.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        'softmax' (multiclass) or 'logistic' (binary, multilabel).

    See Also
    --------
    BackpropRegressor : The same network for regression.
    check_gradients : Compare backpropagated gradients to finite differences.

    Notes
    -----
    Probabilities are kept within ``[eps, 1 - eps]`` of the dtype (the bounds
    the training loss clips them to), so they are never exactly 0 or 1 and
    ``predict_log_proba`` is always finite. Where the network saturates,
    scikit-learn's MLPClassifier returns exact 0 and 1 instead.

    Examples
    --------
    >>> from sklearn.datasets import make_circles
    >>> from skmlp import BackpropClassifier
    >>> X, y = make_circles(n_samples=300, factor=0.5, noise=0.05, random_state=0)
    >>> clf = BackpropClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
    ...                          random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **_BaseBackprop._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    loss = "log_loss"  # the only loss; read-only, as in MLPClassifier
    _stratify_split = True
    _score_function = staticmethod(accuracy_score)
    _score_name = "accuracy"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        dropout=0.0,
        scoring=None,
    ):
        _store_init_params(self, locals())

    def _with_class_weight(self, Y, sample_weight, incremental, dtype):
        """Multiply each sample's weight by its class's weight (scikit-learn's
        meaning of class_weight). 'balanced' is ``sum(s) / (n_classes * s_c)``
        with ``s_c`` the total sample weight of class c, so integer weights
        act like repeated rows; in partial_fit it balances each call's batch.
        For multilabel targets, 'balanced' multiplies the per-label weights.
        """
        if self.class_weight is None:
            return sample_weight
        balanced = self.class_weight == "balanced"
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            if not balanced:
                raise ValueError(
                    "class_weight for multilabel targets must be 'balanced' or "
                    "None; for other weights pass sample_weight."
                )
            columns = [Y[:, j].astype(np.intp) for j in range(Y.shape[1])]
            factors = np.prod([_balanced(c, sample_weight) for c in columns], axis=0)
        else:
            # Each sample's class index (one-hot rows, or one indicator column).
            index = np.argmax(Y, axis=1) if Y.shape[1] > 1 else Y[:, 0].astype(np.intp)
            if balanced:
                factors = _balanced(index, sample_weight)
            else:
                factors = compute_class_weight(  # also refuses unknown labels
                    self.class_weight, classes=self.classes_, y=self.classes_[index]
                )[index]
        weights = factors if sample_weight is None else factors * sample_weight
        if not weights.sum() > 0:
            raise ValueError(
                "class_weight and sample_weight leave every sample with weight 0."
            )
        return weights.astype(dtype)

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _validate_input(self, X, y, incremental, reset, y_name="y"):
        with _naming_columns(self, X, "X_val" if y_name == "y_val" else "X"):
            X, y = validate_data(
                self,
                X,
                y,
                accept_sparse=["csr", "csc"],
                multi_output=True,
                dtype=_FLOAT_DTYPES,
                reset=reset,
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        try:
            y = _attach_unique(y)  # np.unique(y) once, not at every check below
            check_classification_targets(y)
        except TypeError:  # np.unique cannot order labels of mixed types
            kinds = sorted({type(label).__name__ for label in np.ravel(y)})
            raise ValueError(
                f"{y_name} mixes label types ({', '.join(kinds)}): class labels "
                "must be all numbers or all strings."
            ) from None
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
            if (
                self._label_binarizer.y_type_ != "multilabel-indicator"
                and len(self.classes_) < 2
            ):
                raise ValueError(
                    f"y has only one class ({self.classes_[0]!r}); a classifier "
                    "needs samples of at least 2 classes."
                )
        else:
            self._check_target_kind(y, y_name)
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif _has_unknown_labels(classes, self.classes_):
                raise ValueError(
                    f"`{y_name}` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. '{y_name}' has {classes}."
                )
        return X, self._encode(y)

    def _check_target_kind(self, y, y_name):
        """Multilabel targets (2-D indicators) for a multilabel model, one
        label per sample for the others; and as many indicator columns as
        the model has labels. ``y_name``: 'y', or 'y_val' (checked against
        the y of the same call)."""
        fitted_multilabel = self._label_binarizer.y_type_ == "multilabel-indicator"
        kinds = {True: "multilabel (2-D indicator)", False: "1-D"}
        if y_name == "y_val":
            reference, fix = "y holds", "pass y_val of the same kind as y"
        else:
            reference = "the model was fitted on"
            fix = "pass targets of the same kind, or fit a new model"
        if (y.ndim == 2) != fitted_multilabel:
            raise ValueError(
                f"{y_name} holds {kinds[y.ndim == 2]} targets, but {reference} "
                f"{kinds[fitted_multilabel]} targets: {fix}."
            )
        if fitted_multilabel and y.shape[1] != len(self.classes_):
            raise ValueError(
                f"{y_name} has {y.shape[1]} indicator columns, but {reference} "
                f"{len(self.classes_)}: {fix}."
            )

    def _encode(self, y):
        """Class indicators of y: ``LabelBinarizer.transform`` as booleans.

        For a 1-d y of numbers or strings, whose classes are all known (the
        caller checked), computed directly: 3 ms less on 100k labels.
        """
        binarizer = self._label_binarizer
        if y.ndim != 1 or y.dtype.kind not in "biufUS" or binarizer.sparse_output:
            return binarizer.transform(y).astype(bool)
        if binarizer.y_type_ == "binary":
            return (y == self.classes_[1])[:, np.newaxis]
        codes = np.searchsorted(self.classes_, y)
        return codes[:, np.newaxis] == np.arange(len(self.classes_))

    def _decode(self, out):
        """Labels from network outputs (or from encoded targets).

        What ``LabelBinarizer.inverse_transform`` returns, without its input
        validation: the most probable class, or every output above 0.5.
        """
        if not isinstance(out, np.ndarray):
            return self._decode_elsewhere(out, engine_of(out))
        # From the label binarizer, which is set before training starts.
        if self._label_binarizer.y_type_ == "multiclass":
            return self.classes_[np.argmax(out, axis=1)]
        above = out > 0.5
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return above.astype(int)
        return self.classes_[above.ravel().astype(np.intp)]

    def _decode_elsewhere(self, out, ops):
        """``_decode`` for outputs of another namespace: labels on the same
        device where they are numbers (string labels stay numpy)."""
        xp = ops.xp
        kind = self._label_binarizer.y_type_
        if kind == "multilabel-indicator":
            return xp.astype(out > 0.5, xp.int64)
        if kind == "multiclass":
            index = xp.argmax(out, axis=1)
        else:
            index = xp.astype(out[:, 0] > 0.5, xp.int64)
        if self.classes_.dtype.kind in "biuf":
            return xp.take(ops.asarray(self.classes_), index, axis=0)
        return self.classes_[ops.to_numpy(index)]

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        classes : array-like of shape (n_classes,), default=None
            All classes across the calls to partial_fit; required on the first
            call (``y`` need not contain all of them).

        Returns
        -------
        self : object
            The updated estimator.
        """
        with self._rollback_on_error():
            y, classes = to_host(y), to_host(classes)  # labels live on the host
            if classes is not None and not hasattr(self, "classes_"):
                _check_classes(classes)
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
                if (
                    self._label_binarizer.y_type_ != "multilabel-indicator"
                    and len(self._label_binarizer.classes_) < 2
                ):
                    raise ValueError(
                        "classes must name at least 2 classes; got "
                        f"{list(self._label_binarizer.classes_)}."
                    )
            return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict class labels for X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels (an indicator matrix for multilabel models).
        """
        return self._decode(self._forward(X))

    def _probabilities(self, X, method):
        proba = self._forward(X, method=method)
        if not isinstance(proba, np.ndarray):  # another namespace's array
            xp = engine_of(proba).xp
            eps = float(xp.finfo(proba.dtype).eps)
            proba = xp.clip(proba, min=eps, max=1 - eps)
            if self.n_outputs_ == 1:
                return xp.concat([1 - proba, proba], axis=1)
            return proba
        clip_probabilities(proba, out=proba)
        if self.n_outputs_ == 1:
            return np.hstack([1 - proba, proba])
        return proba

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, ordered as in ``classes_``.
        """
        return self._probabilities(X, "predict_proba")

    def predict_log_proba(self, X):
        """Log of the probability estimates, ``log(predict_proba(X))``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            Log-probabilities, ordered as in ``classes_``; always finite.
        """
        proba = self._probabilities(X, "predict_log_proba")
        if not isinstance(proba, np.ndarray):
            return engine_of(proba).xp.log(proba)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BackpropRegressor(RegressorMixin, _BaseBackprop):
    """Multilayer perceptron regressor trained by hand-written backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`.
    It minimises the half squared error (identity output) or the half Poisson
    deviance (exponential output) plus an L2 penalty, with L-BFGS, SGD or Adam.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber', 'quantile'}, \
default='squared_error'
        The loss: half squared error, half Poisson deviance (exp output,
        non-negative targets), absolute error (predicts a median), or Huber
        (squared within ``huber_delta`` of the target, linear beyond: robust to
        outliers), or the pinball loss of level ``quantile`` (predicts that
        quantile of y given X: two such models give a prediction interval).
        The last three are skmlp's additions to MLPRegressor.
    huber_delta : float, default=1.0
        The Huber loss's threshold on the residual (``loss='huber'`` only).
    quantile : float, default=0.5
        The quantile to predict, in (0, 1) (``loss='quantile'`` only): the
        loss is ``q (y - p)`` where ``y >= p`` and ``(1 - q) (p - y)`` where
        ``y < p``, scikit-learn's ``mean_pinball_loss`` with ``alpha=q``.
    dropout, scoring : float or tuple of float, str, callable or None
        As in :class:`BackpropClassifier`; ``scoring=None`` scores R^2.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, \
warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, \
beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in :class:`BackpropClassifier`; early stopping monitors R^2.

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, \
t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, \
n_outputs_
        As in :class:`BackpropClassifier`.
    out_activation_ : str
        'identity' (squared error) or 'exp' (Poisson).

    See Also
    --------
    BackpropClassifier : The same network for classification.

    Notes
    -----
    With several outputs the squared-error loss averages them (as
    scikit-learn's ``loss_`` does) and its gradient is the exact gradient of
    that average.

    Examples
    --------
    >>> import numpy as np
    >>> from skmlp import BackpropRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = BackpropRegressor(hidden_layer_sizes=(16,), solver="lbfgs",
    ...                         random_state=0).fit(X, X.ravel() ** 2)
    >>> reg.score(X, X.ravel() ** 2) > 0.99
    True
    """

    _parameter_constraints: dict = {
        **_BaseBackprop._parameter_constraints,
        "loss": [
            StrOptions(
                {"squared_error", "poisson", "absolute_error", "huber", "quantile"}
            )
        ],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
    }
    _stratify_split = False
    _score_function = staticmethod(r2_score)
    _score_name = "R²"

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        huber_delta=1.0,
        quantile=0.5,
        dropout=0.0,
        scoring=None,
    ):
        _store_init_params(self, locals())

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _output_layer(self, out_activation=None):
        if self.loss == "huber":
            return huber(self.huber_delta)
        if self.loss == "quantile":
            return pinball(self.quantile)
        if self.loss == "absolute_error":
            return "absolute_error"
        return out_activation or self.out_activation_

    def _validate_input(self, X, y, incremental, reset, y_name="y"):
        with _naming_columns(self, X, "X_val" if y_name == "y_val" else "X"):
            X, y = validate_data(
                self,
                X,
                y,
                accept_sparse=["csr", "csc"],
                multi_output=True,
                y_numeric=True,
                dtype=_FLOAT_DTYPES,
                reset=reset,
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                f"loss='poisson' needs non-negative targets {y_name}; use "
                "loss='squared_error' for targets that can be negative."
            )
        return X, y

    def _decode(self, out):
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0] if not isinstance(out, np.ndarray) else out.ravel()
        return out

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values.
        """
        return self._decode(self._forward(X))
