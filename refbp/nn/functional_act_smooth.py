"""Functional core of the smooth activations: Softsign, Tanhshrink, LogSigmoid, SELU, CELU,
Mish, GLU, Softmin and Softmax2d.

As in ``refbp.nn.functional_act``: a forward ``f(x, ...)`` and a backward
``f_backward(grad, x, ...)`` on validated float arrays. Where torch has a kernel
(``log_sigmoid``, ``elu``, ``mish``, ``glu``) refbp follows its formula; where torch composes
the op in Python (``softsign = x / (|x| + 1)``, ``tanhshrink = x - tanh(x)``,
``softmin = softmax(-x)``) refbp sums the terms autograd sums, in the same form, so that the
cancellation at large |x| rounds as torch's does.
"""

from __future__ import annotations

import numpy as np

from refbp.nn.functional_act import softmax, softmax_backward, softmax_dim

#: SELU's constants, as torch's ``selu`` passes them to ``elu`` (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- the scaled ELU that SELU and CELU are -------------------------------------------------
def elu_scaled(x: np.ndarray, alpha: float, scale: float, input_scale: float) -> np.ndarray:
    """torch's ``elu`` kernel: ``expm1(x * input_scale) * (alpha * scale) if x <= 0 else
    x * scale``."""
    negcoef = alpha * scale
    return np.where(x <= 0, np.expm1(np.minimum(x, 0) * input_scale) * negcoef, x * scale)


def elu_scaled_backward(grad: np.ndarray, x: np.ndarray, alpha: float, scale: float,
                        input_scale: float) -> np.ndarray:
    """torch's ``elu_backward(is_result=False)``: ``grad * input_scale * (alpha * scale) *
    exp(x * input_scale) if x <= 0 else grad * scale`` (the exponential side owns x = 0)."""
    negcoef = alpha * scale
    neg = grad * input_scale * negcoef * np.exp(np.minimum(x, 0) * input_scale)
    return np.where(x <= 0, neg, grad * scale)


def selu(x: np.ndarray) -> np.ndarray:
    """``elu(x, alpha=SELU_ALPHA, scale=SELU_SCALE, input_scale=1)``."""
    return elu_scaled(x, SELU_ALPHA, SELU_SCALE, 1.0)


def selu_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grad * SELU_SCALE`` for x > 0, ``grad * SELU_ALPHA * SELU_SCALE * exp(x)`` else."""
    return elu_scaled_backward(grad, x, SELU_ALPHA, SELU_SCALE, 1.0)


def celu(x: np.ndarray, alpha: float) -> np.ndarray:
    """``elu(x, alpha, scale=1, input_scale=1/alpha)``: ``alpha * expm1(x / alpha)`` for
    x <= 0, ``x`` else."""
    return elu_scaled(x, alpha, 1.0, 1.0 / alpha)


def celu_backward(grad: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """``grad * (1/alpha) * alpha * exp(x / alpha)`` for x <= 0, ``grad`` else."""
    return elu_scaled_backward(grad, x, alpha, 1.0, 1.0 / alpha)


# -- sigmoid relatives ---------------------------------------------------------------------
def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """torch's ``log_sigmoid_forward``: ``min(x, 0) - log1p(exp(-|x|))`` (no overflow)."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def log_sigmoid_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """torch's ``log_sigmoid_backward`` with its buffer ``z = exp(-|x|)``:
    ``(m - s * z / (1 + z)) * grad``, ``m = 1, s = 1`` for x < 0 and ``m = 0, s = -1`` else
    (both are ``sigmoid(-x)``)."""
    z = np.exp(-np.abs(x))
    negative = x < 0
    max_deriv = np.where(negative, 1, 0).astype(x.dtype)
    sign = np.where(negative, 1, -1).astype(x.dtype)
    return (max_deriv - sign * (z / (1 + z))) * grad


def _sigmoid_reciprocal(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` as torch's CPU kernels write it (exp(1e4) = inf gives 0)."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _tanh_softplus(x: np.ndarray) -> np.ndarray:
    """``tanh(log1p(exp(x)))``, torch's Mish term (no softplus threshold; inf gives 1)."""
    with np.errstate(over="ignore"):
        return np.tanh(np.log1p(np.exp(x)))


