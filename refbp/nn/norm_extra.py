"""``RMSNorm`` and ``LocalResponseNorm``, as torch's (no torch).

RMSNorm rescales every row by its root mean square (no centring, no bias); LocalResponseNorm
divides every activation by a power of the mean square of its neighbouring channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array, param_dtype
from refbp.nn.layernorm import check_normalized_input, normalized_shape_tuple
from refbp.nn.module import Cache, Module, Parameter


# -- RMSNorm -------------------------------------------------------------------------------
def rms_norm_rows(x2: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``xhat = x * r`` and ``r = 1 / sqrt(mean(x^2) + eps)`` (shape (M, 1)) of rows (M, D)."""
    r = 1.0 / np.sqrt(np.mean(x2 * x2, axis=1, keepdims=True) + x2.dtype.type(eps))
    return x2 * r, r


def rms_norm_rows_backward(g2: np.ndarray, xhat: np.ndarray, r: np.ndarray,
                           weight: np.ndarray | None) -> np.ndarray:
    """dL/dx of ``y = x r w``: with ``dxhat = g w`` and ``dr/dx_i = -r^3 x_i / D``,
    ``dx = r (dxhat - xhat * mean_D(dxhat * xhat))``."""
    dxhat = g2 if weight is None else g2 * weight
    return r * (dxhat - xhat * np.mean(dxhat * xhat, axis=1, keepdims=True))


