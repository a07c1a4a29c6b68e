"""AdaptiveLogSoftmaxWithLoss against torch in float64 and float32: the output, the loss,
``log_prob``, ``predict`` and the gradients of the input and of every parameter (the head and
every tail linear map), with both upstream paths (the loss and the per-sample output); the
head with and without a bias, batches where some clusters get no sample (their parameters get
no gradient in either library), a 1-D unbatched input; ``from_torch`` / ``to_torch`` round
trips and torch's errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, from_torch, to_numpy, to_torch
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

# (id, constructor arguments, input shape, targets)
CASES: list[tuple[str, dict[str, Any], tuple[int, ...], list[int]]] = [
    ("two-cutoffs-every-cluster", {"cutoffs": [3, 7], "div_value": 2.0}, (7, 16),
     [0, 5, 9, 2, 7, 11, 3]),
    ("head-bias-empty-cluster", {"cutoffs": [3, 7], "head_bias": True}, (6, 16),
     [1, 8, 10, 0, 11, 2]),
    ("three-cutoffs-one-used", {"cutoffs": [2, 5, 9], "div_value": 2.0, "head_bias": True},
     (5, 16), [6, 0, 7, 1, 8]),
    ("unbatched", {"cutoffs": [3, 7], "div_value": 2.0, "head_bias": True}, (16,), [9]),
]


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,kw,shape,targets", CASES, ids=[c[0] for c in CASES])
def test_outputs_and_every_gradient_match_torch(name: str, kw: dict[str, Any],
                                                shape: tuple[int, ...], targets: list[int],
                                                dt: Any) -> None:
    m = rnn.AdaptiveLogSoftmaxWithLoss(16, 12, dtype=dt, generator=np.random.default_rng(1),
                                       **kw)
    t = to_torch(m)
    r = np.random.default_rng(2)
    x = (r.standard_normal(shape) * 2).astype(dt)
    y = np.array(targets if len(shape) == 2 else targets[0], dtype=np.int64)
    g = r.standard_normal(y.shape).astype(dt)
    xt = as_tensor(x, requires_grad=True)
    out, ot = m(x, y), t(xt, torch.from_numpy(y))
    (ot.loss + (ot.output * as_tensor(g)).sum()).backward()
    got = {"output": (out.output, ot.output), "loss": (out.loss, ot.loss),
           "grad_input": (m.backward(1.0, g), xt.grad)}
    mine = dict(m.named_parameters())
    for pname, p in t.named_parameters():
        if p.grad is None:
            assert mine[pname].grad is None, f"{pname}: torch gives no gradient, refbp one"
        else:
            got[f"grad:{pname}"] = (mine[pname].grad, p.grad)
    if len(shape) == 2:
        got["log_prob"] = (m.log_prob(x), t.log_prob(as_tensor(x)))
        assert np.array_equal(m.predict(x), to_numpy(t.predict(as_tensor(x))))
    bad = {k: d for k, (a, b) in got.items()
           if not (d := discrepancy(np.asarray(a), to_numpy(b), tolerance_for(dt))).passed}
    assert not bad, f"refbp vs torch {name}: {bad}"
    assert out.output.shape == tuple(ot.output.shape)


def test_predict_when_the_head_picks_clusters() -> None:
    """Inputs whose head argmax falls in the shortlist for some samples and in a cluster for
    others (torch's mixed branch of ``predict``), and all in clusters."""
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [2, 6], div_value=1.0, head_bias=True,
                                            dtype=torch.float64)
    with torch.no_grad():
        t.head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, -5.0]))
    m = from_torch(t)
    x = np.random.default_rng(0).standard_normal((40, 4)) * 3
    head = np.argmax(m.head.weight.data @ x.T + m.head.bias.data[:, None], axis=0)
    assert 0 < np.count_nonzero(head >= 2) < 40
    assert np.array_equal(m.predict(x), to_numpy(t.predict(as_tensor(x))))
    rows = head >= 2
    assert np.array_equal(m.predict(x[rows]), to_numpy(t.predict(as_tensor(x[rows]))))


def test_from_torch_copies_every_weight_by_name() -> None:
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, head_bias=True)
    m = from_torch(t)
    assert isinstance(m, rnn.AdaptiveLogSoftmaxWithLoss) and m.cutoffs == t.cutoffs
    assert list(m.state_dict()) == list(t.state_dict())
    assert all(np.array_equal(m.state_dict()[k], v.numpy()) for k, v in t.state_dict().items())
    back = to_torch(m)
    assert back.cutoffs == t.cutoffs and back.head_bias and back.div_value == 2.0


@pytest.mark.parametrize("cutoffs", [[], [3, 2], [0, 4], [4, 12], [2, 2]])
def test_cutoff_errors_match_torch(cutoffs: list[int]) -> None:
    with pytest.raises(ValueError) as theirs:
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 12, cutoffs)
    with pytest.raises(ValueError) as ours:
        rnn.AdaptiveLogSoftmaxWithLoss(8, 12, cutoffs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape,target", [((3, 16), [0, 12, 1]), ((3, 16), [-1, 0, 1]),
                                          ((3, 16), [0, 1]), ((16,), [0, 1]), ((3, 16), 0),
                                          ((3, 16), [[0], [1], [2]])])
def test_forward_errors_match_torch(shape: tuple[int, ...], target: Any) -> None:
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 12, [3, 7], dtype=torch.float64)
    m = from_torch(t)
    x = np.ones(shape)
    with pytest.raises(RuntimeError) as theirs:
        t(as_tensor(x), torch.tensor(target))
    with pytest.raises(RuntimeError) as ours:
        m(x, np.array(target))
    # refbp prints a shape as a tuple where torch prints torch.Size([...])
    size = re.compile(r"torch\.Size\(\[([\d, ]*)\]\)")
    expected = size.sub(lambda s: str(tuple(int(d) for d in s[1].split(", "))), str(theirs.value))
    assert str(ours.value) == expected
