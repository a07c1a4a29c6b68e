"""The torch half of example ``chain_rule``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.chain_rule`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import numpy as np
import torch

from refbp.examples import chain_rule
from refbp.examples._mirror import Result, const, leaf
from refbp.mirror.oracle import to_numpy

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    cr = chain_rule
    w, b, a0 = leaf(cr.SINGLE_W), leaf(cr.SINGLE_B), leaf(cr.SINGLE_X)
    acts, zs = [a0], []
    for layer in range(len(cr.SINGLE_W)):
        zs.append(w[layer] * acts[-1] + b[layer])
        acts.append(torch.sigmoid(zs[-1]))
        acts[-1].retain_grad()
    cost = (acts[-1] - cr.SINGLE_Y) ** 2
    cost.backward()
    r: Result = {
        "single.a": np.array([t.item() for t in acts]), "single.z": np.array([t.item()
                                                                              for t in zs]),
        "single.cost": cost.item(), "single.dC_dw": to_numpy(w.grad),
        "single.dC_db": to_numpy(b.grad),
        "single.dC_da": np.array([t.grad.item() for t in acts]),  # type: ignore[union-attr]
    }
    ws_np, bs_np = cr.multi_params()
    ws, bs = [leaf(v) for v in ws_np], [leaf(v) for v in bs_np]
    xs, ys = map(const, cr.multi_data())
    act = xs
    for wl, bl in zip(ws, bs, strict=True):
        act = torch.sigmoid(act @ wl.T + bl)
    costs = ((act - ys) ** 2).sum(dim=1)
    costs.mean().backward()
    for layer, (wl, bl) in enumerate(zip(ws, bs, strict=True), start=1):
        r[f"multi.dC_dW{layer}"] = to_numpy(wl.grad)
        r[f"multi.dC_db{layer}"] = to_numpy(bl.grad)
    r["multi.cost_per_sample"] = to_numpy(costs)
    r["multi.cost"] = costs.mean().item()
    return r
