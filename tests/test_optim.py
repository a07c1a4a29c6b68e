"""Unit tests of refbp.optim (no torch): validation, param groups, state dicts, skipping,
closures, and one hand-computed trajectory per optimizer (the algorithm box, written out)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from refbp import optim
from refbp.metrics import discrepancy
from refbp.nn.module import Parameter
from refbp.nn.sparse import SparseGrad
from refbp.optim.muon import adjust_lr
from refbp.optim.optimizer import Optimizer
from refbp.parity.optim_cases import CASES, cases_for, default_case, tensor_lr
from refbp.registry.optimizers import OPTIMIZERS
from refbp.registry.optimizers import optimizer as optimizer_info
from refbp.tolerances import tolerance_for

F64 = tolerance_for(np.float64)
ALL = [info.numpy_class() for info in OPTIMIZERS]


def params(n: int = 2, dtype: Any = np.float64) -> list[Parameter]:
    rng = np.random.default_rng(0)
    return [Parameter(rng.standard_normal((3, 2)).astype(dtype)) for _ in range(n)]


def as_grad(p: Parameter, g: np.ndarray, sparse: bool) -> Any:
    """``g`` as the gradient of ``p``: the array, or (``sparse``: for SparseAdam) a
    :class:`SparseGrad` holding every row of it (two entries for row 0, to be coalesced)."""
    if not sparse:
        return g
    rows = np.concatenate([[0], np.arange(g.shape[0])])
    values = np.concatenate([g[:1] * 0.5, g[:1] * 0.5, g[1:]])
    return SparseGrad(rows, values, g.shape)


def set_grads(ps: list[Parameter], seed: int, sparse: bool = False) -> None:
    rng = np.random.default_rng(seed)
    for p in ps:
        p.grad = as_grad(p, rng.standard_normal(p.data.shape).astype(p.data.dtype), sparse)


def assert_close(actual: Any, expected: Any) -> None:
    d = discrepancy(actual, expected, F64)
    assert d.passed, f"refbp vs hand-computed: {d}"


# -- validation -----------------------------------------------------------------------------
ERRORS = [
    (optim.SGD, {"lr": -1.0}, "Invalid learning rate: -1.0"),
    (optim.SGD, {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    (optim.SGD, {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    (optim.SGD, {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "Nesterov momentum requires a momentum and zero dampening"),
    (optim.Adam, {"betas": (1.0, 0.0)}, "Invalid beta parameter at index 0: 1.0"),
    (optim.Adam, {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    (optim.Adam, {"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    (optim.Adam, {"betas": (0, 0.99)}, "betas must be either both floats or both Tensors"),
    (optim.AdamW, {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    (optim.RMSprop, {"alpha": -0.5}, "Invalid alpha value: -0.5"),
    (optim.RMSprop, {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    (optim.Adagrad, {"lr_decay": -0.5}, "Invalid lr_decay value: -0.5"),
    (optim.Adagrad, {"initial_accumulator_value": -1.0},
     "Invalid initial_accumulator_value value: -1.0"),
    (optim.Adadelta, {"rho": 1.1}, "Invalid rho value: 1.1"),
    (optim.Adamax, {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    (optim.NAdam, {"momentum_decay": -0.2}, "Invalid momentum_decay value: -0.2"),
    (optim.RAdam, {"betas": (-0.1, 0.9)}, "Invalid beta parameter at index 0: -0.1"),
    (optim.Adam, {"lr": np.array([0.1, 0.2])}, "Tensor lr must be 1-element"),
    (optim.Rprop, {"etas": (1.0, 1.2)}, "Invalid eta values: 1.0, 1.2"),
    (optim.Rprop, {"etas": (0.5, 1.0)}, "Invalid eta values: 0.5, 1.0"),
    (optim.ASGD, {"weight_decay": -0.5}, "Invalid weight_decay value: -0.5"),
    (optim.Adafactor, {"beta2_decay": 0.5}, "beta2_decay should be <= 0 but is: 0.5"),
    (optim.Adafactor, {"eps": (-1.0, 1e-3)}, "epsilon1 should be >= 0 but is: -1.0"),
    (optim.Adafactor, {"eps": (None, -1.0)}, "epsilon2 should be >= 0 but is: -1.0"),
    (optim.Adafactor, {"d": 0.5}, "Clipping threshold d should be >= 1 but is: 0.5"),
    (optim.Adafactor, {"weight_decay": -0.1}, "weight_decay should be >= 0 but is: -0.1"),
    (optim.Muon, {"momentum": -0.5}, "momentum should be >= 0 but is: -0.5"),
    (optim.Muon, {"weight_decay": -0.1}, "weight decay should be >= 0 but is: -0.1"),
    (optim.Muon, {"adjust_lr_fn": "rms"}, "Adjust learning rate function rms is not supported"),
]


@pytest.mark.parametrize("cls, kwargs, message", ERRORS,
                         ids=[f"{c.__name__}-{m[:30]}" for c, _, m in ERRORS])
def test_invalid_hyperparameters_raise_torch_messages(cls: type, kwargs: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls(params(), **kwargs)


#: torch's newer optimizers word the negative-lr message differently.
_LR_MESSAGE = {"Adafactor": "Learning rate should be >= 0 but is: -1.0",
               "Muon": "Learning rate should be >= 0 but is: -1.0"}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_negative_lr_is_rejected_by_every_optimizer(cls: type) -> None:
    message = _LR_MESSAGE.get(cls.__name__, "Invalid learning rate: -1.0")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls(params(), lr=-1.0)


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda o: o.name)
def test_torch_switches_are_accepted_or_refused_as_declared(info: Any) -> None:
    """``foreach``/``fused`` take any value, ``capturable``/``differentiable`` only False,
    where the torch class takes them; any other switch is an unexpected keyword."""
    from refbp.registry.optimizers import REFUSED_SWITCHES, SWITCH_DEFAULTS, SWITCHES

    cls = info.numpy_class()

    def make(**kw: Any) -> Any:
        return cls([Parameter(np.zeros((2, 2)))], **kw)

    group = make().param_groups[0]
    assert {k: group[k] for k in SWITCHES if k in group} == {
        k: SWITCH_DEFAULTS[k] for k in info.torch_only}
    for switch in SWITCHES:
        if switch not in info.torch_only:
            with pytest.raises(TypeError, match=f"unexpected keyword argument '{switch}'"):
                make(**{switch: False})
            continue
        make(**{switch: False})
        if switch in REFUSED_SWITCHES:
            with pytest.raises(ValueError, match=rf"^{info.name}\({switch}=True\) is not "
                               "supported: "):
                make(**{switch: True})
        else:
            opt = make(**{switch: True})
            assert opt.param_groups[0][switch] is True
            assert opt.state_dict()["param_groups"][0][switch] is True
            again = make()
            again.load_state_dict(opt.state_dict())
            assert again.param_groups[0][switch] is True
        if switch in REFUSED_SWITCHES:
            sd = make().state_dict()
            sd["param_groups"][0][switch] = True
            with pytest.raises(ValueError, match=rf"^{info.name}\({switch}=True\) is not"):
                make().load_state_dict(sd)


def test_switch_names_are_the_registry_s() -> None:
    from refbp.optim.optimizer import SWITCH_KEYS
    from refbp.registry.optimizers import SWITCH_DEFAULTS, SWITCHES

    assert SWITCH_KEYS == set(SWITCHES) == set(SWITCH_DEFAULTS)


def test_switches_stay_out_of_the_update_rule() -> None:
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.5, foreach=True, fused=False)
    p.grad = np.full(3, 2.0)
    opt.step()
    np.testing.assert_array_equal(p.data, np.zeros(3))
    assert opt.hyperparameters() == ("lr", "momentum", "dampening", "weight_decay",
                                     "nesterov", "maximize")


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="can only optimize refbp.nn.Parameter.*numpy.ndarray"):
        optim.SGD([np.zeros(3)])
    with pytest.raises(TypeError, match="should be an iterable"):
        optim.SGD(Parameter(np.zeros(3)))  # type: ignore[arg-type]
    p = params(1)[0]
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, p])
    opt = optim.SGD([p])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})


# -- param groups ---------------------------------------------------------------------------
def test_param_groups_take_defaults_and_overrides() -> None:
    a, b = params()
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert all(g["momentum"] == 0.9 and g["dampening"] == 0 for g in opt.param_groups)
    assert opt.param_groups[1]["params"] == [b]
    a0, b0 = a.data.copy(), b.data.copy()
    set_grads([a, b], 1)
    ga, gb = a.grad, b.grad
    assert ga is not None and gb is not None
    opt.step()
    np.testing.assert_array_equal(a.data, a0 - 0.1 * ga)
    np.testing.assert_array_equal(b.data, b0 - 0.5 * gb)


def test_add_param_group_later_and_named_parameters() -> None:
    a, b = params()
    opt = optim.Adam([("w", a)], lr=0.01)
    opt.add_param_group({"params": [("v", b)], "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["betas"] == (0.5, 0.6) and opt.param_groups[1]["lr"] == 0.01
    assert [g["param_names"] for g in opt.param_groups] == [["w"], ["v"]]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [Parameter(np.zeros(2))]})
    assert opt.state_dict()["param_groups"][1]["param_names"] == ["v"]


def test_zero_grad() -> None:
    ps = params()
    set_grads(ps, 0)
    opt = optim.SGD(ps)
    grad = ps[0].grad
    opt.zero_grad(set_to_none=False)
    assert grad is not None and ps[0].grad is grad and not grad.any()
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


# -- step: closure and skipping -------------------------------------------------------------
def test_step_returns_closure_loss_and_uses_its_gradients() -> None:
    p = Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure() -> float:
        calls.append(1)
        p.grad = 2.0 * p.data  # d/dp of sum(p^2)
        return float((p.data**2).sum())

    assert opt.step(closure) == 5.0 and len(calls) == 1
    np.testing.assert_array_equal(p.data, [0.5, -1.0])
    assert opt.step() is None


@pytest.mark.parametrize("case", [default_case(c) for c in ALL], ids=lambda c: c.id)
def test_parameters_without_grad_are_skipped(case: Any) -> None:
    a, b = params()
    opt = case.build([a, b])
    before_state = {k: dict(v) for k, v in opt.state.items()}
    b0 = b.data.copy()
    info = optimizer_info(case.optimizer.__name__)
    a.grad = as_grad(a, np.ones_like(a.data), info.sparse_grads)
    closure = (lambda: 0.0) if info.closure else None
    opt.step(closure)
    opt.step(closure)
    np.testing.assert_array_equal(b.data, b0)
    # Adagrad creates every state in its constructor (as torch); the others lazily.
    assert (b in opt.state) == (b in before_state)
    if b in opt.state:
        assert float(opt.state[b]["step"]) == 0.0
    if "step" in opt.state.get(a, {}):
        assert float(opt.state[a]["step"]) == 2.0
    assert not np.array_equal(a.data, params()[0].data)


def test_grad_shape_and_dtype_mismatch_raise() -> None:
    p = Parameter(np.zeros((2, 3)))
    opt = optim.Adam([p])
    p.grad = np.zeros(6)
    with pytest.raises(ValueError, match=r"grad of shape \(6,\) does not match.*\(2, 3\)"):
        opt.step()
    p.grad = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="grad dtype float32 does not match"):
        opt.step()


# -- state dicts ----------------------------------------------------------------------------
def quadratic_closure(ps: list[Parameter], seed: int) -> Callable[[], float]:
    """The closure of ``sum(0.5 |p - c|^2)`` with seeded centres ``c``: refills the gradients
    ``p - c`` and returns the loss."""
    rng = np.random.default_rng(seed)
    centres = [rng.standard_normal(p.data.shape).astype(p.data.dtype) for p in ps]

    def closure() -> float:
        for p, c in zip(ps, centres, strict=True):
            p.grad = p.data - c
        return float(sum(0.5 * np.sum((p.data - c) ** 2) for p, c in zip(ps, centres,
                                                                          strict=True)))
    return closure


def run(opt: Optimizer, ps: list[Parameter], seeds: range) -> None:
    """One step per seed: with seeded random gradients, or, for an optimizer whose step
    needs a closure (LBFGS), with the closure of a seeded quadratic."""
    for s in seeds:
        info = optimizer_info(type(opt).__name__)
        if info.closure:
            opt.step(quadratic_closure(ps, s))
            continue
        set_grads(ps, s, info.sparse_grads)
        opt.step()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_state_dict_round_trip_continues_identically(case: Any) -> None:
    ps1, ps2 = params(), params()
    opt1, opt2 = case.build(ps1), case.build(ps2)
    run(opt1, ps1, range(3))
    sd = opt1.state_dict()
    for p, q in zip(ps1, ps2, strict=True):
        q.data[...] = p.data
    opt2.load_state_dict(sd)
    if case.optimizer is optim.NAdam:
        # torch's load_state_dict casts every floating state tensor except ``step`` to the
        # parameter's dtype, so the float32 ``mu_product`` comes back as float64 -- and so
        # it does here; the uninterrupted run continues in float32. Do that cast by hand.
        assert all(s["mu_product"].dtype == np.float64 for s in opt2.state.values())
        for s in opt1.state.values():
            s["mu_product"] = s["mu_product"].astype(np.float64)
    run(opt1, ps1, range(3, 6))
    run(opt2, ps2, range(3, 6))
    for p, q in zip(ps1, ps2, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout_and_copies() -> None:
    ps = params()
    opt = optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}], amsgrad=True)
    run(opt, ps, range(2))
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.1 and "params" not in opt.defaults
    assert set(sd["state"]) == {0, 1}
    s0 = sd["state"][0]
    assert set(s0) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert s0["step"].shape == () and s0["step"].dtype == np.float32 and s0["step"] == 2
    s0["exp_avg"][...] = 123.0  # a copy: the optimizer is unaffected
    assert not (opt.state[ps[0]]["exp_avg"] == 123.0).any()


def test_load_state_dict_casts_state_to_param_dtype_but_keeps_step() -> None:
    p64, p32 = params(1)[0], params(1, np.float32)[0]
    opt64, opt32 = optim.NAdam([p64]), optim.NAdam([p32])
    run(opt64, [p64], range(2))
    opt32.load_state_dict(opt64.state_dict())
    state = opt32.state[p32]
    assert state["exp_avg"].dtype == np.float32 and state["step"].dtype == np.float32
    assert state["mu_product"].dtype == np.float32


LOAD_ERRORS: list[tuple[Callable[[dict[str, Any]], None], type, str]] = [
    (lambda sd: sd.update(extra=1), KeyError, r"unexpected \['extra'\]"),
    (lambda sd: sd.pop("state"), KeyError, r"missing \['state'\]"),
    (lambda sd: sd["param_groups"][0].update(momentum=0.9), KeyError,
     r"unexpected key\(s\) \['momentum'\] in param_groups\[0\].*optimizer_state_from_torch"),
    (lambda sd: sd["state"][0].update(bogus=np.zeros(1)), KeyError,
     r"unexpected state key\(s\) \['bogus'\] for parameter 0"),
    (lambda sd: sd["state"].update({7: {}}), KeyError, "parameter id 7"),
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), ValueError,
     "different number of parameter groups"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), ValueError,
     "doesn't match the size of optimizer's group"),
    (lambda sd: sd["state"][1].update(exp_avg=np.zeros((2, 2))), ValueError,
     r"state\[1\]\['exp_avg'\] has shape \(2, 2\), expected \(3, 2\) "
     r"\(its parameter has shape \(3, 2\)\)"),
]


@pytest.mark.parametrize("mutate, exc, message", LOAD_ERRORS)
def test_load_state_dict_rejects_bad_dicts(mutate: Callable[[dict[str, Any]], None],
                                          exc: type, message: str) -> None:
    ps = params()
    opt = optim.Adam(ps)
    run(opt, ps, range(1))
    sd = opt.state_dict()
    mutate(sd)
    with pytest.raises(exc, match=message):
        optim.Adam(params()).load_state_dict(sd)


def test_scheduler_keys_survive_a_round_trip() -> None:
    ps = params()
    opt = optim.SGD(ps, lr=0.1)
    opt.param_groups[0]["initial_lr"] = 0.1
    sd = opt.state_dict()
    opt2 = optim.SGD(params(), lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["initial_lr"] == 0.1 and opt2.param_groups[0]["lr"] == 0.1


# -- the case table -------------------------------------------------------------------------
def test_case_table_covers_every_optimizer_and_builds() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    for cls in ALL:
        names = {c.name for c in cases_for(cls)}
        assert {"default", "tensor_lr"} <= names, cls.__name__
    for case in CASES:
        opt = case.build(params())
        assert isinstance(opt, case.optimizer) and case.description
    a, b = default_case("SGD").build(params()), cases_for("SGD")[2].build(params())
    assert isinstance(b.defaults["lr"], np.ndarray) and a.defaults["lr"] == 1e-3
    assert b.defaults["lr"] is not cases_for("SGD")[2].options["lr"]


def test_adamw_is_adam_with_decoupled_weight_decay() -> None:
    ps1, ps2 = params(), params()
    o1 = optim.AdamW(ps1, weight_decay=0.1, amsgrad=True)
    o2 = optim.Adam(ps2, weight_decay=0.1, amsgrad=True, decoupled_weight_decay=True)
    run(o1, ps1, range(4))
    run(o2, ps2, range(4))
    np.testing.assert_array_equal(ps1[0].data, ps2[0].data)
    assert o1.defaults["weight_decay"] == 0.1 and optim.AdamW(params()).defaults[
        "weight_decay"] == 1e-2


def test_tensor_lr_makes_step_size_float32() -> None:
    p = Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=tensor_lr(0.1))
    p.grad = np.array([1.0])
    opt.step()
    assert p.data[0] == 1.0 - float(np.float32(0.1)) and p.data[0] != 0.9


def test_repr_lists_groups() -> None:
    text = repr(optim.SGD(params(), lr=0.1))
    assert text.startswith("SGD (\nParameter Group 0") and "    lr: 0.1" in text


# -- hand-computed trajectories (the algorithm boxes, written with plain NumPy) -------------
G = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.2, 1.5]), np.array([1.0, 0.4, -0.6]),
     np.array([0.7, -0.9, 0.1]), np.array([-0.2, 0.3, 0.8]), np.array([0.6, 0.5, -1.1]),
     np.array([0.1, -0.4, 0.9])]
THETA0 = np.array([1.0, -0.5, 0.25])


def box_sgd(lr: float = 0.1, mu: float = 0.9, tau: float = 0.5, wd: float = 0.1) -> list[Any]:
    theta, b, out = THETA0.copy(), None, []
    for g in G:
        g = g + wd * theta
        b = g if b is None else mu * b + (1 - tau) * g
        theta = theta - lr * b
        out.append(theta)
    return out


def box_adam(lr: float = 0.1, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
             wd: float = 0.1, amsgrad: bool = True, decoupled: bool = False) -> list[Any]:
    theta, out = THETA0.copy(), []
    m: Any = 0.0
    v: Any = 0.0
    vmax: Any = 0.0
    for t, g in enumerate(G, 1):
        if decoupled:
            theta = theta - lr * wd * theta
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        vmax = np.maximum(vmax, v) if amsgrad else v
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(vmax / (1 - b2**t)) + eps)
        out.append(theta)
    return out


def box_rmsprop(lr: float = 0.01, alpha: float = 0.9, eps: float = 1e-8, mu: float = 0.5,
                wd: float = 0.1) -> list[Any]:
    theta, v, gave, b, out = THETA0.copy(), np.zeros(3), np.zeros(3), np.zeros(3), []
    for g in G:
        g = g + wd * theta
        v = alpha * v + (1 - alpha) * g**2
        gave = alpha * gave + (1 - alpha) * g
        b = mu * b + g / (np.sqrt(v - gave**2) + eps)
        theta = theta - lr * b
        out.append(theta)
    return out


def box_adagrad(lr: float = 0.1, decay: float = 0.5, wd: float = 0.1, tau: float = 0.2,
                eps: float = 1e-10) -> list[Any]:
    theta, s, out = THETA0.copy(), tau, []
    for t, g in enumerate(G, 1):
        g = g + wd * theta
        s = s + g**2
        theta = theta - lr / (1 + (t - 1) * decay) * g / (np.sqrt(s) + eps)
        out.append(theta)
    return out


def box_adadelta(lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 wd: float = 0.1) -> list[Any]:
    theta, v, u, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for g in G:
        g = g + wd * theta
        v = rho * v + (1 - rho) * g**2
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx**2
        theta = theta - lr * dx
        out.append(theta)
    return out


def box_adamax(lr: float = 0.1, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
               wd: float = 0.1) -> list[Any]:
    theta, out = THETA0.copy(), []
    m: Any = 0.0
    u: Any = 0.0
    for t, g in enumerate(G, 1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - lr * m / ((1 - b1**t) * u)
        out.append(theta)
    return out


def box_nadam(lr: float = 0.1, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
              psi: float = 4e-3, wd: float = 0.1) -> list[Any]:
    theta, m, v, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    mus = [b1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in range(1, len(G) + 2)]
    for t, g in enumerate(G, 1):
        theta = theta - lr * wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        # torch keeps prod(mu_i) as a float32 0-d tensor: round it the same way.
        prod_t = np.float32(1.0)
        for mu in mus[:t]:
            prod_t = np.float32(prod_t * np.float32(mu))
        prod_next = float(prod_t) * mus[t]
        mhat = mus[t] * m / (1 - prod_next) + (1 - mus[t - 1]) * g / (1 - float(prod_t))
        theta = theta - lr * mhat / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(theta)
    return out


def box_radam(lr: float = 0.1, b1: float = 0.8, b2: float = 0.9, eps: float = 1e-8,
              wd: float = 0.1) -> list[Any]:
    theta, m, v, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(G, 1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > 5:
            lt = np.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            rt = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            theta = theta - lr * mhat * rt * lt
        else:
            theta = theta - lr * mhat
        out.append(theta)
    return out


def box_rprop(lr: float = 0.1, etas: tuple[float, float] = (0.5, 1.3),
              sizes: tuple[float, float] = (0.04, 0.15)) -> list[Any]:
    """Element by element, with torch's clamp in every branch."""
    theta, prev, eta, out = THETA0.copy(), np.zeros(3), np.full(3, lr), []
    for g in G:
        g = g.copy()
        for i in range(3):
            if prev[i] * g[i] > 0:
                eta[i] = min(eta[i] * etas[1], sizes[1])
            elif prev[i] * g[i] < 0:
                eta[i] = max(eta[i] * etas[0], sizes[0])
                g[i] = 0.0
            else:
                eta[i] = min(max(eta[i], sizes[0]), sizes[1])
        theta = theta - eta * np.sign(g)
        prev = g
        out.append(theta)
    return out


