"""Unit tests of RNN, LSTM, GRU and their cells (no torch): hand values, BPTT by finite
differences, torch's parameter names and layout, initial-state gradients, errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_function
from refbp.metrics import discrepancy
from refbp.nn.dropout import feed_masks
from refbp.tolerances import tolerance_for

RNG = np.random.default_rng(7)


def assert_close(actual: Any, expected: Any) -> None:
    """refbp value vs hand-computed value, at the float64 tolerance of refbp.tolerances."""
    d = discrepancy(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                    tolerance_for(np.float64))
    assert d.passed, f"refbp vs hand value: {d}"


def _sig(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def _flat(tree: Any) -> list[np.ndarray]:
    if isinstance(tree, tuple | list):
        return [a for t in tree for a in _flat(t)]
    return [] if tree is None else [np.asarray(tree)]


def _like(tree: Any, rng: np.random.Generator) -> Any:
    if isinstance(tree, tuple | list):
        return tuple(_like(t, rng) for t in tree)
    return rng.standard_normal(np.shape(tree))


def gradcheck_tuple(m: nn.Module, x: np.ndarray, hx: Any = None) -> None:
    """Finite differences of ``sum(out * R)`` summed over every forward output, against
    ``backward``: input, initial states and every parameter."""
    rng = np.random.default_rng(0)

    def run() -> Any:
        return m(x) if hx is None else m(x, hx)

    out = run()
    r = _like(out, rng)

    def objective() -> float:
        return float(sum(np.sum(a * b) for a, b in zip(_flat(run()), _flat(r), strict=True)))

    m.zero_grad()
    run()
    grads = m.backward(*r) if isinstance(m, nn.RNNBase) else m.backward(r)
    g_in = _flat(grads)
    leaves = [x] + _flat(hx)
    assert len(g_in) == len(leaves)
    named = [(f"input {i}", leaf, g) for i, (leaf, g) in
             enumerate(zip(leaves, g_in, strict=True))]
    named += [(name, p.data, np.asarray(p.grad)) for name, p in m.named_parameters()]
    for name, target, grad in named:
        keep = target.copy()

        def f(v: np.ndarray, target: np.ndarray = target) -> float:
            target[...] = v
            return objective()

        res = check_function(f, keep, grad)
        target[...] = keep
        assert res.passed, f"{name}: {res}"


STACKS: list[tuple[str, Callable[..., nn.RNNBase]]] = [
    ("rnn-tanh", lambda **k: nn.RNN(3, 4, **k)),
    ("rnn-relu", lambda **k: nn.RNN(3, 4, nonlinearity="relu", **k)),
    ("lstm", lambda **k: nn.LSTM(3, 4, **k)),
    ("lstm-proj", lambda **k: nn.LSTM(3, 4, proj_size=2, **k)),
    ("gru", lambda **k: nn.GRU(3, 4, **k)),
]


# (bias, batch_first, bidirectional, with_hx): every option on and off at least once
OPTIONS = [(True, False, False, False), (False, True, True, True), (True, True, True, True)]


@pytest.mark.parametrize(("name", "bias", "batch_first", "bidirectional", "with_hx"),
                         [(n, *opts) for (n, _), opts in itertools.product(STACKS, OPTIONS)])
def test_bptt_matches_finite_differences(name: str, bias: bool, batch_first: bool,
                                         bidirectional: bool, with_hx: bool) -> None:
    m = dict(STACKS)[name](num_layers=2, bias=bias, batch_first=batch_first,
                           bidirectional=bidirectional, generator=np.random.default_rng(1))
    steps, batch = 3, 2
    x = RNG.standard_normal((batch, steps, 3) if batch_first else (steps, batch, 3))
    hx: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None
    if with_hx:
        lead = 4 if bidirectional else 2
        hx = RNG.standard_normal((lead, batch, m.real_hidden_size))
        if isinstance(m, nn.LSTM):
            hx = (hx, RNG.standard_normal((lead, batch, 4)))
    gradcheck_tuple(m, x, hx)


@pytest.mark.parametrize("name", [n for n, _ in STACKS])
def test_unbatched_input_equals_batch_of_one(name: str) -> None:
    m = dict(STACKS)[name](num_layers=2, bidirectional=True, generator=np.random.default_rng(2))
    x = RNG.standard_normal((5, 3))
    out, h = m(x)
    out_b, h_b = m(x[:, None, :])
    np.testing.assert_array_equal(out, out_b[:, 0])
    for a, b in zip(_flat(h), _flat(h_b), strict=True):
        np.testing.assert_array_equal(a, b[:, 0])
    gradcheck_tuple(m, x)


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.GRUCell, nn.LSTMCell])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_finite_differences(cls: type, batched: bool) -> None:
    m = cls(3, 4, generator=np.random.default_rng(3))
    shape = (2, 3) if batched else (3,)
    hshape = (2, 4) if batched else (4,)
    x = RNG.standard_normal(shape)
    hx: Any = RNG.standard_normal(hshape)
    if cls is nn.LSTMCell:
        hx = (hx, RNG.standard_normal(hshape))
    gradcheck_tuple(m, x, hx)
    gradcheck_tuple(m, x)


def _set(m: nn.Module, **values: Any) -> None:
    for k, v in values.items():
        getattr(m, k).data[...] = v


def test_rnn_hand_values_two_steps() -> None:
    m = nn.RNN(1, 1)
    _set(m, weight_ih_l0=0.5, weight_hh_l0=-0.8, bias_ih_l0=0.1, bias_hh_l0=0.2)
    x = np.array([[[1.0]], [[-2.0]]])
    out, h_n = m(x, np.array([[[0.3]]]))
    h1 = math.tanh(0.5 * 1.0 + 0.1 - 0.8 * 0.3 + 0.2)
    h2 = math.tanh(0.5 * -2.0 + 0.1 - 0.8 * h1 + 0.2)
    assert_close(out.ravel(), [h1, h2])
    assert h_n.item() == out[-1].item()
    # dL/dh2 = 1 only: dh1 = -0.8 (1 - h2^2), dx1 = 0.5 (1 - h1^2) dh1, dh0 = -0.8 (1-h1^2) dh1
    gx, gh0 = m.backward(np.array([[[0.0]], [[1.0]]]))
    da2 = 1 - h2 * h2
    da1 = -0.8 * da2 * (1 - h1 * h1)
    assert_close(gx.ravel(), [0.5 * da1, 0.5 * da2])
    assert_close(gh0.ravel(), [-0.8 * da1])
    assert_close(m.weight_hh_l0.grad.ravel(), [0.3 * da1 + h1 * da2])


def test_lstm_gate_order_hand_values() -> None:
    m = nn.LSTM(1, 1)
    # rows i, f, g, o
    _set(m, weight_ih_l0=[[0.1], [0.2], [0.3], [0.4]], weight_hh_l0=[[0.5], [-0.5], [0.6], [0.7]],
         bias_ih_l0=[0.1, 0.0, -0.1, 0.2], bias_hh_l0=[0.0, 0.3, 0.0, -0.1])
    h0, c0, x = 0.2, -0.4, 1.5
    i = _sig(0.1 * x + 0.5 * h0 + 0.1)
    f = _sig(0.2 * x - 0.5 * h0 + 0.3)
    g = math.tanh(0.3 * x + 0.6 * h0 - 0.1)
    o = _sig(0.4 * x + 0.7 * h0 + 0.1)
    c = f * c0 + i * g
    out, (h_n, c_n) = m(np.array([[[x]]]), (np.array([[[h0]]]), np.array([[[c0]]])))
    assert_close([c_n.item(), h_n.item()], [c, o * math.tanh(c)])
    # gradient of c_n alone: dc0 = f, dx = c0 f(1-f) 0.2 + g i(1-i) 0.1 + i (1-g^2) 0.3
    gx, (gh0, gc0) = m.backward(None, (None, np.array([[[1.0]]])))
    assert_close(gc0.item(), f)
    want = c0 * f * (1 - f) * 0.2 + g * i * (1 - i) * 0.1 + i * (1 - g * g) * 0.3
    assert_close(gx.item(), want)
    assert gh0.shape == (1, 1, 1)


def test_gru_reset_gate_multiplies_hidden_bias() -> None:
    m = nn.GRU(1, 1)
    _set(m, weight_ih_l0=[[0.1], [0.2], [0.3]], weight_hh_l0=[[0.4], [0.5], [0.6]],
         bias_ih_l0=[0.0, 0.1, 0.2], bias_hh_l0=[0.3, -0.2, 0.7])
    h0, x = 0.5, -1.0
    r = _sig(0.1 * x + 0.0 + 0.4 * h0 + 0.3)
    z = _sig(0.2 * x + 0.1 + 0.5 * h0 - 0.2)
    n = math.tanh(0.3 * x + 0.2 + r * (0.6 * h0 + 0.7))
    _, h_n = m(np.array([[[x]]]), np.array([[[h0]]]))
    assert_close(h_n.item(), (1 - z) * n + z * h0)


def test_parameter_names_layout_and_init_follow_torch() -> None:
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2,
                generator=np.random.default_rng(0))
    sd = m.state_dict()
    assert list(sd)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_hr_l0"]
    assert list(sd)[5] == "weight_ih_l0_reverse" and list(sd)[-1] == "weight_hr_l1_reverse"
    assert sd["weight_ih_l0"].shape == (20, 3) and sd["weight_hh_l0"].shape == (20, 2)
    assert sd["weight_ih_l1"].shape == (20, 4) and sd["weight_hr_l0"].shape == (2, 5)
    bound = 1 / math.sqrt(5)
    assert all(np.abs(v).max() <= bound for v in sd.values())
    assert list(nn.GRU(2, 3, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert list(nn.GRUCell(2, 3).state_dict()) == ["weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"]
    assert nn.GRUCell(2, 3).weight_ih.shape == (9, 2)


def test_float32_follows_input() -> None:
    m = nn.GRU(3, 4, dtype="float32")
    out, h = m(RNG.standard_normal((2, 5, 3)).astype(np.float32))
    assert out.dtype == np.float32 and h.dtype == np.float32
    gx = m.backward(np.ones_like(out))
    assert gx.dtype == np.float32 and m.weight_hh_l0.grad.dtype == np.float32


@pytest.mark.parametrize(("make", "args", "exc", "text"), [
    (lambda: nn.LSTM(3, 4), (np.zeros((2, 2, 2, 3)),), ValueError, "Expected input to be 2D"),
    (lambda: nn.GRU(3, 4), (np.zeros((2, 2, 5)),), RuntimeError, "Expected 3, got 5"),
    (lambda: nn.RNN(3, 4), (np.zeros((2, 2, 3)), np.zeros((1, 2, 5))), RuntimeError,
     r"Expected hidden size \(1, 2, 4\), got \[1, 2, 5\]"),
    (lambda: nn.RNN(3, 4), (np.zeros((2, 2, 3)), np.zeros((2, 4))), RuntimeError,
     "should also be 3-D"),
    (lambda: nn.LSTM(3, 4), (np.zeros((2, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))),
     RuntimeError, r"Expected hidden\[1\] size"),
    (lambda: nn.LSTM(3, 4), (np.zeros((2, 2, 3), dtype=np.float32),), ValueError,
     "does not match weight dtype"),
    (lambda: nn.RNNCell(10, 20), (np.zeros((3, 11)),), RuntimeError,
     "input has inconsistent input_size: got 11 expected 10"),
    (lambda: nn.GRUCell(10, 20), (np.zeros((3, 10)), np.zeros((3, 21))), RuntimeError,
     "hidden0 has inconsistent hidden_size: got 21, expected 20"),
    (lambda: nn.LSTMCell(10, 20), (np.zeros((3, 10)), (np.zeros((5, 20)), np.zeros((5, 20)))),
     RuntimeError, "Input batch size 3 doesn't match hidden0 batch size 5"),
    (lambda: nn.RNNCell(10, 20), (np.zeros((3, 10)), np.zeros((3, 1, 1, 20))), ValueError,
     "Expected hidden to be 1D or 2D, got 4D instead"),
])
def test_bad_inputs_raise_torch_errors(make: Callable[[], nn.Module], args: tuple[Any, ...],
                                       exc: type, text: str) -> None:
    with pytest.raises(exc, match=text):
        make()(*args)


@pytest.mark.parametrize(("kwargs", "exc", "text"), [
    ({"hidden_size": 0}, ValueError, "hidden_size must be greater than zero"),
    ({"num_layers": 0}, ValueError, "num_layers must be greater than zero"),
    ({"bias": 1}, TypeError, "bias should be of type bool, got: int"),
    ({"batch_first": "False"}, TypeError, "batch_first should be of type bool, got: str"),
    ({"dropout": 1.5}, ValueError, "dropout should be a number in range"),
    ({"proj_size": 4}, ValueError, "proj_size has to be smaller than hidden_size"),
])
def test_constructor_errors(kwargs: dict[str, Any], exc: type, text: str) -> None:
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(exc, match=text):
        nn.LSTM(**args)


def test_dropout_warning_and_fed_mask_count() -> None:
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)
    m = nn.GRU(3, 4, num_layers=3, dropout=0.5)
    with pytest.raises(RuntimeError, match="after layer 1 asked for dropout mask #2"), \
            feed_masks([np.ones((2, 1, 4))]):
        m(np.zeros((2, 1, 3)))
    out_eval, _ = m.eval()(np.ones((2, 1, 3)))
    assert out_eval.shape == (2, 1, 4)


def test_dropout_masks_scale_between_layers() -> None:
    m = nn.RNN(2, 3, num_layers=2, dropout=0.5, generator=np.random.default_rng(0))
    x = RNG.standard_normal((4, 2, 2))
    with feed_masks([np.ones((4, 2, 3), dtype=bool)]):
        out_kept, _ = m(x)
    # keeping everything scales layer 0's output by 1 / (1 - p) = 2 on its way into layer 1:
    # the same as doubling weight_ih_l1 in eval mode
    m.eval().weight_ih_l1.data *= 2
    ref, _ = m(x)
    m.weight_ih_l1.data /= 2
    assert_close(out_kept, ref)
    m.train()
    mask = RNG.uniform(size=(4, 2, 3)) > 0.5
    gradcheck_tuple_fed(m, x, mask)


def gradcheck_tuple_fed(m: nn.Module, x: np.ndarray, mask: np.ndarray) -> None:
    """``gradcheck_tuple`` with the same dropout mask fed to every forward pass."""
    class Fed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = m

        def forward(self, x: np.ndarray) -> Any:
            with feed_masks([mask]):
                return self.inner(x)

        def backward(self, *g: Any) -> Any:
            return self.inner.backward(*g)

    gradcheck_tuple(Fed(), x)


def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        nn.LSTM(2, 3).backward(np.zeros((1, 1, 3)))


def test_rnn_output_selects_and_routes_gradient() -> None:
    lstm = nn.LSTM(2, 3, batch_first=True, generator=np.random.default_rng(0))
    x = RNG.standard_normal((4, 5, 2))
    for select in ("last", "hidden", "all"):
        sel = nn.RNNOutput(select, batch_first=True)
        y = sel(lstm(x))
        want = {"last": (4, 3), "hidden": (4, 3), "all": (4, 5, 3)}[select]
        assert y.shape == want
        g = sel.backward(np.ones(want))
        lstm.zero_grad()
        gx = lstm.backward(g)
        assert gx.shape == x.shape and np.all(np.isfinite(gx))
    out, (h_n, _) = lstm(x)
    np.testing.assert_array_equal(nn.RNNOutput("last", True)((out, (h_n, None))), h_n[-1])
    with pytest.raises(ValueError, match="select must be one of"):
        nn.RNNOutput("first")
    with pytest.raises(TypeError, match="expects the"):
        nn.RNNOutput()(np.zeros((2, 3)))


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 4, num_layers=2, bidirectional=True),
                                  lambda: nn.LSTM(3, 4, proj_size=2, batch_first=True),
                                  lambda: nn.GRU(3, 4, dropout=0.5, num_layers=2)])
def test_empty_batch_gives_empty_results(make: Callable[[], Any]) -> None:
    """N = 0: outputs and final states with a batch axis of 0, an empty input gradient and
    zero weight gradients (torch's results, checked against torch in the parity tests)."""
    m = make()
    x = np.zeros((0, 5, 3) if m.batch_first else (5, 0, 3))
    out, state = m(x)
    h_n = state[0] if isinstance(state, tuple) else state
    assert out.shape == ((0, 5) if m.batch_first else (5, 0)) + (out.shape[-1],)
    assert h_n.shape == (m.num_layers * m.num_directions, 0, m.real_hidden_size)
    gx = m.backward(np.zeros(out.shape))
    assert gx.shape == x.shape
    assert all(not p.grad.any() for p in m.parameters())
