r"""Shape ops of a graph model: views, transposes, concatenation, splitting, indexing.

These ops move values without computing new ones, so each backward moves the gradient back:
the adjoint of a reshape is the reshape back, of a permutation the inverse permutation, of an
expand a sum over the expanded dimensions, of a slice or an index a scatter (``np.add.at``
where an index may repeat) into zeros of the input's shape, of a concatenation the slices.
Conventions: ``refbp.nn.ops``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp.nn.ops import dim_index, is_float, unbroadcast

Grads = tuple[Any, ...]


def _sized(x: np.ndarray, size: Sequence[int]) -> tuple[int, ...]:
    """torch's ``view`` size with one ``-1`` inferred."""
    size = [int(s) for s in size]
    if -1 in size:
        known = int(np.prod([s for s in size if s != -1], dtype=np.int64))
        size[size.index(-1)] = x.size // known if known else 0
    return tuple(size)


def view(x: np.ndarray, size: Sequence[int]) -> tuple[Any, Any]:
    """``x`` reshaped to ``size`` (``view``, ``reshape``, ``_unsafe_view``)."""
    return x.reshape(_sized(x, size)), x.shape


def view_backward(g: np.ndarray, shape: tuple[int, ...]) -> Grads:
    """A reshape keeps every element in row-major order: reshape ``g`` back."""
    return g.reshape(shape), None


def flatten(x: np.ndarray, start_dim: int = 0, end_dim: int = -1) -> tuple[Any, Any]:
    """Dimensions ``start_dim..end_dim`` merged into one."""
    if x.ndim == 0:
        return x.reshape(1), x.shape
    s, e = dim_index(start_dim, x.ndim), dim_index(end_dim, x.ndim)
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]), x.shape


def unflatten(x: np.ndarray, dim: int, sizes: Sequence[int]) -> tuple[Any, Any]:
    """Dimension ``dim`` split into ``sizes`` (one ``-1`` inferred)."""
    d = dim_index(dim, x.ndim)
    inner = _sized(np.empty(x.shape[d], dtype=np.bool_), sizes)
    return x.reshape(x.shape[:d] + inner + x.shape[d + 1:]), x.shape


def reshape_backward(g: np.ndarray, shape: tuple[int, ...]) -> Grads:
    """Reshape ``g`` back to the input's shape (the other arguments are sizes)."""
    return g.reshape(shape), None, None


def permute(x: np.ndarray, dims: Sequence[int]) -> tuple[Any, Any]:
    """``x`` with its dimensions reordered."""
    dims = tuple(dim_index(d, x.ndim) for d in dims)
    return x.transpose(dims), dims


def permute_backward(g: np.ndarray, dims: tuple[int, ...]) -> Grads:
    """The inverse permutation (``argsort(dims)``) puts every gradient element back."""
    return g.transpose(np.argsort(dims)), None


def transpose(x: np.ndarray, dim0: int, dim1: int) -> tuple[Any, Any]:
    """``x`` with two dimensions swapped (``t`` swaps the two of a matrix)."""
    return np.swapaxes(x, dim0, dim1), (dim0, dim1)


def transpose_backward(g: np.ndarray, dims: tuple[int, int]) -> Grads:
    """A swap is its own inverse."""
    return np.swapaxes(g, *dims), None, None


def t(x: np.ndarray) -> tuple[Any, Any]:
    """The matrix transpose (a 0-d or 1-d input is returned as is)."""
    return (x.T if x.ndim == 2 else x), None


def t_backward(g: np.ndarray, saved: Any) -> Grads:
    """Transpose back."""
    return (g.T if g.ndim == 2 else g,)


def unsqueeze(x: np.ndarray, dim: int) -> tuple[Any, Any]:
    """A size-1 dimension inserted at ``dim``."""
    return np.expand_dims(x, dim_index(dim, x.ndim + 1)), x.shape


def squeeze(x: np.ndarray, dim: Any = None) -> tuple[Any, Any]:
    """Size-1 dimensions removed (all, or those of ``dim``, an int or a list)."""
    if dim is None:
        return np.squeeze(x), x.shape
    dims = [dim] if isinstance(dim, int) else list(dim)
    axes = tuple(d for d in (dim_index(d, x.ndim) for d in dims) if x.ndim and x.shape[d] == 1)
    return np.squeeze(x, axis=axes), x.shape


def expand(x: np.ndarray, size: Sequence[int], implicit: bool = False) -> tuple[Any, Any]:
    """``x`` broadcast to ``size`` (``-1`` keeps a dimension)."""
    lead = len(size) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(size))
    return np.broadcast_to(x, shape), x.shape


def expand_backward(g: np.ndarray, shape: tuple[int, ...]) -> Grads:
    """Every copy made by the broadcast sends its gradient back: sum over the expanded
    dimensions (:func:`~refbp.nn.ops.unbroadcast`)."""
    return unbroadcast(g, shape), None, None


