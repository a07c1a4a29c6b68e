"""``Linear``, ``Identity`` and ``Flatten``."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import numpy as np

from refbp._checks import as_float_array, check_last_dim, normalize_dim
from refbp._checks import param_dtype as _float_dtype
from refbp.nn import init
from refbp.nn.module import Cache, Module, Parameter


class Linear(Module):
    r"""Affine map :math:`y = x W^T + b`, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last input and output dimension.
    bias : bool
        Whether to learn an additive bias (default True).
    dtype : float32 or float64, optional
        Parameter dtype. refbp defaults to float64 (torch defaults to float32): refbp is a
        float64 reference first.
    generator : numpy.random.Generator, optional
        Random stream for the default initialisation (``refbp.nn.init``'s default otherwise).

    Shapes
    ------
    x : (*, in_features), any number of leading dimensions including none.
    weight : (out_features, in_features), torch's layout. bias : (out_features,).
    y : (*, out_features).

    Initialisation follows torch: ``kaiming_uniform_(weight, a=sqrt(5))``, i.e. U(-k, k) with
    k = 1/sqrt(in_features), and bias ~ U(-k, k).

    Backward
    --------
    With G = dL/dy flattened to (M, out) and X the input flattened to (M, in):

    - dL/dW = G^T X          (out, in)  since y_mi = sum_k x_mk W_ik + b_i
    - dL/db = sum_m G_m      (out,)
    - dL/dx = G W            (M, in), reshaped back to x's shape.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(
                f"in_features and out_features must be non-negative, got {in_features}, "
                f"{out_features}"
            )
        dt = _float_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.bias = Parameter(np.empty((out_features,), dtype=dt)) if bias else None
        self._cache = Cache("Linear")
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Re-draw ``weight`` and ``bias`` from torch's default distribution,
        U(-1/sqrt(in_features), 1/sqrt(in_features)).
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Any) -> np.ndarray:
        """``y = x W^T + b`` for ``x`` of shape (*, in_features); caches ``x`` for backward."""
        x = as_float_array(x, "Linear input")
        check_last_dim(x, self.in_features, "Linear input")
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"Linear input dtype {x.dtype} does not match weight dtype {self.weight.dtype}"
            )
        self._cache.save(x=x)
        # one 2-D GEMM: NumPy's stacked matmul of an N-D float32 array with a transposed
        # weight falls back to a loop without BLAS (~100x slower)
        y = (x.reshape(-1, self.in_features) @ self.weight.data.T).reshape(
            x.shape[:-1] + (self.out_features,))
        if self.bias is not None:
            np.add(y, self.bias.data, out=y)  # y is fresh: no second (*, out) array
        return y

    @overload
    def backward(self, grad_out: np.ndarray, *,
                 input_grad: Literal[True] = True) -> np.ndarray: ...

    @overload
    def backward(self, grad_out: np.ndarray, *, input_grad: bool) -> np.ndarray | None: ...

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Accumulate dL/dW and dL/db; return dL/dx (``None`` with ``input_grad=False``).

        ``input_grad=False`` skips the ``G W`` product when nothing upstream needs the input
        gradient (the first layer of a model fed with data), as torch skips it for an input
        that does not require grad.
        """
        x = self._cache.load()["x"]
        out_shape = x.shape[:-1] + (self.out_features,)
        if grad_out.shape != out_shape:
            raise ValueError(f"Linear grad_out must have shape {out_shape}, got {grad_out.shape}")
        g2 = grad_out.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self.weight.accumulate(g2.T @ x2, owned=True)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0), owned=True)
        return (g2 @ self.weight.data).reshape(x.shape) if input_grad else None

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """``y = x``; backward passes the gradient through unchanged. Any shape."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> np.ndarray:
        """Return ``x`` unchanged."""
        return as_float_array(x, "Identity input")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return ``grad_out`` unchanged."""
        return grad_out


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one, as ``torch.nn.Flatten`` (defaults 1, -1).

    Backward reshapes the gradient back to the cached input shape.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._cache = Cache("Flatten")

    def forward(self, x: Any) -> np.ndarray:
        """Merge dimensions ``start_dim`` to ``end_dim`` of ``x`` into one; caches the input shape.
        """
        x = as_float_array(x, "Flatten input")
        if x.ndim == 0:
            self._cache.save(shape=x.shape)
            return x.reshape(1)
        s = normalize_dim(self.start_dim, x.ndim)
        e = normalize_dim(self.end_dim, x.ndim)
        if s > e:
            raise ValueError(
                f"flatten() has invalid args: start_dim {self.start_dim} cannot come after "
                f"end_dim {self.end_dim}"
            )
        self._cache.save(shape=x.shape)
        new_shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
        return x.reshape(new_shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Reshape ``grad_out`` back to the cached input shape."""
        return grad_out.reshape(self._cache.load()["shape"])

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
