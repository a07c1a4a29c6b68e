"""Checks of the from-scratch code in ``tests/fixtures/wild`` and their right verdicts.

Each case: (kind, spec, like, options, working directory or None, expected). ``expected`` is
``None`` (matches torch), a catalog variant name, or a tuple of (variant or None, fitted
constant ``"eps=1e-07"`` or None, exit code).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from refbp.diagnose import Diagnosis, check_layer, check_loss, check_optimizer

WILD = Path(__file__).parent / "fixtures" / "wild"
DLFS = WILD / "dlfs"

Case = tuple[str, str, str, dict[str, Any], Path | None, tuple[str | None, str | None, int]]

OPTIMIZER_CASES: list[Case] = [
    ("optimizer", f"{DLFS}/common/optimizer.py:SGD", "SGD", {}, None, (None, None, 0)),
    ("optimizer", f"{DLFS}/common/optimizer.py:Momentum", "SGD", {}, None,
     ("sgd_momentum_lr_in_buffer", None, 1)),
    ("optimizer", f"{DLFS}/common/optimizer.py:Nesterov", "SGD", {}, None,
     ("sgd_nesterov_chainer", "nesterov=True", 1)),
    ("optimizer", f"{DLFS}/common/optimizer.py:AdaGrad", "Adagrad", {}, None,
     (None, "eps=1e-07", 0)),
    ("optimizer", f"{DLFS}/common/optimizer.py:RMSprop", "RMSprop", {}, None,
     (None, "eps=1e-07", 0)),
    ("optimizer", f"{DLFS}/common/optimizer.py:Adam", "Adam", {}, None,
     ("adam_tf_eps_hat", "eps=1e-07", 1)),
    ("optimizer", "ch06/optimizer_compare_naive.py:Adam", "Adam", {}, DLFS,
     ("adam_tf_eps_hat", "eps=1e-07", 1)),
    ("optimizer", "cs231n.optim:sgd", "SGD", {}, WILD, (None, None, 0)),
    ("optimizer", "cs231n.optim:sgd_momentum", "SGD", {}, WILD,
     ("sgd_momentum_lr_in_buffer", None, 1)),
    ("optimizer", "cs231n.optim:rmsprop", "RMSprop", {}, WILD, (None, None, 0)),
    ("optimizer", "cs231n.optim:adam", "Adam", {}, WILD, (None, None, 0)),
    ("optimizer", f"{WILD}/nnfs_ch10.py:Optimizer_SGD", "SGD", {"momentum": 0.9}, None,
     ("sgd_momentum_lr_in_buffer", None, 1)),
    ("optimizer", f"{WILD}/nnfs_ch10.py:Optimizer_Adagrad", "Adagrad", {}, None,
     (None, None, 0)),
    ("optimizer", f"{WILD}/nnfs_ch10.py:Optimizer_RMSprop", "RMSprop", {}, None,
     (None, None, 0)),
    ("optimizer", f"{WILD}/nnfs_ch10.py:Optimizer_Adam", "Adam", {}, None, (None, None, 0)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:sgd_momentum", "SGD", {"momentum": 0.9}, None,
     (None, None, 0)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:adagrad", "Adagrad", {}, None,
     ("adagrad_eps_inside_sqrt", "eps=1e-06", 1)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:rmsprop", "RMSprop", {}, None,
     ("rmsprop_eps_inside_sqrt", "eps=1e-06", 1)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:adadelta", "Adadelta", {}, None,
     (None, "eps=1e-05", 1)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:adadelta", "Adadelta", {"lr": 0.5}, None,
     ("adadelta_no_lr", "eps=1e-05", 1)),
    ("optimizer", f"{WILD}/d2l_optimizers.py:adam", "Adam", {}, None, (None, "eps=1e-06", 0)),
    ("optimizer", f"{WILD}/numpy_ml_adam.py:Adam", "Adam", {}, None, (None, None, 0)),
    ("optimizer", f"{WILD}/grokking_autograd.py:SGD", "SGD", {}, None, (None, None, 0)),
    ("optimizer", f"{WILD}/train_adam_script.py:Adam", "Adam", {}, None,
     ("adam_step_off_by_one", None, 1)),
    ("optimizer", f"{WILD}/blog_adam.py:AdamOptim", "Adam", {}, None,
     ("adam_bias_correction_no_exponent", None, 1)),
    ("optimizer", f"{WILD}/lists_momentum.py:MomentumOptimizer", "SGD", {}, None,
     ("sgd_momentum_ema", None, 1)),
]

KERAS_BIASED = "batchnorm_keras_momentum+batchnorm_biased_running_var"
LAYER_CASES: list[Case] = [
    ("layer", f"{DLFS}/common/layers.py:Affine", "Linear", {}, None, (None, None, 0)),
    ("layer", f"{DLFS}/common/layers.py:Relu", "ReLU", {}, None, (None, None, 0)),
    ("layer", f"{DLFS}/common/layers.py:Sigmoid", "Sigmoid", {}, None, (None, None, 0)),
    ("layer", f"{DLFS}/common/layers.py:BatchNormalization", "BatchNorm1d", {}, None,
     (f"{KERAS_BIASED}+batchnorm_running_var_init_zero", "eps=1e-06", 1)),
    ("layer", "cs231n/layers.py:affine_forward", "Linear", {}, WILD, (None, None, 0)),
    ("layer", "cs231n.layer_utils:relu_forward", "ReLU", {}, WILD, (None, None, 0)),
    ("layer", "cs231n/layers.py:batchnorm_forward", "BatchNorm1d", {}, WILD,
     (f"{KERAS_BIASED}+batchnorm_running_var_init_zero", None, 1)),
    ("layer", f"{WILD}/nnfs_ch10.py:Layer_Dense", "Linear", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/nnfs_ch10.py:Activation_ReLU", "ReLU", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/nnfs_ch10.py:Activation_Softmax", "Softmax", {}, None,
     (None, None, 0)),
    ("layer", f"{WILD}/nnfs_ch16.py:Activation_Sigmoid", "Sigmoid", {}, None,
     (None, None, 0)),
    ("layer", f"{WILD}/mlfs_layers.py:Dense", "Linear", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/mlfs_layers.py:BatchNormalization", "BatchNorm1d", {}, None,
     (f"{KERAS_BIASED}+batchnorm_running_stats_from_first_batch", "eps=0.01", 1)),
    ("layer", f"{WILD}/mlfs_layers.py:Activation", "Tanh", {"name": "tanh"}, None,
     (None, None, 0)),
    ("layer", f"{WILD}/dlfs2_layers.py:Affine", "Linear", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/dlfs2_layers.py:Softmax", "Softmax", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/lazy_dense.py:Dense", "Linear", {}, None, (None, None, 0)),
    ("layer", f"{WILD}/lazy_dense.py:Tanh", "Tanh", {}, None, (None, None, 0)),
]

LOSS_CASES: list[Case] = [
    ("loss", f"{DLFS}/common/layers.py:SoftmaxWithLoss", "CrossEntropyLoss", {}, None,
     ("ce_eps_in_log", None, 1)),
    ("loss", "cs231n.layers:softmax_loss", "CrossEntropyLoss", {}, WILD, (None, None, 0)),
    ("loss", f"{WILD}/nnfs_ch10.py:Activation_Softmax_Loss_CategoricalCrossentropy",
     "CrossEntropyLoss", {}, None, (None, None, 0)),
    ("loss", f"{WILD}/nnfs_ch16.py:Loss_BinaryCrossentropy", "BCELoss", {}, None,
     (None, None, 0)),
    ("loss", f"{WILD}/mlfs_layers.py:SquareLoss", "MSELoss", {}, None,
     ("mse_half_sum", None, 1)),
    ("loss", f"{WILD}/mlfs_layers.py:CrossEntropy", "BCELoss", {}, None,
     ("bce_sum", None, 1)),
    ("loss", f"{WILD}/dlfs2_layers.py:SoftmaxWithLoss", "CrossEntropyLoss", {}, None,
     ("ce_eps_in_log", None, 1)),
    ("loss", f"{WILD}/course_losses.py:MeanSquaredError", "MSELoss", {}, None,
     (None, None, 0)),
    ("loss", f"{WILD}/course_losses.py:BinaryCrossEntropy", "BCELoss", {}, None,
     ("bce_eps_in_log", None, 1)),
    ("loss", f"{WILD}/course_losses.py:CategoricalCrossEntropy", "CrossEntropyLoss", {}, None,
     ("ce_eps_in_log", None, 1)),
]

CASES: list[Case] = [*OPTIMIZER_CASES, *LAYER_CASES, *LOSS_CASES]


def case_id(case: tuple) -> str:
    spec = case[1].replace(str(WILD) + "/", "")
    opts = ",".join(f"{k}={v}" for k, v in case[3].items())
    return f"{spec}-{case[2]}" + (f"-{opts}" if opts else "")


CHECKS: dict[str, Callable[..., Diagnosis]] = {
    "optimizer": check_optimizer, "layer": check_layer, "loss": check_loss}


def run_case(case: tuple[Any, ...], oracle: str) -> Diagnosis:
    """Run one case (from its working directory when it has one)."""
    kind, spec, like, options, cwd, _ = case
    before = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        # the diagnosis in this process (a child process per case would only add its start-up
        # time; the isolation itself is tested in test_diagnose_isolation.py)
        return CHECKS[kind](spec, like=like, options=options, oracle=oracle, isolate=False)
    finally:
        os.chdir(before)


def verdict_problems(d: Diagnosis, case: tuple[Any, ...]) -> list[str]:
    """What is wrong with the diagnosis of ``case`` (empty: the verdict is right)."""
    variant, constant, code = case[-1]
    label = case[1].rpartition(":")[2]
    problems = []
    if not d.explanation.startswith(f"your {label}"):
        problems.append(f"does not name {label}")
    if d.exit_code != code:
        problems.append(f"exit code {d.exit_code}, expected {code}")
    got = d.matched_variant.name if d.matched_variant is not None else None
    if got != variant:
        problems.append(f"variant {got}, expected {variant}")
    if constant is not None:
        option, _, value = constant.partition("=")
        if f"with {option}={value} (torch default" not in d.explanation:
            problems.append(f"constant {constant} not named")
    if "[[" in d.explanation:
        problems.append("a whole array in the message")
    return problems
