"""Unit tests (no torch) of Upsample: hand values of each mode, the interpolation matrices'
rows summing to one, finite-difference gradchecks, and torch's errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module
from refbp.nn.functional_interp import MODE_RANKS, interp_matrix

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
