"""Unit tests (no torch) of PixelShuffle, PixelUnshuffle and ChannelShuffle: hand values,
the inverse relations, the gradient as the inverse permutation, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module


def test_pixel_shuffle_hand_values_and_inverse() -> None:
    x = np.arange(8.0).reshape(1, 4, 1, 2)  # channels c r^2 + i r + j, r = 2
    y = rnn.PixelShuffle(2)(x)
    assert y.tolist() == [[[[0, 2, 1, 3], [4, 6, 5, 7]]]]  # x[k, 0, w] = 2 k + w
    assert np.array_equal(rnn.PixelUnshuffle(2)(y), x)
    m = rnn.PixelShuffle(2)
    m(x)
    g = np.arange(8.0).reshape(1, 1, 2, 4) * 10
    assert np.array_equal(m.backward(g), rnn.PixelUnshuffle(2)(g))


def test_channel_shuffle_hand_values() -> None:
    x = np.arange(6.0).reshape(1, 6, 1)  # 2 groups of 3 channels
    m = rnn.ChannelShuffle(2)
    assert m(x).ravel().tolist() == [0, 3, 1, 4, 2, 5]
    assert m.backward(np.array([0, 3, 1, 4, 2, 5], float).reshape(1, 6, 1)).ravel().tolist() == [
        0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("m,shape", [(rnn.PixelShuffle(2), (2, 8, 3, 2)),
                                     (rnn.PixelShuffle(3), (9, 2, 2)),
                                     (rnn.PixelUnshuffle(2), (2, 1, 4, 6)),
                                     (rnn.ChannelShuffle(3), (2, 6, 2, 2))])
def test_gradcheck(m: rnn.Module, shape: tuple[int, ...]) -> None:
    res = check_module(m, np.random.default_rng(0).standard_normal(shape))
    assert res.passed, str(res)


def test_errors() -> None:
    with pytest.raises(RuntimeError, match=r"input.size\(-3\)=3 is not divisible by 4"):
        rnn.PixelShuffle(2)(np.ones((1, 3, 2, 2)))
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        rnn.PixelUnshuffle(2)(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match=r"width to be divisible .* input.size\(-1\)=3"):
        rnn.PixelUnshuffle(2)(np.ones((1, 3, 2, 3)))
    with pytest.raises(RuntimeError, match="Got 3 channels and 2 groups"):
        rnn.ChannelShuffle(2)(np.ones((1, 3, 2)))
    with pytest.raises(RuntimeError, match=r"> 2 dims, but got input with sizes \[1, 4\]"):
        rnn.ChannelShuffle(2)(np.ones((1, 4)))
    assert repr(rnn.PixelShuffle(2)) == "PixelShuffle(upscale_factor=2)"
