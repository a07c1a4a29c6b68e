"""Every refbp scheduler vs torch's: 300 steps, the learning-rate sequence of every group.

Both sides run the same cases, the ``checks`` of each declared scheduler
(``refbp.registry.schedulers``): a case builds a scheduler from a scheduler *module*
(``refbp.optim.lr_scheduler`` or ``torch.optim.lr_scheduler``, and ``swa_utils``, which share
class names and signatures; ``lr_lambda`` names a function of ``refbp.parity.lr_lambdas``) and
an optimizer with two param groups (lr 0.1 and 0.03). Each step calls
``optimizer.step()`` (zero gradients) and then ``scheduler.step()``, as torch requires.
Recorded per step: ``get_last_lr()``, every group's lr, and the momentum / beta1 that
OneCycleLR cycles. Compared with ``refbp.metrics.discrepancy`` at the float64 tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from refbp.metrics import discrepancy
from refbp.nn.module import Parameter
from refbp.optim.adam import Adam
from refbp.optim.sgd import SGD
from refbp.parity.build import scheduler_from_spec, scheduler_modules
from refbp.parity.scenario import Spec
from refbp.parity.suites.options import scheduler_spec
from refbp.registry.schedulers import SCHEDULERS
from refbp.registry.schedulers import names as scheduler_names
from refbp.testing import assert_close
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

STEPS = 300
# the scheduler modules of each side (lr_scheduler, swa_utils), which share class names
RL = scheduler_modules("refbp.optim")
TL = scheduler_modules("torch.optim")
LRS = (0.1, 0.03)
TOL = tolerance_for("float64")


@dataclass(frozen=True)
class Case:
    """A declared check of a scheduler (``refbp.registry.schedulers``: ``checks``)."""

    name: str
    spec: Spec
    optimizer: str = "SGD"  # "SGD" (momentum) or "Adam" (betas)
    metric: bool = False  # ReduceLROnPlateau: step(metric)

    def build(self, M: Any, o: Any) -> Any:
        """The scheduler of modules ``M`` (refbp's or torch's scheduler modules) over ``o``."""
        return scheduler_from_spec(M, self.spec, o, self.name)


CASES = [Case(c.label(s.name), scheduler_spec(s.name, c.options), c.optimizer, s.steps_on_metric)
         for s in SCHEDULERS for c in s.checks]


def test_every_declared_scheduler_has_a_case() -> None:
    assert {c.name.split("-")[0] for c in CASES} == set(scheduler_names())
    assert len({c.name for c in CASES}) == len(CASES)


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
    if kind == "Adam":
        return torch.optim.Adam(groups, lr=LRS[0])
    return torch.optim.SGD(groups, lr=LRS[0], momentum=0.9)


def _refbp_optimizer(kind: str) -> Any:
    params = [Parameter(np.zeros(3)) for _ in LRS]
    for p in params:
        p.grad = np.zeros(3)
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS, strict=True)]
    if kind == "Adam":
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
