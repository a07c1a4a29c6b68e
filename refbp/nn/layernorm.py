"""``LayerNorm`` with torch's semantics, and its functional core (no torch).

Layer normalisation normalises every sample over its last ``len(normalized_shape)``
dimensions (one mean and one variance per row), unlike batch normalisation, which normalises
every channel over the batch. There are no running statistics: training and eval mode compute
the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp._checks import as_float_array, param_dtype
from refbp.nn.module import Cache, Module, Parameter


def normalized_shape_tuple(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints (an int means a 1-tuple, as torch)."""
    if isinstance(normalized_shape, int | np.integer):
        shape: tuple[Any, ...] = (normalized_shape,)
    elif isinstance(normalized_shape, Sequence | np.ndarray):
        shape = tuple(normalized_shape)
    else:
        shape = (normalized_shape,)
    if any(isinstance(d, bool) or not isinstance(d, int | np.integer) for d in shape):
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got "
                        f"{normalized_shape!r}")
    if any(d <= 0 for d in shape):
        raise ValueError(f"normalized_shape must contain positive sizes, got {shape}")
    return tuple(int(d) for d in shape)


def check_normalized_input(x: np.ndarray, shape: tuple[int, ...]) -> None:
    """The trailing dimensions of ``x`` must be ``shape`` (torch's message)."""
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size {list(x.shape)}"
        )


def layer_norm_rows(x2: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``xhat`` and ``rstd`` of the rows of ``x2`` (M, D).

    ``mu = mean(x)``, ``var = mean((x - mu)^2)`` (biased, as torch), ``rstd = 1 / sqrt(var +
    eps)``, ``xhat = (x - mu) * rstd``; ``rstd`` has shape (M, 1).
    """
    xc = x2 - x2.mean(axis=1, keepdims=True)
    var = (xc * xc).mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + x2.dtype.type(eps))
    return xc * rstd, rstd


def layer_norm_rows_backward(g2: np.ndarray, xhat: np.ndarray, rstd: np.ndarray,
                             weight: np.ndarray | None) -> np.ndarray:
    """dL/dx of ``y = xhat * w + b`` for rows (M, D) normalised over D.

    With ``dxhat = g * w`` and ``xhat_j = (x_j - mu) rstd``, ``dmu/dx_i = 1/D``,
    ``d var/dx_i = 2 (x_i - mu) / D``::

        dx = rstd * (dxhat - mean_D(dxhat) - xhat * mean_D(dxhat * xhat))

    (the same projection as BatchNorm's, taken along the row instead of the batch).
    """
    dxhat = g2 if weight is None else g2 * weight
    return rstd * (dxhat - dxhat.mean(axis=1, keepdims=True)
                   - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))


class LayerNorm(Module):
    r"""Layer normalisation over the trailing ``normalized_shape``, as ``torch.nn.LayerNorm``.

    Forward, for every row ``x`` (the last ``len(normalized_shape)`` dims flattened to D)::

        mu  = mean(x),  var = mean((x - mu)^2)        (biased variance, as torch)
        y   = (x - mu) / sqrt(var + eps) * weight + bias

    Backward (``g = dL/dy``, ``xhat = (x - mu) / sqrt(var + eps)``):

    - ``dL/dweight = sum over rows of g * xhat``; ``dL/dbias = sum over rows of g``;
    - ``dL/dx``: see :func:`layer_norm_rows_backward` (mean and variance depend on every
      element of the row, so the gradient is projected).

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing shape to normalise over (an int means the last dimension).
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learn ``weight`` (ones, shape ``normalized_shape``) and ``bias`` (zeros).
    bias : bool, default True
        With ``elementwise_affine``, whether ``bias`` exists (torch >= 2.1).
    dtype : float32 or float64, default float64

    Shapes
    ------
    x : (*, *normalized_shape); y : same as x.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *,
                 dtype: Any = None) -> None:
        super().__init__()
        dt = param_dtype(dtype)
        self.normalized_shape = normalized_shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = bool(elementwise_affine)
        shape = self.normalized_shape
        self.weight = Parameter(np.ones(shape, dtype=dt)) if elementwise_affine else None
        self.bias = (Parameter(np.zeros(shape, dtype=dt)) if elementwise_affine and bias
                     else None)
        self._cache = Cache("LayerNorm")

    def forward(self, x: Any) -> np.ndarray:
        """Normalise ``x`` over its last ``len(normalized_shape)`` dimensions and apply the affine
        transform; caches what backward needs (formulas in the class docstring).
        """
        x = as_float_array(x, "LayerNorm input")
        check_normalized_input(x, self.normalized_shape)
        if self.weight is not None and x.dtype != self.weight.dtype:
            raise TypeError(f"LayerNorm input dtype {x.dtype} does not match weight dtype "
                            f"{self.weight.dtype}")
        d = int(np.prod(self.normalized_shape))
        xhat, rstd = layer_norm_rows(x.reshape(-1, d), self.eps)
        y2 = xhat if self.weight is None else xhat * self.weight.data.reshape(-1)
        if self.bias is not None:
            y2 = y2 + self.bias.data.reshape(-1)
        self._cache.save(xhat=xhat, rstd=rstd, shape=x.shape)
        return y2.reshape(x.shape)

    def backward(self, grad_out: Any) -> np.ndarray:
        """Input gradient through the per-sample normalisation; accumulates the gradients of
        ``weight`` and ``bias``.
        """
        c = self._cache.load()
        g = as_float_array(grad_out, "LayerNorm grad_out")
        if g.shape != c["shape"]:
            raise ValueError(f"LayerNorm grad_out must have shape {c['shape']}, got {g.shape}")
        xhat = c["xhat"]
        g2 = g.reshape(xhat.shape).astype(xhat.dtype, copy=False)
        w = None if self.weight is None else self.weight.data.reshape(-1)
        if self.weight is not None:
            self.weight.accumulate((g2 * xhat).sum(axis=0).reshape(self.normalized_shape),
                                   owned=True)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0).reshape(self.normalized_shape), owned=True)
        return layer_norm_rows_backward(g2, xhat, c["rstd"], w).reshape(c["shape"])

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
