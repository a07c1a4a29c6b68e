"""Built-in suites: named lists of scenarios.

- ``quick`` (the default of ``refbp run``): every layer and loss as an op check (forward and
  all gradients, extreme inputs included), every optimizer at least once on a regression MLP,
  a classifier with CrossEntropy and a binary classifier with BCEWithLogits, a few schedulers,
  and the teaching examples' models; each in float64 and float32. Plus, in float64: options
  the others leave at their defaults (every lr scheduler, also stepped with an explicit epoch;
  ``maximize``; eval mode; gradient clipping), and each library's own defaults (``defaults-*``:
  every optimizer and scheduler built from its required arguments only).
- ``full``: every optimizer case of ``refbp.parity.optim_cases`` on a regression MLP and a
  classifier for 100 steps, three seeds, both dtypes; every loss option; every op check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from refbp.parity import suite_attention, suite_sequence
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.suite_cnn import LENET_DATA, LENET_OPTIMIZERS, lenet
from refbp.parity.suite_cnn import OPS as CNN_OPS
from refbp.parity.suite_conv import conv_ops
from refbp.tolerances import OVERRIDES

DTYPES = ("float64", "float32")
_SHORT = {"float64": "f64", "float32": "f32"}


def _op(name: str, layers: Iterable[Spec], loss: Spec, data: DataSpec, dtype: str,
        description: str) -> Scenario:
    return Scenario(name=f"op-{name}-{_SHORT[dtype]}", model=tuple(layers), loss=loss,
                    data=data, batching="batch", batch_size=None, dtype=dtype, seed=0, steps=1,
                    description=description)


ACTIVATIONS: list[tuple[str, Spec]] = [
    ("relu", Spec("ReLU")),
    ("leakyrelu", Spec("LeakyReLU", {"negative_slope": 0.2})),
    ("elu", Spec("ELU", {"alpha": 1.5})),
    ("gelu", Spec("GELU")),
    ("gelu-tanh", Spec("GELU", {"approximate": "tanh"})),
    ("silu", Spec("SiLU")),
    ("sigmoid", Spec("Sigmoid")),
    ("tanh", Spec("Tanh")),
    ("softplus", Spec("Softplus")),
    ("softplus-beta2", Spec("Softplus", {"beta": 2.0, "threshold": 10.0})),
    ("softmax", Spec("Softmax", {"dim": 1})),
    ("logsoftmax", Spec("LogSoftmax", {"dim": 1})),
    ("identity", Spec("Identity")),
]

_EXTREME = DataSpec("extreme", n=16, features=6, outputs=6)
_REG = DataSpec("regression", n=16, features=5, outputs=5)
_CLS = DataSpec("classification", n=16, features=5, outputs=5)
_W5 = [0.5, 1.0, 2.0, 1.5, 0.25]

LOSSES: list[tuple[str, list[Spec], Spec, DataSpec]] = [
    ("mse", [], Spec("MSELoss"), _REG),
    ("mse-sum", [], Spec("MSELoss", {"reduction": "sum"}), _REG),
    ("sse", [], Spec("SSELoss"), _REG),
    ("l1", [], Spec("L1Loss"), _REG),
    ("huber", [], Spec("HuberLoss", {"delta": 0.5}), _REG),
    ("smoothl1", [], Spec("SmoothL1Loss", {"beta": 0.5, "reduction": "sum"}), _REG),
    ("bce", [], Spec("BCELoss"), DataSpec("probabilities", n=16, features=5, outputs=5)),
    ("bce-weight", [], Spec("BCELoss", {"weight": _W5}),
     DataSpec("probabilities", n=16, features=5, outputs=5)),
    ("bcelogits", [], Spec("BCEWithLogitsLoss"), DataSpec("binary", n=16, features=5, outputs=5)),
    ("bcelogits-extreme", [], Spec("BCEWithLogitsLoss", {"pos_weight": _W5}),
     DataSpec("binary", n=16, features=5, outputs=5, extra={"scale": 1e4})),
    ("ce", [], Spec("CrossEntropyLoss"), _CLS),
    ("ce-extreme", [], Spec("CrossEntropyLoss"),
     DataSpec("classification", n=16, features=5, outputs=5, extra={"scale": 1e4})),
    ("ce-weight-smooth", [], Spec("CrossEntropyLoss",
                                  {"weight": _W5, "label_smoothing": 0.1}), _CLS),
    ("ce-ignore", [], Spec("CrossEntropyLoss", {"ignore_index": 2}), _CLS),
    ("ce-soft", [], Spec("CrossEntropyLoss", {"label_smoothing": 0.2}),
     DataSpec("soft_targets", n=16, features=5, outputs=5)),
    ("ce-kdim", [], Spec("CrossEntropyLoss", {"reduction": "sum"}),
     DataSpec("classification_kd", n=4, features=5, outputs=5, extra={"d": 3})),
    ("ce-kdim-smooth", [], Spec("CrossEntropyLoss", {"label_smoothing": 0.1}),
     DataSpec("classification_kd", n=4, features=5, outputs=5, extra={"d": 3})),
    ("ce-kdim-soft", [], Spec("CrossEntropyLoss", {"label_smoothing": 0.1}),
     DataSpec("classification_kd", n=4, features=5, outputs=5,
              extra={"d": 3, "target": "probabilities"})),
    ("nll", [Spec("LogSoftmax", {"dim": 1})], Spec("NLLLoss", {"weight": _W5}), _CLS),
]


def op_scenarios() -> list[Scenario]:
    """Every layer and loss checked once per dtype: outputs and every gradient."""
    out: list[Scenario] = []
    for dt in DTYPES:
        for name, spec in ACTIVATIONS:
            out.append(_op(name, [spec], Spec("SSELoss"), _EXTREME, dt,
                           f"{spec.type} on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4)"))
        out.append(_op("linear", [Spec("Linear", {"in_features": 5, "out_features": 3})],
                       Spec("MSELoss"), DataSpec("regression", n=16, features=5, outputs=3), dt,
                       "Linear layer"))
        out.append(_op("unflatten-infer", [Spec("Unflatten", {"dim": 1,
                                                              "unflattened_size": [3, -1]}),
                                           Spec("Flatten"),
                                           Spec("Linear", {"in_features": 15,
                                                           "out_features": 4})],
                       Spec("MSELoss"), DataSpec("regression", n=8, features=15, outputs=4), dt,
                       "Unflatten to (3, -1) (inferred 5), Flatten, Linear"))
        out.append(_op("flatten", [Spec("Flatten"),
                                   Spec("Linear", {"in_features": 15, "out_features": 4})],
                       Spec("MSELoss"), DataSpec("regression", n=8, features=15, outputs=4), dt,
                       "Flatten then Linear"))
        out.append(_op("batchnorm", [Spec("BatchNorm1d", {"num_features": 5})], Spec("MSELoss"),
                       _REG, dt, "BatchNorm1d in training mode (batch statistics, running "
                       "mean and unbiased running variance)"))
        out.append(_op("layernorm", [Spec("LayerNorm", {"normalized_shape": 5})],
                       Spec("MSELoss"), DataSpec("regression", n=16, features=5, outputs=5,
                                                 extra={"scale": 30.0}), dt,
                       "LayerNorm over the last dimension (weight and bias)"))
        out.append(_op("layernorm-noaffine",
                       [Spec("Linear", {"in_features": 5, "out_features": 6}),
                        Spec("LayerNorm", {"normalized_shape": 6, "elementwise_affine": False})],
                       Spec("MSELoss"), DataSpec("regression", n=16, features=5, outputs=6), dt,
                       "LayerNorm without weight and bias, after a Linear layer"))
        out += [_op(name, layers, loss, data, dt, text)
                for name, layers, loss, data, text in CNN_OPS]
        for name, pre, loss, data in LOSSES:
            out.append(_op(name, pre or [Spec("Identity")], loss, data, dt,
                           f"{loss.describe()} op check"))
        for name, layers, loss, data, text in conv_ops():
            out.append(_op(name, layers, loss, data, dt, text))
        for name, layers, loss, data, text in suite_sequence.OPS:
            out.append(_op(name, layers, loss, data, dt, text))
        out += suite_attention.op_checks(dt, _SHORT[dt])
    return out


def mlp(inp: int, hidden: int, out: int, act: str = "Tanh") -> tuple[Spec, ...]:
    return (Spec("Linear", {"in_features": inp, "out_features": hidden}), Spec(act),
            Spec("Linear", {"in_features": hidden, "out_features": out}))


def train(name: str, model: tuple[Spec, ...], loss: Spec, opt: Spec, data: DataSpec, dtype: str,
          *, steps: int = 20, batching: str = "minibatch", batch_size: int | None = 8,
          scheduler: Spec | None = None, seed: int = 0, description: str = "",
          tolerance: dict[str, float] | None = None, **options: Any) -> Scenario:
    """A training scenario; ``options`` are further :class:`Scenario` fields (``training``,
    ``clip_grad_norm``, ``scheduler_epoch``)."""
    return Scenario(name=f"{name}-{_SHORT[dtype]}" + (f"-s{seed}" if seed else ""), model=model,
                    loss=loss, optimizer=opt, scheduler=scheduler, data=data, batching=batching,
                    batch_size=batch_size if batching == "minibatch" else None, dtype=dtype,
                    seed=seed, steps=steps, description=description,
                    tolerance=tolerance or {}, **options)


# float32 centered RMSprop: the stated exception of refbp.tolerances.OVERRIDES.
NOISY_F32 = {"rmsprop": OVERRIDES["float32_centered_rmsprop"]}


REG_DATA = DataSpec("regression", n=64, features=4, outputs=3)
CLS_DATA = DataSpec("classification", n=64, features=4, outputs=3)
BIN_DATA = DataSpec("binary", n=64, features=4, outputs=1)

QUICK_OPTIMIZERS: list[tuple[str, Spec]] = [
    ("sgd", Spec("SGD", {"lr": 0.1})),
    ("sgd-nesterov", Spec("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                                  "weight_decay": 1e-3})),
    ("adam", Spec("Adam", {"lr": 0.01})),
    ("adam-amsgrad", Spec("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 1e-2})),
    ("adamw", Spec("AdamW", {"lr": 0.01})),
    ("rmsprop", Spec("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True})),
    ("adagrad", Spec("Adagrad", {"lr": 0.1, "lr_decay": 1e-3})),
    ("adadelta", Spec("Adadelta", {"lr": 1.0})),
    ("adamax", Spec("Adamax", {"lr": 0.01})),
    ("nadam", Spec("NAdam", {"lr": 0.01})),
    ("radam", Spec("RAdam", {"lr": 0.01})),
]


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
    out = [train(f"mlp-mse-{n}", mlp(4, 16, 3), Spec("MSELoss"), o, REG_DATA, dtype,
                 description=f"regression MLP, MSE, {o.describe()}",
                 tolerance=NOISY_F32.get(n) if dtype == "float32" else None)
           for n, o in QUICK_OPTIMIZERS]
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
            for name, model, loss, opt, data, text in suite_sequence.TRAINING]
    out += suite_attention.training(dtype, _SHORT[dtype])
    out += [train(f"lenet-{n}", lenet(), Spec("CrossEntropyLoss"), o, LENET_DATA, dtype,
                  steps=3, batch_size=8,
                  description="LeNet-style CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout, "
                  f"Linear) on synthetic 1x28x28 images, {o.describe()}")
            for n, o in LENET_OPTIMIZERS]
    return out + teaching_scenarios(dtype)


SCHEDULERS: list[tuple[str, Spec]] = [
    ("multistep", Spec("MultiStepLR", {"milestones": [3, 7], "gamma": 0.5})),
    ("constant", Spec("ConstantLR", {"factor": 0.5, "total_iters": 4})),
    ("linear", Spec("LinearLR", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 6})),
    ("exponential", Spec("ExponentialLR", {"gamma": 0.8})),
    ("polynomial", Spec("PolynomialLR", {"total_iters": 8, "power": 2.0})),
    ("cosine-etamin", Spec("CosineAnnealingLR", {"T_max": 4, "eta_min": 0.01})),
    ("warm-restarts", Spec("CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2,
                                                            "eta_min": 0.01})),
    ("plateau", Spec("ReduceLROnPlateau", {"factor": 0.5, "patience": 1, "threshold": 0.5})),
    ("plateau-abs", Spec("ReduceLROnPlateau", {"factor": 0.5, "patience": 1, "threshold": 0.05,
                                               "threshold_mode": "abs"})),
    ("plateau-max", Spec("ReduceLROnPlateau", {"mode": "max", "factor": 0.5, "patience": 1,
                                               "threshold": 0.5, "threshold_mode": "abs"})),
    ("plateau-max-rel", Spec("ReduceLROnPlateau", {"mode": "max", "factor": 0.5,
                                                   "patience": 1, "threshold": 0.5})),
    ("plateau-abs-wide", Spec("ReduceLROnPlateau", {"factor": 0.5, "patience": 1,
                                                    "threshold": 0.5,
                                                    "threshold_mode": "abs"})),
    ("sequential", Spec("SequentialLR", {"schedulers": [
        Spec("ConstantLR", {"factor": 0.5, "total_iters": 2}),
        Spec("ExponentialLR", {"gamma": 0.8}),
        Spec("CosineAnnealingLR", {"T_max": 3})], "milestones": [3, 7]})),
    ("lambda", Spec("LambdaLR", {"lr_lambda": "warmup"})),
    ("multiplicative", Spec("MultiplicativeLR", {"lr_lambda": "decay"})),
    ("onecycle-linear", Spec("OneCycleLR", {"max_lr": 0.2, "total_steps": 12,
                                            "anneal_strategy": "linear",
                                            "three_phase": True})),
]

# Stepped with an explicit epoch (torch's deprecated step(epoch)): (name, spec, epoch stride)
EPOCH_SCHEDULERS: list[tuple[str, Spec, float]] = [
    ("steplr", Spec("StepLR", {"step_size": 3, "gamma": 0.5}), 1),
    *((name, dict(SCHEDULERS)[name], 1) for name in ("multistep", "constant", "linear",
                                                      "exponential", "polynomial",
                                                      "cosine-etamin")),
    ("warm-restarts", dict(SCHEDULERS)["warm-restarts"], 0.5),
]

# Only the required arguments: every other one takes each library's own default.
DEFAULT_SCHEDULERS: list[Spec] = [
    Spec("StepLR", {"step_size": 3}), Spec("MultiStepLR", {"milestones": [3, 7]}),
    Spec("ConstantLR"), Spec("LinearLR"), Spec("ExponentialLR", {"gamma": 0.8}),
    Spec("PolynomialLR"), Spec("CosineAnnealingLR", {"T_max": 4}),
    Spec("CosineAnnealingWarmRestarts", {"T_0": 3}), Spec("ReduceLROnPlateau"),
    Spec("OneCycleLR", {"max_lr": 0.1, "total_steps": 12}),
    Spec("LambdaLR", {"lr_lambda": "inverse_sqrt"}),
]

# (name, layers, loss, data): layers and losses with options the other checks always give.
DEFAULT_OPS: list[tuple[str, list[Spec], Spec, DataSpec]] = [
    ("dropout", [Spec("Dropout")], Spec("MSELoss"), _REG),
    ("huber", [Spec("Identity")], Spec("HuberLoss"), _REG),
    ("smoothl1", [Spec("Identity")], Spec("SmoothL1Loss"), _REG),
    ("nll", [Spec("LogSoftmax", {"dim": 1})], Spec("NLLLoss"), _CLS),
    ("rnncell", [Spec("RNNCell", {"input_size": 5, "hidden_size": 5})], Spec("MSELoss"), _REG),
]

_MAXIMIZE = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
             "RAdam")


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
    out += [train(f"maximize-{name.lower()}", mlp(4, 8, 3), Spec("MSELoss"),
                  Spec(name, {"lr": 0.01, "maximize": True, "weight_decay": 0.1}), REG_DATA,
                  "float64", steps=3, description=f"{name}(maximize=True): gradient ascent")
            for name in _MAXIMIZE]
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
    out.append(_op("softplus-threshold", [Spec("Softplus")], Spec("SSELoss"),
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
    """Each library's own defaults, float64: every optimizer, lr scheduler and a few layers and
    losses built from their required arguments only. The harness builds each side from the
    scenario's specs (``refbp.parity.trial.build_trial``), so a refbp default that differs
    from torch's fails here."""
    out = [train(f"defaults-{name.lower()}", mlp(4, 8, 3), Spec("MSELoss"), Spec(name),
                 REG_DATA, "float64", steps=3, description=f"{name} with torch's defaults")
           for name in _MAXIMIZE]
    out += [train(f"defaults-{sched.type.lower()}", (Spec("Linear", {"in_features": 4,
                                                                     "out_features": 3}),),
                  Spec("MSELoss"), Spec("SGD", {"lr": 0.1, "momentum": 0.5}), REG_DATA,
                  "float64", steps=12, batching="batch", scheduler=sched,
                  description=f"SGD with {sched.describe()}, torch's defaults otherwise")
            for sched in DEFAULT_SCHEDULERS]
    out += [_op(f"defaults-{name}", layers, loss, data, "float64",
                f"{' > '.join(sp.describe() for sp in layers)}, {loss.describe()}: defaults")
            for name, layers, loss, data in DEFAULT_OPS]
    return out


