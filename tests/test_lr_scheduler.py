"""Learning-rate schedulers without torch: closed forms, hand-computed values, state, errors.

The bit-for-bit comparison with torch is in parity_tests/test_lr_scheduler_parity.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refbp.metrics import discrepancy
from refbp.nn.module import Parameter
from refbp.optim import lr_scheduler as L
from refbp.optim.adam import Adam
from refbp.optim.sgd import SGD
from refbp.tolerances import tolerance_for

TOL = tolerance_for("float64")
BASE = (0.1, 0.03)


def sgd(lrs: tuple[Any, ...] = BASE, momentum: float = 0.9) -> SGD:
    groups = [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    return SGD(groups, lr=0.5, momentum=momentum)


def run(sched: Any, steps: int, metrics: list[float] | None = None) -> np.ndarray:
    """get_last_lr() after construction and after each of ``steps`` steps."""
    rows = [list(sched.get_last_lr())]
    for t in range(steps):
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        rows.append(list(sched.get_last_lr()))
    return np.array(rows, dtype=np.float64)


def closed(f: Callable[[float, int], float], steps: int) -> np.ndarray:
    return np.array([[f(b, t) for b in BASE] for t in range(steps + 1)])


def cosine(b: float, t: float, T: float, eta_min: float = 0.0) -> float:
    return eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


def sgdr_position(t: int, T_0: int, T_mult: int) -> tuple[int, int]:
    """(T_cur, T_i): steps since the last restart and the current period."""
    T_i = T_0
    while t >= T_i:
        t -= T_i
        T_i *= T_mult
    return t, T_i


CLOSED_FORMS = [
    ("StepLR", lambda o: L.StepLR(o, 7, gamma=0.5), lambda b, t: b * 0.5 ** (t // 7)),
    ("MultiStepLR", lambda o: L.MultiStepLR(o, [10, 30, 30]),
     lambda b, t: b * 0.1 ** ((t >= 10) + 2 * (t >= 30))),
    ("ExponentialLR", lambda o: L.ExponentialLR(o, 0.97), lambda b, t: b * 0.97 ** t),
    ("ConstantLR", lambda o: L.ConstantLR(o, 0.25, 12), lambda b, t: b * (0.25 if t < 12 else 1)),
    ("LinearLR", lambda o: L.LinearLR(o, 0.2, 0.9, 40),
     lambda b, t: b * (0.2 + 0.7 * min(t, 40) / 40)),
    ("PolynomialLR", lambda o: L.PolynomialLR(o, 50, 2.0),
     lambda b, t: b * (1 - min(t, 50) / 50) ** 2.0),
    ("CosineAnnealingLR", lambda o: L.CosineAnnealingLR(o, 40, eta_min=1e-3),
     lambda b, t: cosine(b, t, 40, 1e-3)),
    ("CosineAnnealingWarmRestarts", lambda o: L.CosineAnnealingWarmRestarts(o, 10, T_mult=2),
     lambda b, t: cosine(b, *sgdr_position(t, 10, 2))),
    ("LambdaLR", lambda o: L.LambdaLR(o, lambda e: 1 / (1 + e)), lambda b, t: b / (1 + t)),
    ("MultiplicativeLR", lambda o: L.MultiplicativeLR(o, lambda e: 0.95),
     lambda b, t: b * 0.95 ** t),
]


@pytest.mark.parametrize("name,build,form", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_recursive_step_follows_closed_form(name: str, build: Any, form: Any) -> None:
    got = run(build(sgd()), 120)
    d = discrepancy(got, closed(form, 120), TOL)
    assert d.passed, f"{name}: {d}"


def test_cosine_annealing_goes_back_up_after_t_max() -> None:
    lrs = run(L.CosineAnnealingLR(sgd(), T_max=10), 20)[:, 0]
    assert lrs[10] == pytest.approx(0.0, abs=1e-15)
    assert lrs[20] == pytest.approx(0.1, rel=1e-12)  # the branch that adds (1 - cos(pi/T))/2
    assert np.all(np.diff(lrs[:11]) < 0) and np.all(np.diff(lrs[10:]) > 0)


def test_step_with_epoch_uses_closed_form_and_warns() -> None:
    sched = L.StepLR(sgd(), 5, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(12)
    assert sched.get_last_lr() == [0.1 * 0.25, 0.03 * 0.25]
    assert sched.last_epoch == 12


def test_get_lr_outside_step_warns() -> None:
    sched = L.ExponentialLR(sgd(), 0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


def test_warm_restarts_fractional_epoch() -> None:
    sched = L.CosineAnnealingWarmRestarts(sgd(), T_0=4, T_mult=2)
    sched.step(5.5)  # inside the second cycle (T_i = 8), T_cur = 1.5
    assert sched.T_i == 8 and sched.T_cur == pytest.approx(1.5)
    assert sched.get_last_lr()[0] == pytest.approx(cosine(0.1, 1.5, 8), rel=1e-15)
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        sched.step(-1)


def test_one_cycle_landmarks_and_momentum() -> None:
    opt = sgd()
    sched = L.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=100, pct_start=0.3)
    lrs = run(sched, 99)
    np.testing.assert_allclose(lrs[0], [1.0 / 25, 0.5 / 25], rtol=1e-15)
    assert lrs[29].tolist() == [1.0, 0.5]  # end of the warm-up phase: pct * total - 1
    assert lrs[99].tolist() == [1.0 / 25 / 1e4, 0.5 / 25 / 1e4]
    assert opt.param_groups[0]["momentum"] == 0.95  # back at max_momentum
    assert opt.param_groups[0]["initial_lr"] == 0.04 and opt.param_groups[1]["max_lr"] == 0.5
    sched.step()  # step 100 == total_steps is still allowed
    with pytest.raises(ValueError, match="Tried to step 101 times"):
        sched.step()


def test_one_cycle_linear_three_phase_and_betas() -> None:
    opt = Adam([Parameter(np.zeros(2))], lr=0.1, betas=(0.9, 0.99))
    sched = L.OneCycleLR(opt, 0.8, total_steps=20, pct_start=0.25, anneal_strategy="linear",
                         three_phase=True)
    lrs = run(sched, 19)[:, 0]
    assert lrs[4] == 0.8 and lrs[8] == pytest.approx(0.8 / 25, rel=1e-15)
    assert lrs[2] == pytest.approx((0.8 + 0.032) / 2, rel=1e-15)  # linear midpoint of phase 1
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)  # beta1 cycled, beta2 untouched


def test_sequential_switches_at_milestone() -> None:
    opt = sgd()
    warm = L.LinearLR(opt, 0.5, total_iters=4)
    decay = L.ExponentialLR(opt, 0.5)
    sched = L.SequentialLR(opt, [warm, decay], milestones=[4])
    lrs = run(sched, 7)[:, 0]
    np.testing.assert_allclose(lrs, [0.05, 0.0625, 0.075, 0.0875, 0.1, 0.05, 0.025, 0.0125],
                               rtol=1e-14)


def test_cyclic_triangular_hand_computed_with_momentum() -> None:
    """step_size_up 2, down 3 (T = 5, ratio 0.4): lr rises 0.01 -> 0.1 in 2 steps, falls back
    in 3; the momentum runs the other way between max 0.9 and base 0.8."""
    opt = sgd()
    sched = L.CyclicLR(opt, 0.01, 0.1, step_size_up=2, step_size_down=3)
    lrs = run(sched, 6)[:, 0]
    np.testing.assert_allclose(lrs, [0.01, 0.055, 0.1, 0.07, 0.04, 0.01, 0.055], rtol=1e-14)
    # after 6 steps: x = 1 + 6/5 - 2 = 0.2, s = 0.2 / 0.4 = 0.5
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9 - 0.1 * 0.5, rel=1e-14)
    assert opt.param_groups[1]["max_momentum"] == 0.9
    assert opt.param_groups[1]["base_momentum"] == 0.8


def test_cyclic_triangular2_and_exp_range_amplitudes() -> None:
    """triangular2 halves the amplitude every cycle; exp_range scales it by gamma^t."""
    tri2 = run(L.CyclicLR(sgd(), 0.0, 1.0, step_size_up=1, mode="triangular2",
                          cycle_momentum=False), 6)[:, 0]
    np.testing.assert_allclose(tri2, [0.0, 1.0, 0.0, 0.5, 0.0, 0.25, 0.0], atol=1e-15)
    exp = run(L.CyclicLR(sgd(), 0.0, 1.0, step_size_up=1, mode="exp_range", gamma=0.5,
                         cycle_momentum=False), 5)[:, 0]
    np.testing.assert_allclose(exp, [0.0, 0.5, 0.0, 0.125, 0.0, 0.5**5], atol=1e-15)


def test_cyclic_sets_base_lr_and_beta1() -> None:
    opt = Adam([Parameter(np.zeros(2))], lr=0.5, betas=(0.9, 0.99))
    L.CyclicLR(opt, 0.02, 0.2, step_size_up=4, base_momentum=0.85, max_momentum=0.95)
    assert opt.param_groups[0]["lr"] == 0.02 and opt.param_groups[0]["betas"] == (0.95, 0.99)


def test_chained_multiplies_the_factors() -> None:
    opt = sgd()
    sched = L.ChainedScheduler([L.ConstantLR(opt, factor=0.5, total_iters=2),
                                L.ExponentialLR(opt, gamma=0.9)])
    lrs = run(sched, 4)[:, 0]
    np.testing.assert_allclose(lrs, [0.05, 0.05 * 0.9, 0.1 * 0.9**2, 0.1 * 0.9**3,
                                     0.1 * 0.9**4], rtol=1e-14)
    sd = sched.state_dict()
    assert [set(s) >= {"last_epoch"} for s in sd["_schedulers"]] == [True, True]


def test_reduce_on_plateau_hand_computed() -> None:
    opt = sgd()
    sched = L.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.02, 0.0])
    metrics = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4]
    lrs = run(sched, len(metrics), metrics)[:, 0]
    # bad steps at t=3,4 -> reduce after the 2nd (patience 1); cooldown swallows t=5; then
    # t=6,7 bad again -> reduce; min_lr clamps 0.025 -> 0.02; 0.4 is an improvement.
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert sched.best == 0.4 and sched.num_bad_epochs == 0
    # the epoch counter starts at 0 (torch's) and counts the 8 steps; the state dict carries it
    assert sched.last_epoch == 8 and sched.state_dict()["last_epoch"] == 8
    assert sched.cooldown_counter == 0 and sched.state_dict()["cooldown_counter"] == 0


def test_reduce_on_plateau_eps_blocks_tiny_updates() -> None:
    opt = sgd(lrs=(1e-8, 1.0))
    sched = L.ReduceLROnPlateau(opt, patience=0, eps=1e-8)
    run(sched, 2, [1.0, 2.0])
    assert [g["lr"] for g in opt.param_groups] == [1e-8, 0.1]


def test_array_lr_is_filled_in_place() -> None:
    lr = np.array(0.1)
    opt = SGD([Parameter(np.zeros(2))], lr=lr)
    group_lr = opt.param_groups[0]["lr"]
    sched = L.StepLR(opt, 1, gamma=0.5)
    sched.step()
    assert opt.param_groups[0]["lr"] is group_lr and float(group_lr) == 0.05
    last = sched.get_last_lr()[0]
    assert isinstance(last, np.ndarray) and last is not group_lr  # a copy, never an alias


class Scale:
    def __init__(self, k: float) -> None:
        self.k = k

    def __call__(self, epoch: int) -> float:
        return self.k ** epoch


def test_state_dict_round_trip_resumes_the_same_sequence() -> None:
    full = run(L.LambdaLR(sgd(), [Scale(0.9), lambda e: 1.0]), 30)
    opt = sgd()
    sched = L.LambdaLR(opt, [Scale(0.9), lambda e: 1.0])
    run(sched, 10)
    state = sched.state_dict()
    assert "optimizer" not in state and state["lr_lambdas"] == [{"k": 0.9}, None]
    assert state["last_epoch"] == 10 and state["base_lrs"] == list(BASE)
    fresh_opt = sgd()
    fresh = L.LambdaLR(fresh_opt, [Scale(0.5), lambda e: 1.0])
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0].k == 0.9  # type: ignore[attr-defined]
    for g, old in zip(fresh_opt.param_groups, opt.param_groups, strict=True):
        g["lr"] = old["lr"]
    np.testing.assert_array_equal(run(fresh, 20)[1:], full[11:])


def test_sequential_state_dict_nests_the_schedulers() -> None:
    opt = sgd()
    sched = L.SequentialLR(opt, [L.ConstantLR(opt), L.StepLR(opt, 3)], milestones=[5])
    run(sched, 8)
    state = sched.state_dict()
    # ConstantLR ran epochs 0..4; StepLR restarted at the milestone (epoch 5) and ran 0..3
    assert [s["last_epoch"] for s in state["_schedulers"]] == [4, 3]
    other_opt = sgd()
    other = L.SequentialLR(other_opt, [L.ConstantLR(other_opt), L.StepLR(other_opt, 3)], [5])
    other.load_state_dict(state)
    assert other._schedulers[1].last_epoch == 3 and other.last_epoch == 8


def test_load_state_dict_rejects_unknown_keys() -> None:
    sched = L.StepLR(sgd(), 3)
    with pytest.raises(KeyError, match=r"unexpected key\(s\) in StepLR state_dict: \['bogus'\]"):
        sched.load_state_dict({**sched.state_dict(), "bogus": 1})


def test_resume_with_last_epoch_needs_initial_lr() -> None:
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        L.StepLR(sgd(), 3, last_epoch=5)
    opt = sgd()
    L.StepLR(opt, 3)
    resumed = L.StepLR(opt, 3, gamma=0.5, last_epoch=5)
    assert resumed.last_epoch == 6 and resumed.base_lrs == list(BASE)


class NoMomentum:
    """Has param_groups but neither momentum nor betas (like torch's Adagrad)."""

    def __init__(self) -> None:
        self.defaults = {"lr": 0.1}
        self.param_groups = [{"lr": 0.1, "params": []}]


class RejectThis(L.ReduceLROnPlateau):
    pass


def _one_cycle(**kw: Any) -> Callable[[], Any]:
    return lambda: L.OneCycleLR(sgd(), 1.0, **kw)


ERRORS: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: L.StepLR(object(), 3), TypeError, "object is not an Optimizer"),
    (lambda: L.ConstantLR(sgd(), factor=1.5), ValueError,
     "Constant multiplicative factor expected to be between 0 and 1."),
    (lambda: L.LinearLR(sgd(), start_factor=0), ValueError,
     "Starting multiplicative factor expected to be greater than 0"),
    (lambda: L.LinearLR(sgd(), end_factor=-0.1), ValueError,
     "Ending multiplicative factor expected to be between 0 and 1."),
    (lambda: L.LambdaLR(sgd(), [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda: L.MultiplicativeLR(sgd(), 0.9), TypeError,  # type: ignore[arg-type]
     "lr_lambda should be a function, but got float"),
    (lambda: L.CosineAnnealingWarmRestarts(sgd(), 0), ValueError,
     "Expected positive integer T_0, but got 0"),
    (lambda: L.CosineAnnealingWarmRestarts(sgd(), 5, T_mult=1.5), ValueError,  # type: ignore[arg-type]
     "Expected integer T_mult >= 1, but got 1.5"),
    (lambda: L.CosineAnnealingWarmRestarts(sgd(), 5, eta_min="0"), ValueError,  # type: ignore[arg-type]
     "Expected float or int eta_min"),
    (_one_cycle(), ValueError,
     "You must define either total_steps OR (epochs AND steps_per_epoch)"),
    (_one_cycle(total_steps=0), ValueError, "Expected positive integer total_steps, but got 0"),
    (_one_cycle(epochs=2, steps_per_epoch=-1), ValueError,
     "Expected positive integer steps_per_epoch, but got -1"),
    (_one_cycle(epochs=0, steps_per_epoch=3), ValueError,
     "Expected positive integer epochs, but got 0"),
    (_one_cycle(total_steps=10, pct_start=1), ValueError,
     "Expected float between 0 and 1 pct_start, but got 1"),
    (_one_cycle(total_steps=10, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be one of 'cos' or 'linear', instead got exp"),
    (lambda: L.OneCycleLR(sgd(), [1.0], total_steps=10), ValueError,
     "max_lr must have the same length as optimizer.param_groups. "
     "max_lr has 1 values, param_groups has 2."),
    (lambda: L.OneCycleLR(NoMomentum(), 1.0, total_steps=10), ValueError,
     "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"),
    (lambda: L.ReduceLROnPlateau(sgd(), factor=1.0), ValueError, "Factor should be < 1.0."),
    (lambda: L.ReduceLROnPlateau(sgd(), mode="avg"), ValueError, "mode avg is unknown!"),
    (lambda: L.ReduceLROnPlateau(sgd(), threshold_mode="pct"), ValueError,
     "threshold mode pct is unknown!"),
    (lambda: L.ReduceLROnPlateau(sgd(), min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    (lambda: L.SequentialLR(sgd(), [], []), ValueError,
     "SequentialLR expects at least one scheduler, but got no scheduler."),
    (lambda: L.SequentialLR(sgd(), [object()], []), TypeError,  # type: ignore[list-item]
     "SequentialLR at index 0 should have `optimizer` as its attribute."),
    (lambda: L.SequentialLR(sgd(), [L.StepLR(sgd(), 2)], []), ValueError,
     "SequentialLR expects all schedulers to belong to the same optimizer"),
    (lambda: L.SequentialLR(sgd(), [RejectThis(sgd())], []), ValueError,
     "SequentialLR does not support `ReduceLROnPlateau` scheduler"),
    (lambda: L.CyclicLR(sgd(), 0.1, 0.2, mode="cosine"), ValueError,
     "mode is invalid and scale_fn is None"),
    (lambda: L.CyclicLR(NoMomentum(), 0.1, 0.2), ValueError,
     "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"),
    (lambda: L.CyclicLR(sgd(), [0.1], 0.2), ValueError,
     "base_lr must have the same length as optimizer.param_groups"),
    (lambda: L.ChainedScheduler([]), ValueError,
     "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler."),
    (lambda: L.ChainedScheduler([L.StepLR(sgd(), 2), L.StepLR(sgd(), 2)]), ValueError,
     "ChainedScheduler expects all schedulers to belong to the same optimizer"),
    (lambda: L.ChainedScheduler([RejectThis(sgd())]), ValueError,
     "ChainedScheduler does not support `ReduceLROnPlateau` scheduler"),
]


def _seq_milestones() -> Any:
    opt = sgd()
    return L.SequentialLR(opt, [L.StepLR(opt, 2), L.StepLR(opt, 3)], milestones=[])


ERRORS.append((_seq_milestones, ValueError,
               "Sequential Schedulers expects number of schedulers provided to be one more"))


@pytest.mark.parametrize("make,exc,message", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_constructor_validation(make: Callable[[], Any], exc: type[Exception],
                                message: str) -> None:
    with pytest.raises(exc) as info:
        make()
    assert message in str(info.value)
