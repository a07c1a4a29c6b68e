r"""Functional core of the convolution layers: im2col, col2im, padding and their adjoints.

Everything works on ``D`` spatial axes, ``(N, C, *spatial)`` with ``D = len(spatial)``
(the 2-D and 3-D layers call it directly; the 1-D layers call it with a unit height,
kernel ``(1, k)``, stride ``(1, s)``, ...), so there is one implementation of the math. The
formulas below are written for 2-D (``(i, j)`` a kernel tap, ``(p, q)`` an output position);
in 3-D a tap is ``(i, j, l)`` and a position ``(p, q, r)``, nothing else changes.

Convolution as a matrix product (im2col)
----------------------------------------
With ``G`` groups, ``Cg = C / G`` input and ``Og = O / G`` output channels per group,
``K = Cg * kh * kw`` taps per output value and ``P = Ho * Wo`` output positions per sample::

    cols[n, g, (c, i, j), (p, q)] = xp[n, g*Cg + c, p*sh + i*dh, q*sw + j*dw]     (N, G, K, P)
    y[n, g] = W[g] @ cols[n, g]         W[g] = weight[g*Og:(g+1)*Og].reshape(Og, K)

``cols`` is built from a zero-copy ``as_strided`` window view of the padded input ``xp`` and
copied into GEMM layout (sample-major, so neither ``cols`` nor ``y`` is transposed: ``y[n]``
is already the (O, P) block of the (N, O, Ho, Wo) output); ``np.matmul`` then runs one GEMM
per sample and group. The batch is processed in chunks of samples whose columns fit
:data:`CHUNK_BYTES` (:func:`columns`), built into one reused buffer: no whole-batch ``cols``
is made or kept (the backward builds each chunk's columns again from ``xp``), and each
GEMM reads columns that are still in the CPU's cache. Every output element is the same sum
in the same order whatever the chunk size; the weight gradient adds the samples' terms in
batch order.

Backward (``Gy[n, g]`` = dL/dy of sample n and group g, a view of shape ``(Og, P)``)::

    dW[g]       = sum_n Gy[n, g] @ cols[n, g]^T      (Og, K)
    dcols[n, g] = W[g]^T @ Gy[n, g]                  (K, P)
    dxp         = col2im(dcols)                      scatter-add each tap back to its pixel
    db          = sum of dL/dy over N, Ho, Wo

``col2im`` is the adjoint of im2col: the loop runs over the ``kh * kw`` (``* kd``) kernel
taps (never over positions), each tap adding one strided slab. A transposed convolution is the
adjoint of a convolution, so its forward is ``col2im(W^T @ x)`` and its backward is an im2col
+ GEMM.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from refbp.nn.batch_chunks import sample_slices

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NP_MODE: dict[str, Any] = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                            "circular": "wrap"}

#: Padding of the spatial axes, flat: (lo_0, hi_0, lo_1, hi_1, ...) -- in 2-D (top, bottom,
#: left, right).
Pads = tuple[int, ...]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Geometry:
    """Kernel size, stride and dilation of a convolution, one entry per spatial axis."""

    kernel: Shape
    stride: Shape
    dilation: Shape

    def span(self, axis: int) -> int:
        """Extent of the dilated kernel along ``axis``: ``d * (k - 1) + 1``."""
        return self.dilation[axis] * (self.kernel[axis] - 1) + 1

    def out_size(self, padded: Shape) -> Shape:
        """``floor((padded - span) / stride) + 1`` per spatial axis."""
        return tuple((padded[a] - self.span(a)) // self.stride[a] + 1
                     for a in range(len(self.kernel)))

    @property
    def taps(self) -> int:
        """Number of kernel taps, ``prod(kernel)``."""
        return math.prod(self.kernel)


def _pairs(pad: Pads) -> list[tuple[int, int]]:
    """(lo, hi) per spatial axis from the flat padding."""
    return [(pad[2 * a], pad[2 * a + 1]) for a in range(len(pad) // 2)]


def same_pads(geo: Geometry) -> Pads:
    """padding='same': ``d (k - 1)`` per axis, the odd extra pixel at the end, as torch."""
    tot = [geo.span(a) - 1 for a in range(len(geo.kernel))]
    return tuple(v for t in tot for v in (t // 2, t - t // 2))


# -- padding and its adjoint ---------------------------------------------------------------
def check_padding_fits(shape: Shape, pad: Pads, mode: str) -> None:
    """torch's limits for non-zero padding modes, raised as ValueError with torch's wording."""
    for axis, (lo, hi) in enumerate(_pairs(pad), start=2):
        size = shape[axis]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                "Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({lo}, {hi}) at dimension {axis} of input {list(shape)}")
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError("Padding value causes wrapping around more than once.")


def pad_nd(x: np.ndarray, pad: Pads, mode: str) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, C, *spatial); ``mode`` as torch's ``padding_mode``.

    zeros -> constant 0, reflect -> mirror without repeating the edge, replicate -> repeat
    the edge, circular -> wrap around (NumPy's ``constant``/``reflect``/``edge``/``wrap``).
    """
    if not any(pad):
        return x
    check_padding_fits(x.shape, pad, mode)
    return np.pad(x, ((0, 0), (0, 0), *_pairs(pad)), mode=_NP_MODE[mode])


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


