"""Module, Parameter, Linear, Sequential, Flatten, Identity: values, contract and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.tolerances import GRADCHECK_RTOL


def small_mlp(dtype: str = "float64") -> nn.Sequential:
    g = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(3, 4, dtype=dtype, generator=g), nn.Tanh(),
                         nn.Linear(4, 2, dtype=dtype, generator=g))


def test_linear_forward_hand_computed() -> None:
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": np.array([[1.0, 2.0], [3.0, 4.0]]),
                         "bias": np.array([0.5, -0.5])})
    y = lin(np.array([[1.0, 1.0], [2.0, -1.0]]))
    np.testing.assert_array_equal(y, [[3.5, 6.5], [0.5, 1.5]])


def test_linear_backward_hand_computed() -> None:
    lin = nn.Linear(2, 1)
    assert lin.bias is not None
    lin.load_state_dict({"weight": np.array([[2.0, -1.0]]), "bias": np.array([0.0])})
    x = np.array([[1.0, 3.0], [2.0, 5.0]])
    lin(x)
    gx = lin.backward(np.array([[1.0], [10.0]]))
    np.testing.assert_array_equal(gx, [[2.0, -1.0], [20.0, -10.0]])
    np.testing.assert_array_equal(lin.weight.grad, [[21.0, 53.0]])
    np.testing.assert_array_equal(lin.bias.grad, [11.0])


def test_gradients_accumulate_until_zero_grad() -> None:
    lin = nn.Linear(2, 1)
    assert lin.bias is not None
    x = np.ones((1, 2))
    for _ in range(2):
        lin(x)
        lin.backward(np.ones((1, 1)))
    np.testing.assert_array_equal(lin.bias.grad, [2.0])
    lin.zero_grad()
    assert lin.bias.grad is None
    lin.zero_grad(set_to_none=False)
    assert lin.bias.grad is None


def test_linear_default_init_bounds_follow_torch() -> None:
    lin = nn.Linear(100, 50, generator=np.random.default_rng(1))
    assert lin.bias is not None
    bound = 1 / math.sqrt(100)
    assert np.abs(lin.weight.data).max() <= bound
    assert np.abs(lin.bias.data).max() <= bound
    # U(-b, b) has standard deviation b / sqrt(3)
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.05 * bound


@pytest.mark.parametrize("shape", [(3,), (5, 3), (2, 4, 3)])
def test_linear_gradcheck_any_leading_dims(shape: tuple[int, ...]) -> None:
    lin = nn.Linear(3, 2, generator=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal(shape)
    res = check_module(lin, x)
    assert res.passed, str(res)
    assert res.max_rel_err < GRADCHECK_RTOL
    assert lin(x).shape == shape[:-1] + (2,)


def test_sequential_gradcheck_and_names() -> None:
    m = small_mlp()
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    res = check_module(m, np.random.default_rng(2).standard_normal((5, 3)))
    assert res.passed, str(res)


def test_state_dict_round_trip_and_errors() -> None:
    a, b = small_mlp(), small_mlp()
    sd = a.state_dict()
    sd["0.weight"] += 1.0
    b.load_state_dict(sd)
    np.testing.assert_array_equal(b.state_dict()["0.weight"], sd["0.weight"])
    with pytest.raises(KeyError, match="missing keys \\['2.bias'\\]"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "2.bias"})
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\]"):
        b.load_state_dict({**sd, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match="size mismatch for 0.weight"):
        b.load_state_dict({**sd, "0.weight": np.zeros((2, 2))})


def test_float32_follows_dtype_and_to() -> None:
    m = small_mlp("float32")
    y = m(np.ones((2, 3), dtype=np.float32))
    assert y.dtype == np.float32
    m.double()
    assert m(np.ones((2, 3))).dtype == np.float64


def test_bad_inputs_raise_clear_errors() -> None:
    lin = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"last dimension 3, got shape \(4, 5\)"):
        lin(np.zeros((4, 5)))
    with pytest.raises(TypeError, match="got dtype int64"):
        lin(np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="does not match weight dtype"):
        lin(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        nn.Linear(3, 2).backward(np.zeros((1, 2)))
    lin(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(4, 2\)"):
        lin.backward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)  # type: ignore[arg-type]


def test_flatten_and_identity() -> None:
    f = nn.Flatten()
    x = np.arange(24.0).reshape(2, 3, 4)
    y = f(x)
    assert y.shape == (2, 12)
    assert f.backward(np.ones((2, 12))).shape == (2, 3, 4)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    i = nn.Identity()
    np.testing.assert_array_equal(i(x), x)
    np.testing.assert_array_equal(i.backward(x), x)


def test_train_eval_and_repr() -> None:
    m = small_mlp()
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(m)


def test_input_grad_false_skips_only_the_input_gradient() -> None:
    x = np.random.default_rng(3).standard_normal((5, 3))
    a, b = small_mlp(), small_mlp()
    g = np.ones((5, 2))
    a(x)
    b(x)
    gx = a.backward(g)
    assert gx is not None and gx.shape == (5, 3)
    assert b.backward(g, input_grad=False) is None
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(pa.grad, pb.grad)
