"""``refbp.testing.assert_close``: harness tolerance, metrics and message (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.testing import assert_close


def test_within_tolerance_returns_the_figures() -> None:
    d = assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15]))
    assert d.passed and d.max_abs == pytest.approx(1e-15, rel=0.2)


def test_failure_names_tensor_index_values_and_tolerance() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close(np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]]), name="grad:0.weight")
    assert str(info.value) == (
        "refbp vs torch: tensor grad:0.weight, index (0, 1): refbp=2, torch=2.5; normwise "
        "0.186 (tol 1e-12), tol ratio 2e+08 (rtol 1e-09, atol 1e-12)")


def test_dtype_selects_the_tolerance() -> None:
    a, b = np.array([1.0 + 1e-6]), np.array([1.0])
    assert assert_close(a, b, dtype="float32").passed
    with pytest.raises(AssertionError, match="tol 1e-12"):
        assert_close(a, b)
    assert assert_close(a.astype(np.float32), b.astype(np.float32)).passed


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\) != \(3,\)"):
        assert_close(np.zeros(2), np.zeros(3))
