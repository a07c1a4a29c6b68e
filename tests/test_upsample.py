"""Unit tests (no torch) of Upsample: hand values of each mode, the interpolation matrices'
rows summing to one, finite-difference gradchecks, and torch's errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module
from refbp.nn.functional_interp import MODE_RANKS, aa_matrix, interp_matrix

ROW = np.array([[[0.0, 1.0, 2.0, 3.0]]])  # (1, 1, 4)


@pytest.mark.parametrize("options,expected", [
    ({"scale_factor": 2}, [0, 0, 1, 1, 2, 2, 3, 3]),
    ({"size": 2}, [0, 2]),  # floor(o * 2)
    ({"size": 3, "mode": "nearest-exact"}, [0, 2, 3]),  # floor((o + 0.5) * 4/3)
    ({"size": 2, "mode": "area"}, [0.5, 2.5]),
    ({"size": 7, "mode": "linear", "align_corners": True}, [0, 0.5, 1, 1.5, 2, 2.5, 3]),
    # half-pixel centres, clamped at 0 on the left and at the last pixel on the right
    ({"scale_factor": 2, "mode": "linear"}, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]),
])
def test_hand_values(options: dict[str, Any], expected: list[float]) -> None:
    m = rnn.Upsample(**options)
    y = m(ROW)
    assert np.allclose(y.ravel(), expected, rtol=0, atol=1e-15)
    g = m.backward(np.ones_like(y))  # each input collects its weights
    assert np.isclose(g.sum(), y.size)


@pytest.mark.parametrize("mode", list(MODE_RANKS))
@pytest.mark.parametrize("size", [(4, 9), (9, 4), (5, 5), (4, 1)])
def test_rows_of_the_matrices_sum_to_one(mode: str, size: tuple[int, int]) -> None:
    w = interp_matrix(size[0], size[1], mode, False, None, np.dtype(np.float64))
    assert w.shape == (size[1], size[0])
    assert np.allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("mode,shape", [("nearest", (2, 2, 3, 4)), ("bilinear", (2, 2, 3, 4)),
                                        ("bicubic", (1, 2, 4, 3)), ("linear", (2, 3, 5)),
                                        ("trilinear", (1, 2, 2, 3, 2)), ("area", (1, 2, 7)),
                                        ("nearest-exact", (1, 1, 2, 2, 3))])
@pytest.mark.parametrize("options", [{"scale_factor": 1.6}, {"scale_factor": 0.7},
                                     {"scale_factor": 2.5, "recompute_scale_factor": True}])
def test_gradcheck(mode: str, shape: tuple[int, ...], options: dict[str, Any]) -> None:
    if mode == "area" and options["scale_factor"] == 0.7:
        options = {"size": 3}
    m = rnn.Upsample(mode=mode, **options)
    res = check_module(m, np.random.default_rng(0).standard_normal(shape))
    assert res.passed, str(res)


def test_errors() -> None:
    x = np.ones((1, 1, 4))
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        rnn.Upsample()(x)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        rnn.Upsample(size=3, scale_factor=2)(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        rnn.Upsample(scale_factor=2, align_corners=True)(x)
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D"):
        rnn.Upsample(scale_factor=2, mode="bilinear")(x)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        rnn.Upsample(size=3, recompute_scale_factor=True)(x)
    with pytest.raises(NotImplementedError, match="not one of"):
        rnn.Upsample(scale_factor=2, mode="cubic")
    assert repr(rnn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert rnn.UpsamplingBilinear2d(scale_factor=2).align_corners is True


def test_antialias_bilinear_downsampling_weights_by_hand() -> None:
    # 4 -> 2: scale 2, the triangle widened to support 2 and read at t / 2. Output 0 is
    # centred at 1: inputs 0..2 at t = -0.5, 0.5, 1.5 -> 0.75, 0.75, 0.25, normalised by 1.75;
    # output 1 at 3: inputs 1..3 -> 0.25, 0.75, 0.75
    w = aa_matrix(4, 2, "bilinear", False, None, np.float64)
    np.testing.assert_allclose(w, [[3 / 7, 3 / 7, 1 / 7, 0], [0, 1 / 7, 3 / 7, 3 / 7]],
                               rtol=1e-15)


def test_antialias_bicubic_upsampling_weights_by_hand() -> None:
    # 2 -> 4: scale 1/2 (< 1: support 2, not widened). Output 0 is centred at 0.25: inputs
    # 0 and 1 at t = 0.25 and 1.25; Keys' cubic with A = -0.5 gives 111/128 and -9/128,
    # normalised by their sum 102/128
    w = aa_matrix(2, 4, "bicubic", False, None, np.float64)
    np.testing.assert_allclose(w[0], [37 / 34, -3 / 34], rtol=1e-15)
    np.testing.assert_allclose(w.sum(axis=1), np.ones(4), rtol=1e-15)
    np.testing.assert_array_equal(aa_matrix(5, 5, "bicubic", True, 1.3, np.float32),
                                  np.eye(5, dtype=np.float32))  # an unchanged axis is copied


def test_antialias_is_bilinear_and_bicubic_only() -> None:
    with pytest.raises(NotImplementedError, match="restricted to bilinear and bicubic"):
        interp_matrix(4, 2, "nearest", False, None, np.float64, antialias=True)
