"""``refbp.testing.assert_close``: harness tolerance, metrics and message (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import refbp
from refbp.testing import assert_close


def test_within_tolerance_returns_the_figures() -> None:
    d = assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15]))
    assert d.passed and d.max_abs == pytest.approx(1e-15, rel=0.2)


def test_failure_message_in_the_manner_of_torch_testing() -> None:
    """Counts, greatest differences with their index and the allowed values; "actual vs
    expected" when the reference is not a torch tensor."""
    with pytest.raises(AssertionError) as info:
        assert_close(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
                     np.array([[1.0, 2.5, 3.0], [4.0, 5.0, 6.0 + 1e-3]]), name="grad:0.weight")
    assert str(info.value) == "\n".join([
        "actual vs expected: Tensor-likes are not close!",
        "",
        "Tensor: grad:0.weight",
        "Mismatched elements: 2 / 6 (33.3%)",
        "Greatest absolute difference: 0.5 at index (0, 1) (up to 1e-12 allowed)",
        "Greatest relative difference: 0.2 at index (0, 1) (up to 1e-09 allowed)",
        "Normwise relative difference: 0.0518 (up to 1e-12 allowed)",
        "Worst element (tolerance ratio 2e+08) at index (0, 1): actual=2, expected=2.5"])
    assert "torch" not in str(info.value)


def test_a_failure_hides_refbp_frames_from_pytest() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close(np.zeros(2), np.ones(2))
    package = Path(refbp.__file__).parent  # the package, not a checkout named "refbp"
    frames = [e for e in info.traceback if Path(str(e.path)).is_relative_to(package)]
    assert frames and all(e.ishidden(info) for e in frames)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_dtype_selects_the_tolerance() -> None:
    a, b = np.array([1.0 + 1e-6]), np.array([1.0])
    assert assert_close(a, b, dtype="float32").passed
    with pytest.raises(AssertionError, match=r"\(up to 1e-12 allowed\)"):
        assert_close(a, b)
    assert assert_close(a.astype(np.float32), b.astype(np.float32)).passed


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\) != \(3,\)"):
        assert_close(np.zeros(2), np.zeros(3))