class RMSNorm(Module):
    r"""Root-mean-square normalisation over the trailing ``normalized_shape``, as
    ``torch.nn.RMSNorm``.

    Forward, for every row x (the trailing dimensions flattened to D)::

        r = 1 / sqrt(mean(x^2) + eps),   y = x * r * weight

    ``eps=None`` is the machine epsilon of the input's dtype (torch's default,
    ``torch.finfo(x.dtype).eps``).

    Backward: ``dL/dweight = sum over rows of g * x r``; with ``dxhat = g * weight`` and
    ``d r / d x_i = -r^3 x_i / D``: ``dL/dx = r (dxhat - xhat mean(dxhat xhat))``,
    ``xhat = x r`` (LayerNorm's projection without the centring term).

    Parameters
    ----------
    normalized_shape : int or sequence of int
    eps : float or None, default None
    elementwise_affine : bool, default True
        Learn ``weight`` (ones of ``normalized_shape``); there is no bias.
    dtype : float32 or float64, default float64

    Notes
    -----
    Shapes: x (*, *normalized_shape); y the same.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True, *, dtype: Any = None) -> None:
        super().__init__()
        dt = param_dtype(dtype)
        self.normalized_shape = normalized_shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = (Parameter(np.ones(self.normalized_shape, dtype=dt))
                       if elementwise_affine else None)
        self._cache = Cache("RMSNorm")

    def reset_parameters(self) -> None:
        """Set ``weight`` back to ones, as torch's ``reset_parameters``."""
        if self.weight is not None:
            self.weight.data[...] = 1

    def forward(self, x: Any) -> np.ndarray:
        """Scale every row by its inverse root mean square, then by ``weight``."""
        x = as_float_array(x, "RMSNorm input")
        check_normalized_input(x, self.normalized_shape)
        if self.weight is not None and x.dtype != self.weight.dtype:
            raise TypeError(f"RMSNorm input dtype {x.dtype} does not match weight dtype "
                            f"{self.weight.dtype}")
        eps = float(np.finfo(x.dtype).eps) if self.eps is None else float(self.eps)
        d = int(np.prod(self.normalized_shape))
        xhat, r = rms_norm_rows(x.reshape(-1, d), eps)
        y2 = xhat if self.weight is None else xhat * self.weight.data.reshape(-1)
        self._cache.save(xhat=xhat, r=r, shape=x.shape)
        return y2.reshape(x.shape)

    def backward(self, grad_out: Any) -> np.ndarray:
        """Input gradient; accumulates the gradient of ``weight``."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["shape"], "RMSNorm")
        xhat = c["xhat"]
        g2 = g.reshape(xhat.shape).astype(xhat.dtype, copy=False)
        w = None if self.weight is None else self.weight.data.reshape(-1)
        if self.weight is not None:
            self.weight.accumulate(np.sum(g2 * xhat, axis=0).reshape(self.weight.shape),
                                   owned=True)
        return rms_norm_rows_backward(g2, xhat, c["r"], w).reshape(c["shape"])

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


# -- LocalResponseNorm ---------------------------------------------------------------------
def _window_sum(v: np.ndarray, size: int, adjoint: bool) -> np.ndarray:
    """Sum over the channel window of ``size`` (``size // 2`` before, ``(size - 1) // 2``
    after, zero padded), along axis 1; ``adjoint``: the transposed window (``(size - 1) // 2``
    before, ``size // 2`` after)."""
    before, after = size // 2, (size - 1) // 2
    if adjoint:
        before, after = after, before
    c = v.shape[1]
    pad = [(0, 0)] * v.ndim
    pad[1] = (before, after)
    vp = np.pad(v, pad)
    out = np.zeros_like(v)
    for k in range(size):
        out += vp[:, k:k + c]
    return out


def local_response_norm(x: np.ndarray, size: int, alpha: float, beta: float,
                        k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y = x / d`` with ``d = (k + alpha * s)^beta``, ``s`` the mean of ``x^2`` over the
    channel window (padding counted); also ``d`` and ``base = alpha s + k``."""
    s = _window_sum(x * x, size, adjoint=False) / size
    base = s * alpha + k
    d = base ** beta
    return x / d, d, base


def local_response_norm_backward(g: np.ndarray, x: np.ndarray, d: np.ndarray,
                                 base: np.ndarray, size: int, alpha: float,
                                 beta: float) -> np.ndarray:
    """Autograd's terms: ``g / d`` through the numerator; through ``d``:
    ``q = -g (x / d) / d``, ``t = q beta base^(beta - 1) alpha``, spread back over the window
    (``t / size`` to every channel in it) and times ``2 x`` (``d x^2 / dx``)."""
    q = -g * ((x / d) / d)
    t = q * beta * base ** (beta - 1) * alpha
    spread = _window_sum(t / size, size, adjoint=True)
    return g / d + 2 * x * spread


class LocalResponseNorm(Module):
    r"""Local response normalisation across channels, as ``torch.nn.LocalResponseNorm``.

    Forward, for x (N, C, *)::

        s_c = (1/size) sum_{c' = c - size//2}^{c + (size-1)//2} x_{c'}^2     (zero padded)
        y_c = x_c / (k + alpha s_c)^beta

    Backward: with d_c = (k + alpha s_c)^beta,
    dL/dx_j = g_j / d_j - 2 x_j alpha beta / size * sum_{c: j in window(c)} g_c x_c
    (k + alpha s_c)^(beta - 1) / d_c^2, evaluated along torch's autograd path.

    Shapes: (N, C, *) with at least 3 dimensions (torch's ValueError otherwise).
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size = int(size)
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self._cache = Cache("LocalResponseNorm")

    def forward(self, x: Any) -> np.ndarray:
        """``x`` divided by the power of its channel neighbourhood's mean square."""
        x = as_float_array(x, "LocalResponseNorm input")
        if x.ndim < 3:
            raise ValueError(f"Expected 3D or higher dimensionality input (got {x.ndim} "
                             "dimensions)")
        y, d, base = local_response_norm(x, self.size, float(self.alpha), float(self.beta),
                                         float(self.k))
        self._cache.save(x=x, d=d, base=base)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        """d loss / d x (see the class docstring)."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["x"].shape, "LocalResponseNorm")
        return local_response_norm_backward(g, c["x"], c["d"], c["base"], self.size,
                                            float(self.alpha), float(self.beta))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
