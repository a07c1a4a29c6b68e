"""Dropout parity: masks read from stock torch and fed to refbp give identical results."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.mirror import from_torch, to_torch
from refbp.mirror.dropout import DropoutMaskTap, next_dropout_mask, rewound_rng, step_generator
from refbp.nn.dropout import feed_masks
from refbp.nn.module import Module

DTYPES = [(np.float64, torch.float64), (np.float32, torch.float32)]


def _run_both(model: Module, x: np.ndarray, seed: int = 0) -> tuple[Any, ...]:
    """Forward + backward of sum(y * r) (y shaped like x) on both sides; masks read from torch,
    fed to refbp."""
    t = to_torch(model)
    r = np.random.default_rng(9).standard_normal(x.shape).astype(x.dtype)
    with DropoutMaskTap(t) as tap, step_generator(seed):
        xt = torch.from_numpy(x.copy()).requires_grad_()
        yt = t(xt)
        (yt * torch.from_numpy(r)).sum().backward()
        masks = tap.take()
    with feed_masks(masks):
        y = model(x)
    gx = model.backward(r)
    return y, gx, yt.detach().numpy(), xt.grad.numpy(), masks


@pytest.mark.parametrize("np_dt,t_dt", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_dropout_bitwise_identical(np_dt: Any, t_dt: Any, p: float) -> None:
    model = nn.Sequential(nn.Dropout(p), nn.Dropout(p / 2))
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np_dt)
    y, gx, yt, gxt, masks = _run_both(model, x)
    assert len(masks) == (0 if p == 0 else 2)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(gx, gxt)
    if 0 < p < 1:
        assert 0 < np.count_nonzero(y) < y.size


@pytest.mark.parametrize("np_dt,t_dt", DTYPES)
@pytest.mark.parametrize("shape", [(4, 5, 3, 3), (4, 5, 6)])
def test_dropout2d_bitwise_identical(np_dt: Any, t_dt: Any, shape: tuple[int, ...]) -> None:
    model = nn.Sequential(nn.Dropout2d(0.4))
    x = np.random.default_rng(1).standard_normal(shape).astype(np_dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 3-D deprecation warning, on both sides
        y, gx, yt, gxt, masks = _run_both(model, x)
    assert masks[0].shape == shape[:2] + (1,) * (len(shape) - 2)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(gx, gxt)


def test_probe_leaves_torch_stream_untouched() -> None:
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    with rewound_rng():
        next_dropout_mask(torch.ones(10, 10), 0.5)
    assert torch.equal(torch.rand(4), expected)


def test_step_generator_restores_caller_state() -> None:
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    with step_generator(123):
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected)


def test_eval_mode_draws_nothing() -> None:
    model = nn.Sequential(nn.Dropout(0.5), nn.Dropout2d(0.5)).eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    y, gx, yt, gxt, masks = _run_both(model, x)
    assert masks == []
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(yt, x)


def test_from_torch_keeps_arguments_and_mode() -> None:
    t = torch.nn.Sequential(torch.nn.Dropout(0.3, inplace=True), torch.nn.Dropout2d(0.2)).eval()
    m = from_torch(t)
    assert isinstance(m[0], nn.Dropout) and m[0].p == 0.3 and m[0].inplace
    assert isinstance(m[1], nn.Dropout2d) and m[1].p == 0.2 and not m.training
    back = to_torch(m)
    assert isinstance(back[1], torch.nn.Dropout2d) and back[1].p == 0.2 and not back.training


def test_torch_rejects_same_probabilities() -> None:
    for p in (-0.5, 1.01):
        with pytest.raises(ValueError) as t_err:
            torch.nn.Dropout(p)
        with pytest.raises(ValueError) as r_err:
            nn.Dropout(p)
        assert str(t_err.value) == str(r_err.value)


def test_harness_feeds_torch_masks_to_refbp_every_step() -> None:
    from refbp.parity.runner import run_scenario
    from refbp.parity.suites import get_suite
    from refbp.parity.trial import TorchSide, build_trial

    s = next(c for c in get_suite("quick") if c.name == "mlp-dropout-adam-f64")
    res = run_scenario(s)
    assert res.passed and res.frame()["step"].max() == s.steps
    trial = build_trial(s)
    side = TorchSide(trial, [n for n, _ in trial.model.named_parameters()])
    seen = []
    for idx in itertools.islice(trial.batches, 2):  # batches are generated lazily
        side.forward_backward(trial.x[idx], trial.y[idx])
        assert side.masks is not None and len(side.masks) == 1
        seen.append(side.masks[0])
    side.close()
    assert not np.array_equal(seen[0], seen[1])  # a fresh mask every step
    assert not trial.torch_model[2]._forward_pre_hooks  # hooks removed


def test_assert_parity_on_a_users_cnn_with_dropout() -> None:
    """A user's torch CNN with Dropout2d and Dropout trains in step with refbp: the masks its
    stock modules draw are fed to refbp at every step."""
    from refbp.testing import assert_parity, parity_table

    tnn = torch.nn
    model = tnn.Sequential(tnn.Conv2d(1, 4, 3), tnn.BatchNorm2d(4), tnn.ReLU(),
                           tnn.Dropout2d(0.3), tnn.MaxPool2d(2), tnn.Flatten(),
                           tnn.Dropout(0.5), tnn.Linear(4 * 3 * 3, 3))
    x = np.random.default_rng(0).standard_normal((12, 1, 8, 8))
    y = np.random.default_rng(1).integers(0, 3, 12)
    kw: dict[str, Any] = {"loss": tnn.CrossEntropyLoss(), "optimizer": ("Adam", {"lr": 0.01}),
                          "steps": 3, "batch_size": 4}
    assert_parity(model, x, y, **kw)
    table = parity_table(model, x, y, **kw)
    grads = table[table["tensor"] == "grad:7.weight"]
    assert len(grads) == 3 and (grads["normwise"] < 1e-12).all()


VARIANTS = [(lambda p: nn.Dropout1d(p), (4, 5, 6)), (lambda p: nn.Dropout1d(p), (5, 6)),
            (lambda p: nn.Dropout3d(p), (3, 4, 2, 3, 2)), (lambda p: nn.Dropout3d(p), (4, 2, 3, 2)),
            (lambda p: nn.AlphaDropout(p), (7, 6)), (lambda p: nn.AlphaDropout(p), (2, 3, 4)),
            (lambda p: nn.FeatureAlphaDropout(p), (4, 5, 3)),
            (lambda p: nn.FeatureAlphaDropout(p), (6, 5))]


@pytest.mark.parametrize("np_dt,t_dt", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("make,shape", VARIANTS)
def test_dropout_variants_bitwise_identical(make: Any, shape: tuple[int, ...], p: float,
                                            np_dt: Any, t_dt: Any) -> None:
    """Output and input gradient of torch's masks, fed to refbp, agree to the last bit (the
    alpha dropouts' affine map is rounded as torch's kernel rounds it)."""
    model = nn.Sequential(make(p))
    x = np.random.default_rng(3).standard_normal(shape).astype(np_dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dropout3d's rank warning, on both sides
        y, gx, yt, gxt, masks = _run_both(model, x)
    alpha = isinstance(model[0], nn.AlphaDropout | nn.FeatureAlphaDropout)
    assert len(masks) == (0 if p == 0 or (alpha and p == 1) else 1)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(gx, gxt)


def test_dropout_variants_convert_both_ways() -> None:
    t = torch.nn.Sequential(torch.nn.Dropout1d(0.3), torch.nn.Dropout3d(0.2, inplace=True),
                            torch.nn.AlphaDropout(0.1), torch.nn.FeatureAlphaDropout(0.4)).eval()
    m = from_torch(t)
    assert [(type(c).__name__, c.p, c.inplace) for c in m] == [
        ("Dropout1d", 0.3, False), ("Dropout3d", 0.2, True), ("AlphaDropout", 0.1, False),
        ("FeatureAlphaDropout", 0.4, False)]
    back = to_torch(m)
    assert [type(c) for c in back] == [type(c) for c in t] and not back.training


def test_variants_raise_torchs_errors() -> None:
    for r, t in ((nn.Dropout1d(), torch.nn.Dropout1d()),):
        with pytest.raises(RuntimeError) as t_err:
            t(torch.ones(3))
        with pytest.raises(RuntimeError) as r_err:
            r(np.ones(3))
        assert str(t_err.value) == str(r_err.value)
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.FeatureAlphaDropout(0.5)(torch.ones(3))
    with pytest.raises(RuntimeError) as r_err:
        nn.FeatureAlphaDropout(0.5)(np.ones(3))
    assert str(t_err.value) == str(r_err.value)
