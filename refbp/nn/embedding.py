r"""``Embedding``: a lookup table of vectors indexed by integer tokens, as ``torch.nn.Embedding``.

Forward: ``y[..., :] = W[idx[...], :]`` for an integer array ``idx`` of any shape; ``y`` has
shape ``idx.shape + (embedding_dim,)`` and the dtype of ``W`` (float32 or float64).

Backward: ``y`` depends on row ``W_k`` once per occurrence of ``k`` in ``idx``, with identity
Jacobian, so ``dL/dW_k = sum_{p : idx[p] = k} dL/dy[p]`` (a scatter-add over the index array;
rows that never occur get zero). With ``padding_idx`` the gradient of that row is always zero
(torch skips it, so the padding vector stays fixed during training). With
``scale_grad_by_freq`` each occurrence's contribution is divided by the number of occurrences
of its index in the mini-batch. There is no gradient with respect to the integer input:
``backward`` returns ``None``.

Not supported (raise at construction): ``max_norm`` (torch renormalises rows of W in place
during forward) and ``sparse=True`` (a sparse gradient layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import init
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter


def embedding_weight_grad(g: np.ndarray, idx: np.ndarray, shape: tuple[int, ...],
                          padding_idx: int | None, scale_grad_by_freq: bool) -> np.ndarray:
    """dL/dW of ``y = W[idx]`` for ``g = dL/dy`` (shape ``idx.shape + (embedding_dim,)``): the
    scatter-add of the module docstring, the ``padding_idx`` row zero, each occurrence divided
    by its index's count with ``scale_grad_by_freq``."""
    flat = idx.reshape(-1)
    rows = g.reshape(-1, shape[1])
    if scale_grad_by_freq:
        counts = np.bincount(flat, minlength=shape[0])
        rows = rows / counts[flat][:, None].astype(rows.dtype)
    dw = np.zeros(shape, dtype=g.dtype)
    np.add.at(dw, flat, rows)
    if padding_idx is not None:
        dw[padding_idx] = 0
    return dw


class Embedding(Module):
    """Lookup table ``W`` (num_embeddings, embedding_dim), initialised N(0, 1) as torch, with
    the ``padding_idx`` row set to zero. See the module docstring for forward and backward.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if num_embeddings < 0 or embedding_dim < 0:
            raise RuntimeError(
                "Trying to create tensor with negative dimension: num_embeddings="
                f"{num_embeddings}, embedding_dim={embedding_dim}"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Padding_idx must be within num_embeddings "
                                 f"({num_embeddings}), got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        if max_norm is not None:
            raise ValueError("Embedding max_norm is not supported by refbp (torch renormalises "
                             "the rows in place during forward); use max_norm=None")
        if sparse:
            raise ValueError("Embedding sparse=True is not supported by refbp; use sparse=False")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, float(norm_type)
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), bool(sparse)
        shape = (num_embeddings, embedding_dim)
        self.weight = Parameter(np.empty(shape, dtype=_float_dtype(dtype)))
        self._cache = Cache("Embedding")
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Weights N(0, 1) as torch, the ``padding_idx`` row zero."""
        init.normal_(self.weight, 0.0, 1.0, generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Any) -> np.ndarray:
        """``weight[input]``, shape ``input.shape + (embedding_dim,)``; integer indices in range."""
        idx = np.asarray(input)
        if idx.dtype.kind not in "iu":
            raise TypeError("Embedding input must be an integer array of indices (int64 or "
                            f"int32), got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = idx[(idx < 0) | (idx >= self.num_embeddings)].flat[0]
            raise IndexError(f"index out of range in self: index {int(bad)} is not in "
                             f"[0, {self.num_embeddings})")
        self._cache.save(idx=idx)
        return self.weight.data[idx]

    def backward(self, grad_out: np.ndarray) -> None:
        """Scatter-add ``grad_out`` into ``weight.grad``; returns ``None`` (integer input)."""
        idx = self._cache.load()["idx"]
        want = idx.shape + (self.embedding_dim,)
        g = np.asarray(grad_out)
        if g.shape != want:
            raise ValueError(f"Embedding grad_out must have shape {want}, got {g.shape}")
        rows = g.astype(self.weight.dtype, copy=False)
        self.weight.accumulate(embedding_weight_grad(rows, idx, self.weight.shape,
                                                     self.padding_idx, self.scale_grad_by_freq),
                               owned=True)
        return None

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
