"""Parity of the two-input layers with torch: CosineSimilarity, PairwiseDistance and
Bilinear (output, both input gradients, parameter gradients; both dtypes), with broadcasting,
every norm degree, clamped norms, unbatched inputs, and through PairProbe (the op checks'
adapter) and the converters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from refbp.mirror import compare_module, from_torch, to_torch

pytestmark = pytest.mark.parity

DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def _inputs(s1: tuple[int, ...], s2: tuple[int, ...], dtype: Any,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)


def _assert_matches(module: Any, x1: np.ndarray, x2: np.ndarray) -> None:
    result = compare_module(module, x1, x2)
    assert set(result) >= {"output", "grad_input", "grad_input.1"}
    assert all(d.passed for d in result.values()), f"refbp vs torch: {result}"


COSINE = [({}, (5, 4), (5, 4)), ({"dim": 0}, (5, 4), (1, 4)), ({"dim": -1}, (2, 3, 4), (3, 4)),
          ({"dim": 1, "eps": 0.5}, (6, 3), (6, 3)), ({"dim": 0}, (4,), (4,)),
          ({"dim": 2}, (2, 3, 5), (2, 1, 5))]


@DTYPES
@pytest.mark.parametrize("options,s1,s2", COSINE)
def test_cosine_similarity(options: dict[str, Any], s1: tuple[int, ...], s2: tuple[int, ...],
                           dtype: Any) -> None:
    x1, x2 = _inputs(s1, s2, dtype)
    if options.get("eps") == 0.5:  # two rows below eps: the clamp is active
        x1[:2] *= 0.1
    _assert_matches(rnn.CosineSimilarity(**options), x1, x2)


def test_cosine_similarity_of_a_zero_vector() -> None:
    x1, x2 = _inputs((3, 4), (3, 4), np.float64)
    x1[1] = 0.0
    _assert_matches(rnn.CosineSimilarity(), x1, x2)


PAIRWISE = [({"p": p}, (5, 4), (5, 4)) for p in (2.0, 1.0, 3.0, 1.5, 0.5, -1.0, math.inf,
                                                   -math.inf)] + [
    ({"keepdim": True}, (5, 4), (1, 4)), ({"eps": 0.0}, (4,), (4,)),
    ({"p": 1.0, "keepdim": True}, (2, 3, 4), (3, 4)), ({}, (5, 4), (4,))]


@DTYPES
@pytest.mark.parametrize("options,s1,s2", PAIRWISE)
def test_pairwise_distance(options: dict[str, Any], s1: tuple[int, ...], s2: tuple[int, ...],
                           dtype: Any) -> None:
    _assert_matches(rnn.PairwiseDistance(**options), *_inputs(s1, s2, dtype))


def test_pairwise_distance_p0_has_no_gradient_in_torch() -> None:
    """torch's norm_backward returns no gradient for p = 0 (a count); refbp returns zeros."""
    x1, x2 = _inputs((5, 4), (5, 4), np.float64)
    t1, t2 = (torch.from_numpy(x).requires_grad_() for x in (x1, x2))
    yt = torch.nn.PairwiseDistance(p=0.0)(t1, t2)
    yt.sum().backward()
    m = rnn.PairwiseDistance(p=0.0)
    np.testing.assert_array_equal(m(x1, x2), yt.detach().numpy())
    g1, g2 = m.backward(np.ones(5))
    for g, t in ((g1, t1), (g2, t2)):
        ref = np.zeros_like(g) if t.grad is None else t.grad.numpy()
        np.testing.assert_array_equal(g, ref)


BILINEAR = [((3, 5, 2, True), (6, 3), (6, 5)), ((4, 4, 3, False), (2, 3, 4), (2, 3, 4)),
            ((2, 3, 4, True), (2,), (3,)), ((3, 2, 1, True), (0, 3), (0, 2))]


@DTYPES
@pytest.mark.parametrize("args,s1,s2", BILINEAR)
def test_bilinear(args: tuple[int, int, int, bool], s1: tuple[int, ...],
                  s2: tuple[int, ...], dtype: Any) -> None:
    m = rnn.Bilinear(*args, dtype=dtype, generator=np.random.default_rng(4))
    _assert_matches(m, *_inputs(s1, s2, dtype))


def test_bilinear_errors_are_torchs() -> None:
    t = torch.nn.Bilinear(3, 4, 2).double()
    r = rnn.Bilinear(3, 4, 2)
    for s1, s2 in (((5, 3), (6, 4)), ((5, 2), (5, 4)), ((5, 3), (5, 5))):
        with pytest.raises(RuntimeError) as t_err:
            t(torch.ones(s1, dtype=torch.float64), torch.ones(s2, dtype=torch.float64))
        with pytest.raises(RuntimeError) as r_err:
            r(np.ones(s1), np.ones(s2))
        assert str(r_err.value) == str(t_err.value)


@DTYPES
def test_pair_probe_through_the_converters(dtype: Any) -> None:
    """PairProbe's twin is the stock layer on the same slices; both directions keep the
    layer's options and weights."""
    probe = rnn.PairProbe("Bilinear", 3, {"in1_features": 3, "in2_features": 5,
                                          "out_features": 2}, dtype=dtype)
    x = np.random.default_rng(5).standard_normal((4, 8)).astype(dtype)
    result = compare_module(probe, x)
    assert all(d.passed for d in result.values()), result
    back = from_torch(to_torch(probe))
    assert isinstance(back, rnn.PairProbe) and back.op_name == "Bilinear"
    np.testing.assert_array_equal(back.op.weight.data, probe.op.weight.data)


def test_converters_keep_the_options() -> None:
    t = torch.nn.Sequential(torch.nn.PairwiseDistance(p=3.0, eps=0.1, keepdim=True),
                            torch.nn.CosineSimilarity(dim=0, eps=1e-3))
    m = from_torch(t)
    assert (m[0].p, m[0].eps, m[0].keepdim) == (3.0, 0.1, True)
    assert (m[1].dim, m[1].eps) == (0, 1e-3)
    back = to_torch(m)
    assert (back[0].norm, back[0].eps, back[0].keepdim) == (3.0, 0.1, True)
    b = from_torch(torch.nn.Bilinear(3, 4, 2, bias=False).double())
    assert isinstance(b, rnn.Bilinear) and b.bias is None and b.weight.shape == (2, 3, 4)
