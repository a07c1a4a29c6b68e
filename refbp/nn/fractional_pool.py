r"""``FractionalMaxPool2d`` and ``FractionalMaxPool3d``, as torch's (no torch).

Fractional max pooling (Graham, 2014) takes the maximum over ``k``-wide windows whose starts
advance by a *fractional* step ``alpha = (L - k) / (O - 1)``, placed by a random offset.

Windows
-------
For one (sample, channel) plane, along an axis of input length ``L``, kernel ``k`` and ``O``
outputs, with that plane's random sample ``u`` for the axis, torch's ``generate_intervals``
(``aten/src/ATen/native/FractionalMaxPool2d.cpp``) places the window starts::

    alpha     = (L - k) / (O - 1)                          (in the input's dtype)
    start_i   = trunc((i + u) alpha) - trunc(u alpha),      i = 0 .. O - 2
    start_O-1 = L - k                                       (the last window ends at L)

(``O == 1``: the one window starts at ``L - k``). Window ``i`` covers ``[start_i, start_i +
k)``; successive starts differ by ``floor(alpha)`` or ``ceil(alpha)``, so windows overlap
when ``alpha < k``. The arithmetic runs in the input's dtype, as torch's kernel does
(``scalar_t``): a float32 start can differ from the float64 one, and refbp follows each.

The samples ``u`` are one ``(N, C, 2)`` (3-D: ``(N, C, 3)``) array of ``U(0, 1)`` draws:
torch's functional draws ``torch.rand(N, C, 2|3, dtype=input.dtype)`` at every forward pass
that is given none (``_random_samples=None``), in training and in eval mode alike. refbp
cannot reproduce torch's generator, so in a parity run the samples are drawn by torch and fed
to refbp like dropout masks (``refbp.nn.dropout.random_samples``; ``refbp.mirror.dropout``
reads them). torch's kernels read the columns in this order: 2-D ``u[..., 0]`` places the
*width* and ``u[..., 1]`` the height; 3-D ``u[..., 0]`` the depth (time), ``u[..., 1]`` the
height, ``u[..., 2]`` the width. An unbatched input reads the first row of the samples.

Forward and backward
--------------------
With ``W_p`` the window of output ``p`` (the product of its per-axis intervals), scanned in
row-major order (depth, then rows, then columns)::

    y_p = max_{i in W_p} x_i

computed as torch's CPU kernel: from ``max = -inf`` at the window's first element, replace
where ``v > max or isnan(v)``. So ties go to the first maximum and a window holding NaN
reports its last NaN. The output is piecewise the identity on the routed argmax ``i*_p``, so::

    dL/dx_i = sum over p with i*_p = i of g_p

Windows may overlap, so an input can be the argmax of several windows: their gradients add,
one at a time in output order, as torch's backward kernel adds them. The samples get no
gradient (torch refuses one: the starts are piecewise constant in ``u``).

Arguments and errors follow torch's module, functional and kernel checks, with one
difference: a ``kernel_size`` below 1 is refused (torch's 3-D class refuses it too; its 2-D
class accepts it, and its kernel then reads and writes outside the input plane).
"""

from __future__ import annotations

import collections.abc
from itertools import repeat
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import functional_pool as fp
from refbp.nn import init
from refbp.nn.dropout import random_samples
from refbp.nn.module import Cache, Module

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d", "fractional_max_pool",
           "fractional_max_pool_backward", "fractional_starts", "fractional_windows"]

#: The column of the samples that places each spatial axis (in input order), per rank.
SAMPLE_COLUMNS = {2: (1, 0), 3: (0, 1, 2)}


def fractional_starts(u: np.ndarray, length: int, out: int, k: int) -> np.ndarray:
    """torch's ``generate_intervals`` for every plane at once: the window starts
    ``(B, out)`` (int64) along an axis of ``length`` from the samples ``u`` (B,), computed in
    ``u``'s dtype (see the module docstring)."""
    dt = u.dtype.type
    starts = np.empty(u.shape + (out,), dtype=np.int64)
    if out > 1:
        alpha = dt(length - k) / dt(out - 1)
        i = np.arange(out - 1).astype(u.dtype)
        first = np.trunc(u * alpha).astype(np.int64)
        starts[:, :-1] = np.trunc((i[None, :] + u[:, None]) * alpha).astype(np.int64) \
            - first[:, None]
    if out > 0:
        starts[:, -1] = length - k
    return starts