def box_asgd(lr: float = 0.1, lambd: float = 0.05, alpha: float = 0.75, t0: float = 3,
             wd: float = 0.1) -> list[Any]:
    """The box in float64; torch keeps eta and mu as float32 scalars (default dtype), so the
    expected values round them as torch's state does."""
    theta, eta, mu, ax, out = THETA0.copy(), np.float32(lr), 1.0, np.zeros(3), []
    for t, g in enumerate(G, 1):
        g = g + wd * theta
        theta = theta * (1 - lambd * float(eta)) - float(eta) * g
        ax = ax + float(mu) * (theta - ax) if mu != 1 else theta.copy()
        eta = np.float32(lr / (1 + lambd * lr * t) ** alpha)
        mu = np.float32(1 / max(1, t - t0))
        out.append(theta)
    return out


def box_adafactor(lr: float = 0.5, tau: float = -0.8, eps2: float = 1e-3, d: float = 1.0,
                  wd: float = 0.1) -> list[Any]:
    """The vector branch (a 1-D parameter): V_t is a running mean of G^2."""
    theta, v, out = THETA0.copy(), np.zeros(3), []
    eps1 = np.finfo(np.float64).eps
    for t, g in enumerate(G, 1):
        beta2 = 1 - t**tau
        rho = min(lr, 1 / np.sqrt(t))
        alpha = max(eps2, np.sqrt(np.mean(theta**2))) * rho
        theta = theta - lr * wd * theta
        v = beta2 * v + (1 - beta2) * g**2
        u = g / np.maximum(np.sqrt(v), eps1)
        u_hat = u / max(1.0, np.sqrt(np.mean(u**2)) / d)
        theta = theta - alpha * u_hat
        out.append(theta)
    return out


