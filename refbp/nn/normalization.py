r"""``GroupNorm`` and ``InstanceNorm2d`` with torch's semantics (no torch).

Both normalise groups of values of each sample with their own mean and biased variance, and
share the batch-norm core of :mod:`refbp.nn.batchnorm`: the values of x (N, C, *S) are viewed
as rows, one contiguous row per normalised group (the M values of ``C / G`` channels x S for
GroupNorm, the M = prod(S) values of one channel for InstanceNorm), so that::

    xhat = (x - mean) / sqrt(var + eps)                         per row
    dx   = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

is the batch-norm forward and backward along the rows. The affine part is per *channel*:
``y = xhat * weight[c] + bias[c]``, ``dxhat = g * weight[c]``, ``dweight[c] = sum(g * xhat)``
and ``dbias[c] = sum(g)`` over all samples and positions of c. InstanceNorm runs the
batch-norm core (``normalize``, ``normalize_backward``) on the rows; GroupNorm, whose weight
varies inside a group, has its own forward and backward (:func:`group_norm_forward`,
:func:`group_norm_backward`), which run chunk by chunk of samples and multiply by the weight
repeated along each sample's positions, so that every broadcast runs along long rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from refbp._checks import as_float_array, param_dtype
from refbp.nn.batch_chunks import sample_slices
from refbp.nn.batchnorm import (
    as_planes,
    batch_stats,
    normalize,
    normalize_backward,
    row_dots,
    scale_centred,
    update_running,
)
from refbp.nn.module import Cache, Module, Parameter

#: The axis of :func:`group_rows` the statistics reduce (a tuple: they keep it, size 1).
ROW = (1,)


def group_rows(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *S) as an (N * groups, M) view: one contiguous row per normalised group (M given
    explicitly, so an empty batch gives a (0, M) view). The statistics and the backward
    reduce along the rows (:data:`ROW`), with no transposed copy."""
    m = int(np.prod(x.shape[1:], dtype=np.int64)) // groups
    return x.reshape(x.shape[0] * groups, m)


def channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector (C,) shaped to broadcast over (N, C, *S)."""
    return v.reshape((-1,) + (1,) * (ndim - 2))


def affine_forward(xhat: np.ndarray, weight: Parameter | None,
                   bias: Parameter | None) -> np.ndarray:
    """``xhat * weight[c] + bias[c]`` (either may be absent; one new array at most)."""
    y = xhat if weight is None else xhat * channel_view(weight.data, xhat.ndim)
    if bias is None:
        return y
    return np.add(y, channel_view(bias.data, xhat.ndim), out=None if y is xhat else y)


#: GroupNorm's passes over the data run on chunks of whole samples of at most this many bytes
#: per array (one sample at least), so that the passes after a chunk's first find it in the
#: processor's cache (on the benchmark machine, 1 MB of L2 per core, 128 KB to 2 MB chunks
#: time within 10 % of one another; the whole batch at once is 25-40 % slower).
CHUNK_BYTES = 1 << 20


def sample_chunks(shape: tuple[int, ...], itemsize: int) -> list[slice]:
    """Consecutive slices covering ``range(shape[0])``, each of as many whole samples of an
    array of ``shape`` as fit in :data:`CHUNK_BYTES` (one at least); none for an empty batch."""
    return sample_slices(shape[0], itemsize * int(np.prod(shape[1:], dtype=np.int64)),
                         CHUNK_BYTES)


def repeat_channels(v: np.ndarray | None, positions: int) -> np.ndarray | None:
    """A per-channel vector (C,) repeated to (C * P,), each value P times: one sample's
    layout of (C, P) planes, to broadcast over an (N, C * P) view along rows of C * P values
    (a (N, C, 1) coefficient against (N, C, P) runs one short inner loop per plane, three
    times slower in float32 for P = 1024)."""
    return None if v is None else np.repeat(v, positions)


def group_norm_forward(x: np.ndarray, groups: int, eps: float, weight: np.ndarray | None,
                       bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, xhat, invstd)``: ``xhat`` (shape of x) and ``invstd`` (N, groups, 1) of each
    sample's groups, and ``y = xhat * weight[c] + bias[c]`` (``xhat`` itself without either)::

        mean = sum(x) / M,  xc = x - mean,  var = sum(xc * xc) / M,
        xhat = xc / sqrt(var + eps)

    per row of :func:`group_rows` (M values): ``xc`` is written into ``xhat`` and scaled in
    place, the sum of squares is a dot product; weight and bias are repeated per position
    (:func:`repeat_channels`). Chunk by chunk of samples (:func:`sample_chunks`), so that x,
    xhat and y cross memory once each and the other passes find the chunk in cache.
    """
    n, c = x.shape[:2]
    m = int(np.prod(x.shape[1:], dtype=np.int64)) // groups
    rows = x.reshape(n, groups, m)
    xhat = np.empty(x.shape, x.dtype)
    hr, hf = xhat.reshape(n, groups, m), xhat.reshape(n, groups * m)
    if weight is None and bias is None:
        y = xhat
    else:
        y = np.empty(x.shape, np.result_type(*(v for v in (x, weight, bias) if v is not None)))
    yf = y.reshape(n, groups * m)
    invstd = np.empty((n, groups, 1), x.dtype)
    wf, bf = repeat_channels(weight, m * groups // c), repeat_channels(bias, m * groups // c)
    for s in sample_chunks(x.shape, x.itemsize):
        r, h = rows[s], hr[s]
        np.subtract(r, r.sum(axis=2, keepdims=True) / x.dtype.type(m), out=h)
        _, invstd[s] = scale_centred(h, row_dots(h, h)[..., None] / x.dtype.type(m), eps)
        if wf is not None:
            np.multiply(hf[s], wf, out=yf[s])
        if bf is not None:
            np.add(hf[s] if wf is None else yf[s], bf, out=yf[s])
    return y, xhat, invstd


def group_norm_backward(g: np.ndarray, xhat: np.ndarray, invstd: np.ndarray,
                        weight: np.ndarray | None, groups: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)`` of ``y = xhat * weight[c] + bias[c]`` with ``xhat`` and
    ``invstd`` (N, groups, 1) from :func:`group_norm_forward`, for g of x's shape (N, C, *S).

    Per (sample, channel) plane, with P = prod(S) positions: ``sg = sum(g)`` (a
    matrix-vector product with ones) and ``sgx = sum(g * xhat)`` (batched dot products); then
    ``dbias = sum_n sg``, ``dweight = sum_n sgx``. With ``dxhat = w[c] g`` the module
    docstring's backward reads, per (sample, group) of M = C / G * P values::

        mean(dxhat)        = sum_{c in group} w[c] sg[n, c] / M
        mean(dxhat * xhat) = sum_{c in group} w[c] sgx[n, c] / M
        dx = invstd * (w[c] g - mean(dxhat) - xhat * mean(dxhat * xhat))
           = invstd * w[c] g - b[n, g] xhat - k[n, g]

    with ``b = invstd mean(dxhat * xhat)`` and ``k = invstd mean(dxhat)``. Chunk by chunk of
    samples (:func:`sample_chunks`): the sums, then ``dx`` in five passes that find the chunk
    in cache, the product by ``w[c]`` along the repeated weight (:func:`repeat_channels`), the
    others along rows of one group (M values), ``xhat * b + k`` in a scratch array.
    """
    n, c = g.shape[:2]
    dt = np.result_type(*(v for v in (g, xhat, weight) if v is not None))
    g = np.ascontiguousarray(g)
    g3, x3 = as_planes(g), as_planes(xhat)
    p = g3.shape[2]
    m, per_group = c // groups * p, (groups, c // groups)
    sg, sgx = np.empty((n, c), dt), np.empty((n, c), dt)
    ones = np.ones(p, g.dtype)
    w = (np.ones(c, dtype=dt) if weight is None else weight).reshape(per_group)
    wf = repeat_channels(weight, p)
    dx = np.empty(g.shape, dt)
    dr, df = dx.reshape(n, groups, m), dx.reshape(n, groups * m)
    gr, gf, xr = g.reshape(n, groups, m), g.reshape(n, groups * m), xhat.reshape(n, groups, m)
    chunks = sample_chunks(g.shape, dx.itemsize)
    scratch = np.empty((chunks[0].stop if chunks else 0, groups, m), dt)
    for s in chunks:
        np.matmul(g3[s], ones, out=sg[s])
        sgx[s] = row_dots(g3[s], x3[s])
        per_sample = (sg[s].shape[0],) + per_group
        inv = invstd[s] / dt.type(m)
        b = (sgx[s].reshape(per_sample) * w).sum(axis=2, keepdims=True) * inv
        k = (sg[s].reshape(per_sample) * w).sum(axis=2, keepdims=True) * inv
        d, t = dr[s], scratch[: per_sample[0]]
        if wf is None:
            np.multiply(gr[s], invstd[s], out=d)
        else:
            np.multiply(gf[s], wf, out=df[s])
            d *= invstd[s]
        np.multiply(xr[s], b, out=t)
        t += k
        d -= t
    return dx, sgx.sum(axis=0), sg.sum(axis=0)


def affine_backward(g: np.ndarray, xhat: np.ndarray, weight: Parameter | None,
                    bias: Parameter | None) -> np.ndarray:
    """Accumulate ``dweight``/``dbias`` (sums over every axis but the channel) and return
    ``dxhat = g * weight[c]``."""
    axes = (0,) + tuple(range(2, g.ndim))
    if weight is not None:
        weight.accumulate((g * xhat).sum(axis=axes), owned=True)
    if bias is not None:
        bias.accumulate(g.sum(axis=axes), owned=True)
    return g if weight is None else g * channel_view(weight.data, g.ndim)


def _affine_params(module: Module, n: int, affine: bool, bias: bool, dt: np.dtype) -> None:
    module.weight = Parameter(np.ones(n, dtype=dt)) if affine else None
    module.bias = Parameter(np.zeros(n, dtype=dt)) if affine and bias else None


class GroupNorm(Module):
    r"""Group normalisation, as ``torch.nn.GroupNorm``.

    The C channels are split into ``num_groups`` groups of C / G consecutive channels; each
    sample's group (M = C / G * prod(S) values) is normalised with its own mean and biased
    variance, then scaled and shifted per channel (formulas and backward in the module
    docstring). No running statistics: training and eval mode compute the same thing.

    Parameters
    ----------
    num_groups : int
        G; must divide ``num_channels``.
    num_channels : int
        C.
    eps : float, default 1e-5
    affine : bool, default True
        Learn per-channel ``weight`` (ones) and ``bias`` (zeros).
    bias : bool, default True (keyword-only, as in torch 2.13)
    dtype : float32 or float64, default float64

    Shapes
    ------
    x : (N, C, *) ; y : same.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if num_groups == 0 or num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        dt = param_dtype(dtype)
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = eps
        self.affine = affine
        _affine_params(self, num_channels, affine, bias, dt)
        self._cache = Cache("GroupNorm")

    def forward(self, x: Any) -> np.ndarray:
        """Normalise each sample's groups, then the per-channel affine map; caches xhat."""
        x = as_float_array(x, "GroupNorm input")
        if x.ndim < 2:
            raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                             f"{x.ndim}")
        if x.shape[1] % self.num_groups != 0:
            raise ValueError("Expected number of channels in input to be divisible by "
                             f"num_groups, but got input of shape {list(x.shape)} and "
                             f"num_groups={self.num_groups}")
        if self.affine and x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm input must have {self.num_channels} channels "
                             f"(dimension 1), got shape {x.shape}")
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        y, xhat, invstd = group_norm_forward(x, self.num_groups, self.eps, w, b)
        self._cache.save(xhat=xhat, invstd=invstd)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x (per-group normalisation backward); accumulates weight/bias grads."""
        c = self._cache.load()
        xhat = c["xhat"]
        if grad_out.shape != xhat.shape:
            raise ValueError(f"GroupNorm grad_out must have shape {xhat.shape}, got "
                             f"{grad_out.shape}")
        w = None if self.weight is None else self.weight.data
        dx, dw, db = group_norm_backward(grad_out, xhat, c["invstd"], w, self.num_groups)
        if self.weight is not None:
            self.weight.accumulate(dw, owned=True)
        if self.bias is not None:
            self.bias.accumulate(db, owned=True)
        return dx

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(Module):
    r"""Instance normalisation of (N, C, *S) or (C, *S) input (S of ``_dims`` dimensions), as
    torch's ``InstanceNorm1d/2d/3d``.

    Each (sample, channel) map of M = prod(S) values is normalised with its own mean and
    biased variance (formulas and backward in the module docstring), then the optional
    per-channel affine map.

    Running statistics (``track_running_stats=True``), as torch's ``instance_norm``: the
    buffers are repeated per sample, each copy is updated like batch norm's,
    ``r = (1 - momentum) r + momentum * stat`` with the map's mean and *unbiased* variance
    (M / (M - 1)), and the buffer becomes the average of the N copies. Eval mode then uses them
    (``dx = g * weight * invstd``). ``momentum=None`` is passed to torch's kernel as 0: the
    running statistics never move (and ``num_batches_tracked`` is never incremented).

    Parameters
    ----------
    num_features : int
        C (only checked when ``affine``; otherwise a mismatch warns, as in torch).
    eps : float, default 1e-5
    momentum : float or None, default 0.1
    affine : bool, default False
    track_running_stats : bool, default False
    bias : bool, default True (keyword-only)
    dtype : float32 or float64, default float64
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, *, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        dt = param_dtype(dtype)
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_params(self, num_features, affine, bias, dt)
        stats = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dt) if stats else None)
        self.register_buffer("running_var", np.ones(num_features, dt) if stats else None)
        self.register_buffer("num_batches_tracked",
                             np.zeros((), dtype=np.int64) if stats else None)
        self._cache = Cache(type(self).__name__)

    _dims = 2  # the spatial dimensions S

    def _check(self, x: np.ndarray) -> None:
        batched = self._dims + 2
        if x.ndim not in (batched - 1, batched):
            raise ValueError(f"expected {batched - 1}D or {batched}D input (got {x.ndim}D "
                             "input)")
        dim = x.ndim - batched + 1
        if x.shape[dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={dim} to match num_features "
                                 f"({self.num_features}), but got: {x.shape[dim]}.")
            warnings.warn(f"input's size at dim={dim} does not match num_features. You can "
                          "silence this warning by not passing in num_features, which is not "
                          "used because affine=False", UserWarning, stacklevel=3)

    def forward(self, x: Any) -> np.ndarray:
        """Normalise every (sample, channel) map; update or use running statistics."""
        x = as_float_array(x, f"{type(self).__name__} input")
        self._check(x)
        x4 = x if x.ndim == self._dims + 2 else x[None]
        n, c = x4.shape[:2]
        rows = group_rows(x4, c)
        use_input = self.training or self.running_mean is None
        if use_input:
            if rows.shape[1] <= 1:
                raise ValueError("Expected more than 1 spatial element when training, got "
                                 f"input size {x.shape}")
            mean, var = batch_stats(rows, ROW)
            if self.running_mean is not None:
                self._update_running(mean.reshape(-1), var.reshape(-1), n, rows.shape[1])
        else:
            mean = np.tile(self.running_mean, n).reshape(-1, 1)
            var = np.tile(self.running_var, n).reshape(-1, 1)
        xhat_rows, invstd = normalize(rows, mean, var, self.eps)
        xhat = xhat_rows.reshape(x4.shape)
        self._cache.save(xhat=xhat, invstd=invstd, input_stats=use_input, shape=x.shape)
        return affine_forward(xhat, self.weight, self.bias).reshape(x.shape)

    def _update_running(self, mean: np.ndarray, var: np.ndarray, n: int, count: int) -> None:
        """torch's update: per-sample copies of the buffers, updated, then averaged."""
        rm, rv = np.tile(self.running_mean, n), np.tile(self.running_var, n)
        factor = 0.0 if self.momentum is None else float(self.momentum)
        update_running(rm, rv, mean, var, count, factor)
        self.running_mean[...] = rm.reshape(n, -1).mean(axis=0)
        self.running_var[...] = rv.reshape(n, -1).mean(axis=0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """d loss / d x; accumulates weight/bias gradients when affine."""
        c = self._cache.load()
        xhat = c["xhat"]
        if grad_out.shape != c["shape"]:
            raise ValueError(f"{type(self).__name__} grad_out must have shape {c['shape']}, "
                             f"got {grad_out.shape}")
        dxhat = affine_backward(grad_out.reshape(xhat.shape), xhat, self.weight, self.bias)
        g = xhat.shape[1]
        dxhat_rows = group_rows(dxhat, g)
        if c["input_stats"]:
            dx = normalize_backward(dxhat_rows, group_rows(xhat, g), c["invstd"], ROW)
        else:
            dx = dxhat_rows * c["invstd"]
        return dx.reshape(c["shape"])

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    r"""Instance normalisation of (N, C, L) or (C, L) input, as ``torch.nn.InstanceNorm1d``:
    each (sample, channel) signal normalised by its own mean and biased variance (see
    :class:`_InstanceNorm`; arguments as InstanceNorm2d)."""

    _dims = 1


class InstanceNorm2d(_InstanceNorm):
    r"""Instance normalisation of (N, C, H, W) or (C, H, W) input, as
    ``torch.nn.InstanceNorm2d`` (see :class:`_InstanceNorm` for the formulas, the running
    statistics and the arguments)."""

    _dims = 2


class InstanceNorm3d(_InstanceNorm):
    r"""Instance normalisation of (N, C, D, H, W) or (C, D, H, W) input, as
    ``torch.nn.InstanceNorm3d`` (see :class:`_InstanceNorm`)."""

    _dims = 3
