"""``BatchNorm1d`` and ``BatchNorm2d`` with torch's semantics, and their functional core (no
torch). The core (statistics, normalisation, the normalisation backward) also serves
``GroupNorm`` and ``InstanceNorm2d`` in ``refbp.nn.normalization``.

Conventions that differ between frameworks, and which one refbp (= torch) follows:

- **momentum**: torch's ``momentum=0.1`` weights the *new* batch statistic,
  ``running = (1 - momentum) * running + momentum * batch``. Keras/TF call the same number
  ``momentum=0.99`` (or 0.9 in "Deep Learning from Scratch") and weight the *old* value,
  ``running = momentum * running + (1 - momentum) * batch``.
- **variance**: the batch is normalised with the *biased* variance (divide by M), but the
  running variance is updated with the *unbiased* one (divide by M - 1), M = number of values
  per channel (N, N * L for 3-D input, N * H * W for BatchNorm2d).
- ``momentum=None`` gives a cumulative moving average (factor 1 / num_batches_tracked).
- Training on one value per channel raises, as torch does; an empty batch gives an empty
  output and leaves the running statistics alone (but counts the batch), as torch does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from refbp._checks import as_float_array, param_dtype
from refbp.nn.module import Cache, Module, Parameter


def channel_axes(ndim: int) -> tuple[int, ...]:
    """Every axis of an (N, C, *S) array but the channel axis 1: the axes batch norm reduces."""
    return (0,) + tuple(range(2, ndim))


def per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector (C,) shaped (1, C, 1, ...) to broadcast over (N, C, *S)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


Axis = int | tuple[int, ...]


def batch_stats(x2: np.ndarray, axis: Axis = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and *biased* variance of ``x2`` along ``axis`` (per column of an (M, C) array by
    default); a tuple of axes keeps them as size-1 dimensions, to broadcast against ``x2``."""
    keep = isinstance(axis, tuple)
    mean = x2.mean(axis=axis, keepdims=keep)
    xc = x2 - mean
    return mean, np.multiply(xc, xc, out=xc).mean(axis=axis, keepdims=keep)


def normalize(x2: np.ndarray, mean: np.ndarray, var: np.ndarray,
              eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``xhat = (x - mean) / sqrt(var + eps)`` and ``invstd = 1 / sqrt(var + eps)``."""
    return scale_centred(x2 - mean, var, eps)


def scale_centred(xc: np.ndarray, var: np.ndarray, eps: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``xhat = xc / sqrt(var + eps)`` in place of the centred values ``xc``, and
    ``invstd = 1 / sqrt(var + eps)``."""
    invstd = 1.0 / np.sqrt(var + xc.dtype.type(eps))
    return np.multiply(xc, invstd, out=xc), invstd


def update_running(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray,
                   var: np.ndarray, count: int, factor: float) -> None:
    """torch's update, in place: ``r = (1 - f) r + f * stat`` with the unbiased variance."""
    dt = running_mean.dtype.type
    unbiased = var * (count / (count - 1))
    running_mean[...] = (dt(1) - dt(factor)) * running_mean + dt(factor) * mean
    running_var[...] = (dt(1) - dt(factor)) * running_var + dt(factor) * unbiased


def normalize_backward(dxhat: np.ndarray, xhat: np.ndarray, invstd: np.ndarray,
                       axis: Axis = 0) -> np.ndarray:
    """dL/dx of ``xhat = (x - mean(x)) * invstd`` with batch statistics along ``axis`` (per
    column of an (M, C) array by default)::

        dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

    (differentiate ``xhat_i = (x_i - mu) invstd`` with ``dmu/dx_j = 1/M`` and
    ``d var/dx_j = 2 (x_j - mu) / M``, M = the values reduced). Computed in two scratch
    arrays, operation by operation as the formula reads.
    """
    keep = isinstance(axis, tuple)
    t = dxhat * xhat
    mean_dx_xhat = t.mean(axis=axis, keepdims=keep)
    dx = dxhat - dxhat.mean(axis=axis, keepdims=keep)
    np.subtract(dx, np.multiply(xhat, mean_dx_xhat, out=t), out=dx)
    return np.multiply(invstd, dx, out=dx)


#: Rows shorter than this are multiplied and summed (one GEMM call per row costs more).
SHORT_ROW = 16


def row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b)`` along the last axis of two arrays of one shape (..., L), as batched dot
    products (no temporary array of the product); rows shorter than :data:`SHORT_ROW` (the
    (N, C) input of BatchNorm1d: L = 1) as the product summed."""
    if a.shape[-1] < SHORT_ROW:
        return sum_rows(np.multiply(a, b))
    return np.matmul(a[..., None, :], b[..., :, None])[..., 0, 0]


def sum_rows(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=-1)``; rows of one value are that value (NumPy's reduction over a length-1
    axis runs one inner loop per row)."""
    return a[..., 0] if a.shape[-1] == 1 else a.sum(axis=-1)


