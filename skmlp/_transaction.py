"""Every fit or partial_fit call is a transaction.

``FitTransaction._fit`` validates (the estimator's ``_prepared``), copies the
fitted state into a ``TrainingState`` (the weights packed into one flat
vector, so hand-set or unpickled ``coefs_`` are what training continues
from), lets ``_training.py`` work on that copy, and only then commits it: the
new ``coefs_`` and ``intercepts_`` are views into the state's flat vector. A
call that raises commits nothing and rolls back what validation set
(``_rollback_on_error``). The fitted attributes a commit writes are built in
one place, ``_fitted_attributes``.
"""

import copy
import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from ._engines import numpy_engine
from ._network import MLP, flatten, unflatten
from ._ops import engine_of, get_ops, to_host
from ._training import EpochHooks, TrainingState, fit_lbfgs, fit_stochastic
from ._validation import (
    _STOCHASTIC_SOLVERS,
    _dtype_of,
    _hidden_sizes,
    _on_device,
)


def _glorot_uniform(fan_in, fan_out, activation, rng, dtype):
    """Glorot & Bengio (2010) uniform init, as scikit-learn's MLP draws it.

    Bound ``sqrt(6 / (fan_in + fan_out))`` (``sqrt(2 / ...)`` for logistic);
    weights are drawn before biases, layer by layer, from the same generator.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    bound = np.sqrt(factor / (fan_in + fan_out))
    W = rng.uniform(-bound, bound, (fan_in, fan_out))
    b = rng.uniform(-bound, bound, fan_out)
    return W.astype(dtype, copy=False), b.astype(dtype, copy=False)


@dataclass
class _Prepared:
    """One call's validated training data (see ``_BaseBackprop._prepared``)."""

    X: object  # ndarray or sparse matrix, float32 or float64
    Y: np.ndarray  # targets in X's dtype, or booleans for class indicators
    sample_weight: np.ndarray | None
    given: tuple | None  # the user's validation set, validated
    layer_sizes: list
    first_pass: bool
    dropout: list | None
    ops: object = None  # the engine the arrays belong to (see _ops.py)


