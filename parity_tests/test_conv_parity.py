"""Convolution layers against torch: every option family, both dtypes, both converters.

``compare_module`` runs forward and backward on both sides with a random upstream gradient
and compares the output, the input gradient and every parameter gradient with the harness
tolerances. A hypothesis search over kernel/stride/padding/dilation/groups/modes follows, and
torch is checked to reject the same bad arguments refbp rejects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from refbp import nn as rnn
from refbp.mirror import as_tensor, compare_module, from_torch, to_numpy, to_torch
from refbp.registry.ops import op
from refbp.tolerances import tolerance_for

# the declared op-check samples of the convolution layers: (layer, sample)
CONV_LAYERS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
               "ConvTranspose3d")
CONV_CASES = [(name, s) for name in CONV_LAYERS for s in op(name).samples]

pytestmark = pytest.mark.parity
DTYPES = [np.float64, np.float32]


def _check(m: rnn.Module, x: np.ndarray) -> None:
    diffs = compare_module(m, x)
    bad = {k: str(d) for k, d in diffs.items() if not d.passed}
    assert not bad, bad
    names = {f"grad:{n}" for n, _ in m.named_parameters()}
    assert set(diffs) == {"output", "grad_input"} | names and names


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[1].id for c in CONV_CASES])
def test_suite_cases_match_torch(case: tuple[str, Any], dtype: Any) -> None:
    layer, sample = case
    args, size = dict(sample.options), sample.data.extra["size"]
    m = getattr(rnn, layer)(**args, dtype=dtype, generator=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, args["in_channels"], *size)).astype(dtype)
    if dtype == np.float64:
        _check(m, x)
        return
    # float32: a gradient element that is a cancelling sum may differ by more than the
    # elementwise tolerance on some kernels (OpenBLAS Haswell: conv2d-depthwise grad_weight,
    # 126 terms, sum |terms| 60, value -0.009, both sides within 1.3e-6 of float64). Each side
    # of a sum of n products carries at most gamma_n * sum|terms| (gamma_n ~ n u), so every
    # element must lie within 2 gamma_n sum|terms| of torch's; the normwise check stays.
    names = {f"grad:{n}" for n, _ in m.named_parameters()}
    diffs = compare_module(m, x)
    assert set(diffs) == {"output", "grad_input"} | names and names
    assert all(d.normwise <= tolerance_for(dtype).normwise for d in diffs.values()), diffs
    if any(not d.passed for d in diffs.values()):
        _within_rounding_bound(m, x)


def _within_rounding_bound(m: rnn.Module, x: np.ndarray) -> None:
    """Every output and gradient element of ``m`` within ``2 gamma_n sum|terms|`` of torch's.

    A convolution is linear in its input, its weight and its upstream gradient, so the same
    layer run on ``|x|``, ``|W|`` and ``|g|`` in float64 gives every element's sum of
    absolute terms; n is bounded by the longest reduction (N times the larger plane, plus
    the channels times the kernel size).
    """
    g = np.random.default_rng(2).standard_normal(m(x).shape).astype(x.dtype)
    m.zero_grad()
    mine = {"output": m(x), "grad_input": m.backward(g)}
    mine.update({f"grad:{n}": p.grad for n, p in m.named_parameters()})
    t, ta = to_torch(m), to_torch(m).double()
    with torch.no_grad():
        for p in ta.parameters():
            p.abs_()
    xt, xa = as_tensor(x, requires_grad=True), as_tensor(np.abs(x).astype(np.float64),
                                                          requires_grad=True)
    yt, ya = t(xt), ta(xa)
    yt.backward(as_tensor(g))
    ya.backward(as_tensor(np.abs(g).astype(np.float64)))
    theirs = {"output": yt, "grad_input": xt.grad,
              **{f"grad:{n}": p.grad for n, p in t.named_parameters()}}
    sums = {"output": ya, "grad_input": xa.grad,
            **{f"grad:{n}": p.grad for n, p in ta.named_parameters()}}
    k = int(np.prod(m.weight.shape[1:])) * max(m.weight.shape[:2])
    n = x.shape[0] * max(int(np.prod(x.shape[2:])), int(np.prod(yt.shape[2:]))) + k
    gamma = n * float(np.finfo(np.float32).eps) / 2 / (1 - n * float(np.finfo(np.float32).eps) / 2)
    for name, a in mine.items():
        b, s = to_numpy(theirs[name]), to_numpy(sums[name])
        excess = np.abs(a.astype(np.float64) - b) - 2 * gamma * s
        assert excess.max() <= 0, (name, float(excess.max()))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_unbatched_input(dtype: Any) -> None:
    for m, shape in ((rnn.Conv2d(2, 3, 3, padding=1, dtype=dtype), (2, 5, 4)),
                     (rnn.Conv1d(2, 3, 2, dtype=dtype), (2, 6)),
                     (rnn.ConvTranspose2d(2, 3, 2, stride=2, dtype=dtype), (2, 3, 3)),
                     (rnn.ConvTranspose1d(2, 3, 3, dtype=dtype), (2, 4)),
                     (rnn.Conv3d(2, 3, 2, dtype=dtype), (2, 3, 4, 3)),
                     (rnn.ConvTranspose3d(2, 3, 2, stride=2, dtype=dtype), (2, 2, 3, 2))):
        _check(m, np.random.default_rng(2).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", CONV_LAYERS)
def test_empty_batch(name: str, dtype: Any) -> None:
    """N = 0: an empty output of torch's shape, empty input gradient, zero weight gradients."""
    nd = int(name[-2])
    m = getattr(rnn, name)(2, 4, 2, stride=2, padding=1, groups=2, dtype=dtype,
                           generator=np.random.default_rng(0))
    x = np.zeros((0, 2, *(5,) * nd), dtype=dtype)
    diffs = compare_module(m, x)
    assert all(d.passed for d in diffs.values()), diffs
    assert m(x).shape == tuple(to_torch(m)(as_tensor(x)).shape) and m(x).shape[0] == 0
    m.zero_grad()
    m.backward(np.zeros(m(x).shape, dtype=dtype))
    assert m.weight.grad is not None and not m.weight.grad.any()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_torch_round_trip(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    t = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect"), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(4, 2, 2, stride=2, groups=2, bias=False),
        torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 3)).to(dtype)
    m = from_torch(t)
    assert list(m.state_dict()) == list(t.state_dict())
    assert m[0].padding == "same" and m[0].padding_mode == "reflect" and m[2].bias is None
    back = to_torch(m)
    assert repr(back) == repr(t)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(
        np.float64 if dtype == torch.float64 else np.float32)
    _check(m, x)


