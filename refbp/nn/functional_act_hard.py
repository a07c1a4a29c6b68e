"""Functional core of the piecewise activations: ReLU6, Hardswish, Hardsigmoid, Hardshrink,
Softshrink, Threshold and RReLU.

As in ``refbp.nn.functional_act``, each op has a forward ``f(x, ...)`` and a backward
``f_backward(grad, x, ...)`` on validated float arrays, computing ``grad * f'(x)``. The
branches follow torch's CPU kernels (``aten/src/ATen/native/cpu/Activation.cpp``): which
side of a kink owns it is stated in each docstring, and was measured against torch 2.13 on
both its vectorised and its scalar path.
"""

from __future__ import annotations

import numpy as np

from refbp.nn.functional_act import hardtanh, hardtanh_backward, leaky_relu, leaky_relu_backward

#: torch's ``hardsigmoid_backward`` multiplies by ``scalar_t(1.0f / 6.0f)``: one sixth
#: rounded to float32 first, so its float64 derivative is 0.1666666716337204, not 1/6.
HARDSIGMOID_SLOPE = float(np.float32(1.0) / np.float32(6.0))
#: ``rrelu_with_noise_backward`` multiplies by the noise only when the slope range is wider
#: than this; otherwise it differentiates a leaky ReLU of the mean slope.
RRELU_MIN_RANGE = 1e-6


def relu6(x: np.ndarray) -> np.ndarray:
    """``min(max(x, 0), 6)``: ``hardtanh(x, 0, 6)``, as torch computes ``relu6``."""
    return hardtanh(x, 0.0, 6.0)


def relu6_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``hardtanh_backward(grad, x, 0, 6)``: 0 at both kinks (x = 0 and x = 6)."""
    return hardtanh_backward(grad, x, 0.0, 6.0)


def hardswish(x: np.ndarray) -> np.ndarray:
    """``x * min(max(x + 3, 0), 6) / 6`` (torch's order of operations)."""
    return x * np.minimum(np.maximum(x + 3, 0), 6) / 6


def hardswish_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``0 if x <= -3, grad * (x / 3 + 0.5) if -3 < x < 3, grad if x >= 3``.

    The outer pieces own both kinks (Hardswish'(-3) = 0, Hardswish'(3) = 1), as torch's
    ``hardswish_backward`` (measured: the middle formula would give -0.5 and 1.5 there).
    """
    middle = grad * (x / 3 + 0.5)
    return np.where(x <= -3, 0, np.where(x < 3, middle, grad))


def hardsigmoid(x: np.ndarray) -> np.ndarray:
    """``min(max(x + 3, 0), 6) / 6``."""
    return np.minimum(np.maximum(x + 3, 0), 6) / 6


def hardsigmoid_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grad * (1/6 in float32) if -3 < x < 3 else 0``: both kinks get 0, and the slope
    is torch's float32 one sixth (:data:`HARDSIGMOID_SLOPE`) in every dtype."""
    return np.where((x > -3) & (x < 3), grad * HARDSIGMOID_SLOPE, 0)


def hardshrink(x: np.ndarray, lambd: float) -> np.ndarray:
    """``0 if -lambd <= x <= lambd else x``."""
    return np.where((x >= -lambd) & (x <= lambd), 0, x)


def shrink_backward(grad: np.ndarray, x: np.ndarray, lambd: float) -> np.ndarray:
    """torch's ``shrink_backward`` (Hardshrink's and Softshrink's): ``0 if -lambd <= x <=
    lambd else grad``; the flat middle owns both kinks."""
    return np.where((x >= -lambd) & (x <= lambd), 0, grad)


hardshrink_backward = shrink_backward


def softshrink(x: np.ndarray, lambd: float) -> np.ndarray:
    """``x - lambd if x > lambd, x + lambd if x < -lambd, else x * 0`` (torch's kernel:
    ``x * 0`` keeps the sign of a zero, e.g. -0.0 at x = -lambd)."""
    return np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, x * 0))


softshrink_backward = shrink_backward


def threshold(x: np.ndarray, threshold: float, value: float) -> np.ndarray:
    """``x if x > threshold else value``."""
    return np.where(x > threshold, x, np.asarray(value, dtype=x.dtype))


def threshold_backward(grad: np.ndarray, x: np.ndarray, threshold: float) -> np.ndarray:
    """torch's ``threshold_backward(grad, x, threshold)``: ``0 if x <= threshold else
    grad``; the constant side owns the kink."""
    return np.where(x <= threshold, 0, grad)


def rrelu_mean_slope(lower: float, upper: float) -> float:
    """The slope of RReLU outside training: ``(lower + upper) / 2``."""
    return (lower + upper) / 2


def rrelu(x: np.ndarray, noise: np.ndarray | None, lower: float, upper: float) -> np.ndarray:
    """Training (``noise`` given): ``x * noise`` where noise is the drawn slope for x <= 0
    and 1 elsewhere (torch's ``rrelu_with_noise``, which writes ``x`` itself for x > 0).
    Eval (``noise is None``): ``leaky_relu(x, (lower + upper) / 2)``."""
    if noise is None:
        return leaky_relu(x, rrelu_mean_slope(lower, upper))
    return np.where(x <= 0, x * noise, x)


def rrelu_backward(grad: np.ndarray, x: np.ndarray, noise: np.ndarray | None, lower: float,
                   upper: float) -> np.ndarray:
    """torch's ``rrelu_with_noise_backward``: ``grad * noise`` in training when
    ``upper - lower > 1e-6``, else ``leaky_relu_backward(grad, x, (lower + upper) / 2)``
    (the slope owns x = 0 in both: the noise holds a drawn slope wherever x <= 0)."""
    if noise is not None and upper - lower > RRELU_MIN_RANGE:
        return grad * noise
    return leaky_relu_backward(grad, x, rrelu_mean_slope(lower, upper))