def box_muon(lr: float = 0.1, wd: float = 0.1, mu: float = 0.9,
             coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315)) -> list[Any]:
    """A 1x3 matrix (exact arithmetic): its one singular value s goes through the quintic
    a s + b s^3 + c s^5 five times after the normalisation to s = 1, and O = s_5 u / |u|.
    torch's momentum is the lerp form B <- mu B + (1 - mu) g, Nesterov input g + mu (B - g);
    the adjusted lr is lr * sqrt(max(1, 1/3)) = lr."""
    a, b, c = coefficients
    theta, buf, out = THETA0.copy(), np.zeros(3), []
    for g in G:
        buf = mu * buf + (1 - mu) * g
        u = g + mu * (buf - g)
        s = 1.0
        for _ in range(5):
            s = a * s + b * s**3 + c * s**5
        theta = theta * (1 - lr * wd) - lr * s * u / np.linalg.norm(u)
        out.append(theta)
    return out


#: The objectives of the closure-driven box (LBFGS): at step k, 0.5 x^T A x - G[k].x, whose
#: gradient is A x - G[k].
A_SPD = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])


def quadratic(x: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    return float(0.5 * x @ A_SPD @ x - G[k] @ x), A_SPD @ x - G[k]


def box_lbfgs(lr: float = 0.5, m: int = 2, iters: int = 3, tol_grad: float = 1e-7,
              tol_change: float = 1e-9) -> list[Any]:
    """L-BFGS without line search, ``iters`` iterations per step and at most
    ``iters * 5 // 4`` evaluations of the objective (torch's default ``max_eval``), history
    ``m``; the memory (pairs, last direction and step, last gradient) carries over from step
    to step."""
    theta, out = THETA0.copy(), []
    dirs: list[np.ndarray] = []
    stps: list[np.ndarray] = []
    d, t, g_prev, h0, n = np.zeros(3), 0.0, np.zeros(3), 1.0, 0
    for k in range(len(G)):
        f, g = quadratic(theta, k)
        evals = 1
        for it in range(1, iters + 1):
            if np.abs(g).max() <= tol_grad:
                break
            n += 1
            if n == 1:
                d = -g
            else:
                y, s = g - g_prev, t * d
                if y @ s > 1e-10:
                    if len(dirs) == m:
                        dirs.pop(0)
                        stps.pop(0)
                    dirs.append(y)
                    stps.append(s)
                    h0 = (y @ s) / (y @ y)
                q, alphas = -g, []
                for y_i, s_i in reversed(list(zip(dirs, stps, strict=True))):
                    alphas.append((s_i @ q) / (y_i @ s_i))
                    q = q - alphas[-1] * y_i
                r = h0 * q
                for (y_i, s_i), a_i in zip(zip(dirs, stps, strict=True), reversed(alphas),
                                           strict=True):
                    r = r + (a_i - (y_i @ r) / (y_i @ s_i)) * s_i
                d = r
            g_prev, f_prev = g.copy(), f
            t = min(1.0, 1.0 / np.abs(g).sum()) * lr if n == 1 else lr
            if g @ d > -tol_change:
                break
            theta = theta + t * d
            if it == iters:
                break
            f, g = quadratic(theta, k)
            evals += 1
            if evals >= iters * 5 // 4:
                break
            if np.abs(t * d).max() <= tol_change or abs(f - f_prev) < tol_change:
                break
        out.append(theta)
    return out


def touched(k: int) -> np.ndarray:
    """The rows of THETA0 (as a 3x1 matrix) the sparse gradient of step k holds."""
    return np.array([i for i in range(3) if (i + k) % 3 != 0])


def box_sparse_adam(lr: float = 0.1, b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8) -> list[Any]:
    """Adam on the touched rows only; the step count t is global."""
    theta, m, v, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(G, 1):
        rows = touched(t - 1)
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        theta[rows] = theta[rows] - alpha * m[rows] / (np.sqrt(v[rows]) + eps)
        out.append(theta.copy())
    return out


#: Muon's Newton-Schulz iteration runs in bfloat16 (8 significant bits): each of its 16
#: roundings per step (1 normalisation, 3 per iteration) moves O by <= 2^-8 relative, so
#: |O_refbp - O_box| <= ~16 * 2^-8 * |O| per step; times lr 0.1 over 7 steps, <= 0.05.
BOX_TOLERANCE = {"Muon": replace(F64, normwise=5e-2, atol=5e-2, rtol=0.0)}
BOX_SHAPE = {"Muon": (1, 3), "SparseAdam": (3, 1)}


HAND = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}, box_sgd),
    (optim.Adam, {"lr": 0.1, "weight_decay": 0.1, "amsgrad": True}, box_adam),
    (optim.AdamW, {"lr": 0.1, "weight_decay": 0.1},
     lambda: box_adam(amsgrad=False, decoupled=True)),
    (optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
                     "weight_decay": 0.1}, box_rmsprop),
    (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1,
                     "initial_accumulator_value": 0.2}, box_adagrad),
    (optim.Adadelta, {"weight_decay": 0.1}, box_adadelta),
    (optim.Adamax, {"lr": 0.1, "weight_decay": 0.1}, box_adamax),
    (optim.NAdam, {"lr": 0.1, "weight_decay": 0.1, "decoupled_weight_decay": True}, box_nadam),
    (optim.RAdam, {"lr": 0.1, "betas": (0.8, 0.9), "weight_decay": 0.1}, box_radam),
    (optim.Rprop, {"lr": 0.1, "etas": (0.5, 1.3), "step_sizes": (0.04, 0.15)}, box_rprop),
    (optim.ASGD, {"lr": 0.1, "lambd": 0.05, "t0": 3, "weight_decay": 0.1}, box_asgd),
    (optim.Adafactor, {"lr": 0.5, "weight_decay": 0.1}, box_adafactor),
    (optim.Muon, {"lr": 0.1, "momentum": 0.9}, box_muon),
    (optim.LBFGS, {"lr": 0.5, "history_size": 2, "max_iter": 3}, box_lbfgs),
    (optim.SparseAdam, {"lr": 0.1}, box_sparse_adam),
]


