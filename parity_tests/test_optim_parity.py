"""refbp.optim against torch.optim (foreach=False), driven by the case table
``refbp.parity.optim_cases``.

Every run trains four small models at once, one parameter group each: an MLP
(Linear(4,8)/Tanh/Linear(8,3)) with MSE and the same MLP as a 3-class classifier with
CrossEntropy, each in float64 and in float32, on seeded mini-batches of 16 (``refbp.data``).
The update rules act per parameter, so the groups are four independent trainings; sharing one
optimizer also exercises several groups and mixed dtypes in one ``step()``.

Two designs:

- *identical gradients* (every case, 100 steps): the refbp models compute the gradients and
  the very same arrays are handed to torch's parameters, which isolates the optimizer: any
  difference is the update rule's.
- *end to end* (the default case of every optimizer, 100 steps): refbp.nn computes refbp's
  gradients and torch autograd torch's, so model and optimizer are checked together.

Every parameter is recorded after every step and compared with ``refbp.metrics.discrepancy``
at the tolerance of its dtype (float64: normwise <= 1e-12; float32: <= 1e-5). State dicts are
carried across mid-run in both directions, and signatures, defaults and validation messages
are compared with torch's.

torch's own option sets (``optim_db`` of ``torch.testing._internal.common_optimizers``) run
too: refbp's optimizer and torch's are each built from the same keyword arguments (so the
defaults of both take part), 30 steps with identical gradients, under
``torch.set_default_dtype(torch.float64)`` and under the float32 default (torch keeps scalar
state such as NAdam's ``mu_product`` and a Tensor ``lr`` in the default dtype; refbp follows,
``refbp.optim.default_dtype``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from refbp import optim
from refbp.data import epoch_indices
from refbp.metrics import TINY, Discrepancy, discrepancy
from refbp.mirror import to_torch
from refbp.mirror.optim import (
    TORCH_ONLY_GROUP_KEYS,
    optimizer_state_from_torch,
    optimizer_state_to_torch,
    single_tensor,
    spec_to_torch_optimizer,
    to_torch_optimizer,
    torch_hyperparameters,
)
from refbp.optim.default_dtype import default_dtype
from refbp.parity.optim_cases import CASES, OptimCase, cases_for, default_case
from refbp.registry.optimizers import OPTIMIZERS as OPTIMIZER_INFOS
from refbp.registry.optimizers import OptimInfo, TensorLr, optimizer
from refbp.testing import assert_close
from refbp.tolerances import OVERRIDES, effective_tolerance

pytestmark = pytest.mark.parity

STEPS = 100
OPTIMIZERS = sorted({c.optimizer.__name__ for c in CASES})
#: The optimizers stepped without a closure on dense gradients; LBFGS (``OptimInfo.closure``)
#: and SparseAdam (``sparse_grads``) have their own modules, parity_tests/test_lbfgs_parity.py
#: and test_sparse_adam_parity.py.
STEPPED = [n for n in OPTIMIZERS if not (optimizer(n).closure or optimizer(n).sparse_grads)]
STEP_CASES = [c for c in CASES if c.optimizer.__name__ in STEPPED]
#: Option sets of each optimizer the default run takes (first, last, evenly spaced between);
#: the others are marked slow (``pytest -m slow``, which CI runs too).
DEFAULT_PER_OPTIMIZER = 4


def _spread(n: int, k: int) -> set[int]:
    """``k`` indexes of ``range(n)``, first to last, evenly spaced (all when ``n <= k``)."""
    return set(range(n)) if n <= k else {round(i * (n - 1) / (k - 1)) for i in range(k)}


def default_or_slow(items: list[Any], optimizer_of: Any, ids: list[str],
                    per_optimizer: int = DEFAULT_PER_OPTIMIZER) -> list[Any]:
    """``items`` as pytest params: :func:`_spread` of each optimizer's in the default run,
    the rest marked slow."""
    positions: dict[str, list[int]] = {}
    for k, x in enumerate(items):
        positions.setdefault(optimizer_of(x), []).append(k)
    keep = {j[i] for j in positions.values() for i in _spread(len(j), per_optimizer)}
    return [pytest.param(x, id=i, marks=() if k in keep else pytest.mark.slow)
            for k, (x, i) in enumerate(zip(items, ids, strict=True))]
KINDS = (("mse", np.float64), ("ce", np.float64), ("mse", np.float32), ("ce", np.float32))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny tensors: thread start-up would dominate (and oversubscribe shared cores)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# -- models and data --------------------------------------------------------------------------
@dataclass
class Task:
    """A refbp model and its torch mirror, a loss on both sides, data and seeded batches."""

    name: str
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

    def refbp_grads(self, idx: np.ndarray) -> float:
        """Fill the refbp model's gradients on batch ``idx`` (refbp.nn forward/backward);
        returns the loss."""
        self.model.zero_grad()
        loss = float(self.loss(self.model(self.x[idx]), self.y[idx]))
        self.model.backward(self.loss.backward())
        return loss

    def refbp_closure(self, idx: np.ndarray) -> Callable[[], float]:
        """The closure of batch ``idx`` on the refbp model (gradients refilled, loss)."""
        return lambda: self.refbp_grads(idx)

    def torch_grads(self, idx: np.ndarray) -> torch.Tensor:
        """Fill the torch model's gradients on batch ``idx`` (torch autograd); returns the
        loss."""
        self.tmodel.zero_grad()
        out = self.tmodel(torch.from_numpy(self.x[idx]))
        loss = self.tloss(out, torch.from_numpy(self.y[idx]))
        loss.backward()
        return loss.detach()


def make_task(kind: str, dtype: Any, seed: int = 0, bias: bool = True) -> Task:
    gen = np.random.default_rng([seed, 0 if kind == "mse" else 1])
    model = rnn.Sequential(rnn.Linear(4, 8, bias=bias, dtype=dtype, generator=gen), rnn.Tanh(),
                           rnn.Linear(8, 3, bias=bias, dtype=dtype, generator=gen))
    x = gen.standard_normal((64, 4)).astype(dtype)
    w, noise = gen.standard_normal((4, 3)), gen.standard_normal((64, 3))
    loss: rnn.Loss
    if kind == "mse":
        y: np.ndarray = (np.tanh(x @ w) + 0.1 * noise).astype(dtype)
        loss = rnn.MSELoss()
    else:
        y = np.argmax(x @ w + 0.3 * noise, axis=1).astype(np.int64)
        loss = rnn.CrossEntropyLoss()
    batch_rng = np.random.default_rng([seed, 2])

    def batches() -> Iterator[np.ndarray]:
        while True:
            yield from epoch_indices(64, mode="minibatch", batch_size=16, rng=batch_rng)

    return Task(f"{kind}/{np.dtype(dtype).name}", model, to_torch(model), loss, to_torch(loss),
                x, y, batches())


def make_tasks(kinds: tuple[tuple[str, Any], ...] = KINDS, seed: int = 0,
               optimizer_name: str = "") -> list[Task]:
    """The tasks of ``kinds``; without biases for an optimizer of 2-D parameters only
    (``OptimInfo.matrices_only``: Muon)."""
    bias = not (optimizer_name and optimizer(optimizer_name).matrices_only)
    return [make_task(kind, dtype, seed, bias) for kind, dtype in kinds]


def overrides(name: str) -> dict[str, dict[str, float]]:
    """dtype name -> the tolerance exception the checks of optimizer ``name`` take in that
    dtype (``OptimInfo.tolerance``: Muon's bfloat16, L-BFGS)."""
    return {dt: OVERRIDES[key] for dt, key in optimizer(name).tolerance.items()}


def groups(tasks: list[Task]) -> list[dict[str, Any]]:
    return [{"params": t.params} for t in tasks]


def tparams(tasks: list[Task]) -> list[torch.nn.Parameter]:
    return [p for t in tasks for p in t.tparams]


def labels(tasks: list[Task]) -> list[str]:
    return [f"{t.name} {n}" for t in tasks for n, _ in t.model.named_parameters()]


def copy_grads(src: list[Any], *dests: list[Any]) -> None:
    """Give every parameter of ``dests`` (refbp or torch) a copy of ``src``'s gradients."""
    for i, p in enumerate(src):
        g = None if p.grad is None else np.array(p.grad, copy=True)
        for dest in dests:
            if isinstance(dest[i], torch.Tensor):
                dest[i].grad = None if g is None else torch.from_numpy(g.copy())
            else:
                dest[i].grad = None if g is None else g.copy()


def as_array(p: Any) -> np.ndarray:
    return p.detach().numpy().copy() if isinstance(p, torch.Tensor) else p.data.copy()


# -- trajectories -----------------------------------------------------------------------------
@dataclass
class Trajectory:
    """Parameters of two runs after every step, compared per tensor once the run is over."""

    labels: list[str]
    tolerance: dict[str, dict[str, float]] = field(default_factory=dict)
    a: list[list[np.ndarray]] = field(default_factory=list)
    b: list[list[np.ndarray]] = field(default_factory=list)

    def record(self, a_params: list[Any], b_params: list[Any]) -> None:
        self.a.append([as_array(p) for p in a_params])
        self.b.append([as_array(p) for p in b_params])

    def check(self, where: str) -> dict[str, Discrepancy]:
        """Assert that every tensor agrees at every step; the worst discrepancy per tensor.

        All steps are screened at once (per-step normwise error and tolerance ratio); the steps
        worst by either figure then go through ``refbp.metrics.discrepancy``, which decides.
        """
        worst: dict[str, Discrepancy] = {}
        for i, label in enumerate(self.labels):
            a = np.stack([s[i] for s in self.a]).reshape(len(self.a), -1).astype(np.float64)
            b = np.stack([s[i] for s in self.b]).reshape(len(self.b), -1).astype(np.float64)
            dtype = self.a[0][i].dtype
            tol = effective_tolerance(dtype, self.tolerance.get(dtype.name))
            diff = np.abs(a - b)
            normwise = np.linalg.norm(diff, axis=1) / np.maximum(np.linalg.norm(b, axis=1), TINY)
            ratio = (diff / (tol.atol + tol.rtol * np.abs(b))).max(axis=1)
            for step in sorted({int(np.argmax(normwise)), int(np.argmax(ratio))}):
                d = discrepancy(self.a[step][i], self.b[step][i], tol)
                assert d.passed, (
                    f"refbp vs torch: {where}, step {step + 1}, tensor {label}, index "
                    f"{d.worst_index}: refbp {d.a_value!r} vs torch {d.b_value!r} "
                    f"(normwise {d.normwise:.3e}, tolerance ratio {d.tol_ratio:.3g})")
                if label not in worst or d.normwise > worst[label].normwise:
                    worst[label] = d
        return worst


# -- every case, identical gradients ------------------------------------------------------------
def identical_gradients(tasks: list[Task], opt: Any, topt: torch.optim.Optimizer,
                        steps: int) -> Trajectory:
    """``steps`` updates of both optimizers with the gradients refbp computes on ``tasks``."""
    params, tps = [p for g in opt.param_groups for p in g["params"]], tparams(tasks)
    traj = Trajectory(labels(tasks), overrides(type(opt).__name__))
    for _ in range(steps):
        for t in tasks:
            t.refbp_grads(next(t.batches))
        copy_grads(params, tps)
        opt.step()
        topt.step()
        traj.record(params, tps)
    return traj


@pytest.mark.parametrize("case", default_or_slow(STEP_CASES, lambda c: c.optimizer.__name__,
                                                 [c.id for c in STEP_CASES]))
def test_case_parity_with_identical_gradients(case: OptimCase) -> None:
    tasks = make_tasks(optimizer_name=case.optimizer.__name__)
    opt = case.build(groups(tasks))
    traj = identical_gradients(tasks, opt, to_torch_optimizer(opt, tparams(tasks)), STEPS)
    worst = traj.check(case.id)
    assert len(worst) == len(traj.labels) >= 8 and len(traj.a) == STEPS


# -- end to end: refbp.nn gradients vs torch autograd ------------------------------------------
@pytest.mark.parametrize("name", STEPPED)
def test_end_to_end_training_parity(name: str) -> None:
    tasks = make_tasks(seed=1, optimizer_name=name)
    opt = default_case(name).build(groups(tasks))
    topt = to_torch_optimizer(opt, tparams(tasks))
    traj = Trajectory(labels(tasks), overrides(name))
    for _ in range(STEPS):
        for t in tasks:
            idx = next(t.batches)
            t.refbp_grads(idx)
            t.torch_grads(idx)
        opt.step()
        topt.step()
        traj.record([p for t in tasks for p in t.params], tparams(tasks))
    traj.check(f"{name} end to end")


# -- skipping and per-group hyperparameters --------------------------------------------------
@pytest.mark.parametrize("name", STEPPED)
def test_grad_none_and_group_hyperparameters_parity(name: str) -> None:
    """Group 0 (the first layer) has its own lr and weight decay; the last parameter has no
    grad on odd steps and the first weight none for the first ten steps (its state starts
    late, as in torch)."""
    tasks = make_tasks(KINDS[:1], optimizer_name=name)
    params, tps = tasks[0].params, tparams(tasks)
    half = len(params) // 2
    opt = default_case(name).build([{"params": params[:half], "lr": 0.05, "weight_decay": 0.01},
                                    {"params": params[half:]}])
    topt = to_torch_optimizer(opt, tps)
    traj = Trajectory(labels(tasks), overrides(name))
    for step in range(1, 41):
        tasks[0].refbp_grads(next(tasks[0].batches))
        if step % 2:
            params[-1].grad = None
        if step <= 10:
            params[0].grad = None
        copy_grads(params, tps)
        opt.step()
        topt.step()
        traj.record(params, tps)
    traj.check(f"{name} groups / grad None")
    assert_same_state(opt.state_dict(), optimizer_state_from_torch(topt.state_dict()))


def assert_same_value(value: Any, other: Any, name: str) -> None:
    """Arrays: same dtype and shape, values to tolerance; lists (LBFGS's history) element by
    element; anything else (counters, Python floats) equal in type and value."""
    if isinstance(value, np.ndarray):
        assert isinstance(other, np.ndarray), name
        assert (value.dtype, value.shape) == (other.dtype, other.shape), name
        assert_close(value, other, name=name)
    elif isinstance(value, list):
        assert isinstance(other, list) and len(value) == len(other), name
        for i, (v, o) in enumerate(zip(value, other, strict=True)):
            assert_same_value(v, o, f"{name}[{i}]")
    elif isinstance(value, float):
        assert type(other) is float and np.isclose(value, other, rtol=1e-12), name
    else:
        assert (type(value), value) == (type(other), other), name


def assert_same_state(sd: dict[str, Any], tsd: dict[str, Any]) -> None:
    """Same ids, keys, dtypes and (to tolerance) values in two refbp-layout state dicts (the
    param groups without torch's implementation switches)."""
    assert sd["state"].keys() == tsd["state"].keys()
    for pid, s in sd["state"].items():
        assert s.keys() == tsd["state"][pid].keys(), pid
        for key, value in s.items():
            assert_same_value(value, tsd["state"][pid][key], f"state[{pid}][{key!r}]")

    def strip(sd: dict[str, Any]) -> list[dict[str, Any]]:
        # torch's implementation switches say how each library ran (the torch twins run
        # foreach=False; optimizer_state_from_torch drops them): compared by
        # test_param_groups_hold_torchs_keys_and_values for optimizers built alike
        return [{k: v for k, v in g.items() if k != "lr" and k not in TORCH_ONLY_GROUP_KEYS}
                for g in sd["param_groups"]]

    assert strip(sd) == strip(tsd)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert np.array_equal(g["lr"], tg["lr"]) and type(g["lr"]) is type(tg["lr"])


# -- state dicts across the boundary -------------------------------------------------------------
INTEROP = [c for c in STEP_CASES if c.name == "default"] + [
    c for c in CASES if c.id in ("SGD-nesterov", "Adam-amsgrad", "Adam-tensor_lr",
                                 "RMSprop-centered_momentum", "Adagrad-initial_acc",
                                 "NAdam-tensor_lr")]


@pytest.mark.parametrize("case", INTEROP, ids=lambda c: c.id)
def test_state_dict_interop_continues_the_trajectory(case: OptimCase) -> None:
    """Half-way, torch's state goes into a fresh refbp optimizer (r2) and refbp's into a fresh
    torch one (t2); all four runs then see the same gradients. Each reloaded run must follow
    the other side's original, and the two reloaded runs each other. The reloaded state must
    equal what torch's own ``load_state_dict`` makes of the same dict (t3), dtypes included:
    torch casts every floating state tensor but ``step`` to the parameter dtype (NAdam's
    float32 ``mu_product`` becomes float64 for float64 parameters; after 50 steps it is
    ~1e-17, so the trajectory is unaffected -- see tests/test_optim.py for an early reload).
    """
    name = case.optimizer.__name__
    tasks = make_tasks(KINDS[::2], optimizer_name=name)  # MSE, float64 and float32
    n = len(tasks[0].params)
    r_opt = case.build(groups(tasks))
    r_params, t_params = [p for t in tasks for p in t.params], tparams(tasks)
    t_opt = to_torch_optimizer(r_opt, t_params)
    for _ in range(STEPS // 2):
        for t in tasks:
            t.refbp_grads(next(t.batches))
        copy_grads(r_params, t_params)
        r_opt.step()
        t_opt.step()
    r2_params = [rnn.Parameter(p.detach().numpy()) for p in t_params]
    r2_opt = case.build([{"params": r2_params[:n]}, {"params": r2_params[n:]}])
    r2_opt.load_state_dict(optimizer_state_from_torch(t_opt.state_dict()))
    t2_params = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in r_params]
    torch_cls: Any = type(t_opt)
    t2_opt = torch_cls([{"params": t2_params[:n]}, {"params": t2_params[n:]}],
                       **single_tensor(name))
    t2_opt.load_state_dict(optimizer_state_to_torch(r_opt.state_dict()))
    t3_params = [torch.nn.Parameter(p.detach().clone()) for p in t_params]
    t3_opt = torch_cls([{"params": t3_params[:n]}, {"params": t3_params[n:]}],
                       **single_tensor(name))  # torch <- torch: refbp's load must do the same
    t3_opt.load_state_dict(t_opt.state_dict())
    assert_same_state(r2_opt.state_dict(), optimizer_state_from_torch(t3_opt.state_dict()))
    lab, tol = labels(tasks), overrides(name)
    reloaded, vs_torch, vs_refbp = Trajectory(lab, tol), Trajectory(lab, tol), Trajectory(lab, tol)
    for _ in range(STEPS // 2):
        for t in tasks:
            t.refbp_grads(next(t.batches))
        copy_grads(r_params, t_params, r2_params, t2_params)
        for o in (r_opt, t_opt, r2_opt, t2_opt):
            o.step()
        reloaded.record(r2_params, t2_params)
        vs_torch.record(r2_params, t_params)
        vs_refbp.record(r_params, t2_params)
    reloaded.check(f"{case.id}: refbp<-torch vs torch<-refbp")
    vs_torch.check(f"{case.id}: refbp<-torch vs torch")
    vs_refbp.check(f"{case.id}: refbp vs torch<-refbp")


# -- API surface ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_signature_and_defaults_match_torch(name: str) -> None:
    """refbp's class, its declaration and torch's class: same hyperparameters, defaults and
    keyword kinds; the declared torch-only switches are exactly those torch takes; the
    declared fixed group entries are torch's."""
    info = optimizer(name)
    ours = inspect.signature(getattr(optim, name)).parameters
    every = inspect.signature(info.torch_class()).parameters
    theirs = {k: v for k, v in every.items() if k not in TORCH_ONLY_GROUP_KEYS}
    in_torch = [h.name for h in torch_hyperparameters(info)]
    assert list(ours) == ["params", *info.defaults]
    assert list(theirs) == ["params", *in_torch]
    for key, p in theirs.items():
        assert (p.default, p.kind) == (ours[key].default, ours[key].kind), key
    for h in info.hyperparameters:
        assert (h.default, h.keyword_only) == (
            ours[h.name].default, ours[h.name].kind is inspect.Parameter.KEYWORD_ONLY)
        if h.name in in_torch:
            assert (h.default, h.keyword_only) == (
                every[h.name].default, every[h.name].kind is inspect.Parameter.KEYWORD_ONLY)
    assert set(info.torch_only) == set(every) & set(TORCH_ONLY_GROUP_KEYS)
    tgroup = info.torch_class()([torch.zeros(2, 2, requires_grad=True)]).param_groups[0]
    assert set(getattr(optim, name)([rnn.Parameter(np.zeros((2, 2)))]).defaults) - (
        set(info.defaults) - set(in_torch)) == set(tgroup) - {"params"}
    assert all(tgroup[k] == v for k, v in info.fixed.items())


def _switch_settings(info: OptimInfo) -> list[dict[str, Any]]:
    """No switch, foreach=False, and every switch torch takes given a non-default value refbp
    accepts (fused True, capturable/differentiable False)."""
    given = {k: (False if k == "foreach" else True if k == "fused" else False)
             for k in info.torch_only}
    return [{}, {k: v for k, v in given.items() if k == "foreach"}, given]


@pytest.mark.parametrize("info", OPTIMIZER_INFOS, ids=lambda o: o.name)
def test_param_groups_hold_torchs_keys_and_values(info: OptimInfo) -> None:
    """refbp's param groups and state_dict()["param_groups"] equal torch's, key for key and
    value for value (the implementation switches included), for every optimizer built with
    the same arguments: defaults, each declared option set, and the switches given."""
    shape = (3, 2)
    for settings in _switch_settings(info):
        for s in info.option_sets:
            if any(isinstance(v, TensorLr) for v in s.options.values()):
                continue  # a Tensor lr: its group entry is an array on one side
            ropt = info.numpy_class()([rnn.Parameter(np.zeros(shape))], **s.options, **settings)
            topt = info.torch_class()([torch.zeros(shape, requires_grad=True)], **s.options,
                                      **settings)
            newer = set(info.defaults) - {h.name for h in torch_hyperparameters(info)}
            rgroup = {k: v for k, v in ropt.param_groups[0].items()
                      if k != "params" and k not in newer}
            tgroup = {k: v for k, v in topt.param_groups[0].items() if k != "params"}
            assert rgroup == tgroup, (s.name, settings)
            rsd = [{k: v for k, v in g.items() if k not in newer}
                   for g in ropt.state_dict()["param_groups"]]
            assert rsd == topt.state_dict()["param_groups"], (s.name, settings)


@pytest.mark.parametrize("info", OPTIMIZER_INFOS, ids=lambda o: o.name)
def test_converters_handle_every_declared_optimizer(info: OptimInfo) -> None:
    """Both converters and both directions of the state dict, for every declaration."""
    task = make_task("mse", np.float64, bias=not info.matrices_only)
    opt = default_case(info.name).build(task.params)
    task.refbp_grads(np.arange(16))
    if not info.sparse_grads:  # SparseAdam's state dicts: test_sparse_adam_parity.py
        opt.step(task.refbp_closure(np.arange(16)) if info.closure else None)
    topt = to_torch_optimizer(opt, task.tparams)
    assert type(topt) is info.torch_class()
    back = optimizer_state_from_torch(topt.state_dict())  # NAdam: mu_product cast, see below
    assert {k: s.keys() for k, s in back["state"].items()} == {
        k: s.keys() for k, s in opt.state_dict()["state"].items()}
    fresh = spec_to_torch_optimizer(info.name, {}, task.tparams)
    assert type(fresh) is info.torch_class() and set(info.torch_only) <= set(
        fresh.param_groups[0])
    assert {k for s in opt.state.values() for k in s} <= info.state_keys


BAD_ARGS: list[tuple[str, dict[str, Any]]] = [
    (name, kw) for name in OPTIMIZERS for kw in (
        {"lr": -1.0}, {"weight_decay": -0.5}, {"eps": -1.0}, {"betas": (1.0, 0.5)},
        {"betas": (0.5, -0.5)}, {"betas": (0, 0.5)}, {"momentum": -0.5}, {"alpha": -1.0},
        {"rho": 1.5}, {"lr_decay": -1.0}, {"initial_accumulator_value": -1.0},
        {"momentum_decay": -1.0}, {"nesterov": True}, {"lr": np.array([1e-3, 1e-3])},
        {"etas": (1.0, 1.2)}, {"etas": (0.5, 0.9)}, {"etas": (0.0, 1.2)},
        {"eps": (-1e-30, 1e-3)}, {"eps": (None, -1.0)}, {"d": 0.5}, {"beta2_decay": 0.1},
        {"adjust_lr_fn": "other"}, {"lambd": -1.0}, {"weight_decay": -1.0, "lr": 0.1})
    if set(kw) <= set(inspect.signature(getattr(torch.optim, name)).parameters)
]


@pytest.mark.parametrize("name, kwargs", BAD_ARGS, ids=[f"{n}-{k}" for n, k in BAD_ARGS])
def test_validation_matches_torch(name: str, kwargs: dict[str, Any]) -> None:
    tkwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
               for k, v in kwargs.items()}
    try:
        getattr(torch.optim, name)([torch.zeros(2, 2, requires_grad=True)], **tkwargs)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc), match=f"^{re.escape(str(exc))}$"):
            getattr(optim, name)([rnn.Parameter(np.zeros((2, 2)))], **kwargs)
    else:
        getattr(optim, name)([rnn.Parameter(np.zeros((2, 2)))], **kwargs)


