"""The catalog test table: (kind, user spec in this folder, like, options, expected variant).

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
    ("optimizer", "adam_correct.py:Adam", "Adam", ADAM, None),
    ("optimizer", "adam_correct.py:Adam", "Adam", {}, None),
    ("optimizer", "adam_eps_inside_sqrt.py:Adam", "Adam", ADAM, "adam_eps_inside_sqrt"),
    ("optimizer", "adam_tf_eps_hat.py:Adam", "Adam", ADAM, "adam_tf_eps_hat"),
    ("optimizer", "adam_no_bias_correction.py:Adam", "Adam", ADAM, "adam_no_bias_correction"),
    ("optimizer", "adam_decoupled_wd.py:Adam", "Adam", WD, "adam_decoupled_weight_decay"),
    ("optimizer", "adamw_correct.py:Adam", "AdamW", WD, None),
    ("optimizer", "adamw_coupled_l2.py:Adam", "AdamW", WD, "adamw_coupled_l2"),
    ("optimizer", "adamw_wd_not_scaled.py:Adam", "AdamW", WD, "adamw_wd_not_scaled_by_lr"),
    ("optimizer", "sgd_correct.py:SGD", "SGD", MOM, None),
    ("optimizer", "sgd_correct.py:SGD", "SGD", NESTEROV, None),
    ("optimizer", "sgd_lr_in_buffer.py:Momentum", "SGD", MOM, "sgd_momentum_lr_in_buffer"),
    ("optimizer", "sgd_momentum_ema.py:Momentum", "SGD", MOM, "sgd_momentum_ema"),
    ("optimizer", "sgd_nesterov_sutskever.py:Nesterov", "SGD", NESTEROV,
     "sgd_nesterov_sutskever"),
    ("optimizer", "rmsprop_correct.py:RMSprop", "RMSprop", {"lr": 0.01}, None),
    ("optimizer", "rmsprop_eps_inside_sqrt.py:RMSprop", "RMSprop", {"lr": 0.01},
     "rmsprop_eps_inside_sqrt"),
    ("layer", "linear_correct.py:Affine", "Linear", {}, None),
    ("layer", "linear_grad_mean.py:Dense", "Linear", {}, "linear_grad_mean_over_batch"),
    ("layer", "batchnorm_correct.py:BatchNorm", "BatchNorm1d", BN, None),
    ("layer", "batchnorm_keras_momentum.py:BatchNorm", "BatchNorm1d", BN,
     "batchnorm_keras_momentum"),
    ("layer", "batchnorm_biased_var.py:BatchNorm", "BatchNorm1d", BN,
     "batchnorm_biased_running_var"),
    ("layer", "batchnorm_dlfs.py:BatchNormalization", "BatchNorm1d", BN,
     "batchnorm_keras_momentum_biased_var"),
    ("loss", "mse_correct.py:MSELoss", "MSELoss", {}, None),
    ("loss", "mse_sum.py:MSELoss", "MSELoss", {}, "mse_sum"),
    ("loss", "mse_half_sum.py:SumSquaredError", "MSELoss", {}, "mse_half_sum"),
    ("loss", "mse_mean_over_batch.py:MSELoss", "MSELoss", {}, "mse_mean_over_batch"),
    ("loss", "mse_accumulate.py:AccumulatedMSE", "MSELoss", {"accumulation_steps": 4},
     "mse_accumulate_no_average"),
    ("loss", "ce_correct.py:SoftmaxWithLoss", "CrossEntropyLoss", SMOOTH, None),
    ("loss", "ce_label_smoothing_k_minus_1.py:SoftmaxWithLoss", "CrossEntropyLoss", SMOOTH,
     "ce_label_smoothing_k_minus_1"),
    ("loss", "ce_sum.py:SoftmaxWithLoss", "CrossEntropyLoss", SMOOTH, "ce_sum"),
]