def fractional_windows(samples: np.ndarray, in_shape: tuple[int, ...],
                       out_shape: tuple[int, ...], kernel: tuple[int, ...]) -> np.ndarray:
    """The flat input positions ``(B, P, K)`` of every window of every plane: plane ``b``'s
    output ``p`` (row-major) holds its ``K = prod(kernel)`` elements in row-major scan order.
    ``samples`` is ``(B, dims)`` in torch's column order (:data:`SAMPLE_COLUMNS`)."""
    d, b = len(in_shape), samples.shape[0]
    index = np.zeros((b,) + (1,) * (2 * d), dtype=np.int64)
    for a, (length, out, k) in enumerate(zip(in_shape, out_shape, kernel, strict=True)):
        starts = fractional_starts(samples[:, SAMPLE_COLUMNS[d][a]], length, out, k)
        pos = starts[:, :, None] + np.arange(k)[None, None, :]
        shape = [b] + [1] * (2 * d)
        shape[1 + a], shape[1 + d + a] = out, k
        step = int(np.prod(in_shape[a + 1:], dtype=np.int64))
        index = index + pos.reshape(shape) * step
    full = (b, *out_shape, *kernel)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    return np.broadcast_to(index, full).reshape(b, n_out, int(np.prod(kernel, dtype=np.int64)))


