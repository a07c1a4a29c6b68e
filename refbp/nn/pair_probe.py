"""``PairProbe``: a two-input layer on the two halves of one input, for a ``Sequential``.

A scenario's model is a chain of layers applied to one input; ``CosineSimilarity``,
``PairwiseDistance``, ``Bilinear`` and the transformer decoder layers take two. The probe fixes
everything but the input at construction: ``x`` is cut along its last axis at ``split`` into
``x1 = x[..., :split]`` and ``x2 = x[..., split:]``, and the layer ``op`` (a ``refbp.nn`` class
name, built from ``options``) runs on them with the fixed keyword arguments ``kwargs`` (masks
as nested lists, flags). Backward concatenates ``dL/dx1`` and ``dL/dx2`` along the last axis:
the two halves are disjoint slices of ``x``. The parameters are those of the child ``op``
(``state_dict`` keys ``op.weight``, ...). Its torch twin (``refbp.mirror.pairs``) is the stock
``torch.nn`` layer of the same name on the same slices.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn.module import Module

__all__ = ["PairProbe", "fixed_argument"]


def fixed_argument(value: Any, dtype: np.dtype) -> Any:
    """A fixed forward argument: a list or array (a mask) as an array, bool kept, numbers in
    ``dtype``; anything else (None, a flag) as it is."""
    if not isinstance(value, list | tuple | np.ndarray):
        return value
    m = np.asarray(value)
    return m if m.dtype == np.bool_ else m.astype(dtype)


class PairProbe(Module):
    """``op(x[..., :split], x[..., split:], **kwargs)`` (see the module docstring).

    Parameters
    ----------
    op : str
        The ``refbp.nn`` class of the two-input layer (``"Bilinear"``).
    split : int
        The width of the first input; the rest of the last axis is the second.
    options : mapping, optional
        The layer's constructor arguments.
    kwargs : mapping, optional
        Fixed keyword arguments of the layer's forward (masks as nested lists, flags).
    dtype, generator :
        Passed to the layer when its constructor takes them.
    """

    def __init__(self, op: str, split: int, options: Mapping[str, Any] | None = None,
                 kwargs: Mapping[str, Any] | None = None, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        from refbp import nn as rnn

        cls = getattr(rnn, op, None)
        if not (inspect.isclass(cls) and issubclass(cls, Module)):
            raise ValueError(f"PairProbe: unknown refbp.nn layer {op!r}")
        self.op_name, self.split = op, int(split)
        self.options, self.kwargs = dict(options or {}), dict(kwargs or {})
        params = inspect.signature(cls).parameters
        extra = {k: v for k, v in (("dtype", dtype), ("generator", generator)) if k in params}
        self.op = cls(**self.options, **extra)
        self._widths: tuple[int, int] = (0, 0)

    def forward(self, x: Any) -> Any:
        """The layer on the two halves of ``x``'s last axis."""
        x = as_float_array(x, "PairProbe input")
        if x.ndim == 0 or not 0 < self.split < x.shape[-1]:
            raise ValueError(f"PairProbe: cannot split an input of shape {x.shape} at "
                             f"{self.split} along its last axis")
        self._widths = (self.split, x.shape[-1] - self.split)
        kw = {k: fixed_argument(v, x.dtype) for k, v in self.kwargs.items()}
        return self.op(x[..., :self.split], x[..., self.split:], **kw)

    def backward(self, grad_out: Any) -> np.ndarray:
        """``[dL/dx1, dL/dx2]`` along the last axis."""
        g1, g2 = self.op.backward(grad_out)
        return np.concatenate([g1, g2], axis=-1)

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return f"op={self.op_name!r}, split={self.split}, kwargs={self.kwargs}"
