"""``Dropout``, ``Dropout2d`` and the one mechanism that supplies dropout masks (no torch).

Where a dropout mask comes from
-------------------------------
A dropout layer in training mode multiplies its input by a random keep-mask. The NumPy side
cannot draw torch's random numbers (torch's Bernoulli kernel and generator are not
reproducible from NumPy), yet a parity check needs both sides to drop the *same* elements. So
no refbp layer draws a mask inline: every training-mode dropout -- :class:`Dropout`,
:class:`Dropout2d`, and any layer that drops internally (between recurrent layers, on
attention weights) -- asks :func:`keep_mask` for it, and :func:`keep_mask` answers, in order:

1. the next mask of the active :class:`MaskFeed`, when one is installed with
   ``with feed_masks(masks): model(x)``. Masks are consumed in *draw order*, the order in
   which the forward pass reaches its dropouts; each must have the requested shape (the shape
   of torch's noise tensor: the input's shape, or ``(N, C, 1, 1)`` for channel dropout);
2. otherwise a fresh Bernoulli(1 - p) draw from the layer's NumPy ``Generator``, so refbp
   trains on its own without torch.

Other random draws torch makes in a forward pass are supplied the same way: ``RReLU``'s
slopes (:func:`random_slopes`) and the samples that place fractional max pooling's windows
(:func:`random_samples`, drawn in eval mode too).

Every mask handed out is also appended to the active :class:`MaskRecorder` (``with
record_masks() as rec``), so the masks refbp used can be handed to another implementation.

In a parity run the masks come from torch: ``refbp.mirror.dropout`` reads, just before each
stock ``torch.nn.Dropout`` draws, the mask it *will* draw (stock ``F.dropout`` on a tensor of
ones under the same generator state, which is then restored, so torch's own draw is
untouched and identical), and the harness feeds that list to the refbp forward pass of the
same step. The torch side stays stock torch; the refbp side never needs torch.

Scaling
-------
As torch: ``noise = mask / (1 - p)`` computed in the input dtype (the divisor ``1 - p`` is
formed in double precision and rounded to the dtype once), ``y = x * noise``. ``p == 0``
keeps everything, ``p == 1`` zeroes everything; eval mode is the identity.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import init
from refbp.nn.module import Cache, Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "MaskFeed", "MaskRecorder",
           "check_probability", "dropout_scale", "feature_noise_shape", "feed_masks",
           "keep_mask", "random_samples", "random_slopes", "record_masks"]


class MaskFeed:
    """Dropout keep-masks handed in from outside, consumed in draw order.

    Parameters
    ----------
    masks : sequence of array-like
        Boolean (or 0/1) arrays, one per dropout draw of the forward pass, in the order the
        forward pass reaches them (float arrays for the slopes of ``RReLU``, see
        :func:`random_slopes`).
    """

    def __init__(self, masks: Sequence[Any]) -> None:
        self.masks = [np.asarray(m) for m in masks]
        self.used = 0

    @property
    def remaining(self) -> int:
        """How many fed masks no dropout has used yet."""
        return len(self.masks) - self.used

    def next(self, shape: tuple[int, ...], who: str) -> np.ndarray:
        """The next mask, which must have ``shape``; a clear error when there is none left."""
        if self.used >= len(self.masks):
            raise RuntimeError(
                f"{who} asked for dropout mask #{self.used + 1} of shape {shape}, but only "
                f"{len(self.masks)} masks were fed: the two models draw dropout a different "
                "number of times (or in a different order)"
            )
        mask = self.masks[self.used]
        if mask.shape != tuple(shape):
            raise ValueError(
                f"{who} needs a dropout mask of shape {tuple(shape)}, but fed mask "
                f"#{self.used + 1} has shape {mask.shape}: the two models draw dropout in a "
                "different order or on differently shaped tensors"
            )
        self.used += 1
        return mask

    def check_consumed(self) -> None:
        """Raise when the forward pass used fewer masks than were fed."""
        if self.remaining:
            raise RuntimeError(
                f"the forward pass used {self.used} of the {len(self.masks)} dropout masks fed "
                "to it: the two models draw dropout a different number of times"
            )


class MaskRecorder:
    """Collects every keep-mask handed out while it is active (see :func:`record_masks`)."""

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []


_FEED: ContextVar[MaskFeed | None] = ContextVar("refbp_dropout_feed", default=None)
_RECORDER: ContextVar[MaskRecorder | None] = ContextVar("refbp_dropout_recorder", default=None)


@contextmanager
def feed_masks(masks: Sequence[Any], *, strict: bool = True) -> Iterator[MaskFeed]:
    """Install ``masks`` as the source of every dropout mask drawn inside the block.

    With ``strict=True`` the block must consume every mask (checked on a normal exit).
    """
    feed = MaskFeed(masks)
    token = _FEED.set(feed)
    try:
        yield feed
    finally:
        _FEED.reset(token)
    if strict:
        feed.check_consumed()


@contextmanager
def record_masks() -> Iterator[MaskRecorder]:
    """Record every dropout keep-mask handed out inside the block, in draw order."""
    rec = MaskRecorder()
    token = _RECORDER.set(rec)
    try:
        yield rec
    finally:
        _RECORDER.reset(token)


def _draw(shape: tuple[int, ...], who: str,
          draw: Callable[[], np.ndarray]) -> np.ndarray:
    """The next fed array when a :class:`MaskFeed` is active, else ``draw()``."""
    feed = _FEED.get()
    return feed.next(tuple(shape), who) if feed is not None else draw()


def _recorded(value: np.ndarray) -> np.ndarray:
    rec = _RECORDER.get()
    if rec is not None:
        rec.masks.append(value)
    return value


def keep_mask(shape: tuple[int, ...], p: float, generator: np.random.Generator,
              who: str = "dropout") -> np.ndarray:
    """The boolean keep-mask of one dropout draw (True = kept), of shape ``shape``.

    From the active :class:`MaskFeed` when there is one, otherwise ``U(0, 1) < 1 - p`` from
    ``generator`` (``p == 0`` keeps all, ``p == 1`` drops all). Every layer that drops calls
    this function, once per draw, in the order of its forward pass.
    """
    def draw() -> np.ndarray:
        if p == 0.0:
            return np.ones(shape, dtype=bool)
        if p == 1.0:
            return np.zeros(shape, dtype=bool)
        return generator.random(shape) < (1.0 - p)

    return _recorded(np.asarray(_draw(shape, who, draw)).astype(bool, copy=False))


def random_slopes(x: np.ndarray, lower: float, upper: float, generator: np.random.Generator,
                  who: str = "RReLU") -> np.ndarray:
    """RReLU's noise for ``x``: a slope ``U(lower, upper)`` where ``x <= 0``, 1 elsewhere.

    Fed like a dropout mask when a :class:`MaskFeed` is active (torch's noise, read by
    ``refbp.mirror.dropout``; torch draws one slope per non-positive element, in memory
    order), otherwise drawn from ``generator``. Returned in ``x``'s dtype.
    """
    def draw() -> np.ndarray:
        return np.where(x <= 0, generator.uniform(lower, upper, x.shape), 1.0)

    return _recorded(np.asarray(_draw(x.shape, who, draw)).astype(x.dtype, copy=False))


def random_samples(shape: tuple[int, ...], dtype: np.dtype, generator: np.random.Generator,
                   who: str = "FractionalMaxPool2d") -> np.ndarray:
    """The ``U(0, 1)`` samples that place the windows of a fractional max pooling: torch
    draws ``torch.rand(N, C, 2 or 3, dtype=input.dtype)`` at every forward pass that is given
    none (in training and in eval mode alike).

    Fed like a dropout mask when a :class:`MaskFeed` is active (torch's draw, read by
    ``refbp.mirror.dropout``), otherwise drawn from ``generator``. Returned in ``dtype``.
    """
    return _recorded(np.asarray(_draw(shape, who, lambda: generator.random(shape)))
                     .astype(dtype, copy=False))


def check_probability(p: float) -> float:
    """torch's check of a dropout probability (``0 <= p <= 1``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout_scale(p: float, dtype: np.dtype) -> Any:
    """``1 / (1 - p)`` as torch's kernel forms it: ``1 - p`` in double, rounded, divided in
    ``dtype`` (0 for ``p == 1``, where torch multiplies by zero)."""
    dt = np.dtype(dtype).type
    return dt(0) if p == 1.0 else dt(1) / dt(1.0 - p)