def fractional_max_pool(x2: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima ``(B, P)`` of the planes ``x2`` (B, plane) and their flat positions,
    scanned as torch's kernel scans them (module docstring)."""
    b, p, k = index.shape
    best = np.full((b, p), -np.inf, dtype=x2.dtype)
    pos = index[:, :, 0].copy()
    for j in range(k):
        vals = np.take_along_axis(x2, index[:, :, j], axis=1)
        upd = (vals > best) | np.isnan(vals)
        np.copyto(best, vals, where=upd)
        np.copyto(pos, index[:, :, j], where=upd)
    return best, pos


def fractional_max_pool_backward(g2: np.ndarray, pos: np.ndarray, plane: int) -> np.ndarray:
    """``dx`` (B, plane): each output gradient added at its argmax, in output order."""
    return fp.scatter(g2, pos, plane, g2.dtype)


def _ntuple(v: Any, n: int) -> tuple[Any, ...]:
    """torch's ``_pair`` / ``_triple``: an iterable as a tuple, anything else repeated."""
    return tuple(v) if isinstance(v, collections.abc.Iterable) else tuple(repeat(v, n))


class _FractionalMaxPoolNd(Module):
    """Shared arguments, checks, forward and backward of the two layers."""

    _spatial = 2
    _word = "Ints"
    _out_fn = "fractional_max_pool2d()"

    def __init__(self, kernel_size: Any, output_size: Any = None, output_ratio: Any = None,
                 return_indices: bool = False, _random_samples: Any = None, *,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        n, name = self._spatial, type(self).__name__
        if not all(isinstance(k, int | np.integer) and k > 0
                   for k in _ntuple(kernel_size, n)):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _ntuple(kernel_size, n)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", None if _random_samples is None else
                             as_float_array(_random_samples, f"{name} _random_samples"))
        self.output_size = _ntuple(output_size, n) if output_size is not None else None
        self.output_ratio = _ntuple(output_ratio, n) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a "
                             "pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and (len(self.output_ratio) != n or not all(
                0 < r < 1 for r in self.output_ratio)):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")
        self.generator = generator
        self._cache = Cache(name)

    def _fn(self) -> str:
        return f"fractional_max_pool{self._spatial}d"

    def _out_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """``output_size``, or ``int(L * ratio)`` per axis as torch's functional computes
        it; torch's argument checks (messages verbatim)."""
        n = self._spatial
        fn = self._fn()
        if len(self.kernel_size) != n:
            raise ValueError(f"{fn}: kernel_size must either be a single Int or tuple of "
                             f"{self._word}")
        if self.output_size is not None and len(self.output_size) != n:
            raise ValueError(f"{fn}: output_size must either be a single Int or tuple of "
                             f"{self._word}")
        if x.ndim < n:  # the rank check names it
            return (0,) * n
        if self.output_size is not None:
            return tuple(int(o) for o in self.output_size)
        return tuple(int(x.shape[a - n] * r) for a, r in enumerate(self.output_ratio or ()))

    def _check_input(self, x: np.ndarray, out: tuple[int, ...]) -> None:
        """torch's kernel checks of the input against the output size and kernel."""
        n, fn = self._spatial, self._out_fn
        if x.ndim not in (n + 1, n + 2):
            raise ValueError(f"{fn}: Expected {n + 1}D or {n + 2}D tensor, but got: "
                             f"{list(x.shape)}")
        for d in range(1, x.ndim):
            if x.shape[d] == 0:
                raise ValueError(f"{fn}: Expected input to have non-zero size for non-batch "
                                 f"dimensions, but got{list(x.shape)} with dimension {d} "
                                 "being empty.")
        if min(out) < 0:
            raise ValueError(f"Trying to create tensor with negative dimension {min(out)}: "
                             f"{[*x.shape[:-n], *out]}")
        axes = ("height", "width") if n == 2 else ("time", "height", "width")
        strict = n == 3  # torch's 3-D kernel wants out + k - 1 < L, its 2-D kernel <=
        for name, o, k, length in zip(axes, out, self.kernel_size, x.shape[-n:], strict=True):
            if o + k - 1 > length - strict:
                raise ValueError(f"{fn}: pool {name} {k} too large relative to input {name} "
                                 f"{length}")

    def _samples(self, x: np.ndarray, batch: int) -> np.ndarray:
        """The ``(batch, C, dims)`` samples: the buffer, else drawn (fed in a parity run);
        torch's checks of given samples (messages verbatim)."""
        n = self._spatial
        channels = x.shape[-n - 1]
        u = self._random_samples
        if u is None:
            gen = self.generator if self.generator is not None else init.default_generator()
            return random_samples((batch, channels, n), x.dtype, gen, type(self).__name__)
        if u.dtype != x.dtype:
            raise ValueError("Expect _random_samples to have the same dtype as input")
        if u.ndim != 3:
            raise ValueError(f"Expect _random_samples to have 3 dimensions, got {u.ndim}")
        if u.shape[0] < batch:
            raise ValueError("Expect _random_samples.size(0) no less then input batch size.")
        if u.shape[1] != channels:
            raise ValueError("Expect _random_samples.size(1) equals to input channel size.")
        if u.shape[2] != n:
            raise ValueError(f"Expect _random_samples.size(2) equals to {n}; got "
                             f"{u.shape[2]}.")
        return u[:batch]

    def forward(self, x: Any) -> Any:
        """Window maxima (and their flat positions with ``return_indices``); caches them."""
        n = self._spatial
        x = as_float_array(x, f"{type(self).__name__} input")
        out = self._out_shape(x)
        self._check_input(x, out)
        batch = x.shape[0] if x.ndim == n + 2 else 1
        u = self._samples(x, batch)
        in_shape = x.shape[-n:]
        index = fractional_windows(u.reshape(-1, n), in_shape, out, self.kernel_size)
        plane = int(np.prod(in_shape, dtype=np.int64))
        y2, pos = fractional_max_pool(x.reshape(-1, plane), index)
        y = y2.reshape(x.shape[:-n] + out)
        self._cache.save(pos=pos, plane=plane, in_shape=x.shape, out_shape=y.shape)
        return (y, pos.reshape(y.shape)) if self.return_indices else y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x from d loss / d y (the indices carry no gradient)."""
        c = self._cache.load()
        g = np.asarray(grad_out)
        if g.shape != c["out_shape"]:
            raise ValueError(f"{type(self).__name__} grad_out must have shape "
                             f"{c['out_shape']}, got {g.shape}")
        g2 = g.reshape(c["pos"].shape)
        return fractional_max_pool_backward(g2, c["pos"], c["plane"]).reshape(c["in_shape"])


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    r"""2-D fractional max pooling, as ``torch.nn.FractionalMaxPool2d``.

    Forward: the maximum over ``kH x kW`` windows whose starts advance by the fractional
    steps ``(H - kH) / (H_out - 1)`` and ``(W - kW) / (W_out - 1)`` from a random offset per
    (sample, channel); backward: each output gradient to its argmax, added where windows
    overlap. The placement, the samples and the derivation are in the module docstring.

    Parameters
    ----------
    kernel_size : int or (int, int)
        ``(kH, kW)``; at least 1 (torch's 2-D class does not check).
    output_size : int or (int, int), optional
        ``(H_out, W_out)``; ``H_out + kH - 1 <= H``, ``W_out + kW - 1 <= W``.
    output_ratio : float or (float, float), optional
        Output size as ``int(H * ratio)``, ``int(W * ratio)``, each ratio in (0, 1). Exactly
        one of ``output_size`` and ``output_ratio`` is given.
    return_indices : bool, default False
        Also return the argmax positions, flat in each (H, W) plane (int64).
    _random_samples : array (N', C, 2), optional
        Fixed samples (a buffer, as torch's), of the input's dtype, ``N' >= N``; ``None``
        draws new ones at every forward pass (fed from torch in a parity run).
    generator : numpy.random.Generator, optional (refbp only, keyword)
        Draws the samples when none are fed; ``refbp.nn.init``'s default generator otherwise.

    Shapes
    ------
    x : (N, C, H, W) or (C, H, W); y : (N, C, H_out, W_out) or (C, H_out, W_out).
    """


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    r"""3-D fractional max pooling, as ``torch.nn.FractionalMaxPool3d``.

    As :class:`FractionalMaxPool2d` over ``kT x kH x kW`` windows of volumes (N, C, T, H, W)
    or (C, T, H, W), with samples ``(N', C, 3)`` (columns: depth, height, width). torch's 3-D
    kernel wants ``out + k - 1 < L`` on every axis (strictly, unlike its 2-D kernel).
    """

    _spatial = 3
    _word = "three Ints"
    _out_fn = "fractional_max_pool3d_out()"
