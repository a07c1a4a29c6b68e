"""The torch oracle of the checks: the same trajectories through stock ``torch`` (imports torch).

Only stock ``torch.optim`` (``foreach=False``), ``torch.nn`` modules (built by
``refbp.mirror.to_torch`` from the refbp reference, so weights are identical) and autograd.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from refbp.diagnose.diagnosis import Record
from refbp.diagnose.trajectories import drive_optimizer
from refbp.mirror import as_tensor, register_converter, to_numpy, to_torch
from refbp.mirror.optim import single_tensor
from refbp.nn.batchnorm import BatchNorm1d
from refbp.nn.module import Module


def ensure_converters() -> None:
    """Register the torch twin of refbp's ``BatchNorm1d`` unless a converter exists already."""
    try:
        to_torch(BatchNorm1d(1))
    except TypeError:
        register_converter(BatchNorm1d, torch.nn.BatchNorm1d)


def optimizer_trajectory(like: str, options: dict[str, Any], params: dict[str, np.ndarray],
                         grads: list[dict[str, np.ndarray]], lrs: list[float], *,
                         sparse: bool = False, states: tuple[str, ...] = ()) -> list[Record]:
    """Parameters (and the state ``states``) after every step of
    ``torch.optim.<like>(**options, foreach=False)``; ``sparse``: the gradients go in as
    sparse COO tensors of their nonzero rows (``Tensor.to_sparse(1)``)."""
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in params.values()]
    opt = getattr(torch.optim, like)(ts, **options, **single_tensor(like))
    to_grad = ((lambda g: torch.from_numpy(g).to_sparse(1)) if sparse else torch.from_numpy)
    return drive_optimizer(opt, list(params), ts, grads, lrs, to_grad, to_numpy, states)


def layer_trajectory(m: Module, xs: list[np.ndarray], douts: list[np.ndarray],
                     buffers: tuple[str, ...]) -> list[Record]:
    """The records of ``trajectories.module_layer_trajectory`` from the torch twin of ``m``."""
    ensure_converters()
    t = to_torch(m)
    out: list[Record] = []
    for k, (x, g) in enumerate(zip(xs, douts, strict=False), start=1):
        t.train()
        t.zero_grad()
        xt = as_tensor(x, requires_grad=True)
        y = t(xt)
        y.backward(as_tensor(g))
        out += [(k, "output", to_numpy(y)), (k, "grad_input", to_numpy(xt.grad))]
        out += [(k, f"grad:{n}", to_numpy(p.grad)) for n, p in t.named_parameters()]
        out += [(k, f"buffer:{b}", to_numpy(getattr(t, b))) for b in buffers]
    if buffers:
        t.eval()
        with torch.no_grad():
            out.append((len(douts) + 1, "output:eval", to_numpy(t(as_tensor(xs[-1])))))
    return out


def loss_trajectory(like: str, options: dict[str, Any],
                    data: list[tuple[np.ndarray, np.ndarray]]) -> list[Record]:
    """Loss value and input gradient of ``torch.nn.<like>(**options)``."""
    loss = getattr(torch.nn, like)(**options)
    out: list[Record] = []
    for k, (pred, target) in enumerate(data, start=1):
        pt = as_tensor(pred, requires_grad=True)
        value = loss(pt, as_tensor(target))
        value.backward()
        out += [(k, "loss", to_numpy(value)), (k, "grad_input", to_numpy(pt.grad))]
    return out
