"""What the torch halves of the worked examples share: leaf tensors and gradient descent.

Each example's torch half (``refbp.examples.<name>.mirror``) rebuilds the example's expression
from leaf tensors with stock torch ops only, so torch is an independent oracle of every
derivative and update; :mod:`refbp.examples.replay` runs and compares both halves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from refbp.mirror.oracle import as_tensor

__all__ = ["Result", "const", "descend", "leaf"]

Result = dict[str, Any]


def leaf(x: Any) -> torch.Tensor:
    """``x`` as a float64 leaf tensor that records its gradient."""
    return as_tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def const(x: Any) -> torch.Tensor:
    """``x`` as a float64 constant tensor."""
    return as_tensor(np.asarray(x, dtype=np.float64))


def descend(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], lr: float,
             steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch gradient descent with ``torch.optim.SGD`` on scalar leaf tensors.

    Returns the parameter trajectory (steps + 1, P), the loss before every step followed by
    the final loss (steps + 1,) and the gradient of every step (steps, P).
    """
    opt = torch.optim.SGD(params, lr=lr)
    traj = [[p.item() for p in params]]
    losses, grads = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.item() for p in params])  # type: ignore[union-attr]
        opt.step()
        traj.append([p.item() for p in params])
    with torch.no_grad():
        losses.append(loss_fn().item())
    return np.array(traj), np.array(losses), np.array(grads)
