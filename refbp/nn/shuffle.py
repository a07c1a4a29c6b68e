"""Rearranging layers: ``PixelShuffle``, ``PixelUnshuffle`` and ``ChannelShuffle``, as torch's.

Each is a fixed permutation of the input's entries (a reshape, a transpose, a reshape), so its
Jacobian is a permutation matrix P and the backward pass applies the inverse permutation:
dL/dx = P^T dL/dy, i.e. the opposite rearrangement of the upstream gradient. No rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn.module import Cache, Module


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """(*, C r^2, H, W) -> (*, C, H r, W r): ``y[c, h r + i, w r + j] = x[c r^2 + i r + j, h,
    w]``."""
    *lead, c, h, w = x.shape
    v = x.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    v = v.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return v.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of :func:`pixel_shuffle`."""
    *lead, c, h, w = x.shape
    v = x.reshape(*lead, c, h // r, r, w // r, r)
    n = len(lead)
    v = v.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return v.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *) -> (N, C, *) with channel ``g (C / groups) + k`` moved to ``k groups + g``."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)


class _Rearrange(Module):
    """Validation, the cache of the shapes, and backward by the inverse rearrangement."""

    def __init__(self) -> None:
        super().__init__()
        self._cache = Cache(type(self).__name__)

    def _check(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _inverse(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: Any) -> np.ndarray:
        """The rearranged input (a copy)."""
        x = as_float_array(x, f"{type(self).__name__} input")
        self._check(x)
        y = np.ascontiguousarray(self._apply(x))
        self._cache.save(out=y.shape)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        """The upstream gradient rearranged back: the inverse permutation."""
        g = grad_out_array(grad_out, self._cache.load()["out"], type(self).__name__)
        return np.ascontiguousarray(self._inverse(g))


def _check_3d(x: np.ndarray, op: str) -> None:
    if x.ndim < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input "
                           f"with {x.ndim} dimension(s)")


class PixelShuffle(_Rearrange):
    r"""Sub-pixel rearrangement, as ``torch.nn.PixelShuffle(upscale_factor)``.

    Forward: (*, C r^2, H, W) -> (*, C, H r, W r), y[c, h r + i, w r + j] = x[c r^2 + i r + j,
    h, w] (r = upscale_factor).

    Backward: a permutation, so dL/dx = pixel_unshuffle(dL/dy, r).
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = int(upscale_factor)

    def _check(self, x: np.ndarray) -> None:
        _check_3d(x, "pixel_shuffle")
        r2 = self.upscale_factor ** 2
        if x.shape[-3] % r2:
            raise RuntimeError(
                "pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
                f"square of upscale_factor, but input.size(-3)={x.shape[-3]} is not divisible "
                f"by {r2}")

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return pixel_shuffle(x, self.upscale_factor)

    def _inverse(self, g: np.ndarray) -> np.ndarray:
        return pixel_unshuffle(g, self.upscale_factor)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(_Rearrange):
    r"""The inverse of ``PixelShuffle``, as ``torch.nn.PixelUnshuffle(downscale_factor)``.

    Forward: (*, C, H r, W r) -> (*, C r^2, H, W). Backward: dL/dx = pixel_shuffle(dL/dy, r).
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = int(downscale_factor)

    def _check(self, x: np.ndarray) -> None:
        _check_3d(x, "pixel_unshuffle")
        r = self.downscale_factor
        for axis, name in ((-2, "height"), (-1, "width")):
            if x.shape[axis] % r:
                raise RuntimeError(
                    f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                    f"input.size({axis})={x.shape[axis]} is not divisible by {r}")

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return pixel_unshuffle(x, self.downscale_factor)

    def _inverse(self, g: np.ndarray) -> np.ndarray:
        return pixel_shuffle(g, self.downscale_factor)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(_Rearrange):
    r"""Channel shuffle of ShuffleNet, as ``torch.nn.ChannelShuffle(groups)``.

    Forward: (N, C, *) viewed as (N, groups, C / groups, *), the two group axes swapped, viewed
    back: channel g (C / groups) + k goes to k groups + g.

    Backward: the inverse permutation, a channel shuffle with C / groups groups.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = int(groups)

    def _check(self, x: np.ndarray) -> None:
        if x.ndim <= 2:
            raise RuntimeError("channel_shuffle expects input with > 2 dims, but got input "
                               f"with sizes {list(x.shape)}")
        if self.groups <= 0:
            raise RuntimeError("Number of groups to divide channels in must be positive. "
                               f"Value of groups:{self.groups}")
        if x.shape[1] % self.groups:
            raise RuntimeError(f"Number of channels must be divisible by groups. Got "
                               f"{x.shape[1]} channels and {self.groups} groups.")

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return channel_shuffle(x, self.groups)

    def _inverse(self, g: np.ndarray) -> np.ndarray:
        return channel_shuffle(g, g.shape[1] // self.groups)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"groups={self.groups}"
