"""What every benchmark times: one SGD training step of a refbp model and of its torch twin.

Imported by the ``bench_*.py`` scripts, which are run as ``python benchmarks/bench_*.py`` (so
this directory is on ``sys.path``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from refbp import nn, optim
from refbp.mirror import as_tensor, to_torch

Step = Callable[[], None]


def training_steps(model: nn.Module, x: np.ndarray, y: np.ndarray, loss: nn.Module,
                   torch_loss: torch.nn.Module, *, input_grad: bool = True,
                   torch_model: torch.nn.Module | None = None) -> tuple[Step, Step]:
    """refbp and torch steps (forward, loss, backward, SGD update) from identical weights.

    ``input_grad=False`` lets refbp skip the input gradient of the first layer where it can
    (``Linear``), as torch skips it for data that does not require grad. ``torch_model`` is
    the torch side when given (``model`` converted from it), else ``to_torch(model)``.
    """
    tmodel = to_torch(model) if torch_model is None else torch_model
    opt = optim.SGD(list(model.parameters()), lr=0.01)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01)
    xt, yt = as_tensor(x), as_tensor(y)
    kwargs = {} if input_grad else {"input_grad": False}

    def refbp_step() -> None:
        opt.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward(), **kwargs)
        opt.step()

    def torch_step() -> None:
        topt.zero_grad()
        torch_loss(tmodel(xt), yt).backward()
        topt.step()

    return refbp_step, torch_step


def timeit(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(a: Callable[[], object], b: Callable[[], object], repeats: int, *,
                warmup: int = 3, clock: Callable[[Callable[[], object]], Any] = timeit
                ) -> tuple[list[Any], list[Any]]:
    """``clock`` readings of ``a`` and ``b`` called alternately (``a, b, a, b, ...``) after
    ``warmup`` untimed pairs, so both sides are measured under the same machine load."""
    for _ in range(warmup):
        a()
        b()
    ta: list[Any] = []
    tb: list[Any] = []
    for _ in range(repeats):
        ta.append(clock(a))
        tb.append(clock(b))
    return ta, tb
