"""RNN, LSTM, GRU, their cells, Embedding and RNNOutput against stock torch.

Every option family (nonlinearity, bias, batch_first, bidirectional, proj_size, initial
states, unbatched input) in float64 and float32: outputs, final states, the gradients of the
input and of the initial states, and every parameter gradient (``compare_module`` with a
seeded upstream gradient on every output leaf), at the harness tolerance. Also: conversion
both ways, and the same bad input raising the same exception type on both sides.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.mirror import as_tensor, compare_module, from_torch, to_numpy, to_torch
from refbp.mirror.sequence import RNNOutputTorch

pytestmark = pytest.mark.parity
DTYPES = ("float64", "float32")
RNG = np.random.default_rng(11)


def _assert_all_pass(res: dict[str, Any], at_least: int = 4) -> None:
    bad = {k: str(v) for k, v in res.items() if not v.passed}
    assert not bad, f"refbp vs torch: {bad}"
    assert len(res) >= at_least


def _stack(kind: str, dtype: str, **kw: Any) -> nn.RNNBase:
    gen = np.random.default_rng(3)
    if kind == "LSTM":
        return nn.LSTM(3, 4, dtype=dtype, generator=gen, **kw)
    if kind == "GRU":
        return nn.GRU(3, 4, dtype=dtype, generator=gen, **kw)
    return nn.RNN(3, 4, nonlinearity=kind, dtype=dtype, generator=gen, **kw)


FAMILIES = [(k, b, bf, bi, p) for k, b, bf, bi, p in itertools.product(
    ("tanh", "relu", "LSTM", "GRU"), (True, False), (False, True), (False, True), (0, 2))
    if p == 0 or k == "LSTM"]


def _hx(m: nn.RNNBase, batch: tuple[int, ...], dtype: str) -> Any:
    lead = m.num_layers * m.num_directions
    h = RNG.standard_normal((lead, *batch, m.real_hidden_size)).astype(dtype)
    if isinstance(m, nn.LSTM):
        return h, RNG.standard_normal((lead, *batch, m.hidden_size)).astype(dtype)
    return h


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "bias", "batch_first", "bidirectional", "proj"), FAMILIES)
def test_stack_matches_torch(kind: str, bias: bool, batch_first: bool, bidirectional: bool,
                             proj: int, dtype: str) -> None:
    kw = {"proj_size": proj} if proj else {}
    m = _stack(kind, dtype, num_layers=2, bias=bias, batch_first=batch_first,
               bidirectional=bidirectional, **kw)
    x = RNG.standard_normal((2, 5, 3) if batch_first else (5, 2, 3)).astype(dtype)
    _assert_all_pass(compare_module(m, x))
    res = compare_module(m, x, _hx(m, (2,), dtype), seed=1)
    _assert_all_pass(res)
    assert "grad_input.1" in res or "grad_input.1.1" in res


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["tanh", "relu", "LSTM", "GRU"])
def test_unbatched_stack_matches_torch(kind: str, dtype: str) -> None:
    m = _stack(kind, dtype, num_layers=2, bidirectional=True, batch_first=True)
    x = RNG.standard_normal((5, 3)).astype(dtype)
    _assert_all_pass(compare_module(m, x))
    _assert_all_pass(compare_module(m, x, _hx(m, (), dtype)))


def _shapes(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return tuple(_shapes(e) for e in v)
    return tuple(v.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["tanh", "relu", "LSTM", "GRU"])
def test_empty_batch_matches_torch(kind: str, batch_first: bool, dtype: str) -> None:
    """N = 0: torch returns empty outputs and states and zero weight gradients; so does
    refbp (with and without initial states, two layers, both directions)."""
    kw = {"proj_size": 2} if kind == "LSTM" else {}
    m = _stack(kind, dtype, num_layers=2, bidirectional=True, batch_first=batch_first, **kw)
    x = np.zeros((0, 5, 3) if batch_first else (5, 0, 3), dtype=dtype)
    for args in ((x,), (x, _hx(m, (0,), dtype))):
        _assert_all_pass(compare_module(m, *args))
        assert _shapes(m(*args)) == _shapes(to_torch(m)(*_tensors(args)))
    assert all(not p.grad.any() for p in m.parameters() if p.grad is not None)


CELLS: list[tuple[str, Callable[..., nn.Module]]] = [
    ("rnncell-tanh", lambda **k: nn.RNNCell(5, 10, **k)),
    ("rnncell-relu-nobias", lambda **k: nn.RNNCell(5, 10, bias=False, nonlinearity="relu",
                                                   **k)),
    ("grucell", lambda **k: nn.GRUCell(5, 10, **k)),
    ("grucell-nobias", lambda **k: nn.GRUCell(5, 10, bias=False, **k)),
    ("lstmcell", lambda **k: nn.LSTMCell(5, 10, **k)),
    ("lstmcell-nobias", lambda **k: nn.LSTMCell(5, 10, bias=False, **k)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(3,), (), (0,)])
@pytest.mark.parametrize(("name", "make"), CELLS)
def test_cell_matches_torch(name: str, make: Callable[..., nn.Module], batch: tuple[int, ...],
                            dtype: str) -> None:
    m = make(dtype=dtype, generator=np.random.default_rng(0))
    x = RNG.standard_normal((*batch, 5)).astype(dtype)
    h: Any = RNG.standard_normal((*batch, 10)).astype(dtype)
    if isinstance(m, nn.LSTMCell):
        h = (h, RNG.standard_normal((*batch, 10)).astype(dtype))
    _assert_all_pass(compare_module(m, x))
    _assert_all_pass(compare_module(m, x, h))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{}, {"padding_idx": 1}, {"padding_idx": -1,
                                                         "scale_grad_by_freq": True}])
def test_embedding_matches_torch(kw: dict[str, Any], dtype: str) -> None:
    m = nn.Embedding(6, 4, dtype=dtype, generator=np.random.default_rng(0), **kw)
    idx = RNG.integers(0, 6, size=(3, 7))
    res = compare_module(m, idx)
    _assert_all_pass(res, at_least=2)
    assert set(res) == {"output", "grad:weight"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("select", ["last", "all", "hidden"])
def test_sequence_model_with_rnn_output_matches_torch(select: str, dtype: str) -> None:
    gen = np.random.default_rng(0)
    width = 8 if select == "hidden" else 16
    model = nn.Sequential(nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True,
                                  dtype=dtype, generator=gen),
                          nn.RNNOutput(select, batch_first=True),
                          nn.Linear(width, 3, dtype=dtype, generator=gen))
    x = RNG.standard_normal((4, 7, 6)).astype(dtype)
    _assert_all_pass(compare_module(model, x))
    t = to_torch(model)
    assert isinstance(t[1], RNNOutputTorch) and isinstance(t[0], torch.nn.LSTM)


@pytest.mark.parametrize("make", [
    lambda: torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, bias=False,
                          batch_first=True),
    lambda: torch.nn.GRU(3, 5, num_layers=3, dropout=0.25),
    lambda: torch.nn.RNN(3, 5, nonlinearity="relu", bidirectional=True),
    lambda: torch.nn.LSTMCell(3, 5), lambda: torch.nn.GRUCell(3, 5, bias=False),
    lambda: torch.nn.RNNCell(3, 5, nonlinearity="relu"),
    lambda: torch.nn.Embedding(7, 3, padding_idx=2),
])
def test_from_torch_round_trip_keeps_weights_and_options(make: Callable[[],
                                                                        torch.nn.Module]) -> None:
    t = make().double()
    m = from_torch(t)
    assert type(m).__name__ == type(t).__name__
    back = to_torch(m)
    assert repr(back) == repr(t)
    for (k, v), (k2, v2) in zip(t.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2
        np.testing.assert_array_equal(to_numpy(v), to_numpy(v2))


BAD: list[tuple[str, Callable[[], torch.nn.Module], tuple[Any, ...]]] = [
    ("rank", lambda: torch.nn.LSTM(3, 4), (np.zeros((1, 2, 2, 3)),)),
    ("input size", lambda: torch.nn.GRU(3, 4), (np.zeros((2, 2, 5)),)),
    ("hidden size", lambda: torch.nn.RNN(3, 4), (np.zeros((2, 2, 3)), np.zeros((1, 2, 5)))),
    ("hidden rank", lambda: torch.nn.RNN(3, 4), (np.zeros((2, 2, 3)), np.zeros((2, 4)))),
    ("cell size", lambda: torch.nn.LSTM(3, 4),
     (np.zeros((2, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((1, 2, 5))))),
    ("cell input", lambda: torch.nn.RNNCell(10, 20), (np.zeros((3, 11)),)),
    ("cell hidden", lambda: torch.nn.GRUCell(10, 20), (np.zeros((3, 10)), np.zeros((3, 21)))),
    ("cell batch", lambda: torch.nn.LSTMCell(10, 20),
     (np.zeros((3, 10)), (np.zeros((5, 20)), np.zeros((5, 20))))),
    ("cell hidden rank", lambda: torch.nn.GRUCell(10, 20),
     (np.zeros((3, 10)), np.zeros((3, 1, 1, 20)))),
    ("embedding range", lambda: torch.nn.Embedding(10, 3), (np.array([0, 5, 15]),)),
]


def _tensors(a: Any) -> Any:
    return tuple(_tensors(v) for v in a) if isinstance(a, tuple) else as_tensor(a)


@pytest.mark.parametrize(("what", "make", "args"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_the_same_exception_type_as_torch(
        what: str, make: Callable[[], torch.nn.Module], args: tuple[Any, ...]) -> None:
    t = make().double()
    m = from_torch(t)
    with pytest.raises(Exception) as theirs:
        t(*_tensors(args))
    with pytest.raises(Exception) as mine:
        m(*args)
    assert type(mine.value) is type(theirs.value), (what, mine.value, theirs.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_assert_parity_trains_a_token_classifier(dtype: str) -> None:
    from refbp.testing import parity_table

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.GRU(6, 8, batch_first=True),
                                RNNOutputTorch("last", batch_first=True), torch.nn.Linear(8, 3))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 10, size=(16, 7)), rng.integers(0, 3, size=16)
    table = parity_table(model, x, y, loss=torch.nn.CrossEntropyLoss(),
                    optimizer=("Adam", {"lr": 0.01}), steps=4, batch_size=8, dtype=dtype)
    assert bool(table["passed"].all())
    assert "grad_input" not in set(table["tensor"])
    assert {"grad:0.weight", "param:1.weight_hh_l0"} <= set(table["tensor"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [
    lambda: torch.nn.LSTM(3, 5, num_layers=3, dropout=0.4, bidirectional=True),
    lambda: torch.nn.GRU(3, 5, num_layers=2, dropout=0.5, batch_first=True),
    lambda: torch.nn.RNN(3, 5, num_layers=3, dropout=0.3, nonlinearity="relu"),
    lambda: torch.nn.LSTM(3, 5, num_layers=2, dropout=0.5, proj_size=2),
], ids=["lstm-bidir", "gru-batch-first", "rnn-relu", "lstm-proj"])
def test_dropout_between_layers_uses_the_masks_torch_draws(make: Callable[[], torch.nn.Module],
                                                           dtype: str) -> None:
    from refbp.metrics import discrepancy
    from refbp.mirror.dropout import DropoutMaskTap, step_generator
    from refbp.nn.dropout import feed_masks
    from refbp.tolerances import tolerance_for

    t = make().to(torch.float64 if dtype == "float64" else torch.float32)
    m = from_torch(t)
    x = RNG.standard_normal((6, 4, 3)).astype(dtype)
    xt = as_tensor(x, requires_grad=True)
    with DropoutMaskTap(t) as tap, step_generator(5):
        yt, _ = t(xt)
        masks = tap.take()
    assert len(masks) == t.num_layers - 1
    assert all(0 < k.mean() < 1 for k in masks)  # some dropped, some kept
    with feed_masks(masks):
        y, _ = m(x)
    g = RNG.standard_normal(y.shape).astype(dtype)
    yt.backward(as_tensor(g))
    gx = m.backward(g)
    tol = tolerance_for(dtype)
    res = {"output": discrepancy(y, to_numpy(yt), tol),
           "grad_input": discrepancy(gx, to_numpy(xt.grad), tol)}
    for (name, p), tp in zip(m.named_parameters(), t.parameters(), strict=True):
        res[name] = discrepancy(p.grad, to_numpy(tp.grad), tol)
    _assert_all_pass(res)
