"""Piecewise activations: ReLU6, Hardswish, Hardsigmoid, Hardshrink, Softshrink, Threshold,
RReLU, with torch's names, arguments and kink conventions.

The maths lives in ``refbp.nn.functional_act_hard``; the contract (shapes, dtypes, errors)
is that of ``refbp.nn.activation``. Every Jacobian is diagonal: ``dL/dx = dL/dy * f'(x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import functional_act_hard as F
from refbp.nn import init
from refbp.nn.activation import Hardtanh, _Activation, _CoreActivation, _inplace_repr
from refbp.nn.dropout import random_slopes


class ReLU6(Hardtanh):
    r"""ReLU capped at 6, as ``torch.nn.ReLU6`` (a ``Hardtanh(0, 6)``, as in torch).

    Forward
    -------
    y = min(max(x, 0), 6)

    Backward
    --------
    f'(x) = 1 on (0, 6) and 0 outside, so dL/dx = dL/dy * [0 < x < 6]; both kinks (0 and 6)
    get the subgradient 0, as torch's ``hardtanh_backward``.

    Shapes: x (*), y (*).
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return _inplace_repr(self.inplace)


class _InplaceActivation(_CoreActivation):
    """A core-pair activation whose only argument is torch's ``inplace`` flag."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return _inplace_repr(self.inplace)


class Hardswish(_InplaceActivation):
    r"""Hard swish, as ``torch.nn.Hardswish`` (MobileNetV3).

    Forward
    -------
    y = x * min(max(x + 3, 0), 6) / 6: 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between.

    Backward
    --------
    f'(x) = 0 for x < -3, (2x + 3) / 6 = x / 3 + 1/2 on (-3, 3), 1 for x > 3. At the kinks
    the outer pieces are used, as torch's ``hardswish_backward``: f'(-3) = 0 (the middle
    formula would give -1/2) and f'(3) = 1 (it would give 3/2).

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.hardswish)
    _df = staticmethod(F.hardswish_backward)


class Hardsigmoid(_InplaceActivation):
    r"""Hard sigmoid, as ``torch.nn.Hardsigmoid``.

    Forward
    -------
    y = min(max(x + 3, 0), 6) / 6: 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between.

    Backward
    --------
    f'(x) = 1/6 on (-3, 3) and 0 outside; both kinks get 0, as torch's
    ``hardsigmoid_backward``. torch multiplies by one sixth rounded to float32 even in
    float64 (0.1666666716337204, a relative 3e-8 above 1/6); refbp uses the same constant,
    so the float64 gradient agrees with torch's, not with 1/6.

    Shapes: x (*), y (*).
    """

    _f = staticmethod(F.hardsigmoid)
    _df = staticmethod(F.hardsigmoid_backward)


class _Shrink(_Activation):
    """Hardshrink and Softshrink: the ``lambd`` argument and its check."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        if not lambd >= 0:
            raise ValueError(f"lambda must be greater or equal to 0, but found to be {lambd}")
        self.lambd = lambd

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.shrink_backward(grad, x, float(self.lambd))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    r"""Hard shrinkage, as ``torch.nn.Hardshrink``.

    Forward
    -------
    y = 0 for -lambd <= x <= lambd, x otherwise.

    Backward
    --------
    f'(x) = 0 on [-lambd, lambd] and 1 outside: dL/dx = dL/dy * [|x| > lambd]. The flat
    middle owns both kinks (torch's ``shrink_backward``).

    Any ``lambd`` is accepted, as torch's Hardshrink does (a negative one makes the middle
    empty: the identity).

    Shapes: x (*), y (*).
    """

    def __init__(self, lambd: float = 0.5) -> None:
        _Activation.__init__(self)
        self.lambd = lambd

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.hardshrink(x, float(self.lambd))


class Softshrink(_Shrink):
    r"""Soft shrinkage (soft thresholding), as ``torch.nn.Softshrink``.

    Forward
    -------
    y = x - lambd for x > lambd, x + lambd for x < -lambd, 0 otherwise.

    Backward
    --------
    f'(x) = 1 for |x| > lambd and 0 on [-lambd, lambd]: dL/dx = dL/dy * [|x| > lambd]; the
    flat middle owns both kinks (torch's ``shrink_backward``).

    ``lambd < 0`` raises ``ValueError`` at construction (torch raises in forward).

    Shapes: x (*), y (*).
    """

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.softshrink(x, float(self.lambd))


class Threshold(_Activation):
    r"""Thresholding, as ``torch.nn.Threshold``.

    Forward
    -------
    y = x if x > threshold else value.

    Backward
    --------
    f'(x) = 1 for x > threshold and 0 for x <= threshold (the constant side owns the kink),
    as torch's ``threshold_backward`` on the input.

    Shapes: x (*), y (*).
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return F.threshold(x, float(self.threshold), float(self.value))

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.threshold_backward(grad, x, float(self.threshold))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"threshold={self.threshold}, value={self.value}"
                f"{_inplace_repr(self.inplace, ', ')}")


class RReLU(_Activation):
    r"""Randomized leaky ReLU, as ``torch.nn.RReLU``.

    Forward
    -------
    Training: y = x for x > 0 and y = a * x for x <= 0, with one slope a ~ U(lower, upper)
    drawn per non-positive element. The slopes are "noise" like a dropout mask: in a parity
    run torch draws them and refbp is fed the same ones (``refbp.nn.dropout.random_slopes``;
    ``refbp.mirror.dropout`` reads them off stock ``F.rrelu`` under a rewound generator);
    alone refbp draws them from ``generator``.
    Eval: a leaky ReLU with the mean slope (lower + upper) / 2.

    Backward
    --------
    y is linear in x with the fixed factor noise (a where x <= 0, 1 elsewhere), so
    dL/dx = dL/dy * noise; at x = 0 the drawn slope is used. As torch's
    ``rrelu_with_noise_backward``, when ``upper - lower <= 1e-6`` (or in eval mode) the
    backward is the leaky ReLU's with the mean slope (which owns x = 0).

    Parameters
    ----------
    lower, upper : float
        The slope range; ``lower <= upper`` (torch's check), default 1/8 and 1/3.
    inplace : bool
    generator : numpy.random.Generator, optional (refbp only, keyword)
        Draws the slopes when none are fed; ``refbp.nn.init``'s default generator otherwise.

    Notes
    -----
    Shapes: x (*), y (*).
    """

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False,
                 *, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if lower > upper:
            raise ValueError("Lower bound should be less than or equal to the upper bound")
        self.lower = lower
        self.upper = upper
        self.inplace = inplace
        self.generator = generator

    def forward(self, x: Any) -> np.ndarray:
        """``x * noise`` in training (slopes fed or drawn), the mean-slope leaky ReLU else."""
        x = as_float_array(x, "RReLU input")
        noise = None
        if self.training:
            gen = self.generator if self.generator is not None else init.default_generator()
            noise = random_slopes(x, float(self.lower), float(self.upper), gen)
        y = np.asarray(F.rrelu(x, noise, float(self.lower), float(self.upper)), dtype=x.dtype)
        self._cache.save(x=x, y=y, noise=noise)
        return y

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        noise = self._cache.load()["noise"]
        return F.rrelu_backward(grad, x, noise, float(self.lower), float(self.upper))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"lower={self.lower}, upper={self.upper}{_inplace_repr(self.inplace, ', ')}"
