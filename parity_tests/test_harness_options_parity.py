"""The parity harness against torch: twins built from the scenario's specs with each library's
defaults, and the scenario options ``training``, ``clip_grad_norm`` and ``scheduler_epoch``."""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
import refbp.optim as roptim
from refbp.optim import lr_scheduler as rsched
from refbp.parity.runner import run_scenario
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.trial import RefbpSide, TorchSide, Trial, build_trial, pair_parameters

pytestmark = pytest.mark.parity

REG = DataSpec("regression", n=16, features=4, outputs=3)
MLP = (Spec("Linear", {"in_features": 4, "out_features": 6}), Spec("Tanh"),
       Spec("Linear", {"in_features": 6, "out_features": 3}))


def _scenario(**kw: Any) -> Scenario:
    base: dict[str, Any] = {"name": "options", "model": MLP, "loss": Spec("MSELoss"),
                            "optimizer": Spec("SGD", {"lr": 0.1}), "data": REG,
                            "batching": "batch", "steps": 3}
    return Scenario(**{**base, **kw})


def _set_default(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, value: Any) -> None:
    """Change the default of ``cls.__init__``'s argument ``name`` for this test (on the
    function itself: an optimizer's ``__init__`` is wrapped to take torch's switches)."""
    init = inspect.unwrap(cls.__init__)  # type: ignore[misc]
    params = inspect.signature(init).parameters
    if params[name].kind is inspect.Parameter.KEYWORD_ONLY:
        monkeypatch.setattr(init, "__kwdefaults__", {**init.__kwdefaults__, name: value})
        return
    positional = [p for p in params.values() if p.default is not inspect.Parameter.empty
                  and p.kind is not inspect.Parameter.KEYWORD_ONLY]
    defaults = list(init.__defaults__)
    defaults[[p.name for p in positional].index(name)] = value
    monkeypatch.setattr(init, "__defaults__", tuple(defaults))


