r"""``CrossMapLRN2d``, as torch's (no torch): the local response normalisation of Lua Torch's
``SpatialCrossMapLRN``, ported in ``torch/nn/modules/_functions.py`` as an autograd Function
with its own forward and backward. Both are reproduced step by step, including where they
differ from :class:`~refbp.nn.LocalResponseNorm` and from each other.

Forward
-------
For x (N, C, H, W), ``pre_pad = int((size - 1) / 2 + 1)``. torch builds the window sums of
squares channel by channel, a running sum (per position)::

    S_0 = sum_{c < min(pre_pad, C)} x_c^2
    S_c = S_{c-1} + [c < C - pre_pad + 1] x_{c+pre_pad-1}^2 - [c > pre_pad] x_{c-pre_pad}^2

then ``scale_c = S_c * (alpha / size) + k`` and ``y_c = x_c * scale_c^(-beta)``. The first
``pre_pad`` steps add without removing; the removal starts one channel late (``c > pre_pad``
where Lua's 1-based loop meant ``c >= pre_pad``), so ``x_0^2`` is never removed: from channel
``pre_pad`` on, ``S_c`` is the sum over the centred window ``[c - pre_pad + 1, c + pre_pad -
1]`` *plus* ``x_0^2`` (size 3, C = 6, x = 1..6: S = 5, 14, 30, 51, 78, 62, where the centred
windows give 5, 14, 29, 50, 77, 61).

Backward
--------
torch's backward is its own formula, not the derivative of its forward. With the ratios
``r_c = g_c y_c / scale_c`` and ``ipp = int(size - (size - 1) / 2)``, it places ``r`` at
offset ``ipp`` in a zero array of ``C + size - 1`` channels and slides a window of ``size``
over it::

    A_c  = sum_{j = c - ipp}^{c + size - 1 - ipp} r_j        (r_j = 0 outside [0, C))
    dx_c = scale_c^(-beta) g_c - (2 alpha beta / size) x_c A_c

(the first term is the derivative through the numerator; the second is the chain rule
through ``scale``, ``d scale_j / d x_c = 2 alpha x_c / size`` for the channels ``j`` whose
window holds ``c``, with the window of channels ``j`` taken as ``[c - ipp, c + size - 1 -
ipp]``: for size 3 that is ``[c - 2, c]``, where the forward's window would give ``[c - 1,
c + 1]`` and the extra ``x_0^2`` would add channel 0 everywhere). refbp computes this formula
as torch does: a running sum over channels (first ``A`` summed from the padded start, then
``+ r_{c+size-1-ipp}`` before and ``- r_{c-ipp}`` after each channel), so its results are
torch's, and finite differences of the forward disagree with both. ``size == 1`` makes
torch's backward fail (the padded array is one channel short); refbp raises the same error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn.module import Cache, Module

__all__ = ["CrossMapLRN2d", "cross_map_lrn2d", "cross_map_lrn2d_backward"]


def cross_map_lrn2d(x: np.ndarray, size: int, alpha: float, beta: float,
                    k: float) -> tuple[np.ndarray, np.ndarray]:
    """torch's forward (module docstring): ``y`` and ``scale``, both (N, C, H, W)."""
    channels = x.shape[1]
    sq = x * x
    pre_pad = int((size - 1) / 2 + 1)
    scale = np.zeros_like(x)
    for c in range(min(pre_pad, channels)):
        scale[:, 0] += sq[:, c]
    for c in range(1, channels):
        scale[:, c] = scale[:, c - 1]
        if c < channels - pre_pad + 1:
            scale[:, c] += sq[:, c + pre_pad - 1]
        if c > pre_pad:
            scale[:, c] -= sq[:, c - pre_pad]
    scale = scale * (alpha / size) + k
    return scale ** -beta * x, scale


def cross_map_lrn2d_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, scale: np.ndarray,
                             size: int, alpha: float, beta: float) -> np.ndarray:
    """torch's backward formula (module docstring), channel by channel."""
    channels = x.shape[1]
    ipp = int(size - (size - 1) / 2)
    if ipp + channels > channels + size - 1:
        raise RuntimeError(f"start ({ipp}) + length ({channels}) exceeds dimension size "
                           f"({channels + size - 1}).: torch's CrossMapLRN2d backward needs "
                           "size >= 2")
    grad = scale ** -beta * g
    padded = np.zeros((x.shape[0], channels + size - 1) + x.shape[2:], dtype=x.dtype)
    padded[:, ipp:ipp + channels] = g * y / scale
    accum = np.zeros((x.shape[0],) + x.shape[2:], dtype=x.dtype)
    for j in range(size - 1):
        accum += padded[:, j]
    coeff = x.dtype.type(-(2 * alpha * beta / size))
    for c in range(channels):
        accum += padded[:, c + size - 1]
        grad[:, c] += coeff * x[:, c] * accum
        accum -= padded[:, c]
    return grad


class CrossMapLRN2d(Module):
    r"""Cross-channel local response normalisation of images, as ``torch.nn.CrossMapLRN2d``.

    Forward ``y_c = x_c (k + alpha / size * S_c)^(-beta)`` with torch's running window sums
    of squares ``S_c``; backward torch's own formula, which is not the derivative of the
    forward. Both, and how they differ from :class:`~refbp.nn.LocalResponseNorm`, are derived
    in the module docstring.

    Parameters
    ----------
    size : int
        Channels in the window.
    alpha : float, default 1e-4
    beta : float, default 0.75
    k : float, default 1

    Shapes
    ------
    x : (N, C, H, W) (torch's ValueError for any other rank); y : the same.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self._cache = Cache("CrossMapLRN2d")

    def forward(self, x: Any) -> np.ndarray:
        """torch's forward (module docstring); caches x, y and the scale."""
        x = as_float_array(x, "CrossMapLRN2d input")
        if x.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {x.ndim}D instead.")
        if x.shape[1] == 0:
            raise IndexError(f"select(): index 0 out of range for tensor of size "
                             f"{list(x.shape)} at dimension 1 (CrossMapLRN2d needs at least "
                             "one channel)")
        y, scale = cross_map_lrn2d(x, int(self.size), float(self.alpha), float(self.beta),
                                   float(self.k))
        self._cache.save(x=x, y=y, scale=scale)
        return y

    def backward(self, grad_out: Any) -> np.ndarray:
        """torch's backward formula (module docstring)."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["x"].shape, "CrossMapLRN2d")
        return cross_map_lrn2d_backward(g.astype(c["x"].dtype, copy=False), c["x"], c["y"],
                                        c["scale"], int(self.size), float(self.alpha),
                                        float(self.beta))

    def extra_repr(self) -> str:
        """torch's repr arguments: ``3, alpha=0.0001, beta=0.75, k=1``."""
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
