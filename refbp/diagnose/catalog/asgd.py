"""ASGD conventions that differ from ``torch.optim.ASGD`` (refbp implementations, no torch).

torch (``refbp.optim.asgd``), at step ``t`` with the previous step's ``eta`` and ``mu``::

    theta <- theta * (1 - lambd * eta_{t-1}) - eta_{t-1} * g
    ax    <- ax + mu_{t-1} * (theta - ax)   (ax <- theta while mu = 1)
    eta_t = lr / (1 + lambd * lr * t) ** alpha;   mu_t = 1 / max(1, t - t0)

with ``eta`` and ``mu`` stored as 0-d tensors of torch's default dtype (float32 unless the
default dtype is float64), so the step size a float64 parameter sees is rounded to float32.
Code written in NumPy keeps them in float64; every variant here does, and changes at most one
more thing (:func:`asgd_variant_update`)::

    "asgd_float64_scalars":        eta and mu in float64, otherwise torch's
    "asgd_eta_current_step":       eta_t (this step's) instead of eta_{t-1}: the first step
                                   already decays (torch's first step is lr)
    "asgd_average_one_step_early": mu_t instead of mu_{t-1}: the average starts one iterate
                                   earlier (ax = mean of theta_{t0+1..t}; torch's of
                                   theta_{t0+2..t})
    "asgd_no_weight_shrink":       no theta * (1 - lambd * eta) factor (lambd only in the decay
                                   of eta)
    "asgd_decay_without_lr":       eta_t = lr / (1 + lambd * t) ** alpha (lr missing from the
                                   decay's time scale)

The averaging conventions change only the average ``ax``, which the check compares when the
user's optimizer keeps one refbp can read (``refbp.diagnose.trajectories.read_average``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant, with_update
from refbp.optim import ASGD

_FLOAT64 = "eta and mu are kept in float64 (torch stores them as 0-d tensors of its default " \
    "dtype, float32)"


def asgd_variant_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                        lr: Any, lambd: float, alpha: float, t0: float, weight_decay: float,
                        maximize: bool, eta_now: bool = False, mu_now: bool = False,
                        shrink: bool = True, lr_in_decay: bool = True) -> None:
    """One ASGD update in float64 with the switches of the module docstring (state as
    torch's ``ASGD``: ``step``, ``eta``, ``mu``, ``ax``)."""
    lr = float(lr)
    g = -grad if maximize else grad
    state["step"] += 1
    t = float(state["step"])
    if weight_decay != 0:
        g = g + weight_decay * param

    def eta_at(step: float) -> float:
        return lr / ((1 + lambd * (lr if lr_in_decay else 1.0) * step) ** alpha)

    # the state's eta starts as lr in torch's scalar dtype; in float64 it starts as lr
    eta = eta_at(t) if eta_now else lr if t == 1 else float(state["eta"])
    if shrink:
        param *= 1 - lambd * eta
    param -= eta * g
    mu = 1 / max(1, t - t0) if mu_now else float(state["mu"])
    ax = state["ax"]
    if mu != 1:
        ax += mu * (param - ax)
    else:
        ax[...] = param
    state["eta"] = np.array(eta_at(t))
    state["mu"] = np.array(1 / max(1, t - t0))


_asgd = partial(with_update, ASGD, asgd_variant_update)


def _lambd(options: dict[str, Any]) -> bool:
    return float(options.get("lambd", 1e-4)) != 0


def _averaging(options: dict[str, Any]) -> bool:
    """Averaging starts within a check's steps (torch's default t0 is 1e6)."""
    return float(options.get("t0", 1e6)) < 1000


VARIANTS = [
    Variant("asgd_float64_scalars", ("ASGD",),
            f"{_FLOAT64}, so the step size is not rounded to float32",
            "torch.optim.ASGD (_init_group: eta, mu = torch.as_tensor(..., "
            "dtype=_get_scalar_dtype())); any NumPy ASGD",
            lambda p, o, like: _asgd(p, o)),
    Variant("asgd_eta_current_step", ("ASGD",),
            "the step size of the current step is used, eta_t = lr / (1 + lambd*lr*t)^alpha "
            "at step t (torch uses the previous step's eta, so its first step is lr); "
            f"{_FLOAT64}",
            "Bottou (2012), 'Stochastic gradient descent tricks', Sec. 5.3 (gamma_t at step t)",
            lambda p, o, like: _asgd(p, o, eta_now=True)),
    Variant("asgd_average_one_step_early", ("ASGD",),
            "the averaging weight of the current step is used, mu_t = 1 / max(1, t - t0) at "
            "step t, so the average ax starts one iterate earlier (torch's uses mu_{t-1}); "
            f"{_FLOAT64}",
            "Polyak & Juditsky (1992): mean of the iterates from t0; a common off-by-one in "
            "incremental means",
            lambda p, o, like: _asgd(p, o, mu_now=True), _averaging),
    Variant("asgd_no_weight_shrink", ("ASGD",),
            "the weights are not shrunk by (1 - lambd*eta) each step (lambd only sets the "
            f"decay of the step size); {_FLOAT64}",
            "averaged SGD without the L2 term of Bottou's ASGD (Xu (2011) has it)",
            lambda p, o, like: _asgd(p, o, shrink=False), _lambd),
    Variant("asgd_decay_without_lr", ("ASGD",),
            "the step size decays as eta_t = lr / (1 + lambd*t)^alpha, without lr in the time "
            f"scale (torch: (1 + lambd*lr*t)^alpha); {_FLOAT64}",
            "Xu (2011), 'Towards optimal one pass large scale learning with averaged SGD', "
            "eq. 10 (gamma_0 inside the decay), misread",
            lambda p, o, like: _asgd(p, o, lr_in_decay=False), _lambd),
]
