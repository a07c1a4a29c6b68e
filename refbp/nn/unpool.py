r"""``MaxUnpool1d/2d/3d``: the partial inverse of max pooling, as torch's (no torch).

Forward: a zero output of the unpooled size, each input value written at the flat position
its index names in its (sample, channel) plane:

.. math:: y_{n,c}[\mathrm{idx}_{n,c,i}] = x_{n,c,i}, \qquad y = 0 \text{ elsewhere}.

Output size per axis (torch's ``_unpool_output_size``): ``(L - 1) s + k - 2 p``, or
``output_size`` (its last 1-3 entries), which must lie strictly within ``stride`` of that.

Backward: each input value was copied to one place, so its gradient is read back from there:
:math:`\partial L / \partial x_{n,c,i} = g_{n,c}[\mathrm{idx}_{n,c,i}]` (a gather). The indices
carry no gradient. Indices that repeat within a plane (not produced by a max pooling whose
windows do not overlap) make torch's result depend on its write order; refbp writes in input
order, the last write wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn.module import Cache, Module
from refbp.nn.pooling import _stride, _tuple


class _MaxUnpoolNd(Module):
    """Shared forward and backward of the three layers (formulas in the module docstring)."""

    _spatial = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        n, fn = self._spatial, f"max_unpool{self._spatial}d"
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", fn)
        self.stride = _stride(stride, self.kernel_size, n, fn)
        self.padding = _tuple(padding, n, "padding", fn)
        self._cache = Cache(type(self).__name__)

    def _out_size(self, x: np.ndarray, output_size: Any) -> tuple[int, ...]:
        n = self._spatial
        default = tuple((x.shape[-n + d] - 1) * self.stride[d] + self.kernel_size[d]
                        - 2 * self.padding[d] for d in range(n))
        if output_size is None:
            return default
        size = [int(v) for v in output_size]
        if len(size) == n + 2:
            size = size[2:]
        if len(size) != n:
            raise ValueError(f"output_size should be a sequence containing {n} or {n + 2} "
                             f"elements, but it has a length of '{len(size)}'")
        for d in range(n):
            lo, hi = default[d] - self.stride[d], default[d] + self.stride[d]
            if not lo < size[d] < hi:
                raise ValueError(f'invalid output_size "{list(output_size)}" (dim {d} must be '
                                 f"between {lo} and {hi})")
        return tuple(size)

    def forward(self, x: Any, indices: Any, output_size: Any = None) -> np.ndarray:
        """Scatter ``x`` to ``indices`` in a zero output; caches the indices."""
        n = self._spatial
        x = as_float_array(x, f"{type(self).__name__} input")
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{type(self).__name__} indices must be integers, got {idx.dtype}")
        if idx.shape != x.shape:
            raise ValueError(f"Expected shape of indices to be same as that of the input "
                             f"tensor ({list(x.shape)}) but got indices tensor with shape: "
                             f"{list(idx.shape)}")
        if x.ndim not in (n + 1, n + 2):
            raise ValueError(f"Input to max_unpooling{n}d should be a {n + 1}d or {n + 2}d "
                             f"Tensor, but got a tensor with {x.ndim} dimensions.")
        spatial = self._out_size(x, output_size)
        plane = int(np.prod(spatial, dtype=np.int64))
        lead = x.shape[:-n]
        rows = int(np.prod(lead, dtype=np.int64))
        flat_idx = idx.reshape(rows, -1) if rows else idx.reshape(0, 0)
        bad = (flat_idx < 0) | (flat_idx >= plane)
        if bad.any():
            raise ValueError(f"Found an invalid max index: {int(flat_idx[bad][0])} (output "
                             f"volumes are of size {'x'.join(map(str, spatial))}")
        y = np.zeros((rows, plane), dtype=x.dtype)
        np.put_along_axis(y, flat_idx, x.reshape(flat_idx.shape), axis=1)
        out = y.reshape(lead + spatial)
        self._cache.save(idx=flat_idx, in_shape=x.shape, out_shape=out.shape)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x: the upstream gradient read at each input's index (a gather)."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["out_shape"], type(self).__name__)
        g2 = g.reshape(c["idx"].shape[0], -1) if c["idx"].shape[0] else g.reshape(0, 0)
        return np.take_along_axis(g2, c["idx"], axis=1).reshape(c["in_shape"])

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """1-D max unpooling, as ``torch.nn.MaxUnpool1d``: x and indices (N, C, L) or (C, L) (the
    outputs of ``MaxPool1d(..., return_indices=True)``); y (N, C, L_out)."""

    _spatial = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """2-D max unpooling, as ``torch.nn.MaxUnpool2d``: indices flat in each (H_out, W_out)
    plane, as ``MaxPool2d`` returns them; x (N, C, H, W) or (C, H, W)."""


class MaxUnpool3d(_MaxUnpoolNd):
    """3-D max unpooling, as ``torch.nn.MaxUnpool3d``: indices flat in each output volume;
    x (N, C, D, H, W) or (C, D, H, W)."""

    _spatial = 3
