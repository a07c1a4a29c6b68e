"""The torch half of example ``linear_regression``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.linear_regression`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import torch

from refbp.examples import linear_regression
from refbp.examples._mirror import Result, const, descend, leaf

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    lr = linear_regression
    x, y = map(const, lr.data())
    a, b = leaf(lr.A0), leaf(lr.B0)

    def sse() -> torch.Tensor:
        return 0.5 * torch.nn.functional.mse_loss(a * x + b, y, reduction="sum")

    traj, losses, grads = descend([a, b], sse, lr.LR, lr.EPOCHS)
    xc, yc = x - x.mean(), y - y.mean()
    a_star = (xc * yc).sum() / (xc * xc).sum()
    b_star = y.mean() - a_star * x.mean()
    l_star = 0.5 * torch.nn.functional.mse_loss(a_star * x + b_star, y, reduction="sum")
    return {"a": traj[:, 0], "b": traj[:, 1], "loss": losses, "ga": grads[:, 0],
            "gb": grads[:, 1], "a_final": traj[-1, 0], "b_final": traj[-1, 1],
            "loss_final": losses[-1], "a_closed_form": a_star.item(),
            "b_closed_form": b_star.item(), "loss_closed_form": l_star.item()}
