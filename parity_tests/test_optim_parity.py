"""refbp.optim against torch.optim (foreach=False), driven by the case table ``refbp.optim.cases``.

Two designs:

- *identical gradients* (every case x {MLP + MSE, classifier + CrossEntropy} x dtype, 100
  seeded mini-batch steps): the torch model computes the gradient at its current parameters
  and the very same arrays are handed to both optimizers, which isolates the optimizer: any
  difference is the update rule's.
- *end to end* (the default case of every optimizer): the refbp model computes its own
  gradients with refbp.nn, the torch mirror its own, so model and optimizer are checked
  together.

After every step every parameter is compared with ``refbp.metrics.discrepancy`` at the
tolerance of its dtype (float64: normwise <= 1e-12; float32: <= 1e-5). State dicts are carried
across mid-run in both directions, and signatures, defaults and error messages are compared
with torch's.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from refbp import optim
from refbp.data import epoch_indices
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror import to_torch
from refbp.mirror.optim import (
    TORCH_ONLY_GROUP_KEYS,
    optimizer_state_from_torch,
    optimizer_state_to_torch,
    to_torch_optimizer,
)
from refbp.optim.cases import CASES, OptimCase, cases_for, default_case
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

DTYPES = (np.float64, np.float32)
TASKS = ("mse", "ce")
STEPS = 100
OPTIMIZERS = sorted({c.optimizer.__name__ for c in CASES})


# -- the two tasks ----------------------------------------------------------------------------
@dataclass
class Task:
    """A refbp model, its torch mirror, a loss on both sides, data and seeded batches."""

    model: rnn.Sequential
    tmodel: torch.nn.Module
    loss: rnn.Loss
    tloss: torch.nn.Module
    x: np.ndarray
    y: np.ndarray
    batches: Iterator[np.ndarray]

    @property
    def params(self) -> list[rnn.Parameter]:
        return list(self.model.parameters())

    @property
    def tparams(self) -> list[torch.nn.Parameter]:
        return list(self.tmodel.parameters())

    def torch_grads(self, idx: np.ndarray) -> list[np.ndarray]:
        """Gradients of the torch model at its current parameters on batch ``idx``."""
        self.tmodel.zero_grad()
        target = torch.from_numpy(self.y[idx])
        self.tloss(self.tmodel(torch.from_numpy(self.x[idx])), target).backward()
        return [p.grad.numpy().copy() for p in self.tparams]

    def refbp_backward(self, idx: np.ndarray) -> None:
        """Fill the refbp model's gradients on batch ``idx`` (refbp.nn forward/backward)."""
        self.model.zero_grad()
        self.loss(self.model(self.x[idx]), self.y[idx])
        self.model.backward(self.loss.backward())


def make_task(kind: str, dtype: Any, seed: int = 0) -> Task:
    gen = np.random.default_rng(seed)
    model = rnn.Sequential(rnn.Linear(4, 8, dtype=dtype, generator=gen), rnn.Tanh(),
                           rnn.Linear(8, 3, dtype=dtype, generator=gen))
    x = gen.standard_normal((64, 4)).astype(dtype)
    if kind == "mse":
        y = (np.tanh(x @ gen.standard_normal((4, 3))) + 0.1 * gen.standard_normal((64, 3)))
        y = y.astype(dtype)
        loss: rnn.Loss = rnn.MSELoss()
    else:
        y = np.argmax(x @ gen.standard_normal((4, 3)) + 0.3 * gen.standard_normal((64, 3)),
                      axis=1).astype(np.int64)
        loss = rnn.CrossEntropyLoss()
    batch_rng = np.random.default_rng([seed, 1])

    def batches() -> Iterator[np.ndarray]:
        while True:
            yield from epoch_indices(64, mode="minibatch", batch_size=16, rng=batch_rng)

    return Task(model, to_torch(model), loss, to_torch(loss), x, y, batches())


# -- comparison -------------------------------------------------------------------------------
def compare(refbp_params: list[Any], torch_params: list[torch.Tensor], where: str,
            worst: list[Discrepancy]) -> None:
    """Assert every parameter agrees; keep the worst discrepancy seen in ``worst[0]``."""
    for i, (p, q) in enumerate(zip(refbp_params, torch_params, strict=True)):
        a, b = p.data, q.detach().numpy()
        d = discrepancy(a, b, tolerance_for(a.dtype))
        if not worst or d.normwise > worst[0].normwise:
            worst[:] = [d]
        assert d.passed, (
            f"refbp vs torch: {where}, parameter {i}, index {d.worst_index}: "
            f"refbp {d.a_value!r} vs torch {d.b_value!r} (normwise {d.normwise:.3e}, "
            f"tolerance ratio {d.tol_ratio:.3g})"
        )


def feed(grads: list[np.ndarray], refbp_params: list[Any], *torch_param_lists: Any) -> None:
    """Hand the same gradient arrays to refbp and to every torch parameter list."""
    for i, g in enumerate(grads):
        refbp_params[i].grad = None if g is None else g.copy()
        for tps in torch_param_lists:
            tps[i].grad = None if g is None else torch.from_numpy(g.copy())