@st.composite
def conv_configs(draw: Any) -> tuple[rnn.Module, tuple[int, ...]]:
    nd = draw(st.sampled_from([1, 2, 3]))
    transposed = draw(st.booleans())
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 3)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 7 if nd < 3 else 4)) for _ in range(nd))
    bias = draw(st.booleans())
    if transposed:
        op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d, strict=True))
        p = tuple(min(pi, (ki - 1) * di // 2) for pi, ki, di in zip(p, k, d, strict=True))
        cls = (rnn.ConvTranspose1d, rnn.ConvTranspose2d, rnn.ConvTranspose3d)[nd - 1]
        m = cls(cin, cout, k, stride=s, padding=p, output_padding=op, groups=groups,
                bias=bias, dilation=d)
    else:
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        if draw(st.booleans()):
            padding: Any = draw(st.sampled_from(["same", "valid"]))
            s = (1,) * nd if padding == "same" else s
        else:
            padding = p
        size = tuple(max(si, (ki - 1) * di + 1, 4) for si, ki, di in zip(size, k, d, strict=True))
        cls = (rnn.Conv1d, rnn.Conv2d, rnn.Conv3d)[nd - 1]
        m = cls(cin, cout, k, stride=s, padding=padding, dilation=d, groups=groups, bias=bias,
                padding_mode=mode)
    return m, (2, cin, *size)


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_random_configurations_match_torch(config: tuple[rnn.Module, tuple[int, ...]]) -> None:
    m, shape = config
    x = np.random.default_rng(0).standard_normal(shape)
    try:
        m(x)
    except ValueError as exc:  # refbp refuses: torch must refuse too
        with pytest.raises((RuntimeError, ValueError)):
            to_torch(m)(as_tensor(x))
        assert str(exc)
        return
    _check(m, x)


BAD: list[tuple[str, Callable[[Any], Any], tuple[int, ...]]] = [
    ("negative padding", lambda nn: nn.Conv2d(3, 4, 3, padding=-1), (2, 3, 5, 5)),
    ("negative padding transposed", lambda nn: nn.ConvTranspose1d(3, 4, 3, padding=-1),
     (2, 3, 5)),
    ("output padding", lambda nn: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2),
     (2, 3, 5, 5)),
]


@pytest.mark.parametrize("name,build,shape", BAD, ids=[b[0] for b in BAD])
def test_torch_rejects_what_refbp_rejects_at_construction(
        name: str, build: Callable[[Any], Any], shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        build(rnn)
    with pytest.raises(RuntimeError, match="padding"):  # torch raises at the first forward
        build(torch.nn)(torch.zeros(shape))


@pytest.mark.parametrize("name", CONV_LAYERS)
def test_default_init_distribution_matches_torch(name: str) -> None:
    """Same bounds: the largest |weight| and |bias| of many draws approach the same limit."""
    args = (6, 4, 3)
    m = getattr(rnn, name)(*args, groups=2, generator=np.random.default_rng(0))
    torch.manual_seed(0)
    t = getattr(torch.nn, name)(*args, groups=2)
    for key in ("weight", "bias"):
        mine, theirs = m.state_dict()[key], to_numpy(t.state_dict()[key])
        assert mine.shape == theirs.shape
        bound = 1 / np.sqrt(t.weight.shape[1] * np.prod(t.weight.shape[2:]))
        assert np.abs(mine).max() <= bound and np.abs(theirs).max() <= bound
