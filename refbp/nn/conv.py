r"""``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d`` with torch's semantics.

The math lives in :mod:`refbp.nn.functional_conv` (im2col + one GEMM per group, on any number
of spatial axes); these classes validate arguments the way torch does, hold the parameters in
torch's layout and run the 1-D layers as 2-D ones (a length-L signal is a 1 x L image, as
torch's CPU kernels do).

Argument checks raise ``ValueError`` with torch's wording: ``groups`` must be positive and
divide both channel counts, padding must be non-negative (torch only says so at the first
forward; refbp says it when the layer is built), ``padding='same'`` needs stride 1, the
padding mode must be one of zeros/reflect/replicate/circular (transposed: zeros only), and
``output_padding`` must be smaller than either stride or dilation. Inputs of the wrong rank,
channel count or dtype, and inputs smaller than the dilated kernel, raise at ``forward``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array, param_dtype
from refbp.nn import init
from refbp.nn.functional_conv import (
    PADDING_MODES,
    ConvCache,
    ConvTransposeCache,
    Geometry,
    Pads,
    conv_backward,
    conv_forward,
    conv_transpose_backward,
    conv_transpose_forward,
    conv_transpose_size,
    same_pads,
)
from refbp.nn.module import Cache, Module, Parameter

IntOrTuple = int | tuple[int, ...]


def _ntuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """``3 -> (3, 3)``; a tuple/list must have ``n`` entries (torch's message otherwise)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    if isinstance(value, (tuple, list)) and len(value) == 1 and n > 1:
        return _ntuple(value[0], n, name)
    shown = list(value) if isinstance(value, (tuple, list)) else value
    raise ValueError(f"expected {name} to be a single integer value or a list of {n} values to "
                     f"match the convolution dimensions, but got {name}={shown}")


def _lift(t: tuple[int, ...], fill: int) -> tuple[int, ...]:
    """A 1-D argument as its 2-D counterpart with ``fill`` on the dummy height axis (2-D and
    3-D arguments unchanged)."""
    return (fill, t[0]) if len(t) == 1 else tuple(t)


class _ConvBase(Module):
    """Shared construction, validation and 1-D/2-D/3-D plumbing of the six layers."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple, padding: IntOrTuple | str, dilation: IntOrTuple,
                 groups: int, bias: bool, padding_mode: str, output_padding: IntOrTuple,
                 dtype: Any, generator: np.random.Generator | None) -> None:
        super().__init__()
        n = self._nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        self.output_padding = _ntuple(output_padding, n, "output_padding")
        self._check_positive()
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'same', 'valid'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
            if any(p < 0 for p in self.padding):
                raise ValueError(f"negative padding is not supported, got padding={padding}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        if self._transposed:
            self._check_transposed(padding_mode)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dt = param_dtype(dtype)
        shape = ((in_channels, out_channels // groups) if self._transposed
                 else (out_channels, in_channels // groups))
        self.weight = Parameter(np.empty(shape + self.kernel_size, dtype=dt))
        self.bias = Parameter(np.empty((out_channels,), dtype=dt)) if bias else None
        self._cache = Cache(type(self).__name__)
        self.reset_parameters(generator)

    def _check_positive(self) -> None:
        if any(k <= 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be positive, got {self.kernel_size}")
        if any(s <= 0 for s in self.stride):
            raise ValueError("non-positive stride is not supported")
        if any(d <= 0 for d in self.dilation):
            raise ValueError("non-positive dilation is not supported")

    def _check_transposed(self, padding_mode: str) -> None:
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(self.padding, str):
            raise ValueError(f"{type(self).__name__} does not accept padding={self.padding!r}")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op < 0 or (op >= s and op >= d):
                raise ValueError(
                    "output padding must be smaller than either stride or dilation, but got "
                    f"output_padding={self.output_padding}, stride={self.stride}, "
                    f"dilation={self.dilation}")

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """torch's default: ``kaiming_uniform_(weight, a=sqrt(5))`` = U(-1/sqrt(fan_in), ..),
        bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * prod(kernel)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    # -- geometry of the core (1-D as 2-D) ----------------------------------------------------
    def _geometry(self) -> Geometry:
        return Geometry(_lift(self.kernel_size, 1), _lift(self.stride, 1),
                        _lift(self.dilation, 1))

    def _pads(self) -> Pads:
        """(lo, hi) per core axis, flat ((top, bottom, left, right) in 2-D); 'same' puts the
        odd extra pixel at the end, as torch."""
        geo = self._geometry()
        if self.padding == "valid":
            return (0,) * (2 * len(geo.kernel))
        if self.padding == "same":
            return same_pads(geo)
        return tuple(p for p in _lift(self.padding, 0) for _ in (0, 1))  # type: ignore[arg-type]

    def _core_weight(self) -> np.ndarray:
        w = self.weight.data
        return w if self._nd > 1 else w[:, :, None, :]

    # -- input checks -------------------------------------------------------------------------
    def _prepare(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        """Validate ``x``; return it as the core's (N, C, *S) and the shape to give back."""
        name = type(self).__name__
        x = as_float_array(x, f"{name} input")
        nd = self._nd
        op = f"conv{'_transpose' if self._transposed else ''}{nd}d"
        if x.ndim not in (nd + 1, nd + 2):
            raise ValueError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                             f"{op}, but got input of size: {list(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"{name} input dtype {x.dtype} does not match weight dtype "
                            f"{self.weight.dtype}")
        batched = x if x.ndim == nd + 2 else x[None]
        expected = self.in_channels
        if batched.shape[1] != expected:
            raise ValueError(
                f"Given groups={self.groups}, weight of size {list(self.weight.shape)}, "
                f"expected input{list(batched.shape)} to have {expected} channels, but got "
                f"{batched.shape[1]} channels instead")
        x4 = batched if nd > 1 else batched[:, :, None, :]
        return x4, x.shape

    def _restore(self, y4: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        """Drop the dummy height axis (1-D) and the batch axis (unbatched input)."""
        y = y4 if self._nd > 1 else y4[:, :, 0, :]
        return y if len(in_shape) == self._nd + 2 else y[0]

    def _restore_grad(self, g: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        """grad_out as the core's (N, C, *S), after checking it has the output's shape."""
        if g.shape != out_shape:
            raise ValueError(f"{type(self).__name__} grad_out must have shape {out_shape}, got "
                             f"{g.shape}")
        g = g if len(out_shape) == self._nd + 2 else g[None]
        return g if self._nd > 1 else g[:, :, None, :]

    def _core_backward(self, g4: np.ndarray, cache: Any, input_grad: bool
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Accumulate dL/dW, dL/db; return dL/dx (``None`` with ``input_grad=False``, as torch
        skips the input gradient of data that does not require grad)."""
        c = self._cache.load()
        g4 = self._restore_grad(np.asarray(grad_out), c["out_shape"])
        dx, dw, db = self._core_backward(g4, c["cache"], input_grad)
        self.weight.accumulate(dw.reshape(self.weight.shape), owned=True)
        if self.bias is not None:
            self.bias.accumulate(db, owned=True)
        return None if dx is None else self._restore(dx, c["in_shape"])

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvBase):
    r"""Convolution (cross-correlation, as in torch) over 1, 2 or 3 spatial axes.

    Forward, for output channel o in group g = o // Og and output pixel (p, q)::

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] * xp[n, g*Cg + c, p*sh + i*dh,
                                                                  q*sw + j*dw]

    with ``xp`` the input padded by ``padding`` (zeros, or reflect/replicate/circular copies).
    Output size per axis: ``floor((H + 2 p - d (k - 1) - 1) / s) + 1``. In 3-D the sum
    also runs over the depth tap ``l`` and the pixel is ``(p, q, r)``.

    Backward (derivation in :mod:`refbp.nn.functional_conv`): with ``cols`` the im2col matrix
    of ``xp``, ``dW = Gy cols^T``, ``db = sum Gy``, ``dxp = col2im(W^T Gy)`` (with stride 1
    computed as a gather: ``Gy`` zero-padded and correlated with the flipped kernel) and ``dx``
    the adjoint of the padding applied to ``dxp`` (crop for zeros; reflected/replicated/wrapped
    border copies are added back onto the pixels they copied).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple = 1, padding: IntOrTuple | str = 0,
                 dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        """torch's ``Conv{1,2,3}d`` signature (``dtype``, ``generator``: see ``Linear``)."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, dtype, generator)

    def forward(self, x: Any) -> np.ndarray:
        x4, in_shape = self._prepare(x)
        geo, pad = self._geometry(), self._pads()
        padded = tuple(n + pad[2 * a] + pad[2 * a + 1] for a, n in enumerate(x4.shape[2:]))
        spans = tuple(geo.span(a) for a in range(len(padded)))
        if any(p < k for p, k in zip(padded, spans, strict=True)):
            size = padded if self._nd > 1 else padded[1:]
            kern = spans if self._nd > 1 else spans[1:]
            raise ValueError(
                f"Calculated padded input size per channel: ({' x '.join(map(str, size))}). "
                f"Kernel size: ({' x '.join(map(str, kern))}). Kernel size can't be greater "
                "than actual input size")
        b = None if self.bias is None else self.bias.data
        y4, cache = conv_forward(x4, self._core_weight(), b, geo, pad, self.groups,
                                 self.padding_mode)
        y = self._restore(y4, in_shape)
        self._cache.save(cache=cache, in_shape=in_shape, out_shape=y.shape)
        return y

    def _core_backward(self, g4: np.ndarray, cache: ConvCache, input_grad: bool
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        return conv_backward(g4, self._core_weight(), cache, self._geometry(), self._pads(),
                             self.groups, self.padding_mode, input_grad=input_grad)


class _ConvTranspose(_ConvBase):
    r"""Transposed convolution: the adjoint (gradient w.r.t. input) of a convolution.

    Forward, weight (C_in, C_out/G, kh, kw): every input pixel x[n, c, h, w] adds
    ``x * W[c, o, i, j]`` to output pixel ``(h*sh + i*dh - ph, w*sw + j*dw - pw)`` of channel
    ``g*Og + o``; then ``+ bias``. Output size per axis:
    ``(H - 1) s - 2 p + d (k - 1) + output_padding + 1``.

    As matrices (per group): ``cols = W^T X`` (K = Og*kh*kw rows, one column per input pixel),
    ``y = crop(col2im(cols))``. Backward: ``colsG = im2col(pad(Gy))`` (the gradient on the
    full, uncropped grid), ``dX = W colsG``, ``dW = X colsG^T``, ``db = sum Gy``.
    """

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                 output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros", *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        """torch's ``ConvTranspose{1,2,3}d`` signature (argument order as torch)."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype, generator)

    def forward(self, x: Any) -> np.ndarray:
        x4, in_shape = self._prepare(x)
        geo = self._geometry()
        pad = _lift(self.padding, 0)  # type: ignore[arg-type]
        out_pad = _lift(self.output_padding, 0)
        size = conv_transpose_size(x4.shape[2:], geo, pad, out_pad)
        if min(size) <= 0:
            raise ValueError(
                f"{type(self).__name__}: given input size per channel {list(x4.shape[2:])}, "
                f"the calculated output size {list(size)} is too small (padding "
                f"{self.padding} crops more than the output)")
        b = None if self.bias is None else self.bias.data
        y4, cache = conv_transpose_forward(x4, self._core_weight(), b, geo, pad, out_pad,
                                           self.groups)
        y = self._restore(y4, in_shape)
        self._cache.save(cache=cache, in_shape=in_shape, out_shape=y.shape)
        return y

    def _core_backward(self, g4: np.ndarray, cache: ConvTransposeCache, input_grad: bool
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        return conv_transpose_backward(g4, self._core_weight(), cache, self._geometry(),
                                       _lift(self.padding, 0),  # type: ignore[arg-type]
                                       self.groups, input_grad=input_grad)


class Conv1d(_Conv):
    """1-D convolution, as ``torch.nn.Conv1d``; input (N, C_in, L) or (C_in, L).

    weight: (C_out, C_in/groups, k); bias: (C_out,). See :class:`_Conv` for the formulas.
    """

    _nd = 1


class Conv2d(_Conv):
    """2-D convolution, as ``torch.nn.Conv2d``; input (N, C_in, H, W) or (C_in, H, W).

    weight: (C_out, C_in/groups, kh, kw); bias: (C_out,). ``groups == C_in`` is depthwise.
    See :class:`_Conv` for the formulas.
    """


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution, as ``torch.nn.ConvTranspose1d``; input (N, C_in, L).

    weight: (C_in, C_out/groups, k); bias: (C_out,). See :class:`_ConvTranspose`.
    """

    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, as ``torch.nn.ConvTranspose2d``; input (N, C_in, H, W).

    weight: (C_in, C_out/groups, kh, kw); bias: (C_out,). See :class:`_ConvTranspose`.
    """


class Conv3d(_Conv):
    """3-D convolution, as ``torch.nn.Conv3d``; input (N, C_in, D, H, W) or (C_in, D, H, W).

    weight: (C_out, C_in/groups, kd, kh, kw); bias: (C_out,). See :class:`_Conv` for the
    formulas (one more spatial axis: the im2col matrix has ``Cg kd kh kw`` rows).
    """

    _nd = 3


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution, as ``torch.nn.ConvTranspose3d``; input (N, C_in, D, H, W).

    weight: (C_in, C_out/groups, kd, kh, kw); bias: (C_out,). See :class:`_ConvTranspose`.
    """

    _nd = 3