def test_to_torch_optimizer_copies_groups_and_state() -> None:
    task = make_task("ce", np.float64)
    opt = cases_for("Adam")[-1].build([{"params": task.params[:2], "lr": 0.01},
                                       {"params": task.params[2:]}])
    task.refbp_grads(np.arange(16))
    opt.step()
    topt = to_torch_optimizer(opt, task.tparams)
    assert type(topt) is torch.optim.Adam and all(not g["foreach"] for g in topt.param_groups)
    assert_same_state(opt.state_dict(), optimizer_state_from_torch(topt.state_dict()))
    assert isinstance(topt.param_groups[1]["lr"], torch.Tensor)
    with pytest.raises(ValueError, match="refbp optimizer has 4 parameters, got 3"):
        to_torch_optimizer(opt, task.tparams[:3])


def test_closure_returns_the_same_loss_as_torch() -> None:
    task = make_task("mse", np.float64)
    opt = optim.SGD(task.params, lr=0.1, momentum=0.9)
    topt = to_torch_optimizer(opt, task.tparams)
    idx = np.arange(32)

    def closure() -> float:
        task.refbp_grads(idx)
        return float(task.loss(task.model(task.x[idx]), task.y[idx]))

    def tclosure() -> Any:
        topt.zero_grad()
        out = task.tloss(task.tmodel(torch.from_numpy(task.x[idx])),
                         torch.from_numpy(task.y[idx]))
        out.backward()
        return out

    traj = Trajectory(labels([task]))
    for step in range(3):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        assert_close(np.array(loss), float(tloss.detach()), dtype="float64",
                     name=f"closure loss at step {step}")
        traj.record(task.params, task.tparams)
    traj.check("closure")


