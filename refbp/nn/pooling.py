r"""Pooling layers with torch's names, arguments, defaults and errors (no torch).

``MaxPool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``, ``AdaptiveMaxPool2d``. The
math lives in :mod:`refbp.nn.functional_pool` (window tables, scan, scatter); 1-D layers run
as 2-D with a unit height, as torch does.

Forward and backward, for a window :math:`W_p` of output p (input positions, padding excluded):

- max: :math:`y_p = \max_{i \in W_p} x_i`; the gradient flows only to the routed argmax
  :math:`i^*_p`: :math:`\partial L / \partial x_i = \sum_{p : i^*_p = i} g_p` (an input that is
  the maximum of several overlapping windows collects all their gradients). Ties go to the
  first maximum in row-major scan order, as in torch's CPU kernel (see ``max_forward``).
- average: :math:`y_p = \frac{1}{D_p} \sum_{i \in W_p} x_i` with torch's divisor :math:`D_p`
  (window size with or without padding, or ``divisor_override``);
  :math:`\partial L / \partial x_i = \sum_{p : i \in W_p} g_p / D_p`.
- adaptive: the same with windows :math:`[\lfloor oL/O \rfloor, \lceil (o+1)L/O \rceil)` per
  axis; an adaptive average divides by each axis's window length in turn, as torch does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import functional_pool as fp
from refbp.nn.module import Cache, Module

_WORDS = {1: "one", 2: "two", 3: "three"}


def _tuple(v: Any, n: int, what: str, fn: str, verb: str = "must either be") -> tuple[int, ...]:
    """An int or a length-n sequence as an n-tuple of ints; torch's message otherwise."""
    if isinstance(v, int | np.integer):
        return (int(v),) * n
    if isinstance(v, tuple | list) and len(v) in (1, n) and all(
            isinstance(e, int | np.integer) for e in v):
        return tuple(int(e) for e in v) * (n if len(v) == 1 else 1)
    raise ValueError(f"{fn}: {what} {verb} a single int, or a tuple of {_WORDS[n]} ints")


def _check_sliding(kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                   dilation: tuple[int, ...]) -> None:
    """torch's ``pool2d_shape_check`` / ``pool3d_shape_check`` argument checks (messages
    verbatim; the axes are named T, H, W)."""
    if 0 in stride:
        raise ValueError("stride should not be zero")
    if min(padding) < 0:
        raise ValueError(f"pad must be non-negative, but got pad: {min(padding)}")
    for k, p, d in zip(kernel, padding, dilation, strict=True):
        if p > ((k - 1) * d + 1) // 2:
            raise ValueError("pad should be at most half of effective kernel size, but got "
                             f"pad={p}, kernel_size={k} and dilation={d}")
    for what, prefix, values in (("kernel size", "k", kernel), ("stride", "d", stride),
                                 ("dilation", "dilation", dilation)):
        if min(values) <= 0:
            named = " ".join(f"{prefix}{axis}: {v}" for axis, v in zip(
                "THW"[-len(values):], values, strict=True))
            raise ValueError(f"{what} should be greater than zero, but got {named}")


