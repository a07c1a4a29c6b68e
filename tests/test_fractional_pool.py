"""Unit tests of FractionalMaxPool2d and FractionalMaxPool3d (no torch): the window starts
of torch's ``generate_intervals`` derived by hand, routing, overlaps, fed samples, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.dropout import feed_masks, record_masks
from refbp.nn.fractional_pool import fractional_starts


def _starts(u: float, length: int, out: int, k: int, dtype: Any = np.float64) -> list[int]:
    return fractional_starts(np.array([u], dtype=dtype), length, out, k)[0].tolist()


@pytest.mark.parametrize("u,length,out,k,expected", [
    # alpha = (7 - 2) / 3 = 5/3: trunc((i + u) 5/3) - trunc(u 5/3), then the last at L - k
    (0.5, 7, 4, 2, [0, 2, 4, 5]),   # 0.83 -> 0; 2.5 -> 2; 4.17 -> 4; 5
    (0.0, 7, 4, 2, [0, 1, 3, 5]),   # 0; 1.67 -> 1; 3.33 -> 3; 5
    # alpha = 3/2: trunc(1.5 * 1.5) - trunc(0.75) = 2: windows [0, 2), [2, 4), [3, 5) overlap
    (0.5, 5, 3, 2, [0, 2, 3]),
    (0.9, 6, 1, 2, [4]),             # one output: the window that ends at L
    (0.3, 6, 0, 2, []),              # no output
])
def test_window_starts_by_hand(u: float, length: int, out: int, k: int,
                               expected: list[int]) -> None:
    assert _starts(u, length, out, k) == expected


def test_window_starts_are_computed_in_the_input_dtype() -> None:
    # L=6, k=1, O=4: alpha = 5/3 and u = 0.8. In float64, 0.8 * alpha = 1.33 -> 1 and
    # 1.8 * alpha = 3.0000000000000004 -> 3, start 3 - 1 = 2. In float32 1.8f * 1.6666666f
    # rounds to 2.9999998 -> 2, start 2 - 1 = 1 (torch's float32 kernel gives the same).
    assert _starts(0.8, 6, 4, 1, np.float64) == [0, 2, 3, 5]
    assert _starts(0.8, 6, 4, 1, np.float32) == [0, 1, 3, 5]


def test_forward_routes_to_the_first_maximum_and_overlaps_add() -> None:
    # one row (H = 1), width 5, kernel (1, 2), 3 outputs; the width's sample is column 0:
    # u = 0 -> starts [0, 1, 3], windows {0, 1}, {1, 2}, {3, 4}
    x = np.array([[[[0.0, 9.0, 2.0, 8.0, 1.0]]]])
    m = nn.FractionalMaxPool2d((1, 2), output_size=(1, 3), return_indices=True,
                               _random_samples=np.array([[[0.0, 0.7]]]))
    y, idx = m(x)
    np.testing.assert_array_equal(y, [[[[9.0, 9.0, 8.0]]]])
    np.testing.assert_array_equal(idx, [[[[1, 1, 3]]]])
    assert idx.dtype == np.int64
    # element 1 is the maximum of two windows: their gradients add
    np.testing.assert_array_equal(m.backward(np.array([[[[1.0, 10.0, 100.0]]]])),
                                  [[[[0.0, 11.0, 0.0, 100.0, 0.0]]]])


def test_sample_columns_width_first_in_2d_depth_first_in_3d() -> None:
    # 2-D: column 0 places the width, column 1 the height. 5x5 input, kernel 2, 3x3 output:
    # u = 0 -> starts [0, 1, 3]; u = 0.5 -> [0, 2, 3] (alpha = 3/2)
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    _, idx = nn.FractionalMaxPool2d(2, output_size=3, return_indices=True,
                                    _random_samples=np.array([[[0.0, 0.5]]]))(x)
    rows, cols = np.divmod(idx[0, 0], 5)  # increasing input: the window's last element
    np.testing.assert_array_equal(rows[:, 0], [1, 3, 4])  # height from u = 0.5
    np.testing.assert_array_equal(cols[0], [1, 2, 4])     # width from u = 0
    # 3-D: columns depth, height, width
    v = np.arange(125.0).reshape(1, 1, 5, 5, 5)
    _, idx3 = nn.FractionalMaxPool3d(2, output_size=3, return_indices=True,
                                     _random_samples=np.array([[[0.5, 0.0, 0.5]]]))(v)
    t, rest = np.divmod(idx3[0, 0], 25)
    h, w = np.divmod(rest, 5)
    np.testing.assert_array_equal(t[:, 0, 0], [1, 3, 4])
    np.testing.assert_array_equal(h[0, :, 0], [1, 2, 4])
    np.testing.assert_array_equal(w[0, 0], [1, 3, 4])


def test_ties_go_to_the_first_element_and_nan_to_the_last_nan() -> None:
    u = np.array([[[0.0, 0.0]]])
    m = nn.FractionalMaxPool2d(2, output_size=1, return_indices=True, _random_samples=u)
    _, idx = m(np.ones((1, 1, 2, 2)))
    assert idx.item() == 0
    y, idx = m(np.array([[[[np.nan, 1.0], [np.nan, 0.0]]]]))
    assert np.isnan(y.item()) and idx.item() == 2


def test_each_plane_takes_its_own_samples_and_unbatched_input_the_first_row() -> None:
    x = np.tile(np.arange(5.0), (2, 2, 1, 1)).reshape(2, 2, 1, 5)
    u = np.array([[[0.0, 0.0], [0.5, 0.0]], [[0.5, 0.0], [0.0, 0.0]], [[0.9, 0.0], [0.9, 0.0]]])
    m = nn.FractionalMaxPool2d((1, 2), output_size=(1, 3), return_indices=True,
                               _random_samples=u)
    _, idx = m(x)  # u = 0 -> ends [1, 2, 4]; u = 0.5 -> starts [0, 2, 3], ends [1, 3, 4]
    np.testing.assert_array_equal(idx[:, :, 0], [[[1, 2, 4], [1, 3, 4]],
                                                [[1, 3, 4], [1, 2, 4]]])
    _, idx1 = m(x[0])  # (C, H, W): row 0 of the samples
    np.testing.assert_array_equal(idx1[:, 0], [[1, 2, 4], [1, 3, 4]])


def test_output_ratio_truncates_the_size() -> None:
    x = np.zeros((2, 3, 9, 8))
    y = nn.FractionalMaxPool2d((3, 2), output_ratio=(0.5, 0.7),
                               _random_samples=np.full((2, 3, 2), 0.5))(x)
    assert y.shape == (2, 3, 4, 5)  # int(4.5), int(5.6)


def test_samples_are_drawn_at_every_pass_in_both_modes_and_can_be_fed() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    m = nn.FractionalMaxPool2d(2, output_size=(4, 3), return_indices=True,
                               generator=np.random.default_rng(1))
    for mode in (m.train(), m.eval()):
        with record_masks() as rec:
            mode(x)
        assert [s.shape for s in rec.masks] == [(2, 3, 2)]
        assert 0.0 <= rec.masks[0].min() and rec.masks[0].max() < 1.0
    fed = np.full((2, 3, 2), 0.5)
    with feed_masks([fed]):
        _, idx = m(x)
    _, ref = nn.FractionalMaxPool2d(2, output_size=(4, 3), return_indices=True,
                                    _random_samples=fed)(x)
    np.testing.assert_array_equal(idx, ref)
    with pytest.raises(ValueError, match=r"needs a dropout mask of shape \(1, 3, 2\)"), \
            feed_masks([fed]):
        m(x[0])  # unbatched: a batch of one


def test_fixed_samples_are_a_buffer_cast_with_the_module() -> None:
    u = np.full((1, 2, 3), 0.25)
    m = nn.FractionalMaxPool3d(2, output_size=2, _random_samples=u)
    assert list(m.state_dict()) == ["_random_samples"]
    assert m.float()._random_samples.dtype == np.float32
    assert list(nn.FractionalMaxPool3d(2, output_size=2).state_dict()) == []


@pytest.mark.parametrize("cls,shape,kw", [
    (nn.FractionalMaxPool2d, (2, 2, 6, 7), {"kernel_size": 2, "output_size": (3, 4)}),
    (nn.FractionalMaxPool3d, (1, 2, 5, 4, 6), {"kernel_size": (2, 1, 2), "output_size": 3}),
])
def test_gradient_matches_finite_differences(cls: type, shape: tuple[int, ...],
                                             kw: dict[str, Any]) -> None:
    u = np.random.default_rng(2).random((shape[0], shape[1], len(shape) - 2))
    x = np.random.default_rng(3).standard_normal(shape)
    assert check_module(cls(**kw, _random_samples=u), x).passed


@pytest.mark.parametrize("make,x,message", [
    (lambda: nn.FractionalMaxPool2d(2), None, "requires specifying either an output size"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2, output_ratio=0.5), None,
     "only one of output_size and output_ratio"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=(0.5, 1.0)), None,
     r"output_ratio must be between 0 and 1 \(got \(0.5, 1.0\)\)"),
    (lambda: nn.FractionalMaxPool3d((2, 0, 2), output_size=2), None,
     r"kernel_size must be greater than 0, but got \(2, 0, 2\)"),
    (lambda: nn.FractionalMaxPool2d(0, output_size=2), None,
     "kernel_size must be greater than 0, but got 0"),
    (lambda: nn.FractionalMaxPool2d((2, 2, 2), output_size=2), (1, 1, 5, 5),
     "fractional_max_pool2d: kernel_size must either be a single Int or tuple of Ints"),
    (lambda: nn.FractionalMaxPool3d(2, output_size=(2, 2)), (1, 1, 5, 5, 5),
     "fractional_max_pool3d: output_size must either be a single Int or tuple of three Ints"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2), (5, 5),
     r"fractional_max_pool2d\(\): Expected 3D or 4D tensor, but got: \[5, 5\]"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2), (2, 0, 5, 5),
     r"non-zero size for non-batch dimensions, but got\[2, 0, 5, 5\] with dimension 1"),
    # the 2-D kernel wants out + k - 1 <= L: 4 + 3 - 1 = 6 is too large for a height of 5
    (lambda: nn.FractionalMaxPool2d(3, output_size=(4, 2)), (1, 1, 5, 6),
     r"fractional_max_pool2d\(\): pool height 3 too large relative to input height 5"),
    # the 3-D kernel wants out + k - 1 < L: 3 + 3 - 1 = 5 is too large for a width of 5
    (lambda: nn.FractionalMaxPool3d(3, output_size=(2, 2, 3)), (1, 1, 6, 6, 5),
     r"fractional_max_pool3d_out\(\): pool width 3 too large relative to input width 5"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2, _random_samples=np.zeros((1, 1, 2),
                                                                              np.float32)),
     (1, 1, 5, 5), "Expect _random_samples to have the same dtype as input"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2, _random_samples=np.zeros((1, 2, 2))),
     (2, 2, 5, 5), r"Expect _random_samples.size\(0\) no less then input batch size."),
    (lambda: nn.FractionalMaxPool2d(2, output_size=2, _random_samples=np.zeros((2, 2, 3))),
     (2, 2, 5, 5), r"Expect _random_samples.size\(2\) equals to 2; got 3."),
])
def test_bad_arguments_raise_torchs_message(make: Any, x: tuple[int, ...] | None,
                                            message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()(np.zeros(x))