def quick() -> list[Scenario]:
    return (op_scenarios() + [s for dt in DTYPES for s in training_scenarios(dt)]
            + option_scenarios() + default_scenarios())


# float32 RMSprop/Adadelta over 100 steps: the stated exception of refbp.tolerances.OVERRIDES.
RMS_F32_TOLERANCE = OVERRIDES["float32_rms_long_training"]
RMS_OPTIMIZERS = ("RMSprop", "Adadelta")


def full() -> list[Scenario]:
    """All optimizer cases on two models, three seeds, 100 steps, both dtypes.

    Cases with ``maximize=True`` are left out of end-to-end training: gradient ascent on these
    losses diverges, and a diverging trajectory amplifies rounding without bound. Those options
    are checked step by step with identical gradients in parity_tests/test_optim_parity.py.
    """
    from refbp.parity.optim_cases import CASES

    out = op_scenarios()
    for dt in DTYPES:
        for seed in (0, 1, 2):
            for case in CASES:
                if case.options.get("maximize"):
                    continue
                name = case.optimizer.__name__
                tol = RMS_F32_TOLERANCE if dt == "float32" and name in RMS_OPTIMIZERS else None
                for model, loss, data in (("mlp", "MSELoss", REG_DATA),
                                          ("clf", "CrossEntropyLoss", CLS_DATA)):
                    opt = Spec(name, copy.deepcopy(case.options))
                    out.append(train(f"full-{model}-{case.id}", mlp(4, 8, 3), Spec(loss), opt,
                                     data, dt, steps=100, seed=seed, tolerance=tol,
                                     description=case.description))
        out += training_scenarios(dt)
    return out


SUITES: dict[str, Callable[[], list[Scenario]]] = {"quick": quick, "full": full,
                                                    "ops": op_scenarios}


def get_suite(name: str) -> list[Scenario]:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}")
    return SUITES[name]()
