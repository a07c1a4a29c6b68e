"""The torch half of example ``graph_apples``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.graph_apples`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import torch

from refbp.examples import graph_apples
from refbp.examples._mirror import Result, leaf

__all__ = ["replay"]


def _backward_all(prefix: str, out: torch.Tensor, named: dict[str, torch.Tensor]) -> Result:
    for t in named.values():
        if not t.is_leaf:
            t.retain_grad()
    out.backward()
    r: Result = {f"{prefix}.pay": out.item()}
    r.update({f"{prefix}.d_{k}": t.grad.item() for k, t in named.items()})  # type: ignore
    return r


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    v = {k: leaf(val) for k, val in graph_apples.APPLE_INPUTS.items()}
    v["apple_price"] = v["apple"] * v["apple_num"]
    r = _backward_all("apple", v["apple_price"] * v["tax"], v)
    f = {k: leaf(val) for k, val in graph_apples.FRUIT_INPUTS.items()}
    f["apple_price"] = f["apple"] * f["apple_num"]
    f["orange_price"] = f["orange"] * f["orange_num"]
    f["all_price"] = f["apple_price"] + f["orange_price"]
    r.update(_backward_all("fruit", f["all_price"] * f["tax"], f))
    return r
