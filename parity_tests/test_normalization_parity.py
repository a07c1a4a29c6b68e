"""BatchNorm2d, GroupNorm, InstanceNorm2d parity with torch: options, modes, buffers, errors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.metrics import discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.nn.module import Module
from refbp.tolerances import tolerance_for

DTYPES = ["float64", "float32"]
_T = {"float64": torch.float64, "float32": torch.float32}

CASES: list[tuple[str, Callable[[str], Module]]] = [
    ("bn2d", lambda dt: nn.BatchNorm2d(4, dtype=dt)),
    ("bn2d-momentum-none", lambda dt: nn.BatchNorm2d(4, momentum=None, dtype=dt)),
    ("bn2d-noaffine", lambda dt: nn.BatchNorm2d(4, affine=False, dtype=dt)),
    ("bn2d-untracked", lambda dt: nn.BatchNorm2d(4, track_running_stats=False, dtype=dt)),
    ("bn2d-nobias", lambda dt: nn.BatchNorm2d(4, bias=False, dtype=dt)),
    ("gn", lambda dt: nn.GroupNorm(2, 4, dtype=dt)),
    ("gn-1group", lambda dt: nn.GroupNorm(1, 4, eps=1e-3, dtype=dt)),
    ("gn-instance-noaffine", lambda dt: nn.GroupNorm(4, 4, affine=False, dtype=dt)),
    ("in", lambda dt: nn.InstanceNorm2d(4, dtype=dt)),
    ("in-affine", lambda dt: nn.InstanceNorm2d(4, affine=True, dtype=dt)),
    ("in-tracked", lambda dt: nn.InstanceNorm2d(4, momentum=0.3, track_running_stats=True,
                                                dtype=dt)),
    ("in-tracked-momentum-none", lambda dt: nn.InstanceNorm2d(
        4, momentum=None, affine=True, track_running_stats=True, dtype=dt)),
]


def _randomise(m: Module, t: torch.nn.Module) -> None:
    rng = np.random.default_rng(7)
    for p in m.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape)
    with torch.no_grad():
        for k, v in m.state_dict().items():
            t.state_dict()[k].copy_(torch.from_numpy(np.array(v)))


def _compare(m: Module, t: torch.nn.Module, x: np.ndarray, dt: str) -> None:
    tol = tolerance_for(dt)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt, y = t(xt), m(x)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(dt)
    yt.backward(torch.from_numpy(g))
    gx = m.backward(g)
    pairs = {"output": (y, yt.detach().numpy()), "grad_input": (gx, xt.grad.numpy())}
    for (n, p), tp in zip(m.named_parameters(), t.parameters(), strict=True):
        pairs[f"grad:{n}"] = (p.grad, tp.grad.numpy())
    tbuf = dict(t.named_buffers())
    for n, b in m.named_buffers():
        pairs[f"buffer:{n}"] = (b, tbuf[n].numpy())
    for name, (a, b) in pairs.items():
        assert a.shape == b.shape, name
        d = discrepancy(a, b, tol)
        assert d.passed, f"{name}: normwise {d.normwise:.2e}, tol ratio {d.tol_ratio:.2e}"


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dt", DTYPES)
def test_train_then_eval(name: str, make: Callable[[str], Module], dt: str) -> None:
    m = make(dt)
    t = to_torch(m)
    _randomise(m, t)
    rng = np.random.default_rng(3)
    for step in range(3):
        x = (rng.standard_normal((3, 4, 5, 6)) * (step + 1) + step).astype(dt)
        _compare(m.zero_grad() or m, t.zero_grad() or t, x, dt)
    m.eval()
    t.eval()
    _compare(m, t, rng.standard_normal((2, 4, 5, 6)).astype(dt), dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_groupnorm_on_3d_and_unbatched_instancenorm(dt: str) -> None:
    for m, shape in ((nn.GroupNorm(3, 6, dtype=dt), (4, 6, 7)),
                     (nn.InstanceNorm2d(4, affine=True, dtype=dt), (4, 5, 6))):
        t = to_torch(m)
        _randomise(m, t)
        _compare(m, t, np.random.default_rng(4).standard_normal(shape).astype(dt), dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(0, 6, 4, 3), (0, 6), (0, 6, 5, 2, 2)])
def test_groupnorm_on_an_empty_batch(shape: tuple[int, ...], dt: str) -> None:
    """N = 0: empty output and input gradient, zero weight and bias gradients, as torch."""
    m = nn.GroupNorm(3, 6, dtype=dt)
    t = to_torch(m)
    _randomise(m, t)
    _compare(m, t, np.zeros(shape, dtype=dt), dt)
    assert m.weight.grad is not None and not m.weight.grad.any()


ERRORS: list[tuple[str, Callable[[Any], Any], tuple[int, ...]]] = [
    ("BatchNorm2d 3-D", lambda m: m.BatchNorm2d(4), (2, 4, 3)),
    ("BatchNorm2d one value", lambda m: m.BatchNorm2d(4), (1, 4, 1, 1)),
    ("GroupNorm channels", lambda m: m.GroupNorm(2, 4, affine=False), (2, 5, 3)),
    ("GroupNorm 1-D", lambda m: m.GroupNorm(2, 4), (4,)),
    ("InstanceNorm2d 2-D", lambda m: m.InstanceNorm2d(4), (4, 3)),
    ("InstanceNorm2d affine channels", lambda m: m.InstanceNorm2d(3, affine=True), (2, 4, 3, 3)),
    ("InstanceNorm2d one pixel", lambda m: m.InstanceNorm2d(4), (2, 4, 1, 1)),
]


@pytest.mark.parametrize("name,make,shape", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(name: str, make: Callable[[Any], Any],
                            shape: tuple[int, ...]) -> None:
    with pytest.raises((RuntimeError, ValueError)) as t_err:
        make(torch.nn).double()(torch.ones(shape, dtype=torch.float64))
    with pytest.raises(ValueError) as r_err:
        make(nn)(np.ones(shape))
    # torch prints shapes as torch.Size([...]), refbp as tuples
    expected = str(t_err.value).splitlines()[0].replace("torch.Size([", "(").replace("])", ")")
    assert str(r_err.value) == expected


def test_constructor_error_matches_torch() -> None:
    with pytest.raises(ValueError) as t_err:
        torch.nn.GroupNorm(2, 5)
    with pytest.raises(ValueError) as r_err:
        nn.GroupNorm(2, 5)
    assert str(r_err.value) == str(t_err.value)


def test_from_torch_keeps_options_and_state_keys() -> None:
    t = torch.nn.Sequential(torch.nn.BatchNorm2d(3, momentum=None), torch.nn.GroupNorm(1, 3),
                            torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True))
    with torch.no_grad():
        t[0].running_mean.fill_(0.5)
        t[2].running_var.fill_(2.0)
    m = from_torch(t.double())
    assert isinstance(m[0], nn.BatchNorm2d) and m[0].momentum is None
    assert isinstance(m[1], nn.GroupNorm) and m[1].num_groups == 1
    assert isinstance(m[2], nn.InstanceNorm2d) and m[2].track_running_stats and m[2].affine
    assert list(m.state_dict()) == list(t.state_dict())
    np.testing.assert_array_equal(m[0].running_mean, np.full(3, 0.5))
    np.testing.assert_array_equal(m[2].running_var, np.full(3, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = to_torch(m)
    assert [repr(a) for a in back] == [repr(b) for b in t]


LRN_CASES = [(size, c, a, b, k) for size in (2, 3, 4, 5, 7) for c in (1, 2, 3, 4, 6, 9)
             for a, b, k in ((1e-4, 0.75, 1), (0.5, 0.75, 2.0), (2.0, 0.5, 0.5), (0.3, 2.0, 1.5))]


@pytest.mark.parametrize("dt", DTYPES)
def test_cross_map_lrn2d_forward_and_torchs_backward(dt: str) -> None:
    """Every window size (odd and even, wider than the channels), channel count and
    parameters: torch's running window sums and its own backward formula, within tolerance."""
    rng = np.random.default_rng(0)
    tol = tolerance_for(dt)
    for size, c, a, b, k in LRN_CASES:
        m = nn.CrossMapLRN2d(size, a, b, k)
        x = rng.standard_normal((2, c, 3, 2)).astype(dt)
        g = rng.standard_normal(x.shape).astype(dt)
        t = to_torch(m)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        yt = t(xt)
        yt.backward(torch.from_numpy(g))
        case = f"CrossMapLRN2d({size}, {a}, {b}, {k}) of {c} channels"
        assert discrepancy(m(x), yt.detach().numpy(), tol).passed, case
        assert discrepancy(m.backward(g), xt.grad.numpy(), tol).passed, case


def test_cross_map_lrn2d_errors_and_conversion_as_torch() -> None:
    for shape in [(3, 4, 4), (1, 2, 3, 4, 4)]:
        with pytest.raises(ValueError) as theirs:
            torch.nn.CrossMapLRN2d(3)(torch.ones(shape))
        with pytest.raises(ValueError, match=str(theirs.value)):
            nn.CrossMapLRN2d(3)(np.ones(shape))
    t = torch.nn.CrossMapLRN2d(1)
    x = torch.ones((1, 4, 2, 2), requires_grad=True)
    with pytest.raises(RuntimeError) as theirs2:
        t(x).sum().backward()
    m = nn.CrossMapLRN2d(1)
    m(np.ones((1, 4, 2, 2)))
    with pytest.raises(RuntimeError) as mine:
        m.backward(np.ones((1, 4, 2, 2)))
    assert str(mine.value).startswith(str(theirs2.value))
    back = from_torch(torch.nn.CrossMapLRN2d(5, alpha=0.2, beta=0.5, k=3.0))
    assert (back.size, back.alpha, back.beta, back.k) == (5, 0.2, 0.5, 3.0)
    assert repr(back) == repr(to_torch(back))
