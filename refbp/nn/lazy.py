r"""The lazy layers, as torch's: ``LazyLinear``, ``LazyConv{1,2,3}d``,
``LazyConvTranspose{1,2,3}d``, ``LazyBatchNorm{1,2,3}d`` and ``LazyInstanceNorm{1,2,3}d``.

A lazy layer is its eager class without the size of its input: ``in_features`` (Linear),
``in_channels`` (the convolutions) or ``num_features`` (the normalizations) is read from the
first input, exactly where torch reads it:

- ``LazyLinear``: ``x.shape[-1]``;
- ``LazyConv*`` / ``LazyConvTranspose*``: ``x.shape[1]`` of a batched input (``d + 2``
  dimensions for ``d`` spatial ones), ``x.shape[0]`` of an unbatched one (``d + 1``); any
  other rank raises torch's RuntimeError, and ``in_channels`` must be divisible by
  ``groups`` (torch's ValueError);
- ``LazyBatchNorm*`` / ``LazyInstanceNorm*``: ``x.shape[1]`` (torch's rule for every rank).

At that first ``forward`` the layer *becomes* its eager class (torch's ``cls_to_become``):
it builds the eager layer with the inferred size and its other arguments, which initialises
the parameters as the eager class does (from ``generator``, refbp's initialisation), takes
over its state and class, and runs the eager ``forward``. From then on it is a ``Linear``,
``Conv2d``, ... in every respect (``type``, ``state_dict``, ``backward``, conversion to torch);
forward and backward maths are the eager class's, with their derivations.

Weights shared with a torch twin: a lazy layer converted from an uninitialised torch lazy
module (``refbp.mirror.from_torch``), or converted to one (``refbp.mirror.to_torch``), is given
a *weight source* (:meth:`take_weights_from`): at materialisation it loads the state the torch
twin materialised at its own first forward (torch draws those weights from its generator,
which NumPy cannot reproduce; they are handed over as dropout masks are). The torch twin must
then run its first forward before the refbp layer runs its own, as a parity run does (the
torch side of each step runs first); otherwise the refbp layer raises a RuntimeError saying so.
Eval-mode and training-mode forwards materialise alike (the buffers start at torch's initial
values: zeros, ones and a count of 0).

Before materialisation the layer holds no parameters (``state_dict()`` is empty, as refbp has
no uninitialised parameter type) and ``backward`` raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refbp.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from refbp.nn.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from refbp.nn.linear import Linear
from refbp.nn.module import Module
from refbp.nn.normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d",
           "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
           "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LazyLinear",
           "LazyModule", "WeightSource"]

#: A lazy layer's weight source: the state dict its twin materialised, or None while the twin
#: has not run its first forward.
WeightSource = Callable[[], Mapping[str, Any] | None]


class LazyModule(Module):
    """A layer whose input size is read from its first input (module docstring).

    Sub-classes name the eager class (``cls_to_become``) and how the size is read
    (:meth:`_infer_size`); the constructor arguments are kept in ``_eager_kwargs`` (and as
    attributes under torch's names) and given to the eager class with the size first.
    """

    cls_to_become: Callable[..., Module]

    def __init__(self, **eager_kwargs: Any) -> None:
        super().__init__()
        self._eager_kwargs = eager_kwargs
        self._weight_source: WeightSource | None = None
        for name, value in eager_kwargs.items():
            if name != "generator":
                setattr(self, name, value)

    def take_weights_from(self, source: WeightSource | None) -> None:
        """Load the state ``source()`` returns at materialisation instead of initialising
        (None: initialise as the eager class does). See the module docstring."""
        self._weight_source = source

    def _infer_size(self, x: np.ndarray) -> int:
        raise NotImplementedError

    def materialize(self, x: Any) -> None:
        """Become the eager class, sized for the input ``x`` (module docstring)."""
        size = self._infer_size(np.asarray(x))
        name = type(self).__name__
        state = None
        if self._weight_source is not None:
            state = self._weight_source()
            if state is None:
                raise RuntimeError(
                    f"{name} takes the weights its torch twin materialises at its first "
                    "forward, and the twin has not run yet: run the torch module's forward "
                    "first (a parity run does)")
        eager = self.cls_to_become(size, **self._eager_kwargs)
        if state is not None:
            eager.load_state_dict(state)
        training = self.training
        self.__dict__.clear()
        self.__dict__.update(eager.__dict__)
        self.__class__ = eager.__class__  # type: ignore[assignment]
        self.train(training)

    def forward(self, *args: Any) -> Any:
        """Materialise on the input ``args[0]`` (module docstring), then the eager class's
        forward."""
        self.materialize(args[0])
        return self.forward(*args)

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """Raises: a lazy layer has no gradient before its first forward (after it, the eager
        class's backward runs)."""
        raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): run "
                           "forward first (the first forward also sizes the layer)")

    def extra_repr(self) -> str:
        """The constructor arguments (torch prints the uninitialised layer's)."""
        return ", ".join(f"{k}={v!r}" for k, v in self._eager_kwargs.items()
                         if k not in ("dtype", "generator"))


