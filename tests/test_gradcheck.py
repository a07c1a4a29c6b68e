"""refbp.gradcheck catches wrong gradients and accepts right ones."""

from __future__ import annotations

from typing import Literal, overload

import numpy as np

from refbp import nn
from refbp.gradcheck import check_function, check_module, numerical_gradient


def test_numerical_gradient_of_quadratic() -> None:
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda: float(np.sum(x**2)), x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored


def test_check_function_detects_wrong_gradient() -> None:
    x = np.array([0.5, 1.5])
    good = check_function(lambda v: float(np.sum(np.sin(v))), x, np.cos(x))
    bad = check_function(lambda v: float(np.sum(np.sin(v))), x, np.cos(x) * [1.0, 1.01])
    assert good.passed and good.max_rel_err < 1e-8
    assert not bad.passed and bad.worst_index == (1,)
    assert abs(bad.max_rel_err - 0.01) < 1e-6


class _BrokenLinear(nn.Linear):
    @overload
    def backward(self, grad_out: np.ndarray, *,
                 input_grad: Literal[True] = True) -> np.ndarray: ...

    @overload
    def backward(self, grad_out: np.ndarray, *, input_grad: bool) -> np.ndarray | None: ...

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        gx = super().backward(grad_out, input_grad=input_grad)
        assert self.bias is not None and self.bias.grad is not None
        self.bias.grad *= 2.0
        return gx


def test_check_module_names_the_wrong_parameter() -> None:
    m = _BrokenLinear(3, 2, generator=np.random.default_rng(0))
    res = check_module(m, np.ones((4, 3)))
    assert not res.passed
    assert res.worst_tensor == "bias"
    assert res.per_tensor["weight"] < 1e-8


def test_numerical_gradient_of_a_transposed_array() -> None:
    """A non-C-contiguous ``x`` is perturbed in place too (reshape(-1) would copy it)."""
    r = np.arange(6.0).reshape(2, 3)
    x = np.ones((3, 2)).T  # F-contiguous view
    g = numerical_gradient(lambda: float(np.sum(x * r)), x, eps=2.0**-10)
    assert g.tolist() == r.tolist() and x.tolist() == np.ones((2, 3)).tolist()
