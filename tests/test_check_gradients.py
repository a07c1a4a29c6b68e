"""``refbp.testing.check_gradients`` against finite differences only (torch-free).

User layers in the two common from-scratch styles -- attributes ``W``/``dW`` ("Deep Learning
from Scratch") and ``params``/``grads`` dicts -- a plain function with ``backward=``, and a refbp
module; correct ones pass, one planted bug per buggy layer is found and named.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.testing import GradientReport, check_gradients
from refbp.tolerances import GRADCHECK_RTOL


class Affine:
    """y = x W + b with W (in, out): the "Deep Learning from Scratch" layout and style."""

    def __init__(self, w: np.ndarray, b: np.ndarray, *, bug: str = "") -> None:
        self.W, self.b = w, b
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None
        self.bug = bug
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.dW = np.asarray(self.x).T @ dout
        self.db = dout.sum(axis=0) * (0.5 if self.bug == "db" else 1.0)
        return dout @ (self.W if self.bug == "dx" else self.W.T)


class DictTanhLayer:
    """y = tanh(x W^T) with ``params``/``grads`` dicts (numpy-ml style)."""

    def __init__(self, w: np.ndarray) -> None:
        self.params = {"W": w}
        self.grads = {"W": np.zeros_like(w)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x, self.y = x, np.tanh(x @ self.params["W"].T)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dz = dout * (1 - self.y ** 2)
        self.grads["W"] += dz.T @ self.x
        return dz @ self.params["W"]


# refbp._checks.check_finite prints the value with repr(): "nan" once it formats float(value),
# "np.float64(nan)" under NumPy 2 until then.
NONFINITE = r"^{name} contains a non-finite value (np\.float64\()?{value}\)? at index {index}$"


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _affine(bug: str = "", dtype: Any = np.float64) -> tuple[Affine, np.ndarray]:
    r = _rng()
    layer = Affine(r.standard_normal((3, 2)).astype(dtype), r.standard_normal(2).astype(dtype),
                   bug=bug)
    return layer, r.standard_normal((4, 3)).astype(dtype)


def test_importing_refbp_testing_and_checking_does_not_import_torch() -> None:
    code = ("import sys, numpy as np; from refbp.testing import check_gradients; "
            "check_gradients(np.tanh, np.ones(3), backward=lambda x, g: g * (1 - np.tanh(x)**2));"
            " print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_correct_affine_layer_passes_with_attribute_params() -> None:
    layer, x = _affine()
    report = check_gradients(layer, x)
    assert isinstance(report, GradientReport)
    assert report.passed, str(report)
    assert [(c.tensor, c.oracle) for c in report.checks] == [
        ("input", "finite differences"), ("W", "finite differences"), ("b", "finite differences")]
    assert all(c.max_rel_err < GRADCHECK_RTOL for c in report.checks)


def test_planted_bias_bug_is_named() -> None:
    layer, x = _affine(bug="db")
    report = check_gradients(layer, x)
    assert not report.passed
    assert [c.tensor for c in report.failures] == ["b"]
    bad = report.get("b")
    assert bad.value == pytest.approx(0.5 * bad.reference, rel=1e-6)
    assert report.get("W").passed and report.get("input").passed
    with pytest.raises(AssertionError, match=r"b vs finite differences: FAILED"):
        check_gradients(layer, x, raise_on_failure=True)


def test_planted_input_gradient_bug_is_named() -> None:
    layer, x = _affine()
    layer.W = np.random.default_rng(1).standard_normal((3, 3))
    layer.b = np.zeros(3)
    layer.bug = "dx"  # returns dout @ W instead of dout @ W.T
    report = check_gradients(layer, x)
    assert [c.tensor for c in report.failures] == ["input"]


def test_layer_is_not_modified_and_float32_layers_are_checked_in_float64() -> None:
    layer, x = _affine(dtype=np.float32)
    w_before = layer.W.copy()
    report = check_gradients(layer, x)
    assert report.passed, str(report)
    assert layer.W.dtype == np.float32 and layer.dW is None and layer.x is None
    np.testing.assert_array_equal(layer.W, w_before)


def test_params_and_grads_dicts_with_accumulating_backward() -> None:
    layer = DictTanhLayer(_rng().standard_normal((2, 3)))
    layer.grads["W"] += 100.0  # stale gradient: zeroed before the analytic backward
    report = check_gradients(layer, _rng().standard_normal((5, 3)))
    assert report.passed, str(report)
    assert [c.tensor for c in report.checks] == ["input", "W"]


def test_explicit_params_mapping() -> None:
    layer, x = _affine()
    report = check_gradients(layer, x, params={"W": "dW"})
    assert [c.tensor for c in report.checks] == ["input", "W"]


def test_plain_function_with_backward() -> None:
    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    good = check_gradients(sigmoid, np.linspace(-4, 4, 9),
                           backward=lambda x, g: g * sigmoid(x) * (1 - sigmoid(x)))
    assert good.passed and good.get("input").max_rel_err < GRADCHECK_RTOL
    bad = check_gradients(sigmoid, np.linspace(-4, 4, 9), backward=lambda x, g: g * sigmoid(x))
    assert not bad.passed


def test_refbp_module_parameters_are_checked() -> None:
    report = check_gradients(nn.Sequential(nn.Linear(3, 4, generator=_rng()), nn.Tanh()),
                             _rng().standard_normal((2, 3)))
    assert report.passed, str(report)
    assert [c.tensor for c in report.checks] == ["input", "0.weight", "0.bias"]


@pytest.mark.parametrize(("subject", "inputs", "kwargs", "exc", "message"), [
    (42, np.ones(3), {}, TypeError, "module_or_fn must be a refbp Module, an object with "
     "forward(x) and backward(dout) methods, or a function; got int"),
    (np.tanh, np.ones(3), {}, TypeError, "a plain function needs backward="),
    (np.tanh, [1.0, 2.0], {}, TypeError,
     "inputs must be a NumPy array or a torch.Tensor, got list"),
    (np.tanh, np.arange(3), {}, TypeError, "inputs must be a floating-point array, got dtype "
     "int64"),
    (np.tanh, np.ones((0, 3)), {}, ValueError, "inputs is empty (shape (0, 3)); need at least "
     "one element"),
    (np.tanh, np.array([1.0, np.nan]), {}, ValueError,
     "inputs contains a non-finite value"),
    (lambda x: np.where(x > 0, x, np.nan), np.array([1.0, -1.0]),
     {"backward": lambda x, g: g}, ValueError,
     "forward(inputs) output contains a non-finite value"),
    (np.tanh, np.ones((2, 3)), {"backward": lambda x, g: g[0]}, ValueError,
     "backward(grad_out) result has shape (3,), expected (2, 3)"),
    (np.tanh, np.ones(3), {"backward": lambda x, g: g, "grad_out": np.ones(2)}, ValueError,
     "grad_out has shape (2,), expected (3,)"),
    (np.tanh, np.ones(3), {"backward": lambda x, g: g, "torch_fn": "numpy.tanh"}, ValueError,
     "torch_fn 'numpy.tanh' is not a function of torch, torch.nn.functional"),
])
def test_bad_input_messages(subject: Any, inputs: Any, kwargs: dict[str, Any], exc: type,
                            message: str) -> None:
    with pytest.raises(exc) as info:
        check_gradients(subject, inputs, **kwargs)
    assert message in str(info.value)


def test_non_finite_parameter_and_missing_gradient() -> None:
    with pytest.raises(ValueError, match=NONFINITE.format(name="inputs", value="nan",
                                                          index=r"\(0, 1\)")):
        check_gradients(np.tanh, np.array([[1.0, np.nan]]), backward=lambda x, g: g)
    layer, x = _affine()
    layer.W[1, 0] = np.inf
    with pytest.raises(ValueError, match=NONFINITE.format(name="parameter 'W'", value="inf",
                                                          index=r"\(1, 0\)")):
        check_gradients(layer, x)

    class NoBiasGrad(Affine):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            super().backward(dout)
            self.db = None
            return dout @ self.W.T

    lazy, x = _affine()
    lazy.__class__ = NoBiasGrad
    with pytest.raises(ValueError, match=r"backward\(\) left no gradient for parameter 'b'"):
        check_gradients(lazy, x)
