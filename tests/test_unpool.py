"""Unit tests of MaxUnpool1d/2d/3d (no torch): hand values, the gather backward, errors."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn


def test_unpool_places_values_and_gathers_gradients() -> None:
    m = nn.MaxUnpool1d(2)
    x = np.array([[[5.0, 7.0]]])
    y = m(x, np.array([[[1, 2]]]))
    np.testing.assert_array_equal(y, [[[0.0, 5.0, 7.0, 0.0]]])
    np.testing.assert_array_equal(m.backward(np.array([[[1.0, 2.0, 3.0, 4.0]]])), [[[2.0, 3.0]]])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_unpool_inverts_max_pool_on_the_maxima(n: int) -> None:
    """MaxPool then MaxUnpool keeps every window maximum in place and zeroes the rest."""
    x = np.random.default_rng(0).permutation(2 * 3 * 4 ** n).reshape((2, 3) + (4,) * n) * 1.0
    pooled, idx = getattr(nn, f"MaxPool{n}d")(2, return_indices=True)(x)
    y = getattr(nn, f"MaxUnpool{n}d")(2)(pooled, idx)
    assert y.shape == x.shape
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept])
    assert kept.sum() == pooled.size


def test_unpool_errors() -> None:
    m = nn.MaxUnpool2d(2)
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="invalid max index"):
        m(x, np.full((1, 1, 2, 2), 16))
    with pytest.raises(ValueError, match="Expected shape of indices"):
        m(x, np.zeros((1, 1, 2, 1), dtype=np.int64))
    with pytest.raises(TypeError, match="indices must be integers"):
        m(x, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="invalid output_size"):
        m(x, np.zeros((1, 1, 2, 2), dtype=np.int64), (9, 9))
