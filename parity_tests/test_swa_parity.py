"""refbp.optim.swa_utils against torch.optim.swa_utils.

The same trajectory of weights (a refbp model trained with SGD; its weights and BatchNorm
buffers copied into the torch twin after every step) is averaged on both sides by every
averaging function; the averaged parameters and buffers must agree at the float64 parity
bound (float32: its own) after every update. ``SWALR``'s rates and ``update_bn``'s statistics
are compared too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim import swa_utils as TS

import refbp.nn as rnn
from parity_tests.test_optim_parity import (
    _one_torch_thread,  # noqa: F401  (the autouse fixture: one torch thread, restored after)
)
from refbp.mirror import to_torch
from refbp.optim import SGD
from refbp.optim import swa_utils as RS
from refbp.optim.default_dtype import default_dtype
from refbp.testing import assert_close

pytestmark = pytest.mark.parity

STEPS = 30

AVERAGES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "swa": lambda M: {},
    "swa_fn": lambda M: {"avg_fn": M.get_swa_avg_fn()},
    "swa_multi": lambda M: {"multi_avg_fn": M.get_swa_multi_avg_fn()},
    "ema": lambda M: {"avg_fn": M.get_ema_avg_fn(0.9)},
    "ema_multi": lambda M: {"multi_avg_fn": M.get_ema_multi_avg_fn(0.95)},
    "ema_multi_buffers": lambda M: {"multi_avg_fn": M.get_ema_multi_avg_fn(0.6),
                                    "use_buffers": True},
    "swa_buffers": lambda M: {"use_buffers": True},
}


def model(dtype: Any) -> rnn.Sequential:
    gen = np.random.default_rng(0)
    return rnn.Sequential(rnn.Linear(4, 8, dtype=dtype, generator=gen),
                          rnn.BatchNorm1d(8, dtype=dtype), rnn.Tanh(),
                          rnn.Linear(8, 3, dtype=dtype, generator=gen))


def arrays(m: Any) -> dict[str, np.ndarray]:
    """Every parameter and buffer by name, as NumPy arrays."""
    if isinstance(m, torch.nn.Module):
        return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    return {k: np.array(v, copy=True) for k, v in m.state_dict().items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(AVERAGES))
def test_averaged_model_matches_torch(name: str, dtype: Any) -> None:
    m = model(dtype)
    t = to_torch(m)
    loss = rnn.MSELoss()
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((64, 4)).astype(dtype), rng.standard_normal((64, 3)).astype(dtype)
    ours, theirs = RS.AveragedModel(m, **AVERAGES[name](RS)), TS.AveragedModel(
        t, **AVERAGES[name](TS))
    with default_dtype(np.float32):
        for step in range(STEPS):
            idx = rng.choice(64, 16, replace=False)
            m.zero_grad()
            loss(m(x[idx]), y[idx])
            m.backward(loss.backward())
            opt.step()
            t.load_state_dict({k: torch.from_numpy(v) for k, v in arrays(m).items()})
            ours.update_parameters(m)
            theirs.update_parameters(t)
            a, b = arrays(ours), arrays(theirs)
            assert a.keys() == b.keys()
            for k in a:
                if a[k].dtype.kind == "f":
                    assert_close(a[k], b[k], dtype=np.dtype(dtype).name,
                                 name=f"{name} step {step} {k}")
                else:
                    assert np.array_equal(a[k], b[k]), (name, step, k)


@pytest.mark.parametrize("strategy, epochs", [("cos", 10), ("linear", 5), ("cos", 0)])
def test_swalr_matches_torch(strategy: str, epochs: int) -> None:
    lrs = (0.5, 0.2)
    ropt = SGD([{"params": [rnn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    topt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                            for lr in lrs])
    rs = RS.SWALR(ropt, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
    ts = TS.SWALR(topt, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
    ours, theirs = [rs.get_last_lr()], [ts.get_last_lr()]
    for _ in range(15):
        ropt.step()
        topt.step()  # no gradients: no update, but torch wants it before the scheduler's
        rs.step()
        ts.step()
        ours.append(rs.get_last_lr())
        theirs.append(ts.get_last_lr())
    assert np.array_equal(np.array(ours), np.array(theirs))
    assert set(rs.state_dict()) == set(ts.state_dict())
    assert rs.state_dict()["_step_count"] == ts.state_dict()["_step_count"]


def test_update_bn_matches_torch() -> None:
    m = model(np.float64)
    m[1].momentum = 0.2
    t = to_torch(m)
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((8, 4)) for _ in range(4)]
    m.eval()
    t.eval()
    RS.update_bn([[b] for b in batches], m)
    TS.update_bn([[torch.from_numpy(b)] for b in batches], t)
    a, b = arrays(m), arrays(t)
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert_close(a[k].astype(np.float64), b[k].astype(np.float64), dtype="float64", name=k)
    assert m[1].momentum == t[1].momentum == 0.2 and not m.training and not t.training


def _average_scenario(average: Any, scheduler: Any = None, dtype: str = "float64") -> Any:
    from refbp.parity.scenario import Scenario, Spec

    norm = Spec("BatchNorm1d", {"num_features": 8}) if average.args.get("use_buffers") else (
        Spec("Tanh"))
    return Scenario(name="avg", model=(Spec("Linear", {"in_features": 4, "out_features": 8}),
                                       norm, Spec("Linear", {"in_features": 8,
                                                             "out_features": 3})),
                    loss=Spec("MSELoss"), optimizer=Spec("SGD", {"lr": 0.1, "momentum": 0.9}),
                    scheduler=scheduler, average=average, steps=8, dtype=dtype)


SCENARIO_AVERAGES = [("swa", {"start": 3}, {"swa_lr": 0.05, "anneal_epochs": 3}),
                     ("ema", {"decay": 0.9}, None),
                     ("ema", {"decay": 0.8, "use_buffers": True}, None)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind, args, swalr", SCENARIO_AVERAGES, ids=str)
def test_scenario_average_rows_pass(kind: str, args: dict[str, Any], swalr: Any,
                                    dtype: str) -> None:
    """A training run with AveragedModel (and SWALR): every averaged parameter (and, with
    use_buffers, averaged buffer) is a row of every step, within the dtype's tolerance."""
    from refbp.parity.runner import run_scenario
    from refbp.parity.scenario import Spec

    result = run_scenario(_average_scenario(Spec(kind, args),
                                            Spec("SWALR", swalr) if swalr else None, dtype))
    frame = result.frame()
    rows = frame[frame["tensor"].str.endswith(":averaged")]
    per_step = 4 + (4 if args.get("use_buffers") else 0)
    assert len(rows) == 8 * per_step and set(rows["step"]) == set(range(1, 9))
    assert result.passed, result.first_failure


def test_scenario_average_catches_a_wrong_decay(monkeypatch: pytest.MonkeyPatch) -> None:
    """refbp's EMA with another decay than torch's fails on the averaged rows only."""
    from refbp.parity.runner import run_scenario
    from refbp.parity.scenario import Spec

    real = RS.get_ema_multi_avg_fn
    monkeypatch.setattr(RS, "get_ema_multi_avg_fn", lambda decay=0.999: real(decay * 0.99))
    result = run_scenario(_average_scenario(Spec("ema", {"decay": 0.9})))
    frame = result.frame()
    failed = set(frame.loc[~frame["passed"], "tensor"])
    assert failed and all(t.endswith(":averaged") for t in failed)
