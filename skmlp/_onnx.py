"""ONNX export: skmlp's estimators as skl2onnx converters.

With the optional extra ``skmlp[onnx]`` (skl2onnx, onnx, onnxruntime), the
calls users make for MLPClassifier work unchanged for skmlp's estimators::

    from skl2onnx import to_onnx
    onx = to_onnx(model, X[:1].astype(np.float32))  # also inside a Pipeline

``import skmlp`` does not import skl2onnx (it is slow to import, and may be
absent): :func:`register_when_imported` registers the converters the moment
skl2onnx is imported, or at once if it already is.

The graph is the forward pass of ``_network.py``, one layer at a time::

    z_k = a_{k-1} W_k + b_k      (MatMul, Add)
    a_k = f(z_k)                 (the hidden activation, or the output's)

in the input's float type (FloatTensorType: float32, DoubleTensorType:
float64). Classifiers then output labels and probabilities as predict and
predict_proba do: probabilities clipped to [eps, 1 - eps] of the dtype,
``[1 - p, p]`` for binary targets, labels from the largest probability (from
``p > 0.5`` for binary and multilabel targets). skl2onnx's parser adds the
ZipMap (options ``zipmap``: True, False or 'columns'); ``nocl=True`` gives
class indices instead of labels. Dropout acts in training only: it is absent.
A model trained on a device (torch, CuPy) converts as it is: its weights and
labels are copied to the host as the graph's constants.
"""

import importlib.util
import sys
import warnings

import numpy as np

from ._activations import ERF_RANGE, SELU_ALPHA, SELU_SCALE, erf_chebyshev
from ._ops import to_host

_SQRT_HALF = 0.7071067811865476


def _names(scope, *stems):
    return [scope.get_unique_variable_name(stem) for stem in stems]


class _Graph:
    """A few helpers over skl2onnx's container, in one float type."""

    def __init__(self, scope, container, proto_type, dtype):
        self.scope, self.container = scope, container
        self.proto_type, self.dtype = proto_type, dtype

    def constant(self, stem, values, proto_type=None, dtype=None):
        values = np.asarray(values, dtype=dtype or self.dtype)
        (name,) = _names(self.scope, stem)
        self.container.add_initializer(
            name, proto_type or self.proto_type, list(values.shape), values.ravel()
        )
        return name

    def node(self, op_type, inputs, stem=None, output=None, domain="", **attributes):
        output = output or self.scope.get_unique_variable_name(stem or op_type.lower())
        self.container.add_node(
            op_type,
            inputs,
            output,
            op_domain=domain,
            name=self.scope.get_unique_operator_name(op_type),
            **attributes,
        )
        return output


