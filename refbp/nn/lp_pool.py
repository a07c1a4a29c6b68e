r"""Power-average pooling, as torch's ``LPPool1d/2d/3d`` (no torch).

torch composes it from other ops (``torch.nn.functional.lp_pool{1,2,3}d``), and so does refbp,
with the same roundings: for a window :math:`W` of :math:`K` elements (no padding) and
:math:`p = ` ``norm_type``,

.. math::

    u = x^p, \quad m = \mathrm{avg}_W(u), \quad t = \mathrm{sign}(m)\,\mathrm{relu}(|m|),
    \quad v = K t, \quad y = v^{1/p} = \Big(\sum_{i \in W} x_i^p\Big)^{1/p}.

Backward, by the chain rule through the same steps (torch's autograd formulas):

- :math:`\partial y/\partial v = \tfrac1p v^{1/p - 1}` (torch forms ``(1/p) * v.pow(1/p - 1)``),
  times :math:`K`;
- through :math:`t`: ``sign(m)`` times the gradient, zeroed where ``relu(|m|) = 0`` (a window
  whose powers sum to zero gets a zero gradient, not the infinite :math:`0^{1/p - 1}`), times
  ``sgn(m)`` again (the derivative of ``|m|``); ``sign`` itself has derivative 0;
- the average pooling's backward spreads :math:`g_m / K` over the window;
- :math:`\partial u/\partial x = p\,x^{p-1}`.

``norm_type = inf`` is ``max_pool(|x|)`` and ``-inf`` is ``-max_pool(-|x|)``, as in torch; the
gradient goes to the routed element times ``sgn(x)``. A negative input with a fractional
``norm_type`` gives NaN, as in torch. Powers follow torch's special cases (``x * x`` for 2,
``x * x * x`` for 3, ``sqrt`` for 1/2, ``1 / sqrt`` for -1/2, ``1 / x`` for -1, ``1 / (x * x)``
for -2; else ``pow``), so that float64 and float32 round where torch rounds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn.module import Cache, Module
from refbp.nn.pooling import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    _tuple,
)


def power(x: np.ndarray, e: float) -> np.ndarray:
    """``x ** e`` as torch's ``pow(Tensor, Scalar)`` kernel forms it (special cases above);
    the exponent is compared in double precision and applied in the dtype of ``x``. A negative
    base with a fractional exponent gives NaN and zero with a negative one inf, silently, as
    in torch."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _power(x, e)


def _power(x: np.ndarray, e: float) -> np.ndarray:
    one = x.dtype.type(1)
    if e == 0:
        return np.ones_like(x)
    if e == 1:
        return x.copy()
    if e == 0.5:
        return np.sqrt(x)
    if e == -0.5:
        return one / np.sqrt(x)
    if e == -1:
        return one / x
    if e == 2:
        return x * x
    if e == 3:
        return x * x * x
    if e == -2:
        return one / (x * x)
    return np.power(x, x.dtype.type(e))


_AVG = {1: AvgPool1d, 2: AvgPool2d, 3: AvgPool3d}
_MAX = {1: MaxPool1d, 2: MaxPool2d, 3: MaxPool3d}


class _LPPoolNd(Module):
    """Shared forward and backward (formulas in the module docstring)."""

    _spatial = 2

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode
        self._cache = Cache(type(self).__name__)

    def _window_size(self) -> int:
        n = self._spatial
        fn = f"avg_pool{n}d"
        return math.prod(_tuple(self.kernel_size, n, "kernel_size", fn))

    def forward(self, x: Any) -> np.ndarray:
        """``(sum over the window of x^p)^(1/p)``; caches what backward needs."""
        p = float(self.norm_type)
        n = self._spatial
        x = as_float_array(x, f"{type(self).__name__} input")
        if math.isinf(p):
            pool = _MAX[n](self.kernel_size, self.stride, 0, 1, ceil_mode=self.ceil_mode)
            a = np.abs(x) if p > 0 else -np.abs(x)
            y = pool(a)
            self._cache.save(x=x, pool=pool, out_shape=y.shape)
            return y if p > 0 else -y
        avg = _AVG[n](self.kernel_size, self.stride, 0, self.ceil_mode)
        m = avg(power(x, p))
        k = x.dtype.type(self._window_size())
        s = np.sign(m)
        r = np.maximum(np.abs(m), m.dtype.type(0))
        v = (s * r) * k
        y = power(v, 1.0 / p)
        self._cache.save(x=x, pool=avg, s=s, r=r, v=v, k=k, out_shape=y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x (derivation in the module docstring)."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["out_shape"], type(self).__name__)
        x = c["x"]
        p = float(self.norm_type)
        if math.isinf(p):
            ga = c["pool"].backward(g if p > 0 else -g)
            return (ga if p > 0 else -ga) * np.sign(x)
        dt = x.dtype.type
        e = 1.0 / p
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 = NaN, as in torch
            gv = g * (dt(e) * power(c["v"], e - 1.0))
            gt = gv * c["k"]
            gm = np.where(c["r"] <= 0, dt(0), gt * c["s"]) * c["s"]
            gu = c["pool"].backward(gm)
            return gu * (dt(p) * power(x, p - 1.0))

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    r"""1-D power-average pooling, as ``torch.nn.LPPool1d``: ``(sum_W x^p)^(1/p)`` over
    windows of ``kernel_size`` (stride: the kernel size by default; no padding).

    x : (N, C, L) or (C, L). Formulas and backward in the module docstring.
    """

    _spatial = 1


class LPPool2d(_LPPoolNd):
    r"""2-D power-average pooling, as ``torch.nn.LPPool2d``; ``kernel_size``, ``stride``:
    int or (int, int). x : (N, C, H, W) or (C, H, W). Formulas in the module docstring."""


class LPPool3d(_LPPoolNd):
    r"""3-D power-average pooling, as ``torch.nn.LPPool3d``; ``kernel_size``, ``stride``:
    int or a triple. x : (N, C, D, H, W) or (C, D, H, W). Formulas in the module docstring."""

    _spatial = 3
