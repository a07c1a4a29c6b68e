"""Activation layers with torch's names, constructor arguments and kink conventions.

The math lives in ``refbp.nn.functional_act``; the classes here validate the input, cache what
the backward pass needs and check the upstream gradient. Shared contract:

- ``forward(x)``: ``x`` float32 or float64 of any shape (0-d, no batch dimension, ``(N, *)``);
  the output has ``x``'s shape and dtype. Integer/bool inputs raise ``TypeError``.
- ``backward(grad_out)``: ``grad_out`` must have the output's shape (``ValueError`` otherwise);
  returns ``dL/dx`` with ``x``'s shape and dtype. Before any forward: ``RuntimeError``.
- ``inplace`` arguments are stored (the torch mirror reads them) but refbp never writes into
  its input.

Every elementwise layer has a diagonal Jacobian, so by the chain rule
``dL/dx_i = dL/dy_i * f'(x_i)``; each docstring gives ``f'`` and which side of a kink owns it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import functional_act as F
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter


class _Activation(Module):
    """Plumbing shared by every activation: validation, the forward cache, grad_out checks."""

    def __init__(self) -> None:
        super().__init__()
        self._cache = Cache(type(self).__name__)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, f"{type(self).__name__} input")
        y = np.asarray(self._forward(x), dtype=x.dtype)
        self._cache.save(x=x, y=y)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        cache = self._cache.load()
        x, y = cache["x"], cache["y"]
        name = type(self).__name__
        g = as_float_array(grad_out, f"{name} grad_out")
        if g.shape != y.shape:
            raise ValueError(
                f"{name} grad_out must have the output shape {y.shape}, got {g.shape}"
            )
        return np.asarray(self._backward(g.astype(x.dtype, copy=False), x, y), dtype=x.dtype)


class _CoreActivation(_Activation):
    """An activation that is a pair ``f(x)`` / ``f_backward(grad, x)`` of a functional core,
    set by the subclass as ``_f`` and ``_df`` (static methods)."""

    _f: ClassVar[staticmethod[[np.ndarray], np.ndarray]]
    _df: ClassVar[staticmethod[[np.ndarray, np.ndarray], np.ndarray]]

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return type(self)._f(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return type(self)._df(grad, x)


def _inplace_repr(inplace: bool, sep: str = "") -> str:
    return f"{sep}inplace=True" if inplace else ""


class ReLU(_Activation):
    r"""Rectified linear unit, as ``torch.nn.ReLU``.

    Forward
    -------
    y = max(x, 0)

    Backward
    --------
    f'(x) = 1 for x > 0, 0 for x < 0, so dL/dx = dL/dy * [y > 0]. At the kink x = 0 the
    subgradient 0 is used, as torch does (its ``threshold_backward`` tests the *output*
    ``y <= 0``).

    Shapes: x (*), y (*), any shape including 0-d.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.relu(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.relu_backward(grad, y)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return _inplace_repr(self.inplace)


class LeakyReLU(_Activation):
    r"""Leaky ReLU with slope ``negative_slope`` for negative inputs, as ``torch.nn.LeakyReLU``.

    Forward
    -------
    y = x if x > 0 else negative_slope * x

    Backward
    --------
    f'(x) = 1 for x > 0 and ``negative_slope`` for x < 0, so
    dL/dx = dL/dy * (1 if x > 0 else negative_slope). At x = 0 the slope branch is used
    (subgradient ``negative_slope``), as torch's ``leaky_relu_backward`` (``x > 0 ? g : g*s``).

    Shapes: x (*), y (*).
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.leaky_relu(x, float(self.negative_slope))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(grad, x, float(self.negative_slope))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"negative_slope={self.negative_slope}{_inplace_repr(self.inplace, ', ')}"


class ELU(_Activation):
    r"""Exponential linear unit, as ``torch.nn.ELU``.

    Forward
    -------
    y = x if x > 0 else alpha * (exp(x) - 1)   (computed with ``expm1`` for accuracy near 0)

    Backward
    --------
    f'(x) = 1 for x > 0 and alpha * exp(x) for x < 0, so
    dL/dx = dL/dy * (1 if x > 0 else alpha * exp(x)). torch's ``elu_backward`` (for a
    non-inplace ELU) differentiates from the input and assigns x = 0 to the exponential
    branch, so ELU'(0) = alpha: the left derivative, which equals the right one only for
    alpha = 1 (where ELU is C^1 and x = 0 is not a kink).

    Shapes: x (*), y (*).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.elu(x, float(self.alpha))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.elu_backward(grad, x, float(self.alpha))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"alpha={self.alpha}{_inplace_repr(self.inplace, ', ')}"