def identity(x: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``x`` itself (``clone``, ``contiguous``, ``alias``, ``lift_fresh_copy``): a copy, so
    an in-place op on the result cannot change ``x``."""
    return np.array(x, copy=True), None


def identity_backward(g: np.ndarray, saved: Any) -> Grads:
    """The identity's Jacobian is the identity."""
    return (g,)


def detach(x: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``x`` cut from the graph: same values, no gradient flows back (``detach``)."""
    return np.array(x, copy=True), None


def cat(tensors: Sequence[np.ndarray], dim: int = 0) -> tuple[Any, Any]:
    """The tensors joined along ``dim`` (torch skips legacy empty 1-d tensors)."""
    legacy = [t.ndim == 1 and t.shape[0] == 0 for t in tensors]
    parts = [t for t, skip in zip(tensors, legacy, strict=True) if not skip] or list(tensors)
    d = dim_index(dim, parts[0].ndim)
    sizes = [0 if skip else t.shape[d] for t, skip in zip(tensors, legacy, strict=True)]
    floats = [is_float(t) and not skip for t, skip in zip(tensors, legacy, strict=True)]
    return np.concatenate(parts, axis=d), (d, sizes, floats)


def cat_backward(g: np.ndarray, saved: Any) -> Grads:
    """Each input gets the slice of ``g`` it was copied to."""
    d, sizes, floats = saved
    edges = np.cumsum([0, *sizes])
    pieces = [np.take(g, np.arange(a, b), axis=d) if f else None
              for a, b, f in zip(edges[:-1], edges[1:], floats, strict=True)]
    return pieces, None


def stack(tensors: Sequence[np.ndarray], dim: int = 0) -> tuple[Any, Any]:
    """The tensors stacked along a new dimension ``dim``."""
    d = dim_index(dim, tensors[0].ndim + 1)
    return np.stack(list(tensors), axis=d), (d, len(tensors))


def stack_backward(g: np.ndarray, saved: Any) -> Grads:
    """Each input gets its index of the new dimension."""
    d, n = saved
    return [np.take(g, i, axis=d) for i in range(n)], None


def split(x: np.ndarray, split_size: Any, dim: int = 0) -> tuple[Any, Any]:
    """``x`` split along ``dim`` in chunks of ``split_size`` (or of the listed sizes)."""
    d = dim_index(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size, int):
        sizes = [min(split_size, n - i) for i in range(0, n, split_size)] or [0]
    else:
        sizes = [int(s) for s in split_size]
    edges = np.cumsum(sizes)[:-1]
    return list(np.split(x, edges, axis=d)), (d, x.shape, x.dtype, sizes)


def split_backward(g: list[Any], saved: Any) -> Grads:
    """The pieces' gradients concatenated back (zeros for a piece that got none)."""
    d, shape, dtype, sizes = saved
    parts = [np.zeros(shape[:d] + (n,) + shape[d + 1:], dtype=dtype) if gi is None else gi
             for gi, n in zip(g, sizes, strict=True)]
    return np.concatenate(parts, axis=d), None, None


def getitem(values: Sequence[Any], index: int) -> tuple[Any, Any]:
    """Output ``index`` of an op with several outputs (``operator.getitem``)."""
    return operator.getitem(values, index), (len(values), index)


def getitem_backward(g: np.ndarray, saved: Any) -> Grads:
    """``g`` goes to output ``index``; the other outputs get no gradient from here."""
    n, index = saved
    grads: list[Any] = [None] * n
    grads[index] = g
    return grads, None


def slice_(x: np.ndarray, dim: int = 0, start: Any = None, end: Any = None,
           step: int = 1) -> tuple[Any, Any]:
    """``x[..., start:end:step, ...]`` along ``dim``."""
    d = dim_index(dim, x.ndim)
    key = (slice(None),) * d + (slice(start, end, step),)
    return x[key], (x.shape, x.dtype, key)


def select(x: np.ndarray, dim: int, index: int) -> tuple[Any, Any]:
    """``x[..., index, ...]`` along ``dim`` (the dimension is removed)."""
    d = dim_index(dim, x.ndim)
    key = (slice(None),) * d + (int(index),)
    return x[key], (x.shape, x.dtype, key)


def slice_backward(g: np.ndarray, saved: Any) -> Grads:
    """The adjoint of taking a slice: ``g`` written into zeros of the input's shape (the
    elements not taken get no gradient)."""
    shape, dtype, key = saved
    out = np.zeros(shape, dtype=g.dtype if is_float(g) else dtype)
    out[key] = g
    return out, None, None, None, None


def index(x: np.ndarray, indices: Sequence[Any]) -> tuple[Any, Any]:
    """Advanced indexing ``x[i0, i1, ...]`` with integer or boolean index arrays (``None``
    keeps a dimension whole)."""
    key = tuple(slice(None) if i is None else i for i in indices)
    return x[key], (x.shape, key)


def index_backward(g: np.ndarray, saved: Any) -> Grads:
    """Scatter-add ``g`` into zeros of the input's shape: an element picked several times gets
    the sum of the gradients of its copies (``np.add.at``)."""
    shape, key = saved
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g)
    return out, None


def gather(x: np.ndarray, dim: int, idx: np.ndarray, sparse_grad: bool = False
           ) -> tuple[Any, Any]:
    """``out[i][j] = x[i][idx[i][j]]`` along ``dim`` (``torch.gather``)."""
    d = dim_index(dim, x.ndim)
    return np.take_along_axis(x, idx, axis=d), (x.shape, d, idx)


def gather_backward(g: np.ndarray, saved: Any) -> Grads:
    """Scatter-add ``g`` back to the gathered positions (``np.put_along_axis`` cannot add, so
    through ``np.add.at`` on the full index grid)."""
    shape, d, idx = saved
    out = np.zeros(shape, dtype=g.dtype)
    grid = list(np.indices(idx.shape, sparse=True))
    grid[d] = idx
    np.add.at(out, tuple(grid), g)
    return out, None, None, None
