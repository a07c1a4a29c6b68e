r"""``Bilinear``: ``y = x1^T A x2 + b`` per output feature, as ``torch.nn.Bilinear``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array, check_same_dtype, grad_out_array
from refbp._checks import param_dtype as _float_dtype
from refbp.nn import init
from refbp.nn.module import Cache, Module, Parameter

__all__ = ["Bilinear"]


class Bilinear(Module):
    r"""Bilinear map of two inputs, as ``torch.nn.Bilinear``.

    Forward, for every leading index (flattened to rows m)::

        y[m, o] = sum_{i, j} x1[m, i] W[o, i, j] x2[m, j] + b[o]

    Backward: y is linear in each of x1, x2 and W separately, so with ``g = dL/dy``::

        dL/dx1[m, i]  = sum_{o, j} g[m, o] W[o, i, j] x2[m, j]
        dL/dx2[m, j]  = sum_{o, i} g[m, o] W[o, i, j] x1[m, i]
        dL/dW[o, i, j] = sum_m g[m, o] x1[m, i] x2[m, j]
        dL/db[o]       = sum_m g[m, o]

    Parameters
    ----------
    in1_features, in2_features, out_features : int
        Sizes of the last dimension of x1, x2 and y.
    bias : bool, default True
    dtype : float32 or float64, optional (refbp only, keyword; default float64)
    generator : numpy.random.Generator, optional (refbp only, keyword)

    Shapes
    ------
    x1 : (*, in1_features), x2 : (*, in2_features) with the same leading dimensions (no
    broadcasting: torch's RuntimeError otherwise); y : (*, out_features).
    weight : (out_features, in1_features, in2_features); bias : (out_features,).

    Initialisation follows torch: weight and bias ~ U(-k, k), ``k = 1/sqrt(in1_features)``.
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if min(in1_features, in2_features, out_features) < 0:
            raise ValueError("in1_features, in2_features and out_features must be "
                             f"non-negative, got {in1_features}, {in2_features}, "
                             f"{out_features}")
        dt = _float_dtype(dtype)
        self.in1_features, self.in2_features = int(in1_features), int(in2_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), dtype=dt))
        self.bias = Parameter(np.empty((out_features,), dtype=dt)) if bias else None
        self._cache = Cache("Bilinear")
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Weight and bias ~ U(-1/sqrt(in1_features), 1/sqrt(in1_features)), as torch."""
        if self.in1_features == 0:
            raise ZeroDivisionError("float division by zero")  # torch's 1 / sqrt(0)
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator)

    def _inputs(self, x1: Any, x2: Any) -> tuple[np.ndarray, np.ndarray]:
        a = as_float_array(x1, "Bilinear input1")
        b = as_float_array(x2, "Bilinear input2")
        check_same_dtype(a, b, ("Bilinear input1", "Bilinear input2"))
        if a.ndim != b.ndim:
            raise RuntimeError(f"bilinear(): input dimensions do not match: got {a.ndim} and "
                               f"{b.ndim}")
        for i in range(a.ndim - 1):
            if a.shape[i] != b.shape[i]:
                raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim "
                                   f"{i}: got {a.shape[i]} and {b.shape[i]}")
        for k, x, want in ((1, a, self.in1_features), (2, b, self.in2_features)):
            if x.ndim == 0 or x.shape[-1] != want:
                got = x.shape[-1] if x.ndim else "a 0-d input"
                raise RuntimeError(f"bilinear(): input{k} size does not match weight size: "
                                   f"got {got} but expected {want}")
        return a, b

    def forward(self, x1: Any, x2: Any) -> np.ndarray:
        """``y = x1^T W x2 + b`` per output feature; caches both inputs."""
        a, b = self._inputs(x1, x2)
        w = self.weight.data
        a2, b2 = a.reshape(-1, self.in1_features), b.reshape(-1, self.in2_features)
        y = np.einsum("mi,oij,mj->mo", a2, w, b2, optimize=True)
        if self.bias is not None:
            y = y + self.bias.data
        self._cache.save(a=a2, b=b2, shapes=(a.shape, b.shape))
        return y.reshape(a.shape[:-1] + (self.out_features,))

    def backward(self, grad_out: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(dL/dx1, dL/dx2)``; accumulates ``weight.grad`` and ``bias.grad``."""
        c = self._cache.load()
        (sa, sb), a, b = c["shapes"], c["a"], c["b"]
        g = grad_out_array(grad_out, sa[:-1] + (self.out_features,), "Bilinear")
        g2 = g.reshape(-1, self.out_features)
        w = self.weight.data
        self.weight.accumulate(np.einsum("mo,mi,mj->oij", g2, a, b, optimize=True),
                               owned=True)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0), owned=True)
        ga = np.einsum("mo,oij,mj->mi", g2, w, b, optimize=True)
        gb = np.einsum("mo,oij,mi->mj", g2, w, a, optimize=True)
        return ga.reshape(sa), gb.reshape(sb)

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