def apply_mask(x: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
    """``noise = mask * scale`` in x's dtype (broadcast for channel masks)."""
    return mask.astype(x.dtype) * dropout_scale(p, x.dtype)


class _DropoutNd(Module):
    """Shared state of the dropout layers: ``p``, ``inplace``, the fallback generator."""

    _name = "Dropout"

    def __init__(self, p: float = 0.5, inplace: bool = False, *,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.inplace = bool(inplace)
        self.generator = generator
        self._cache = Cache(self._name)

    def _noise_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape

    def _mask(self, x: np.ndarray) -> np.ndarray:
        """The keep-mask of one draw, shaped like torch's noise (:func:`keep_mask`), reshaped
        to broadcast against ``x`` (an unbatched input's batch axis dropped)."""
        gen = self.generator if self.generator is not None else init.default_generator()
        mask = keep_mask(self._noise_shape(x), self.p, gen, self._name)
        return mask.reshape(mask.shape[-x.ndim:]) if mask.ndim > x.ndim else mask

    def _noise(self, x: np.ndarray) -> np.ndarray:
        """The factor ``y = x * noise`` multiplies by: ``mask / (1 - p)``."""
        return apply_mask(x, self._mask(x), self.p)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, f"{self._name} input")
        if not self.training or self.p == 0.0 or x.size == 0:  # torch draws nothing either
            self._cache.save(noise=None, shape=x.shape)
            return x
        noise = self._noise(x)
        self._cache.save(noise=noise, shape=x.shape)
        if self.inplace and x.flags.writeable:
            np.multiply(x, noise, out=x)
            return x
        return x * noise

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        c = self._cache.load()
        if grad_out.shape != c["shape"]:
            raise ValueError(f"{self._name} grad_out must have shape {c['shape']}, got "
                             f"{grad_out.shape}")
        return grad_out if c["noise"] is None else grad_out * c["noise"]

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    r"""Element-wise dropout, as ``torch.nn.Dropout``.

    Forward (training): with a keep-mask ``m`` of independent Bernoulli(1 - p) entries (see
    the module docstring for where it comes from) and ``s = 1 / (1 - p)``::

        y = x * (m * s)

    so that ``E[y] = x``. Eval mode (or ``p == 0``): ``y = x``.

    Backward: y is linear in x with the fixed factor ``m * s``, so ``dx = g * (m * s)``
    (the same mask as the forward pass; dropped elements get zero gradient).

    Parameters
    ----------
    p : float, default 0.5
        Probability of an element to be zeroed; ``0 <= p <= 1``.
    inplace : bool, default False
        Overwrite the input with the output (when the array is writeable).
    generator : numpy.random.Generator, optional (refbp only, keyword)
        Draws masks when none are fed (:func:`feed_masks`); ``refbp.nn.init``'s default
        generator otherwise.

    Shapes
    ------
    x : any shape; y : same shape.
    """


_DROPOUT2D_NDIM_WARNING = (
    "dropout2d: Received a {}-D input to dropout2d, which is deprecated and will result in an "
    "error in a future release. To retain the behavior and silence this warning, please use "
    "dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs with "
    "2 spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D "
    "inputs).")
_DROPOUT2D_3D_WARNING = (
    "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
    "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
    "This behavior will change in a future release to interpret the input as one without a "
    "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
    "please switch to using dropout1d instead.")


def feature_noise_shape(x: np.ndarray, batched: bool = True) -> tuple[int, ...]:
    """torch's ``make_feature_noise``: one draw per (sample, channel), ``(N, C, 1, ...)``; an
    unbatched input (``batched=False``) is drawn as a batch of one, ``(1, C, 1, ...)``."""
    shape = x.shape if batched else (1, *x.shape)
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return shape[:2] + (1,) * (len(shape) - 2)


class _ChannelDropout(_DropoutNd):
    """Dropout of whole channels: the mask has torch's feature-noise shape, drawn as a batch
    of one for an input of another rank than ``_batched_rank`` (None: every rank batched)."""

    _batched_rank: int | None = None

    def _noise_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return feature_noise_shape(x, batched=self._batched_rank in (None, x.ndim))


class Dropout2d(_ChannelDropout):
    r"""Channel-wise dropout, as ``torch.nn.Dropout2d``.

    Forward (training): one Bernoulli(1 - p) draw per (sample, channel), shared by the whole
    feature map. For x of shape (N, C, H, W) the mask ``m`` has shape (N, C, 1, 1) and::

        y[n, c, :, :] = x[n, c, :, :] * m[n, c] * s,      s = 1 / (1 - p)

    Backward: ``dx[n, c] = g[n, c] * m[n, c] * s``. Eval mode: identity.

    As torch 2.13, a 3-D input is read as (N, C, L) (channel-wise 1-D dropout) with torch's
    warning, inputs of other ranks warn as torch does, and rank < 2 raises in training.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel to be zeroed.
    inplace : bool, default False
    generator : numpy.random.Generator, optional (refbp only, keyword)
    """

    _name = "Dropout2d"

    def forward(self, x: Any) -> np.ndarray:
        """Channel dropout of x; torch's warnings for a rank other than 4 first."""
        x = as_float_array(x, "Dropout2d input")
        if x.ndim not in (3, 4):
            warnings.warn(_DROPOUT2D_NDIM_WARNING.format(x.ndim), UserWarning, stacklevel=2)
        if x.ndim == 3:
            warnings.warn(_DROPOUT2D_3D_WARNING, UserWarning, stacklevel=2)
        return super().forward(x)


class Dropout1d(_ChannelDropout):
    r"""Channel-wise dropout of 1-D feature maps, as ``torch.nn.Dropout1d``.

    Forward (training): for x of shape (N, C, L) one Bernoulli(1 - p) draw ``m[n, c]`` per
    (sample, channel), shared along L, and ``s = 1 / (1 - p)``::

        y[n, c, :] = x[n, c, :] * m[n, c] * s

    An unbatched input (C, L) is drawn as a batch of one (torch unsqueezes it): the mask
    has shape (1, C, 1). Backward: ``dx[n, c] = g[n, c] * m[n, c] * s``. Eval mode: identity.
    Inputs of rank other than 2 or 3 raise torch's RuntimeError (in eval mode too).

    Parameters: as :class:`Dropout2d` (``p`` the probability of a channel to be zeroed).
    """

    _name = "Dropout1d"
    _batched_rank = 3

    def forward(self, x: Any) -> np.ndarray:
        """Channel dropout of x (N, C, L) or (C, L)."""
        x = as_float_array(x, "Dropout1d input")
        if x.ndim not in (2, 3):
            raise RuntimeError(
                f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. Note that "
                "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
                "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or "
                "3D inputs).")
        return super().forward(x)


_DROPOUT3D_NDIM_WARNING = (
    "dropout3d: Received a {}-D input to dropout3d, which is deprecated and will result in an "
    "error in a future release. To retain the behavior and silence this warning, please use "
    "dropout instead. Note that dropout3d exists to provide channel-wise dropout on inputs with "
    "3 spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D "
    "inputs).")


class Dropout3d(_ChannelDropout):
    r"""Channel-wise dropout of 3-D feature maps, as ``torch.nn.Dropout3d``.

    Forward (training): for x of shape (N, C, D, H, W) one Bernoulli(1 - p) draw per
    (sample, channel), shared by the volume::

        y[n, c] = x[n, c] * m[n, c] * s,      s = 1 / (1 - p)

    Any input that is not 5-D is unbatched for torch: it is drawn as a batch of one (mask
    (1, C, 1, ...), C its first axis); ranks other than 4 and 5 warn as torch does, and a
    0-d input raises torch's RuntimeError in training. Backward:
    ``dx[n, c] = g[n, c] * m[n, c] * s``. Eval mode: identity.

    Parameters: as :class:`Dropout2d`.
    """

    _name = "Dropout3d"
    _batched_rank = 5

    def forward(self, x: Any) -> np.ndarray:
        """Channel dropout of x; torch's warning for a rank other than 4 and 5 first."""
        x = as_float_array(x, "Dropout3d input")
        if x.ndim not in (4, 5):
            warnings.warn(_DROPOUT3D_NDIM_WARNING.format(x.ndim), UserWarning, stacklevel=2)
        return super().forward(x)
