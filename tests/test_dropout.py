"""Unit tests of Dropout / Dropout2d and the mask feed (no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.dropout import dropout_scale, feed_masks, keep_mask, record_masks
from refbp.nn.module import Module


class FixedMasks(Module):
    """Runs ``inner`` with the same fed masks on every forward (for finite differences)."""

    def __init__(self, inner: Module, masks: list[np.ndarray]) -> None:
        super().__init__()
        self.inner = inner
        self.masks = masks

    def forward(self, x: Any) -> np.ndarray:
        with feed_masks(self.masks):
            return self.inner(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return self.inner.backward(g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 1 / 3])
def test_dropout_forward_backward_exact(dtype: Any, p: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype(dtype)
    mask = rng.random((4, 6)) < 0.5
    d = nn.Dropout(p)
    with feed_masks([mask]):
        y = d(x)
    scale = dtype(1) / dtype(1.0 - p)
    np.testing.assert_array_equal(y, np.where(mask, x * scale, 0))
    assert y.dtype == dtype
    g = rng.standard_normal((4, 6)).astype(dtype)
    np.testing.assert_array_equal(d.backward(g), np.where(mask, g * scale, 0))


def test_dropout_scale_rounds_like_torch() -> None:
    # 1 - p formed in double, rounded to float32 once, then 1 / (.) in float32
    assert dropout_scale(0.1, np.dtype(np.float32)) == np.float32(1) / np.float32(0.9)
    assert dropout_scale(0.1, np.dtype(np.float64)) == 1.0 / 0.9
    assert dropout_scale(1.0, np.dtype(np.float64)) == 0.0


def test_eval_and_p0_are_identity() -> None:
    x = np.arange(6.0).reshape(2, 3)
    d = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(np.ones((2, 3))), np.ones((2, 3)))
    d0 = nn.Dropout(0.0)
    with feed_masks([]):  # p = 0 draws nothing, as torch
        np.testing.assert_array_equal(d0(x), x)


def test_p1_zeroes_everything() -> None:
    x = np.arange(1.0, 7.0).reshape(2, 3)
    d = nn.Dropout(1.0)
    np.testing.assert_array_equal(d(x), np.zeros((2, 3)))
    np.testing.assert_array_equal(d.backward(np.ones((2, 3))), np.zeros((2, 3)))


def test_own_generator_keep_rate_and_scale() -> None:
    d = nn.Dropout(0.25, generator=np.random.default_rng(1))
    y = d(np.ones((200, 200)))
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01  # 40000 Bernoulli draws: sd 0.002
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=0, atol=0)


def test_dropout2d_masks_whole_channels() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5, 5))
    mask = rng.random((3, 4, 1, 1)) < 0.5
    d = nn.Dropout2d(0.2)
    with feed_masks([mask]):
        y = d(x)
    np.testing.assert_array_equal(y, x * (mask / 0.8))
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(d.backward(g), g * (mask / 0.8))


def test_dropout2d_rank_warnings_and_error() -> None:
    d = nn.Dropout2d(0.5, generator=np.random.default_rng(0))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        assert d(np.ones((2, 3, 4))).shape == (2, 3, 4)
    with pytest.warns(UserWarning, match="Received a 1-D input to dropout2d"), \
            pytest.raises(RuntimeError, match="at least 2 dimensions"):
        d(np.ones(3))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability(p: float) -> None:
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout2d(p)


def test_feed_errors_name_the_mismatch() -> None:
    model = nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))
    x = np.ones((2, 3))
    with pytest.raises(RuntimeError, match="only 1 masks were fed"), \
            feed_masks([np.ones((2, 3), bool)]):
        model(x)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*has shape \(3, 2\)"), \
            feed_masks([np.ones((3, 2), bool)] * 2):
        model(x)
    with pytest.raises(RuntimeError, match="used 2 of the 3 dropout masks"), \
            feed_masks([np.ones((2, 3), bool)] * 3):
        model(x)


def test_recorder_replays_into_feed() -> None:
    gen = np.random.default_rng(3)
    model = nn.Sequential(nn.Dropout(0.4, generator=gen), nn.Dropout2d(0.3, generator=gen))
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4))
    with record_masks() as rec:
        y = model(x)
    assert [m.shape for m in rec.masks] == [(2, 3, 4, 4), (2, 3, 1, 1)]
    with feed_masks(rec.masks):
        np.testing.assert_array_equal(model(x), y)


def test_keep_mask_without_feed_uses_generator() -> None:
    a = keep_mask((5, 5), 0.5, np.random.default_rng(7))
    b = np.random.default_rng(7).random((5, 5)) < 0.5
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layer,shape", [(nn.Dropout(0.3), (3, 4)),
                                         (nn.Dropout2d(0.3), (2, 3, 3, 3))])
def test_gradcheck_with_fixed_mask(layer: Module, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    noise_shape = shape if isinstance(layer, nn.Dropout) else shape[:2] + (1, 1)
    wrapped = FixedMasks(nn.Sequential(nn.Tanh(), layer), [rng.random(noise_shape) < 0.6])
    res = check_module(wrapped, rng.standard_normal(shape))
    assert res.passed, res
