"""refbp.optim.LBFGS against torch.optim.LBFGS: closures on both sides.

L-BFGS's ``step`` re-evaluates the objective through a closure, up to ``max_eval`` times
(the line search included), so the checks of parity_tests/test_optim_parity.py, which hand
both optimizers one gradient per step, do not apply. Two designs instead, on the same four
small models (MLP with MSE and a 3-class classifier, float64 and float32), one optimizer per
model (LBFGS takes one parameter group):

- *identical closures* (every declared option set, torch's ``optim_db`` sets under both
  default dtypes): torch's closure copies torch's parameters into a twin refbp model and
  hands back the gradients refbp computes there, so both optimizers minimise the very same
  function and any difference is the optimizer's;
- *end to end* (the default set and the strong-Wolfe set): refbp.nn's closure against
  torch autograd's.

Every parameter is recorded after every step and compared as in test_optim_parity.py, at
the tolerances the declaration names (``refbp.tolerances.OVERRIDES["lbfgs_float64"]`` and
``["lbfgs_float32"]``, with the measured reason); the closure evaluations and iterations
torch's state counts must be equal.

L-BFGS amplifies a difference in the last bit (refbp's dot products go through NumPy's BLAS,
torch's through its own, in another order) through the curvature pairs it builds: each
step runs up to 20 iterations. The checks run :data:`STEPS` steps on the whole data set,
long enough for the memory to fill, wrap around (``history_size`` 2 and 3) and carry over
between steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from parity_tests.test_optim_parity import (
    KINDS,
    Task,
    Trajectory,
    _one_torch_thread,  # noqa: F401  (the autouse fixture: one torch thread)
    assert_same_state,
    db_kwargs,
    default,  # noqa: F401  (the fixture: torch's and refbp's default dtype)
    labels,
    make_tasks,
    option_sets,
    overrides,
)
from refbp import optim
from refbp.mirror.optim import (
    optimizer_state_from_torch,
    optimizer_state_to_torch,
    to_torch_optimizer,
    torch_hyperparameters,
)
from refbp.nn.module import Parameter
from refbp.parity.optim_cases import OptimCase, cases_for
from refbp.registry.optimizers import optimizer
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

STEPS = 3
FULL_BATCH = np.arange(64)
CASES = cases_for("LBFGS")


def torch_closure_of_refbp(task: Task, twin: Any, idx: np.ndarray) -> Callable[[], Any]:
    """torch's closure through refbp's function: torch's parameters are copied into the
    refbp model ``twin``, which computes the loss and gradients handed back to torch."""
    def closure() -> torch.Tensor:
        for tp, p in zip(task.tparams, twin.parameters(), strict=True):
            p.data[...] = tp.detach().numpy()
        twin.zero_grad()
        loss = task.loss(twin(task.x[idx]), task.y[idx])
        twin.backward(task.loss.backward())
        for tp, p in zip(task.tparams, twin.parameters(), strict=True):
            tp.grad = torch.from_numpy(p.grad.copy())
        return torch.tensor(float(loss), dtype=torch.float64)
    return closure


def torch_closure(task: Task, idx: np.ndarray) -> Callable[[], Any]:
    """torch's own closure: torch autograd on the torch model."""
    return lambda: task.torch_grads(idx)


def negated(closure: Callable[[], Any], grads: Callable[[], list[Any]]) -> Callable[[], Any]:
    """The closure of the negated objective: its loss and the gradients it fills negated
    (``grads`` lists them after a call)."""
    def negative() -> Any:
        loss = closure()
        for g in grads():
            g *= -1
        return -loss
    return negative


def run(tasks: list[Task], opts: list[Any], topts: list[torch.optim.Optimizer], steps: int,
        identical: bool, maximize: bool = False) -> Trajectory:
    """``steps`` steps of every task's pair of optimizers, each on the task's whole data set
    (L-BFGS's setting: a deterministic objective); with ``identical`` torch's closure goes
    through refbp's function. ``maximize`` optimizers get the negated loss, whose maximum
    is the loss's minimum (maximizing the loss itself diverges and overflows in float32)."""
    twins = [copy.deepcopy(t.model) for t in tasks]
    traj = Trajectory(labels(tasks), overrides("LBFGS"))
    for _ in range(steps):
        for t, twin, opt, topt in zip(tasks, twins, opts, topts, strict=True):
            idx = FULL_BATCH
            closure = t.refbp_closure(idx)
            tclosure = torch_closure_of_refbp(t, twin, idx) if identical else torch_closure(
                t, idx)
            if maximize:
                closure = negated(closure, lambda t=t: [p.grad for p in t.params])
                tclosure = negated(tclosure, lambda t=t: [p.grad for p in t.tparams])
            loss = opt.step(closure)
            tloss = topt.step(tclosure)
            assert np.isclose(float(loss), float(tloss), rtol=tolerance_for(t.x.dtype).rtol)
        traj.record([p for t in tasks for p in t.params], [p for t in tasks for p in t.tparams])
    for opt, topt in zip(opts, topts, strict=True):
        s, ts = next(iter(opt.state.values())), next(iter(topt.state.values()))
        assert (s["func_evals"], s["n_iter"]) == (ts["func_evals"], ts["n_iter"])
    return traj


