"""Functional core of ``Upsample`` / ``F.interpolate``: nearest, nearest-exact, (bi/tri)linear,
bicubic and area resampling of the last 1-3 dimensions, and its backward.

Every mode is separable: along each spatial axis, output position ``o`` is a weighted sum of
input positions, ``y_o = sum_i W[o, i] x_i``, so the layer applies one (out, in) matrix per
axis and the backward pass applies the transposes (dL/dx = W^T dL/dy per axis, the axes in
reverse order). The matrices follow torch's CPU kernels (``UpSample.h``,
``UpSampleKernel.cpp``):

- the scale of an axis: with ``align_corners`` ``(in - 1) / (out - 1)`` (0 for one output),
  else ``1 / scale_factor`` when a scale factor reaches the kernel, else ``in / out``;
- nearest: ``i = min(floor(o * s), in - 1)`` in float32 arithmetic (torch computes this index
  in ``float`` whatever the dtype), with torch's shortcuts ``out == in`` (identity) and
  ``out == 2 in`` (``o >> 1``); nearest-exact: ``min(floor((o + 0.5) * s), in - 1)``;
- linear: source ``x = s * o`` (align_corners) or ``max(s (o + 0.5) - 0.5, 0)``,
  ``i0 = min(floor(x), in - 1)``, ``l1 = clip(x - i0, 0, 1)``, weights ``1 - l1`` at ``i0`` and
  ``l1`` at ``min(i0 + 1, in - 1)``; ``out == in`` copies;
- bicubic: source as linear but not clamped at 0, Keys' cubic convolution with
  ``A = -0.75`` at ``i0 - 1 .. i0 + 2``, indices clamped to the edges (their weights add up);
- area: the adaptive average pooling windows ``[floor(o in / out), ceil((o + 1) in / out))``;
- antialias (bilinear and bicubic, ``F.interpolate(..., antialias=True)``; torch's
  ``_compute_weights_aa``, after Pillow's resampling): a filter ``f`` (the triangle
  ``max(1 - |t|, 0)``, or Keys' cubic with ``A = -0.5``) of support ``h = interp_size / 2``
  (1 or 2), widened by the scale when downsampling (``s >= 1``: ``h s``, and the filter
  reads ``t / s``). Output ``o`` centred at ``c = s (o + 0.5)`` (with ``align_corners`` too,
  its ``s`` being ``(in - 1) / (out - 1)``) takes the inputs ``i`` from
  ``max(trunc(c - h + 0.5), 0)`` to ``min(trunc(c + h + 0.5), in) - 1`` with weights
  ``f((i - c + 0.5) / s)`` divided by their sum (so they add up to 1 at the edges too). An
  axis whose size does not change is copied. The arithmetic follows torch's kernel: double
  products rounded to the dtype where it stores them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Modes, and the input rank each one takes (torch's NotImplementedError otherwise).
MODE_RANKS = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5),
              "linear": (3,), "bilinear": (4,), "bicubic": (4,), "trilinear": (5,)}
LINEAR_MODES = ("linear", "bilinear", "bicubic", "trilinear")
CUBIC_A = -0.75


def _scale(in_size: int, out_size: int, align_corners: bool, scale: float | None,
           dtype: type) -> np.floating:
    """torch's ``area_pixel_compute_scale`` in ``dtype`` (the kernel's opmath type)."""
    if align_corners:
        return dtype((in_size - 1) / (out_size - 1)) if out_size > 1 else dtype(0)
    if scale is not None and scale > 0:
        return dtype(1.0 / scale)
    return dtype(in_size) / dtype(out_size)


def _nearest(in_size: int, out_size: int, scale: float | None, exact: bool) -> np.ndarray:
    o = np.arange(out_size)
    if not exact and out_size == in_size:
        return o
    if not exact and out_size == 2 * in_size:
        return o >> 1
    s = _scale(in_size, out_size, False, scale, np.float32)
    src = (o + 0.5).astype(np.float32) * s if exact else o.astype(np.float32) * s
    return np.minimum(np.floor(src).astype(np.int64), in_size - 1)


def _source(in_size: int, out_size: int, align_corners: bool, scale: float | None,
            dtype: type, cubic: bool) -> tuple[np.ndarray, np.ndarray]:
    """The clamped lower index ``i0`` and the fraction ``l1`` of every output position."""
    s = _scale(in_size, out_size, align_corners, scale, dtype)
    o: np.ndarray = np.arange(out_size).astype(dtype)
    x = s * o if align_corners else s * (o + dtype(0.5)) - dtype(0.5)
    if not cubic and not align_corners:
        x = np.maximum(x, dtype(0))
    i0 = np.minimum(np.floor(x).astype(np.int64), in_size - 1)
    return i0, np.clip(x - i0.astype(dtype), dtype(0), dtype(1))


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights of the four taps around a fraction ``t``."""
    a = t.dtype.type(CUBIC_A)

    def conv1(v: np.ndarray) -> np.ndarray:  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def conv2(v: np.ndarray) -> np.ndarray:  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    one = t.dtype.type(1)
    return [conv2(t + one), conv1(t), conv1(one - t), conv2((one - t) + one)]