@pytest.mark.parametrize("cls, kwargs, box", HAND, ids=[h[0].__name__ for h in HAND])
def test_trajectory_matches_the_algorithm_box(cls: type, kwargs: dict[str, Any],
                                              box: Callable[[], list[Any]]) -> None:
    shape = BOX_SHAPE.get(cls.__name__, THETA0.shape)
    p = Parameter(THETA0.reshape(shape))
    opt = cls([p], **kwargs)
    tol = BOX_TOLERANCE.get(cls.__name__, F64)
    for step, (g, expected) in enumerate(zip(G, box(), strict=True), 1):
        if optimizer_info(cls.__name__).closure:
            def closure(k: int = step - 1) -> float:
                f, p.grad = quadratic(p.data, k)
                return f
            opt.step(closure)
        elif optimizer_info(cls.__name__).sparse_grads:
            rows = touched(step - 1)
            p.grad = SparseGrad(rows, g[rows].reshape(-1, 1), shape)
            opt.step()
        else:
            p.grad = g.reshape(shape).copy()
            opt.step()
        d = discrepancy(p.data.reshape(-1), expected, tol)
        assert d.passed, f"{cls.__name__} step {step}: refbp {p.data} vs box {expected}: {d}"


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam], ids=lambda c: c.__name__)
def test_maximize_is_minimizing_the_negated_gradient(cls: type) -> None:
    p, q = Parameter(THETA0), Parameter(THETA0)
    kw = {"lr": 0.1, "momentum": 0.9} if cls is optim.SGD else {"lr": 0.1}
    o1, o2 = cls([p], maximize=True, **kw), cls([q], **kw)
    for g in G:
        p.grad, q.grad = g.copy(), -g
        o1.step()
        o2.step()
    np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("kwargs", [{"lr": 0.5, "history_size": 2, "max_iter": 3},
                                    {"line_search_fn": "strong_wolfe", "max_iter": 4}],
                         ids=["plain", "strong_wolfe"])