def as_planes(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) as (N, C, P), P = prod(S) (1 for (N, C)): one row per (sample, channel)
    plane (P given explicitly, so an empty batch reshapes too)."""
    return x.reshape(*x.shape[:2], int(np.prod(x.shape[2:], dtype=np.int64)))


def plane_sums(g3: np.ndarray, xhat3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sum(g)`` and ``sum(g * xhat)`` over each plane of two (N, C, P) arrays, each (N, C):
    what the bias and weight gradients and the normalisation backward need."""
    return sum_rows(g3), row_dots(g3, xhat3)


def batch_norm_backward(g2: np.ndarray, xhat: np.ndarray, invstd: np.ndarray,
                        weight: np.ndarray | None, batch_statistics: bool
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) for ``y = xhat * w + b``: ``g2``, ``xhat`` and the result (N, C,
    *S) or (N, C); ``invstd`` shaped to broadcast (:func:`per_channel`), ``weight`` (C,).

    ``dbias = sum(g)`` and ``dweight = sum(g * xhat)`` over the M values of each channel,
    summed plane by plane (:func:`plane_sums`). With batch statistics, xhat depends on x
    through the mean and variance too (:func:`normalize_backward` with ``dxhat = w g``, the
    per-channel w taken out of the means)::

        dx = (g - mean(g) - xhat * mean(g * xhat)) * (w * invstd)

    with ``mean(g) = dbias / M`` and ``mean(g * xhat) = dweight / M`` (the form of torch's
    kernel). With running statistics (eval) only the first term survives:
    ``dx = g * w * invstd``.
    """
    sg, sgx = plane_sums(as_planes(g2), as_planes(xhat))
    dweight, dbias = sgx.sum(axis=0), sg.sum(axis=0)
    n = g2.ndim
    if not batch_statistics:
        dxhat = g2 if weight is None else g2 * per_channel(weight, n)
        return dxhat * invstd, dweight, dbias
    m = g2.dtype.type(g2.size // g2.shape[1])
    dx = g2 - per_channel(dbias / m, n)
    dx -= np.multiply(xhat, per_channel(dweight / m, n))
    scale = invstd if weight is None else invstd * per_channel(weight, n)
    return np.multiply(dx, scale, out=dx), dweight, dbias


def batch_norm_forward(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                       mean: np.ndarray | None, var: np.ndarray | None, eps: float,
                       update: Callable[[np.ndarray, np.ndarray, int], None] | None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel of ``x`` (N, C, *S),
    reduced in place along :func:`channel_axes` (no transposed copy): with the batch statistics
    when ``mean`` is None (then ``update(mean, var, count)`` receives them as (C,) vectors, for
    the running statistics), else with the given (C,) statistics. Returns ``(y, xhat,
    invstd)``, ``invstd`` shaped (1, C, 1, ...)."""
    n = x.ndim
    if mean is None or var is None:
        batch_mean = x.mean(axis=channel_axes(n), keepdims=True)
        xc = x - batch_mean
        m = x.size // x.shape[1]
        xc3 = as_planes(xc)
        var = row_dots(xc3, xc3).sum(axis=0) / x.dtype.type(m)  # squares summed plane by plane
        if update is not None:
            update(batch_mean.reshape(-1), var, m)
        xhat, invstd = scale_centred(xc, per_channel(var, n), eps)
    else:
        xhat, invstd = normalize(x, per_channel(mean, n), per_channel(var, n), eps)
    y = xhat if weight is None else xhat * per_channel(weight, n)
    if bias is not None:
        y = np.add(y, per_channel(bias, n), out=None if y is xhat else y)
    return y, xhat, invstd


