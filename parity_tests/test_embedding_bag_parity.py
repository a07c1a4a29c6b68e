"""EmbeddingBag vs torch: output, the table's gradient and the per-sample weights' gradient,
in every mode, with 2-D inputs and offsets (empty bags, include_last_offset), padding,
per_sample_weights, scale_grad_by_freq (torch's CPU divisor) and tied maxima; max_norm (the
table renormalised in place, for Embedding too) and sparse gradients (entry for entry); both
dtypes; and the converters."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.metrics import discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

CASES = [(mode, pad, freq, layout) for mode, pad, freq, layout in itertools.product(
    ["sum", "mean", "max"], [None, 2], [False, True], ["2d", "offsets", "last"])
    if not (mode == "max" and freq)]


def _step(m: Any, t: torch.nn.Module, x: np.ndarray, off: np.ndarray | None, mode: str,
          rng: np.random.Generator, dtype: Any) -> tuple[Any, torch.Tensor, Any, Any]:
    """One forward and backward of both bags on the same indices, offsets, per-sample weights
    (mode 'sum') and upstream gradient: refbp's output, torch's, refbp's per-sample-weight
    gradient and torch's per-sample-weight tensor (None without)."""
    psw = rng.standard_normal(x.shape).astype(dtype) if mode == "sum" else None
    tpsw = None if psw is None else torch.tensor(psw, requires_grad=True)
    yt = t(torch.from_numpy(x), None if off is None else torch.from_numpy(off), tpsw)
    y = m(x, off, psw)
    g = rng.standard_normal(y.shape).astype(dtype)
    gpsw = m.backward(g)
    yt.backward(torch.from_numpy(g))
    return y, yt, gpsw, tpsw


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("mode,pad,freq,layout", CASES)
def test_matches_torch(mode: str, pad: int | None, freq: bool, layout: str,
                       dtype: Any) -> None:
    rng = np.random.default_rng(len(str((mode, pad, freq, layout))))
    m = nn.EmbeddingBag(6, 3, mode=mode, padding_idx=pad, scale_grad_by_freq=freq,
                        include_last_offset=layout == "last", dtype=dtype, generator=rng)
    m.weight.data[1] = m.weight.data[3]  # tied maxima
    if layout == "2d":
        x, off = rng.integers(0, 6, (4, 3)), None
    else:  # an empty bag; include_last_offset's last offset is the input's length (CSR)
        x, off = rng.integers(0, 6, 11), np.array([0, 2, 2, 5, *([11] if layout == "last"
                                                                    else [])])
    t = to_torch(m)
    y, yt, gpsw, tpsw = _step(m, t, x, off, mode, rng, dtype)
    tol = tolerance_for(dtype)
    res = {"output": discrepancy(y, yt.detach().numpy(), tol),
           "grad:weight": discrepancy(m.weight.grad, t.weight.grad.numpy(), tol)}
    if tpsw is not None:
        res["grad:per_sample_weights"] = discrepancy(gpsw, tpsw.grad.numpy(), tol)
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


RENORM = [(mode, p, sparse) for mode, p, sparse in itertools.product(
    ["sum", "mean", "max"], [2.0, 1.0, 3.5, float("inf")], [False, True])
    if not (mode == "max" and sparse)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("mode,norm_type,sparse", RENORM)
def test_max_norm_and_sparse_match_torch(mode: str, norm_type: float, sparse: bool,
                                         dtype: Any) -> None:
    """Two forward/backward passes (the second sees the rows the first renormalised): the
    outputs, the renormalised tables, the gradients (sparse ones entry for entry)."""
    rng = np.random.default_rng(7)
    m = nn.EmbeddingBag(7, 3, max_norm=1.3, norm_type=norm_type, mode=mode, sparse=sparse,
                        padding_idx=2, dtype=dtype, generator=rng)
    t = to_torch(m)
    assert (t.max_norm, t.norm_type, t.sparse) == (1.3, norm_type, sparse)
    tol = tolerance_for(dtype)
    res = {}
    for step, (x, off) in enumerate([(rng.integers(0, 7, (4, 3)), None),
                                     (rng.integers(0, 7, 11), np.array([0, 2, 2, 5]))]):
        y, yt, gpsw, tpsw = _step(m, t, x, off, mode, rng, dtype)
        res[f"{step}:output"] = discrepancy(y, yt.detach().numpy(), tol)
        res[f"{step}:weight"] = discrepancy(m.weight.data, t.weight.detach().numpy(), tol)
        if tpsw is not None:
            res[f"{step}:per_sample_weights"] = discrepancy(gpsw, tpsw.grad.numpy(), tol)
        if sparse and step == 0:  # one pass: torch's entries (a second one merges some)
            tg = t.weight.grad
            np.testing.assert_array_equal(m.weight.grad.indices, tg._indices().numpy()[0])
            res["0:grad:weight entries"] = discrepancy(m.weight.grad.values,
                                                       tg._values().numpy(), tol)
    tg = t.weight.grad.to_dense() if sparse else t.weight.grad
    ours = m.weight.grad.to_dense() if sparse else m.weight.grad
    res["grad:weight"] = discrepancy(np.asarray(ours), tg.numpy(), tol)
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 0.5, float("inf")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_embedding_max_norm_matches_torch(norm_type: float, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    m = nn.Embedding(6, 4, max_norm=1.1, norm_type=norm_type, dtype=dtype, generator=rng)
    t = to_torch(m)
    assert (t.max_norm, t.norm_type) == (1.1, norm_type)
    x = rng.integers(0, 6, (3, 4))
    y, yt = m(x), t(torch.from_numpy(x))
    g = rng.standard_normal(y.shape).astype(dtype)
    m.backward(g)
    yt.backward(torch.from_numpy(g))
    tol = tolerance_for(dtype)
    res = {"output": discrepancy(y, yt.detach().numpy(), tol),
           "weight": discrepancy(m.weight.data, t.weight.detach().numpy(), tol),
           "grad:weight": discrepancy(m.weight.grad, t.weight.grad.numpy(), tol)}
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


def test_converts_both_ways() -> None:
    t = torch.nn.EmbeddingBag(7, 3, mode="max", include_last_offset=True,
                              padding_idx=1).double()
    m = from_torch(t)
    assert isinstance(m, nn.EmbeddingBag)
    assert (m.mode, m.include_last_offset, m.padding_idx) == ("max", True, 1)
    np.testing.assert_array_equal(m.weight.data, t.weight.detach().numpy())
    back = to_torch(m)
    assert (back.mode, back.include_last_offset, back.padding_idx) == ("max", True, 1)


def test_errors_are_torchs() -> None:
    t, m = torch.nn.EmbeddingBag(4, 2).double(), nn.EmbeddingBag(4, 2)
    for x, off in ((np.array([0, 1]), np.array([1])), (np.array([0, 7]), np.array([0])),
                   (np.array([0, 1]), np.array([0, 5]))):
        with pytest.raises(RuntimeError) as t_err:
            t(torch.from_numpy(x), torch.from_numpy(off))
        with pytest.raises(RuntimeError) as r_err:
            m(x, off)
        assert str(r_err.value) == str(t_err.value).split("\n")[0]
