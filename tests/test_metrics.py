"""refbp.metrics.discrepancy: every figure on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.metrics import discrepancy
from refbp.tolerances import TOLERANCES, tolerance_for

T64 = TOLERANCES["float64"]


def test_identical_arrays_pass_with_zero_error() -> None:
    d = discrepancy(np.array([1.0, 2.0]), np.array([1.0, 2.0]), T64)
    assert d.passed and d.max_abs == 0 and d.normwise == 0 and d.cosine == pytest.approx(1.0)


def test_figures_on_known_difference() -> None:
    a, b = np.array([1.0, 2.0, 3.0 + 3e-9]), np.array([1.0, 2.0, 3.0])
    d = discrepancy(a, b, T64)
    assert d.max_abs == pytest.approx(3e-9, rel=1e-6)
    assert d.max_rel == pytest.approx(1e-9, rel=1e-6)
    assert d.normwise == pytest.approx(3e-9 / np.sqrt(14), rel=1e-6)
    assert d.worst_index == (2,)
    assert d.tol_ratio == pytest.approx(3e-9 / (1e-12 + 3e-9), rel=1e-6)
    assert not d.passed  # normwise 8e-10 > 1e-12


def test_zero_reference_uses_absolute_floor() -> None:
    assert discrepancy(np.array([1e-14, 0.0]), np.zeros(2), T64).passed
    assert not discrepancy(np.array([1e-9, 0.0]), np.zeros(2), T64).passed


def test_nonfinite_fails_and_names_index() -> None:
    d = discrepancy(np.array([[1.0, np.nan]]), np.array([[1.0, 2.0]]), T64)
    assert d.nonfinite and not d.passed and d.worst_index == (0, 1)
    same = discrepancy(np.array([np.inf]), np.array([np.inf]), T64)
    assert same.passed


def test_shape_mismatch_and_dtype_table() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\) != \(3,\)"):
        discrepancy(np.zeros(2), np.zeros(3), T64)
    assert tolerance_for(np.float32).normwise == 1e-5
    assert tolerance_for("float64").normwise == 1e-12
    with pytest.raises(ValueError, match="no tolerance defined for dtype int64"):
        tolerance_for(np.int64)
