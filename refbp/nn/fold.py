"""``Unfold`` (im2col) and ``Fold`` (col2im), as torch's, on the im2col of
``refbp.nn.functional_conv``.

Unfold, forward: every sliding block of the zero-padded input (N, C, H, W) becomes a column:
y[n, (c, i, j), (p, q)] = xp[n, c, p s_h + i d_h, q s_w + j d_w], shape (N, C kh kw, L) with
L = Ho Wo blocks. Backward: each input element collects the gradients of every column entry
that copied it (col2im, then the padding cropped): dL/dx = col2im(dL/dy).

Fold is its adjoint: forward y = col2im(x) (overlapping entries summed into an image of
``output_size``), backward dL/dx = im2col(dL/dy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn.functional_conv import Geometry, col2im, windows
from refbp.nn.module import Cache, Module

Size2 = int | tuple[int, int]


def _pair(v: Size2) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def unfold(x: np.ndarray, geo: Geometry, padding: tuple[int, int]) -> np.ndarray:
    """(N, C, H, W) -> (N, C kh kw, L): the blocks of the zero-padded input as columns."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    out_hw = geo.out_size(xp.shape[2:])
    return np.ascontiguousarray(windows(xp, geo, out_hw)).reshape(n, c * geo.kernel[0]
                                                                 * geo.kernel[1], -1)


def fold(cols: np.ndarray, size: tuple[int, int], geo: Geometry,
         padding: tuple[int, int]) -> np.ndarray:
    """(N, C kh kw, L) -> (N, C, *size): the adjoint of :func:`unfold` (overlaps summed)."""
    n = cols.shape[0]
    kh, kw = geo.kernel
    c = cols.shape[1] // (kh * kw)
    hp, wp = size[0] + 2 * padding[0], size[1] + 2 * padding[1]
    out_hw = geo.out_size((hp, wp))
    img = col2im(cols.reshape(n, 1, c * kh * kw, -1), (n, c, hp, wp), geo, out_hw)
    return np.ascontiguousarray(img[:, :, padding[0]:padding[0] + size[0],
                                    padding[1]:padding[1] + size[1]])


class _Blocks(Module):
    """Kernel geometry, padding and the shared forward/backward plumbing of Fold/Unfold."""

    _batched_ndim = 4  # the rank of a batched input

    def __init__(self, kernel_size: Size2, dilation: Size2, padding: Size2,
                 stride: Size2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride
        self._cache = Cache(type(self).__name__)

    @property
    def _geo(self) -> Geometry:
        return Geometry(_pair(self.kernel_size), _pair(self.stride), _pair(self.dilation))

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _adjoint(self, g: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: Any) -> np.ndarray:
        """Unfold: the blocks as columns; Fold: the columns summed into an image."""
        x = as_float_array(x, f"{type(self).__name__} input")
        unbatched = x.ndim == self._batched_ndim - 1
        if x.ndim != self._batched_ndim and not unbatched:
            raise RuntimeError(
                f"Input Error: Only {self._batched_ndim - 1}D or {self._batched_ndim}D input "
                f"Tensors are supported (got {x.ndim}D)")
        y = self._run(x[None] if unbatched else x)
        self._cache.save(shape=x.shape, out=y.shape[1:] if unbatched else y.shape,
                         unbatched=unbatched)
        return y[0] if unbatched else y

    def backward(self, grad_out: Any) -> np.ndarray:
        """The adjoint operation applied to the upstream gradient."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["out"], type(self).__name__)
        shape = (1, *c["shape"]) if c["unbatched"] else c["shape"]
        gx = self._adjoint(g[None] if c["unbatched"] else g, shape)
        return gx[0] if c["unbatched"] else gx

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Unfold(_Blocks):
    r"""Sliding blocks of an image as columns (im2col), as ``torch.nn.Unfold``.

    Shapes: (N, C, H, W) or (C, H, W) -> (N, C kh kw, L) or (C kh kw, L); see the module
    docstring for the formula and the backward (col2im of the upstream gradient).
    """

    _batched_ndim = 4

    def __init__(self, kernel_size: Size2, dilation: Size2 = 1, padding: Size2 = 0,
                 stride: Size2 = 1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return unfold(x, self._geo, _pair(self.padding))

    def _adjoint(self, g: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        return fold(g, (in_shape[2], in_shape[3]), self._geo, _pair(self.padding))


class Fold(_Blocks):
    r"""Columns summed back into an image (col2im), as ``torch.nn.Fold``.

    Shapes: (N, C kh kw, L) or (C kh kw, L) -> (N, C, *output_size) or (C, *output_size),
    L the number of blocks that fit ``output_size``; overlapping entries are summed. Backward:
    dL/dx = unfold(dL/dy) (see the module docstring).
    """

    _batched_ndim = 3

    def __init__(self, output_size: Size2, kernel_size: Size2, dilation: Size2 = 1,
                 padding: Size2 = 0, stride: Size2 = 1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def _run(self, x: np.ndarray) -> np.ndarray:
        geo, pad, size = self._geo, _pair(self.padding), _pair(self.output_size)
        k = geo.kernel[0] * geo.kernel[1]
        if x.shape[1] % k:
            raise RuntimeError(
                "Expected size of input's dimension 1 to be divisible by the product of "
                f"kernel_size, but got input.size(1)={x.shape[1]} and "
                f"kernel_size={geo.kernel}")
        blocks = geo.out_size((size[0] + 2 * pad[0], size[1] + 2 * pad[1]))
        if x.shape[2] != blocks[0] * blocks[1]:
            raise RuntimeError(
                f"Given output_size={size}, kernel_size={geo.kernel}, dilation="
                f"{geo.dilation}, padding={pad}, stride={geo.stride}, expected size of input's "
                f"dimension 2 to match the calculated number of sliding blocks {blocks[0]} * "
                f"{blocks[1]} = {blocks[0] * blocks[1]}, but got input.size(2)={x.shape[2]}.")
        return fold(x, size, geo, pad)

    def _adjoint(self, g: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        return unfold(g, self._geo, _pair(self.padding))

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"output_size={self.output_size}, {super().extra_repr()}"
