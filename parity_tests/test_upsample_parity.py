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


AA_SIZES: list[dict[str, Any]] = [
    {"size": (4, 3)}, {"size": (11, 13)}, {"scale_factor": 0.37}, {"scale_factor": (1.7, 0.6)},
    {"size": (7, 4)}, {"scale_factor": 0.5, "recompute_scale_factor": True},
    {"scale_factor": 2.5}, {"size": (1, 5)}, {"size": (3, 1)}]


def _aa_case_is_torchs_bug(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """torch's antialiased forward gives every output row the first row's values when the
    output width is 1 and the height changes (its backward is the true adjoint): not a
    reference (docs/models.md)."""
    return out[-1] == 1 and out[-2] != shape[-2]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialias_matches_torch(mode: str, dtype: str) -> None:
    """``F.interpolate(..., antialias=True)`` (the graph ops of ``_upsample_{mode}2d_aa``):
    downsampling and upsampling, sizes and scale factors, align_corners both ways; forward
    and backward within the dtype tolerance."""
    import torch
    import torch.nn.functional as F

    from refbp.metrics import discrepancy
    from refbp.nn.ops import functional
    from refbp.tolerances import tolerance_for

    op = getattr(functional, f"upsample_{mode}_aa")
    rng = np.random.default_rng(2)
    checked = 0
    for shape in ((2, 3, 9, 7), (1, 2, 5, 6)):
        for kw in AA_SIZES:
            for ac in (False, True):
                x = rng.standard_normal(shape).astype(dtype)
                xt = torch.from_numpy(x.copy()).requires_grad_()
                yt = F.interpolate(xt, mode=mode, align_corners=ac, antialias=True, **kw)
                if _aa_case_is_torchs_bug(shape, tuple(yt.shape)):
                    continue
                g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
                yt.backward(torch.from_numpy(g))
                scales = (None if "size" in kw or kw.get("recompute_scale_factor") else
                          [float(f) for f in np.broadcast_to(kw["scale_factor"], (2,))])
                y, mats = op(x, None if scales else list(yt.shape[2:]), ac, scales)
                gx = functional.upsample_backward(g, mats)[0]
                case = f"{mode} {shape} {kw} align_corners={ac}"
                tol = tolerance_for(dtype)
                assert discrepancy(y, yt.detach().numpy(), tol).passed, case
                assert discrepancy(gx, xt.grad.numpy(), tol).passed, case
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_model_with_antialiased_resampling_runs_as_a_graph(dtype: str) -> None:
    """A decoder-like model with ``F.interpolate(antialias=True)`` both ways and a skip
    connection, captured with torch.export: three SGD steps match torch."""
    import torch
    import torch.nn.functional as F

    from refbp.testing import parity_table

    class Resampler(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
            self.fc = torch.nn.Linear(3 * 8 * 6, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.tanh(self.conv(x))
            down = F.interpolate(a, size=(4, 3), mode="bilinear", antialias=True)
            up = F.interpolate(down, scale_factor=2.0, mode="bicubic", antialias=True,
                               align_corners=True)
            return self.fc((up + a).flatten(1))

    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 2, 8, 6)), rng.standard_normal((4, 4))
    table = parity_table(Resampler(), x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}),
                         steps=3, dtype=dtype)
    assert table.passed.all(), table[~table.passed]
    assert table.model.iloc[0].startswith("GraphModel(")
