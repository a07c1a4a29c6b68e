"""Padding layers, as torch's ``ZeroPad{1,2,3}d``, ``ConstantPad{1,2,3}d``,
``ReflectionPad{1,2,3}d``, ``ReplicationPad{1,2,3}d`` and ``CircularPad{1,2,3}d``.

Forward
-------
``y = F.pad(x, padding, mode, value)``: the last N dimensions of x (N = 1, 2, 3) grow by
``padding = (left, right[, top, bottom[, front, back]])`` (the last dimension first; an int
pads every side by it; negative padding crops). The new entries are ``value`` (constant,
zero), the mirror image of x without repeating the edge (reflection), the edge value
(replication), or x's other end (circular). The maths, as index maps per axis, is in
``refbp.nn.functional_pad``.

Backward
--------
Every output element is a copy of one input element (or a constant), so dL/dx_i is the sum
of dL/dy over the outputs that copy x_i: one for an interior element, more at the edges under
replication and next to them under reflection and circular padding; constant entries pass no
gradient.

Shapes: (C, *S) or (N, C, *S) with S the N padded dimensions (constant padding takes any
input with at least as many dimensions as it pads); torch's messages for the others.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn import functional_pad as F
from refbp.nn.module import Cache, Module

_SIZES = {1: "2D or 3D", 2: "3D or 4D", 3: "4D or 5D"}


class _PadNd(Module):
    """Shared by every padding layer: the padding tuple, validation, forward and backward."""

    _dims: ClassVar[int]
    _mode: ClassVar[str]

    def __init__(self, padding: int | tuple[int, ...]) -> None:
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self._dims)
        padding = tuple(int(p) for p in padding)
        if len(padding) % 2 or not padding:
            raise ValueError(f"Padding length must be divisible by 2, got {len(padding)}")
        self.padding = padding
        self.value = 0.0
        self._cache = Cache(type(self).__name__)

    def _check(self, x: np.ndarray) -> None:
        n = len(self.padding)
        if self._mode == "constant":
            if n > 2 * x.ndim:
                raise RuntimeError(
                    "Padding length should be less than or equal to two times the input "
                    f"dimension but got padding length {n} and input of dimension {x.ndim}")
            return
        if x.ndim not in (n // 2 + 1, n // 2 + 2):
            if self._mode == "circular":  # torch's CircularPadNd checks the rank itself
                raise ValueError(f"expected {_SIZES[n // 2]} input (got {x.ndim}D input)")
            raise NotImplementedError(
                f"Padding size {n} is not supported for {x.ndim}D input tensor "
                f"({type(self).__name__} pads {_SIZES[n // 2]} inputs)")
        for k in range(n // 2):
            size, left, right = x.shape[-1 - k], self.padding[2 * k], self.padding[2 * k + 1]
            if self._mode == "reflect" and max(left, right) >= size:
                raise RuntimeError(
                    "Argument #4: Padding size should be less than the corresponding input "
                    f"dimension, but got: padding ({left}, {right}) at dimension "
                    f"{x.ndim - 1 - k} of input {list(x.shape)}")
            if self._mode == "circular" and max(left, right) > size:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            if size == 0:
                raise RuntimeError(
                    f"{type(self).__name__} needs non-empty padded dimensions, got input "
                    f"shape {list(x.shape)}")

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, f"{type(self).__name__} input")
        self._check(x)
        y = F.pad(x, self.padding, self._mode, self.value)
        if any(s < 0 for s in y.shape):
            raise RuntimeError(f"{type(self).__name__}: padding {self.padding} gives a "
                               f"negative output size for input shape {x.shape}")
        self._cache.save(shape=x.shape, out=y.shape)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        c = self._cache.load()
        g = grad_out_array(grad_out, c["out"], type(self).__name__)
        return F.pad_backward(g, c["shape"], self.padding, self._mode)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding: int | tuple[int, ...], value: float) -> None:
        super().__init__(padding)
        self.value = value

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dimension with ``value`` (see the module docstring), as
    ``torch.nn.ConstantPad1d(padding, value)``."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dimensions with ``value``, as ``torch.nn.ConstantPad2d``."""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dimensions with ``value``, as ``torch.nn.ConstantPad3d``."""

    _dims = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding: int | tuple[int, ...]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pads the last dimension with zeros, as ``torch.nn.ZeroPad1d(padding)``."""

    _dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pads the last two dimensions with zeros, as ``torch.nn.ZeroPad2d(padding)``."""

    _dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pads the last three dimensions with zeros, as ``torch.nn.ZeroPad3d(padding)``."""

    _dims = 3


class ReflectionPad1d(_PadNd):
    """Pads the last dimension with its mirror image (edge not repeated; padding < size), as
    ``torch.nn.ReflectionPad1d(padding)``."""

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Reflection padding of the last two dimensions, as ``torch.nn.ReflectionPad2d``."""

    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Reflection padding of the last three dimensions, as ``torch.nn.ReflectionPad3d``."""

    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pads the last dimension with copies of its edge values, as
    ``torch.nn.ReplicationPad1d(padding)``."""

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Replication padding of the last two dimensions, as ``torch.nn.ReplicationPad2d``."""

    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Replication padding of the last three dimensions, as ``torch.nn.ReplicationPad3d``."""

    _dims, _mode = 3, "replicate"


class CircularPad1d(_PadNd):
    """Pads the last dimension with its other end (periodic; padding <= size), as
    ``torch.nn.CircularPad1d(padding)``."""

    _dims, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Circular padding of the last two dimensions, as ``torch.nn.CircularPad2d``."""

    _dims, _mode = 2, "circular"


class CircularPad3d(_PadNd):
    """Circular padding of the last three dimensions, as ``torch.nn.CircularPad3d``."""

    _dims, _mode = 3, "circular"