def test_lbfgs_maximize_is_minimizing_the_negated_objective(kwargs: dict[str, Any]) -> None:
    """maximize=True on -f follows the trajectory of minimising f, bit for bit, and ``step``
    returns the closure's loss as it came (the negated one)."""
    p, q = Parameter(THETA0.copy()), Parameter(THETA0.copy())
    o1, o2 = optim.LBFGS([p], maximize=True, **kwargs), optim.LBFGS([q], **kwargs)
    assert o1.defaults["maximize"] is True and o2.defaults["maximize"] is False
    for k in range(len(G)):
        def negative(k: int = k) -> float:
            f, g = quadratic(p.data, k)
            p.grad = -g
            return -f

        def positive(k: int = k) -> float:
            f, q.grad = quadratic(q.data, k)
            return f
        assert o1.step(negative) == -o2.step(positive)
        np.testing.assert_array_equal(p.data, q.data)


def test_lbfgs_group_without_maximize_minimizes() -> None:
    """A state dict saved by torch before 2.14 has no maximize in its group: minimise."""
    p = Parameter(THETA0.copy())
    opt = optim.LBFGS([p], lr=0.5, max_iter=3)
    del opt.param_groups[0]["maximize"]

    def closure() -> float:
        f, p.grad = quadratic(p.data, 0)
        return f
    opt.step(closure)
    d = discrepancy(p.data, box_lbfgs(iters=3)[0], F64)
    assert d.passed, f"refbp {p.data} vs box: {d}"