#: The modes torch antialiases (its ``HelperInterpLinear`` and ``HelperInterpCubic``).
AA_MODES = ("bilinear", "bicubic")
AA_CUBIC_A = -0.5


def _aa_filter(t: np.ndarray, mode: str) -> np.ndarray:
    """torch's ``aa_filter``: the triangle ``1 - |t|`` on ``|t| < 1`` (bilinear), or Keys'
    cubic convolution with ``A = -0.5`` on ``|t| < 2`` (bicubic); 0 outside."""
    v = np.abs(t)
    dt = t.dtype.type
    if mode == "bilinear":
        return np.where(v < 1, dt(1) - v, dt(0)).astype(t.dtype)
    a = dt(AA_CUBIC_A)
    near = ((a + 2) * v - (a + 3)) * v * v + 1
    far = ((a * v - 5 * a) * v + 8 * a) * v - 4 * a
    return np.where(v < 1, near, np.where(v < 2, far, dt(0))).astype(t.dtype)


def aa_matrix(in_size: int, out_size: int, mode: str, align_corners: bool,
              scale: float | None, dtype: np.dtype) -> np.ndarray:
    """The (out_size, in_size) antialiased matrix of one axis (module docstring), in
    ``dtype``: torch's ``_compute_weights_aa``, whose products of ``double`` and the dtype's
    values are rounded to the dtype where torch stores them."""
    dt = np.dtype(dtype).type
    if out_size == in_size:  # torch skips the axis
        return np.eye(in_size, dtype=dt)
    s = _scale(in_size, out_size, align_corners, scale, dt)
    half = (2 if mode == "bilinear" else 4) * 0.5
    wide = bool(s >= 1.0)
    support = dt(half * float(s)) if wide else dt(half)
    invscale = dt(1.0 / float(s)) if wide else dt(1.0)
    center = (float(s) * (np.arange(out_size) + 0.5)).astype(dt)
    c64 = center.astype(np.float64)
    xmin = np.maximum(np.trunc(c64 - float(support) + 0.5).astype(np.int64), 0)
    xsize = np.minimum(np.trunc(c64 + float(support) + 0.5).astype(np.int64), in_size) - xmin
    xsize = np.clip(xsize, 0, int(math.ceil(support)) * 2 + 1)
    w = np.zeros((out_size, in_size), dtype=dt)
    for o in range(out_size):
        i = np.arange(xmin[o], xmin[o] + xsize[o])
        t = ((i.astype(dt) - center[o]).astype(np.float64) + 0.5) * float(invscale)
        wo = _aa_filter(t.astype(dt), mode)
        total = dt(0)
        for v in wo:  # summed in order, as torch's loop does
            total = dt(total + v)
        w[o, i] = wo / total if total != 0 else wo
    return w


