"""The option sets of the optimizer checks: torch's ``optim_db`` as refbp runs it.

One :class:`OptimCase` per option set declared in :mod:`refbp.registry.optimizers`
(``OptimInfo.option_sets``), in declaration order. The sets follow torch's own optimizer test
inputs (``optim_db`` in ``torch/testing/_internal/common_optimizers.py``, CPU entries), plus
the options refbp supports that torch's table leaves out (e.g. Adam's
``decoupled_weight_decay``, non-default betas and eps, momentum without centering). Every
optimizer that accepts a Tensor learning rate on torch's single-tensor path has a ``tensor lr``
case; refbp represents the tensor as a 0-d ndarray of torch's default dtype (float32), which
makes the step-size arithmetic float32, as in torch.

Adding a case is adding one line to the declaration. :meth:`OptimCase.build` makes a fresh
optimizer with its own copy of the options (a Tensor lr array is never shared between runs).

This module is NumPy-only; ``refbp.mirror.optim.to_torch_optimizer`` builds the torch twin.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.optim.optimizer import Optimizer
from refbp.registry.optimizers import OPTIMIZERS, TensorLr


def tensor_lr(value: float = 1e-3) -> np.ndarray:
    """torch's ``torch.tensor(value)`` learning rate as refbp spells it: a 0-d float32 array."""
    return np.array(value, dtype=np.float32)


def numpy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Declared options as refbp takes them: a :class:`TensorLr` becomes :func:`tensor_lr`."""
    return {k: tensor_lr(v.value) if isinstance(v, TensorLr) else v for k, v in options.items()}


@dataclass(frozen=True)
class OptimCase:
    """One optimizer configuration: ``optimizer(params, **options)``."""

    name: str
    optimizer: type[Optimizer]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def build(self, params: Iterable[Any]) -> Optimizer:
        """A fresh optimizer over ``params`` with a private copy of the options."""
        return self.optimizer(params, **copy.deepcopy(self.options))

    @property
    def id(self) -> str:
        """``"<Optimizer>-<name>"``, the pytest id."""
        return f"{self.optimizer.__name__}-{self.name}"


CASES: list[OptimCase] = [
    OptimCase(s.name, o.numpy_class(), numpy_options(s.options), s.description)
    for o in OPTIMIZERS for s in o.option_sets
]


def cases_for(optimizer: type[Optimizer] | str) -> list[OptimCase]:
    """The cases of one optimizer class (or class name)."""
    name = optimizer if isinstance(optimizer, str) else optimizer.__name__
    return [c for c in CASES if c.optimizer.__name__ == name]


def default_case(optimizer: type[Optimizer] | str) -> OptimCase:
    """The ``default`` case of one optimizer."""
    return next(c for c in cases_for(optimizer) if c.name == "default")
