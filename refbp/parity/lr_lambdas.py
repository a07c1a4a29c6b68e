"""Named lr multipliers for ``LambdaLR`` and ``MultiplicativeLR`` in scenarios.

A scenario is data (written in Python or TOML, hashed, sent to workers), so it cannot carry a
Python callable; it names one of :data:`LR_LAMBDAS` instead, e.g.
``{ type = "LambdaLR", lr_lambda = "warmup" }`` (or a list of names, one per param group).
Both sides get the same function object, so the check is of the schedulers' own logic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def warmup(epoch: int) -> float:
    """Linear warm-up over 4 epochs, then 1: ``min(1, (epoch + 1) / 4)``."""
    return min(1.0, (epoch + 1) / 4)


def inverse_sqrt(epoch: int) -> float:
    """``1 / sqrt(epoch + 1)``."""
    return 1.0 / math.sqrt(epoch + 1)


def decay(epoch: int) -> float:
    """A constant factor 0.9 (``MultiplicativeLR``: the lr shrinks by 10 % every epoch)."""
    return 0.9


def exponential(epoch: int) -> float:
    """``0.97 ** epoch``."""
    return float(0.97 ** epoch)


def sawtooth(epoch: int) -> float:
    """``epoch % 7 + 1``: a factor that jumps back every 7 epochs."""
    return float(epoch % 7 + 1)


class InverseTime:
    """``1 / (1 + rate * epoch)`` as a callable object: ``LambdaLR.state_dict`` saves an
    object's ``__dict__`` (``{"rate": ...}``) and a function's nothing, so a schedule with one
    checks both."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return 1.0 / (1.0 + self.rate * epoch)


LR_LAMBDAS: dict[str, Callable[[int], float]] = {
    "warmup": warmup, "inverse_sqrt": inverse_sqrt, "decay": decay,
    "exponential": exponential, "sawtooth": sawtooth, "inverse_time": InverseTime(0.01),
}


def resolve_lr_lambda(value: Any, scenario: str) -> Any:
    """The function (or list of functions) a scenario's ``lr_lambda`` names."""
    if isinstance(value, list | tuple):
        return [resolve_lr_lambda(v, scenario) for v in value]
    if not isinstance(value, str) or value not in LR_LAMBDAS:
        raise ValueError(f"scenario {scenario}: lr_lambda must name one of "
                         f"{sorted(LR_LAMBDAS)} (or be a list of names), got {value!r}")
    return LR_LAMBDAS[value]