class _BatchNorm(Module):
    r"""Batch normalisation over the channel dimension 1 (shared by the 1-D and 2-D layers).

    Forward (training, or ``track_running_stats=False``), per channel c over the M values::

        mu = mean(x),  var = mean((x - mu)^2)              (biased)
        y  = (x - mu) / sqrt(var + eps) * weight + bias
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)

    Forward (eval with running statistics): ``y = (x - running_mean) / sqrt(running_var + eps)
    * weight + bias``. ``momentum=None``: the factor is ``1 / num_batches_tracked``.

    Backward: see :func:`batch_norm_backward`; ``dweight = sum(g * xhat)``,
    ``dbias = sum(g)`` over the M values of each channel (N, N * L or N * H * W).

    Parameters
    ----------
    num_features : int
        C.
    eps : float, default 1e-5
    momentum : float or None, default 0.1 (torch's convention, see the module docstring)
    affine : bool, default True
        Learn ``weight`` (ones) and ``bias`` (zeros).
    track_running_stats : bool, default True
        Buffers ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked``
        (int64 0-d); without them eval mode uses batch statistics.
    bias : bool, default True (keyword-only, as in torch 2.13)
    dtype : float32 or float64, default float64
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        dt = param_dtype(dtype)
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dt)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dt)) if affine and bias else None
        stats = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dt) if stats else None)
        self.register_buffer("running_var", np.ones(num_features, dt) if stats else None)
        self.register_buffer("num_batches_tracked",
                             np.zeros((), dtype=np.int64) if stats else None)
        self._cache = Cache(type(self).__name__)

    def _check_input_dim(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batch counted (torch's
        ``reset_running_stats``); nothing without ``track_running_stats``."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _factor(self) -> float:
        """The exponential-average factor of this training step (after counting the batch)."""
        self.num_batches_tracked[...] += 1
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return float(self.momentum)

    def _update_stats(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """Update the running statistics from the batch's mean and biased variance."""
        update_running(self.running_mean, self.running_var, mean, var, count, self._factor())

    def forward(self, x: Any) -> np.ndarray:
        """Normalise ``x`` of shape (N, C) or (N, C, L) with the batch statistics (training) or the
        running ones (eval), update the running statistics in training, cache what backward needs;
        see the class docstring for the formulas.
        """
        name = type(self).__name__
        x = as_float_array(x, f"{name} input")
        self._check_input_dim(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name} input must have {self.num_features} channels "
                             f"(dimension 1), got shape {x.shape}")
        w = None if self.weight is None else self.weight.data
        if w is not None and x.dtype != w.dtype:
            raise TypeError(f"{name} input dtype {x.dtype} does not match weight dtype "
                            f"{w.dtype}")
        use_batch = self.training or self.running_mean is None
        values = x.size // x.shape[1]  # per channel: N, N * L, N * H * W, ...
        if use_batch and values == 0:
            return self._empty_batch(x)
        if use_batch and values == 1 and self.training:
            raise ValueError("Expected more than 1 value per channel when training, got "
                             f"input size {x.shape}")
        update = self._update_stats if self.training and self.running_mean is not None else None
        mean, var = (None, None) if use_batch else (self.running_mean, self.running_var)
        b = None if self.bias is None else self.bias.data
        y, xhat, invstd = batch_norm_forward(x, w, b, mean, var, self.eps, update)
        self._cache.save(xhat=xhat, invstd=invstd, shape=x.shape, batch=use_batch, empty=False)
        return y

    def _empty_batch(self, x: np.ndarray) -> np.ndarray:
        """torch on an empty batch: an empty output, running statistics untouched, but the
        batch is counted in ``num_batches_tracked`` (training with running statistics)."""
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked[...] += 1
        self._cache.save(shape=x.shape, empty=True)
        return x.copy()

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Input gradient through the normalisation (batch statistics included in training);
        accumulates the gradients of ``weight`` and ``bias``.
        """
        c = self._cache.load()
        if grad_out.shape != c["shape"]:
            raise ValueError(f"{type(self).__name__} grad_out must have shape {c['shape']}, got "
                             f"{grad_out.shape}")
        if c["empty"]:
            for p in (self.weight, self.bias):
                if p is not None:
                    p.accumulate(np.zeros_like(p.data), owned=True)
            return np.zeros(c["shape"], dtype=grad_out.dtype)
        w = None if self.weight is None else self.weight.data
        dx, dw, db = batch_norm_backward(grad_out, c["xhat"], c["invstd"], w, c["batch"])
        if self.weight is not None:
            self.weight.accumulate(dw, owned=True)
        if self.bias is not None:
            self.bias.accumulate(db, owned=True)
        return dx

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over (N, C) or (N, C, L) input, as ``torch.nn.BatchNorm1d``.

    Statistics per channel over the N (and L) values; formulas, backward and parameters as in
    :class:`_BatchNorm`.
    """

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over (N, C, H, W) input, as ``torch.nn.BatchNorm2d``.

    Statistics per channel over the M = N * H * W values of that channel; formulas, backward
    (``dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` over those M values)
    and parameters as in :class:`_BatchNorm`; the running variance uses M / (M - 1).
    """

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")


class BatchNorm3d(_BatchNorm):
    r"""Batch normalisation over (N, C, D, H, W) input, as ``torch.nn.BatchNorm3d``.

    Statistics per channel over the M = N * D * H * W values of that channel; formulas,
    backward and parameters as in :class:`_BatchNorm` and :class:`BatchNorm2d`.
    """

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim != 5:
            raise ValueError(f"expected 5D input (got {x.ndim}D input)")


class SyncBatchNorm(_BatchNorm):
    r"""Batch normalisation over (N, C, ...) input of any rank >= 2, as ``torch.nn.SyncBatchNorm``
    in one process.

    torch's SyncBatchNorm gathers the batch statistics of every process of ``process_group``;
    in a single process (no ``torch.distributed`` process group initialised, refbp's only
    setting) it computes exactly :class:`BatchNorm1d` / ``2d`` / ``3d``'s statistics over the
    M values of each channel, whatever the input's rank. Formulas, backward and parameters as
    in :class:`_BatchNorm`.

    Parameters
    ----------
    process_group : None
        torch's group of processes whose statistics are pooled; refbp runs in one process and
        refuses any other value.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: Any = None, *, bias: bool = True, dtype: Any = None) -> None:
        if process_group is not None:
            raise ValueError("SyncBatchNorm with a process_group pools statistics across "
                             "processes, which refbp (one process) does not do; "
                             "process_group must be None")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias,
                         dtype=dtype)
        self.process_group = None

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {x.ndim}D input)")
