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

``sparse=True``: the gradient is a :class:`refbp.nn.sparse.SparseGrad` laid out as torch's
sparse COO gradient (one entry per looked-up token, uncoalesced, ``padding_idx`` entries
dropped; a second backward appends), which ``SparseAdam`` consumes without densifying; as in
torch, ``scale_grad_by_freq`` is refused with sparse gradients (at backward).

``max_norm``: before the lookup, every row of ``W`` that ``idx`` looks up (each distinct index
once, in ascending order, as torch's ``embedding_renorm_``) whose ``norm_type``-norm exceeds
``max_norm`` is scaled *in place* by ``max_norm / (norm + 1e-7)`` (the scale computed in double
precision, applied in ``W``'s dtype): :func:`embedding_renorm_`. The change of ``W`` is not
differentiated (torch runs it under ``no_grad``): the gradient is the scatter-add above, as if
the renormalised ``W`` had been the weight all along; rows not looked up are untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import init
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter
from refbp.nn.sparse import SparseGrad
from refbp.nn.utils import _vector_norm


def embedding_renorm_(weight: np.ndarray, idx: np.ndarray, max_norm: float,
                      norm_type: float) -> None:
    """torch's ``embedding_renorm_``: scale in place each row of ``weight`` looked up by ``idx``
    whose ``norm_type``-norm exceeds ``max_norm``.

    For each distinct index ``k`` in ascending order, ``n = ||W_k||_p`` (computed in ``W``'s
    dtype, read as a double); if ``n > max_norm``, ``W_k *= max_norm / (n + 1e-7)`` with the
    scale rounded to ``W``'s dtype (torch multiplies by a double scalar that its CPU kernel
    casts to the tensor's type). The 1e-7 keeps the new norm just below ``max_norm``.
    """
    for k in np.unique(idx):
        norm = float(_vector_norm(weight[k], norm_type))
        if norm > max_norm:
            weight[k] *= weight.dtype.type(max_norm / (norm + 1e-7))


def accumulate_sparse(weight: Parameter, flat: np.ndarray, rows: np.ndarray,
                      padding_idx: int | None, scale_grad_by_freq: bool) -> None:
    """torch's ``embedding_sparse_backward`` into ``weight.grad``: one entry per looked-up
    index (row ``rows[i]`` for index ``flat[i]``), in input order, ``padding_idx`` entries
    dropped; appended to a sparse gradient already there, added to a dense one."""
    if scale_grad_by_freq:
        raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with "
                           "sparse gradients")
    if not weight.requires_grad:
        return
    keep = flat != padding_idx if padding_idx is not None else slice(None)
    g = SparseGrad(flat[keep], rows[keep].copy(), weight.data.shape)
    current = weight.grad
    # Parameter.grad is typed as the dense array every other layer gives it
    if current is None:
        weight.grad = g  # type: ignore[assignment]
    elif isinstance(current, SparseGrad):
        weight.grad = current + g  # type: ignore[assignment]
    else:
        current += g.to_dense()


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
        if self.max_norm is not None:
            embedding_renorm_(self.weight.data, idx, self.max_norm, self.norm_type)
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
        if self.sparse:
            accumulate_sparse(self.weight, idx.reshape(-1), rows.reshape(-1, self.embedding_dim),
                              self.padding_idx, self.scale_grad_by_freq)
            return None
        self.weight.accumulate(embedding_weight_grad(rows, idx, self.weight.shape,
                                                     self.padding_idx, self.scale_grad_by_freq),
                               owned=True)
        return None

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s
