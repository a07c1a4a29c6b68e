r"""Functional core of the convolution layers: im2col, col2im, padding and their adjoints.

Everything works on 2-D spatial data ``(N, C, H, W)``; the 1-D layers call it with ``H = 1``
(kernel ``(1, k)``, stride ``(1, s)``, ...), so there is one implementation of the math.

Convolution as a matrix product (im2col)
----------------------------------------
With ``G`` groups, ``Cg = C / G`` input and ``Og = O / G`` output channels per group,
``K = Cg * kh * kw`` taps per output value and ``M = N * Ho * Wo`` output positions::

    cols[g, (c, i, j), (n, p, q)] = xp[n, g*Cg + c, p*sh + i*dh, q*sw + j*dw]     (G, K, M)
    y[g]  = W[g] @ cols[g]              W[g] = weight[g*Og:(g+1)*Og].reshape(Og, K)

``cols`` is built from a zero-copy ``as_strided`` window view of the padded input ``xp`` and
copied once into GEMM layout; ``np.matmul`` then runs one GEMM per group (batched over the
group axis, no Python loop over positions or groups).

Backward (``Gy[g]`` = dL/dy of group g reshaped to ``(Og, M)``)::

    dW[g]    = Gy[g] @ cols[g]^T                 (Og, K)
    dcols[g] = W[g]^T @ Gy[g]                    (K, M)
    dxp      = col2im(dcols)                     scatter-add each tap back to its pixel
    db       = sum of dL/dy over N, Ho, Wo

``col2im`` is the adjoint of im2col: the loop runs over the ``kh * kw`` kernel taps (never over
positions), each tap adding one strided slab. A transposed convolution is the adjoint of a
convolution, so its forward is ``col2im(W^T @ x)`` and its backward is an im2col + GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NP_MODE: dict[str, Any] = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                            "circular": "wrap"}

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)


@dataclass(frozen=True)
class Geometry:
    """Kernel size, stride and dilation of a 2-D convolution (``(h, w)`` pairs)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]

    def span(self, axis: int) -> int:
        """Extent of the dilated kernel along ``axis``: ``d * (k - 1) + 1``."""
        return self.dilation[axis] * (self.kernel[axis] - 1) + 1

    def out_size(self, padded: tuple[int, int]) -> tuple[int, int]:
        """``floor((padded - span) / stride) + 1`` per spatial axis."""
        return ((padded[0] - self.span(0)) // self.stride[0] + 1,
                (padded[1] - self.span(1)) // self.stride[1] + 1)


# -- padding and its adjoint ---------------------------------------------------------------
def check_padding_fits(shape: tuple[int, ...], pad: Pad4, mode: str) -> None:
    """torch's limits for non-zero padding modes, raised as ValueError with torch's wording."""
    for axis, (lo, hi) in ((2, pad[:2]), (3, pad[2:])):
        size = shape[axis]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                "Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({lo}, {hi}) at dimension {axis} of input {list(shape)}")
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError("Padding value causes wrapping around more than once.")


def pad2d(x: np.ndarray, pad: Pad4, mode: str) -> np.ndarray:
    """Pad the two last axes of ``x`` (N, C, H, W); ``mode`` as torch's ``padding_mode``.

    zeros -> constant 0, reflect -> mirror without repeating the edge, replicate -> repeat
    the edge, circular -> wrap around (NumPy's ``constant``/``reflect``/``edge``/``wrap``).
    """
    if not any(pad):
        return x
    check_padding_fits(x.shape, pad, mode)
    width = ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3]))
    return np.pad(x, width, mode=_NP_MODE[mode])


