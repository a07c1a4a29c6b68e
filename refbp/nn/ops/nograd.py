r"""Ops of a graph model whose values carry no gradient: integer ranges, constants,
comparisons, masks, counts.

Position ids (``arange``), causal masks (``arange``, comparisons, ``cumsum`` over a padding
mask), fresh tensors (``zeros``, ``ones``, ``full``) are computed but are not differentiable
(their inputs are sizes, integers or booleans), so none of these has a backward: the graph
sends no gradient through them. ``dtype`` arguments arrive as NumPy dtypes (the torch side
converts them); placement arguments (``layout``, ``device``, ``pin_memory``) are ignored.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp.nn import init
from refbp.nn.dropout import random_samples
from refbp.nn.ops import dim_index


def _dtype(dtype: Any, default: Any) -> np.dtype:
    return np.dtype(default) if dtype is None else np.dtype(dtype)


def _size(size: Sequence[int] | int) -> tuple[int, ...]:
    return (int(size),) if isinstance(size, int) else tuple(int(s) for s in size)


def arange(*args: Any, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """``arange(end)``, ``arange(start, end)`` or ``arange(start, end, step)``: int64 for
    integer arguments, else the default float dtype (torch's float32) unless ``dtype``."""
    default = np.int64 if all(isinstance(a, int | np.integer) for a in args) else np.float32
    return np.arange(*args, dtype=_dtype(dtype, default)), None


def full(size: Sequence[int], fill_value: Any, *, dtype: Any = None, **placement: Any
         ) -> tuple[Any, Any]:
    """A new tensor of ``size`` filled with ``fill_value`` (torch infers bool, int64 or the
    default float dtype from the value when ``dtype`` is None)."""
    default = (np.bool_ if isinstance(fill_value, bool) else
               np.int64 if isinstance(fill_value, int) else np.float32)
    return np.full(_size(size), fill_value, dtype=_dtype(dtype, default)), None


def zeros(size: Sequence[int], *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """A new tensor of zeros (float32 unless ``dtype``)."""
    return np.zeros(_size(size), dtype=_dtype(dtype, np.float32)), None


def ones(size: Sequence[int], *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """A new tensor of ones (float32 unless ``dtype``)."""
    return np.ones(_size(size), dtype=_dtype(dtype, np.float32)), None


def rand(size: Sequence[int], *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """``U(0, 1)`` draws of ``size`` (float32 unless ``dtype``): the random samples of a
    fractional max pooling (``F.fractional_max_pool2d`` draws them with ``torch.rand``), or
    any ``torch.rand`` of the model's code. In a parity run they are torch's own draws, fed
    like dropout masks (``refbp.nn.dropout.random_samples``); else drawn from refbp's default
    generator (``refbp.nn.init``)."""
    shape = _size(size)
    return random_samples(shape, _dtype(dtype, np.float32), init.default_generator(),
                          "graph rand"), None


def full_like(x: np.ndarray, fill_value: Any, *, dtype: Any = None, **placement: Any
              ) -> tuple[Any, Any]:
    """A tensor of ``x``'s shape (and dtype unless ``dtype``) filled with ``fill_value``."""
    return np.full(x.shape, fill_value, dtype=_dtype(dtype, x.dtype)), None


def zeros_like(x: np.ndarray, *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """``full_like(x, 0)``."""
    return full_like(x, 0, dtype=dtype)


def ones_like(x: np.ndarray, *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """``full_like(x, 1)``."""
    return full_like(x, 1, dtype=dtype)


def scalar_tensor(value: Any, *, dtype: Any = None, **placement: Any) -> tuple[Any, Any]:
    """A 0-d tensor holding ``value``."""
    return np.array(value, dtype=_dtype(dtype, np.float32)), None


def _compare(fn: Any) -> Any:
    def compare(x: Any, y: Any) -> tuple[Any, Any]:
        return fn(x, y), None
    compare.__doc__ = f"Elementwise ``{fn.__name__}``: a boolean mask (broadcast)."
    compare.__name__ = fn.__name__
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
logical_and = _compare(np.logical_and)
logical_or = _compare(np.logical_or)
bitwise_and = _compare(np.bitwise_and)
bitwise_or = _compare(np.bitwise_or)


def logical_not(x: Any) -> tuple[Any, Any]:
    """Elementwise ``not``: a boolean mask."""
    return np.logical_not(x), None


def bitwise_not(x: Any) -> tuple[Any, Any]:
    """``~x`` (logical not for booleans)."""
    return np.invert(x), None


def cumsum(x: np.ndarray, dim: int, *, dtype: Any = None) -> tuple[Any, Any]:
    """Running sum along ``dim`` (int64 for integer and boolean inputs, as torch)."""
    default = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.cumsum(x, axis=dim_index(dim, x.ndim), dtype=_dtype(dtype, default)), None


def no_op(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A check torch's graph makes (``_assert_tensor_metadata``, ``_assert_scalar``): nothing
    to compute."""
    return None, None


def sym_size(x: np.ndarray, dim: int) -> tuple[Any, Any]:
    """``x.size(dim)`` as a Python int: a symbolic size of a graph captured with a dynamic
    batch dimension (``aten.sym_size.int``), read from the value it runs on."""
    return int(x.shape[dim_index(dim, x.ndim)]), None


def _size_arithmetic(fn: Any, name: str) -> Any:
    def arithmetic(*args: Any) -> tuple[Any, Any]:
        return fn(*args), None
    arithmetic.__doc__ = (f"``operator.{name}`` on sizes (a dynamic batch dimension's "
                          "arithmetic, e.g. ``batch * seq_len``): a Python number.")
    arithmetic.__name__ = f"size_{name}"
    return arithmetic


size_add = _size_arithmetic(operator.add, "add")
size_sub = _size_arithmetic(operator.sub, "sub")
size_mul = _size_arithmetic(operator.mul, "mul")
size_floordiv = _size_arithmetic(operator.floordiv, "floordiv")
size_truediv = _size_arithmetic(operator.truediv, "truediv")
size_mod = _size_arithmetic(operator.mod, "mod")
size_neg = _size_arithmetic(operator.neg, "neg")
