"""LinearCrossEntropyLoss against torch in float64 and float32: the loss, the gradients of
the input, of a probability target and of the linear map's weight and bias, on class-index
and probability targets, K-dimensional logits, class weights, label smoothing and ignored
targets; and torch's chunked path (``options``) converted by ``from_torch``. (The declared
checks run in parity_tests/test_loss_parity.py, torch's module_db cases in
parity_tests/test_module_db.py, both in float64 for the parameters.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, from_torch, to_numpy, to_torch
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("index", {}, False),
    ("index-bias-weight-smooth", {"bias": True, "weight": [0.5, 2.0, 1.0, 3.0],
                                  "label_smoothing": 0.1}, False),
    ("index-ignore", {"ignore_index": 1, "bias": True}, False),
    ("probabilities-bias-smooth", {"bias": True, "label_smoothing": 0.2}, True),
    ("kdim-index", {"out_features": (3, 2), "bias": True, "weight": [1.0, 0.5, 2.0, 1.5]},
     False),
    ("kdim-probabilities", {"out_features": (2,), "label_smoothing": 0.1}, True),
]


def _data(kw: dict[str, Any], probabilities: bool, dt: Any) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(3)
    x = r.standard_normal((6, 5)) * 2
    of = tuple(kw.get("out_features", ()))
    if probabilities:
        return x.astype(dt), r.uniform(0, 1, (6, 4, *of)).astype(dt)
    t = r.integers(0, 4, (6, *of))
    t.reshape(-1)[0] = kw.get("ignore_index", -100)
    return x.astype(dt), t


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,kw,probabilities", CASES, ids=[c[0] for c in CASES])
def test_loss_and_every_gradient_match_torch(name: str, kw: dict[str, Any],
                                             probabilities: bool, reduction: str,
                                             dt: Any) -> None:
    opts = {k: np.asarray(v, dt) if isinstance(v, list) else v for k, v in kw.items()}
    m = rnn.LinearCrossEntropyLoss(5, 4, reduction=reduction, dtype=dt,
                                   generator=np.random.default_rng(1), **opts)
    t = to_torch(m)
    x, y = _data(kw, probabilities, dt)
    xt, yt = as_tensor(x, requires_grad=True), as_tensor(y, requires_grad=probabilities)
    value, vt = m(x, y), t(xt, yt)
    g = np.random.default_rng(2).standard_normal(np.shape(value)).astype(dt)
    vt.backward(as_tensor(g))
    tol = tolerance_for(dt)
    got = {"loss": (value, vt), "grad_input": (m.backward(g), xt.grad),
           "grad:linear.weight": (m.linear.weight.grad, t.linear.weight.grad)}
    if "bias" in kw:
        got["grad:linear.bias"] = (m.linear.bias.grad, t.linear.bias.grad)
    if probabilities:
        got["grad_target"] = (m.grad("target", g), yt.grad)
    bad = {k: d for k, (a, b) in got.items()
           if not (d := discrepancy(np.asarray(a), to_numpy(b), tol)).passed}
    assert not bad, f"refbp vs torch {name}: {bad}"


@pytest.mark.parametrize("options", [{}, {"batch_chunk_size": 2}])
def test_the_chunked_path_converts_and_agrees(options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    t = torch.nn.LinearCrossEntropyLoss(
        5, 4, bias=True, dtype=torch.float64,
        options=torch.nn.LinearCrossEntropyOptions(allow_retain_graph=True, **options))
    m = from_torch(t)
    assert isinstance(m, rnn.LinearCrossEntropyLoss)
    x, y = _data({}, False, np.float64)
    xt = as_tensor(x, requires_grad=True)
    vt = t(xt, as_tensor(y))
    vt.backward()
    tol = tolerance_for(np.float64)
    assert discrepancy(np.asarray(m(x, y)), to_numpy(vt), tol).passed
    assert discrepancy(m.backward(), to_numpy(xt.grad), tol).passed
    assert discrepancy(m.linear.weight.grad, to_numpy(t.linear.weight.grad), tol).passed
    assert discrepancy(m.linear.bias.grad, to_numpy(t.linear.bias.grad), tol).passed