def mish(x: np.ndarray) -> np.ndarray:
    """``x * tanh(softplus(x))`` with ``softplus(x) = log1p(exp(x))``."""
    return x * _tanh_softplus(x)


def mish_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grad * (t + x * sigmoid(x) * (1 - t^2))``, ``t = tanh(softplus(x))``: the product
    rule with ``softplus' = sigmoid`` and ``tanh' = 1 - tanh^2``."""
    t = _tanh_softplus(x)
    return grad * (t + x * _sigmoid_reciprocal(x) * (1 - t * t))


# -- Python-composed in torch: autograd's terms --------------------------------------------
def softsign(x: np.ndarray) -> np.ndarray:
    """``x / (|x| + 1)``."""
    return x / (np.abs(x) + 1)


def softsign_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The two terms autograd sums for ``x / d``, ``d = |x| + 1``: ``grad / d`` (the
    numerator) and ``(-grad * ((x / d) / d)) * sign(x)`` (the denominator through ``abs``,
    whose derivative is ``sign(x)``, 0 at 0). Together ``grad / (1 + |x|)^2``."""
    d = np.abs(x) + 1
    return grad / d + (-grad * ((x / d) / d)) * np.sign(x)


def tanhshrink(x: np.ndarray) -> np.ndarray:
    """``x - tanh(x)``."""
    return x - np.tanh(x)


def tanhshrink_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grad + (-grad) * (1 - t^2)``, ``t = tanh(x)``: autograd's two terms of
    ``x - tanh(x)`` (tanh's backward from its output). Together ``grad * tanh(x)^2``."""
    t = np.tanh(x)
    return grad + (-grad) * (1 - t * t)


def softmin(x: np.ndarray, dim: int | None) -> np.ndarray:
    """``softmax(-x, dim)`` (``dim=None``: torch's legacy rule, as ``Softmax``)."""
    return softmax(-x, dim)


def softmin_backward(grad: np.ndarray, y: np.ndarray, dim: int | None) -> np.ndarray:
    """``-(y * (grad - sum(grad * y, dim)))``: softmax's backward, then negation's."""
    return -softmax_backward(grad, y, dim)


def check_softmax2d_input(ndim: int) -> None:
    """torch's check: Softmax2d takes (C, H, W) or (N, C, H, W)."""
    if ndim not in (3, 4):
        raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {ndim}D instead")


def softmax2d(x: np.ndarray) -> np.ndarray:
    """``softmax(x, dim=-3)``: over the channels at every pixel."""
    check_softmax2d_input(x.ndim)
    return softmax(x, -3)


def softmax2d_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Softmax's backward along the channel axis (-3)."""
    return softmax_backward(grad, y, -3)


# -- GLU -----------------------------------------------------------------------------------
def glu_halves(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The two halves ``a, b`` of ``x`` along ``dim`` and the axis, with torch's errors."""
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    axis = softmax_dim(x.ndim, dim)
    size = x.shape[axis]
    if size % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {axis} is size {size}")
    a, b = np.split(x, 2, axis=axis)
    return a, b, axis


def glu(x: np.ndarray, dim: int) -> np.ndarray:
    """``a * sigmoid(b)`` for the halves ``a, b`` of ``x`` along ``dim``."""
    a, b, _ = glu_halves(x, dim)
    return a * _sigmoid_reciprocal(b)


def glu_backward(grad: np.ndarray, x: np.ndarray, dim: int) -> np.ndarray:
    """torch's ``glu_backward``: ``dL/da = s * grad`` and ``dL/db = (1 - s) * s * a *
    grad`` with ``s = sigmoid(b)``, joined along ``dim``."""
    a, b, axis = glu_halves(x, dim)
    s = _sigmoid_reciprocal(b)
    return np.concatenate([s * grad, (1 - s) * s * a * grad], axis=axis)
