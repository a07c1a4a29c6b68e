"""Functional core of the activations: forward and backward math, exactly as torch computes it.

Every activation ``f`` has a forward ``f(x, ...) -> y`` and a backward
``f_backward(grad, x, y, ...) -> grad_in`` computing the vector-Jacobian product
``grad_in = J_f(x)^T grad``. Both take already-validated float arrays; the thin classes in
``refbp.nn.activation`` do the validation, caching and dtype handling. For the elementwise
functions the Jacobian is diagonal, so ``grad_in = grad * f'(x)``; softmax and log-softmax
couple the elements along ``dim``.

The formulas (which branch owns a kink, whether the derivative is computed from the input or
from the output) follow torch's CPU kernels (``aten/src/ATen/native/cpu/Activation.cpp``,
``SoftMaxKernel.cpp``, ``ATen/native/cpu/Elu.h``, ``Gelu.h``), so that refbp agrees with torch
to rounding, including at kinks and at extreme inputs. Where a branch that ``np.where``
discards could overflow, its input is clamped first (no spurious warnings, no ``inf * 0``).
"""

from __future__ import annotations

import math

import numpy as np

from refbp._checks import normalize_dim
from refbp.dtypes import FLOAT_TYPES
from refbp.nn._special import erf

_SQRT1_2 = math.sqrt(0.5)                             # torch's M_SQRT1_2
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)         # M_2_SQRTPI * M_SQRT1_2 * 0.5
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)             # M_SQRT2 * M_2_SQRTPI * 0.5
_GELU_KAPPA = 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")


# -- piecewise linear ----------------------------------------------------------------------
def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``; NaN propagates."""
    return np.maximum(x, 0)


_SAME_SIZE_UINT = {t.dtype: t.uint_type for t in FLOAT_TYPES}


def relu_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """torch's ``threshold_backward(grad, result, 0)``: ``0 if y <= 0 else grad`` (ReLU'(0) = 0).

    Evaluated without branches, bit for bit equal to ``np.where(y <= 0, 0, grad)`` (a select
    on a random sign pattern is many times slower): the bits of ``grad`` AND a mask that is
    all zeros where ``y <= 0`` and all ones elsewhere (``[y <= 0] - 1`` in unsigned integers),
    so a dropped entry becomes +0.0 and a kept one, NaN and inf included, keeps its exact bits.
    ``grad`` and ``y`` have the same shape and float dtype.
    """
    uint = _SAME_SIZE_UINT.get(grad.dtype)
    if uint is None:  # np.longdouble (the exact referee): no integer of its size
        return np.where(y <= 0, 0, grad)
    mask = np.subtract(np.less_equal(y, 0), uint(1), dtype=uint)
    return np.bitwise_and(grad.view(uint), mask, out=np.asarray(mask)).view(grad.dtype)


def leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x if x > 0 else negative_slope * x``."""
    return np.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(grad: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``grad if x > 0 else grad * negative_slope`` (the slope owns x = 0, as in torch)."""
    return np.where(x > 0, grad, grad * negative_slope)


def _prelu_slope(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weight shaped to broadcast against ``x`` (along axis 1 for several slopes)."""
    if weight.size == 1:
        return weight.reshape(())
    return weight.reshape((1, weight.size) + (1,) * (x.ndim - 2))


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x if x > 0 else weight * x`` (torch's ``_prelu_kernel``; weight per channel)."""
    return np.where(x > 0, x, _prelu_slope(x, weight) * x)


def prelu_backward(grad: np.ndarray, x: np.ndarray,
                   weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's ``_prelu_kernel_backward``, with the weight gradient summed to its shape.

    ``grad_in = grad if x > 0 else weight * grad`` (the slope owns x = 0) and
    ``grad_weight = sum(0 if x > 0 else x * grad)`` over every axis but the channel axis.
    """
    grad_in = np.where(x > 0, grad, _prelu_slope(x, weight) * grad)
    per_element = np.where(x > 0, 0, x * grad)
    if weight.size == 1:
        return grad_in, np.sum(per_element).reshape(weight.shape)
    axes = tuple(a for a in range(x.ndim) if a != 1)
    return grad_in, np.sum(per_element, axis=axes).reshape(weight.shape)


def hardtanh(x: np.ndarray, min_val: float, max_val: float) -> np.ndarray:
    """``min(max(x, min_val), max_val)``; NaN propagates."""
    return np.clip(x, min_val, max_val)


def hardtanh_backward(grad: np.ndarray, x: np.ndarray, min_val: float,
                      max_val: float) -> np.ndarray:
    """torch's ``hardtanh_backward``: ``0 if x <= min_val or x >= max_val else grad``.

    Both kinks get the subgradient 0, like the flat sides: torch compares with ``<=`` and
    ``>=``, so Hardtanh'(min_val) = Hardtanh'(max_val) = 0.
    """
    return np.where((x <= min_val) | (x >= max_val), 0, grad)

# -- exponential family --------------------------------------------------------------------
def elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """``x if x >= 0 else alpha * expm1(x)`` (expm1 keeps small negative x accurate)."""
    return np.where(x >= 0, x, np.expm1(np.minimum(x, 0)) * alpha)


def elu_backward(grad: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """torch's ``elu_backward(is_result=False)``: ``grad if x > 0 else grad * alpha * exp(x)``.

    At x = 0 the left derivative ``alpha`` is used (equal to 1 only when alpha = 1).
    """
    return np.where(x <= 0, grad * alpha * np.exp(np.minimum(x, 0)), grad)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: ``e/(1+e)`` with ``e = exp(x)`` for x < 0."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """From the output, as torch: ``grad * (1 - y) * y``."""
    return grad * (1 - y) * y


def tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(x)`` elementwise (NumPy's, correctly rounded to within 1 ulp)."""
    return np.tanh(x)


def tanh_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """From the output, as torch: ``grad * (1 - y * y)``."""
    return grad * (1 - y * y)


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``."""
    return x * sigmoid(x)


def silu_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """torch's formula: ``grad * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    s = sigmoid(x)
    return grad * s * (1 + x * (1 - s))


def _softplus_linear(x: np.ndarray, beta: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The mask ``beta * x > threshold`` (linear regime) and ``beta * x`` zeroed there."""
    bx = x * beta
    linear = bx > threshold
    return linear, np.where(linear, 0, bx)


@np.errstate(over="ignore")
def softplus(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """``x if beta*x > threshold else log1p(exp(beta*x)) / beta``."""
    linear, bx = _softplus_linear(x, beta, threshold)
    return np.where(linear, x, np.log1p(np.exp(bx)) / beta)


@np.errstate(over="ignore", invalid="ignore")
def softplus_backward(grad: np.ndarray, x: np.ndarray, beta: float,
                      threshold: float) -> np.ndarray:
    """``grad if beta*x > threshold else grad * z / (z + 1)`` with ``z = exp(beta*x)``."""
    linear, bx = _softplus_linear(x, beta, threshold)
    z = np.exp(bx)
    return np.where(linear, grad, grad * z / (z + 1))


# -- GELU ----------------------------------------------------------------------------------
def check_gelu_approximate(approximate: str) -> str:
    """Validate GELU's ``approximate`` ('none' or 'tanh', torch's message otherwise); returns it."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(
            f"approximate argument must be either none or tanh, got {approximate!r}"
        )
    return approximate


def _gelu_tanh_inner(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x^2`` and ``tanh(sqrt(2/pi) * (x + 0.044715 x^3))``."""
    x_sq = x * x
    return x_sq, np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x_sq * x)))


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``0.5 * (1 + erf(x / sqrt 2))``; erf in float64, cast to x's dtype."""
    return 0.5 * (1 + erf(x * _SQRT1_2).astype(x.dtype, copy=False))


@np.errstate(over="ignore")
def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    """``x * Phi(x)``, or ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` for 'tanh'."""
    if check_gelu_approximate(approximate) == "tanh":
        return 0.5 * x * (1 + _gelu_tanh_inner(x)[1])
    return x * _phi(x)


@np.errstate(over="ignore", invalid="ignore")
def gelu_backward(grad: np.ndarray, x: np.ndarray, approximate: str) -> np.ndarray:
    """``grad * (Phi(x) + x phi(x))``; for 'tanh' torch's product-rule split (see GELU)."""
    if check_gelu_approximate(approximate) == "tanh":
        x_sq, t = _gelu_tanh_inner(x)
        left_derivative = 0.5 * (1 + t)
        inner_derivative = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x_sq)
        right_derivative = 0.5 * x * (1 - t * t) * inner_derivative
        return grad * (left_derivative + right_derivative)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))
    return grad * (_phi(x) + x * pdf)


