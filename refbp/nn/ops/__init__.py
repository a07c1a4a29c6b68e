r"""The ATen-level ops of a graph model (``refbp.nn.graph_model``): forward and backward maths.

A model captured with ``torch.export`` is a list of ATen operator calls (``aten.add.Tensor``,
``aten.view.default``, ``aten.linear.default``, ...). Each operator refbp supports is declared
once in ``refbp.registry.aten`` and points at a pair of plain functions here:

- ``forward(*args, **kwargs) -> (out, saved)``: the operator's output from NumPy values (the
  ATen arguments, tensors as arrays) and what its backward needs;
- ``backward(g, saved) -> grads``: the vector-Jacobian product, one entry per positional
  argument (a list for a list of tensors, ``None`` for an argument without a gradient:
  integers, sizes, flags, masks). ``g`` is ``dL/d out`` (a list with ``None`` holes for an op
  with several outputs).

Each backward's docstring states the derivation. Layer-level operators (``linear``,
``conv2d``, ``batch_norm``, ``layer_norm``, ``embedding``, ``max_pool2d``, ...) use the maths of
the refbp layer of the same name; so do the ``torch.nn.functional`` losses, ``interpolate``
and ``logsigmoid`` (``refbp.nn.ops.functional``). Nothing here imports torch.

Broadcasting: a binary op broadcasts its operands as torch does; the gradient of an operand
that was broadcast is summed over the broadcast dimensions (:func:`unbroadcast`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dim_index", "unbroadcast"]


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``g`` summed down to ``shape``: the adjoint of broadcasting ``shape`` to ``g.shape``.

    Broadcasting copies a value to every position of the new (leading) or size-1 dimensions,
    so its gradient is the sum of the gradients of the copies.
    """
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def dim_index(dim: int, ndim: int) -> int:
    """A possibly negative dimension as an index in ``[0, ndim)`` (0-d counts as 1-d)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def is_float(x: Any) -> bool:
    """Whether ``x`` is a floating-point array (the values that carry gradients)."""
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"
