r"""Elementwise ops of a graph model: arithmetic, unary functions, selection, dtype casts.

Every function pair follows ``refbp.nn.ops`` (``forward -> (out, saved)``, ``backward(g,
saved) -> grads``). Operands are arrays or Python scalars; broadcasting is NumPy's, which is
torch's, and the gradient of a broadcast operand is summed back to its shape
(:func:`~refbp.nn.ops.unbroadcast`). A 0-d float array meeting a float array of another dtype
is cast to that dtype first, as torch's type promotion treats a dimensionless tensor like a
scalar.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import functional_act as fa
from refbp.nn.ops import is_float, unbroadcast

Grads = tuple[Any, ...]


def _promote(x: Any, y: Any) -> tuple[Any, Any]:
    """torch's rule for a dimensionless operand: it does not widen the other's float dtype."""
    if is_float(x) and is_float(y) and x.dtype != y.dtype:
        if x.ndim == 0 and y.ndim:
            return x.astype(y.dtype), y
        if y.ndim == 0 and x.ndim:
            return x, y.astype(x.dtype)
    return x, y


def _shape(v: Any) -> tuple[int, ...] | None:
    """The shape of an operand that takes a gradient (a float array), else None."""
    return v.shape if is_float(v) else None


def _back(g: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray | None:
    return None if shape is None else unbroadcast(g, shape)


# -- arithmetic ----------------------------------------------------------------------------
def add(x: Any, y: Any, alpha: Any = 1) -> tuple[Any, Any]:
    """``x + alpha * y``."""
    x, y = _promote(x, y)
    return (x + y if alpha == 1 else x + alpha * y), (_shape(x), _shape(y), alpha)


def add_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d/dx = 1``, ``d/dy = alpha``; each summed over the dimensions it was broadcast in."""
    sx, sy, alpha = saved
    return _back(g, sx), _back(g if alpha == 1 else g * alpha, sy)


def sub(x: Any, y: Any, alpha: Any = 1) -> tuple[Any, Any]:
    """``x - alpha * y``."""
    x, y = _promote(x, y)
    return (x - y if alpha == 1 else x - alpha * y), (_shape(x), _shape(y), alpha)


