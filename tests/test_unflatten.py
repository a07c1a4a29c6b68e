"""Unit tests of Unflatten (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn


def test_unflatten_forward_backward() -> None:
    x = np.arange(24.0).reshape(4, 6)
    m = nn.Unflatten(1, (2, -1))
    y = m(x)
    assert y.shape == (4, 2, 3)
    np.testing.assert_array_equal(y.reshape(4, 6), x)
    np.testing.assert_array_equal(m.backward(np.ones((4, 2, 3))), np.ones((4, 6)))
    assert nn.Unflatten(-1, [3, 2])(x).shape == (4, 3, 2)


@pytest.mark.parametrize("dim,sizes,err,match", [
    (1, (4, 2), ValueError, r"Provided sizes \[4, 2\] don't multiply up to the size of dim 1"),
    (1, (-1, -1), ValueError, "only one dimension can be inferred"),
    (3, (2, 3), IndexError, "Dimension out of range"),
])
def test_unflatten_forward_errors(dim: int, sizes: tuple[int, ...], err: type,
                                  match: str) -> None:
    with pytest.raises(err, match=match):
        nn.Unflatten(dim, sizes)(np.ones((4, 6)))


def test_unflatten_constructor_errors() -> None:
    with pytest.raises(TypeError, match="found element of type float at pos 0"):
        nn.Unflatten(1, (2.0, 3))
    with pytest.raises(TypeError, match="must be a tuple of ints, but found type int"):
        nn.Unflatten(1, 5)
