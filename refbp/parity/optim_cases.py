"""The declarative table of optimizer cases that drives the optimizer parity tests.

One line per case: ``OptimCase(name, optimizer, options, description)``. The table follows
torch's own optimizer test inputs (``optim_db`` in
``torch/testing/_internal/common_optimizers.py``, CPU entries), plus the options refbp supports that
torch's table leaves out (e.g. Adam's ``decoupled_weight_decay``, non-default betas and eps,
momentum without centering). Every optimizer that accepts a Tensor learning rate on torch's
single-tensor path has a ``tensor lr`` case; refbp represents the tensor as a 0-d ndarray of
torch's default dtype (float32), which makes the step-size arithmetic float32, as in torch.

Adding a case is adding one line. :meth:`OptimCase.build` makes a fresh optimizer with its own
copy of the options (a Tensor lr array is never shared between runs).

This module is NumPy-only; ``refbp.mirror.optim.to_torch_optimizer`` builds the torch twin.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.optim.adadelta import Adadelta
from refbp.optim.adagrad import Adagrad
from refbp.optim.adam import Adam, AdamW
from refbp.optim.adamax import Adamax
from refbp.optim.nadam import NAdam
from refbp.optim.optimizer import Optimizer
from refbp.optim.radam import RAdam
from refbp.optim.rmsprop import RMSprop
from refbp.optim.sgd import SGD


def tensor_lr(value: float = 1e-3) -> np.ndarray:
    """torch's ``torch.tensor(value)`` learning rate as refbp spells it: a 0-d float32 array."""
    return np.array(value, dtype=np.float32)


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


T = tensor_lr
C = OptimCase

