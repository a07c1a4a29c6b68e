"""torch.nn beyond its namesakes: SyncBatchNorm in one process, deprecated aliases
(``NLLLoss2d``) and wrappers (``DataParallel``) converted by ``from_torch``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from refbp.mirror import from_torch
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity


def _close(a: np.ndarray, b: torch.Tensor) -> None:
    tol = tolerance_for(np.float64)
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=tol.rtol, atol=tol.atol)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (4, 3, 2, 5), (2, 3, 2, 3, 2)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_sync_batchnorm_matches_torch_in_one_process(shape: tuple[int, ...],
                                                     momentum: float | None) -> None:
    torch.manual_seed(1)
    t = torch.nn.SyncBatchNorm(3, momentum=momentum).double()
    with torch.no_grad():
        t.weight.uniform_(-2, 2)
        t.bias.uniform_(-1, 1)
    m = from_torch(t)
    for _step in range(2):  # two steps: the running statistics' update, twice
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        g = torch.randn(*shape, dtype=torch.float64)
        t.zero_grad()
        y = t(x)
        y.backward(g)
        _close(m.forward(x.detach().numpy()), y)
        _close(m.backward(g.numpy()), x.grad)
        _close(m.weight.grad, t.weight.grad)
        _close(m.bias.grad, t.bias.grad)
        m.zero_grad()
    for name in ("running_mean", "running_var"):
        _close(getattr(m, name), getattr(t, name))
    assert int(m.num_batches_tracked) == int(t.num_batches_tracked) == 2
    m.eval()
    t.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    _close(m.forward(x.numpy()), t(x))


def test_nllloss2d_converts_as_nllloss() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # NLLLoss2d is deprecated
        t = torch.nn.NLLLoss2d(ignore_index=1, reduction="sum")
    m = from_torch(t)
    assert type(m).__name__ == "NLLLoss" and m.ignore_index == 1 and m.reduction == "sum"
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(2, 4, 3, 3, dtype=torch.float64), 1).requires_grad_()
    target = torch.randint(0, 4, (2, 3, 3))
    loss = t(logp, target)
    loss.backward()
    _close(np.asarray(m.forward(logp.detach().numpy(), target.numpy())), loss)
    _close(m.backward(), logp.grad)


def test_data_parallel_converts_the_module_it_wraps() -> None:
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    t = torch.nn.DataParallel(inner).double()
    m = from_torch(t)
    assert type(m).__name__ == "Sequential" and len(m) == 3
    x = torch.randn(5, 3, dtype=torch.float64)
    _close(m.forward(x.numpy()), t(x))


# torch.nn classes that are not ops, with what refbp does with them.
NOT_OPS = {
    "Module": "the base class of every module",
    "Container": "torch's deprecated base class of containers",
    "RNNBase": "the base class of RNN, LSTM and GRU (declared)",
    "RNNCellBase": "the base class of RNNCell, LSTMCell and GRUCell (declared)",
    "Sequential": "converted as a tree of its children (refbp.nn.Sequential)",
    "ModuleList": "converted as its children applied in order, or inside a graph model",
    "ModuleDict": "converted as its children applied in order, or inside a graph model",
    "ParameterList": "refbp.nn.ParameterList",
    "ParameterDict": "refbp.nn.ParameterDict",
    "DataParallel": "converted as the module it wraps (refbp.mirror.modules.WRAPPERS)",
}


def test_every_torch_nn_module_is_declared_or_accounted_for() -> None:
    """Every ``torch.nn`` module class is a declared op (or a declared alias) of
    ``refbp.registry``, or one of the containers, base classes and wrappers above."""
    from refbp.registry.ops import OPS

    declared = {o.name for o in OPS} | {a for o in OPS for a in o.aliases}
    modules = {name for name, cls in vars(torch.nn).items()
               if isinstance(cls, type) and issubclass(cls, torch.nn.Module)}
    assert sorted(modules - declared - set(NOT_OPS)) == []
    assert sorted(set(NOT_OPS) - modules) == []  # the list names no class torch lacks
    assert not set(NOT_OPS) & declared