# -- softmax family ------------------------------------------------------------------------
def softmax_dim(ndim: int, dim: int | None) -> int:
    """The reduction axis: ``dim`` normalised, or torch's legacy rule for ``dim=None``.

    ``torch.nn.functional._get_softmax_dim``: dim 0 when ``ndim`` is 0, 1 or 3, else 1
    (torch also warns that the implicit choice is deprecated; refbp stays silent).
    """
    if dim is None:
        return 0 if ndim in (0, 1, 3) else 1
    return normalize_dim(dim, ndim)


def _as_axis(x: np.ndarray, dim: int | None) -> tuple[np.ndarray, int]:
    """The axis, and 0-d arrays viewed as 1-d (torch treats a scalar as a 1-element softmax)."""
    axis = softmax_dim(x.ndim, dim)
    return (x.reshape(1), 0) if x.ndim == 0 else (x, axis)


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """``x - max(x, axis)``: the largest entry becomes 0, so ``exp`` cannot overflow."""
    return x - np.max(x, axis=axis, keepdims=True)


def softmax(x: np.ndarray, dim: int | None) -> np.ndarray:
    """``exp(x - m) / sum(exp(x - m))`` along ``dim`` with ``m = max(x, dim)``."""
    v, axis = _as_axis(x, dim)
    if v.size == 0:
        return x.copy()
    e = np.exp(_shifted(v, axis))
    return (e / np.sum(e, axis=axis, keepdims=True)).reshape(x.shape)


def softmax_backward(grad: np.ndarray, y: np.ndarray, dim: int | None) -> np.ndarray:
    """``y * (grad - sum(grad * y, dim))`` (the Jacobian is ``diag(y) - y y^T``)."""
    g, axis = _as_axis(grad, dim)
    v = y.reshape(g.shape)
    return (v * (g - np.sum(g * v, axis=axis, keepdims=True))).reshape(grad.shape)


def log_softmax(x: np.ndarray, dim: int | None) -> np.ndarray:
    """``(x - m) - log(sum(exp(x - m)))`` along ``dim``: the log-sum-exp trick."""
    v, axis = _as_axis(x, dim)
    if v.size == 0:
        return x.copy()
    s = _shifted(v, axis)
    return (s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))).reshape(x.shape)


def log_softmax_backward(grad: np.ndarray, y: np.ndarray, dim: int | None) -> np.ndarray:
    """``grad - exp(y) * sum(grad, dim)`` (the Jacobian is ``I - 1 softmax(x)^T``)."""
    g, axis = _as_axis(grad, dim)
    v = y.reshape(g.shape)
    return (g - np.exp(v) * np.sum(g, axis=axis, keepdims=True)).reshape(grad.shape)
