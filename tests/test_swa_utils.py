"""refbp.optim.swa_utils without torch: the averages by hand, buffers, update_bn, SWALR."""

from __future__ import annotations

import math

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.nn.module import Parameter
from refbp.optim import SGD
from refbp.optim.swa_utils import (
    SWALR,
    AveragedModel,
    get_ema_avg_fn,
    get_ema_multi_avg_fn,
    get_swa_avg_fn,
    get_swa_multi_avg_fn,
    update_bn,
)


def model() -> rnn.Sequential:
    gen = np.random.default_rng(0)
    return rnn.Sequential(rnn.Linear(3, 4, generator=gen), rnn.BatchNorm1d(4), rnn.Tanh(),
                          rnn.Linear(4, 2, generator=gen))


def snapshots(m: rnn.Sequential, n: int) -> list[list[np.ndarray]]:
    """``n`` successive states of ``m``'s parameters (each moved by a seeded step)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        for p in m.parameters():
            p.data += 0.1 * rng.standard_normal(p.data.shape)
        out.append([p.data.copy() for p in m.parameters()])
    return out


@pytest.mark.parametrize("kind", ["default", "avg_fn", "multi_avg_fn"])
def test_swa_is_the_mean_of_the_models(kind: str) -> None:
    m = model()
    fns = {"default": {}, "avg_fn": {"avg_fn": get_swa_avg_fn()},
           "multi_avg_fn": {"multi_avg_fn": get_swa_multi_avg_fn()}}
    swa = AveragedModel(m, **fns[kind])
    states = snapshots(m, 5)
    m2 = model()
    for state in states:
        for p, v in zip(m2.parameters(), state, strict=True):
            p.data[...] = v
        swa.update_parameters(m2)
    for i, p in enumerate(swa.parameters()):
        mean = np.mean([s[i] for s in states], axis=0)
        # the multi version lerps with a float32 weight 1/(n+1): relative error <= 2^-24 each
        np.testing.assert_allclose(p.data, mean, rtol=1e-6 if kind == "multi_avg_fn" else 1e-14)
    assert int(swa.n_averaged) == 5


@pytest.mark.parametrize("multi", [False, True])
def test_ema_by_hand(multi: bool) -> None:
    m = model()
    decay = 0.8
    kw = {"multi_avg_fn": get_ema_multi_avg_fn(decay)} if multi else {
        "avg_fn": get_ema_avg_fn(decay)}
    ema = AveragedModel(m, **kw)
    states = snapshots(m, 4)
    m2 = model()
    expected = None
    for state in states:
        for p, v in zip(m2.parameters(), state, strict=True):
            p.data[...] = v
        ema.update_parameters(m2)
        expected = [v.copy() for v in state] if expected is None else [
            decay * e + (1 - decay) * v for e, v in zip(expected, state, strict=True)]
    assert expected is not None
    for p, e in zip(ema.parameters(), expected, strict=True):
        np.testing.assert_allclose(p.data, e, rtol=1e-14, atol=1e-15)


def test_buffers_copied_or_averaged() -> None:
    m = model()
    plain, with_buffers = AveragedModel(m), AveragedModel(m, use_buffers=True)
    bn = m[1]
    for value in (1.0, 3.0):
        bn.running_mean[...] = value
        plain.update_parameters(m)
        with_buffers.update_parameters(m)
    assert plain.module[1].running_mean.tolist() == [3.0] * 4  # copied
    assert with_buffers.module[1].running_mean.tolist() == [2.0] * 4  # averaged
    assert [n for n, _ in plain.named_buffers()][0] == "n_averaged"  # as torch


def test_update_bn_recomputes_cumulative_statistics() -> None:
    m = model()
    bn = m[1]
    bn.momentum = 0.3
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((8, 3)) for _ in range(3)]
    m.eval()
    update_bn([(b, None) for b in batches], m)
    assert bn.momentum == 0.3 and not m.training and int(bn.num_batches_tracked) == 3
    h = [m[0](b) for b in batches]
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(0) for x in h], axis=0),
                               rtol=1e-13)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in h], axis=0),
                               rtol=1e-13)


def test_swalr_anneals_to_swa_lr_and_holds() -> None:
    opt = SGD([Parameter(np.zeros(2))], lr=0.5)
    sched = SWALR(opt, swa_lr=0.1, anneal_epochs=4, anneal_strategy="cos")
    lrs = [sched.get_last_lr()[0]]
    for _ in range(6):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    alpha = [(1 - math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    expected = [0.1 * a + 0.5 * (1 - a) for a in alpha] + [0.1, 0.1]
    np.testing.assert_allclose(lrs, expected, rtol=1e-13)
    sd = sched.state_dict()
    assert "anneal_func" not in sd and sd["_anneal_strategy"] == "cos"


def test_errors() -> None:
    for kind in (AssertionError, ValueError):  # torch's type, and refbp's for bad arguments
        with pytest.raises(kind, match="^Only one of avg_fn and multi_avg_fn should be "
                           "provided$"):
            AveragedModel(model(), avg_fn=get_swa_avg_fn(),
                          multi_avg_fn=get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match=r"Invalid decay value 1.5 provided"):
        get_ema_avg_fn(1.5)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        SWALR(SGD([Parameter(np.zeros(2))]), 0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
        SWALR(SGD([Parameter(np.zeros(2))]), 0.1, anneal_epochs=-1)
