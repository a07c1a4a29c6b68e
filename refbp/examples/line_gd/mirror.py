"""The torch half of example ``line_gd``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.line_gd`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

from refbp.examples import line_gd
from refbp.examples._mirror import Result, const, descend, leaf

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    x, y = map(const, line_gd.data())
    w = leaf(line_gd.W0)
    traj, losses, grads = descend([w], lambda: 0.5 * ((y - w * x) ** 2).sum(), line_gd.ETA,
                                   line_gd.STEPS)
    return {"w": traj[:, 0], "E": losses[:-1], "dE_dw": grads[:, 0], "w_final": traj[-1, 0],
            "E_final": losses[-1], "w_closed_form": ((x * y).sum() / (x * x).sum()).item()}