def _check_size(channels: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    if min(out_shape) < 1:
        given = "x".join(str(n) for n in (channels, *in_shape))
        calc = "x".join(str(n) for n in (channels, *out_shape))
        raise ValueError(f"Given input size: ({given}). Calculated output size: ({calc}). "
                         "Output size is too small")


def _stride(v: Any, kernel: tuple[int, ...], n: int, fn: str,
            verb: str = "must either be") -> tuple[int, ...]:
    """An omitted (``None``, ``()`` or ``[]``) stride is the kernel size, as in torch."""
    if v is None or (isinstance(v, tuple | list) and len(v) == 0):
        return kernel
    return _tuple(v, n, "stride", fn, verb + " omitted,")


def _check_max_pool1d(k: int, s: int, p: int, d: int) -> None:
    """torch's ``check_max_pool1d`` (messages verbatim)."""
    for what, v, bad in (("kernel_size", k, k <= 0), ("stride", s, s <= 0),
                         ("padding", p, p < 0), ("dilation", d, d <= 0)):
        if bad:
            cond = "be non-negative" if what == "padding" else "be greater than zero"
            raise ValueError(f"max_pool1d() {what} must {cond}, but got {v}")
    if p > k // 2:
        raise ValueError("max_pool1d() padding should be at most half of kernel size, but got "
                         f"padding={p} and kernel_size={k}")


class _Pool(Module):
    """Shared plumbing: reshape to (B, plane), run a window table, cache for backward.

    ``_spatial`` is 1, 2 or 3, the number of spatial dimensions torch's layer pools over.
    """

    _spatial = 2
    _fn = "pool"

    def __init__(self) -> None:
        super().__init__()
        self._cache = Cache(type(self).__name__)

    def _rank_error(self, x: np.ndarray) -> str:
        raise NotImplementedError

    def _split(self, x: Any) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
        """x as float; its spatial shape (1-D gets a unit height, as 2-D); lead dims."""
        x = as_float_array(x, f"{type(self).__name__} input")
        s = self._spatial
        if x.ndim not in (s + 1, s + 2) or (x.ndim == s + 2 and x.shape[1] == 0):
            raise ValueError(self._rank_error(x))
        spatial = x.shape[-s:]
        lead = x.shape[:-s]
        return x, lead, ((1,) + spatial if s == 1 else spatial)

    def _finish(self, y2: np.ndarray, lead: tuple[int, ...], w: fp.Windows) -> np.ndarray:
        out_shape = w.out_shape[-self._spatial:]
        return y2.reshape(lead + out_shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x from d loss / d y (the pooled values; indices carry no gradient)."""
        c = self._cache.load()
        if grad_out.shape != c["out_shape"]:
            raise ValueError(f"{type(self).__name__} grad_out must have shape "
                             f"{c['out_shape']}, got {grad_out.shape}")
        g2 = np.asarray(grad_out).reshape(-1, int(np.prod(c["w"].out_shape, dtype=np.int64)))
        gx = self._backward2(g2, c)
        return gx.reshape(c["in_shape"])

    def _backward2(self, g2: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError


class _SlidingPool(_Pool):
    """The arguments every sliding pooling stores as given (torch keeps them unparsed)."""

    def __init__(self, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode

    def _params(self) -> tuple[tuple[int, ...], ...]:
        raise NotImplementedError

    def _rank_error(self, x: np.ndarray) -> str:
        s = self._spatial
        return f"non-empty {s + 1}D or {s + 2}D (batch mode) tensor expected for input"

    _verb = "must either be"  # torch's wording of its kernel_size message

    def _ksp(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Kernel, stride and padding of a 2-D or 3-D layer as tuples (torch's messages
        otherwise)."""
        n = self._spatial
        k = _tuple(self.kernel_size, n, "kernel_size", self._fn, self._verb)
        return (k, _stride(self.stride, k, n, self._fn, self._verb),
                _tuple(self.padding, n, "padding", self._fn, self._verb))


class _MaxPoolNd(_SlidingPool):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = dilation
        self.return_indices = return_indices

    def forward(self, x: Any) -> Any:
        """Window maxima (and indices with ``return_indices``); caches the argmax."""
        x, lead, plane = self._split(x)
        k, s, p, d = self._params()
        w = fp.sliding_windows(plane, k, s, p, d, bool(self.ceil_mode))
        self._check_output(x, plane, w)
        x2 = x.reshape(-1, w.plane)
        y2, pos = fp.max_forward(x2, w)
        y = self._finish(y2, lead, w)
        self._cache.save(w=w, pos=pos, in_shape=x.shape, out_shape=y.shape)
        if self.return_indices:
            return y, pos.reshape(y.shape)
        return y

    def _params(self) -> tuple[tuple[int, ...], ...]:
        k, s, p = self._ksp()
        d = _tuple(self.dilation, self._spatial, "dilation", self._fn, "must be either")
        _check_sliding(k, s, p, d)
        return k, s, p, d

    def _check_output(self, x: np.ndarray, plane: tuple[int, ...], w: fp.Windows) -> None:
        channels = x.shape[-self._spatial - 1]
        _check_size(channels, plane, w.out_shape)

    def _backward2(self, g2: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        return fp.max_backward(g2, c["pos"], c["w"].plane, distinct=c["w"].disjoint)

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    r"""2-D max pooling, as ``torch.nn.MaxPool2d`` (formulas in the module docstring).

    Parameters
    ----------
    kernel_size, stride (default: kernel_size), padding (default 0), dilation (default 1) :
        int or (int, int). Padding is implicit ``-inf`` (never the maximum) and at most half
        the effective kernel ``d (k - 1) + 1``.
    return_indices : bool, default False
        Also return the argmax positions, flat in each (H, W) plane (int64), as torch.
    ceil_mode : bool, default False
        Round the output size up (the last window must start inside input or left padding).

    Shapes
    ------
    x : (N, C, H, W) or (C, H, W); y : (N, C, H_out, W_out) or (C, H_out, W_out) with
    ``H_out = floor((H + 2p - d (k - 1) - 1) / s) + 1`` (ceil with ``ceil_mode``).
    """

    _fn = "max_pool2d"


class MaxPool3d(_MaxPoolNd):
    r"""3-D max pooling, as ``torch.nn.MaxPool3d``: :class:`MaxPool2d` with a depth axis.

    Arguments are ints or triples (kT, kH, kW); windows are scanned depth, then row, then
    column, the first maximum wins (NaN: the last NaN), as torch's CPU kernel. Indices are
    flat in each (D, H, W) volume. x : (N, C, D, H, W) or (C, D, H, W).
    """

    _spatial = 3
    _fn = "max_pool3d"


class MaxPool1d(_MaxPoolNd):
    r"""1-D max pooling, as ``torch.nn.MaxPool1d``: :class:`MaxPool2d` over (N, C, L) or (C, L)
    with a unit height; indices are positions along L. Arguments are ints (or 1-tuples)."""

    _spatial = 1
    _fn = "max_pool1d"

    def _rank_error(self, x: np.ndarray) -> str:
        return ("max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch "
                f"size for input, but got:{list(x.shape)}")

    def _params(self) -> tuple[tuple[int, ...], ...]:
        k, p, d = (_tuple(v, 1, name, self._fn)[0] for v, name in (
            (self.kernel_size, "kernel_size"), (self.padding, "padding"),
            (self.dilation, "dilation")))
        s = _stride(self.stride, (k,), 1, self._fn)[0]
        _check_max_pool1d(k, s, p, d)
        return (1, k), (1, s), (0, p), (1, d)

    def _check_output(self, x: np.ndarray, plane: tuple[int, ...], w: fp.Windows) -> None:
        if w.out_shape[1] < 1:
            raise ValueError(f"max_pool1d() Invalid computed output size: {w.out_shape[1]}")


class _AvgPoolNd(_SlidingPool):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> np.ndarray:
        """Window averages with torch's divisor; caches the windows for backward."""
        x, lead, plane = self._split(x)
        k, s, p = self._params()
        if self.divisor_override is not None and self.divisor_override == 0:
            raise ValueError("divisor must be not zero")
        self._check_input(plane, k)
        w = fp.sliding_windows(plane, k, s, p, (1,) * len(k), bool(self.ceil_mode))
        _check_size(x.shape[-self._spatial - 1], plane, w.out_shape)
        div = fp.sliding_divisor(plane, k, s, p, bool(self.ceil_mode),
                                 bool(self.count_include_pad), self.divisor_override)
        y = self._finish(fp.avg_forward(x.reshape(-1, w.plane), w, div), lead, w)
        self._cache.save(w=w, div=div, in_shape=x.shape, out_shape=y.shape)
        return y

    def _params(self) -> tuple[tuple[int, ...], ...]:
        k, s, p = self._ksp()
        _check_sliding(k, s, p, (1,) * len(k))
        return k, s, p

    def _check_input(self, plane: tuple[int, ...], k: tuple[int, ...]) -> None:
        """torch's extra input-size check (3-D only)."""

    def _backward2(self, g2: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        return fp.avg_backward(g2, c["w"], c["div"])

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    r"""2-D average pooling, as ``torch.nn.AvgPool2d`` (formulas in the module docstring).

    Parameters
    ----------
    kernel_size, stride (default: kernel_size), padding (default 0) : int or (int, int)
        Zero padding, at most half the kernel.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
        Divide by the window size including padding (but not the ceil-mode overhang past
        it); else by the number of input elements in the window.
    divisor_override : int, optional
        Divide every window by this number instead.

    Shapes
    ------
    x : (N, C, H, W) or (C, H, W); y : (N, C, H_out, W_out) or (C, H_out, W_out).
    """

    _fn = "avg_pool2d"


class AvgPool3d(_AvgPoolNd):
    r"""3-D average pooling, as ``torch.nn.AvgPool3d``: :class:`AvgPool2d` with a depth axis
    (same divisor rules, ``divisor_override`` included); x : (N, C, D, H, W) or (C, D, H, W).
    The input must be at least as large as the kernel in every axis, padding not counted
    (torch's ``pool3d_shape_check``)."""

    _spatial = 3
    _fn = "avg_pool3d"
    _verb = "must be"

    def _check_input(self, plane: tuple[int, ...], k: tuple[int, ...]) -> None:
        if any(n < kk for n, kk in zip(plane, k, strict=True)):
            t, h, w = plane
            raise ValueError(f"input image (T: {t} H: {h} W: {w}) smaller than kernel size "
                             f"(kT: {k[0]} kH: {k[1]} kW: {k[2]})")


class AvgPool1d(_AvgPoolNd):
    r"""1-D average pooling, as ``torch.nn.AvgPool1d`` (torch runs it as a 2-D pooling with a
    unit height, and so does refbp, with the same messages). No ``divisor_override``."""

    _spatial = 1
    _fn = "avg_pool1d"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def _rank_error(self, x: np.ndarray) -> str:
        return (f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument "
                "#1 'self' (while checking arguments for avg_pool1d)")

    def _params(self) -> tuple[tuple[int, ...], ...]:
        k, p = (_tuple(v, 1, name, self._fn)[0] for v, name in (
            (self.kernel_size, "kernel_size"), (self.padding, "padding")))
        s = _stride(self.stride, (k,), 1, self._fn)[0]
        k2, s2, p2 = (1, k), (1, s), (0, p)
        _check_sliding(k2, s2, p2, (1, 1))
        return k2, s2, p2
