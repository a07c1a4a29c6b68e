"""Parity of Unfold and Fold with torch: output and input gradient, both dtypes, batched and
unbatched, with rectangular kernels, dilation, padding and stride."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.mirror import compare_module

pytestmark = pytest.mark.parity

GEOMETRIES: list[dict[str, Any]] = [
    {"kernel_size": 2}, {"kernel_size": (2, 3), "dilation": (1, 2), "padding": (1, 0),
                         "stride": (2, 1)},
    {"kernel_size": 3, "padding": 1, "stride": 2}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("batched", [True, False], ids=["batch", "single"])
@pytest.mark.parametrize("geo", GEOMETRIES, ids=[str(g) for g in GEOMETRIES])
def test_unfold_and_fold_match_torch(geo: dict[str, Any], batched: bool, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 7) if batched else (3, 6, 7)).astype(dtype)
    unfold = rnn.Unfold(**geo)
    result = compare_module(unfold, x)
    cols = rng.standard_normal(unfold(x).shape).astype(dtype)
    result.update({f"fold:{k}": d for k, d in
                   compare_module(rnn.Fold((6, 7), **geo), cols).items()})
    assert all(d.passed for d in result.values()), f"refbp vs torch: {result}"
