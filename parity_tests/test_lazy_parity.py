"""The lazy layers against torch's: an uninitialised torch lazy module converts to refbp's
lazy layer, which takes the weights torch materialises at its first forward (torch's forward
runs first, as in a parity run); both then compute the same outputs, gradients and running
statistics, in training and eval mode, in both dtypes. Also: the converse conversion, a
materialised torch lazy module converting as its eager class, and refbp's error when its
layer would materialise before its torch twin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.metrics import discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

# (torch lazy module, input shape)
CASES: dict[str, tuple[Any, tuple[int, ...]]] = {
    "LazyLinear": (lambda: torch.nn.LazyLinear(3), (4, 2, 5)),
    "LazyLinear-nobias": (lambda: torch.nn.LazyLinear(3, bias=False), (4, 5)),
    "LazyConv1d": (lambda: torch.nn.LazyConv1d(4, 3, padding=1, groups=2), (2, 6, 7)),
    "LazyConv2d": (lambda: torch.nn.LazyConv2d(2, (2, 3), stride=2), (2, 3, 5, 6)),
    "LazyConv2d-unbatched": (lambda: torch.nn.LazyConv2d(2, 3), (3, 5, 5)),
    "LazyConv3d": (lambda: torch.nn.LazyConv3d(2, 2, bias=False), (2, 3, 3, 3, 4)),
    "LazyConvTranspose1d": (lambda: torch.nn.LazyConvTranspose1d(2, 3, stride=2,
                                                                 output_padding=1), (2, 3, 5)),
    "LazyConvTranspose2d": (lambda: torch.nn.LazyConvTranspose2d(4, 2, groups=2), (2, 4, 3, 3)),
    "LazyConvTranspose3d": (lambda: torch.nn.LazyConvTranspose3d(2, 2), (2, 3, 2, 3, 2)),
    "LazyBatchNorm1d": (lambda: torch.nn.LazyBatchNorm1d(), (6, 4)),
    "LazyBatchNorm2d": (lambda: torch.nn.LazyBatchNorm2d(momentum=None), (3, 4, 2, 3)),
    "LazyBatchNorm3d": (lambda: torch.nn.LazyBatchNorm3d(affine=False), (2, 3, 2, 2, 3)),
    "LazyInstanceNorm1d": (lambda: torch.nn.LazyInstanceNorm1d(), (3, 4, 6)),
    "LazyInstanceNorm2d": (lambda: torch.nn.LazyInstanceNorm2d(bias=False), (2, 3, 4, 3)),
    "LazyInstanceNorm3d": (lambda: torch.nn.LazyInstanceNorm3d(
        track_running_stats=False), (2, 3, 2, 3, 2)),
}
DTYPES = {"float64": (np.float64, torch.float64), "float32": (np.float32, torch.float32)}


def _compare(m: nn.Module, t: torch.nn.Module, x: np.ndarray, seed: int) -> dict[str, Any]:
    """Forward (torch first) and backward on both; every tensor's discrepancy."""
    tol = tolerance_for(x.dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = t(xt)
    y = m(x)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    yt.backward(torch.from_numpy(g))
    res = {"output": discrepancy(y, yt.detach().numpy(), tol),
           "grad_input": discrepancy(m.backward(g), xt.grad.numpy(), tol)}
    mine = dict(m.named_parameters())
    for name, p in t.named_parameters():
        res[f"grad:{name}"] = discrepancy(mine[name].grad, p.grad.numpy(), tol)
    bufs = dict(m.named_buffers())
    for name, b in t.named_buffers():
        res[f"buffer:{name}"] = discrepancy(np.asarray(bufs[name]), b.numpy(), tol)
    return res


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", list(CASES))
def test_takes_torchs_weights_and_matches(case: str, dtype: str, training: bool) -> None:
    make, shape = CASES[case]
    np_dtype, t_dtype = DTYPES[dtype]
    torch.manual_seed(len(case))
    t = make().to(t_dtype).train(training)
    m = from_torch(t)
    assert type(m) is getattr(nn, case.split("-")[0]) and dict(m.state_dict()) == {}
    x = np.random.default_rng(1).standard_normal(shape).astype(np_dtype)
    res = _compare(m, t, x, seed=2)
    assert type(m).__name__ == type(t).__name__ == case.split("-")[0].removeprefix("Lazy")
    res.update({f"second:{k}": d for k, d in _compare(m, t, x[::-1].copy(), seed=3).items()})
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


@pytest.mark.parametrize("name", ["LazyLinear", "LazyConvTranspose2d", "LazyBatchNorm1d"])
def test_to_torch_pairs_an_uninitialised_twin(name: str) -> None:
    args = {"LazyLinear": (3,), "LazyConvTranspose2d": (2, 3), "LazyBatchNorm1d": ()}[name]
    m = getattr(nn, name)(*args, dtype=np.float32)
    t = to_torch(m)
    assert type(t) is getattr(torch.nn, name)
    assert t.has_uninitialized_params()
    x = np.random.default_rng(0).standard_normal((3, 4, 3, 3)[:2 if name != "LazyConvTranspose2d"
                                                              else 4]).astype(np.float32)
    res = _compare(m, t, x, seed=0)
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad
    # materialised: both are eager now and convert as such
    assert type(to_torch(m)) is type(t) and type(from_torch(t)) is type(m)


def test_refbp_first_is_refused_and_own_initialisation_without_a_twin() -> None:
    t = torch.nn.LazyLinear(2).double()
    m = from_torch(t)
    with pytest.raises(RuntimeError, match="the twin has not run yet: run the torch module's"):
        m(np.ones((1, 3)))
    own = nn.LazyLinear(2, generator=np.random.default_rng(5))
    own(np.ones((1, 3)))
    eager = nn.Linear(3, 2, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(own.weight.data, eager.weight.data)


def test_a_materialised_torch_lazy_module_converts_as_its_eager_class() -> None:
    t = torch.nn.LazyConv1d(2, 3).double()
    t(torch.ones(1, 4, 5, dtype=torch.float64))
    m = from_torch(t)
    assert type(m) is nn.Conv1d and m.in_channels == 4
    np.testing.assert_array_equal(m.weight.data, t.weight.detach().numpy())


def test_declared_arguments_are_torchs() -> None:
    """Names and defaults, among them the lazy instance norms' affine=True and
    track_running_stats=True (their eager classes default to False)."""
    t, m = torch.nn.LazyInstanceNorm1d(), nn.LazyInstanceNorm1d()
    assert (t.affine, t.track_running_stats) == (m.affine, m.track_running_stats) == (True,
                                                                                      True)


def test_the_harness_asks_for_a_dry_run_of_lazy_layers() -> None:
    from refbp.testing import parity_table

    model = torch.nn.Sequential(torch.nn.LazyLinear(2), torch.nn.Tanh())
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"lazy layers not sized yet: torch_model.0 "
                                         r"\(LazyLinear\). Run one forward pass first"):
        parity_table(model, x, y, loss="MSELoss")
    model(torch.ones(1, 3))  # the dry run: now a Linear, checked as one
    assert parity_table(model.double(), x, y, loss="MSELoss").passed.all()
