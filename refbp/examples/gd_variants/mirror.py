"""The torch half of example ``gd_variants``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.gd_variants`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import numpy as np
import torch

from refbp.examples import gd_variants
from refbp.examples._mirror import Result, const
from refbp.mirror.oracle import as_tensor, to_numpy

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    r: Result = {}
    for problem in gd_variants.PROBLEMS:
        x_np, y_np = gd_variants.problem_data(problem)
        x, y = const(x_np), as_tensor(y_np)
        state = gd_variants.initial_state(problem)
        model = torch.nn.Linear(2, state["weight"].shape[0], dtype=torch.float64)
        model.load_state_dict({k: as_tensor(v) for k, v in state.items()})
        loss_fn: torch.nn.Module = (torch.nn.MSELoss() if problem == "mse"
                                    else torch.nn.CrossEntropyLoss())
        for variant in gd_variants.VARIANTS:
            model.load_state_dict({k: as_tensor(v) for k, v in state.items()})
            opt = torch.optim.SGD(model.parameters(), lr=gd_variants.LR)
            steps = gd_variants.batch_indices(variant)
            per_epoch = len(steps) // gd_variants.EPOCHS
            with torch.no_grad():
                epoch_loss = [loss_fn(model(x), y).item()]
            step_loss = []
            for k, idx in enumerate(steps):
                i = torch.from_numpy(idx)
                opt.zero_grad()
                loss = loss_fn(model(x[i]), y[i])
                loss.backward()
                opt.step()
                step_loss.append(loss.item())
                if (k + 1) % per_epoch == 0:
                    with torch.no_grad():
                        epoch_loss.append(loss_fn(model(x), y).item())
            pre = f"{problem}.{variant}."
            r.update({pre + "step_loss": np.array(step_loss),
                      pre + "epoch_loss": np.array(epoch_loss),
                      pre + "weight": to_numpy(model.weight), pre + "bias": to_numpy(model.bias)})
    return r