def sub_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d/dx = 1``, ``d/dy = -alpha`` (unbroadcast)."""
    sx, sy, alpha = saved
    return _back(g, sx), _back(-g if alpha == 1 else g * -alpha, sy)


def rsub(x: Any, y: Any, alpha: Any = 1) -> tuple[Any, Any]:
    """``y - alpha * x`` (torch's reversed subtraction, ``1 - x``)."""
    return sub(y, x, alpha)


def rsub_backward(g: np.ndarray, saved: Any) -> Grads:
    """:func:`sub_backward` with the operands swapped back."""
    gy, gx = sub_backward(g, saved)
    return gx, gy


def mul(x: Any, y: Any) -> tuple[Any, Any]:
    """``x * y``."""
    x, y = _promote(x, y)
    return x * y, (x, y)


def mul_backward(g: np.ndarray, saved: Any) -> Grads:
    """Each operand gets ``g`` times the *other* one (the teaching graph's ``Mul``), summed
    over its broadcast dimensions."""
    x, y = saved
    gx = unbroadcast(g * y, x.shape) if is_float(x) else None
    gy = unbroadcast(g * x, y.shape) if is_float(y) else None
    return gx, gy


def div(x: Any, y: Any, rounding_mode: str | None = None) -> tuple[Any, Any]:
    """``x / y`` (true division; ``rounding_mode`` "trunc"/"floor" give integers, no
    gradient)."""
    x, y = _promote(x, y)
    if rounding_mode == "floor":
        return np.floor_divide(x, y), None
    if rounding_mode == "trunc":
        return np.trunc(np.true_divide(x, y)).astype(np.result_type(x, y)), None
    return np.true_divide(x, y), (x, y)


def div_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d/dx = 1 / y``, ``d/dy = -x / y^2`` (from ``d(x y^-1)/dy = -x y^-2``), unbroadcast;
    torch forms the second as ``-g * x / (y * y)``."""
    if saved is None:
        return None, None
    x, y = saved
    gx = unbroadcast(g / y, x.shape) if is_float(x) else None
    gy = unbroadcast(-g * x / (y * y), y.shape) if is_float(y) else None
    return gx, gy


def neg(x: np.ndarray) -> tuple[Any, Any]:
    """``-x``."""
    return -x, None


def neg_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d(-x)/dx = -1``."""
    return (-g,)


def pow_scalar(x: np.ndarray, exponent: Any) -> tuple[Any, Any]:
    """``x ** exponent`` for a scalar exponent."""
    return x ** exponent, (x, exponent)


def pow_scalar_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d x^e / dx = e x^(e-1)`` (torch: ``g * e * x.pow(e - 1)``; 0 for ``e == 0``)."""
    x, e = saved
    if e == 0:
        return (np.zeros_like(g), None)
    return g * (e * x ** (e - 1)), None


# -- unary functions -----------------------------------------------------------------------
def rsqrt(x: np.ndarray) -> tuple[Any, Any]:
    """``1 / sqrt(x)``."""
    y = 1.0 / np.sqrt(x)
    return y, y


def rsqrt_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``d x^(-1/2) / dx = -x^(-3/2) / 2 = -y^3 / 2`` (torch: ``-0.5 * g * y.pow(3)``)."""
    return (-0.5 * g * y ** 3,)


def sqrt(x: np.ndarray) -> tuple[Any, Any]:
    """``sqrt(x)``."""
    y = np.sqrt(x)
    return y, y


def sqrt_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``d sqrt(x) / dx = 1 / (2 sqrt(x)) = 1 / (2 y)``."""
    return (g / (2 * y),)


def exp(x: np.ndarray) -> tuple[Any, Any]:
    """``e^x``."""
    y = np.exp(x)
    return y, y


def exp_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``d e^x / dx = e^x = y``."""
    return (g * y,)


def log(x: np.ndarray) -> tuple[Any, Any]:
    """``ln x``."""
    return np.log(x), x


def log_backward(g: np.ndarray, x: np.ndarray) -> Grads:
    """``d ln x / dx = 1 / x``."""
    return (g / x,)


def cos(x: np.ndarray) -> tuple[Any, Any]:
    """``cos x``."""
    return np.cos(x), x


def cos_backward(g: np.ndarray, x: np.ndarray) -> Grads:
    """``d cos x / dx = -sin x``."""
    return (g * -np.sin(x),)


def sin(x: np.ndarray) -> tuple[Any, Any]:
    """``sin x``."""
    return np.sin(x), x


def sin_backward(g: np.ndarray, x: np.ndarray) -> Grads:
    """``d sin x / dx = cos x``."""
    return (g * np.cos(x),)


def tanh(x: np.ndarray) -> tuple[Any, Any]:
    """``tanh x`` (``refbp.nn.functional_act.tanh``)."""
    y = fa.tanh(x)
    return y, y


def tanh_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``1 - y^2`` (``refbp.nn.functional_act.tanh_backward``)."""
    return (fa.tanh_backward(g, y),)


def sigmoid(x: np.ndarray) -> tuple[Any, Any]:
    """``1 / (1 + e^-x)`` (``refbp.nn.functional_act.sigmoid``)."""
    y = fa.sigmoid(x)
    return y, y


def sigmoid_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``y (1 - y)`` (``refbp.nn.functional_act.sigmoid_backward``)."""
    return (fa.sigmoid_backward(g, y),)


def relu(x: np.ndarray) -> tuple[Any, Any]:
    """``max(x, 0)`` (``refbp.nn.functional_act.relu``)."""
    y = fa.relu(x)
    return y, y


def relu_backward(g: np.ndarray, y: np.ndarray) -> Grads:
    """``g`` where ``y > 0``, else 0: ReLU'(0) = 0 as torch (``functional_act``)."""
    return (fa.relu_backward(g, y),)


def gelu(x: np.ndarray, approximate: str = "none") -> tuple[Any, Any]:
    """``x Phi(x)`` (or its tanh approximation), ``refbp.nn.functional_act.gelu``."""
    return fa.gelu(x, approximate), (x, approximate)


def gelu_backward(g: np.ndarray, saved: Any) -> Grads:
    """``Phi(x) + x phi(x)`` (``refbp.nn.functional_act.gelu_backward`` states both forms)."""
    x, approximate = saved
    return (fa.gelu_backward(g, x, approximate),)


def silu(x: np.ndarray) -> tuple[Any, Any]:
    """``x sigmoid(x)`` (``refbp.nn.functional_act.silu``)."""
    return fa.silu(x), x


def silu_backward(g: np.ndarray, x: np.ndarray) -> Grads:
    """``s (1 + x (1 - s))`` with ``s = sigmoid(x)`` (``functional_act.silu_backward``)."""
    return (fa.silu_backward(g, x),)


# -- selection and casts -------------------------------------------------------------------
def where(cond: np.ndarray, x: Any, y: Any) -> tuple[Any, Any]:
    """``x`` where ``cond`` else ``y`` (broadcast)."""
    x, y = _promote(x, y)
    out = np.where(cond, x, y)
    if not is_float(out):
        return out, None
    return out, (cond, _shape(x), _shape(y))


def where_backward(g: np.ndarray, saved: Any) -> Grads:
    """``g`` flows to ``x`` where ``cond`` holds and to ``y`` elsewhere (unbroadcast)."""
    if saved is None:
        return None, None, None
    cond, sx, sy = saved
    zero = np.zeros((), dtype=g.dtype)
    gx = None if sx is None else unbroadcast(np.where(cond, g, zero), sx)
    gy = None if sy is None else unbroadcast(np.where(cond, zero, g), sy)
    return None, gx, gy


def masked_fill(x: np.ndarray, mask: np.ndarray, value: Any) -> tuple[Any, Any]:
    """``value`` where ``mask`` else ``x`` (the mask broadcasts to ``x``)."""
    v = value.astype(x.dtype) if isinstance(value, np.ndarray) else value
    return np.where(mask, v, x).astype(x.dtype, copy=False), (mask, x.shape, _shape(value))


def masked_fill_backward(g: np.ndarray, saved: Any) -> Grads:
    """``x`` keeps ``g`` outside the mask; a tensor ``value`` gets the sum of ``g`` inside."""
    mask, sx, sv = saved
    zero = np.zeros((), dtype=g.dtype)
    gv = None if sv is None else np.where(mask, g, zero).sum().reshape(sv)
    return np.where(mask, zero, g), None, gv


def to_dtype(x: np.ndarray, dtype: Any = None, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``x`` as ``dtype`` (``aten.to``/``_to_copy``; placement arguments are ignored); for
    ``aten.type_as(x, other)`` the second argument is a tensor: ``x`` as ``other``'s dtype."""
    if isinstance(dtype, np.ndarray):
        dtype = dtype.dtype
    dt = np.dtype(dtype) if dtype is not None else x.dtype
    with np.errstate(over="ignore", invalid="ignore"):  # out of range -> inf, as torch casts
        return x.astype(dt, copy=True), x.dtype


def to_device(x: np.ndarray, device: Any = None, dtype: Any = None, *args: Any,
              **kwargs: Any) -> tuple[Any, Any]:
    """``aten.to.device``: the device is ignored (NumPy computes on the CPU), the dtype kept
    or changed as :func:`to_dtype`."""
    return to_dtype(x, dtype)


def to_dtype_backward(g: np.ndarray, dtype: Any) -> Grads:
    """A cast is the identity on values: the gradient is cast back to the input's dtype (none
    for an integer input)."""
    return (g.astype(dtype) if np.dtype(dtype).kind == "f" else None,)