class LazyLinear(LazyModule):
    """``Linear`` with ``in_features = x.shape[-1]`` of the first input (module docstring).

    Parameters
    ----------
    out_features : int
    bias : bool, default True
    dtype, generator : refbp only (keyword), as ``Linear``'s
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__(out_features=out_features, bias=bias, dtype=dtype, generator=generator)

    def _infer_size(self, x: np.ndarray) -> int:
        if x.ndim == 0:
            raise ValueError("LazyLinear needs an input with at least one dimension, got a "
                             "0-d array")
        return int(x.shape[-1])


class _LazyConvBase(LazyModule):
    """``in_channels`` from the first input, torch's ``_LazyConvXdMixin._get_in_channels``."""

    _dims = 1

    def _infer_size(self, x: np.ndarray) -> int:
        unbatched = self._dims + 1
        if x.ndim not in (unbatched, unbatched + 1):
            raise RuntimeError(f"Expected {unbatched}D (unbatched) or {unbatched + 1}D "
                               f"(batched) input to {type(self).__name__}, but got input of "
                               f"size: {x.shape}")
        channels = int(x.shape[1] if x.ndim == unbatched + 1 else x.shape[0])
        if channels % self._eager_kwargs["groups"] != 0:
            raise ValueError("in_channels must be divisible by groups")
        return channels


class _LazyConv(_LazyConvBase):
    """A lazy convolution: ``Conv{d}d``'s arguments after ``in_channels``."""

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__(out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias,
                         padding_mode=padding_mode, dtype=dtype, generator=generator)


class _LazyConvTranspose(_LazyConvBase):
    """A lazy transposed convolution: ``ConvTranspose{d}d``'s arguments after
    ``in_channels``."""

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__(out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                         padding=padding, output_padding=output_padding, groups=groups,
                         bias=bias, dilation=dilation, padding_mode=padding_mode, dtype=dtype,
                         generator=generator)


class LazyConv1d(_LazyConv):
    """``Conv1d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = Conv1d, 1


class LazyConv2d(_LazyConv):
    """``Conv2d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = Conv2d, 2


class LazyConv3d(_LazyConv):
    """``Conv3d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = Conv3d, 3


class LazyConvTranspose1d(_LazyConvTranspose):
    """``ConvTranspose1d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = ConvTranspose1d, 1


class LazyConvTranspose2d(_LazyConvTranspose):
    """``ConvTranspose2d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = ConvTranspose2d, 2


class LazyConvTranspose3d(_LazyConvTranspose):
    """``ConvTranspose3d`` with ``in_channels`` from the first input (module docstring)."""

    cls_to_become, _dims = ConvTranspose3d, 3


class _LazyNorm(LazyModule):
    """A lazy normalization: ``num_features = x.shape[1]``. torch's lazy normalizations
    default to ``affine=True, track_running_stats=True``, the lazy instance norms too (their
    eager classes default to False, False)."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__(eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, bias=bias, dtype=dtype)

    def _infer_size(self, x: np.ndarray) -> int:
        if x.ndim < 2:
            raise ValueError(f"{type(self).__name__} reads num_features from dimension 1 of "
                             f"its first input (as torch), got shape {x.shape}")
        return int(x.shape[1])


class LazyBatchNorm1d(_LazyNorm):
    """``BatchNorm1d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNorm):
    """``BatchNorm2d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNorm):
    """``BatchNorm3d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNorm):
    """``InstanceNorm1d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNorm):
    """``InstanceNorm2d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNorm):
    """``InstanceNorm3d`` with ``num_features = x.shape[1]`` of the first input."""

    cls_to_become = InstanceNorm3d