CASES: list[OptimCase] = [
    C("default", SGD, {}, "torch defaults (lr=1e-3, no momentum)"),
    C("lr", SGD, {"lr": 1e-2}, "non-default lr"),
    C("tensor_lr", SGD, {"lr": T()}, "Tensor lr (0-d float32 array)"),
    C("weight_decay", SGD, {"weight_decay": 0.5}, "L2 penalty added to the gradient"),
    C("momentum", SGD, {"momentum": 0.9}, "heavy-ball momentum"),
    C("maximize", SGD, {"weight_decay": 0.1, "maximize": True}, "gradient ascent with decay"),
    C("dampening", SGD, {"momentum": 0.9, "dampening": 0.5}, "dampened momentum"),
    C("momentum_wd", SGD, {"momentum": 0.9, "weight_decay": 0.1}, "weight decay w/ momentum"),
    C("nesterov", SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, "Nesterov"),
    C("nesterov_max", SGD, {"momentum": 0.9, "nesterov": True, "maximize": True},
      "Nesterov, maximize"),
    C("default", Adam, {}, "torch defaults"),
    C("lr", Adam, {"lr": 1e-2}, "non-default lr"),
    C("tensor_lr", Adam, {"lr": T()}, "Tensor lr"),
    C("weight_decay", Adam, {"weight_decay": 0.1}, "L2 weight decay (coupled)"),
    C("maximize", Adam, {"weight_decay": 0.1, "maximize": True}, "maximize with decay"),
    C("amsgrad", Adam, {"weight_decay": 0.1, "amsgrad": True}, "AMSGrad"),
    C("amsgrad_max", Adam, {"amsgrad": True, "maximize": True}, "AMSGrad, maximize"),
    C("betas_eps", Adam, {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps"),
    C("decoupled", Adam, {"weight_decay": 0.1, "decoupled_weight_decay": True},
      "Adam(decoupled_weight_decay=True) == AdamW"),
    C("tensor_lr_amsgrad", Adam, {"lr": T(), "amsgrad": True, "weight_decay": 0.1},
      "Tensor lr with AMSGrad"),
    C("default", AdamW, {}, "torch defaults (weight_decay=1e-2)"),
    C("lr", AdamW, {"lr": 1e-2}, "non-default lr"),
    C("tensor_lr", AdamW, {"lr": T()}, "Tensor lr: decay factor 1 - lr*wd in float32"),
    C("weight_decay", AdamW, {"weight_decay": 0.1}, "stronger decoupled decay"),
    C("maximize", AdamW, {"weight_decay": 0.1, "maximize": True}, "maximize"),
    C("amsgrad", AdamW, {"weight_decay": 0.1, "amsgrad": True}, "AMSGrad"),
    C("betas_eps", AdamW, {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps"),
    C("default", RMSprop, {}, "torch defaults"),
    C("lr", RMSprop, {"lr": 1e-3}, "non-default lr"),
    C("tensor_lr", RMSprop, {"lr": T()}, "Tensor lr"),
    C("weight_decay", RMSprop, {"weight_decay": 0.1}, "L2 weight decay"),
    C("maximize", RMSprop, {"maximize": True}, "maximize"),
    C("centered", RMSprop, {"weight_decay": 0.1, "centered": True}, "centered"),
    C("maximize_wd", RMSprop, {"maximize": True, "weight_decay": 0.1}, "maximize, decay"),
    C("momentum", RMSprop, {"momentum": 0.5}, "momentum, not centered"),
    C("centered_momentum", RMSprop, {"weight_decay": 0.1, "centered": True, "momentum": 0.1},
      "centered with momentum"),
    C("all", RMSprop, {"weight_decay": 0.1, "centered": True, "momentum": 0.1,
                       "maximize": True}, "maximize, centered, weight_decay, momentum"),
    C("alpha_eps", RMSprop, {"alpha": 0.9, "eps": 1e-6}, "non-default alpha and eps"),
    C("default", Adagrad, {}, "torch defaults"),
    C("lr", Adagrad, {"lr": 0.1}, "non-default lr"),
    C("tensor_lr", Adagrad, {"lr": T()}, "Tensor lr"),
    C("weight_decay", Adagrad, {"weight_decay": 0.1}, "L2 weight decay"),
    C("maximize", Adagrad, {"weight_decay": 0.1, "maximize": True}, "maximize"),
    C("initial_acc", Adagrad, {"initial_accumulator_value": 0.1, "weight_decay": 0.1},
      "initial_accumulator_value"),
    C("lr_decay", Adagrad, {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1}, "lr_decay"),
    C("eps", Adagrad, {"eps": 1e-6}, "non-default eps"),
    C("default", Adadelta, {}, "torch defaults (lr=1.0)"),
    C("lr", Adadelta, {"lr": 0.01}, "non-default lr"),
    C("tensor_lr", Adadelta, {"lr": T()}, "Tensor lr"),
    C("weight_decay", Adadelta, {"weight_decay": 0.1}, "L2 weight decay"),
    C("maximize", Adadelta, {"maximize": True}, "maximize"),
    C("maximize_wd", Adadelta, {"weight_decay": 0.1, "maximize": True}, "maximize, decay"),
    C("rho", Adadelta, {"rho": 0.95, "weight_decay": 0.9}, "rho"),
    C("eps", Adadelta, {"eps": 1e-4}, "non-default eps"),
    C("default", Adamax, {}, "torch defaults"),
    C("lr", Adamax, {"lr": 0.1}, "non-default lr"),
    C("tensor_lr", Adamax, {"lr": T()}, "Tensor lr"),
    C("weight_decay", Adamax, {"weight_decay": 0.1}, "L2 weight decay"),
    C("maximize", Adamax, {"maximize": True}, "maximize"),
    C("maximize_wd", Adamax, {"weight_decay": 0.1, "maximize": True}, "maximize, decay"),
    C("betas_eps", Adamax, {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps"),
    C("default", NAdam, {}, "torch defaults"),
    C("lr", NAdam, {"lr": 1e-3}, "non-default lr"),
    C("tensor_lr", NAdam, {"lr": T()}, "Tensor lr"),
    C("momentum_decay", NAdam, {"momentum_decay": 6e-3}, "non-default momentum_decay"),
    C("weight_decay", NAdam, {"weight_decay": 0.1}, "L2 weight decay"),
    C("wd_momentum_decay", NAdam, {"weight_decay": 0.1, "momentum_decay": 6e-3},
      "weight decay, momentum_decay"),
    C("decoupled", NAdam, {"weight_decay": 0.1, "momentum_decay": 6e-3,
                           "decoupled_weight_decay": True}, "NAdamW"),
    C("maximize", NAdam, {"weight_decay": 0.1, "maximize": True}, "maximize"),
    C("betas_eps", NAdam, {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps"),
    C("default", RAdam, {}, "torch defaults"),
    C("lr", RAdam, {"lr": 2e-3}, "non-default lr"),
    C("tensor_lr", RAdam, {"lr": T()}, "Tensor lr"),
    C("eps", RAdam, {"eps": 1e-6}, "non-default eps"),
    C("weight_decay", RAdam, {"weight_decay": 0.1}, "L2 weight decay"),
    C("decoupled", RAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True}, "RAdamW"),
    C("maximize", RAdam, {"weight_decay": 0.1, "maximize": True}, "maximize"),
    C("betas", RAdam, {"betas": (0.8, 0.9)}, "beta2=0.9: rho_inf=19, rectified from step 6"),
]


def cases_for(optimizer: type[Optimizer] | str) -> list[OptimCase]:
    """The cases of one optimizer class (or class name)."""
    name = optimizer if isinstance(optimizer, str) else optimizer.__name__
    return [c for c in CASES if c.optimizer.__name__ == name]


def default_case(optimizer: type[Optimizer] | str) -> OptimCase:
    """The ``default`` case of one optimizer."""
    return next(c for c in cases_for(optimizer) if c.name == "default")
