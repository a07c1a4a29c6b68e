"""Built-in suites: named lists of scenarios.

- ``quick`` (the default of ``refbp run``): every layer and loss as an op check (forward and
  all gradients, extreme inputs included): the samples declared in ``refbp.registry``;
  every optimizer at least once on a regression MLP,
  a classifier with CrossEntropy and a binary classifier with BCEWithLogits, a few schedulers,
  the teaching examples' models, and torch models captured with ``torch.export``
  (``refbp.parity.suites.graph``: a tiny ResNet, a tiny GPT and a small U-Net); each in
  float64 and float32.
  Plus the option scenarios and each library's defaults of ``refbp.parity.suites.options``
  (float64).
- ``full``: every optimizer case of ``refbp.parity.optim_cases`` on a regression MLP and a
  classifier for 100 steps, three seeds, both dtypes; every loss option; every op check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.suites import attention, sequence
from refbp.parity.suites.cnn import LENET_DATA, LENET_OPTIMIZERS, lenet
from refbp.parity.suites.common import (
    BIN_DATA,
    CLS_DATA,
    DTYPES,
    REG_DATA,
    mlp,
    optimizer_batching,
    optimizer_mlp,
    optimizer_tolerance,
    optimizer_training,
    train,
)
from refbp.parity.suites.common import SHORT as _SHORT
from refbp.parity.suites.declared import declared_op_checks
from refbp.parity.suites.graph import graph_scenarios
from refbp.parity.suites.options import default_scenarios, option_scenarios
from refbp.registry.optimizers import OPTIMIZERS, QuickRun, optimizer


def op_scenarios() -> list[Scenario]:
    """Every layer and loss checked once per dtype: outputs and every gradient."""
    out: list[Scenario] = []
    for dt in DTYPES:
        out += declared_op_checks(dt, "activation", "layer")
        out += declared_op_checks(dt, "loss")
    return out


# The quick runs of every declared optimizer (refbp.registry.optimizers), with the stated
# exceptions of refbp.tolerances.OVERRIDES (centered RMSprop in float32, Muon's bfloat16).
QUICK_OPTIMIZERS: list[tuple[str, Spec, QuickRun]] = [
    (r.id, Spec(o.name, dict(r.options)), r) for o in OPTIMIZERS for r in o.quick]


def teaching_scenarios(dtype: str) -> list[Scenario]:
    """The models of the teaching examples as parity scenarios."""
    sig3 = tuple(s for _ in range(3) for s in (Spec("Linear", {"in_features": 1,
                                                               "out_features": 1}),
                                               Spec("Sigmoid")))
    one = DataSpec("regression", n=20, features=1, outputs=1)
    return [
        train("teach-line-gd", (Spec("Linear", {"in_features": 1, "out_features": 1,
                                                "bias": False}),),
              Spec("SSELoss"), Spec("SGD", {"lr": 0.01}), one, dtype, batching="batch",
              description="fit y = wx by gradient descent on E = 1/2 sum (y - wx)^2"),
        train("teach-linear-regression", (Spec("Linear", {"in_features": 1,
                                                          "out_features": 1}),),
              Spec("SSELoss"), Spec("SGD", {"lr": 0.01}), one, dtype, batching="batch",
              description="y = ax + b, SSE loss, full-batch gradient descent"),
        train("teach-chain-rule", sig3, Spec("MSELoss", {"reduction": "sum"}),
              Spec("SGD", {"lr": 0.5}), DataSpec("regression", n=8, features=1, outputs=1),
              dtype, batching="sgd", description="one sigmoid neuron per layer, C0 = (a - y)^2"),
        train("teach-sigmoid-ce", (Spec("Linear", {"in_features": 4, "out_features": 3}),
                                   Spec("Sigmoid"),
                                   Spec("Linear", {"in_features": 3, "out_features": 1}),
                                   Spec("Sigmoid")),
              Spec("BCELoss"), Spec("SGD", {"lr": 0.5}), BIN_DATA, dtype,
              description="sigmoid network with cross-entropy"),
    ] + [
        train(f"teach-gd-{mode}", mlp(4, 8, 3), Spec("MSELoss"), Spec("SGD", {"lr": 0.05}),
              REG_DATA, dtype, batching=mode, description=f"{mode} gradient descent")
        for mode in ("batch", "sgd", "minibatch")
    ]


def training_scenarios(dtype: str) -> list[Scenario]:
    out = [train(f"{prefix}-{n}", model, Spec("MSELoss"), o, data, dtype,
                 description=f"{'regression MLP' if prefix == 'mlp-mse' else 'embedding'}, "
                 f"MSE, {o.describe()}",
                 tolerance=optimizer_tolerance(o.type, dtype, r.float32_tolerance),
                 batching=optimizer_batching(o.type), steps=r.steps)
           for n, o, r in QUICK_OPTIMIZERS
           for prefix, model, data in (optimizer_training(o.type),)]
    out += [
        train("clf-ce-adam", mlp(4, 16, 3, "ReLU"), Spec("CrossEntropyLoss"),
              Spec("Adam", {"lr": 0.01}), CLS_DATA, dtype, description="classifier, CE"),
        train("clf-ce-sgd-momentum", mlp(4, 16, 3, "GELU"),
              Spec("CrossEntropyLoss", {"label_smoothing": 0.1}),
              Spec("SGD", {"lr": 0.1, "momentum": 0.9}), CLS_DATA, dtype,
              description="classifier, CE with label smoothing"),
        train("bin-bcelogits-adamw", mlp(4, 16, 1, "SiLU"), Spec("BCEWithLogitsLoss"),
              Spec("AdamW", {"lr": 0.01}), BIN_DATA, dtype, description="binary classifier"),
        train("mlp-batchnorm-sgd", (Spec("Linear", {"in_features": 4, "out_features": 16}),
                                    Spec("BatchNorm1d", {"num_features": 16}), Spec("ReLU"),
                                    Spec("Linear", {"in_features": 16, "out_features": 3})),
              Spec("MSELoss"), Spec("SGD", {"lr": 0.05, "momentum": 0.9}), REG_DATA, dtype,
              description="MLP with BatchNorm1d: running statistics compared every step"),
        train("mlp-dropout-adam", (Spec("Linear", {"in_features": 4, "out_features": 16}),
                                   Spec("ReLU"), Spec("Dropout", {"p": 0.2}),
                                   Spec("Linear", {"in_features": 16, "out_features": 3})),
              Spec("CrossEntropyLoss"), Spec("Adam", {"lr": 0.01}), CLS_DATA, dtype,
              description="MLP with Dropout: a fresh torch mask every step, fed to refbp"),
        train("mlp-steplr", mlp(4, 16, 3), Spec("MSELoss"), Spec("SGD", {"lr": 0.1}), REG_DATA,
              dtype, scheduler=Spec("StepLR", {"step_size": 5, "gamma": 0.5}),
              description="SGD with StepLR"),
        train("mlp-cosine", mlp(4, 16, 3, "ELU"), Spec("MSELoss"), Spec("Adam", {"lr": 0.02}),
              REG_DATA, dtype, scheduler=Spec("CosineAnnealingLR", {"T_max": 10}),
              description="Adam with CosineAnnealingLR"),
        train("mlp-onecycle", mlp(4, 16, 3, "LeakyReLU"), Spec("MSELoss"),
              Spec("SGD", {"lr": 0.1, "momentum": 0.9}), REG_DATA, dtype,
              scheduler=Spec("OneCycleLR", {"max_lr": 0.1, "total_steps": 20}),
              description="SGD with OneCycleLR (cycles momentum)"),
    ]
    out += [train(name, model, loss, opt, data, dtype, steps=5, description=text)
            for name, model, loss, opt, data, text in sequence.TRAINING]
    out += attention.training(dtype, _SHORT[dtype])
    out += [train(f"lenet-{n}", lenet(), Spec("CrossEntropyLoss"), o, LENET_DATA, dtype,
                  steps=3, batch_size=8,
                  description="LeNet-style CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout, "
                  f"Linear) on synthetic 1x28x28 images, {o.describe()}")
            for n, o in LENET_OPTIMIZERS]
    return out + graph_scenarios(dtype) + teaching_scenarios(dtype)


def quick() -> list[Scenario]:
    return (op_scenarios() + [s for dt in DTYPES for s in training_scenarios(dt)]
            + option_scenarios() + default_scenarios())


def full() -> list[Scenario]:
    """All optimizer cases on two models, three seeds, 100 steps, both dtypes.

    Cases with ``maximize=True`` are left out of end-to-end training: gradient ascent on these
    losses diverges, and a diverging trajectory amplifies rounding without bound. So is the
    float32 training of an optimizer whose declaration says why
    (``OptimInfo.long_float32_skip``: Rprop steps by gradient signs). Those options are
    checked step by step with identical gradients in parity_tests/test_optim_parity.py. An
    optimizer's float32 runs take the tolerance exception its declaration names
    (``long_float32_tolerance``: RMSprop, Adadelta).
    """
    from refbp.parity.optim_cases import CASES

    out = op_scenarios()
    for dt in DTYPES:
        for seed in (0, 1, 2):
            for case in CASES:
                name = case.optimizer.__name__
                info = optimizer(name)
                if (case.options.get("maximize") or info.sparse_grads
                        or (dt == "float32" and info.long_float32_skip)):
                    continue
                tol = optimizer_tolerance(name, dt, info.long_float32_tolerance)
                for model, loss, data in (("mlp", "MSELoss", REG_DATA),
                                          ("clf", "CrossEntropyLoss", CLS_DATA)):
                    opt = Spec(name, copy.deepcopy(case.options))
                    out.append(train(f"full-{model}-{case.id}", optimizer_mlp(name, 4, 8, 3),
                                     Spec(loss), opt, data, dt, steps=info.long_steps, seed=seed,
                                     tolerance=tol, batching=optimizer_batching(name),
                                     description=case.description))
        out += training_scenarios(dt)
    return out


SUITES: dict[str, Callable[[], list[Scenario]]] = {"quick": quick, "full": full,
                                                    "ops": op_scenarios}


def get_suite(name: str) -> list[Scenario]:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}")
    return SUITES[name]()