def build(case: OptimCase, tasks: list[Task]) -> tuple[list[Any], list[Any]]:
    opts = [case.build(t.params) for t in tasks]
    return opts, [to_torch_optimizer(o, t.tparams) for o, t in zip(opts, tasks, strict=True)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_parity_with_identical_closures(case: OptimCase) -> None:
    tasks = make_tasks()
    traj = run(tasks, *build(case, tasks), STEPS, identical=True)
    assert len(traj.check(case.id)) == len(traj.labels) == 16


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("default", "strong_wolfe")],
                         ids=lambda c: c.id)
def test_end_to_end_training_parity(case: OptimCase) -> None:
    tasks = make_tasks(seed=1)
    run(tasks, *build(case, tasks), STEPS, identical=False).check(f"{case.id} end to end")


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("history", "wolfe_short")],
                         ids=lambda c: c.id)
def test_state_dict_interop_continues_the_trajectory(case: OptimCase) -> None:
    """After two steps torch's state (its history lists included) goes into a fresh refbp
    optimizer and refbp's into a fresh torch one; both continue torch's run."""
    tasks = make_tasks(KINDS[:1])
    t = tasks[0]
    opts, topts = build(case, tasks)
    run(tasks, opts, topts, 2, identical=True)
    r2 = case.build([Parameter(p.detach().numpy()) for p in t.tparams])
    r2.load_state_dict(optimizer_state_from_torch(topts[0].state_dict()))
    t2_params = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in t.params]
    # a torch older than a hyperparameter (LBFGS's maximize: 2.14) neither takes nor saves it;
    # refbp keeps its value (the default) in the group it loads into
    info = optimizer("LBFGS")
    in_torch = torch_hyperparameters(info)
    newer = {h.name: h.default for h in info.hyperparameters if h not in in_torch}
    t2 = torch.optim.LBFGS(t2_params, **{k: v for k, v in opts[0].defaults.items()
                                         if k not in newer})
    t2.load_state_dict(optimizer_state_to_torch(opts[0].state_dict()))
    theirs = optimizer_state_from_torch(topts[0].state_dict())
    theirs["param_groups"] = [{**newer, **g} for g in theirs["param_groups"]]
    assert_same_state(r2.state_dict(), theirs)
    twin = copy.deepcopy(t.model)
    traj = Trajectory(labels(tasks), overrides("LBFGS"))
    for _ in range(2):
        idx = FULL_BATCH
        r2_params = r2.param_groups[0]["params"]

        def closure(ps: list[Any] = r2_params, i: np.ndarray = idx) -> float:
            for p, q in zip(twin.parameters(), ps, strict=True):
                p.data[...] = q.data
            twin.zero_grad()
            loss = float(t.loss(twin(t.x[i]), t.y[i]))
            twin.backward(t.loss.backward())
            for p, q in zip(twin.parameters(), ps, strict=True):
                q.grad = p.grad.copy()
            return loss

        r2.step(closure)
        topts[0].step(torch_closure_of_refbp(t, twin, idx))
        traj.record(r2_params, t.tparams)
    traj.check(f"{case.id}: refbp<-torch vs torch")


def test_one_group_and_a_closure_are_required_as_in_torch() -> None:
    t = make_tasks(KINDS[:1])[0]
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": t.params[:2]}, {"params": t.params[2:]}])
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        torch.optim.LBFGS([{"params": t.tparams[:2]}, {"params": t.tparams[2:]}])
    with pytest.raises(TypeError, match="needs a closure"):
        optim.LBFGS(t.params).step(None)  # type: ignore[arg-type]


DB_CASES = [(i, d) for i, (d, _) in enumerate(option_sets("LBFGS", torch.float32))]


@pytest.mark.parametrize("index, desc", DB_CASES, ids=[d.replace(" ", "_") for _, d in DB_CASES])
def test_optim_db_option_set(index: int, desc: str, default: torch.dtype) -> None:  # noqa: F811
    """torch's ``optim_db`` LBFGS sets, refbp and torch built from the same keywords."""
    ours, kwargs = db_kwargs("LBFGS", index, desc, default)
    tasks = make_tasks()
    opts = [optim.LBFGS(t.params, **ours) for t in tasks]
    topts = [torch.optim.LBFGS(t.tparams, **kwargs) for t in tasks]
    traj = run(tasks, opts, topts, STEPS, identical=True, maximize=ours.get("maximize", False))
    assert len(traj.check(f"LBFGS ({desc}), default dtype {default}")) == 16
