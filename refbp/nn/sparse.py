"""``SparseGrad``: the sparse gradient of ``Embedding(sparse=True)``, as torch lays it out.

torch's sparse embedding backward returns a COO tensor over the rows of the weight: one
index per looked-up token (in the order of the input, repeated tokens repeated, the
``padding_idx`` entries dropped) and the matching rows of the output gradient as values,
*uncoalesced*; refbp's entries are torch's, value for value. A second backward appends its
entries. ``coalesce()`` sorts the indices and sums the values of each index in the order they
are stored; torch's kernel sums them (and merges a second backward's entries) in its own
order, so a summed row may differ from torch's in the last bit (measured: 8.9e-16 on rows of
size ~1 in float64).

Only the rows that occur carry values; the others are exactly zero and are never touched by
``SparseAdam``. ``to_dense()`` gives the dense gradient (a scatter-add in the same order);
``grad[...] = 0`` (what ``zero_grad(set_to_none=False)`` does) empties it, as torch's
``zero_()`` leaves a sparse tensor with no entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SparseGrad:
    """Row-sparse COO gradient of a 2-D parameter: ``indices`` (nnz,) into its rows and
    ``values`` (nnz, row...), for a dense ``shape``."""

    is_sparse = True

    def __init__(self, indices: Any, values: Any, shape: tuple[int, ...]) -> None:
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.values = np.asarray(values)
        self.shape = tuple(shape)
        if self.values.shape != (self.indices.size, *self.shape[1:]):
            raise ValueError(f"sparse gradient values of shape {self.values.shape} do not match "
                             f"{self.indices.size} indices of rows of shape {self.shape[1:]}")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.shape[0]):
            raise ValueError(f"sparse gradient index out of range for {self.shape[0]} rows")

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the values (the parameter's)."""
        return self.values.dtype

    @property
    def nnz(self) -> int:
        """The number of stored entries (repeated indices counted)."""
        return int(self.indices.size)

    def coalesce(self) -> SparseGrad:
        """Sorted unique indices, the values of each summed in the order they are stored."""
        unique, inverse = np.unique(self.indices, return_inverse=True)
        values = np.zeros((unique.size, *self.shape[1:]), dtype=self.values.dtype)
        np.add.at(values, inverse, self.values)
        return SparseGrad(unique, values, self.shape)

    def is_coalesced(self) -> bool:
        """Whether the indices are sorted and unique."""
        return bool(np.all(np.diff(self.indices) > 0))

    def to_dense(self) -> np.ndarray:
        """The dense gradient: every entry added into its row, zeros elsewhere."""
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        np.add.at(dense, self.indices, self.values)
        return dense

    def copy(self) -> SparseGrad:
        """A copy (indices and values copied)."""
        return SparseGrad(self.indices.copy(), self.values.copy(), self.shape)

    def astype(self, dtype: Any, copy: bool = True) -> SparseGrad:
        """The same entries with the values cast to ``dtype``."""
        return SparseGrad(self.indices.copy(), self.values.astype(dtype, copy=copy), self.shape)

    def __neg__(self) -> SparseGrad:
        return SparseGrad(self.indices.copy(), -self.values, self.shape)

    def __add__(self, other: SparseGrad) -> SparseGrad:
        """Concatenated entries (torch: sparse + sparse stays uncoalesced)."""
        if not isinstance(other, SparseGrad) or other.shape != self.shape:
            return NotImplemented
        return SparseGrad(np.concatenate([self.indices, other.indices]),
                          np.concatenate([self.values, other.values]), self.shape)

    def add(self, other: SparseGrad, alpha: Any = 1.0) -> SparseGrad:
        """torch's sparse ``self.add(other, alpha=alpha)``: with the same indices the values
        are added, ``self.values + alpha * other.values``; otherwise the entries are
        concatenated (``other``'s scaled by ``alpha``), uncoalesced. torch merges some
        entries of such a sum, so the two layouts may differ while the dense values agree
        (a row's entries summed in another order: last-bit differences)."""
        a = np.asarray(alpha, dtype=self.values.dtype)
        if np.array_equal(self.indices, other.indices):
            return SparseGrad(self.indices.copy(), self.values + a * other.values, self.shape)
        return self + SparseGrad(other.indices, a * other.values, other.shape)

    def scaled(self, factor: Any) -> SparseGrad:
        """The same entries with the values times ``factor`` (torch's sparse ``mul``)."""
        return SparseGrad(self.indices.copy(),
                          self.values * np.asarray(factor, dtype=self.values.dtype), self.shape)

    def add_to(self, dense: np.ndarray, alpha: Any = 1.0) -> np.ndarray:
        """torch's ``dense.add_(self, alpha=alpha)``: every entry, times ``alpha``, added into
        its row of ``dense`` in storage order (in place; returns ``dense``)."""
        np.add.at(dense, self.indices, self.values * np.asarray(alpha, dtype=dense.dtype))
        return dense

    def __setitem__(self, key: Any, value: Any) -> None:
        """``grad[...] = 0`` empties the gradient (the only assignment a sparse one takes)."""
        if key is not Ellipsis or np.any(np.asarray(value) != 0):
            raise TypeError("a sparse gradient can only be emptied (grad[...] = 0); use "
                            "to_dense() for a dense array")
        self.indices = self.indices[:0]
        self.values = self.values[:0]

    def __repr__(self) -> str:
        return f"SparseGrad(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"
