"""Gradient clipping without torch: hand-computed norms, in-place scaling, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.nn.module import Parameter
from refbp.nn.utils import clip_grad_norm_, clip_grad_value_, get_total_norm


def param(grad: list[float] | None, dtype: type = np.float64) -> Parameter:
    p = Parameter(np.zeros(2 if grad is None else len(grad), dtype=dtype))
    p.grad = None if grad is None else np.array(grad, dtype=dtype)
    return p


def test_two_norm_clips_in_place_with_torch_coefficient() -> None:
    a, b, none = param([3.0, 0.0]), param([0.0, 4.0]), param(None)
    grad_a = a.grad
    total = clip_grad_norm_([a, none, b], max_norm=1.0)
    assert isinstance(total, np.ndarray) and total.shape == () and float(total) == 5.0
    coef = (1.0 / (5.0 + 1e-6)) * 1.0  # reciprocal(total + 1e-6) * max_norm
    assert a.grad is grad_a  # scaled in place
    np.testing.assert_array_equal(a.grad, [3.0 * coef, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 4.0 * coef])
    assert none.grad is None
    assert float(get_total_norm([a.grad, b.grad])) == pytest.approx(1.0, rel=1e-6)  # type: ignore[list-item]


@pytest.mark.parametrize("norm_type,expected", [
    (1.0, 10.0), (math.inf, 4.0), ("inf", 4.0), (3.0, (27 + 64 + 1 + 8) ** (1 / 3)),
    (0.0, 2.0), (-math.inf, 1.0),  # p=0: count of non-zero per-array counts, as torch
])
def test_p_norms(norm_type: float, expected: float) -> None:
    ps = [param([3.0, -4.0]), param([1.0, -2.0])]
    total = clip_grad_norm_(ps, max_norm=1e9, norm_type=norm_type)
    assert float(total) == pytest.approx(expected, rel=1e-15)


def test_no_clip_leaves_gradients_bit_identical() -> None:
    g = [0.1, -0.2]
    p = param(g)
    clip_grad_norm_(p, max_norm=10.0)  # a single Parameter is accepted
    np.testing.assert_array_equal(p.grad, g)  # coefficient clamped to exactly 1.0


def test_float32_stays_float32() -> None:
    p = param([30.0, 40.0], dtype=np.float32)
    total = clip_grad_norm_([p], 5.0)
    assert total.dtype == np.float32 and p.grad is not None and p.grad.dtype == np.float32
    assert float(np.linalg.norm(p.grad)) == pytest.approx(5.0, rel=1e-6)


def test_nonfinite_norm_error_and_propagation() -> None:
    p = param([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad, [np.inf, 1.0])  # nothing touched on error
    total = clip_grad_norm_([p], 1.0)
    assert math.isinf(float(total))
    assert p.grad is not None and np.isnan(p.grad[0]) and p.grad[1] == 0.0  # inf * 0 = nan


def test_empty_inputs() -> None:
    total = clip_grad_norm_([param(None)], 1.0)
    assert total.dtype == np.float32 and float(total) == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in list[Parameter]()), 1.0)
    with pytest.raises(TypeError, match="Parameters"):
        clip_grad_norm_(3.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got ndarray"):
        clip_grad_norm_([np.zeros(2)], 1.0)  # type: ignore[list-item]


def test_clip_grad_value() -> None:
    p, q = param([-3.0, 0.5]), param([np.nan, 2.0])
    grad = p.grad
    clip_grad_value_([p, q, param(None)], 1.0)
    assert p.grad is grad
    np.testing.assert_array_equal(p.grad, [-1.0, 0.5])
    np.testing.assert_array_equal(q.grad, [np.nan, 1.0])
    r = param([-3.0, 0.5])
    clip_grad_value_(r, -0.5)  # clamp_min(0.5) then clamp_max(-0.5): all -0.5, as torch
    np.testing.assert_array_equal(r.grad, [-0.5, -0.5])
