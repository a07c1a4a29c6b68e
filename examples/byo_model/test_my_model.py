"""A user's own torch model, checked against refbp in an ordinary pytest test.

This is what a project that trains the model below would put in its test suite: the ``parity``
fixture (from refbp's pytest plugin) converts the model to refbp, runs both sides on the same
data and fails the test with a "refbp vs torch" message if any loss, output, gradient,
parameter update or optimizer state disagrees beyond the float64 (or float32) tolerance.

Run from the repository root, writing one report of every check for CI artefacts::

    python -m pytest examples/byo_model --refbp-report out/byo
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn


def make_model() -> nn.Module:
    """An ordinary torch classifier built from nested, named ``nn.Sequential`` blocks."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("encoder", nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16),
                                  nn.LeakyReLU(0.1))),
        ("head", nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4))),
    ]))


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6))
    y = rng.integers(0, 4, size=32)
    return x, y


def test_one_gradient_step_matches(parity, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    parity(make_model(), x, y, loss=nn.CrossEntropyLoss(label_smoothing=0.05))


@pytest.mark.parametrize("optimizer", [("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
                                       ("AdamW", {"lr": 1e-2, "weight_decay": 0.1})],
                         ids=["sgd-nesterov", "adamw"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_matches(parity, data, optimizer, dtype) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    parity(make_model(), x, y, loss="CrossEntropyLoss", optimizer=optimizer, steps=10,
           batch_size=8, dtype=dtype)


def test_results_table(parity, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    df = parity.table(make_model(), x, y, loss="CrossEntropyLoss",
                        optimizer=("Adam", {"lr": 1e-3}), steps=3)
    assert df["passed"].all()
    assert df["normwise"].max() <= 1e-12
