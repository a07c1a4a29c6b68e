"""The catalog test table: (kind, user spec in this folder, like, options, expected variant).

The user implementations live one file per family (``adam_family.py``, ``sgd_family.py``,
``batchnorm_family.py``, ...), one class per convention, so a spec is ``family.py:ClassName``.

``expected`` is the catalog variant name, or None for an implementation that matches torch.
Loaded by the tests with ``refbp.diagnose.load_user("tests/user_code/cases.py:CASES")``.
"""

from collections import Counter

ADAM = {"lr": 1e-2}
WD = {"lr": 1e-2, "weight_decay": 0.1}
MOM = {"lr": 0.1, "momentum": 0.9}
NESTEROV = {"lr": 0.1, "momentum": 0.9, "nesterov": True}
BN = {"momentum": 0.1}
SMOOTH = {"label_smoothing": 0.1}
ASGD_AVG = {"t0": 5}
LBFGS = {"lr": 0.1}
LBFGS_SHORT = {"lr": 0.1, "history_size": 3}
SPARSE = {"lr": 0.01}

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
    ("optimizer", "rprop_family.py:RpropPlus", "Rprop", {}, "rprop_plus_backtracking"),
    ("optimizer", "asgd_family.py:ASGDTorchScalars", "ASGD", ASGD_AVG, None),
    ("optimizer", "asgd_family.py:ASGD", "ASGD", ASGD_AVG, "asgd_float64_scalars"),
    ("optimizer", "asgd_family.py:ASGDEtaNow", "ASGD", ASGD_AVG, "asgd_eta_current_step"),
    ("optimizer", "asgd_family.py:ASGDAverageEarly", "ASGD", ASGD_AVG,
     "asgd_average_one_step_early"),
    ("optimizer", "asgd_family.py:ASGDNoShrink", "ASGD", {}, "asgd_no_weight_shrink"),
    ("optimizer", "asgd_family.py:ASGDDecayWithoutLr", "ASGD", {}, "asgd_decay_without_lr"),
    ("optimizer", "lbfgs_family.py:LBFGS", "LBFGS", LBFGS, None),
    ("optimizer", "lbfgs_family.py:LBFGSNoCurvatureCheck", "LBFGS", LBFGS,
     "lbfgs_no_curvature_check"),
    ("optimizer", "lbfgs_family.py:LBFGSReversedLoops", "LBFGS", LBFGS,
     "lbfgs_two_loop_reversed"),
    ("optimizer", "lbfgs_family.py:LBFGSIdentityH0", "LBFGS", LBFGS,
     "lbfgs_identity_initial_hessian"),
    ("optimizer", "lbfgs_family.py:LBFGSFirstStepLr", "LBFGS", LBFGS, "lbfgs_first_step_lr"),
    ("optimizer", "lbfgs_family.py:LBFGSFrozenHistory", "LBFGS", LBFGS_SHORT,
     "lbfgs_history_frozen"),
    ("optimizer", "adafactor_family.py:Adafactor", "Adafactor", {}, None),
    ("optimizer", "adafactor_family.py:AdafactorNoParameterScale", "Adafactor", {},
     "adafactor_no_parameter_scale"),
    ("optimizer", "adafactor_family.py:AdafactorPaperStep", "Adafactor", {"lr": 0.005},
     "adafactor_paper_relative_step"),
    ("optimizer", "adafactor_family.py:AdafactorEpsAdded", "Adafactor", {},
     "adafactor_eps1_added"),
    ("optimizer", "adafactor_family.py:AdafactorNoClipping", "Adafactor", {},
     "adafactor_no_update_clipping"),
    ("optimizer", "adafactor_family.py:AdafactorFixedBeta2", "Adafactor", {},
     "adafactor_fixed_beta2"),
    ("optimizer", "muon_family.py:Muon", "Muon", {}, "muon_newton_schulz_float64"),
    ("optimizer", "muon_family.py:MuonNoAdjust", "Muon", {}, "muon_lr_not_adjusted"),
    ("optimizer", "muon_family.py:MuonMatchRms", "Muon", {}, "muon_lr_match_rms_adamw"),
    ("optimizer", "muon_family.py:MuonNormPlusEps", "Muon", {}, "muon_norm_plus_eps"),
    ("optimizer", "sparseadam_family.py:SparseAdam", "SparseAdam", SPARSE, None),
    ("optimizer", "sparseadam_family.py:SparseAdamDense", "SparseAdam", SPARSE,
     "sparseadam_dense"),
    ("optimizer", "sparseadam_family.py:SparseAdamAdamEps", "SparseAdam", SPARSE,
     "sparseadam_adam_eps"),
    ("optimizer", "sparseadam_family.py:SparseAdamRowCounts", "SparseAdam", SPARSE,
     "sparseadam_row_step_counts"),
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


def in_default_run(oracle: str) -> list[bool]:
    """Which cases of ``CASES`` the default test run checks with ``oracle`` (``"refbp"``:
    tests/test_diagnose_catalog.py, ``"torch"``: parity_tests/test_diagnose_parity.py); the
    others are marked slow (``pytest -m slow`` checks them).

    Cases with the same torch counterpart and verdict (matches torch, or a catalog variant)
    form a group. A group of one case runs under both oracles; a larger group alternates, its
    first, third, ... case under refbp, its second, fourth, ... under torch. So the default
    run identifies every case once and puts every group before both oracles.
    """
    sizes = Counter((c[2], c[4] is None) for c in CASES)
    seen: Counter[tuple[str, bool]] = Counter()
    out = []
    for c in CASES:
        key = (c[2], c[4] is None)
        i = seen[key]
        seen[key] += 1
        out.append(sizes[key] == 1 or i % 2 == (0 if oracle == "refbp" else 1))
    return out
