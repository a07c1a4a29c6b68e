"""Parity of Upsample (every mode and rank torch takes, size and scale factors up and down,
a factor of 1, recompute_scale_factor, align_corners), UpsamplingNearest2d and
UpsamplingBilinear2d with torch: output and input gradient in float64 and float32."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.mirror import compare_module
from refbp.nn.functional_interp import LINEAR_MODES, MODE_RANKS

pytestmark = pytest.mark.parity

SHAPES = {3: (2, 3, 5), 4: (2, 2, 5, 4), 5: (1, 2, 3, 4, 5)}
SIZES: list[dict[str, Any]] = [
    {"scale_factor": 2}, {"scale_factor": 1.7}, {"scale_factor": 0.6}, {"size": 7},
    {"size": 3}, {"scale_factor": 2.3, "recompute_scale_factor": True}, {"scale_factor": 1.0}]
CASES = [(mode, rank, {**kw, **({"align_corners": ac} if ac is not None else {})})
         for mode, ranks in MODE_RANKS.items() for rank in ranks for kw in SIZES
         for ac in ((None, True, False) if mode in LINEAR_MODES else (None,))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("mode,rank,options", CASES,
                         ids=[f"{m}-{r}d-{o}" for m, r, o in CASES])
def test_upsample_matches_torch(mode: str, rank: int, options: dict[str, Any],
                                dtype: Any) -> None:
    x = np.random.default_rng(0).standard_normal(SHAPES[rank]).astype(dtype)
    result = compare_module(rnn.Upsample(mode=mode, **options), x)
    bad = {k: str(d) for k, d in result.items() if not d.passed}
    assert not bad, f"refbp vs torch: Upsample({mode}, {options}) {rank}-D: {bad}"


@pytest.mark.parametrize("make", [lambda: rnn.UpsamplingNearest2d(scale_factor=3),
                                  lambda: rnn.UpsamplingNearest2d(size=(4, 9)),
                                  lambda: rnn.UpsamplingBilinear2d(scale_factor=2),
                                  lambda: rnn.UpsamplingBilinear2d(size=(3, 7))])
def test_fixed_mode_upsamplings_match_torch(make: Any) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 4))
    result = compare_module(make(), x)
    assert all(d.passed for d in result.values()), f"refbp vs torch: {result}"