@pytest.mark.parametrize("fn, shape, ratio", [
    ("original", (2, 8), 1.0), ("original", (8, 2), 2.0),
    ("match_rms_adamw", (2, 8), 0.2 * math.sqrt(8)),
    ("spectral_unclamped", (2, 8), 0.5), ("spectral_unclamped", (8, 2), 2.0)])
def test_muon_lr_adjustments(fn: str, shape: tuple[int, int], ratio: float) -> None:
    """torch's ``_adjust_lr`` for a (fan-out, fan-in) matrix: "original" clamps sqrt(A / B)
    below at 1, "spectral_unclamped" (torch 2.14) does not."""
    assert adjust_lr(0.1, fn, shape) == 0.1 * ratio


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_with_alpha_rounds_the_product_then_adds(dtype: type[np.floating[Any]]) -> None:
    """``add_(a, b, alpha)`` is ``a + round(alpha * b)`` whether the product goes through the
    reused buffer (same shape and dtype) or a temporary (broadcast ``b``), and the buffer
    never leaks into a result: two updates in a row give independent results."""
    from refbp.optim import _kernels as K

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    c, d = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    alpha = dtype(-0.1)
    want_a, want_c = a + alpha * b, c + alpha * d
    got_a = K.add_(a.copy(), b, -0.1)
    got_c = K.add_(c.copy(), d, -0.1)
    assert got_a.tobytes() == want_a.tobytes()
    assert got_c.tobytes() == want_c.tobytes()
    assert K.add_(a.copy(), b, 1.0).tobytes() == (a + b).tobytes()