class GELU(_Activation):
    r"""Gaussian error linear unit, as ``torch.nn.GELU``.

    Forward
    -------
    approximate='none':  y = x * Phi(x),  Phi(x) = 0.5 * (1 + erf(x / sqrt 2)), the standard
    normal CDF (erf from ``refbp.nn._special``, float64-accurate).

    approximate='tanh':  y = 0.5 * x * (1 + tanh(u)),  u = sqrt(2/pi) * (x + 0.044715 x^3).

    Backward
    --------
    'none': product rule, with Phi' = phi the normal density phi(x) = exp(-x^2/2)/sqrt(2 pi):
    f'(x) = Phi(x) + x * phi(x).

    'tanh': product rule on (0.5 x) * (1 + tanh u), with tanh' = 1 - tanh^2 and
    du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 x^2):
    f'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx  (torch's left/right split).

    Both are smooth, so there is no kink convention. ``approximate`` other than 'none' or
    'tanh' raises ``ValueError`` at construction (torch raises only in forward).

    Shapes: x (*), y (*).
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = F.check_gelu_approximate(approximate)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.gelu(x, self.approximate)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.gelu_backward(grad, x, self.approximate)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    r"""Sigmoid linear unit (swish), as ``torch.nn.SiLU``.

    Forward
    -------
    y = x * s,  s = sigmoid(x) = 1 / (1 + exp(-x))   (overflow-free, see ``Sigmoid``)

    Backward
    --------
    Product rule with s' = s (1 - s): f'(x) = s + x s (1 - s) = s (1 + x (1 - s)), torch's
    form. Smooth everywhere; at x = +-1e4 it gives exactly 1 and 0.

    Shapes: x (*), y (*).
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.silu(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.silu_backward(grad, x)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return _inplace_repr(self.inplace)


class Sigmoid(_Activation):
    r"""Logistic sigmoid, as ``torch.nn.Sigmoid``.

    Forward
    -------
    y = 1 / (1 + exp(-x)), evaluated as e / (1 + e) with e = exp(x) for x < 0, so that
    exp never overflows (sigmoid(-1e4) = 0, sigmoid(1e4) = 1 without warnings).

    Backward
    --------
    dy/dx = exp(-x) / (1 + exp(-x))^2 = y (1 - y), so dL/dx = dL/dy * (1 - y) * y, computed
    from the cached output exactly as torch's ``sigmoid_backward``. Smooth; no kink.

    Shapes: x (*), y (*).
    """

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.sigmoid(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(grad, y)


class Tanh(_Activation):
    r"""Hyperbolic tangent, as ``torch.nn.Tanh``.

    Forward
    -------
    y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))

    Backward
    --------
    d tanh/dx = 1 / cosh^2 x = 1 - tanh^2 x, so dL/dx = dL/dy * (1 - y^2), computed from the
    cached output as torch's ``tanh_backward``. Smooth; no kink.

    Shapes: x (*), y (*).
    """

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.tanh(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.tanh_backward(grad, y)


class Softplus(_Activation):
    r"""Smooth ReLU, as ``torch.nn.Softplus``.

    Forward
    -------
    y = log(1 + exp(beta x)) / beta   where beta x <= threshold,
    y = x                             where beta x >  threshold (torch's switch to the linear
                                      asymptote; the jump there is log1p(exp(-threshold))/beta,
                                      ~2e-9 for the default threshold 20).

    Backward
    --------
    d/dx log(1 + exp(beta x)) / beta = exp(beta x) / (1 + exp(beta x)) = sigmoid(beta x),
    so dL/dx = dL/dy * z / (z + 1) with z = exp(beta x), and dL/dx = dL/dy in the linear
    regime (the same switch as the forward, as torch's ``softplus_backward``).

    Shapes: x (*), y (*).
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.softplus(x, float(self.beta), float(self.threshold))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.softplus_backward(grad, x, float(self.beta), float(self.threshold))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(_Activation):
    r"""Softmax along ``dim``, as ``torch.nn.Softmax``.

    Forward
    -------
    y_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j  (along ``dim``; subtracting the
    maximum changes nothing mathematically and keeps exp <= 1, so logits of +-1e4 work).

    ``dim=None`` follows torch's legacy ``_get_softmax_dim``: dim 0 for 0-, 1- and 3-d inputs,
    dim 1 otherwise (torch additionally warns; refbp does not).

    Backward
    --------
    dy_i/dx_k = y_i (delta_ik - y_k), so
    dL/dx_k = sum_i dL/dy_i y_i (delta_ik - y_k) = y_k (dL/dy_k - sum_i dL/dy_i y_i),
    i.e. ``y * (g - sum(g * y, dim))``, computed from the cached output as torch does.

    Shapes: x (*), y (*) (a 0-d input is a one-element softmax: y = 1).
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.softmax(x, self.dim)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.softmax_backward(grad, y, self.dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"dim={self.dim}"


class LogSoftmax(_Activation):
    r"""Logarithm of the softmax along ``dim``, as ``torch.nn.LogSoftmax``.

    Forward
    -------
    y_i = (x_i - m) - log sum_j exp(x_j - m),  m = max_j x_j  (log-sum-exp trick: no overflow
    and no log(0) for logits of +-1e4). ``dim=None`` as in ``Softmax``.

    Backward
    --------
    dy_i/dx_k = delta_ik - softmax(x)_k with softmax(x) = exp(y), so
    dL/dx_k = dL/dy_k - exp(y_k) * sum_i dL/dy_i, i.e. ``g - exp(y) * sum(g, dim)``, from the
    cached output as torch does.

    Shapes: x (*), y (*) (a 0-d input gives y = 0).
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.log_softmax(x, self.dim)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.log_softmax_backward(grad, y, self.dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"dim={self.dim}"


class PReLU(_Activation):
    r"""Leaky ReLU with learnable slopes, as ``torch.nn.PReLU``.

    Parameters
    ----------
    num_parameters : int
        1 (one slope shared by every element, the default) or the number of channels (one
        slope per entry of the input's axis 1).
    init : float
        Initial value of every slope (default 0.25).
    dtype : float32 or float64, optional
        Parameter dtype; refbp defaults to float64 (torch: float32). The input must have it.

    Forward
    -------
    y = x if x > 0 else a_c * x, where a_c is the slope of x's channel c.

    Backward
    --------
    dy/dx = 1 for x > 0 and a_c for x < 0, so dL/dx = dL/dy * (1 if x > 0 else a_c); at
    x = 0 the slope branch is used (subgradient a_c), as torch's ``_prelu_kernel_backward``.
    dy/da_c = 0 for x > 0 and x otherwise, so dL/da_c = sum over the elements of channel c
    of dL/dy * x * [x <= 0] (over every element for one shared slope); at x = 0 that
    element contributes 0 either way.

    Shapes: x (*) for one slope (0-d included); (N, C, *) with C = num_parameters otherwise.
    weight (num_parameters,). y has x's shape.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *,
                 dtype: Any = None) -> None:
        super().__init__()
        if num_parameters < 1:
            raise ValueError(f"PReLU num_parameters must be at least 1, got {num_parameters}")
        self.num_parameters = int(num_parameters)
        self.init = init
        self.weight = Parameter(np.full((self.num_parameters,), init, dtype=_float_dtype(dtype)))

    def reset_parameters(self) -> None:
        """Set every slope back to ``init``, as torch's ``reset_parameters``."""
        self.weight.data[...] = self.init

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"PReLU input dtype {x.dtype} does not match weight dtype {self.weight.dtype}")
        if self.num_parameters != 1:
            channels = x.shape[1] if x.ndim >= 2 else 1
            if x.ndim == 0 or channels != self.num_parameters:
                raise ValueError(
                    f"PReLU has {self.num_parameters} slopes for the input channels (axis 1), "
                    f"but the input has shape {x.shape}")
        return F.prelu(x, self.weight.data)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        grad_in, grad_weight = F.prelu_backward(grad, x, self.weight.data)
        self.weight.accumulate(grad_weight, owned=True)
        return grad_in

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"num_parameters={self.num_parameters}"


class Hardtanh(_Activation):
    r"""Hard tanh: the identity clipped to ``[min_val, max_val]``, as ``torch.nn.Hardtanh``.

    Forward
    -------
    y = min_val if x < min_val, max_val if x > max_val, x otherwise.

    Backward
    --------
    f'(x) = 1 inside (min_val, max_val) and 0 outside, so dL/dx = dL/dy * [min_val < x <
    max_val]. At both kinks the subgradient 0 is used, as torch's ``hardtanh_backward``
    (``x <= min_val || x >= max_val ? 0 : grad``).

    ``max_val <= min_val`` raises ``ValueError`` at construction (torch: AssertionError). torch's
    deprecated keyword names ``min_value``/``max_value`` are not taken.

    Shapes: x (*), y (*).
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0,
                 inplace: bool = False) -> None:
        super().__init__()
        if max_val <= min_val:
            raise ValueError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.hardtanh(x, float(self.min_val), float(self.max_val))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.hardtanh_backward(grad, x, float(self.min_val), float(self.max_val))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                f"{_inplace_repr(self.inplace, ', ')}")
