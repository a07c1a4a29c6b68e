r"""``EmbeddingBag``: sums, means or maxima of bags of embeddings, as ``torch.nn.EmbeddingBag``,
without building the intermediate embeddings.

Bags: a 2-D ``input`` (B, n) is B bags of n indices; a 1-D ``input`` with ``offsets`` (B,)
holds bag ``b`` at ``input[offsets[b]:offsets[b+1]]`` (the last bag to the end of the input).
With ``include_last_offset`` ``offsets`` has B + 1 entries, the last one the input's length
(torch's CSR convention). When that last offset is smaller, torch's kernels disagree with
each other (measured, torch 2.13: float64 ends the last bag at the input's end, float32
``sum`` at the offset, float32 ``mean`` sums to the offset and divides by the count to the
end); refbp ends it at the input's end in every dtype. Entries equal to ``padding_idx`` are
left out of their bag (they do not count in a mean). An empty bag gives zeros.

Forward, for bag ``b`` with the kept entries ``i`` (indices ``k_i``, weights ``w_i``)::

    sum:   y_b = sum_i w_i W[k_i]            (w_i = 1 without per_sample_weights)
    mean:  y_b = (sum_i W[k_i]) / |b|
    max:   y_b[d] = max_i W[k_i, d]          (ties: the first entry, torch's strict >)

Backward, with ``g_b = dL/dy_b``::

    sum:   dL/dW[k] += w_i g_b for each entry i of index k;   dL/dw_i = <g_b, W[k_i]>
    mean:  dL/dW[k] += g_b / |b| for each entry of index k
    max:   dL/dW[argmax_b[d], d] += g_b[d]

the ``padding_idx`` row gets no gradient, and with ``scale_grad_by_freq`` each entry's
contribution is divided by a count of its index: up to torch 2.13 the count torch's CPU kernel
uses (:func:`torch_frequencies`: not always the number of times the index occurs in ``input``,
which torch documents), from torch 2.14 the number of occurrences. ``frequencies`` (keyword,
refbp's only) picks the rule: "kernel", "counts", or None for the installed torch's. There is no
gradient with respect to the integer input: ``backward`` returns the gradient of
``per_sample_weights`` (or ``None`` without them).

``max_norm``: before the bags are formed, every row of ``W`` the whole ``input`` looks up
(``padding_idx`` entries included) is renormalised in place as ``Embedding``'s
(:func:`refbp.nn.embedding.embedding_renorm_`: rows whose ``norm_type``-norm exceeds
``max_norm`` scaled by ``max_norm / (norm + 1e-7)``); the bags then reduce the renormalised
rows, and the gradients above are taken with them (the renormalisation is not differentiated,
as torch runs it under ``no_grad``).

``sparse=True`` (``sum`` and ``mean``; torch refuses ``max``): the gradient of ``W`` is a
:class:`refbp.nn.sparse.SparseGrad` laid out as torch's ``_embedding_bag_sparse_backward``:
one entry per kept input entry, in input order, with the row ``g_b / |b|`` (mean) or
``w_i g_b`` (sum); densified it is the dense gradient above. As with ``Embedding``,
``scale_grad_by_freq`` is refused with sparse gradients (at backward).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, grad_out_array
from refbp.nn import init
from refbp.nn.embedding import accumulate_sparse, embedding_renorm_
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter
from refbp.versions import EMBEDDING_BAG_FREQUENCIES

__all__ = ["EmbeddingBag", "frequency_divisors", "torch_frequencies"]

MODES = ("sum", "mean", "max")


def _bags(idx: np.ndarray, offsets: Any, include_last_offset: bool) -> tuple[np.ndarray,
                                                                             np.ndarray, int]:
    """``(flat indices, bag of each entry, number of bags)`` with torch's checks."""
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences. However, found "
                             f"offsets of type {type(offsets)}")
        return idx.reshape(-1), np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.shape[0]
    if idx.ndim != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{idx.ndim}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    off = np.asarray(offsets)
    if off.ndim != 1 or off.dtype.kind not in "iu":
        raise ValueError("offsets has to be a 1D Tensor")
    starts = off[:-1] if include_last_offset else off
    if starts.size and starts[0] != 0:
        raise RuntimeError("offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                           f"has to start from position 0. However, got {int(starts[0])}")
    if off.size and off[-1] > idx.size:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {idx.size} "
                           f"but got offsets[-1] of {int(off[-1])}")
    bag = np.searchsorted(starts, np.arange(idx.size), side="right") - 1
    return idx, bag, starts.size