def test_sgd_takes_sparse_gradients_with_a_sparse_momentum_buffer() -> None:
    """Two steps of SGD(momentum=0.9) on the same sparse gradient (row 1 twice, row 3 once):
    buffer g, then 0.9 g + g; rows 0 and 2 never move (torch's sparse path)."""
    p = Parameter(np.zeros((4, 2)))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    for _ in range(2):
        p.grad = SparseGrad([1, 3, 1], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], (4, 2))
        opt.step()
    dense = np.array([[0, 0], [6, 8], [0, 0], [3, 4]], dtype=float)
    np.testing.assert_allclose(p.data, -0.5 * dense - 0.5 * 1.9 * dense, rtol=1e-15)
    assert isinstance(opt.state[p]["momentum_buffer"], SparseGrad)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        optim.SGD([p], lr=0.1, weight_decay=0.1).step()


def test_adagrad_takes_sparse_gradients_row_by_row() -> None:
    """Adagrad (eps 0) on a sparse gradient: the duplicate row is summed first, every touched
    element moves by exactly -lr * g / |g| = -lr, the others stay; ``sum`` is dense."""
    p = Parameter(np.zeros((4, 2)))
    opt = optim.Adagrad([p], lr=0.25, eps=0.0)
    p.grad = SparseGrad([1, 3, 1], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], (4, 2))
    opt.step()
    np.testing.assert_array_equal(p.data, [[0, 0], [-0.25, -0.25], [0, 0], [-0.25, -0.25]])
    np.testing.assert_array_equal(opt.state[p]["sum"], [[0, 0], [36, 64], [0, 0], [9, 16]])
    with pytest.raises(RuntimeError, match="weight_decay option is not compatible"):
        optim.Adagrad([p], weight_decay=0.1).step()