# -- torch's optim_db option sets, under both default dtypes ----------------------------------
try:  # torch.testing._internal imports expecttest (dev extra)
    from torch.testing._internal.common_optimizers import optim_db
except ImportError:  # pragma: no cover - without the dev extra
    optim_db = []

DB_STEPS = 30
DEFAULT_DTYPES = {"f64": torch.float64, "f32": torch.float32}
_DB = {i.optim_cls.__name__: i for i in optim_db if i.optim_cls.__name__ in OPTIMIZERS}


def option_sets(name: str, dtype: torch.dtype) -> list[tuple[str, dict[str, Any]]]:
    """``(description, kwargs)`` of torch's CPU option sets of one optimizer, generated under
    the default dtype ``dtype`` (a Tensor ``lr`` takes it)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        inputs = _DB[name].optim_inputs_func(device="cpu", dtype=dtype)
    finally:
        torch.set_default_dtype(saved)
    return [(oi.desc, oi.kwargs) for oi in inputs if oi.params is None]


DB_CASES = [(n, i, d) for n in sorted(set(_DB) & set(STEPPED))
            for i, (d, _) in enumerate(option_sets(n, torch.float32))]


@pytest.fixture(params=list(DEFAULT_DTYPES), ids=[f"default-{k}" for k in DEFAULT_DTYPES])
def default(request: pytest.FixtureRequest) -> Iterator[torch.dtype]:
    """torch's and refbp's default dtype set for the test, then restored."""
    dtype, saved = DEFAULT_DTYPES[request.param], torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with default_dtype(np.float64 if dtype == torch.float64 else np.float32):
            yield dtype
    finally:
        torch.set_default_dtype(saved)


def db_kwargs(name: str, index: int, desc: str, dtype: torch.dtype
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """torch's option set ``index`` of ``name`` under the default dtype ``dtype``: refbp's
    keywords (a Tensor lr as an array) and torch's."""
    got, kwargs = option_sets(name, dtype)[index]
    assert got == desc
    return {k: v.detach().numpy().copy() if isinstance(v, torch.Tensor) else v
            for k, v in kwargs.items()}, kwargs


def test_optim_db_covers_every_optimizer() -> None:
    pytest.importorskip("expecttest")
    assert set(_DB) == set(OPTIMIZERS) and len(DB_CASES) >= 50


@pytest.mark.parametrize("name, index, desc", [
    pytest.param(*p.values[0], id=p.id, marks=p.marks)
    for p in default_or_slow(DB_CASES, lambda c: c[0],
                             [f"{n}-{d.replace(' ', '_')}" for n, _, d in DB_CASES], 2)])
def test_optim_db_option_set(name: str, index: int, desc: str, default: torch.dtype) -> None:
    ours, kwargs = db_kwargs(name, index, desc, default)
    tasks = make_tasks(optimizer_name=name)
    opt = getattr(optim, name)(groups(tasks), **ours)
    topt = getattr(torch.optim, name)(tparams(tasks), **single_tensor(name), **kwargs)
    traj = identical_gradients(tasks, opt, topt, DB_STEPS)
    assert len(traj.check(f"{name} ({desc}), default dtype {default}")) == len(traj.labels)
