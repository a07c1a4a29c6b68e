"""Unit tests of Dropout1d, Dropout3d, AlphaDropout and FeatureAlphaDropout (no torch)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.dropout import feed_masks, record_masks
from refbp.nn.dropout_alpha import ALPHA, alpha_dropout_affine
from tests.test_dropout import FixedMasks


def test_dropout1d_masks_channels_batched_and_unbatched() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5))
    mask = np.array([[True, False, True], [False, False, True]])[..., None]
    d = nn.Dropout1d(0.25)
    with feed_masks([mask]):
        y = d(x)
    np.testing.assert_array_equal(y, x * (mask / 0.75))
    # unbatched (C, L): drawn as a batch of one, mask (1, C, 1)
    with feed_masks([mask[:1]]):
        y1 = d(x[0])
    np.testing.assert_array_equal(y1, x[0] * (mask[0] / 0.75))
    g = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(d.backward(g), g * (mask[0] / 0.75))


def test_dropout1d_rejects_other_ranks_even_in_eval() -> None:
    for shape in [(3,), (2, 3, 4, 5)]:
        with pytest.raises(RuntimeError, match=f"dropout1d: Expected 2D or 3D input, but "
                                               f"received a {len(shape)}D input"):
            nn.Dropout1d().eval()(np.ones(shape))


def test_dropout3d_unbatched_and_warning() -> None:
    d = nn.Dropout3d(0.5, generator=np.random.default_rng(1))
    with record_masks() as rec:
        d(np.ones((2, 3, 2, 2, 2)))
        d(np.ones((3, 2, 2, 2)))
        with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
            d(np.ones((3, 2, 2)))
    assert [m.shape for m in rec.masks] == [(2, 3, 1, 1, 1), (1, 3, 1, 1, 1), (1, 3, 1, 1)]
    with pytest.warns(UserWarning, match="0-D input"), \
            pytest.raises(RuntimeError, match="at least 2 dimensions"):
        d(np.ones(()))


def test_alpha_constants_are_torchs() -> None:
    # -SELU's saturation: scale * alpha of SELU (torch's selu constants)
    assert ALPHA == 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    mask = np.array([True, False])
    noise, b = alpha_dropout_affine(mask, 0.2, np.dtype(np.float64))
    a = 1 / math.sqrt((ALPHA**2 * 0.2 + 1) * 0.8)
    np.testing.assert_array_equal(noise, [a, 0.0])
    np.testing.assert_array_equal(b, [ALPHA * a * 0.2, -ALPHA * a + ALPHA * a * 0.2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_dropout_keeps_zero_mean_unit_variance(dtype: Any) -> None:
    """The point of the affine map: standard normals stay standard (in expectation)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(200_000).astype(dtype)
    y = nn.AlphaDropout(0.3, generator=rng)(x)
    assert y.dtype == dtype
    # 200000 samples: the standard errors of the mean and variance are ~0.003
    assert abs(float(y.mean())) < 0.015 and abs(float(y.var()) - 1) < 0.02
    # dropped elements all take one value: SELU's saturation, scaled and shifted
    a = 1 / math.sqrt((ALPHA**2 * 0.3 + 1) * 0.7)
    dropped = np.isclose(y, -ALPHA * a * 0.7, rtol=1e-6)
    assert abs(dropped.mean() - 0.3) < 0.01


def test_alpha_dropout_forward_backward_with_fed_mask() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 2))
    mask = rng.random((4, 3, 1)) < 0.5
    d = nn.FeatureAlphaDropout(0.4)
    with feed_masks([mask]):
        y = d(x)
    a = 1 / math.sqrt((ALPHA**2 * 0.4 + 1) * 0.6)
    np.testing.assert_allclose(y, np.where(mask, x * a + ALPHA * a * 0.4,
                                           -ALPHA * a * 0.6), rtol=1e-15, atol=1e-15)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(d.backward(g), g * np.where(mask, a, 0.0))


def test_alpha_dropout_edges_draw_nothing() -> None:
    x = np.arange(-3.0, 3.0).reshape(2, 3)
    with feed_masks([]):
        np.testing.assert_array_equal(nn.AlphaDropout(0.0)(x), x)
        np.testing.assert_array_equal(nn.AlphaDropout(0.5).eval()(x), x)
        np.testing.assert_array_equal(nn.FeatureAlphaDropout(0.5)(np.ones((0, 3))),
                                      np.ones((0, 3)))
        one = nn.AlphaDropout(1.0)
        np.testing.assert_array_equal(one(x), np.zeros((2, 3)))  # x * 0, no shift
        np.testing.assert_array_equal(one.backward(np.ones((2, 3))), np.zeros((2, 3)))


@pytest.mark.parametrize("p", [-0.1, 1.5])
@pytest.mark.parametrize("cls", [nn.Dropout1d, nn.Dropout3d, nn.AlphaDropout,
                                 nn.FeatureAlphaDropout])
def test_bad_probability(cls: type, p: float) -> None:
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        cls(p)


@pytest.mark.parametrize("layer,shape,noise", [
    (nn.Dropout1d(0.3), (3, 4, 5), (3, 4, 1)), (nn.Dropout3d(0.3), (2, 3, 2, 2, 2),
                                                 (2, 3, 1, 1, 1)),
    (nn.AlphaDropout(0.3), (3, 4), (3, 4)), (nn.FeatureAlphaDropout(0.3), (3, 4, 2),
                                             (3, 4, 1))])
def test_gradcheck_with_fixed_mask(layer: Any, shape: tuple[int, ...],
                                   noise: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    wrapped = FixedMasks(nn.Sequential(nn.Tanh(), layer), [rng.random(noise) < 0.6])
    res = check_module(wrapped, rng.standard_normal(shape))
    assert res.passed, res
