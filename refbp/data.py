"""Seeded batching over in-memory arrays: full batch (BGD), one sample (SGD), mini-batch (MBGD).

The whole module is one rule, stated so that any other framework can reproduce it exactly:

1. An epoch over ``n`` samples starts from an *order*: ``rng.permutation(n)`` when
   ``shuffle=True`` (exactly one draw from the ``numpy.random.Generator`` per epoch, nothing
   else touches it), ``np.arange(n)`` otherwise.
2. The order is cut into consecutive batches of ``batch_size`` indices; the last, shorter batch
   is kept unless ``drop_last=True``.
3. Batch ``k`` is ``(indices_k, X[indices_k], Y[indices_k])``.

``mode`` picks the batch size of the three textbook variants of gradient descent:

==============  ==============  =======================================================
mode            batch size      meaning
==============  ==============  =======================================================
``"batch"``     ``n``           batch gradient descent (BGD): one step per epoch
``"sgd"``       ``1``           stochastic gradient descent: one step per sample
``"minibatch"`` ``batch_size``  mini-batch gradient descent (MBGD); the default mode
==============  ==============  =======================================================

API
---
``epoch_indices(n_samples, *, mode, batch_size, shuffle, drop_last, rng) -> list[ndarray]``
    The index arrays (int64) of one epoch. This is the single source of truth for the order.
``BatchIterator(X, Y=None, *, mode, batch_size, shuffle, drop_last, rng)``
    Re-iterable: every ``iter()`` is a new epoch with a fresh permutation drawn from the one
    Generator it owns (an ``int`` seed is turned into ``np.random.default_rng(seed)`` once).
    ``len()`` is the number of batches per epoch; ``next_epoch_indices()`` draws the index
    arrays of the next epoch without slicing the data.
``batches(X, Y=None, **options)``
    One epoch of ``Batch(indices, x, y)`` named tuples (``y`` is ``None`` without ``Y``).
``step_batches(n_samples, steps, *, mode, batch_size, rng) -> list[ndarray]``
    The index arrays of ``steps`` consecutive batches, epochs cycled (one Generator for all);
    ``iter_step_batches`` yields the same arrays lazily, one epoch at a time.
``stream_rng(seed, stream)`` and ``Stream``
    The named random streams one seed is split into (see below).

Random streams
--------------
A parity run draws everything from one integer seed, split into independent streams:
``stream_rng(seed, Stream.X)`` is ``np.random.default_rng([seed, Stream.X])``.

======================  =====  ==========================================================
stream                  value  draws
======================  =====  ==========================================================
``INIT``                0      layer initialisation (``refbp.parity.build``)
``DATA``                1      synthetic data sets (``refbp.parity.datagen``)
``BATCHES``             2      the batch order of a scenario (``refbp.parity.trial``)
``DROPOUT``             3      the seed of torch's generator at each step (dropout masks)
``OPTIMIZER_PROBLEM``   8      parameters and gradients of an optimizer check (diagnose)
``LAYER_PROBLEM``       9      inputs and upstream gradients of a layer check (diagnose)
``LAYER_VALUES``        10     parameter values of a layer check (diagnose)
``LOSS_PROBLEM``        11     predictions and targets of a loss check (diagnose)
``ENSEMBLE``            28271  member k of the rounding-floor ensemble:
                               ``stream_rng(seed, Stream.ENSEMBLE, k)``
                               (``refbp.parity.ensemble``)
======================  =====  ==========================================================

``stream_rng(seed)`` (no stream) is ``np.random.default_rng(seed)`` itself: the batch order of
a ``refbp.testing`` check of a user's model, and the random upstream gradients of op checks
(:func:`upstream_gradient`: ``refbp.gradcheck``, ``refbp.mirror.oracle``,
``refbp.testing.check_gradients``, ``refbp.diagnose.localize``). NumPy's seed sequence ignores
trailing zero words, so it is the same generator as ``Stream.INIT``; the two are never drawn in
the same check.

Feeding torch exactly the same batches: either take ``batch.indices`` and index the torch
tensors with them (``x_t[torch.from_numpy(batch.indices)]``), or build a second iterator with
the same seed -- both sides then draw identical permutations epoch after epoch.

Examples
--------
>>> import numpy as np
>>> X, Y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> [b.indices.tolist() for b in batches(X, Y, batch_size=2, shuffle=False)]
[[0, 1], [2, 3], [4]]
>>> it = BatchIterator(X, Y, mode="sgd", rng=0)
>>> len(it)
5
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any, Literal, NamedTuple

import numpy as np

Mode = Literal["batch", "sgd", "minibatch"]
MODES: tuple[str, ...] = ("batch", "sgd", "minibatch")
RngLike = np.random.Generator | int | None


class Stream(IntEnum):
    """The named random streams of one seed (table in the module docstring)."""

    INIT = 0
    DATA = 1
    BATCHES = 2
    DROPOUT = 3
    OPTIMIZER_PROBLEM = 8
    LAYER_PROBLEM = 9
    LAYER_VALUES = 10
    LOSS_PROBLEM = 11
    ENSEMBLE = 0x6E6F


def stream_rng(seed: int, stream: Stream | None = None, *index: int) -> np.random.Generator:
    """The Generator of ``stream`` for ``seed``: ``default_rng([seed, stream, *index])``
    (``index``: the member of a stream drawn for several objects, e.g. ensemble member k).

    Without a stream: ``default_rng(seed)``.
    """
    if stream is None:
        return np.random.default_rng(seed)
    return np.random.default_rng([int(seed), int(stream), *index])


def upstream_gradient(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The random upstream gradient of an op check: float64 standard normals of ``shape``
    from ``stream_rng(seed)``."""
    return stream_rng(seed).standard_normal(shape)


