r"""The maths of ``CosineSimilarity`` and ``PairwiseDistance`` (no torch), following ATen's
``cosine_similarity`` and ``pairwise_distance`` (``Distance.cpp``) and the autograd formula of
``linalg_vector_norm`` (``norm_backward`` in ``FunctionsManual.cpp``).

Both take two inputs that broadcast against each other as torch broadcasts; the gradient of
an input that was broadcast is summed over the broadcast dimensions (``unbroadcast``).
"""

from __future__ import annotations

import math

import numpy as np

from refbp.nn.ops import dim_index, unbroadcast

__all__ = ["broadcast_pair", "cosine_similarity", "cosine_similarity_backward",
           "pairwise_distance", "pairwise_distance_backward", "vector_norm",
           "vector_norm_backward"]


def broadcast_pair(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x1`` and ``x2`` broadcast to their common shape, with torch's error when they do
    not broadcast (sizes compared from the last dimension)."""
    for i in range(1, min(x1.ndim, x2.ndim) + 1):
        a, b = x1.shape[-i], x2.shape[-i]
        if a != b and 1 not in (a, b):
            dim = max(x1.ndim, x2.ndim) - i
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b "
                               f"({b}) at non-singleton dimension {dim}")
    return np.broadcast_arrays(x1, x2)  # type: ignore[return-value]


def vector_norm(d: np.ndarray, p: float, axis: int, keepdims: bool = False) -> np.ndarray:
    r"""``linalg.vector_norm(d, p, axis)``: ``(sum |d|^p)^(1/p)``; ``p = 0`` counts the
    non-zero entries, ``p = inf`` is ``max |d|``, ``p = -inf`` ``min |d|``."""
    a = np.abs(d)
    if p == 0:
        return np.count_nonzero(d, axis=axis, keepdims=keepdims).astype(d.dtype)
    if math.isinf(p):
        return (a.max if p > 0 else a.min)(axis=axis, keepdims=keepdims)
    if p == 1:
        return a.sum(axis=axis, keepdims=keepdims)
    if p == 2:
        return np.sqrt((d * d).sum(axis=axis, keepdims=keepdims))
    return (a ** d.dtype.type(p)).sum(axis=axis, keepdims=keepdims) ** d.dtype.type(1 / p)


def vector_norm_backward(g: np.ndarray, d: np.ndarray, norm: np.ndarray, p: float,
                         axis: int) -> np.ndarray:
    r"""dL/dd of ``n = vector_norm(d, p, axis)`` (``g``, ``norm`` with the axis kept), as
    torch's ``norm_backward``. From ``n^p = sum |d|^p``: ``dn/dd = sgn(d) |d|^(p-1) / n^(p-1)``,
    written per range of ``p`` as torch writes it:

    - ``p = 0``: no gradient (the count is piecewise constant): zeros;
    - ``p = 1``: ``sgn(d) g``;
    - ``p = 2``: ``g d / n``, 0 where ``n = 0``;
    - ``p = +-inf``: ``sgn(d) g / k`` at the ``k`` entries where ``|d| = n`` (the gradient is
      shared evenly between ties), 0 elsewhere;
    - ``p < 1``: ``sgn(d) |d|^(p-1) g n^(1-p)``, 0 where ``d = 0``;
    - ``1 < p < 2``: ``sgn(d) |d|^(p-1) g / n^(p-1)``, 0 where ``n = 0``;
    - ``p > 2``: ``d |d|^(p-2) g / n^(p-1)``, 0 where ``n = 0``.
    """
    dt = d.dtype.type
    if p == 0:
        return np.zeros_like(d)
    if p == 1:
        return np.sign(d) * g
    if p == 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * np.where(norm == 0, dt(0), d / norm)
    a = np.abs(d)
    if math.isinf(p):
        mask = (a == norm) | np.isnan(a)
        return np.sign(d) * ((g / mask.sum(axis=axis, keepdims=True).astype(d.dtype)) * mask)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p < 1:
            scaled = np.sign(d) * np.where(d == 0, dt(0), a ** dt(p - 1))
            return scaled * g * norm ** dt(1 - p)
        scaled = np.sign(d) * a ** dt(p - 1) if p < 2 else d * a ** dt(p - 2)
        scale = np.where(norm == 0, dt(0), g / norm ** dt(p - 1))
        return scaled * scale


def pairwise_distance(x1: np.ndarray, x2: np.ndarray, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""``(y, d)``: ATen's ``norm(x1 - x2 + eps, p, dim=-1, keepdim)`` (the last dimension of
    the broadcast inputs; a 0-d difference is its own norm) and the difference
    ``d = x1 - x2 + eps`` that backward needs."""
    a, b = broadcast_pair(x1, x2)
    d = a - b + a.dtype.type(eps)
    flat = d.reshape(1) if d.ndim == 0 else d
    y = vector_norm(flat, p, flat.ndim - 1, keepdims=keepdim)
    return y.reshape(d.shape[:-1] + ((1,) if keepdim else ())) if d.ndim else y.reshape(()), d


def pairwise_distance_backward(g: np.ndarray, x1_shape: tuple[int, ...],
                               x2_shape: tuple[int, ...], d: np.ndarray, y: np.ndarray,
                               p: float, keepdim: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""``(dL/dx1, dL/dx2)`` of :func:`pairwise_distance`: the norm's gradient
    (:func:`vector_norm_backward`) is ``dL/dd``; ``dd/dx1 = 1``, ``dd/dx2 = -1``, each summed
    back to its input's shape."""
    flat = d.reshape(1) if d.ndim == 0 else d
    axis = flat.ndim - 1
    kept = flat.shape[:-1] + (1,)
    gd = vector_norm_backward(np.reshape(g, kept), flat, np.reshape(y, kept), p, axis)
    gd = gd.reshape(d.shape)
    return unbroadcast(gd, x1_shape), unbroadcast(-gd, x2_shape)


def cosine_similarity(x1: np.ndarray, x2: np.ndarray, dim: int = 1,
                      eps: float = 1e-8) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""``(y, saved)``: ATen's ``cosine_similarity``, each input divided by its own norm
    first (so ``|y| <= 1`` and nothing overflows)::

        n_i = max(||x_i||_2, eps)  along dim (kept),    y = sum((x1 / n1) * (x2 / n2), dim)
    """
    a, b = broadcast_pair(x1, x2)
    axis = dim_index(dim, a.ndim)
    r1 = np.sqrt((a * a).sum(axis=axis, keepdims=True))
    r2 = np.sqrt((b * b).sum(axis=axis, keepdims=True))
    e = a.dtype.type(eps)
    n1, n2 = np.maximum(r1, e), np.maximum(r2, e)
    u, v = a / n1, b / n2
    y = (u * v).sum(axis=axis)
    return y, {"a": a, "b": b, "u": u, "v": v, "n1": n1, "n2": n2, "r1": r1, "r2": r2,
               "axis": np.asarray(axis)}


def cosine_similarity_backward(g: np.ndarray, saved: dict[str, np.ndarray],
                               x1_shape: tuple[int, ...],
                               x2_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    r"""``(dL/dx1, dL/dx2)`` of :func:`cosine_similarity`.

    With ``gk = g`` unsqueezed along dim: ``dL/du = gk v``, ``dL/dv = gk u``. Through
    ``u = x1 / n1``: ``dL/dx1 = (gk v) / n1`` directly, and ``dL/dn1 = -sum(gk v x1 / n1^2)``.
    torch clamps ``n1 = max(r1, eps)`` under ``no_grad`` on a copy of the norm ``r1``, so the
    norm's gradient is that of the unclamped norm: ``dn1/dx1 = x1 / r1`` (0 where
    ``r1 = 0``), even where the clamp is active. Symmetrically for ``x2``; each gradient is
    then summed back to its input's shape.
    """
    axis = int(saved["axis"])
    gk = np.expand_dims(g, axis)
    out = []
    for x, other, n, r, shape in ((saved["a"], saved["v"], saved["n1"], saved["r1"], x1_shape),
                                  (saved["b"], saved["u"], saved["n2"], saved["r2"], x2_shape)):
        gu = gk * other
        gn = (-gu * x / (n * n)).sum(axis=axis, keepdims=True)
        gx = gu / n + vector_norm_backward(gn, x, r, 2.0, axis)
        out.append(unbroadcast(gx, shape))
    return out[0], out[1]
