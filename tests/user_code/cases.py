"""The catalog test table: (kind, user spec in this folder, like, options, expected variant).

The user implementations live one file per family (``adam_family.py``, ``sgd_family.py``,
``batchnorm_family.py``, ...), one class per convention, so a spec is ``family.py:ClassName``.

``expected`` is the catalog variant name, or None for an implementation that matches torch.
Loaded by the tests with ``refbp.diagnose.load_user("tests/user_code/cases.py:CASES")``.
"""

ADAM = {"lr": 1e-2}
WD = {"lr": 1e-2, "weight_decay": 0.1}
MOM = {"lr": 0.1, "momentum": 0.9}
NESTEROV = {"lr": 0.1, "momentum": 0.9, "nesterov": True}
BN = {"momentum": 0.1}
SMOOTH = {"label_smoothing": 0.1}

CASES = [
    ("optimizer", "adam_family.py:Adam", "Adam", ADAM, None),
    ("optimizer", "adam_family.py:Adam", "Adam", {}, None),
    ("optimizer", "adam_family.py:AdamEpsInsideSqrt", "Adam", ADAM, "adam_eps_inside_sqrt"),
    ("optimizer", "adam_family.py:AdamTfEpsHat", "Adam", ADAM, "adam_tf_eps_hat"),
    ("optimizer", "adam_family.py:AdamNoBiasCorrection", "Adam", ADAM, "adam_no_bias_correction"),
    ("optimizer", "adam_family.py:AdamDecoupledWd", "Adam", WD, "adam_decoupled_weight_decay"),
    ("optimizer", "adam_family.py:AdamW", "AdamW", WD, None),
    ("optimizer", "adam_family.py:AdamWCoupledL2", "AdamW", WD, "adamw_coupled_l2"),
    ("optimizer", "adam_family.py:AdamWNotScaled", "AdamW", WD, "adamw_wd_not_scaled_by_lr"),
    ("optimizer", "sgd_family.py:SGD", "SGD", MOM, None),
    ("optimizer", "sgd_family.py:SGD", "SGD", NESTEROV, None),
    ("optimizer", "sgd_family.py:Momentum", "SGD", MOM, "sgd_momentum_lr_in_buffer"),
    ("optimizer", "sgd_family.py:MomentumEma", "SGD", MOM, "sgd_momentum_ema"),
    ("optimizer", "sgd_family.py:Nesterov", "SGD", NESTEROV, "sgd_nesterov_sutskever"),
    ("optimizer", "rmsprop_family.py:RMSprop", "RMSprop", {"lr": 0.01}, None),
    ("optimizer", "rmsprop_family.py:RMSpropEpsInsideSqrt", "RMSprop", {"lr": 0.01},
     "rmsprop_eps_inside_sqrt"),
    ("optimizer", "rprop_family.py:Rprop", "Rprop", {}, None),
    ("optimizer", "rprop_family.py:Rprop", "Rprop", {"etas": (0.4, 1.3)}, None),
    ("optimizer", "rprop_family.py:RpropMinus", "Rprop", {}, "rprop_no_zeroing"),
    ("layer", "linear_family.py:Affine", "Linear", {}, None),
    ("layer", "linear_family.py:Dense", "Linear", {}, "linear_grad_mean_over_batch"),
    ("layer", "batchnorm_family.py:BatchNorm", "BatchNorm1d", BN, None),
    ("layer", "batchnorm_family.py:BatchNormKerasMomentum", "BatchNorm1d", BN,
     "batchnorm_keras_momentum"),
    ("layer", "batchnorm_family.py:BatchNormBiasedVar", "BatchNorm1d", BN,
     "batchnorm_biased_running_var"),
    ("layer", "batchnorm_family.py:BatchNormalization", "BatchNorm1d", BN,
     "batchnorm_keras_momentum_biased_var"),
    ("layer", "batchnorm_family.py:BatchNormRunningVarPlusEps", "BatchNorm1d", BN,
     "batchnorm_running_var_plus_eps"),
    ("layer", "relu.py:Relu", "ReLU", {}, None),
    ("layer", "activation_family.py:ReluGradOneAtZero", "ReLU", {}, "relu_grad_one_at_zero"),
    ("layer", "activation_family.py:Softmax", "Softmax", {}, None),
    ("layer", "activation_family.py:SoftmaxDiagonal", "Softmax", {},
     "softmax_diagonal_jacobian"),
    ("loss", "mse_family.py:MSELoss", "MSELoss", {}, None),
    ("loss", "mse_family.py:MSESum", "MSELoss", {}, "mse_sum"),
    ("loss", "mse_family.py:SumSquaredError", "MSELoss", {}, "mse_half_sum"),
    ("loss", "mse_family.py:MSEMeanOverBatch", "MSELoss", {}, "mse_mean_over_batch"),
    ("loss", "mse_family.py:AccumulatedMSE", "MSELoss", {"accumulation_steps": 4},
     "mse_accumulate_no_average"),
    ("loss", "ce_family.py:SoftmaxWithLoss", "CrossEntropyLoss", SMOOTH, None),
    ("loss", "ce_family.py:SoftmaxWithLossKMinus1", "CrossEntropyLoss", SMOOTH,
     "ce_label_smoothing_k_minus_1"),
    ("loss", "ce_family.py:SoftmaxWithLossSum", "CrossEntropyLoss", SMOOTH, "ce_sum"),
]