class Batch(NamedTuple):
    """One batch: the sample indices (int64) and the rows of ``X`` and ``Y`` they select."""

    indices: np.ndarray
    x: np.ndarray
    y: np.ndarray | None


def resolve_batch_size(n_samples: int, mode: str, batch_size: int | None) -> int:
    """The batch size ``mode`` implies for ``n_samples`` samples, after validating both.

    ``"batch"`` accepts ``batch_size`` None or ``n_samples``; ``"sgd"`` accepts None or 1;
    ``"minibatch"`` needs a positive int (larger than ``n_samples`` gives one batch).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(
                f"batch_size must be a positive int or None, got {type(batch_size).__name__}"
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}")
    implied = {"batch": n_samples, "sgd": 1}.get(mode)
    if implied is None:
        if batch_size is None:
            raise ValueError("mode='minibatch' needs a batch_size (a positive int)")
        return int(batch_size)
    if batch_size is not None and batch_size != implied:
        raise ValueError(
            f"mode={mode!r} implies batch_size={implied} for {n_samples} samples, "
            f"got batch_size={batch_size}"
        )
    return implied


def as_generator(rng: RngLike) -> np.random.Generator | None:
    """``rng`` as a Generator: an int seed becomes ``np.random.default_rng(seed)``."""
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


def _checked_batch_size(n_samples: int, mode: str, batch_size: int | None,
                        drop_last: bool) -> int:
    """Validate ``n_samples`` and the batching options; return the batch size."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"n_samples must be an int, got {type(n_samples).__name__}")
    if n_samples <= 0:
        raise ValueError(f"need at least one sample, got n_samples={n_samples}")
    size = resolve_batch_size(int(n_samples), mode, batch_size)
    if drop_last and size > n_samples:
        raise ValueError(
            f"drop_last=True with batch_size={size} > n_samples={n_samples} leaves no batch"
        )
    return size


def _require_rng(shuffle: bool, gen: np.random.Generator | None) -> None:
    if shuffle and gen is None:
        raise ValueError(
            "shuffle=True needs rng (a numpy.random.Generator or an int seed) so that the "
            "order is reproducible; pass shuffle=False for the natural order"
        )


def epoch_indices(
    n_samples: int,
    *,
    mode: Mode = "minibatch",
    batch_size: int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    rng: RngLike = None,
) -> list[np.ndarray]:
    """The int64 index arrays of the batches of one epoch (see the module docstring).

    With ``shuffle=True`` this draws exactly one ``rng.permutation(n_samples)``; ``rng`` is then
    required. Passing an int seed gives the same order on every call; pass one Generator (or
    use ``BatchIterator``) to get a new order each epoch.
    """
    size = _checked_batch_size(n_samples, mode, batch_size, drop_last)
    gen = as_generator(rng)
    _require_rng(shuffle, gen)
    if shuffle and gen is not None:
        order = gen.permutation(n_samples).astype(np.int64, copy=False)
    else:
        order = np.arange(n_samples, dtype=np.int64)
    stop = n_samples - n_samples % size if drop_last else n_samples
    return [order[i : i + size] for i in range(0, stop, size)]