def interp_matrix(in_size: int, out_size: int, mode: str, align_corners: bool,
                  scale: float | None, dtype: np.dtype, antialias: bool = False) -> np.ndarray:
    """The (out_size, in_size) matrix of one axis, in ``dtype``."""
    if antialias:
        if mode not in AA_MODES:
            raise NotImplementedError(f"Anti-alias option is restricted to bilinear and "
                                      f"bicubic modes and requires a 4-D tensor as input, got "
                                      f"mode {mode!r}")
        return aa_matrix(in_size, out_size, mode, align_corners, scale, dtype)
    dt = np.dtype(dtype).type
    w = np.zeros((out_size, in_size), dtype=dt)
    rows = np.arange(out_size)
    if mode in ("nearest", "nearest-exact"):
        w[rows, _nearest(in_size, out_size, scale, mode == "nearest-exact")] = 1
    elif mode == "area":
        for o in range(out_size):
            start = (o * in_size) // out_size
            end = -((-(o + 1) * in_size) // out_size)
            w[o, start:end] = dt(1) / dt(end - start)
    elif mode == "bicubic":
        i0, t = _source(in_size, out_size, align_corners, scale, dt, cubic=True)
        for k, wk in enumerate(_cubic_weights(t)):
            np.add.at(w, (rows, np.clip(i0 - 1 + k, 0, in_size - 1)), wk)
    elif out_size == in_size:  # linear: torch copies when the size does not change
        w[rows, rows] = 1
    else:
        i0, l1 = _source(in_size, out_size, align_corners, scale, dt, cubic=False)
        np.add.at(w, (rows, i0), dt(1) - l1)
        np.add.at(w, (rows, np.minimum(i0 + 1, in_size - 1)), l1)
    return w


def _apply(x: np.ndarray, mats: Sequence[np.ndarray], transpose: bool) -> np.ndarray:
    """``x`` with matrix ``k`` applied along spatial axis ``k`` (axes 2, 3, ...)."""
    order = range(len(mats)) if not transpose else reversed(range(len(mats)))
    for k in order:
        axis = 2 + k
        m = mats[k].T if transpose else mats[k]
        x = np.moveaxis(np.moveaxis(x, axis, -1) @ m.T, -1, axis)
    return x


def interpolate(x: np.ndarray, out_size: Sequence[int], mode: str, align_corners: bool,
                scales: Sequence[float | None], antialias: bool = False
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``x`` (N, C, *S) resampled to (N, C, *out_size); also the matrices (for backward)."""
    mats = [interp_matrix(n, m, mode, align_corners, s, x.dtype, antialias)
            for n, m, s in zip(x.shape[2:], out_size, scales, strict=True)]
    return np.ascontiguousarray(_apply(x, mats, transpose=False)), mats


def interpolate_backward(grad: np.ndarray, mats: Sequence[np.ndarray]) -> np.ndarray:
    """dL/dx = the transposed matrices applied to dL/dy, the last axis first."""
    return np.ascontiguousarray(_apply(grad, mats, transpose=True))


def output_size(in_shape: Sequence[int], size: int | Sequence[int] | None,
                scale_factor: float | Sequence[float] | None) -> list[int]:
    """torch's output size: ``size`` (an int for every axis), or ``floor(in * scale)``."""
    dims = len(in_shape)
    if size is not None:
        sizes = [int(size)] * dims if isinstance(size, int) else [int(s) for s in size]
        if len(sizes) != dims:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_shape)} and output size of {sizes}. Please provide "
                             "input tensor in (N, C, d1, d2, ...,dK) format and output size "
                             "in (o1, o2, ...,oK) format.")
        return sizes
    factors = scale_list(scale_factor, dims)
    return [math.floor(float(n) * float(f or 0.0)) for n, f in zip(in_shape, factors,
                                                                    strict=True)]


def scale_list(scale_factor: float | Sequence[float] | None, dims: int) -> list[float | None]:
    """The scale factor of every spatial axis (None: none given)."""
    if scale_factor is None:
        return [None] * dims
    if isinstance(scale_factor, int | float):
        return [float(scale_factor)] * dims
    factors: list[float | None] = [float(f) for f in scale_factor]
    if len(factors) != dims:
        raise ValueError(f"Input and scale_factor must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of {dims} and "
                         f"scale_factor of shape {factors}. Please provide input tensor in "
                         "(N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                         "format.")
    return factors