def _hidden_activation(graph, name, z):
    """f(z) for skmlp's hidden activations (``_activations.py``)."""
    if name == "identity":
        return z
    simple = {"logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
    if name in simple:
        return graph.node(simple[name], [z])
    # Built from elementwise ops that ONNX Runtime runs in float and double
    # alike (it has no double kernels for LeakyRelu, Elu or Erf).
    if name == "leaky_relu":  # max(z, 0.01 z): exact for a slope below 1
        return graph.node("Max", [z, graph.node("Mul", [z, graph.constant("s", 0.01)])])
    if name == "elu":  # max(z, 0) + (e^min(z, 0) - 1)
        negative = graph.node("Min", [z, graph.constant("zero", 0)])
        expm1 = graph.node(
            "Sub", [graph.node("Exp", [negative]), graph.constant("one", 1)]
        )
        return graph.node("Add", [graph.node("Relu", [z]), expm1])
    if name == "softplus":
        return _softplus(graph, z)
    if name == "selu":  # lambda (max(z, 0) + alpha (e^min(z, 0) - 1))
        negative = graph.node("Min", [z, graph.constant("zero", 0)])
        expm1 = graph.node(
            "Sub", [graph.node("Exp", [negative]), graph.constant("one", 1)]
        )
        scaled = graph.node("Mul", [expm1, graph.constant("alpha", SELU_ALPHA)])
        inner = graph.node("Add", [graph.node("Relu", [z]), scaled])
        return graph.node("Mul", [inner, graph.constant("scale", SELU_SCALE)])
    if name == "mish":  # z tanh(softplus(z))
        return graph.node("Mul", [z, graph.node("Tanh", [_softplus(graph, z)])])
    if name == "gelu":  # exact: z Phi(z), Phi the standard normal CDF
        return graph.node("Mul", [z, _normal_cdf(graph, z)])
    if name == "silu":  # z sigmoid(z) = z / (1 + e^-z); not Mul(z, Sigmoid(z)),
        # which ONNX Runtime 1.23 fuses into a float-only QuickGelu kernel
        exp_neg = graph.node("Exp", [graph.node("Neg", [z])])
        return graph.node(
            "Div", [z, graph.node("Add", [exp_neg, graph.constant("one", 1)])]
        )
    raise NotImplementedError(f"skmlp's ONNX export has no activation {name!r}.")


def _softplus(graph, z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): no overflow."""
    tail = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [z])])])
    log_tail = graph.node("Log", [graph.node("Add", [tail, graph.constant("one", 1)])])
    return graph.node("Add", [graph.node("Relu", [z]), log_tail])


def _clenshaw(graph, u, coefficients):
    """sum_k c_k T_k(u) by Clenshaw's recurrence (stable, unlike powers of u)."""
    two_u = graph.node("Mul", [u, graph.constant("two", 2)])
    b1 = b2 = graph.constant("zero", 0)
    for c in coefficients[:0:-1]:  # b_k = 2u b_{k+1} - b_{k+2} + c_k, k = n..1
        b1, b2 = (
            graph.node(
                "Add",
                [
                    graph.node("Sub", [graph.node("Mul", [two_u, b1]), b2]),
                    graph.constant("c", c),
                ],
            ),
            b1,
        )
    last = graph.node("Sub", [graph.node("Mul", [u, b1]), b2])
    return graph.node("Add", [last, graph.constant("c", coefficients[0])])


def _normal_cdf(graph, z):
    """Phi(z) = (1 + erf(z / sqrt 2)) / 2.

    ONNX Runtime has Erf for float only. A float graph uses it; a double graph
    evaluates erf(|z| / sqrt 2) as a Chebyshev series on [0, 6] (erf is 1
    beyond), with erf's odd symmetry for z < 0: about 1e-14 absolute.
    """
    scaled = graph.node("Mul", [z, graph.constant("c", _SQRT_HALF)])
    if graph.dtype == np.float64:
        x = graph.node(
            "Min", [graph.node("Abs", [scaled]), graph.constant("r", ERF_RANGE)]
        )
        u = graph.node(
            "Sub",
            [
                graph.node("Mul", [x, graph.constant("c", 2 / ERF_RANGE)]),
                graph.constant("one", 1),
            ],
        )
        magnitude = _clenshaw(graph, u, erf_chebyshev())
        negative = graph.node("Less", [z, graph.constant("zero", 0)])
        erf = graph.node("Where", [negative, graph.node("Neg", [magnitude]), magnitude])
    else:
        erf = graph.node("Erf", [scaled])
    one_plus = graph.node("Add", [erf, graph.constant("one", 1)])
    return graph.node("Mul", [one_plus, graph.constant("half", 0.5)])


def _output_activation(graph, name, z):
    if name == "identity":
        return z
    if name == "softmax":
        return graph.node("Softmax", [z], axis=1)
    if name == "logistic":
        return graph.node("Sigmoid", [z])
    if name == "exp":
        return graph.node("Exp", [z])
    raise NotImplementedError(f"skmlp's ONNX export has no output {name!r}.")


def _forward(graph, est, X):
    """The network's output for input X (a variable name)."""
    a = X
    last = len(est.coefs_) - 1
    for k, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        W, b = to_host(W), to_host(b)  # a device model's weights: host copies
        z = graph.node("MatMul", [a, graph.constant("coefficient", W)])
        z = graph.node("Add", [z, graph.constant("intercepts", b.reshape(1, -1))])
        if k == last:
            return _output_activation(graph, est.out_activation_, z)
        a = _hidden_activation(graph, est.activation, z)


def _float_type(operator):
    """(onnx element type, numpy dtype) of the graph: the input's float type."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.proto import onnx_proto

    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return onnx_proto.TensorProto.DOUBLE, np.float64
    return onnx_proto.TensorProto.FLOAT, np.float32


def _graph_and_input(scope, operator, container):

    proto_type, dtype = _float_type(operator)
    graph = _Graph(scope, container, proto_type, dtype)
    X = graph.node("Cast", [operator.inputs[0].full_name], "cast_input", to=proto_type)
    return graph, X


def _check_fitted(est):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)  # NotFittedError: "... is not fitted yet. Call 'fit' ..."


def _label_values(est, nocl):
    """The labels as an ONNX-ready array (int64 or utf-8 str), and whether
    they are integers. Float labels are whole numbers (scikit-learn refuses
    others as class labels): int64, as skl2onnx does for MLPClassifier."""
    classes = np.asarray(to_host(est.classes_))
    if nocl:
        return np.arange(len(classes), dtype=np.int64), True
    if classes.dtype.kind in "biuf":
        return classes.astype(np.int64), True
    return np.array([str(c).encode("utf-8") for c in classes], dtype=object), False


def _multilabel(est):
    return est._label_binarizer.y_type_ == "multilabel-indicator"


def convert_classifier(scope, operator, container):
    """skl2onnx converter: labels and probabilities, as predict/predict_proba."""
    from skl2onnx.proto import onnx_proto

    est = operator.raw_operator
    _check_fitted(est)
    graph, X = _graph_and_input(scope, operator, container)
    out = _forward(graph, est, X)
    label_name, proba_name = (v.full_name for v in operator.outputs[:2])
    eps = float(np.finfo(graph.dtype).eps)
    clipped = graph.node(
        "Min",
        [
            graph.node("Max", [out, graph.constant("eps", eps)]),
            graph.constant("top", 1 - eps),
        ],
    )
    above = graph.node("Greater", [out, graph.constant("half", 0.5)])
    int64 = onnx_proto.TensorProto.INT64
    if _multilabel(est):
        graph.node("Identity", [clipped], output=proba_name)
        graph.node("Cast", [above], output=label_name, to=int64)
        return
    if est.out_activation_ == "softmax":
        graph.node("Identity", [clipped], output=proba_name)
        index = graph.node("ArgMax", [out], axis=1, keepdims=0)
    else:  # binary: one logistic unit, p of the second class
        negative = graph.node("Sub", [graph.constant("one", 1), clipped])
        graph.node("Concat", [negative, clipped], output=proba_name, axis=1)
        shape = graph.constant("flat", [-1], onnx_proto.TensorProto.INT64, np.int64)
        index = graph.node("Reshape", [graph.node("Cast", [above], to=int64), shape])
    nocl = scope.get_options(est, dict(nocl=False))["nocl"]
    labels, integer = _label_values(est, nocl)
    label_type = int64 if integer else onnx_proto.TensorProto.STRING
    classes = graph.constant("classes", labels, label_type, labels.dtype)
    graph.node("Gather", [classes, index], output=label_name, axis=0)


def convert_regressor(scope, operator, container):
    """skl2onnx converter: predictions of shape (n_samples, n_outputs)."""
    est = operator.raw_operator
    _check_fitted(est)
    graph, X = _graph_and_input(scope, operator, container)
    out = _forward(graph, est, X)
    graph.node("Identity", [out], output=operator.outputs[0].full_name)


def classifier_shapes(operator):
    """skl2onnx shape calculator: label (n,) or (n, n_labels), probabilities."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    est = operator.raw_operator
    _check_fitted(est)
    n = operator.inputs[0].get_first_dimension()
    proba_type = DoubleTensorType if _float_type(operator)[1] == np.float64 else None
    proba_type = proba_type or FloatTensorType
    label, proba = operator.outputs[:2]
    n_classes = len(est.classes_)
    if _multilabel(est):
        label.type = Int64TensorType([n, n_classes])
    else:
        nocl = operator.scope_inst.get_options(est, dict(nocl=False))["nocl"]
        integer = _label_values(est, nocl)[1]
        label.type = (Int64TensorType if integer else StringTensorType)([n])
    proba.type = proba_type([n, n_classes])


def regressor_shapes(operator):
    """skl2onnx shape calculator: predictions of shape (n, n_outputs)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    est = operator.raw_operator
    _check_fitted(est)
    n = operator.inputs[0].get_first_dimension()
    float_type = DoubleTensorType if _float_type(operator)[1] == np.float64 else None
    operator.outputs[0].type = (float_type or FloatTensorType)([n, est.n_outputs_])


def parse_classifier(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: refuse an unfitted model by name, then skl2onnx's own
    classifier parser (label and probabilities, and the ZipMap it adds)."""
    from skl2onnx._parse import _parse_sklearn_classifier

    _check_fitted(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers)


def register():
    """Register skmlp's converters with skl2onnx (which this imports)."""
    from skl2onnx import update_registered_converter

    from ._estimators import BackpropClassifier, BackpropRegressor

    update_registered_converter(
        BackpropClassifier,
        "SkmlpBackpropClassifier",
        classifier_shapes,
        convert_classifier,
        parser=parse_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(
        BackpropRegressor, "SkmlpBackpropRegressor", regressor_shapes, convert_regressor
    )
    from . import _onnx_tabular  # TabularPreprocessor, TabularMLP*: their module

    _onnx_tabular.register(update_registered_converter)


def _register_quietly():
    try:
        register()
    except Exception as error:  # an incompatible skl2onnx must not break imports
        warnings.warn(
            f"skmlp could not register its ONNX converters with skl2onnx: {error!r}",
            stacklevel=2,
        )


class _ThenRegister:
    """skl2onnx's own loader, followed by the registration."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_quietly()

    def __getattr__(self, name):  # resources, source, ...: the real loader's
        return getattr(self._loader, name)


class _WatchForSkl2onnx:
    """A meta path finder (the protocol; importlib.abc costs milliseconds to
    import) that finds nothing itself: when skl2onnx is first imported, it
    wraps the real spec's loader so that skmlp registers right after it loads."""

    def find_spec(self, name, path=None, target=None):
        if name != "skl2onnx":
            return None
        sys.meta_path.remove(self)  # once, and not for the look-up below
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ThenRegister(spec.loader)
        return spec


def register_when_imported():
    """Register now if skl2onnx is imported, else as soon as it is."""
    if "skl2onnx" in sys.modules:
        _register_quietly()
    elif not any(isinstance(f, _WatchForSkl2onnx) for f in sys.meta_path):
        sys.meta_path.insert(0, _WatchForSkl2onnx())
