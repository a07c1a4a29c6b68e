"""``Upsample``, ``UpsamplingNearest2d`` and ``UpsamplingBilinear2d``: ``F.interpolate`` as a
layer, with torch's arguments, checks and index conventions (maths in
``refbp.nn.functional_interp``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn import functional_interp as F
from refbp.nn.module import Cache, Module


class Upsample(Module):
    r"""Resampling of the last 1-3 dimensions, as ``torch.nn.Upsample``.

    Parameters
    ----------
    size : int or tuple, optional
        The output size of the spatial dimensions.
    scale_factor : float or tuple, optional
        The factor of each spatial dimension (output size ``floor(in * scale_factor)``);
        exactly one of ``size`` and ``scale_factor``.
    mode : str
        'nearest' (default), 'nearest-exact', 'linear' (3-D input), 'bilinear' and
        'bicubic' (4-D), 'trilinear' (5-D), 'area' (adaptive average pooling).
    align_corners : bool, optional
        For the linear modes only: the corner pixels' centres are aligned (scale
        (in - 1) / (out - 1)); default False.
    recompute_scale_factor : bool, optional
        True: the kernel computes the scale from the sizes (in / out) instead of using
        1 / scale_factor.

    Forward
    -------
    y_o = sum_i W[o, i] x_i along each spatial axis, W the mode's interpolation matrix (see
    ``refbp.nn.functional_interp``: torch's source-index and weight formulas).

    Backward
    --------
    y is linear in x, so dL/dx = W^T dL/dy along each axis: every input position collects the
    gradients of the outputs it contributes to, times its weights (nearest: a sum over the
    copies; area: 1/window).

    Shapes: (N, C, *S) -> (N, C, *S_out), S of 1, 2 or 3 dimensions.
    """

    def __init__(self, size: int | Sequence[int] | None = None,
                 scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        if mode not in F.MODE_RANKS:
            raise NotImplementedError(f"Upsample mode {mode!r} is not one of "
                                      f"{', '.join(F.MODE_RANKS)}")
        self.size = size
        self.scale_factor = (None if scale_factor is None else float(scale_factor)
                             if isinstance(scale_factor, int | float)
                             else tuple(float(f) for f in scale_factor))
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self._cache = Cache(type(self).__name__)

    def _check(self, x: np.ndarray) -> None:
        if (self.size is None) == (self.scale_factor is None):
            raise ValueError("either size or scale_factor should be defined"
                             if self.size is None else
                             "only one of size or scale_factor should be defined")
        if self.recompute_scale_factor and self.size is not None:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        if self.align_corners is not None and self.mode not in F.LINEAR_MODES:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
        if x.ndim not in F.MODE_RANKS[self.mode]:
            raise NotImplementedError(
                f"Got {x.ndim}D input, but {self.mode} mode needs "
                f"{'/'.join(f'{r}D' for r in F.MODE_RANKS[self.mode])} input")

    def forward(self, x: Any) -> np.ndarray:
        """The resampled input (see the class docstring)."""
        x = as_float_array(x, f"{type(self).__name__} input")
        self._check(x)
        spatial = x.shape[2:]
        out = F.output_size(spatial, self.size, self.scale_factor)
        scales = (F.scale_list(None, len(spatial)) if self.recompute_scale_factor
                  else F.scale_list(self.scale_factor, len(spatial)))
        y, mats = F.interpolate(x, out, self.mode, bool(self.align_corners), scales)
        self._cache.save(mats=mats, out=y.shape)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        """dL/dx: the transposed interpolation matrices applied to dL/dy."""
        c = self._cache.load()
        return F.interpolate_backward(grad_out_array(grad_out, c["out"], type(self).__name__),
                                      c["mats"])

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        what = (f"scale_factor={self.scale_factor}" if self.scale_factor is not None
                else f"size={self.size}")
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` of images, as
    ``torch.nn.UpsamplingNearest2d`` (see :class:`Upsample` for the maths)."""

    def __init__(self, size: int | Sequence[int] | None = None,
                 scale_factor: float | Sequence[float] | None = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)`` of images, as
    ``torch.nn.UpsamplingBilinear2d`` (see :class:`Upsample` for the maths)."""

    def __init__(self, size: int | Sequence[int] | None = None,
                 scale_factor: float | Sequence[float] | None = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