def _check_arrays(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(X)
    if x.ndim == 0:
        raise ValueError("X must have a first (sample) dimension, got a 0-d array")
    if Y is None:
        return x, None
    y = np.asarray(Y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(
            "X and Y must have the same number of samples (first dimension), "
            f"got X.shape={x.shape} and Y.shape={y.shape}"
        )
    return x, y


class BatchIterator:
    """Re-iterable batches over ``X`` (and ``Y``); each ``iter()`` is one new epoch.

    Parameters
    ----------
    X : array_like, shape (n, ...)
        Inputs; indexed along the first axis.
    Y : array_like, shape (n, ...), optional
        Targets with the same first dimension as ``X``.
    mode, batch_size, shuffle, drop_last
        See ``epoch_indices``.
    rng : numpy.random.Generator or int or None
        The Generator that draws one permutation per epoch (an int seeds a new one, once).
        Required when ``shuffle=True``.
    """

    def __init__(
        self,
        X: Any,
        Y: Any = None,
        *,
        mode: Mode = "minibatch",
        batch_size: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        rng: RngLike = None,
    ) -> None:
        self.X, self.Y = _check_arrays(X, Y)
        self.n_samples = int(self.X.shape[0])
        self.mode = mode
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = as_generator(rng)
        self.batch_size = _checked_batch_size(self.n_samples, mode, batch_size, self.drop_last)
        _require_rng(self.shuffle, self.rng)

    def __len__(self) -> int:
        full, rest = divmod(self.n_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def next_epoch_indices(self) -> list[np.ndarray]:
        """Draw the index arrays of the next epoch (advances the Generator when shuffling)."""
        return epoch_indices(self.n_samples, mode=self.mode, batch_size=self.batch_size,
                             shuffle=self.shuffle, drop_last=self.drop_last, rng=self.rng)

    def __iter__(self) -> Iterator[Batch]:
        for idx in self.next_epoch_indices():
            yield Batch(idx, self.X[idx], None if self.Y is None else self.Y[idx])

    def __repr__(self) -> str:
        return (f"BatchIterator(n_samples={self.n_samples}, mode={self.mode!r}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")


def batches(
    X: Any,
    Y: Any = None,
    *,
    mode: Mode = "minibatch",
    batch_size: int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    rng: RngLike = None,
) -> Iterator[Batch]:
    """One epoch of ``Batch(indices, x, y)``; see ``BatchIterator`` for the arguments."""
    return iter(BatchIterator(X, Y, mode=mode, batch_size=batch_size, shuffle=shuffle,
                              drop_last=drop_last, rng=rng))


def iter_step_batches(n_samples: int, steps: int, *, mode: Mode = "minibatch",
                      batch_size: int | None = None, rng: RngLike = None
                      ) -> Iterator[np.ndarray]:
    """The index arrays of ``steps`` consecutive batches, cycling shuffled epochs, lazily.

    One Generator (``rng``) draws the permutation of every epoch in turn, so the batches of
    step k are those of :func:`epoch_indices` called epoch after epoch on that Generator. Only
    one epoch is held at a time: ``steps = 10**9`` costs no memory up front.
    """
    gen = as_generator(rng)
    done = 0
    while done < steps:
        for idx in epoch_indices(n_samples, mode=mode, batch_size=batch_size, shuffle=True,
                                 rng=gen):
            if done == steps:
                return
            done += 1
            yield idx


def step_batches(n_samples: int, steps: int, *, mode: Mode = "minibatch",
                 batch_size: int | None = None, rng: RngLike = None) -> list[np.ndarray]:
    """:func:`iter_step_batches` as a list (for a small number of steps)."""
    return list(iter_step_batches(n_samples, steps, mode=mode, batch_size=batch_size,
                                  rng=rng))
