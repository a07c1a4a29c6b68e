"""The torch half of example ``sigmoid_ce``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.sigmoid_ce`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import torch

from refbp.examples import sigmoid_ce
from refbp.examples._mirror import Result, const, leaf
from refbp.mirror.oracle import to_numpy

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    p = {k: leaf(v) for k, v in sigmoid_ce.params().items()}
    x, y = const(sigmoid_ce.X), const(sigmoid_ce.Y)
    z1 = p["W1"] @ x + p["b1"]
    h = torch.sigmoid(z1)
    z2 = p["W2"] @ h + p["b2"]
    a = torch.sigmoid(z2)
    for t in (z1, h, z2):
        t.retain_grad()
    loss = torch.nn.functional.binary_cross_entropy(a, y, reduction="sum")
    loss.backward()
    r: Result = {"z1": to_numpy(z1), "h": to_numpy(h), "z2": to_numpy(z2), "a": to_numpy(a),
                 "loss": loss.item(), "dl_dz2": to_numpy(z2.grad), "dl_dh": to_numpy(h.grad),
                 "dl_dz1": to_numpy(z1.grad)}
    r.update({f"dl_d{k}": to_numpy(v.grad) for k, v in p.items()})
    return r
