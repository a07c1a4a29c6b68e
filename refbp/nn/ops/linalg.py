r"""Matrix products, reductions and softmax of a graph model.

``linear`` is ``refbp.nn.Linear``'s maths with the weight as an argument (a weight used by
several nodes, a tied embedding, gets the sum of their gradients from the graph); ``softmax``
and ``log_softmax`` are ``refbp.nn.functional_act``'s. Conventions: ``refbp.nn.ops``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp.nn import functional_act as fa
from refbp.nn.ops import dim_index, is_float, unbroadcast

Grads = tuple[Any, ...]


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
           ) -> tuple[Any, Any]:
    """``y = x W^T + b`` for x (..., in), W (out, in), b (out,)."""
    y = x @ weight.T
    if bias is not None:
        y = y + bias
    return y, (x, weight, bias is not None)


def linear_backward(g: np.ndarray, saved: Any) -> Grads:
    """``dx = g W``; ``dW = sum over rows of g^T x`` (rows: every leading index);
    ``db = sum over rows of g`` (the bias is added to every row)."""
    x, w, has_bias = saved
    g2 = g.reshape(-1, w.shape[0])
    gw = g2.T @ x.reshape(-1, w.shape[1]) if is_float(w) else None
    return (g @ w if is_float(x) else None), gw, (g2.sum(axis=0) if has_bias else None)


def addmm(bias: np.ndarray, x: np.ndarray, w: np.ndarray, beta: Any = 1, alpha: Any = 1
          ) -> tuple[Any, Any]:
    """``beta * bias + alpha * (x @ w)`` for matrices x (n, k), w (k, m)."""
    prod = x @ w
    if alpha != 1:
        prod = alpha * prod
    out = bias + prod if beta == 1 else beta * bias + prod
    return out, (bias.shape, x, w, beta, alpha)


def addmm_backward(g: np.ndarray, saved: Any) -> Grads:
    """``d bias = beta g`` (unbroadcast), ``dx = alpha g w^T``, ``dw = alpha x^T g``."""
    sb, x, w, beta, alpha = saved
    ga = g if alpha == 1 else alpha * g
    return (unbroadcast(g if beta == 1 else beta * g, sb), ga @ w.T, x.T @ ga)


def matmul(a: np.ndarray, b: np.ndarray) -> tuple[Any, Any]:
    """``a @ b`` with NumPy's (torch's) rules: batched and broadcast, 1-d operands promoted
    (``mm`` and ``bmm`` are the 2-d and 3-d cases)."""
    return np.matmul(a, b), (a, b)


def matmul_backward(g: np.ndarray, saved: Any) -> Grads:
    """With 1-d operands promoted to matrices (a row ``a``, a column ``b``):
    ``da = g b^T`` and ``db = a^T g``, each summed over its broadcast batch dimensions."""
    a, b = saved
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
    gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
    return ga, gb


def _axes(x: np.ndarray, dim: Any) -> tuple[int, ...]:
    if dim is None or (isinstance(dim, Sequence) and len(dim) == 0):
        return tuple(range(x.ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return tuple(sorted(dim_index(d, x.ndim) for d in dims))


def _as(x: np.ndarray, dtype: Any) -> np.ndarray:
    return x if dtype is None else x.astype(dtype)


def sum_(x: np.ndarray, dim: Any = None, keepdim: bool = False, dtype: Any = None
         ) -> tuple[Any, Any]:
    """The sum over ``dim`` (all dimensions when None or empty)."""
    axes = _axes(x, dim)
    return _as(x, dtype).sum(axis=axes, keepdims=keepdim), (x.shape, x.dtype, axes, keepdim)


def _spread(g: np.ndarray, saved: Any) -> np.ndarray:
    shape, dtype, axes, keepdim = saved
    if not keepdim:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape).astype(dtype)


def sum_backward(g: np.ndarray, saved: Any) -> Grads:
    """Every summed element has derivative 1: ``g`` broadcast back over the summed
    dimensions."""
    return _spread(g, saved), None, None, None


def mean(x: np.ndarray, dim: Any = None, keepdim: bool = False, dtype: Any = None
         ) -> tuple[Any, Any]:
    """The mean over ``dim`` (all dimensions when None or empty)."""
    axes = _axes(x, dim)
    return _as(x, dtype).mean(axis=axes, keepdims=keepdim), (x.shape, x.dtype, axes, keepdim)


def mean_backward(g: np.ndarray, saved: Any) -> Grads:
    """Each of the ``n`` averaged elements has derivative ``1 / n``."""
    shape, _, axes, _ = saved
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    return _spread(g / n, saved), None, None, None


def _along(fn: Any, x: np.ndarray, dim: int, dtype_or_half: Any) -> tuple[Any, Any]:
    """``fn(x, dim)`` after the optional cast (``softmax.int``'s dtype; ``_softmax``'s
    ``half_to_float`` flag changes nothing for float32 and float64)."""
    if dtype_or_half is not None and not isinstance(dtype_or_half, bool):
        with np.errstate(over="ignore"):  # a float64 -1e308 mask becomes -inf, as in torch
            x = x.astype(dtype_or_half)
    y = fn(x, dim)
    return y, (y, dim)


def softmax(x: np.ndarray, dim: int, dtype_or_half: Any = None) -> tuple[Any, Any]:
    """``exp(x) / sum exp(x)`` along ``dim`` (``refbp.nn.functional_act.softmax``)."""
    return _along(fa.softmax, x, dim, dtype_or_half)


def softmax_backward(g: np.ndarray, saved: Any) -> Grads:
    """``y * (g - sum(g * y))`` along ``dim`` (``functional_act.softmax_backward``)."""
    y, dim = saved
    return fa.softmax_backward(g, y, dim), None, None


def log_softmax(x: np.ndarray, dim: int, dtype_or_half: Any = None) -> tuple[Any, Any]:
    """``x - log sum exp(x)`` along ``dim`` (``refbp.nn.functional_act.log_softmax``)."""
    return _along(fa.log_softmax, x, dim, dtype_or_half)


def log_softmax_backward(g: np.ndarray, saved: Any) -> Grads:
    """``g - exp(y) sum(g)`` along ``dim`` (``functional_act.log_softmax_backward``)."""
    y, dim = saved
    return fa.log_softmax_backward(g, y, dim), None, None
