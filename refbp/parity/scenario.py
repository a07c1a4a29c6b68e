"""Parity scenarios: plain dataclasses naming everything a run needs.

A scenario = model (a list of refbp layers with arguments) + loss + optimizer (+ scheduler)
+ data generator + batching + dtype + seed + number of steps (+ tolerance overrides). Because
the model is a list of ``LayerSpec`` (type name + keyword arguments), a scenario can be written
in Python or in a TOML file (see ``refbp.parity.toml``) and its description is printable.

A scenario with ``optimizer=None`` is an *op check*: one forward and backward pass, comparing
outputs and every gradient, no update.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from refbp._checks import FLOAT_DTYPES
from refbp.tolerances import Tolerance, check_overrides, tolerance_for

BATCHING_MODES = ("batch", "sgd", "minibatch")


def _fmt_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


@dataclass(frozen=True)
class Spec:
    """A type name and its keyword arguments: a layer, loss, optimizer or scheduler."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.type}({_fmt_args(self.args)})"


@dataclass(frozen=True)
class DataSpec:
    """A seeded synthetic data set (see ``refbp.parity.datagen`` for the kinds)."""

    kind: str = "regression"
    n: int = 32
    features: int = 4
    outputs: int = 3
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """One parity case. ``tolerance`` overrides the dtype's entry of ``refbp.tolerances``."""

    name: str
    model: tuple[Spec, ...]
    loss: Spec
    optimizer: Spec | None = None
    scheduler: Spec | None = None
    data: DataSpec = field(default_factory=DataSpec)
    batching: str = "minibatch"
    batch_size: int | None = 8
    dtype: str = "float64"
    seed: int = 0
    steps: int = 1
    tolerance: dict[str, float] = field(default_factory=dict)
    description: str = ""
    expect_nonfinite: bool = False

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"scenario name must be non-empty without spaces, got {self.name!r}")
        if np.dtype(self.dtype) not in FLOAT_DTYPES:
            raise ValueError(f"scenario {self.name}: dtype must be float32 or float64, "
                             f"got {self.dtype!r}")
        if self.batching not in BATCHING_MODES:
            raise ValueError(f"scenario {self.name}: batching must be one of {BATCHING_MODES}, "
                             f"got {self.batching!r}")
        if self.steps < 1:
            raise ValueError(f"scenario {self.name}: steps must be >= 1, got {self.steps}")
        if self.optimizer is None and self.steps != 1:
            raise ValueError(f"scenario {self.name}: an op check (no optimizer) has one step, "
                             f"got steps={self.steps}")
        check_overrides(self.tolerance, f"scenario {self.name}: ")

    @property
    def tol(self) -> Tolerance:
        return replace(tolerance_for(self.dtype), **self.tolerance)

    def describe_model(self) -> str:
        return " > ".join(s.describe() for s in self.model)

    def describe_optimizer(self) -> str:
        if self.optimizer is None:
            return "none (op check)"
        text = self.optimizer.describe()
        return text + (f" + {self.scheduler.describe()}" if self.scheduler else "")

    def describe_batching(self) -> str:
        if self.batching == "minibatch":
            return f"minibatch({self.batch_size})"
        return self.batching

    def with_overrides(self, *, dtype: str | None = None, seed: int | None = None,
                       steps: int | None = None) -> Scenario:
        """A copy with a different dtype, seed or step count (op checks keep one step)."""
        changes: dict[str, Any] = {}
        if dtype is not None:
            changes["dtype"] = dtype
        if seed is not None:
            changes["seed"] = seed
        if steps is not None and self.optimizer is not None:
            changes["steps"] = steps
        return replace(self, **changes)