def _source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For every padded position along one axis, the input index it copies (-1: zero)."""
    if mode == "zeros":
        return np.concatenate([np.full(lo, -1), np.arange(size), np.full(hi, -1)])
    return np.pad(np.arange(size), (lo, hi), mode=_NP_MODE[mode])


def _unpad_axis(g: np.ndarray, axis: int, size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """Adjoint of padding one axis: the interior plus every margin slice added to its source."""
    inner = [slice(None)] * g.ndim
    inner[axis] = slice(lo, lo + size)
    out = g[tuple(inner)].copy()
    if mode == "zeros":
        return out
    src = _source_index(size, lo, hi, mode)
    for k in [*range(lo), *range(lo + size, lo + size + hi)]:  # margin positions only
        dst = [slice(None)] * g.ndim
        dst[axis] = src[k]
        take = [slice(None)] * g.ndim
        take[axis] = k
        out[tuple(dst)] += g[tuple(take)]
    return out


def pad2d_backward(g: np.ndarray, in_hw: tuple[int, int], pad: Pad4, mode: str) -> np.ndarray:
    """dL/dx from dL/dxp: crop for zeros; reflect/replicate/circular add the copies back."""
    if not any(pad):
        return g
    g = _unpad_axis(g, 2, in_hw[0], pad[0], pad[1], mode)
    return _unpad_axis(g, 3, in_hw[1], pad[2], pad[3], mode)


# -- im2col / col2im -----------------------------------------------------------------------
def windows(xp: np.ndarray, geo: Geometry, out_hw: tuple[int, int]) -> np.ndarray:
    """Zero-copy view ``(N, C, kh, kw, Ho, Wo)``: ``v[n, c, i, j, p, q] = xp[n, c, p*sh + i*dh,
    q*sw + j*dw]``."""
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.strides
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    return as_strided(xp, shape=(n, c, kh, kw, *out_hw),
                      strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                      writeable=False)


def im2col(xp: np.ndarray, groups: int, geo: Geometry, out_hw: tuple[int, int]) -> np.ndarray:
    """The GEMM operand ``cols`` of shape ``(G, Cg*kh*kw, N*Ho*Wo)`` (one contiguous copy)."""
    n, c = xp.shape[:2]
    v = windows(xp, geo, out_hw).reshape(n, groups, c // groups, *geo.kernel, *out_hw)
    cols = np.ascontiguousarray(v.transpose(1, 2, 3, 4, 0, 5, 6))
    return cols.reshape(groups, -1, n * out_hw[0] * out_hw[1])


def col2im(cols: np.ndarray, shape: tuple[int, int, int, int], geo: Geometry,
           out_hw: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``cols`` (G, K, M) into an array of ``shape``.

    One strided slab per kernel tap (``kh * kw`` iterations), accumulated in a
    ``(G, Cg, N, H, W)`` buffer and transposed once to ``(N, C, H, W)``.
    """
    n, c, h, w = shape
    groups = cols.shape[0]
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    ho, wo = out_hw
    taps = cols.reshape(groups, c // groups, kh, kw, n, ho, wo)
    acc = np.zeros((groups, c // groups, n, h, w), dtype=cols.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            acc[:, :, :, rows, slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)] += taps[:, :, i, j]
    return np.ascontiguousarray(acc.reshape(c, n, h, w).transpose(1, 0, 2, 3))


def _to_groups(y: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, H, W) -> (G, C/G, N*H*W), the GEMM layout of a channel-major operand."""
    n, c, h, w = y.shape
    return np.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(groups, c // groups, n * h * w)


def _from_groups(y: np.ndarray, n: int, hw: tuple[int, int]) -> np.ndarray:
    """(G, Og, N*H*W) -> (N, G*Og, H, W), contiguous."""
    c = y.shape[0] * y.shape[1]
    return np.ascontiguousarray(y.reshape(c, n, *hw).transpose(1, 0, 2, 3))


# -- convolution ---------------------------------------------------------------------------
@dataclass
class ConvCache:
    """What the convolution backward needs: the im2col matrix and the shapes."""

    cols: np.ndarray
    x_shape: tuple[int, int, int, int]
    padded_hw: tuple[int, int]
    out_hw: tuple[int, int]


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, geo: Geometry,
                   pad: Pad4, groups: int, mode: str) -> tuple[np.ndarray, ConvCache]:
    """``y = conv(pad(x), weight) + bias`` for x (N, C, H, W), weight (O, C/G, kh, kw)."""
    xp = pad2d(x, pad, mode)
    out_hw = geo.out_size(xp.shape[2:])
    cols = im2col(xp, groups, geo, out_hw)
    y = _from_groups(np.matmul(weight.reshape(groups, weight.shape[0] // groups, -1), cols),
                     x.shape[0], out_hw)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y, ConvCache(cols, x.shape, xp.shape[2:], out_hw)


def conv2d_backward(g: np.ndarray, weight: np.ndarray, cache: ConvCache, geo: Geometry,
                    pad: Pad4, groups: int, mode: str, *, input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)`` of :func:`conv2d_forward` (dx is None without input_grad)."""
    gy = _to_groups(g, groups)                                       # (G, Og, M)
    wg = weight.reshape(groups, weight.shape[0] // groups, -1)       # (G, Og, K)
    dw = np.matmul(gy, cache.cols.transpose(0, 2, 1)).reshape(weight.shape)
    db = g.sum(axis=(0, 2, 3))
    if not input_grad:
        return None, dw, db
    n, c = cache.x_shape[:2]
    dxp = col2im(np.matmul(wg.transpose(0, 2, 1), gy), (n, c, *cache.padded_hw), geo,
                 cache.out_hw)
    return pad2d_backward(dxp, cache.x_shape[2:], pad, mode), dw, db


# -- transposed convolution ----------------------------------------------------------------
def conv_transpose2d_size(in_hw: tuple[int, int], geo: Geometry, padding: tuple[int, int],
                          output_padding: tuple[int, int]) -> tuple[int, int]:
    """``(H - 1) * s - 2 p + d (k - 1) + output_padding + 1`` per axis (torch's formula)."""
    return tuple((in_hw[a] - 1) * geo.stride[a] - 2 * padding[a] + geo.span(a)  # type: ignore
                 + output_padding[a] for a in range(2))


@dataclass
class ConvTransposeCache:
    """What the transposed-convolution backward needs: the grouped input and the shapes."""

    xg: np.ndarray
    x_shape: tuple[int, int, int, int]
    full_hw: tuple[int, int]


def conv_transpose2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                             geo: Geometry, padding: tuple[int, int],
                             output_padding: tuple[int, int], groups: int
                             ) -> tuple[np.ndarray, ConvTransposeCache]:
    """Transposed convolution, weight (C_in, C_out/G, kh, kw): ``col2im(W^T x)``, cropped.

    ``W^T x`` spreads every input pixel over the kernel footprint (``cols``), col2im sums the
    overlapping footprints on the full grid ``(H - 1) s + d (k - 1) + 1 + output_padding``,
    and ``padding`` rows/columns are cropped from each side.
    """
    n, c_in, h, w = x.shape
    xg = _to_groups(x, groups)                                        # (G, Cg, M)
    wg = weight.reshape(groups, c_in // groups, -1)                  # (G, Cg, K)
    full = tuple(conv_transpose2d_size((h, w), geo, (0, 0), output_padding))
    c_out = weight.shape[1] * groups
    yfull = col2im(np.matmul(wg.transpose(0, 2, 1), xg), (n, c_out, *full), geo, (h, w))
    y = yfull[:, :, padding[0]:full[0] - padding[0], padding[1]:full[1] - padding[1]]
    y = np.ascontiguousarray(y)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y, ConvTransposeCache(xg, x.shape, full)  # type: ignore[arg-type]


def conv_transpose2d_backward(g: np.ndarray, weight: np.ndarray, cache: ConvTransposeCache,
                              geo: Geometry, padding: tuple[int, int], groups: int, *,
                              input_grad: bool = True
                              ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)``: the adjoint of col2im is im2col of the zero-padded gradient."""
    n, c_in, h, w = cache.x_shape
    ph, pw = padding
    full_h, full_w = cache.full_hw
    gfull = np.zeros((*g.shape[:2], full_h, full_w), dtype=g.dtype)
    gfull[:, :, ph:full_h - ph, pw:full_w - pw] = g
    cols = im2col(gfull, groups, geo, (h, w))                        # (G, K, M)
    wg = weight.reshape(groups, c_in // groups, -1)                  # (G, Cg, K)
    dw = np.matmul(cache.xg, cols.transpose(0, 2, 1)).reshape(weight.shape)
    db = g.sum(axis=(0, 2, 3))
    if not input_grad:
        return None, dw, db
    return _from_groups(np.matmul(wg, cols), n, (h, w)), dw, db