def clone_params(task: Task) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in task.tparams]


# -- every case, identical gradients ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", TASKS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_parity_with_identical_gradients(case: OptimCase, kind: str, dtype: Any) -> None:
    task = make_task(kind, dtype)
    params, tparams = task.params, task.tparams
    opt = case.build(params)
    topt = to_torch_optimizer(opt, tparams)
    worst: list[Discrepancy] = []
    for step in range(1, STEPS + 1):
        feed(task.torch_grads(next(task.batches)), params)
        opt.step()
        topt.step()
        compare(params, tparams, f"{case.id} {kind} {np.dtype(dtype).name} step {step}", worst)
    assert worst[0].normwise <= tolerance_for(dtype).normwise


# -- end to end: refbp.nn gradients vs torch autograd ------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", TASKS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_end_to_end_training_parity(name: str, kind: str, dtype: Any) -> None:
    task = make_task(kind, dtype, seed=1)
    opt = default_case(name).build(task.params)
    topt = to_torch_optimizer(opt, task.tparams)
    worst: list[Discrepancy] = []
    for step in range(1, STEPS + 1):
        idx = next(task.batches)
        task.refbp_backward(idx)
        task.torch_grads(idx)
        opt.step()
        topt.step()
        compare(task.params, task.tparams, f"{name} end-to-end {kind} step {step}", worst)


# -- skipping, groups -----------------------------------------------------------------------
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_none_and_param_groups_parity(name: str) -> None:
    """Two groups with their own hyperparameters; the last bias has no grad on odd steps and
    the first weight none for the first ten steps (its state starts late, as in torch)."""
    task = make_task("mse", np.float64)
    params, tparams = task.params, task.tparams
    case = default_case(name)
    groups = [{"params": params[:2], "lr": 0.05, "weight_decay": 0.01},
              {"params": params[2:]}]
    opt = case.build(groups)
    topt = to_torch_optimizer(opt, tparams)
    assert [g["lr"] for g in topt.param_groups] == [g["lr"] for g in opt.param_groups]
    worst: list[Discrepancy] = []
    for step in range(1, 41):
        grads: list[Any] = task.torch_grads(next(task.batches))
        if step % 2:
            grads[3] = None
        if step <= 10:
            grads[0] = None
        feed(grads, params, tparams)
        opt.step()
        topt.step()
        compare(params, tparams, f"{name} groups/None step {step}", worst)
    tsd = optimizer_state_from_torch(topt.state_dict())
    assert_same_state(opt.state_dict(), tsd)


def assert_same_state(sd: dict[str, Any], tsd: dict[str, Any]) -> None:
    """Same ids, keys, dtypes and (to tolerance) values in two refbp-layout state dicts."""
    assert sd["state"].keys() == tsd["state"].keys()
    for pid, s in sd["state"].items():
        assert s.keys() == tsd["state"][pid].keys(), pid
        for key, value in s.items():
            other = tsd["state"][pid][key]
            assert value.dtype == other.dtype and value.shape == other.shape, (pid, key)
            d = discrepancy(value, other, tolerance_for(np.float64))
            assert d.passed, f"refbp vs torch: state[{pid}][{key!r}]: {d}"
    strip = [{k: v for k, v in g.items() if k != "lr"} for g in sd["param_groups"]]
    assert strip == [{k: v for k, v in g.items() if k != "lr"} for g in tsd["param_groups"]]


# -- state dicts across the boundary -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("default", "tensor_lr")]
                         + [c for c in CASES if c.name in ("amsgrad", "centered_momentum",
                                                           "nesterov", "initial_acc")],
                         ids=lambda c: c.id)
