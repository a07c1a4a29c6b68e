r"""Adaptive pooling layers, as torch's (no torch): ``AdaptiveAvgPool1d/2d/3d``,
``AdaptiveMaxPool1d/2d/3d``.

Output o along an axis of length L with O outputs pools the window
:math:`[\lfloor oL/O \rfloor, \lceil (o+1)L/O \rceil)`; windows may overlap (O > L/2) and have
different lengths. Forward and backward are those of :mod:`refbp.nn.pooling` over these
windows:

- average: :math:`y_o = (\sum_{i \in W_o} x_i) / k_H / k_W` (torch divides by each axis's
  window length in turn; in 3-D by :math:`k_D` first),
  :math:`\partial L/\partial x_i = \sum_{o : i \in W_o} g_o / k_H / k_W`;
  an output of size 1 (global average) is torch's mean, :math:`\sum x / (H W)`, one division;
- max: :math:`y_o = \max_{W_o} x`, the gradient goes to the first maximum in scan order.

``output_size`` is an int or a tuple whose ``None`` entries keep the input size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import functional_pool as fp
from refbp.nn.pooling import _Pool


def _output_size(v: Any, n: int, fn: str) -> tuple[int | None, ...]:
    if v is None or isinstance(v, int | np.integer):
        return (None if v is None else int(v),) * n
    if isinstance(v, tuple | list) and len(v) == n:
        return tuple(None if e is None else int(e) for e in v)
    raise ValueError(f"{fn}: output_size must be {n}")


class _AdaptivePool(_Pool):
    """Shared forward of the adaptive layers: the window table from the output size."""

    _fn = "adaptive_pool"

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def _rank_error(self, x: np.ndarray) -> str:
        if self._spatial == 1:
            return (f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for "
                    f"argument #1 'self' (while checking arguments for {self._fn})")
        shape = ", ".join(str(n) for n in x.shape)
        s = self._spatial
        return f"{self._fn}(): Expected {s + 1}D or {s + 2}D tensor, but got [{shape}]"

    def _windows(self, x: Any) -> tuple[np.ndarray, tuple[int, ...], fp.Windows]:
        """x as float, its lead dims and the window table (unit height for 1-D)."""
        x, lead, plane = self._split(x)
        size = _output_size(self.output_size, self._spatial, self._fn)
        out = tuple(plane[-self._spatial:][i] if o is None else o for i, o in enumerate(size))
        if min(out) < 0:
            got = ", ".join(str(o) for o in out)
            raise ValueError(f"{self._fn}: elements of output_size must be greater than or "
                             f"equal to 0 but received {{{got}}}")
        out2 = (1,) + out if self._spatial == 1 else out
        return x, lead, fp.adaptive_windows(plane, out2)

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return f"output_size={self.output_size}"


class _AdaptiveAvgPool(_AdaptivePool):
    def forward(self, x: Any) -> np.ndarray:
        """Window averages (see the module docstring); caches the windows for backward."""
        x, lead, w = self._windows(x)
        div = fp.adaptive_divisor(w.in_shape, w.out_shape)
        if all(o == 1 for o in w.out_shape):  # torch takes the mean: one division by H * W
            div = div.prod(axis=1)
        y = self._finish(fp.avg_forward(x.reshape(-1, w.plane), w, div), lead, w)
        self._cache.save(w=w, div=div, in_shape=x.shape, out_shape=y.shape)
        return y

    def _backward2(self, g2: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        return fp.avg_backward(g2, c["w"], c["div"])


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    r"""Adaptive 2-D average pooling, as ``torch.nn.AdaptiveAvgPool2d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        (H_out, W_out); ``None`` keeps the input size.

    Shapes
    ------
    x : (N, C, H, W) or (C, H, W); y : (N, C, H_out, W_out) or (C, H_out, W_out).
    """

    _fn = "adaptive_avg_pool2d"


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    r"""Adaptive 1-D average pooling, as ``torch.nn.AdaptiveAvgPool1d``: (N, C, L) or (C, L)
    to (N, C, L_out) or (C, L_out), ``output_size`` an int."""

    _spatial = 1
    _fn = "adaptive_avg_pool1d"


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    r"""Adaptive 3-D average pooling, as ``torch.nn.AdaptiveAvgPool3d``: (N, C, D, H, W) or
    (C, D, H, W) to ``output_size`` (D_out, H_out, W_out), ``None`` entries kept; an output of
    1 x 1 x 1 is torch's mean over the volume."""

    _spatial = 3
    _fn = "adaptive_avg_pool3d"


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def _rank_error(self, x: np.ndarray) -> str:
        if self._spatial == 1:
            return super()._rank_error(x)
        shape = ", ".join(str(n) for n in x.shape)
        s = self._spatial
        return f"{self._fn}(): Expected {s + 1}D or {s + 2}D tensor, but got: [{shape}]"

    def forward(self, x: Any) -> Any:
        """Window maxima (and indices with ``return_indices``); caches the argmax."""
        x, lead, w = self._windows(x)
        y2, pos = fp.max_forward(x.reshape(-1, w.plane), w)
        y = self._finish(y2, lead, w)
        self._cache.save(w=w, pos=pos, in_shape=x.shape, out_shape=y.shape)
        return (y, pos.reshape(y.shape)) if self.return_indices else y

    def _backward2(self, g2: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        return fp.max_backward(g2, c["pos"], c["w"].plane, distinct=c["w"].disjoint)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    r"""Adaptive 2-D max pooling, as ``torch.nn.AdaptiveMaxPool2d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
    return_indices : bool, default False
        Also return the argmax positions, flat in each (H, W) plane (int64).

    Shapes
    ------
    x : (N, C, H, W) or (C, H, W); y : (N, C, H_out, W_out) or (C, H_out, W_out).
    """

    _fn = "adaptive_max_pool2d"


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    r"""Adaptive 1-D max pooling, as ``torch.nn.AdaptiveMaxPool1d``: (N, C, L) or (C, L) to
    (N, C, L_out) or (C, L_out), ``output_size`` an int; indices are positions along L."""

    _spatial = 1
    _fn = "adaptive_max_pool1d"


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    r"""Adaptive 3-D max pooling, as ``torch.nn.AdaptiveMaxPool3d``: (N, C, D, H, W) or
    (C, D, H, W) to ``output_size`` (D_out, H_out, W_out); windows scanned depth, row, column
    (first maximum wins); indices flat in each (D, H, W) volume."""

    _spatial = 3
    _fn = "adaptive_max_pool3d"
