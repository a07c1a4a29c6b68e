"""Every refbp scheduler vs torch's: 300 steps, the learning-rate sequence of every group.

Both sides run the same case table: a case builds a scheduler from a scheduler *module*
(``refbp.optim.lr_scheduler`` or ``torch.optim.lr_scheduler``, which share class names and
signatures) and an optimizer with two param groups (lr 0.1 and 0.03). Each step calls
``optimizer.step()`` (zero gradients) and then ``scheduler.step()``, as torch requires.
Recorded per step: ``get_last_lr()``, every group's lr, and the momentum / beta1 that
OneCycleLR cycles. Compared with ``refbp.metrics.discrepancy`` at the float64 tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as TL

from refbp.metrics import discrepancy
from refbp.nn.module import Parameter
from refbp.optim import lr_scheduler as RL
from refbp.optim.adam import Adam
from refbp.optim.sgd import SGD
from refbp.registry.schedulers import names as scheduler_names
from refbp.testing import assert_close
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

STEPS = 300
LRS = (0.1, 0.03)
TOL = tolerance_for("float64")


class Counter:
    """A callable object: its ``__dict__`` is saved by LambdaLR.state_dict (functions are not)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return 1.0 / (1.0 + self.rate * epoch)


def _seq(M: Any, o: Any) -> Any:
    return M.SequentialLR(o, [M.LinearLR(o, 0.1, total_iters=20), M.CosineAnnealingLR(o, 100),
                              M.ExponentialLR(o, 0.99)], milestones=[20, 150])


def _seq_warm(M: Any, o: Any) -> Any:
    return M.SequentialLR(o, [M.ConstantLR(o, 0.5, total_iters=10), M.StepLR(o, 25, 0.7)],
                          milestones=[10])


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Any, Any], Any]
    optimizer: str = "sgd"  # "sgd" (momentum) or "adam" (betas)
    metric: bool = False  # ReduceLROnPlateau: step(metric)


CASES = [
    Case("StepLR", lambda M, o: M.StepLR(o, step_size=7, gamma=0.5)),
    Case("StepLR-default-gamma", lambda M, o: M.StepLR(o, 30)),
    Case("MultiStepLR", lambda M, o: M.MultiStepLR(o, [10, 50, 200], gamma=0.3)),
    Case("MultiStepLR-repeated", lambda M, o: M.MultiStepLR(o, [50, 10, 50], gamma=0.5)),
    Case("ExponentialLR", lambda M, o: M.ExponentialLR(o, gamma=0.98)),
    Case("CosineAnnealingLR", lambda M, o: M.CosineAnnealingLR(o, T_max=300)),
    Case("CosineAnnealingLR-periodic", lambda M, o: M.CosineAnnealingLR(o, 40, eta_min=1e-3)),
    Case("CosineAnnealingLR-odd", lambda M, o: M.CosineAnnealingLR(o, 7, eta_min=0.01)),
    Case("CosineAnnealingWarmRestarts", lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=25)),
    Case("CosineAnnealingWarmRestarts-mult",
         lambda M, o: M.CosineAnnealingWarmRestarts(o, 10, T_mult=2, eta_min=1e-4)),
    Case("LinearLR", lambda M, o: M.LinearLR(o)),
    Case("LinearLR-decay", lambda M, o: M.LinearLR(o, 1.0, 0.05, total_iters=120)),
    Case("ConstantLR", lambda M, o: M.ConstantLR(o)),
    Case("ConstantLR-long", lambda M, o: M.ConstantLR(o, factor=0.25, total_iters=100)),
    Case("LambdaLR", lambda M, o: M.LambdaLR(o, lambda e: 0.97 ** e)),
    Case("LambdaLR-per-group", lambda M, o: M.LambdaLR(o, [Counter(0.01), lambda e: e % 7 + 1])),
    Case("MultiplicativeLR", lambda M, o: M.MultiplicativeLR(o, lambda e: 0.99)),
    Case("PolynomialLR", lambda M, o: M.PolynomialLR(o)),
    Case("PolynomialLR-power", lambda M, o: M.PolynomialLR(o, total_iters=200, power=1.7)),
    Case("OneCycleLR", lambda M, o: M.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS)),
    Case("OneCycleLR-linear-3phase",
         lambda M, o: M.OneCycleLR(o, 1.0, epochs=10, steps_per_epoch=31, pct_start=0.25,
                                   anneal_strategy="linear", three_phase=True)),
    Case("OneCycleLR-no-momentum",
         lambda M, o: M.OneCycleLR(o, 0.4, total_steps=320, cycle_momentum=False,
                                   div_factor=10.0, final_div_factor=100.0)),
    Case("OneCycleLR-betas",
         lambda M, o: M.OneCycleLR(o, 0.01, total_steps=STEPS, base_momentum=[0.8, 0.7],
                                   max_momentum=0.9), optimizer="adam"),
    Case("SequentialLR", _seq),
    Case("SequentialLR-warmup", _seq_warm),
    Case("ReduceLROnPlateau", lambda M, o: M.ReduceLROnPlateau(o), metric=True),
    Case("ReduceLROnPlateau-max-abs-cooldown",
         lambda M, o: M.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=3,
                                          threshold=1e-3, threshold_mode="abs", cooldown=4),
         metric=True),
    Case("ReduceLROnPlateau-min-lr-eps",
         lambda M, o: M.ReduceLROnPlateau(o, factor=0.5, patience=2, min_lr=[0.01, 0.0],
                                          eps=1e-3, threshold=0.05), metric=True),
    Case("CyclicLR", lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=20)),
    Case("CyclicLR-triangular2",
         lambda M, o: M.CyclicLR(o, [0.01, 0.005], [0.1, 0.2], step_size_up=15,
                                 step_size_down=25, mode="triangular2")),
    Case("CyclicLR-exp_range",
         lambda M, o: M.CyclicLR(o, 0.001, 0.1, step_size_up=11, mode="exp_range",
                                 gamma=0.995, base_momentum=0.7, max_momentum=0.95)),
    Case("CyclicLR-betas",
         lambda M, o: M.CyclicLR(o, 0.001, 0.01, step_size_up=9, base_momentum=[0.8, 0.75],
                                 max_momentum=0.9), optimizer="adam"),
    Case("CyclicLR-scale_fn",
         lambda M, o: M.CyclicLR(o, 0.01, 0.05, step_size_up=8, scale_fn=Counter(0.1),
                                 scale_mode="iterations", cycle_momentum=False)),
    Case("ChainedScheduler",
         lambda M, o: M.ChainedScheduler([M.ConstantLR(o, factor=0.5, total_iters=30),
                                          M.ExponentialLR(o, gamma=0.99)])),
    Case("ChainedScheduler-optimizer",
         lambda M, o: M.ChainedScheduler([M.LinearLR(o, 0.2, total_iters=40),
                                          M.CosineAnnealingLR(o, 60, eta_min=1e-3)],
                                         optimizer=o)),
]


