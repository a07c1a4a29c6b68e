"""LinearCrossEntropyLoss: a linear map to logits and the cross-entropy, in one loss, with
torch's names, arguments, defaults, parameter layout and errors.

The cross-entropy is :class:`refbp.nn.loss.CrossEntropyLoss`'s (maths in
``refbp.nn.functional_cross_entropy``), the linear map a :class:`refbp.nn.linear.Linear`
child named ``linear`` as in torch, so ``state_dict()`` keys match torch's
(``linear.weight``, ``linear.bias``, and the class ``weight`` buffer when given).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn.linear import Linear
from refbp.nn.loss import CrossEntropyLoss


class LinearCrossEntropyLoss(CrossEntropyLoss):
    r"""Cross-entropy of linearly transformed inputs, as ``torch.nn.LinearCrossEntropyLoss``.

    With W = ``linear.weight`` of shape (C * prod(out_features), in_features) and b =
    ``linear.bias`` (``bias=True``; torch's default is no bias), the logits are

        z = reshape(x W^T + b, (*batch, C, *out_features))

    (torch's layout: the flat output of ``linear`` is C-major, the class first) and the loss is
    ``CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing)(z, target)``, i.e.
    torch's reference path of ``F.linear_cross_entropy`` (``options=None``). torch's chunked
    path (``options``, a torch-only argument) computes the same quantity in a different
    summation order, so it agrees to rounding.

    Targets: class indices of shape (), (N,) or (N, *out_features), or class probabilities of
    the logits' shape (torch's rule: a target of the logits' shape holds probabilities).
    ``ignore_index=None`` (torch's default) means -100 for index targets; any other value
    with probability targets raises RuntimeError, as in torch.

    Backward: with G = dL/dz from the cross-entropy (for index targets G_ij = g_i (p_ij
    sum_c A_ic - A_ij), see :class:`~refbp.nn.loss.CrossEntropyLoss`) flattened back to
    (M, C * prod(out_features)), the chain rule through z = x W^T + b gives

        dL/dx = G W,   dL/dW = G^T x,   dL/db = sum_m G_m

    (``backward`` returns dL/dx and accumulates the other two into ``linear.weight.grad``
    and ``linear.bias.grad``, as every refbp layer does: call ``backward`` once per forward
    pass). Probability targets have a gradient too (``grad("target")``): the logits'
    cross-entropy's, dL/dy_ic = -g_i (1 - eps) w_c logp_ic / D, since y does not enter z.

    Shapes: input (in_features,) or (N, in_features) (out_features needs the batched form);
    'none' returns the index target's shape. Errors as torch's (RuntimeError): a class
    weight not of shape (C,), label_smoothing outside [0, 1], an input of another rank, a
    last dimension other than in_features, an unbatched input with out_features.
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (),
                 bias: bool = False, dtype: Any = None, reduction: str = "mean",
                 weight: Any = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0,
                 generator: np.random.Generator | None = None) -> None:
        w = None if weight is None else np.asarray(weight)
        if w is not None and w.shape != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got "
                               f"{tuple(w.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got "
                               f"{label_smoothing}")
        super().__init__(w, -100 if ignore_index is None else ignore_index, reduction,
                         label_smoothing)
        # torch keeps None (-100 for class indices, see _ignored)
        self.ignore_index = None if ignore_index is None else int(ignore_index)  # type: ignore[assignment]
        self.num_classes = int(num_classes)
        self.out_features = tuple(int(d) for d in out_features)
        self.linear = Linear(in_features, math.prod(self.out_features, start=self.num_classes),
                             bias=bias, dtype=dtype, generator=generator)

    @property
    def in_features(self) -> int:
        """The constructor argument (torch keeps it on ``linear`` only)."""
        return self.linear.in_features

    @property
    def bias(self) -> bool:
        """Whether ``linear`` has a bias: the constructor argument (torch keeps it on
        ``linear`` only)."""
        return self.linear.bias is not None

    def _ignored(self) -> int:
        return -100 if self.ignore_index is None else self.ignore_index

    def _logits_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The logits' shape for input ``x``, after torch's checks of the input."""
        if x.ndim not in (1, 2):
            raise RuntimeError(f"expected input with dimensionality 1 or 2, got {x.ndim}")
        n_in = self.linear.in_features
        if x.shape[-1] != n_in:
            raise RuntimeError("expected equal input and linear_weight last dimensions "
                               f"(in_features), got {x.shape[-1]} and {n_in}, respectively")
        if self.out_features and x.ndim == 1:
            shape = (self.num_classes, *self.out_features, n_in)
            raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {shape} "
                               f"requires batched input, (N, {n_in}), got unbatched input "
                               f"with shape {x.shape}")
        return (*x.shape[:-1], self.num_classes, *self.out_features)

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        x = as_float_array(input, "LinearCrossEntropyLoss input")
        shape = self._logits_shape(x)
        t = np.asarray(target)
        if t.shape == shape and self.ignore_index is not None:
            raise RuntimeError("ignore_index cannot be specified when target contains "
                               "probabilities")
        z = self.linear(x)
        value, cache = super()._forward(z.reshape(shape), t)
        return value, {**cache, "flat": z.shape}

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        grad_z = super()._backward(g, cache)
        return self.linear.backward(grad_z.reshape(cache["flat"]))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}")
