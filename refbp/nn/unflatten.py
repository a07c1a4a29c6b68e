"""``Unflatten``: split one dimension into several, as ``torch.nn.Unflatten`` (no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, normalize_dim
from refbp.nn.module import Cache, Module


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    """torch's constructor check of ``unflattened_size`` (messages verbatim)."""
    if not isinstance(sizes, tuple | list):
        raise TypeError(f"unflattened_size must be a tuple of ints, but found type "
                        f"{type(sizes).__name__}")
    for i, e in enumerate(sizes):
        if not isinstance(e, int | np.integer):
            raise TypeError(f"unflattened_size must be tuple of ints, but found element of "
                            f"type {type(e).__name__} at pos {i}")
    return tuple(int(e) for e in sizes)


def unflatten_shape(shape: tuple[int, ...], dim: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with dimension ``dim`` replaced by ``sizes`` (one ``-1`` is inferred)."""
    d = normalize_dim(dim, len(shape))
    n = shape[d]
    if sizes.count(-1) > 1:
        raise ValueError("unflatten: only one dimension can be inferred")
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    out = sizes
    if -1 in sizes:
        if known == 0 or n % known:
            raise ValueError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                             f"size of dim {dim} ({n}) in the input tensor")
        out = tuple(n // known if s == -1 else s for s in sizes)
    elif known != n:
        raise ValueError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                         f"size of dim {dim} ({n}) in the input tensor")
    return shape[:d] + out + shape[d + 1:]


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``, as ``torch.nn.Unflatten``.

    Forward is a reshape, ``(*, n, *) -> (*, s1, ..., sk, *)`` with ``s1 * ... * sk = n`` (one
    ``s`` may be -1 and is inferred); backward reshapes the gradient back to the input shape
    (a reshape moves no values: its Jacobian is the identity on the flattened data).

    Parameters
    ----------
    dim : int
        The dimension to split (negative counts from the end).
    unflattened_size : tuple or list of int
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if not isinstance(dim, int | np.integer):
            raise TypeError(f"unflatten(): argument 'dim' (position 1) must be int, not "
                            f"{type(dim).__name__}")
        _check_sizes(unflattened_size)
        self.dim = int(dim)
        self.unflattened_size = unflattened_size
        self._cache = Cache("Unflatten")

    def forward(self, x: Any) -> np.ndarray:
        """``x`` reshaped with dimension ``dim`` split; caches the input shape."""
        x = as_float_array(x, "Unflatten input")
        shape = unflatten_shape(x.shape, self.dim, _check_sizes(self.unflattened_size))
        self._cache.save(shape=x.shape)
        return x.reshape(shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Reshape ``grad_out`` back to the cached input shape."""
        return np.asarray(grad_out).reshape(self._cache.load()["shape"])

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
