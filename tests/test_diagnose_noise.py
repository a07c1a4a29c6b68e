"""ULP distances and histograms; localisation of the first diverging layer (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refbp.diagnose import load_user, localize, ulp_distance, ulp_histogram
from refbp.nn import Linear, ReLU

HERE = Path(__file__).parent / "user_code"


def test_ulp_distance_float32() -> None:
    one = np.float32(1.0)
    a = np.array([one, np.nextafter(one, np.float32(2)), -0.0, np.float32(-1.0), np.nan],
                 dtype=np.float32)
    b = np.array([one, one, 0.0, np.nextafter(np.float32(-1.0), np.float32(0)), 1.0],
                 dtype=np.float32)
    np.testing.assert_array_equal(ulp_distance(a, b), [0, 1, 0, 1, -1])
    tiny = np.array([np.float32(1e-45)], dtype=np.float32)
    assert ulp_distance(tiny, -tiny)[0] == 2
    with pytest.raises(ValueError, match="two arrays of one dtype, float32 or float64, got"):
        ulp_distance(a, b.astype(np.float64))


def test_ulp_histogram_table() -> None:
    base = np.ones(8, dtype=np.float32)
    other = base.copy()
    other.view(np.int32)[:] += np.array([0, 0, 1, 2, 3, 4, 7, 100], dtype=np.int32)
    h = ulp_histogram(other, base, tensor="w")
    counts = dict(zip(h["bin"], h["count"], strict=True))
    assert counts["0"] == 2 and counts["1"] == 1 and counts["2"] == 1
    assert counts["3-4"] == 2 and counts["5-8"] == 1 and counts["65-128"] == 1
    assert h["count"].sum() == 8 and abs(h["fraction"].sum() - 1) < 1e-12
    assert set(h["tensor"]) == {"w"}


def _user_model(grad_mean_last: bool) -> list[object]:
    rng = np.random.default_rng(0)
    affine = load_user(f"{HERE}/linear_family.py:Affine")
    relu = load_user(f"{HERE}/relu.py:Relu")
    first = affine(rng.standard_normal((4, 8)), rng.standard_normal(8))
    if grad_mean_last:
        last = load_user(f"{HERE}/linear_family.py:Dense")(8, 3)
    else:
        last = affine(rng.standard_normal((8, 3)), rng.standard_normal(3))
    return [first, relu(), last]


def test_localize_finds_the_layer_and_tensor() -> None:
    x = np.random.default_rng(1).standard_normal((6, 4))
    ref = [Linear(4, 8), ReLU(), Linear(8, 3)]
    loc = localize(_user_model(True), ref, x, oracle="refbp")
    assert (loc.layer, loc.phase, loc.tensor) == (2, "backward", "grad:weight")
    assert loc.discrepancy is not None and loc.discrepancy.normwise > 0.5
    assert "first divergence at layer 2 (Dense), backward pass, gradient of weight" in str(loc)
    fwd = loc.table[loc.table["phase"] == "forward"]
    assert len(fwd) == 3 and fwd["passed"].all()
    ok = localize(_user_model(False), ref, x, oracle="refbp")
    assert ok.matches and ok.table["passed"].all() and len(ok.table) == 3 + 7