def test_every_declared_scheduler_has_a_case() -> None:
    assert {c.name.split("-")[0] for c in CASES} == set(scheduler_names())


def _metrics() -> np.ndarray:
    """A noisy decreasing metric that then plateaus: exercises patience and cooldown."""
    rng = np.random.default_rng(0)
    t = np.arange(STEPS)
    return np.where(t < 120, 1.0 / (1.0 + t), 1.0 / 120) + 1e-3 * rng.standard_normal(STEPS)


def _torch_optimizer(kind: str) -> torch.optim.Optimizer:
    params = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in LRS]
    for p in params:
        p.grad = torch.zeros_like(p)
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS, strict=True)]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=LRS[0])
    return torch.optim.SGD(groups, lr=LRS[0], momentum=0.9)


def _refbp_optimizer(kind: str) -> Any:
    params = [Parameter(np.zeros(3)) for _ in LRS]
    for p in params:
        p.grad = np.zeros(3)
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS, strict=True)]
    if kind == "adam":
        return Adam(groups, lr=LRS[0])
    return SGD(groups, lr=LRS[0], momentum=0.9)


def _momentum(group: dict[str, Any]) -> float:
    return float(group["betas"][0] if "betas" in group else group["momentum"])


def _run(case: Case, M: Any, opt: Any, steps: int = STEPS,
         sched: Any = None, start: int = 0) -> tuple[np.ndarray, Any]:
    """Rows: step, then per group (last_lr, group lr, momentum)."""
    sched = case.build(M, opt) if sched is None else sched
    metric = _metrics()

    def row() -> list[float]:
        out: list[float] = []
        for lr, g in zip(sched.get_last_lr(), opt.param_groups, strict=True):
            out += [float(lr), float(g["lr"]), _momentum(g)]
        return out

    rows = [row()] if start == 0 else []
    for t in range(start, steps):
        opt.step()
        if case.metric:
            sched.step(float(metric[t]))
        else:
            sched.step()
        rows.append(row())
    return np.array(rows), sched


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_lr_sequence_matches_torch(case: Case) -> None:
    ours, sched = _run(case, RL, _refbp_optimizer(case.optimizer))
    theirs, tsched = _run(case, TL, _torch_optimizer(case.optimizer))
    assert ours.shape == (STEPS + 1, 3 * len(LRS))
    d = assert_close(ours, theirs, dtype="float64", name=case.name)
    assert d.max_rel <= TOL.normwise, f"{case.name}: worst relative lr error {d.max_rel:.3g}"
    # the schedule really moves (a constant sequence would prove nothing)
    assert np.ptp(theirs[:, 1]) > 0.0
    ours_sd, theirs_sd = sched.state_dict(), tsched.state_dict()
    assert set(ours_sd) == set(theirs_sd)


def _plain(value: Any) -> Any:
    """state-dict values in comparable form (Counter -> dict, tuples -> lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_state_dict_equals_torch_and_resumes(case: Case) -> None:
    """After 100 steps the state dicts are equal; torch's loads into refbp and continues."""
    half = 100
    _, ours = _run(case, RL, _refbp_optimizer(case.optimizer), steps=half)
    topt = _torch_optimizer(case.optimizer)
    _, theirs = _run(case, TL, topt, steps=half)
    assert _plain(ours.state_dict()) == _plain(theirs.state_dict())
    # fresh refbp scheduler + optimizer carrying torch's group hyperparameters
    ropt = _refbp_optimizer(case.optimizer)
    resumed = case.build(RL, ropt)
    for rg, tg in zip(ropt.param_groups, topt.param_groups, strict=True):
        rg.update({k: v for k, v in tg.items() if k != "params" and k in rg})
    resumed.load_state_dict(theirs.state_dict())
    rest, _ = _run(case, RL, ropt, sched=resumed, start=half)
    full, _ = _run(case, TL, _torch_optimizer(case.optimizer))
    d = discrepancy(rest, full[half + 1:], TOL)
    assert d.passed and d.max_rel <= TOL.normwise, f"{case.name} resumed: {d}"