def pad_nd_backward(g: np.ndarray, in_spatial: Shape, pad: Pads, mode: str) -> np.ndarray:
    """dL/dx from dL/dxp: crop for zeros; reflect/replicate/circular add the copies back."""
    if not any(pad):
        return g
    for axis, ((lo, hi), size) in enumerate(zip(_pairs(pad), in_spatial, strict=True), start=2):
        g = _unpad_axis(g, axis, size, lo, hi, mode)
    return g


# -- im2col / col2im -----------------------------------------------------------------------
def windows(xp: np.ndarray, geo: Geometry, out: Shape) -> np.ndarray:
    """Zero-copy view ``(N, C, *kernel, *out)``: in 2-D ``v[n, c, i, j, p, q] = xp[n, c,
    p*sh + i*dh, q*sw + j*dw]``."""
    n, c = xp.shape[:2]
    space = xp.strides[2:]
    return as_strided(xp, shape=(n, c, *geo.kernel, *out),
                      strides=(*xp.strides[:2], *(s * d for s, d in zip(space, geo.dilation,
                                                                        strict=True)),
                               *(s * t for s, t in zip(space, geo.stride, strict=True))),
                      writeable=False)


def im2col(xp: np.ndarray, groups: int, geo: Geometry, out: Shape,
           buf: np.ndarray | None = None) -> np.ndarray:
    """The GEMM operand ``cols`` of shape ``(N, G, Cg*prod(kernel), prod(out))`` (one copy of
    the window view, in its own order), written into the first ``N`` samples of ``buf`` when
    given (a C-contiguous array of at least ``N`` samples of columns)."""
    n, c = xp.shape[:2]
    view = windows(xp, geo, out)
    if buf is None:
        cols = np.ascontiguousarray(view)
    else:
        cols = buf[:n].reshape(view.shape)
        np.copyto(cols, view)
    return cols.reshape(n, groups, c // groups * geo.taps, math.prod(out))


#: Bytes of im2col columns built at a time. The convolutions run over the batch in chunks of
#: samples whose columns fit this budget, built into one buffer that every chunk reuses: the
#: GEMM then reads columns still in the CPU's cache, and no whole-batch columns matrix (9x
#: the input for a 3x3 kernel, new pages to fault in at every step) is made or kept.
CHUNK_BYTES = 4 * 2**20


def columns(xp: np.ndarray, groups: int, geo: Geometry, out: Shape
            ) -> Iterator[tuple[slice, np.ndarray]]:
    """``(samples, cols)`` chunk by chunk over the batch: ``cols`` is ``im2col(xp[samples])``
    (valid until the next chunk is yielded, the buffer being reused)."""
    n, c = xp.shape[:2]
    size = c * geo.taps * math.prod(out)
    parts = sample_slices(n, size * xp.itemsize, CHUNK_BYTES)
    buf = np.empty((parts[0].stop if parts else 0, size), dtype=xp.dtype)
    for part in parts:
        yield part, im2col(xp[part], groups, geo, out, buf)


def col2im(cols: np.ndarray, shape: Shape, geo: Geometry, out: Shape) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``cols`` (N, G, K, P) into an array of ``shape``
    (N, C, *spatial), one strided slab per kernel tap (``prod(kernel)`` iterations)."""
    n, c = shape[:2]
    taps = cols.reshape(n, c, *geo.kernel, *out)
    acc = np.zeros(shape, dtype=cols.dtype)
    for tap in itertools.product(*(range(k) for k in geo.kernel)):
        slab: tuple[Any, ...] = (slice(None), slice(None)) + tuple(
            slice(i * d, i * d + s * (o - 1) + 1, s)
            for i, d, s, o in zip(tap, geo.dilation, geo.stride, out, strict=True))
        acc[slab] += taps[(slice(None), slice(None)) + tap]
    return acc


def _to_groups(y: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *S) -> (N, G, C/G, prod(S)), the GEMM layout of a channel-major operand (a view
    of a contiguous array)."""
    n, c = y.shape[:2]
    return y.reshape(n, groups, c // groups, math.prod(y.shape[2:]))


def _grouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A convolution weight (O, ...) as its GEMM operands, (G, O/G, prod of the rest) (a
    view)."""
    return weight.reshape(groups, weight.shape[0] // groups, weight[0].size)


def _from_groups(y: np.ndarray, spatial: Shape) -> np.ndarray:
    """(N, G, Og, prod(S)) -> (N, G*Og, *S) (a view)."""
    return y.reshape(y.shape[0], y.shape[1] * y.shape[2], *spatial)


def _accumulate(acc: np.ndarray | None, terms: np.ndarray) -> np.ndarray:
    """``acc + terms[0] + terms[1] + ...`` added in that order (``acc`` None: from terms[0]);
    the order of ``np.sum(axis=0)`` over the whole batch, chunk after chunk."""
    start = 0
    if acc is None:
        acc, start = terms[0].copy(), 1
    for term in terms[start:]:
        acc += term
    return acc


def _weight_grad(a: np.ndarray, src: np.ndarray, groups: int, geo: Geometry, out: Shape,
                 also: Callable[[slice, np.ndarray], object] | None = None) -> np.ndarray:
    """``sum_n a[n, g] @ cols[n, g]^T`` for a (N, G, R, P) and ``cols = im2col(src)``
    (N, G, K, P), built chunk by chunk; samples summed in order: (G, R, K). Each term is
    computed transposed, ``cols[n, g] @ a[n, g]^T``: the same dot products, and OpenBLAS runs
    that orientation (both operands read along their rows) about 1.4x faster in float32.
    ``also(samples, cols)``, when given, is called with each chunk's columns too (another
    product of the same columns, built once)."""
    acc: np.ndarray | None = None
    for part, cols in columns(src, groups, geo, out):
        acc = _accumulate(acc, np.matmul(cols, a[part].transpose(0, 1, 3, 2)))
        if also is not None:
            also(part, cols)
    if acc is None:  # an empty batch
        return np.zeros((groups, a.shape[2], src.shape[1] // groups * geo.taps),
                        dtype=np.result_type(a, src))
    return acc.transpose(0, 2, 1)


def _bias_shape(bias: np.ndarray, d: int) -> np.ndarray:
    return bias.reshape(1, -1, *(1,) * d)


# -- convolution ---------------------------------------------------------------------------
@dataclass
class ConvCache:
    """What the convolution backward needs: the padded input and the shapes."""

    xp: np.ndarray
    x_shape: Shape
    out: Shape


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, geo: Geometry,
                 pad: Pads, groups: int, mode: str) -> tuple[np.ndarray, ConvCache]:
    """``y = conv(pad(x), weight) + bias`` for x (N, C, *S), weight (O, C/G, *kernel): one
    GEMM per sample and group, ``W[g] @ cols[n, g]``, the columns built chunk by chunk."""
    xp = pad_nd(x, pad, mode)
    out = geo.out_size(xp.shape[2:])
    wg = _grouped(weight, groups)
    y = np.empty((x.shape[0], *wg.shape[:2], math.prod(out)), dtype=np.result_type(x, weight))
    for part, cols in columns(xp, groups, geo, out):
        np.matmul(wg, cols, out=y[part])
    y = _from_groups(y, out)
    if bias is not None:
        y += _bias_shape(bias, len(out))
    return y, ConvCache(xp, x.shape, out)


def conv_backward(g: np.ndarray, weight: np.ndarray, cache: ConvCache, geo: Geometry,
                  pad: Pads, groups: int, mode: str, *, input_grad: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)`` of :func:`conv_forward` (dx is None without input_grad)."""
    g = np.ascontiguousarray(g)
    gy = _to_groups(g, groups)                                       # (N, G, Og, P)
    dw = _weight_grad(gy, cache.xp, groups, geo, cache.out).reshape(weight.shape)
    db = g.sum(axis=(0, *range(2, g.ndim)))
    if not input_grad:
        return None, dw, db
    spatial = cache.x_shape[2:]
    if all(s == 1 for s in geo.stride):
        if mode == "zeros":  # only the pixels of x: the zero border's gradient is dropped
            return _full_correlation(g, weight, geo, groups, pad, spatial), dw, db
        dxp = _full_correlation(g, weight, geo, groups, (0,) * len(pad), cache.xp.shape[2:])
    else:
        wgt = _grouped(weight, groups).transpose(0, 2, 1)              # (G, K, Og)
        dxp = col2im(np.matmul(wgt, gy), cache.xp.shape, geo, cache.out)
    return pad_nd_backward(dxp, spatial, pad, mode), dw, db


def _full_correlation(g: np.ndarray, weight: np.ndarray, geo: Geometry, groups: int,
                      pad: Pads, size: Shape) -> np.ndarray:
    """dL/dxp of a stride-1 convolution as a gather instead of col2im's scatter, on the
    pixels ``lo .. lo + size`` of the padded grid along each axis (``pad = (lo, hi, ...)``).

    With stride 1, ``dxp[n, c, u] = sum_{o, t} W[o, c, t] g[n, o, u - t d]`` (2-D: ``u`` a
    pixel, ``t`` a tap): the correlation of ``g`` zero-padded by ``span - 1`` on each side
    with the kernel flipped along every spatial axis (tap ``t`` of the window at ``u`` reads
    ``g[u - (k - 1 - t) d]``). So ``dxp = W~ @ im2col(g padded)`` per sample and group,
    ``W~[g][c, (o, t)] = W[g Og + o, c, k - 1 - t]``: one copy and one GEMM per chunk of
    samples. The windows of the pixels from ``lo`` on start ``lo`` into that padded ``g``,
    so it is padded by ``span - 1 - lo`` before (cropped when negative) and ``size`` windows
    are taken.
    """
    d = g.ndim - 2
    spans = [geo.span(a) for a in range(d)]
    lead = [spans[a] - 1 - pad[2 * a] for a in range(d)]
    trail = [size[a] + spans[a] - 1 - g.shape[2 + a] - lead[a] for a in range(d)]
    wide = np.pad(g, ((0, 0), (0, 0), *[(max(b, 0), max(e, 0)) for b, e in zip(lead, trail,
                                                                                 strict=True)]))
    crop = tuple(slice(max(-b, 0), max(-b, 0) + n + k - 1)
                 for b, n, k in zip(lead, size, spans, strict=True))
    wide = wide[(slice(None), slice(None)) + crop]
    o, cg = weight.shape[:2]
    flipped = weight[(slice(None), slice(None)) + (slice(None, None, -1),) * d]
    wt = flipped.reshape(groups, o // groups, cg, geo.taps).transpose(0, 2, 1, 3)
    wt = wt.reshape(groups, cg, -1)                                    # (G, Cg, Og*taps)
    dx = np.empty((g.shape[0], groups, cg, math.prod(size)), dtype=np.result_type(g, weight))
    for part, cols in columns(wide, groups, geo, size):
        np.matmul(wt, cols, out=dx[part])
    return _from_groups(dx, size)


# -- transposed convolution ----------------------------------------------------------------
def conv_transpose_size(spatial: Shape, geo: Geometry, padding: Shape,
                        output_padding: Shape) -> Shape:
    """``(H - 1) * s - 2 p + d (k - 1) + output_padding + 1`` per axis (torch's formula)."""
    return tuple((spatial[a] - 1) * geo.stride[a] - 2 * padding[a] + geo.span(a)
                 + output_padding[a] for a in range(len(spatial)))


@dataclass
class ConvTransposeCache:
    """What the transposed-convolution backward needs: the grouped input and the shapes."""

    xg: np.ndarray
    x_shape: Shape
    full: Shape


def _crop(padding: Shape, full: Shape) -> tuple[slice, ...]:
    """The interior of the full grid once ``padding`` is cropped from each side."""
    return (slice(None), slice(None), *(slice(p, f - p) for p, f in zip(padding, full,
                                                                         strict=True)))


def conv_transpose_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                           geo: Geometry, padding: Shape, output_padding: Shape, groups: int
                           ) -> tuple[np.ndarray, ConvTransposeCache]:
    """Transposed convolution, weight (C_in, C_out/G, *kernel): ``col2im(W^T x)``, cropped.

    ``W^T x`` spreads every input pixel over the kernel footprint (``cols``), col2im sums the
    overlapping footprints on the full grid ``(H - 1) s + d (k - 1) + 1 + output_padding``,
    and ``padding`` rows/columns are cropped from each side.
    """
    n = x.shape[0]
    spatial = x.shape[2:]
    xg = _to_groups(np.ascontiguousarray(x), groups)                  # (N, G, Cg, P)
    wg = _grouped(weight, groups)                                     # (G, Cg, K)
    full = conv_transpose_size(spatial, geo, (0,) * len(spatial), output_padding)
    c_out = weight.shape[1] * groups
    yfull = col2im(np.matmul(wg.transpose(0, 2, 1), xg), (n, c_out, *full), geo, spatial)
    y = np.ascontiguousarray(yfull[_crop(padding, full)])
    if bias is not None:
        y += _bias_shape(bias, len(spatial))
    return y, ConvTransposeCache(xg, x.shape, full)


def conv_transpose_backward(g: np.ndarray, weight: np.ndarray, cache: ConvTransposeCache,
                            geo: Geometry, padding: Shape, groups: int, *,
                            input_grad: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)``: the adjoint of col2im is im2col of the zero-padded gradient."""
    spatial = cache.x_shape[2:]
    gfull = np.zeros((*g.shape[:2], *cache.full), dtype=g.dtype)
    gfull[_crop(padding, cache.full)] = g
    wg = _grouped(weight, groups)                                     # (G, Cg, K)
    db = g.sum(axis=(0, *range(2, g.ndim)))
    if not input_grad:
        dw = _weight_grad(cache.xg, gfull, groups, geo, spatial)
        return None, dw.reshape(weight.shape), db
    dx = np.empty(cache.xg.shape, dtype=np.result_type(g, weight))
    dw = _weight_grad(cache.xg, gfull, groups, geo, spatial,   # dx from the same columns
                      also=lambda part, cols: np.matmul(wg, cols, out=dx[part]))
    return _from_groups(dx, spatial), dw.reshape(weight.shape), db