def test_strong_wolfe_zooms_on_a_long_direction() -> None:
    """The zoom's stop test scales the bracket by the direction's size (``|t1 - t0| *
    max|d| < tolerance_change``): with ``max|d| = 4e6`` the bracket ``[0, 1e-6]`` is far from
    converged, and one cubic step lands on the line minimum of ``f(x) = x^2 / 2`` from
    ``x = 1``, ``t* = 1 / 4e6`` (cubic interpolation is exact on a quadratic)."""
    from refbp.optim.lbfgs import strong_wolfe

    def obj(x: list[np.ndarray], t: Any, d: np.ndarray) -> tuple[float, np.ndarray]:
        y = x[0] + t * d
        return 0.5 * float(y @ y), y

    x0, d = np.array([1.0]), np.array([-4e6])
    f, g, t, evals = strong_wolfe(obj, [x0], 1e-6, d, 0.5, x0.copy(), float(x0 @ d))
    assert t == pytest.approx(2.5e-7, rel=1e-12)
    assert evals == 2  # the overshooting first trial, then the interpolated minimum
    assert abs(g[0]) <= 1e-9 * abs(x0[0])  # the slope there is a rounding residue of 1
    assert f <= 0.5


def test_strong_wolfe_extrapolates_to_the_cubic_minimum() -> None:
    """While the slope stays steep (curvature condition not met), the next trial is the
    minimum of the cubic through the last two points, kept in ``[t + 0.01 (t - t_prev),
    10 t]``: on ``f(x) = -x + s (x / s)^4 / 4`` (minimum at ``x = s``) from ``x = 0`` with
    ``t = 0.4 s``, the slope there is ``-0.936`` and the cubic's minimum lies inside the
    bounds, well below ``10 t``, whatever the scale ``s``."""
    from refbp.optim.lbfgs import strong_wolfe

    s = 1e-3
    trials: list[float] = []

    def obj(x: list[np.ndarray], t: Any, d: np.ndarray) -> tuple[float, np.ndarray]:
        trials.append(t)
        y = x[0] + t * d
        return float(-y[0] + s * (y[0] / s) ** 4 / 4), np.array([-1.0 + (y[0] / s) ** 3])

    x0, d, t0 = np.array([0.0]), np.array([1.0]), 0.4 * s
    f, g, t, evals = strong_wolfe(obj, [x0], t0, d, 0.0, np.array([-1.0]), -1.0)
    assert trials[0] == t0 and len(trials) == evals >= 2
    assert t0 + 0.01 * t0 < trials[1] < 10 * t0
    assert abs(g[0]) <= 0.9 and f < 0.0  # a strong-Wolfe point
