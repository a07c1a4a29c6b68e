"""Chunks of whole samples: the layers that make several passes over large arrays
(convolution's im2col + GEMM, GroupNorm) run over the batch a chunk at a time, so that the
passes after a chunk's first find it in the processor's cache."""

from __future__ import annotations


def sample_slices(n: int, sample_bytes: int, budget: int) -> list[slice]:
    """Consecutive slices covering ``range(n)``, each of as many whole samples of
    ``sample_bytes`` each as fit in ``budget`` bytes (one at least); none for ``n = 0``."""
    step = max(1, budget // max(sample_bytes, 1))
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]
