"""Pooling parity with torch: every option family, ties, NaN/-inf routing, errors, conversion."""

from __future__ import annotations

import itertools
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


def _both(layer: Module, x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Outputs, indices (if any) and input gradients of refbp and torch on ``x``."""
    t = to_torch(layer).to(torch.float64 if x.dtype == np.float64 else torch.float32)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt, y = t(xt), layer(x)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if isinstance(y, tuple):
        out["indices"] = (y[1], yt[1].numpy())
        y, yt = y[0], yt[0]
    g = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    yt.backward(torch.from_numpy(g))
    out["output"] = (y, yt.detach().numpy())
    out["grad_input"] = (layer.backward(g), xt.grad.numpy())
    return out


def _x(shape: tuple[int, ...], dtype: str, ties: bool = False) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(shape)
    return (np.round(x) if ties else x).astype(dtype)


MAX_CASES = [(k, s, p, d, c) for k, s, p, d, c in itertools.product(
    [1, 2, 3], [None, 1, 2], [0, 1], [1, 2], [False, True]) if p <= ((k - 1) * d + 1) // 2]


@pytest.mark.parametrize("k,s,p,d,ceil", MAX_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_bitwise_with_ties(k: int, s: int | None, p: int, d: int, ceil: bool,
                                    dtype: str) -> None:
    """Max pooling moves values, so both sides agree exactly; rounded inputs make ties."""
    for cls, shape in ((nn.MaxPool2d, (2, 3, 7, 6)), (nn.MaxPool1d, (2, 3, 9)),
                       (nn.MaxPool3d, (2, 2, 5, 6, 5))):
        res = _both(cls(k, s, p, d, return_indices=True, ceil_mode=ceil),
                    _x(shape, dtype, ties=True))
        for name, (a, b) in res.items():
            np.testing.assert_array_equal(a, b, err_msg=f"{cls.__name__} {name}")


AVG_CASES = [(k, s, p, c, cip) for k, s, p, c, cip in itertools.product(
    [1, 2, 3], [None, 1, 2], [0, 1], [False, True], [False, True]) if p <= k // 2]


@pytest.mark.parametrize("k,s,p,ceil,cip", AVG_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool_options(k: int, s: int | None, p: int, ceil: bool, cip: bool,
                          dtype: str) -> None:
    tol = tolerance_for(dtype)
    layers = [(nn.AvgPool2d(k, s, p, ceil, cip), (2, 3, 7, 6)),
              (nn.AvgPool2d(k, s, p, ceil, cip, divisor_override=3), (2, 3, 7, 6)),
              (nn.AvgPool1d(k, s, p, ceil, cip), (2, 3, 9)),
              (nn.AvgPool3d(k, s, p, ceil, cip), (2, 2, 5, 4, 6)),
              (nn.AvgPool3d(k, s, p, ceil, cip, divisor_override=4), (2, 5, 4, 6))]
    for layer, shape in layers:
        for name, (a, b) in _both(layer, _x(shape, dtype)).items():
            assert a.shape == b.shape
            assert discrepancy(a, b, tol).passed, f"{layer!r} {name}"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, (None, 3), (3, None), (2, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_pools(size: Any, dtype: str) -> None:
    tol = tolerance_for(dtype)
    layers: list[tuple[Module, tuple[int, ...]]] = [
        (nn.AdaptiveAvgPool2d(size), (2, 3, 7, 6)),
        (nn.AdaptiveMaxPool2d(size, return_indices=True), (2, 3, 7, 6))]
    size3 = (*size, 2) if isinstance(size, tuple) else size
    layers += [(nn.AdaptiveAvgPool3d(size3), (2, 2, 5, 7, 6)),
               (nn.AdaptiveMaxPool3d(size3, return_indices=True), (2, 2, 5, 7, 6))]
    if not isinstance(size, tuple):
        layers += [(nn.AdaptiveAvgPool1d(size), (2, 3, 7)),
                   (nn.AdaptiveMaxPool1d(size, return_indices=True), (2, 3, 7))]
    for layer, shape in layers:
        ties = type(layer).__name__.startswith("AdaptiveMax")
        for name, (a, b) in _both(layer, _x(shape, dtype, ties)).items():
            if ties:
                np.testing.assert_array_equal(a, b, err_msg=f"{layer!r} {name}")
            assert discrepancy(a, b, tol).passed, f"{layer!r} {name}"


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2, 1, 1, return_indices=True),
                                   nn.AdaptiveMaxPool2d(2, return_indices=True),
                                   nn.MaxPool3d((1, 2, 2), 1, (0, 1, 1), return_indices=True),
                                   nn.AdaptiveMaxPool3d((1, 2, 2), return_indices=True)])
def test_nan_and_minus_inf_routing(layer: Module) -> None:
    """A NaN window reports its last NaN, an all -inf window its first input element."""
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4))
    x[0, 0, :2, :2] = [[np.nan, 1.0], [np.nan, 2.0]]
    x[0, 1] = -np.inf
    x[0, 1, 3, 3] = 5.0
    if "3d" in type(layer).__name__:
        x = x[:, :, None]
    res = _both(layer, x)
    np.testing.assert_array_equal(res["indices"][0], res["indices"][1])
    np.testing.assert_array_equal(res["output"][0], res["output"][1])
    np.testing.assert_array_equal(res["grad_input"][0], res["grad_input"][1])


def test_unbatched_inputs() -> None:
    for layer, shape in ((nn.MaxPool2d(2), (3, 6, 6)), (nn.AvgPool1d(2), (3, 8)),
                         (nn.AdaptiveAvgPool2d(2), (3, 5, 5)), (nn.MaxPool1d(3), (2, 9))):
        for _, (a, b) in _both(layer, _x(shape, "float64")).items():
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)


ERRORS: list[tuple[str, Callable[[Any], Any], tuple[int, ...]]] = [
    ("MaxPool2d(2, padding=2)", lambda m: m.MaxPool2d(2, padding=2), (2, 3, 6, 6)),
    ("MaxPool2d(3, padding=-1)", lambda m: m.MaxPool2d(3, padding=-1), (2, 3, 6, 6)),
    ("MaxPool2d(0)", lambda m: m.MaxPool2d(0), (2, 3, 6, 6)),
    ("MaxPool2d(2, dilation=0)", lambda m: m.MaxPool2d(2, dilation=0), (2, 3, 6, 6)),
    ("MaxPool2d(7)", lambda m: m.MaxPool2d(7), (2, 3, 6, 6)),
    ("MaxPool2d 2-D input", lambda m: m.MaxPool2d(2), (4, 4)),
    ("MaxPool2d((2, 2, 2))", lambda m: m.MaxPool2d((2, 2, 2)), (2, 3, 6, 6)),
    ("MaxPool1d 4-D input", lambda m: m.MaxPool1d(2), (2, 3, 6, 6)),
    ("MaxPool1d(2, padding=2)", lambda m: m.MaxPool1d(2, padding=2), (2, 3, 6)),
    ("MaxPool1d(7)", lambda m: m.MaxPool1d(7), (2, 3, 6)),
    ("MaxPool1d(0)", lambda m: m.MaxPool1d(0), (2, 3, 6)),
    ("MaxPool1d(2, stride=0)", lambda m: m.MaxPool1d(2, stride=0), (2, 3, 6)),
    ("MaxPool1d(2, padding=-1)", lambda m: m.MaxPool1d(2, padding=-1), (2, 3, 6)),
    ("MaxPool1d(2, dilation=0)", lambda m: m.MaxPool1d(2, dilation=0), (2, 3, 6)),
    ("AvgPool2d(2, padding=2)", lambda m: m.AvgPool2d(2, padding=2), (2, 3, 6, 6)),
    ("AvgPool2d(2, stride=0)", lambda m: m.AvgPool2d(2, stride=0), (2, 3, 6, 6)),
    ("AvgPool2d(7)", lambda m: m.AvgPool2d(7), (2, 3, 6, 6)),
    ("AvgPool2d(2, divisor_override=0)", lambda m: m.AvgPool2d(2, divisor_override=0),
     (2, 3, 6, 6)),
    ("AvgPool1d(7)", lambda m: m.AvgPool1d(7), (2, 3, 6)),
    ("AvgPool1d 4-D input", lambda m: m.AvgPool1d(2), (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d 2-D input", lambda m: m.AdaptiveAvgPool2d(2), (4, 4)),
    ("AdaptiveAvgPool2d(-1)", lambda m: m.AdaptiveAvgPool2d(-1), (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d((2, 2, 2))", lambda m: m.AdaptiveAvgPool2d((2, 2, 2)), (2, 3, 6, 6)),
    ("AdaptiveAvgPool1d 4-D input", lambda m: m.AdaptiveAvgPool1d(2), (2, 3, 6, 6)),
    ("AdaptiveMaxPool2d 2-D input", lambda m: m.AdaptiveMaxPool2d(2), (4, 4)),
    ("MaxPool3d(2, padding=2)", lambda m: m.MaxPool3d(2, padding=2), (2, 3, 6, 6, 6)),
    ("MaxPool3d(0)", lambda m: m.MaxPool3d(0), (2, 3, 6, 6, 6)),
    ("MaxPool3d(2, dilation=0)", lambda m: m.MaxPool3d(2, dilation=0), (2, 3, 6, 6, 6)),
    ("MaxPool3d(3, padding=-1)", lambda m: m.MaxPool3d(3, padding=-1), (2, 3, 6, 6, 6)),
    ("MaxPool3d(7)", lambda m: m.MaxPool3d(7), (2, 3, 6, 6, 6)),
    ("MaxPool3d 3-D input", lambda m: m.MaxPool3d(2), (3, 4, 4)),
    ("MaxPool3d((2, 2))", lambda m: m.MaxPool3d((2, 2)), (2, 3, 6, 6, 6)),
    ("AvgPool3d(2, padding=2)", lambda m: m.AvgPool3d(2, padding=2), (2, 3, 6, 6, 6)),
    ("AvgPool3d(2, stride=0)", lambda m: m.AvgPool3d(2, stride=0), (2, 3, 6, 6, 6)),
    ("AvgPool3d(7)", lambda m: m.AvgPool3d(7), (2, 3, 6, 6, 6)),
    ("AvgPool3d 3-D input", lambda m: m.AvgPool3d(2), (3, 4, 4)),
    ("AvgPool3d((2, 2))", lambda m: m.AvgPool3d((2, 2)), (2, 3, 6, 6, 6)),
    ("AvgPool3d(2, divisor_override=0)", lambda m: m.AvgPool3d(2, divisor_override=0),
     (2, 3, 6, 6, 6)),
    ("AdaptiveAvgPool3d 3-D input", lambda m: m.AdaptiveAvgPool3d(2), (3, 4, 4)),
    ("AdaptiveAvgPool3d((2, 2))", lambda m: m.AdaptiveAvgPool3d((2, 2)), (2, 3, 6, 6, 6)),
    ("AdaptiveMaxPool3d 3-D input", lambda m: m.AdaptiveMaxPool3d(2), (3, 4, 4)),
    ("AdaptiveMaxPool1d 4-D input", lambda m: m.AdaptiveMaxPool1d(2), (3, 4, 4, 4)),
    ("LPPool2d(2, 7)", lambda m: m.LPPool2d(2, 7), (2, 3, 6, 6)),
    ("LPPool1d 4-D input", lambda m: m.LPPool1d(2, 2), (2, 3, 6, 6)),
    ("LPPool3d 3-D input", lambda m: m.LPPool3d(2, 2), (3, 4, 4)),
]


@pytest.mark.parametrize("name,make,shape", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_arguments_raise_torchs_message(name: str, make: Callable[[Any], Any],
                                            shape: tuple[int, ...]) -> None:
    with pytest.raises((RuntimeError, IndexError)) as t_err:
        make(torch.nn)(torch.ones(shape, dtype=torch.float64))
    with pytest.raises(ValueError) as r_err:
        make(nn)(np.ones(shape))
    assert str(r_err.value) == str(t_err.value).splitlines()[0]


def test_from_torch_round_trip_keeps_arguments() -> None:
    t = torch.nn.Sequential(torch.nn.MaxPool2d((2, 3), 1, (1, 0), 2, True, True),
                            torch.nn.AvgPool2d(3, 2, 1, True, False, 4),
                            torch.nn.AvgPool1d(3), torch.nn.MaxPool1d(2),
                            torch.nn.AdaptiveAvgPool2d((None, 2)),
                            torch.nn.AdaptiveMaxPool2d(3, True),
                            torch.nn.AdaptiveAvgPool1d(4),
                            torch.nn.MaxPool3d((1, 2, 3), 2, 0, (1, 1, 2), True, True),
                            torch.nn.AvgPool3d(2, 1, 1, False, False, 3),
                            torch.nn.AdaptiveAvgPool3d((2, None, 1)),
                            torch.nn.AdaptiveMaxPool3d(2, True), torch.nn.AdaptiveMaxPool1d(3),
                            torch.nn.LPPool2d(1.5, (2, 3), 1, True), torch.nn.LPPool1d(2, 3))
    m = from_torch(t)
    assert (m[0].kernel_size, m[0].stride, m[0].padding, m[0].dilation) == ((2, 3), 1, (1, 0),
                                                                             2)
    assert m[0].return_indices and m[0].ceil_mode
    assert (m[1].ceil_mode, m[1].count_include_pad, m[1].divisor_override) == (True, False, 4)
    assert m[4].output_size == (None, 2) and m[5].return_indices
    back = to_torch(m)
    assert [repr(a) for a in back] == [repr(b) for b in t]


def test_unflatten_matches_torch_and_converts() -> None:
    t = torch.nn.Unflatten(1, (2, -1))
    m = from_torch(t)
    assert isinstance(m, nn.Unflatten) and m.unflattened_size == (2, -1)
    res = _both(m, _x((4, 6), "float64"))
    for a, b in res.values():
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.Unflatten(1, (4, 2))(torch.ones(4, 6))
    with pytest.raises(ValueError) as r_err:
        nn.Unflatten(1, (4, 2))(np.ones((4, 6)))
    assert str(r_err.value) == str(t_err.value)


LP_CASES = [(p, k, s, c) for p, k, s, c in itertools.product(
    [1, 2, 3, 1.5, 4, float("inf"), float("-inf")], [2, 3], [None, 1, 2], [False, True])]


@pytest.mark.parametrize("p,k,s,ceil", LP_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lp_pool_options(p: float, k: int, s: int | None, ceil: bool, dtype: str) -> None:
    """Positive inputs (a fractional power of a negative number is NaN on both sides)."""
    tol = tolerance_for(dtype)
    rng = np.random.default_rng(6)
    for layer, shape in ((nn.LPPool1d(p, k, s, ceil), (2, 3, 9)),
                         (nn.LPPool2d(p, (k, 2), s, ceil), (2, 3, 7, 6)),
                         (nn.LPPool3d(p, k, s, ceil), (2, 5, 4, 6))):
        x = rng.uniform(0.1, 2.0, shape).astype(dtype)
        for name, (a, b) in _both(layer, x).items():
            assert a.shape == b.shape
            assert discrepancy(a, b, tol).passed, f"{layer!r} {name}"


def test_lp_pool_nan_and_zero_windows_as_torch() -> None:
    """Negative inputs with p = 1.5 give NaN where torch does; an all-zero window has output 0
    and gradient 0 on both sides."""
    x = np.random.default_rng(7).standard_normal((2, 3, 8))
    x[0, 0, :4] = 0.0
    for p in (1.5, 2, 3):
        res = _both(nn.LPPool1d(p, 2), x)
        for name, (a, b) in res.items():
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"p={p} {name}")
            ok = ~np.isnan(b)
            np.testing.assert_allclose(a[ok], b[ok], rtol=1e-13, atol=1e-300)
        assert not res["grad_input"][0][0, 0, :4].any()


UNPOOL_CASES = [(1, (2, 3, 9), {"kernel_size": 2}), (1, (3, 9), {"kernel_size": 3, "stride": 2,
                                                                  "padding": 1}),
                (2, (2, 3, 7, 6), {"kernel_size": 2}),
                (2, (2, 3, 7, 6), {"kernel_size": (2, 3), "stride": (2, 1)}),
                (3, (2, 2, 5, 4, 6), {"kernel_size": 2, "stride": (1, 2, 2)}),
                (3, (2, 5, 4, 6), {"kernel_size": (1, 2, 2)})]


@pytest.mark.parametrize("n,shape,kw", UNPOOL_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_unpool_inverts_max_pool_as_torch(n: int, shape: tuple[int, ...], kw: dict[str, Any],
                                              dtype: str) -> None:
    """MaxPool (indices) then MaxUnpool, both sides; also with an explicit output_size."""
    x = _x(shape, dtype)
    pooled, idx = getattr(nn, f"MaxPool{n}d")(**kw, return_indices=True)(x)
    for output_size in (None, x.shape[-n:]):
        m = getattr(nn, f"MaxUnpool{n}d")(**kw)
        t = to_torch(m)
        xt = torch.from_numpy(pooled.copy()).requires_grad_()
        yt = t(xt, torch.from_numpy(idx), output_size)
        y = m(pooled, idx, output_size)
        g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_array_equal(m.backward(g), xt.grad.numpy())


def test_max_unpool_bad_output_size_and_index_raise() -> None:
    x = np.ones((1, 1, 4))
    idx = np.zeros((1, 1, 4), dtype=np.int64)
    with pytest.raises(ValueError) as t_err:
        torch.nn.MaxUnpool1d(2)(torch.from_numpy(x), torch.from_numpy(idx), [3])
    with pytest.raises(ValueError) as r_err:
        nn.MaxUnpool1d(2)(x, idx, [3])
    assert str(r_err.value) == str(t_err.value)
    with pytest.raises(RuntimeError, match="invalid max index"):
        torch.nn.MaxUnpool1d(2)(torch.from_numpy(x), torch.from_numpy(idx + 8))
    with pytest.raises(ValueError, match="invalid max index"):
        nn.MaxUnpool1d(2)(x, idx + 8)