class FitTransaction:
    """The fit/commit transaction of the drop-in estimators (see module doc)."""

    def _fit(self, X, y, sample_weight, incremental, validation=(None, None, None)):
        """One fit or partial_fit call, as a transaction.

        Training works on a TrainingState of its own (a copy of the fitted
        state, or a fresh one), which is committed to the estimator only when
        the call succeeds: if anything raises, every attribute is as before
        the call (see :meth:`_rollback_on_error`).
        """
        # numpy's floating-point warnings are silenced throughout, validation
        # included (scikit-learn's finiteness check can warn before it raises);
        # non-finite values are checked for explicitly and reported as errors.
        with (
            self._rollback_on_error(),
            np.errstate(
                over="ignore", invalid="ignore", divide="ignore", under="ignore"
            ),
        ):
            data = self._prepared(X, y, sample_weight, incremental, validation)
            state = self._train(data, X_raw=X, y_raw=y, incremental=incremental)
            for name, value in self._fitted_attributes(state, data.layer_sizes).items():
                setattr(self, name, value)  # the commit
        return self

    def _prepared(self, X, y, sample_weight, incremental, validation):
        """Validated, encoded training data, and what the network looks like.

        Under scikit-learn's ``array_api_dispatch``, with X of another
        namespace (torch, CuPy, ...), the data are validated and encoded on
        the host, as numpy arrays, and then put on X's device (X itself, when
        validation left it unchanged): every other input follows X.
        """
        ops = get_ops(X)
        X_given = X
        X, y, sample_weight = to_host(X), to_host(y), to_host(sample_weight)
        validation = tuple(to_host(part) for part in validation)
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        dropout = self._dropout_rates(len(hidden))
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._validate_sample_weight(sample_weight, X)
        sample_weight = self._with_class_weight(Y, sample_weight, incremental, X.dtype)
        Y = self._targets_in_dtype(Y.reshape(X.shape[0], -1), X.dtype)
        data = _Prepared(
            X,
            Y,
            sample_weight,
            given=self._validation_set(validation, X.dtype, n_outputs=Y.shape[1]),
            layer_sizes=[X.shape[1], *hidden, Y.shape[1]],
            first_pass=first_pass,
            dropout=dropout,
            ops=ops,
        )
        if ops.is_numpy:  # numpy's own, or the compiled engine
            return dataclasses.replace(data, ops=numpy_engine(X.dtype))
        return _on_device(data, X_given)

    def _train(self, data, X_raw, y_raw, incremental):
        """Run the solver on a new TrainingState and return it, uncommitted.

        ``X_raw`` and ``y_raw`` are the data as the user passed them, for
        callbacks that score.
        """
        rng = check_random_state(self.random_state)
        layer_sizes = data.layer_sizes
        ops = data.ops
        state, starting_params = self._training_state(
            layer_sizes, _dtype_of(data.X), rng, data.first_pass, ops
        )
        output = self._output_layer(self._output_activation())
        net = MLP(layer_sizes, self.activation, output, state.params, ops)

        def snapshot():  # the model as it stands, for callbacks
            return copy.deepcopy(self._fitted_attributes(state, layer_sizes))

        context = None if incremental else self._callback_context(X_raw, y_raw)
        if self.solver not in _STOCHASTIC_SOLVERS:
            fit_lbfgs(self, state, net, data.X, data.Y, data.sample_weight)
        else:
            fit_stochastic(
                self,
                state,
                net,
                data.X,
                data.Y,
                data.sample_weight,
                rng,
                incremental,
                given=data.given,
                dropout=data.dropout,
                hooks=None
                if context is None
                else EpochHooks(context, X_raw, y_raw, snapshot),
                starting_params=starting_params,
                score=self._validation_scorer(state, layer_sizes, ops),
            )
        if not ops.all_finite(state.params):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data "
                "may contain large values and need to be preprocessed."
            )
        if context is not None:
            context.call_on_fit_task_end(
                estimator=self, X=X_raw, y=y_raw, reconstruction_attributes=snapshot
            )
        return state

    # Attributes that input validation may set before training (scikit-learn's
    # validate_data, the label binarizer, partial_fit's first call).
    _VALIDATED = ("n_features_in_", "feature_names_in_", "classes_", "_label_binarizer")

    @contextmanager
    def _rollback_on_error(self):
        """On any exception, put back the attributes that validation set.

        Training itself never writes to the estimator before its commit, so
        this is all a failed call needs to leave the estimator as it was
        (a first call: with no fitted attributes).
        """
        saved = {
            name: self.__dict__[name]
            for name in self._VALIDATED
            if name in self.__dict__
        }
        try:
            yield
        except BaseException:
            for name in self._VALIDATED:
                if name in saved:
                    setattr(self, name, saved[name])
                else:
                    self.__dict__.pop(name, None)
            raise

    def _training_state(self, layer_sizes, dtype, rng, first_pass, ops):
        """The TrainingState a call starts from: fresh (Glorot-initialised
        weights, empty records) on a first pass, else a copy of the fitted
        state, in the training dtype; and a function that returns the
        starting weights again (for judging an explosion at the end). Its
        arrays belong to ``ops``: random draws are made on the host generator
        and moved there, so a fit on a device draws what a numpy fit draws."""
        if first_pass:
            drawn_from = rng.get_state()

            def starting_params():  # the same draws again, not a kept copy
                again = np.random.RandomState()
                again.set_state(drawn_from)
                return ops.asarray(self._glorot_params(layer_sizes, dtype, again))

            state = TrainingState(
                ops.asarray(self._glorot_params(layer_sizes, dtype, rng))
            )
            if self.early_stopping:
                state.best_loss = None
            return state, starting_params
        shapes = [W.shape for W in self.coefs_]
        expected = list(zip(layer_sizes[:-1], layer_sizes[1:], strict=True))
        if shapes != expected:
            raise ValueError(
                f"The fitted network has layers {shapes} but this data and "
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} need {expected}. "
                "Use warm_start=False (or a fresh estimator) to change the "
                "architecture or the number of outputs."
            )

        def copied(value):  # always a copy, in the training dtype and place
            if isinstance(value, list):
                return list(value)
            if isinstance(value, (int, float)) or value is None:
                return value
            return ops.asarray(to_host(value).astype(dtype))

        optimizer = getattr(self, "_optimizer_state", None)
        if optimizer is not None:
            optimizer = {k: copied(v) for k, v in optimizer.items()}
        best_params = getattr(self, "_best_params", None)

        def starting_params():  # the committed model: unchanged until the commit
            return ops.asarray(self._flat_params(dtype))

        state = TrainingState(
            params=ops.asarray(self._flat_params(dtype)),
            optimizer=optimizer,
            n_iter=self.n_iter_,
            t=getattr(self, "t_", 0),
            loss=getattr(self, "loss_", None),
            loss_curve=copied(getattr(self, "loss_curve_", [])),
            best_loss=getattr(self, "best_loss_", np.inf),
            no_improvement_count=getattr(self, "_no_improvement_count", 0),
            validation_scores=copied(getattr(self, "validation_scores_", None)),
            validation_loss_curve=copied(getattr(self, "validation_loss_curve_", None)),
            best_validation_score=getattr(self, "best_validation_score_", None),
            best_params=None if best_params is None else copied(best_params),
        )
        return state, starting_params

    def _flat_params(self, dtype):
        """A new flat host copy of the fitted coefs_ and intercepts_."""
        coefs = [to_host(W) for W in self.coefs_]
        return flatten(coefs, [to_host(b) for b in self.intercepts_], dtype=dtype)

    def _glorot_params(self, layer_sizes, dtype, rng):
        """Initial weights and biases, drawn from rng, as one flat vector."""
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
            W, b = _glorot_uniform(fan_in, fan_out, self.activation, rng, dtype)
            coefs.append(W)
            intercepts.append(b)
        return flatten(coefs, intercepts, dtype=dtype)

    def _fitted_attributes(self, state, layer_sizes):
        """The fitted attributes a TrainingState stands for (coefs_ and
        intercepts_ are views into its flat parameter vector)."""
        ops = engine_of(state.params)
        xp = None if ops.is_numpy else ops.xp
        coefs, intercepts = unflatten(state.params, layer_sizes, xp)
        attributes = {
            "coefs_": coefs,
            "intercepts_": intercepts,
            "n_outputs_": layer_sizes[-1],
            "n_layers_": len(layer_sizes),
            "out_activation_": self._output_activation(),
            "n_iter_": state.n_iter,
            "t_": state.t,
            "loss_": state.loss,
            "loss_curve_": state.loss_curve,
            "_optimizer_state": state.optimizer,
            "_best_params": state.best_params,
        }
        if self.solver in _STOCHASTIC_SOLVERS:
            attributes.update(
                best_loss_=state.best_loss,
                _no_improvement_count=state.no_improvement_count,
                validation_scores_=state.validation_scores,
                validation_loss_curve_=state.validation_loss_curve,
                best_validation_score_=state.best_validation_score,
            )
        return attributes
