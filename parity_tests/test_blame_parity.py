"""Blame only what is proven: planted bugs in refbp never blame torch; rounding is still named.

Bugs are planted in refbp (the torch side stays stock) by monkeypatching: an optimizer
constant (Adam's ``eps`` ten times too large), a layer's backward (Tanh's input gradient scaled
by 1 + 1e-3), a loss reduction (MSELoss's mean gradient divided by n - 1) and a user's own
refbp half (a pooling backward that forgets the 1/L of the mean). No row's referee,
attribution, reason or explanation may say that torch is off; a failing gradient whose forward
agrees is attributed to refbp by finite differences, with the evidence named; the referee names
no side for a failure.

A planted *rounding-only* difference (refbp's Tanh computes its backward from a cached output
one ulp closer to zero, as another correctly rounded tanh may) makes the saturated elements of
``grad_input`` differ far beyond the tolerance (relative error ~ u / (1 - tanh^2), up to
~1e-9 for inputs near 9) yet within the measured rounding floor: the rows are ``noise`` and
the referee gives its rounding verdict.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import refbp.nn as rnn
import refbp.optim.adam as radam
from refbp.nn import functional_act as F
from refbp.nn import functional_loss as fl
from refbp.testing import assert_parity, parity_table
from refbp.verdict import Verdict

pytestmark = pytest.mark.parity
tnn = torch.nn
TEXT = ["referee", "attribution", "reason", "explanation"]


def _mlp(activation: type[tnn.Module] = tnn.Tanh) -> tnn.Module:
    torch.manual_seed(0)
    return tnn.Sequential(tnn.Linear(4, 6), activation(), tnn.Linear(6, 3))


def _data(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.standard_normal((n, 4)), rng.standard_normal((n, 3))


def _blames_torch(df: pd.DataFrame) -> list[str]:
    texts = df[TEXT].astype(str).agg("; ".join, axis=1)
    return [t for t in texts if "torch is off" in t or "torch's rounding" in t]


def _assert_no_torch_blame(df: pd.DataFrame) -> pd.DataFrame:
    failing = df[df["verdict"] == Verdict.FAIL]
    assert len(failing), "the planted bug must fail"
    assert _blames_torch(df) == []
    refereed = failing.loc[failing["referee"] != "", "referee"]
    assert refereed.str.contains("names no side for a failure").all(), refereed.tolist()
    return failing


def test_adam_eps_ten_times_too_large_blames_no_side(monkeypatch: pytest.MonkeyPatch) -> None:
    def planted(*args: Any, eps: float, **kwargs: Any) -> None:
        radam.adam_update(*args, eps=10 * eps, **kwargs)

    monkeypatch.setattr(radam.Adam, "update", staticmethod(planted))
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="MSELoss", optimizer=("Adam", {"lr": 1e-2}), steps=3,
                      floors="always")
    failing = _assert_no_torch_blame(df)
    # the gradients of step 1 agree: the update is where the sides part, and no side is named
    step1 = df[df["step"] == 1]
    assert set(step1.loc[step1["kind"].isin(["grad", "loss"]), "verdict"]) == {"pass"}
    assert set(failing["kind"]) <= {"param", "state", "loss", "output", "grad", "grad_input"}
    assert not failing["attribution"].str.contains("is off").any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_layer_backward_bug_is_attributed_to_refbp(dtype: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    backward = rnn.Tanh._backward

    def planted(self: Any, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        g = backward(self, grad, x, y)
        return (g * g.dtype.type(1 + 1e-3)).astype(g.dtype)

    monkeypatch.setattr(rnn.Tanh, "_backward", planted)
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2,
                      dtype=dtype)
    failing = _assert_no_torch_blame(df)
    attributed = failing.loc[failing["attribution"] != "", "attribution"]
    assert len(attributed) == 1
    assert attributed.iloc[0].startswith("float64 finite differences of the forward both sides "
                                         "agree on agree with torch")
    assert attributed.iloc[0].endswith("refbp is off")


def test_a_loss_reduction_bug_is_attributed_to_refbp(monkeypatch: pytest.MonkeyPatch) -> None:
    def planted(g: np.ndarray, reduction: str, n: int) -> np.ndarray:
        return g / max(n - 1, 1) if reduction == "mean" else g

    monkeypatch.setattr(fl, "upstream_scale", planted)
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2)
    failing = _assert_no_torch_blame(df)
    assert failing.iloc[0]["tensor"] == "grad_input" and failing.iloc[0]["step"] == 1
    assert failing.iloc[0]["attribution"].endswith("refbp is off")


def test_a_bug_that_changes_the_forward_names_no_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finite differences run refbp's forward: when the forward itself differs they are not
    independent evidence, so the failing gradients get no attribution."""
    forward = rnn.Tanh._forward
    monkeypatch.setattr(rnn.Tanh, "_forward", lambda self, x: forward(self, x) * 1.001)
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="MSELoss", steps=1)
    _assert_no_torch_blame(df)
    assert (df["attribution"] == "").all()