def _run(trial: Trial) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Step both sides of ``trial`` through its batches; (refbp, torch) tensors per step."""
    names = [n for n, _, _ in pair_parameters(trial.model, trial.torch_model)]
    mine, theirs = RefbpSide(trial), TorchSide(trial, names)
    out = []
    for idx in trial.batches:
        t = theirs.step(trial.x[idx], trial.y[idx])
        mine.masks = theirs.masks
        out.append((mine.step(trial.x[idx], trial.y[idx]), t))
    theirs.close()
    return out


@pytest.mark.parametrize("cls,spec,name,value", [
    (rnn.Softplus, Spec("Softplus"), "beta", 1.5),
    (rnn.ELU, Spec("ELU"), "alpha", 1.5),
])
def test_a_layer_default_that_differs_from_torch_fails(monkeypatch: pytest.MonkeyPatch,
                                                       cls: type, spec: Spec, name: str,
                                                       value: float) -> None:
    s = Scenario("layer-default", (spec,), Spec("MSELoss"),
                 data=DataSpec("regression", n=8, features=3, outputs=3), batching="batch")
    assert run_scenario(s).passed
    _set_default(monkeypatch, cls, name, value)
    result = run_scenario(s)
    assert not result.passed and result.first_failure["kind"] in ("loss", "output")


@pytest.mark.parametrize("cls,name,value", [
    (roptim.Adam, "eps", 1e-3), (roptim.SGD, "lr", 1e-2), (roptim.RMSprop, "alpha", 0.9),
])
def test_an_optimizer_default_that_differs_from_torch_fails(monkeypatch: pytest.MonkeyPatch,
                                                            cls: type, name: str,
                                                            value: float) -> None:
    s = _scenario(optimizer=Spec(cls.__name__))
    assert run_scenario(s).passed
    _set_default(monkeypatch, cls, name, value)
    result = run_scenario(s)
    first = result.first_failure
    assert not result.passed and first is not None and first["kind"] in ("param", "state")
    # named as a default that differs; the exact referee (refbp's hyperparameters) is dropped
    assert f"{name}: refbp {value!r}, torch" in first["explanation"] and first["referee"] == ""
    assert "a default that differs from torch's" in first["explanation"]


def test_a_loss_default_that_differs_from_torch_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _scenario(loss=Spec("HuberLoss"), optimizer=None, steps=1)
    assert run_scenario(s).passed
    _set_default(monkeypatch, rnn.HuberLoss, "delta", 1.5)
    assert run_scenario(s).first_failure["tensor"] == "loss"


def test_scheduler_epoch_steps_the_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _scenario(scheduler=Spec("PolynomialLR", {"total_iters": 4}), scheduler_epoch=1,
                  steps=5)
    trial = build_trial(s)
    _run(trial)
    assert trial.scheduler.last_epoch == trial.torch_scheduler.last_epoch == 5
    assert run_scenario(s).passed
    monkeypatch.setattr(rsched.PolynomialLR, "_get_closed_form_lr",
                        lambda self: [0.5 * lr for lr in self.base_lrs])
    assert not run_scenario(s).passed
    assert run_scenario(replace(s, scheduler_epoch=None)).passed  # step() has no closed form


def test_scheduler_epoch_fractional_warm_restarts() -> None:
    s = _scenario(scheduler=Spec("CosineAnnealingWarmRestarts", {"T_0": 2, "eta_min": 0.01}),
                  scheduler_epoch=0.5, steps=5)
    trial = build_trial(s)
    _run(trial)
    assert trial.scheduler.last_epoch == trial.torch_scheduler.last_epoch == 2
    assert trial.scheduler.T_cur == trial.torch_scheduler.T_cur == 0.5
    assert trial.scheduler.get_last_lr() == pytest.approx(trial.torch_scheduler.get_last_lr(),
                                                          rel=1e-15)
    assert run_scenario(s).passed


def test_clip_grad_norm_scales_the_update_not_the_recorded_gradient() -> None:
    s = _scenario(clip_grad_norm=0.01, steps=1)
    trial = build_trial(s)
    before = {n: p.data.copy() for n, p in trial.model.named_parameters()}
    ((mine, theirs),) = _run(trial)
    grads = {n: mine[f"grad:{n}"] for n in before}
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    assert norm > 0.1  # the recorded gradients are the unclipped ones
    scale = 0.01 / (norm + 1e-6)
    for n, g in grads.items():
        np.testing.assert_allclose(mine[f"param:{n}"], before[n] - 0.1 * scale * g,
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(theirs[f"param:{n}"], mine[f"param:{n}"], rtol=1e-12,
                                   atol=1e-15)
    assert run_scenario(replace(s, steps=3)).passed


def test_eval_mode_runs_both_models_on_running_statistics() -> None:
    model = (Spec("Linear", {"in_features": 4, "out_features": 6}),
             Spec("BatchNorm1d", {"num_features": 6}), Spec("Dropout", {"p": 0.5}),
             Spec("Linear", {"in_features": 6, "out_features": 3}))
    s = _scenario(model=model, training=False)
    trial = build_trial(s)
    assert not any(m.training for m in trial.model.modules())
    assert not any(m.training for m in trial.torch_model.modules())
    steps = _run(trial)
    for mine, theirs in steps:  # eval mode: the running statistics are not updated
        for side in (mine, theirs):
            np.testing.assert_array_equal(side["buffer:1.running_mean"], np.zeros(6))
            np.testing.assert_array_equal(side["buffer:1.running_var"], np.ones(6))
    assert run_scenario(s).passed


def test_checkpoint_reloads_every_state_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _scenario(optimizer=Spec("SGD", {"lr": 0.05, "momentum": 0.9}), checkpoint=True,
                  scheduler=Spec("StepLR", {"step_size": 2}))
    assert run_scenario(s).passed
    save = roptim.Optimizer.state_dict
    monkeypatch.setattr(roptim.Optimizer, "state_dict",
                        lambda self: {**save(self), "state": {}})  # a checkpoint losing state
    result = run_scenario(s)
    assert not result.passed and result.first_failure["step"] == 2
    assert run_scenario(replace(s, checkpoint=False)).passed  # no checkpoint: not reloaded


def test_micro_batches_accumulate_the_gradient_of_the_whole_batch() -> None:
    # MSE over equal halves, each divided by 2: the accumulated gradient is the full batch's
    s = _scenario(micro_batches=2, steps=1)
    whole = _run(build_trial(replace(s, micro_batches=1)))[0][0]
    trial = build_trial(s)
    ((mine, theirs),) = _run(trial)
    for key, value in whole.items():
        np.testing.assert_allclose(mine[key], value, rtol=1e-12, atol=1e-15, err_msg=key)
        np.testing.assert_allclose(theirs[key], value, rtol=1e-12, atol=1e-15, err_msg=key)
    assert run_scenario(replace(s, steps=3)).passed


def test_micro_batches_refuse_dropout() -> None:
    s = _scenario(model=MLP + (Spec("Dropout", {"p": 0.5}),), micro_batches=2)
    result = run_scenario(s)
    assert not result.passed
    assert "micro_batches > 1 needs a model without dropout" in result.rows[0]["explanation"]