def torch_frequencies(flat: np.ndarray, num_embeddings: int) -> np.ndarray:
    """The divisor torch's CPU kernel applies to each index with ``scale_grad_by_freq``.

    torch's documented rule divides by the number of occurrences of the index in the input.
    Its CPU kernel (``_embedding_bag_dense_backward_cpu_sum_mean``) takes, for the ``j``-th
    distinct index in ascending order, the count of the ``j``-th entry of the *sorted* input
    instead (measured: input ``[0, 1, 1, 2, 2, 2]`` divides index 2 by 2, not 3). refbp
    follows the kernel, since torch is the reference; the two agree when every index occurs
    equally often.
    """
    counts = np.bincount(flat, minlength=num_embeddings)
    distinct = np.unique(flat)
    out = np.ones(num_embeddings, dtype=np.int64)
    out[distinct] = counts[np.sort(flat)[:distinct.size]]
    return out


def frequency_divisors(flat: np.ndarray, num_embeddings: int, rule: str) -> np.ndarray:
    """Each index's ``scale_grad_by_freq`` divisor under ``rule``: "kernel"
    (:func:`torch_frequencies`) or "counts" (:data:`refbp.versions.EMBEDDING_BAG_FREQUENCIES`)."""
    if rule == "kernel":
        return torch_frequencies(flat, num_embeddings)
    return np.maximum(np.bincount(flat, minlength=num_embeddings), 1)


