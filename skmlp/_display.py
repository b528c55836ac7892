"""LossCurveDisplay: a picture of training, in scikit-learn's Display style."""

from sklearn.utils.validation import check_is_fitted


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "LossCurveDisplay needs matplotlib: pip install 'skmlp[plot]' "
            "(or pip install matplotlib)."
        ) from error
    return plt


class LossCurveDisplay:
    """Training loss per epoch, with validation loss and score when recorded.

    Build it with :meth:`from_estimator`; call :meth:`plot` to draw it again
    on other axes.

    Parameters
    ----------
    loss_curve : list of float
        Training loss per epoch (per iteration for lbfgs).
    validation_loss_curve : list of float, default=None
        Validation loss per epoch.
    validation_scores : list of float, default=None
        Validation score per epoch, drawn on a second y axis.
    score_name : str, default="score"
        Label of the validation score ("accuracy", "R²").
    estimator_name : str, default=None
        Shown in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes with the loss curves.
    ax_score_ : matplotlib Axes or None
        The twin axes with the validation score, when there is one.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.
    lines_ : dict of str to matplotlib Line2D
        "loss", and "validation_loss" / "validation_score" when present.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from skmlp import BackpropClassifier, LossCurveDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True,
    ...                          random_state=0).fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(clf)
    >>> sorted(display.lines_)
    ['loss', 'validation_loss', 'validation_score']
    >>> display.ax_score_.get_ylabel()
    'validation accuracy'
    >>> fig, ax = plt.subplots()
    >>> display.plot(ax=ax).ax_ is ax  # the same curves again, on your own axes
    True
    >>> plt.close("all")  # or plt.show() to see them
    """

    def __init__(
        self,
        *,
        loss_curve,
        validation_loss_curve=None,
        validation_scores=None,
        score_name="score",
        estimator_name=None,
    ):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.score_name = score_name
        self.estimator_name = estimator_name

    def plot(self, ax=None):
        """Draw the curves on ``ax`` (a new figure's axes when None).

        Returns
        -------
        display : LossCurveDisplay
            This object, with ``ax_``, ``figure_`` and ``lines_`` set.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        epochs = range(1, len(self.loss_curve) + 1)
        self.lines_ = {}
        (self.lines_["loss"],) = ax.plot(epochs, self.loss_curve, label="training loss")
        if self.validation_loss_curve is not None:
            (self.lines_["validation_loss"],) = ax.plot(
                epochs, self.validation_loss_curve, label="validation loss"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        handles = list(self.lines_.values())
        self.ax_score_ = None
        if self.validation_scores is not None:
            self.ax_score_ = ax.twinx()
            (self.lines_["validation_score"],) = self.ax_score_.plot(
                epochs,
                self.validation_scores,
                color="tab:green",
                linestyle="--",
                label=f"validation {self.score_name}",
            )
            self.ax_score_.set_ylabel(f"validation {self.score_name}")
            handles.append(self.lines_["validation_score"])
        ax.legend(handles=handles, loc="center right")
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot a fitted BackpropClassifier's or BackpropRegressor's curves.

        Parameters
        ----------
        estimator : BackpropClassifier or BackpropRegressor
            Fitted; its ``loss_curve_`` and, when present,
            ``validation_loss_curve_`` and ``validation_scores_`` are drawn.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_is_fitted(estimator)
        return cls(
            loss_curve=estimator.loss_curve_,
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            validation_scores=getattr(estimator, "validation_scores_", None),
            score_name=estimator._score_label(),
            estimator_name=type(estimator).__name__,
        ).plot(ax=ax)
