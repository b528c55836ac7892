"""skmlp: multilayer perceptrons trained by hand-written backpropagation.

Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor whose
forward and backward passes are plain numpy (see ``skmlp/_network.py``), and
tabular estimators that take a DataFrame as it comes and train a stack of
hand-derived layers (``skmlp/_layers.py``) with RealMLP's recipe
(``skmlp/_tabular.py``).
"""

from ._display import LossCurveDisplay
from ._estimators import BackpropClassifier, BackpropRegressor
from ._gradcheck import check_gradients
from ._onnx import register_when_imported
from ._preprocessing import TabularPreprocessor
from ._tabular import TabularMLPClassifier, TabularMLPRegressor

__version__ = "0.1.0"

# Public names as their home: pickles, skops' trusted-type lists and reprs
# say skmlp.BackpropClassifier rather than the private module's path.
for _public in (
    BackpropClassifier,
    BackpropRegressor,
    LossCurveDisplay,
    TabularMLPClassifier,
    TabularMLPRegressor,
    TabularPreprocessor,
    check_gradients,
):
    _public.__module__ = __name__
del _public

# ONNX export: converters registered with skl2onnx when (if ever) it is imported.
register_when_imported()

__all__ = [
    "BackpropClassifier",
    "BackpropRegressor",
    "LossCurveDisplay",
    "TabularMLPClassifier",
    "TabularMLPRegressor",
    "TabularPreprocessor",
    "check_gradients",
    "__version__",
]
