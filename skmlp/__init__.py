"""skmlp: multilayer perceptrons trained by hand-written backpropagation.

Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor whose
forward and backward passes are plain numpy (see ``skmlp/_network.py``).
"""

from ._estimators import BackpropClassifier, BackpropRegressor
from ._gradcheck import check_gradients

__version__ = "0.1.0"

__all__ = ["BackpropClassifier", "BackpropRegressor", "check_gradients", "__version__"]
