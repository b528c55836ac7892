"""Which engine trains on numpy arrays: the compiled one (numba) or numpy's.

Chosen here, where both engines are visible: ``_ops.py`` defines the numpy
and array-API engines and knows nothing of numba; ``_numba.py`` builds its
engine on ``_ops.NumpyOps``; this module imports ``_numba`` only when a fit
asks for the compiled engine, so ``import skmlp`` never loads numba.
"""

import importlib.util
import os
import warnings

import numpy as np

from ._ops import NUMPY

# The engine numpy arrays train with, per dtype: NumbaOps when numba works.
_NUMPY_ENGINES = {}


def numpy_engine(dtype):
    """The engine for training on numpy arrays of this dtype.

    The compiled engine (``_numba.NumbaOps``, fused kernels) when numba is
    installed (``pip install "skmlp[fast]"``), else :data:`NUMPY`. The
    environment variable ``SKMLP_ENGINE`` chooses: ``numpy`` forces the pure
    numpy engine (for debugging, or to compare), ``numba`` requires the
    compiled one, ``auto`` (the default) takes it when it works. Kernels are
    compiled at the first fit of each dtype (or loaded from numba's cache);
    if that fails, training continues with numpy after one warning.
    """
    choice = os.environ.get("SKMLP_ENGINE", "auto").strip().lower() or "auto"
    if choice not in ("auto", "numba", "numpy"):
        raise ValueError(
            f"SKMLP_ENGINE={choice!r}: use 'auto' (the default), 'numba' or 'numpy'."
        )
    if choice == "numpy":
        return NUMPY
    key = np.dtype(dtype)
    if key not in _NUMPY_ENGINES or (
        choice == "numba" and _NUMPY_ENGINES[key] is NUMPY
    ):
        _NUMPY_ENGINES[key] = _compiled_engine(key, required=choice == "numba")
    return _NUMPY_ENGINES[key]


class CompiledEngineWarning(UserWarning):
    """The compiled engine could not be used; numpy's is used instead."""


def _compiled_engine(dtype, required):
    if importlib.util.find_spec("numba") is None:
        if required:
            raise ImportError(
                "SKMLP_ENGINE=numba, but numba is not installed: "
                'pip install "skmlp[fast]", or unset SKMLP_ENGINE.'
            )
        return NUMPY
    try:
        from ._numba import NumbaOps

        engine = NumbaOps()
        engine.compile(dtype)
        return engine
    except Exception as error:
        if required:
            raise
        warnings.warn(
            f"skmlp's compiled engine (numba) failed for {dtype}: {error!r}. "
            "Training continues with the numpy engine, at its speed; set "
            "SKMLP_ENGINE=numpy to skip the attempt.",
            CompiledEngineWarning,
            stacklevel=3,
        )
        return NUMPY