def test_a_clamp_bug_at_the_edge_of_the_domain_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """BCE clamps its logarithms at -100 (so the loss is finite at p in {0, 1}). A refbp whose
    clamp is -150 differs from torch by a third of the loss on probabilities exactly 0 or 1.
    The rounding floor must not explain it: one ulp below p = 1, ``log(1 - p)`` is -36.7, far
    from either clamp, so moving the edge values would measure the jump, not rounding."""
    monkeypatch.setattr(fl, "BCE_LOG_CLAMP", -150.0)
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, (8, 3))
    p[0, 0], p[1, 1], p[2, 2] = 1.0, 0.0, 1.0
    y = np.zeros_like(p)
    y[1, 1] = 1.0
    df = parity_table(tnn.Sequential(tnn.Identity()), p, y, loss="BCELoss", steps=1)
    failing = _assert_no_torch_blame(df)
    assert "loss" in set(failing["tensor"])
    assert (df["verdict"] != Verdict.NOISE).all()


class TorchPooled(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = tnn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=1))


class RefbpPooledForgetsTheMean(rnn.Module):
    """A user's refbp half whose backward forgets the 1/L of the mean over the sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.head = rnn.Linear(4, 3)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.steps = x.shape[1]
        return self.head(x.mean(axis=1))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return np.repeat(self.head.backward(g)[:, None, :], self.steps, axis=1)


def test_a_bug_in_the_users_refbp_half_blames_no_torch() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 5, 4)), rng.integers(0, 3, 6)
    with pytest.raises(AssertionError) as err:
        assert_parity(TorchPooled(), x, y, loss="CrossEntropyLoss",
                      refbp_model=RefbpPooledForgetsTheMean(),
                      optimizer=("Adam", {"lr": 1e-2}), steps=2)
    text = str(err.value)
    assert "torch is off" not in text and "torch's rounding" not in text
    assert "refbp is off" in text


def test_a_rounding_only_difference_keeps_the_referees_rounding_verdict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def planted(self: Any, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return F.tanh_backward(grad, np.nextafter(y, np.zeros_like(y)))

    monkeypatch.setattr(rnn.Tanh, "_backward", planted)
    rng = np.random.default_rng(1)
    x = rng.uniform(-9, 9, (2, 60))
    df = parity_table(tnn.Sequential(tnn.Tanh()), x, np.full_like(x, -1e5),
                      loss=tnn.MSELoss(reduction="sum"))
    assert bool(df["passed"].all()), df.loc[~df["passed"], ["tensor", "verdict", "noise_ratio"]]
    noise = df[df["verdict"] == Verdict.NOISE]
    assert "grad_input" in set(noise["tensor"])
    assert noise["referee"].str.contains(r"rounding|both equally close").all(), \
        noise["referee"].tolist()
    assert not noise["referee"].str.contains("is off").any()


def test_the_referee_names_rounding_for_noise_and_no_side_for_a_failure() -> None:
    from refbp.parity.referee import AVAILABLE, verdict_text

    exact = np.array([1.0], dtype=np.longdouble) + np.longdouble(1e-18)
    a, b = np.array([1.0]), np.array([1.0 + 1e-6])  # torch far from refbp's formula
    noise = verdict_text(a, b, exact, verdict=Verdict.NOISE, step=1)
    fail = verdict_text(a, b, exact, verdict=Verdict.FAIL, step=2)
    if not AVAILABLE:
        assert noise == fail == "exact referee unavailable: long double is float64 on this platform"
        return
    assert noise.endswith(": torch's rounding")
    assert re.match(r"exact referee \(from refbp's state before step 2\): refbp [0-9.]+e-19 "
                    r"from refbp's formulas in long double, torch 1\.0e-06; ", fail), fail
    assert "is off" not in fail and "rounding" not in fail