class EmbeddingBag(Module):
    """Bags of embeddings reduced by ``mode`` (module docstring), as ``torch.nn.EmbeddingBag``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    max_norm : float, optional
        Rows looked up are renormalised in place to at most this norm (module docstring).
    norm_type : float, default 2.0
    scale_grad_by_freq : bool, default False (not with ``mode='max'``)
    mode : "sum", "mean" or "max", default "mean"
    sparse : bool, default False
        The gradient of ``weight`` is a ``SparseGrad`` (not with ``mode='max'``).
    include_last_offset : bool, default False
    padding_idx : int, optional
        Left out of every bag; its row is initialised to zero and gets no gradient.
    dtype, generator : refbp only (keyword)
    frequencies : "kernel", "counts" or None, refbp only (keyword)
        The ``scale_grad_by_freq`` divisor (module docstring); None: the installed torch's.

    Notes
    -----
    Shapes: ``input`` (B, n) or (L,) with ``offsets`` (B,) (B + 1 with
    ``include_last_offset``); ``per_sample_weights`` like ``input`` (``mode='sum'`` only);
    output (B, embedding_dim). ``weight`` (num_embeddings, embedding_dim) ~ N(0, 1).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, include_last_offset: bool = False,
                 padding_idx: int | None = None, *, dtype: Any = None,
                 generator: np.random.Generator | None = None,
                 frequencies: str | None = None) -> None:
        super().__init__()
        self.frequencies = EMBEDDING_BAG_FREQUENCIES.check(frequencies)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        if mode not in MODES:
            raise ValueError("mode has to be one of sum, mean or max")
        if mode == "max" and scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if mode == "max" and sparse:
            raise ValueError("max mode does not support sparse weights")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.max_norm, self.norm_type = max_norm, float(norm_type)
        self.scale_grad_by_freq, self.mode, self.sparse = bool(scale_grad_by_freq), mode, bool(
            sparse)
        self.include_last_offset, self.padding_idx = bool(include_last_offset), padding_idx
        shape = (num_embeddings, embedding_dim)
        self.weight = Parameter(np.empty(shape, dtype=_float_dtype(dtype)))
        self._cache = Cache("EmbeddingBag")
        init.normal_(self.weight, 0.0, 1.0, generator)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, input: Any, offsets: Any = None,
                per_sample_weights: Any = None) -> np.ndarray:
        """The reduced bags, shape (B, embedding_dim)."""
        idx = np.asarray(input)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"EmbeddingBag input must be an integer array, got {idx.dtype}")
        psw = None
        if per_sample_weights is not None:
            psw = as_float_array(per_sample_weights, "per_sample_weights")
            if psw.shape != idx.shape:
                raise ValueError(f"embedding_bag: If per_sample_weights ({psw.shape}) is not "
                                 f"None, then it must have the same shape as the input "
                                 f"({idx.shape})")
            if self.mode != "sum":
                raise NotImplementedError(
                    "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                    f"supported for mode='sum' (got mode='{self.mode}'). Please open a feature "
                    "request on GitHub.")
            psw = psw.reshape(-1)
        flat, bag, nbags = _bags(idx, offsets, self.include_last_offset)
        if flat.size and (flat.min() < 0 or flat.max() >= self.num_embeddings):
            bad = flat[(flat < 0) | (flat >= self.num_embeddings)][0]
            raise RuntimeError("embedding_bag: Expected idx >= 0 && idx < num_embeddings but "
                               f"found idx to be {int(bad)}")
        if self.max_norm is not None:
            embedding_renorm_(self.weight.data, flat, self.max_norm, self.norm_type)
        keep = flat != self.padding_idx if self.padding_idx is not None else np.ones(
            flat.size, bool)
        k, b = flat[keep], bag[keep]
        w = self.weight.data
        rows = w[k] if psw is None else w[k] * psw[keep][:, None].astype(w.dtype)
        out = np.zeros((nbags, self.embedding_dim), dtype=w.dtype)
        count = np.bincount(b, minlength=nbags)
        argmax = None
        if self.mode == "max":
            argmax = np.full((nbags, self.embedding_dim), -1)
            for j in range(k.size):  # in input order: the first maximum wins, as torch
                better = (argmax[b[j]] < 0) | (rows[j] > out[b[j]])
                out[b[j], better] = rows[j, better]
                argmax[b[j], better] = k[j]
        else:
            np.add.at(out, b, rows)
            if self.mode == "mean":
                out = out / np.maximum(count, 1)[:, None].astype(w.dtype)
        self._cache.save(k=k, b=b, keep=keep, count=count, argmax=argmax, psw=psw,
                         flat=flat, shape=idx.shape)
        return out

    def backward(self, grad_out: Any) -> np.ndarray | None:
        """Accumulates ``weight.grad``; returns dL/d per_sample_weights (None without)."""
        c = self._cache.load()
        g = grad_out_array(grad_out, (c["count"].size, self.embedding_dim), "EmbeddingBag")
        g = g.astype(self.weight.dtype, copy=False)
        if self.sparse:
            accumulate_sparse(self.weight, c["k"], self._entry_grads(g, c), None,
                              self.scale_grad_by_freq)
        else:
            self.weight.accumulate(self._dense_grad(g, c), owned=True)
        if c["psw"] is None:
            return None
        gpsw = np.zeros(c["flat"].size, dtype=c["psw"].dtype)
        gpsw[c["keep"]] = np.einsum("ij,ij->i", g[c["b"]], self.weight.data[c["k"]])
        return gpsw.reshape(c["shape"])

    def _dense_grad(self, g: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        """dL/dW of the module docstring (the ``padding_idx`` row zero)."""
        k = c["k"]
        dw = np.zeros_like(self.weight.data)
        if self.mode == "max":
            bags, dims = np.nonzero(c["argmax"] >= 0)
            np.add.at(dw, (c["argmax"][bags, dims], dims), g[bags, dims])
        else:
            contrib = self._entry_grads(g, c)
            if self.scale_grad_by_freq:
                contrib = contrib / frequency_divisors(c["flat"], self.num_embeddings,
                                                       self.frequencies)[k][
                    :, None].astype(g.dtype)
            np.add.at(dw, k, contrib)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return dw

    def _entry_grads(self, g: np.ndarray, c: dict[str, Any]) -> np.ndarray:
        """The gradient of each kept entry's row in ``sum``/``mean``: ``g_b`` divided by the
        bag's size (mean), times the entry's weight (``per_sample_weights``)."""
        contrib = g[c["b"]]
        if self.mode == "mean":
            contrib = contrib / c["count"][c["b"]][:, None].astype(g.dtype)
        if c["psw"] is not None:
            contrib = contrib * c["psw"][c["keep"]][:, None].astype(g.dtype)
        return contrib

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
