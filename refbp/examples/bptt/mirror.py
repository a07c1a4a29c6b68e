"""The torch half of example ``bptt``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.bptt`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import torch

from refbp.examples import bptt
from refbp.examples._mirror import Result, const, leaf
from refbp.mirror.oracle import to_numpy

__all__ = ["replay"]


def _bptt_forward(w: dict[str, torch.Tensor], x: torch.Tensor, untied: bool
                  ) -> dict[str, torch.Tensor]:
    """The two steps with torch ops; ``untied``: step t uses its own copy ``W_xh.step<t>``."""
    def at(name: str, step: int) -> torch.Tensor:
        return w[f"{name}.step{step}"] if untied else w[name]

    f: dict[str, torch.Tensor] = {}
    h = w["h0"]
    for step in (1, 2):
        f[f"a{step}"] = at("W_xh", step) @ x[step - 1] + at("W_hh", step) @ h + w["b"]
        h = f[f"h{step}"] = torch.tanh(f[f"a{step}"])
    f["y"] = w["W_hy"] @ h + w["c"]
    f["loss"] = 0.5 * ((f["y"] - bptt.TARGET) ** 2).sum()
    return f


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    p = bptt.params()
    w = {k: leaf(v) for k, v in p.items()}
    x = leaf(bptt.X)
    f = _bptt_forward(w, x, untied=False)
    for k in ("a1", "h1", "a2", "h2", "y"):
        f[k].retain_grad()
    f["loss"].backward()
    r: Result = {k: to_numpy(v) for k, v in f.items()}
    r.update({f"dL_d{k}": to_numpy(f[k].grad) for k in ("y", "a1", "h1", "a2", "h2")})
    r.update({f"dL_d{k}": to_numpy(w[k].grad) for k in bptt.PARAMS})
    r["dL_dx1"], r["dL_dx2"] = to_numpy(x.grad)  # type: ignore[arg-type]
    untied = {k: leaf(v) for k, v in p.items()}
    for k in ("W_xh", "W_hh"):
        for step in (1, 2):
            untied[f"{k}.step{step}"] = leaf(p[k])
    _bptt_forward(untied, const(bptt.X), untied=True)["loss"].backward()
    for k in ("W_xh", "W_hh"):
        for step in (1, 2):
            r[f"dL_d{k}.step{step}"] = to_numpy(untied[f"{k}.step{step}"].grad)
    return r
