r"""``CosineSimilarity`` and ``PairwiseDistance``: two inputs in, one distance out (maths in
:mod:`refbp.nn.functional_distance`).

Both take ``forward(x1, x2)`` of one float dtype, broadcast against each other as torch
broadcasts them, and ``backward(g)`` returns ``(dL/dx1, dL/dx2)``, each of its input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, check_same_dtype, grad_out_array
from refbp.nn.functional_distance import (
    cosine_similarity,
    cosine_similarity_backward,
    pairwise_distance,
    pairwise_distance_backward,
)
from refbp.nn.module import Cache, Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


def _pair(x1: Any, x2: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = as_float_array(x1, f"{name} x1")
    b = as_float_array(x2, f"{name} x2")
    check_same_dtype(a, b, (f"{name} x1", f"{name} x2"))
    return a, b


class CosineSimilarity(Module):
    r"""Cosine similarity along ``dim``, as ``torch.nn.CosineSimilarity``.

    Forward, as ATen computes it (each input normalised first, which keeps ``|y| <= 1``)::

        y = sum( (x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps)), dim )

    Backward: with ``u = x1 / n1``, ``n1 = max(||x1||, eps)``::

        dL/dx1 = g v / n1 - (sum(g v x1, dim) / n1^2) * x1 / ||x1||

    (the second term through the norm; as torch, the clamp to ``eps`` is not differentiated,
    so the norm's own gradient ``x1 / ||x1||`` applies even below ``eps``, and is 0 at
    ``x1 = 0``); symmetric for ``x2``. Derivation in
    :func:`~refbp.nn.functional_distance.cosine_similarity_backward`.

    Parameters
    ----------
    dim : int, default 1
        The dimension along which the vectors lie (of the broadcast inputs).
    eps : float, default 1e-8
        The smallest norm divided by.

    Shapes
    ------
    x1, x2 : broadcastable to a common shape; y : that shape without ``dim``.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = int(dim), float(eps)
        self._cache = Cache("CosineSimilarity")

    def forward(self, x1: Any, x2: Any) -> np.ndarray:
        """Cosine similarity of x1 and x2 along ``dim``."""
        a, b = _pair(x1, x2, "CosineSimilarity")
        y, saved = cosine_similarity(a, b, self.dim, self.eps)
        self._cache.save(saved=saved, shapes=(a.shape, b.shape), out=y.shape)
        return y

    def backward(self, grad_out: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(dL/dx1, dL/dx2)``."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["out"], "CosineSimilarity")
        return cosine_similarity_backward(g, c["saved"], *c["shapes"])

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return f"dim={self.dim}, eps={self.eps}"


class PairwiseDistance(Module):
    r"""The p-norm distance of row pairs, as ``torch.nn.PairwiseDistance``.

    Forward, as ATen's ``pairwise_distance``: ``d = x1 - x2 + eps`` (broadcast), then the
    p-norm over the last dimension::

        y = ||d||_p = (sum_k |d_k|^p)^(1/p)        (p = inf: max |d_k|, p = 0: count d_k != 0)

    Backward: ``dL/dd`` is the p-norm's gradient ``g sgn(d) |d|^(p-1) / y^(p-1)`` in the form
    torch writes for each range of ``p`` (0 where ``y = 0``; shared evenly between ties for
    ``p = inf``; zero for ``p = 0``;
    :func:`~refbp.nn.functional_distance.vector_norm_backward`), and
    ``dL/dx1 = dL/dd``, ``dL/dx2 = -dL/dd`` (summed over broadcast dimensions).

    Parameters
    ----------
    p : float, default 2.0
        The norm degree (may be 0, negative or ``inf``).
    eps : float, default 1e-6
        Added to the difference (torch's convention: to every component, not to the norm).
    keepdim : bool, default False
        Keep the reduced last dimension (size 1).

    Shapes
    ------
    x1, x2 : (N, D) or (D,), broadcastable; y : (N,) or () (with ``keepdim``: (N, 1), (1,)).
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = float(p), float(eps), bool(keepdim)
        self._cache = Cache("PairwiseDistance")

    @property
    def p(self) -> float:
        """The norm degree (torch stores it as ``norm``)."""
        return self.norm

    def forward(self, x1: Any, x2: Any) -> np.ndarray:
        """``||x1 - x2 + eps||_p`` over the last dimension."""
        a, b = _pair(x1, x2, "PairwiseDistance")
        y, d = pairwise_distance(a, b, self.norm, self.eps, self.keepdim)
        self._cache.save(d=d, y=y, shapes=(a.shape, b.shape))
        return y

    def backward(self, grad_out: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(dL/dx1, dL/dx2)``."""
        c = self._cache.load()
        g = grad_out_array(grad_out, c["y"].shape, "PairwiseDistance")
        s1, s2 = c["shapes"]
        return pairwise_distance_backward(g, s1, s2, c["d"], c["y"], self.norm, self.keepdim)

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return f"p={self.norm}, eps={self.eps}, keepdim={self.keepdim}"
