"""Parity of PixelShuffle, PixelUnshuffle and ChannelShuffle with torch (output and input
gradient, both dtypes), with extra leading dimensions and without a batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.mirror import compare_module

pytestmark = pytest.mark.parity

CASES = [(lambda: rnn.PixelShuffle(2), (2, 8, 3, 2)), (lambda: rnn.PixelShuffle(3), (9, 2, 1)),
         (lambda: rnn.PixelShuffle(2), (2, 3, 4, 2, 2)),
         (lambda: rnn.PixelUnshuffle(2), (2, 3, 4, 6)), (lambda: rnn.PixelUnshuffle(3), (1, 3, 3)),
         (lambda: rnn.ChannelShuffle(2), (2, 6, 3)), (lambda: rnn.ChannelShuffle(3),
                                                      (2, 6, 2, 2, 2))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("make,shape", CASES)
def test_matches_torch(make: Any, shape: tuple[int, ...], dtype: Any) -> None:
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    result = compare_module(make(), x)
    assert all(d.passed for d in result.values()), f"refbp vs torch: {result}"
