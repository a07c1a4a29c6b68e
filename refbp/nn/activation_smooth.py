"""Smooth activations: Softsign, Tanhshrink, LogSigmoid, SELU, CELU, Mish, GLU, Softmin and
Softmax2d, with torch's names and arguments.

The maths lives in ``refbp.nn.functional_act_smooth``; the contract (shapes, dtypes, errors)
is that of ``refbp.nn.activation``.
"""

from __future__ import annotations

import numpy as np

from refbp.nn import functional_act_smooth as F
from refbp.nn.activation import _Activation, _CoreActivation, _inplace_repr
from refbp.nn.activation_hard import _InplaceActivation


class Softsign(_CoreActivation):
    r"""Softsign, as ``torch.nn.Softsign``.

    Forward
    -------
    y = x / (1 + |x|)

    Backward
    --------
    Quotient rule with d|x|/dx = sign(x): f'(x) = 1/(1+|x|) - x sign(x)/(1+|x|)^2
    = 1 / (1 + |x|)^2. refbp sums the two terms as torch's autograd does (torch composes
    softsign in Python), so the cancellation at large |x| rounds the same way. Smooth
    (f'(0) = 1).

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.softsign)
    _df = staticmethod(F.softsign_backward)


class Tanhshrink(_CoreActivation):
    r"""Tanhshrink, as ``torch.nn.Tanhshrink``.

    Forward
    -------
    y = x - tanh(x)

    Backward
    --------
    f'(x) = 1 - (1 - tanh^2 x) = tanh^2 x, summed as autograd's two terms
    ``grad + (-grad) (1 - tanh^2 x)`` (torch composes it in Python). Smooth.

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.tanhshrink)
    _df = staticmethod(F.tanhshrink_backward)


class LogSigmoid(_CoreActivation):
    r"""Log of the logistic sigmoid, as ``torch.nn.LogSigmoid``.

    Forward
    -------
    y = log(1 / (1 + exp(-x))) = min(x, 0) - log1p(exp(-|x|))  (no overflow: exp(-|x|) <= 1).

    Backward
    --------
    f'(x) = 1 - sigmoid(x) = sigmoid(-x). With z = exp(-|x|): sigmoid(-x) = 1 - z/(1+z) for
    x < 0 and z/(1+z) for x >= 0, torch's ``log_sigmoid_backward`` form. Smooth.

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.log_sigmoid)
    _df = staticmethod(F.log_sigmoid_backward)


class SELU(_InplaceActivation):
    r"""Scaled exponential linear unit, as ``torch.nn.SELU``.

    Forward
    -------
    y = scale * x for x > 0, scale * alpha * (exp(x) - 1) for x <= 0, with torch's constants
    alpha = 1.6732632423543772848..., scale = 1.0507009873554804934... (an ELU with a scale).

    Backward
    --------
    f'(x) = scale for x > 0 and scale * alpha * exp(x) for x <= 0. At x = 0 the exponential
    side is used (f'(0) = scale * alpha ~ 1.7581, not scale), as torch's ``elu_backward``.

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.selu)
    _df = staticmethod(F.selu_backward)


class CELU(_Activation):
    r"""Continuously differentiable ELU, as ``torch.nn.CELU``.

    Forward
    -------
    y = x for x > 0, alpha * (exp(x / alpha) - 1) for x <= 0.

    Backward
    --------
    f'(x) = 1 for x > 0 and exp(x / alpha) for x <= 0 (computed as torch's ``elu_backward``
    with input_scale 1/alpha: grad * (1/alpha) * alpha * exp(x/alpha)). Both sides give 1 at
    x = 0: no kink. ``alpha == 0`` raises ``ZeroDivisionError`` at construction (torch: a
    RuntimeError in forward).

    Shapes: x (*), y (*).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if alpha == 0:
            raise ZeroDivisionError("alpha cannot be 0 for CELU")
        self.alpha = alpha
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.celu(x, float(self.alpha))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.celu_backward(grad, x, float(self.alpha))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"alpha={self.alpha}{_inplace_repr(self.inplace, ', ')}"


class Mish(_InplaceActivation):
    r"""Mish, as ``torch.nn.Mish``.

    Forward
    -------
    y = x * tanh(softplus(x)), softplus(x) = log(1 + exp(x)) (torch's kernel has no softplus
    threshold: exp overflows to inf for large x and tanh(inf) = 1).

    Backward
    --------
    Product and chain rule with softplus' = sigmoid and tanh' = 1 - tanh^2:
    f'(x) = t + x * sigmoid(x) * (1 - t^2), t = tanh(softplus(x)). Smooth.

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.mish)
    _df = staticmethod(F.mish_backward)


class GLU(_Activation):
    r"""Gated linear unit, as ``torch.nn.GLU``.

    Forward
    -------
    Split x along ``dim`` into halves a, b (the size there must be even): y = a * sigmoid(b).
    y has x's shape with that size halved.

    Backward
    --------
    dL/da = dL/dy * sigmoid(b), dL/db = dL/dy * a * sigmoid(b) * (1 - sigmoid(b))
    (sigmoid' = s (1 - s)), joined along ``dim``, as torch's ``glu_backward``.

    An odd size along ``dim`` or a 0-d input raises RuntimeError with torch's message.

    Shapes: x (*, 2M, *), y (*, M, *).
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.glu(x, self.dim)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.glu_backward(grad, x, self.dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"dim={self.dim}"


class Softmin(_Activation):
    r"""Softmin along ``dim``, as ``torch.nn.Softmin``: softmax of -x.

    Forward
    -------
    y_i = exp(-x_i + m) / sum_j exp(-x_j + m), m = min_j x_j along ``dim`` (``dim=None``:
    torch's legacy rule, as ``Softmax``).

    Backward
    --------
    With s = softmax(-x) = y: dL/dx = -(y * (g - sum(g * y, dim))): softmax's backward, then
    the sign of the negation.

    Shapes: x (*), y (*).
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.softmin(x, self.dim)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.softmin_backward(grad, y, self.dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"dim={self.dim}"


class Softmax2d(_Activation):
    r"""Softmax over the channels at every location, as ``torch.nn.Softmax2d``.

    Forward
    -------
    y = softmax(x, dim=-3) for x of shape (C, H, W) or (N, C, H, W); other ranks raise
    ``ValueError`` with torch's message.

    Backward
    --------
    Softmax's: dL/dx = y * (g - sum(g * y, dim=-3)).

    Shapes: x (N, C, H, W) or (C, H, W), y the same.
    """

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.softmax2d(x)

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.softmax2d_backward(grad, y)