def test_state_dict_interop_continues_the_trajectory(case: OptimCase, dtype: Any) -> None:
    """Half-way, torch's state goes into a fresh refbp optimizer and refbp's into a fresh torch
    one; all four runs (two originals, two reloaded) then see the same gradients.

    Reloaded runs must match each other and their own original: after a reload torch casts
    NAdam's float32 ``mu_product`` to the parameter dtype, which refbp reproduces, so a
    reloaded NAdam in float64 is compared with the other side's reloaded run only (it leaves
    the uninterrupted trajectory by ~1e-12, torch's behaviour).
    """
    task = make_task("mse", dtype)
    r_params, t_params = task.params, task.tparams
    r_opt = case.build(r_params)
    t_opt = to_torch_optimizer(r_opt, t_params)
    for _ in range(STEPS // 2):
        feed(task.torch_grads(next(task.batches)), r_params, t_params)
        r_opt.step()
        t_opt.step()
    r2_params = [rnn.Parameter(p.detach().numpy()) for p in t_params]  # refbp <- torch state
    r2_opt = case.build(r2_params)
    r2_opt.load_state_dict(optimizer_state_from_torch(t_opt.state_dict()))
    t2_params = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in r_params]
    t2_opt = type(t_opt)(t2_params, foreach=False)  # torch <- refbp state
    t2_opt.load_state_dict(optimizer_state_to_torch(r_opt.state_dict()))
    t3_opt = type(t_opt)(clone_params(task), foreach=False)  # torch <- torch state
    t3_opt.load_state_dict(t_opt.state_dict())
    assert_same_state(r2_opt.state_dict(), optimizer_state_from_torch(t3_opt.state_dict()))
    reloaded_only = case.optimizer is optim.NAdam and dtype == np.float64
    worst: list[Discrepancy] = []
    for step in range(STEPS // 2 + 1, STEPS + 1):
        feed(task.torch_grads(next(task.batches)), r_params, t_params, t2_params)
        for p, g in zip(r2_params, r_params, strict=True):
            p.grad = g.grad.copy()
        for o in (r_opt, t_opt, r2_opt, t2_opt):
            o.step()
        where = f"{case.id} {np.dtype(dtype).name} step {step}"
        compare(r2_params, t2_params, f"{where}: refbp<-torch vs torch<-refbp", worst)
        if not reloaded_only:
            compare(r2_params, t_params, f"{where}: refbp<-torch vs torch", worst)
            compare(r_params, t2_params, f"{where}: refbp vs torch<-refbp", worst)


# -- API surface ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_signature_and_defaults_match_torch(name: str) -> None:
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = {k: v for k, v in inspect.signature(getattr(torch.optim, name)).parameters.items()
              if k not in TORCH_ONLY_GROUP_KEYS}
    assert list(ours) == list(theirs)
    for key, p in ours.items():
        assert (p.default, p.kind) == (theirs[key].default, theirs[key].kind), key
    tgroup = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).param_groups[0]
    assert set(getattr(optim, name)([rnn.Parameter(np.zeros(2))]).defaults) == (
        set(tgroup) - set(TORCH_ONLY_GROUP_KEYS) - {"params"})


BAD_ARGS: list[tuple[str, dict[str, Any]]] = [
    (name, kw) for name in OPTIMIZERS for kw in (
        {"lr": -1.0}, {"weight_decay": -0.5}, {"eps": -1.0}, {"betas": (1.0, 0.5)},
        {"betas": (0.5, -0.5)}, {"betas": (0, 0.5)}, {"momentum": -0.5}, {"alpha": -1.0},
        {"rho": 1.5}, {"lr_decay": -1.0}, {"initial_accumulator_value": -1.0},
        {"momentum_decay": -1.0}, {"nesterov": True}, {"lr": np.array([1e-3, 1e-3])})
    if set(kw) <= set(inspect.signature(getattr(torch.optim, name)).parameters)
]


@pytest.mark.parametrize("name, kwargs", BAD_ARGS, ids=[f"{n}-{k}" for n, k in BAD_ARGS])
def test_validation_matches_torch(name: str, kwargs: dict[str, Any]) -> None:
    tkwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
               for k, v in kwargs.items()}
    try:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **tkwargs)
    except ValueError as exc:
        with pytest.raises(ValueError, match=f"^{re.escape(str(exc))}$"):
            getattr(optim, name)([rnn.Parameter(np.zeros(2))], **kwargs)
    else:
        getattr(optim, name)([rnn.Parameter(np.zeros(2))], **kwargs)


def test_to_torch_optimizer_copies_groups_and_state() -> None:
    task = make_task("ce", np.float64)
    opt = cases_for("Adam")[-1].build([{"params": task.params[:2], "lr": 0.01},
                                       {"params": task.params[2:]}])
    task.refbp_backward(np.arange(16))
    opt.step()
    topt = to_torch_optimizer(opt, clone_params(task))
    assert type(topt) is torch.optim.Adam and all(not g["foreach"] for g in topt.param_groups)
    assert_same_state(opt.state_dict(), optimizer_state_from_torch(topt.state_dict()))
    assert isinstance(topt.param_groups[1]["lr"], torch.Tensor)
    with pytest.raises(ValueError, match="refbp optimizer has 4 parameters, got 3"):
        to_torch_optimizer(opt, clone_params(task)[:3])


def test_closure_returns_the_same_loss_as_torch() -> None:
    task = make_task("mse", np.float64)
    opt = optim.SGD(task.params, lr=0.1, momentum=0.9)
    topt = to_torch_optimizer(opt, task.tparams)
    idx = np.arange(32)

    def closure() -> float:
        task.refbp_backward(idx)
        return float(task.loss(task.model(task.x[idx]), task.y[idx]))

    def tclosure() -> torch.Tensor:
        topt.zero_grad()
        out = task.tloss(task.tmodel(torch.from_numpy(task.x[idx])),
                         torch.from_numpy(task.y[idx]))
        out.backward()
        return out

    for step in range(3):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        d = discrepancy(np.array(loss), tloss.detach().numpy(), tolerance_for(np.float64))
        assert d.passed, f"refbp vs torch closure loss at step {step}: {d}"
    compare(task.params, task.tparams, "closure", [])
