"""Option scenarios of the quick suite, float64: options the other scenarios leave at their
defaults (every lr scheduler, also stepped with an explicit epoch; ``maximize``; eval mode;
gradient clipping and accumulation; checkpoints) and each library's own defaults
(``defaults-*``: every optimizer and lr scheduler, and the layers and losses that declare a
``defaults_check``, built from their required arguments only; the harness builds each side
from the specs, so a refbp default that differs from torch's fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.suites.common import (
    CLS_DATA,
    REG_DATA,
    mlp,
    op_check,
    optimizer_batching,
    optimizer_tolerance,
    optimizer_training,
    train,
)
from refbp.parity.suites.declared import declared_default_checks
from refbp.registry.optimizers import OPTIMIZERS, optimizer
from refbp.registry.schedulers import SCHEDULERS as DECLARED
from refbp.registry.schedulers import Sub


def scheduler_spec(type_: str, options: Mapping[str, Any]) -> Spec:
    """A scenario spec of a declared scheduler's options (nested schedulers included; also
    the cases of ``parity_tests/test_lr_scheduler_parity.py``)."""
    def value(v: Any) -> Any:
        if isinstance(v, Sub):
            return scheduler_spec(v.type, v.options)
        return [value(x) for x in v] if isinstance(v, list) else v

    return Spec(type_, {k: value(v) for k, v in options.items()})


# The option sets of every declared lr scheduler (refbp.registry.schedulers).
SCHEDULERS: list[tuple[str, Spec]] = [(o.id, scheduler_spec(s.name, o.options))
                                      for s in DECLARED for o in s.option_sets
                                      if not o.epoch_only]

# Stepped with an explicit epoch (torch's deprecated step(epoch)): (name, spec, epoch stride)
EPOCH_SCHEDULERS: list[tuple[str, Spec, float]] = [
    (o.id, scheduler_spec(s.name, o.options), o.epoch_stride) for s in DECLARED
    for o in s.option_sets if o.epoch_stride is not None]

# Only the required arguments: every other one takes each library's own default.
DEFAULT_SCHEDULERS: list[Spec] = [scheduler_spec(s.name, s.defaults) for s in DECLARED
                                  if s.defaults is not None]

# Every declared optimizer that takes ``maximize`` (refbp.registry.optimizers) under every
# supported torch: LBFGS's (torch 2.14 and later, ``Hyper.torch_since``) is left out, so the
# suite is the same whichever torch runs it; the parity tests check it under torch 2.14
# (torch's optim_db sets).
MAXIMIZE = tuple(o.name for o in OPTIMIZERS
                 if o.has("maximize") and not o.hyper("maximize").torch_since)


def _maximize_options(name: str) -> dict[str, Any]:
    """lr 0.01, ``maximize=True`` and, where the optimizer takes one, a weight decay of 0.1."""
    decay = {"weight_decay": 0.1} if optimizer(name).has("weight_decay") else {}
    return {"lr": 0.01, "maximize": True, **decay}


def option_scenarios() -> list[Scenario]:
    """Options the training scenarios leave at their defaults, float64 only (the options act
    on the control flow, not on the rounding): every lr scheduler over its milestones and
    restarts, ``maximize`` of every optimizer (3 steps: gradient ascent diverges later),
    RMSprop without momentum, and LayerNorm's bias once it has moved from zero."""
    lin = (Spec("Linear", {"in_features": 4, "out_features": 3}),)
    sgd = Spec("SGD", {"lr": 0.1, "momentum": 0.5})
    out = [train(f"sched-{name}", lin, Spec("MSELoss"), sgd, REG_DATA, "float64", steps=12,
                 batching="batch", scheduler=sched, description=f"SGD with {sched.type}")
           for name, sched in SCHEDULERS]
    out += [train(f"sched-epoch-{name}", lin, Spec("MSELoss"), sgd, REG_DATA, "float64",
                  steps=12, batching="batch", scheduler=sched, scheduler_epoch=epoch,
                  description=f"SGD with {sched.type} stepped with step(epoch): "
                  + ("fractional epochs" if epoch < 1 else "its closed form"))
            for name, sched, epoch in EPOCH_SCHEDULERS]
    out += [train(f"maximize-{name.lower()}", model, Spec("MSELoss"),
                  Spec(name, _maximize_options(name)), data,
                  "float64", steps=3, description=f"{name}(maximize=True): gradient ascent")
            for name in MAXIMIZE for _, model, data in (optimizer_training(name, hidden=8),)]
    out += [
        train("mlp-rmsprop-plain", mlp(4, 8, 3), Spec("MSELoss"), Spec("RMSprop", {"lr": 0.01}),
              REG_DATA, "float64", steps=5, description="RMSprop without momentum"),
        train("mlp-adam-beta1-half", mlp(4, 8, 3), Spec("MSELoss"),
              Spec("Adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}), REG_DATA,
              "float64", steps=5, description="Adam with beta1 = 0.5: torch's lerp at its "
              "switch between the two formulas"),
        train("mlp-adam-beta1-low", mlp(4, 8, 3), Spec("MSELoss"),
              Spec("Adam", {"lr": 0.01, "betas": (0.4, 0.9), "eps": 1e-6}), REG_DATA,
              "float64", steps=5, description="Adam with beta1 < 0.5: torch's lerp from the end"),
        train("mlp-layernorm-adam", (Spec("Linear", {"in_features": 4, "out_features": 8}),
                                     Spec("LayerNorm", {"normalized_shape": 8}), Spec("Tanh"),
                                     Spec("Linear", {"in_features": 8, "out_features": 3})),
              Spec("MSELoss"), Spec("Adam", {"lr": 0.01}), REG_DATA, "float64", steps=3,
              description="LayerNorm trained: its bias moves from zero after step 1"),
    ]
    out.append(train("mlp-eval-sgd", (Spec("Linear", {"in_features": 4, "out_features": 8}),
                                      Spec("BatchNorm1d", {"num_features": 8}), Spec("ReLU"),
                                      Spec("Dropout", {"p": 0.3}),
                                      Spec("Linear", {"in_features": 8, "out_features": 3})),
                     Spec("MSELoss"), Spec("SGD", {"lr": 0.05, "momentum": 0.9}), REG_DATA,
                     "float64", steps=3, training=False,
                     description="trained in eval mode: BatchNorm1d on its running statistics, "
                     "Dropout the identity"))
    out.append(train("mlp-clip-sgd", mlp(4, 8, 3), Spec("MSELoss"),
                     Spec("SGD", {"lr": 0.1, "momentum": 0.5}), REG_DATA, "float64", steps=5,
                     clip_grad_norm=0.1,
                     description="gradients clipped to a total 2-norm of 0.1 before each step"))
    out.append(train("mlp-batchnorm-cma", (Spec("Linear", {"in_features": 4, "out_features": 8}),
                                           Spec("BatchNorm1d", {"num_features": 8,
                                                                "momentum": None}),
                                           Spec("ReLU"),
                                           Spec("Linear", {"in_features": 8, "out_features": 3})),
                     Spec("MSELoss"), Spec("SGD", {"lr": 0.05, "momentum": 0.9}), REG_DATA,
                     "float64", steps=3,
                     description="BatchNorm1d(momentum=None): cumulative average of the "
                     "batch statistics"))
    bn = (Spec("Linear", {"in_features": 4, "out_features": 8}),
          Spec("BatchNorm1d", {"num_features": 8}), Spec("ReLU"),
          Spec("Linear", {"in_features": 8, "out_features": 3}))
    out += [train(f"mlp-checkpoint-{name}", model, Spec("MSELoss"), opt, REG_DATA, "float64",
                  steps=4, scheduler=sched, checkpoint=True,
                  description=f"{opt.describe()} + {sched.describe()}, every state dict saved "
                  "and reloaded after each update (a resumed run)")
            for name, model, opt, sched in (
                ("adam", mlp(4, 8, 3), Spec("Adam", {"lr": 0.01, "amsgrad": True}),
                 Spec("SequentialLR", {"schedulers": [Spec("LinearLR", {"total_iters": 2}),
                                                      Spec("ExponentialLR", {"gamma": 0.9})],
                                       "milestones": [2]})),
                ("sgd-batchnorm", bn, Spec("SGD", {"lr": 0.05, "momentum": 0.9}),
                 Spec("ReduceLROnPlateau", {"patience": 0, "threshold": 0.5})))]
    out += [train("mlp-micro-batches-sgd", mlp(4, 8, 3), Spec("MSELoss"),
                  Spec("SGD", {"lr": 0.1, "momentum": 0.5}), REG_DATA, "float64", steps=4,
                  micro_batches=2, description="gradients of two micro-batches of 4 "
                  "accumulated before each update"),
            train("clf-micro-batches-batchnorm", bn, Spec("CrossEntropyLoss"),
                  Spec("SGD", {"lr": 0.1, "momentum": 0.9}), CLS_DATA, "float64", steps=3,
                  batch_size=16,
                  micro_batches=4, description="four micro-batches of 4 per update: "
                  "BatchNorm1d's statistics per micro-batch, running statistics updated four "
                  "times")]
    out.append(op_check("softplus-threshold", [Spec("Softplus")], Spec("SSELoss"),
                   DataSpec("regression", n=16, features=6, outputs=6, extra={"scale": 25.0}),
                   "float64", "Softplus around its threshold 20 (inputs N(0, 25^2))"))
    out.append(train("mlp-groupnorm-adam",
                     (Spec("Linear", {"in_features": 4, "out_features": 8}),
                      Spec("GroupNorm", {"num_groups": 2, "num_channels": 8}), Spec("Tanh"),
                      Spec("Linear", {"in_features": 8, "out_features": 3})),
                     Spec("MSELoss"), Spec("Adam", {"lr": 0.01}), REG_DATA, "float64", steps=3,
                     description="GroupNorm trained: its weight moves from one after step 1"))
    return out


def default_scenarios() -> list[Scenario]:
    """Each library's own defaults, float64: every optimizer, lr scheduler and the layers and
    losses that declare a ``defaults_check``, built from their required arguments only. The
    harness builds each side from the scenario's specs (``refbp.parity.trial.build_trial``),
    so a refbp default that differs from torch's fails here."""
    out = [train(f"defaults-{name.lower()}", model, Spec("MSELoss"),
                 Spec(name), data, "float64", steps=3,
                 description=f"{name} with torch's defaults",
                 tolerance=optimizer_tolerance(name, "float64"),
                 batching=optimizer_batching(name))
           for name in (o.name for o in OPTIMIZERS)
           for _, model, data in (optimizer_training(name, hidden=8),)]
    out += [train(f"defaults-{sched.type.lower()}", (Spec("Linear", {"in_features": 4,
                                                                     "out_features": 3}),),
                  Spec("MSELoss"), Spec("SGD", {"lr": 0.1, "momentum": 0.5}), REG_DATA,
                  "float64", steps=12, batching="batch", scheduler=sched,
                  description=f"SGD with {sched.describe()}, torch's defaults otherwise")
            for sched in DEFAULT_SCHEDULERS]
    return out + declared_default_checks()
