"""refbp.graph: the scalar nodes, the Graph recorder and the apple examples (no torch)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from refbp.gradcheck import check_function
from refbp.graph import Add, Div, Exp, Graph, Log, Mul, Node, ReLU, Sigmoid, Sub, as_scalar
from refbp.metrics import discrepancy
from refbp.tolerances import tolerance_for

TOL = tolerance_for(np.float64)


def assert_close(actual: float, expected: float) -> None:
    d = discrepancy(actual, expected, TOL)
    assert d.passed, f"refbp {actual!r} vs expected {expected!r}: {d}"


# -- the book's examples --------------------------------------------------------------------
def test_apples_book_style_layers() -> None:
    """The teaching material's own code shape: one layer object per operation."""
    mul_apple, mul_tax = Mul(), Mul()
    apple_price = mul_apple.forward(10.0, 2)
    pay = mul_tax.forward(apple_price, 1.1)
    d_apple_price, d_tax = mul_tax.backward(1.0)
    d_apple, d_apple_num = mul_apple.backward(d_apple_price)
    assert_close(pay, 22.0)
    assert_close(d_apple, 2.2)
    assert_close(d_apple_num, 11.0)
    assert_close(d_tax, 20.0)


def test_apples_graph() -> None:
    g = Graph()
    apple, num, tax = g.input("apple", 10.0), g.input("apple_num", 2.0), g.input("tax", 1.1)
    price = g.apply(Mul(), apple, num, name="apple_price")
    pay = g.apply(Mul(), price, tax, name="pay")
    grads = g.backward(pay)
    assert_close(pay.value, 22.0)
    assert_close(grads["apple"], 2.2)
    assert_close(grads["apple_num"], 11.0)
    assert_close(grads["tax"], 20.0)
    assert_close(grads["apple_price"], 1.1)
    assert grads["pay"] == 1.0


def test_apples_and_oranges_graph() -> None:
    g = Graph()
    v = {k: g.input(k, x) for k, x in
         (("apple", 100), ("apple_num", 2), ("orange", 150), ("orange_num", 3), ("tax", 1.1))}
    a = g.apply(Mul(), v["apple"], v["apple_num"])
    o = g.apply(Mul(), v["orange"], v["orange_num"])
    total = g.apply(Add(), a, o)
    pay = g.apply(Mul(), total, v["tax"])
    grads = g.backward(pay)
    assert_close(pay.value, 715.0)
    expected = {"apple_num": 110.0, "apple": 2.2, "orange": 3.3, "orange_num": 165.0,
                "tax": 650.0}
    for name, value in expected.items():
        assert_close(grads[name], value)


# -- every node against central finite differences ------------------------------------------
UNARY: list[tuple[Callable[[], Node], list[float]]] = [
    (Exp, [-3.0, 0.0, 0.5, 4.0]),
    (Log, [0.01, 0.5, 1.0, 7.0]),
    (Sigmoid, [-30.0, -2.0, 0.0, 1.5, 30.0]),
    (ReLU, [-1.5, 0.3, 2.0]),
]
BINARY: list[Callable[[], Node]] = [Add, Sub, Mul, Div]


@pytest.mark.parametrize(("factory", "points"), UNARY, ids=lambda v: getattr(v, "__name__", ""))
def test_unary_node_matches_finite_differences(factory: Callable[[], Node],
                                               points: list[float]) -> None:
    dout = 1.7
    for x in points:
        node = factory()
        node.forward(x)
        analytic = node.backward(dout)
        res = check_function(lambda t: dout * factory().forward(float(t[0])), np.array([x]),
                             np.array([analytic]))
        assert res.passed, f"{factory.__name__} at {x}: {res}"


@pytest.mark.parametrize("factory", BINARY, ids=lambda f: f.__name__)
def test_binary_node_matches_finite_differences(factory: Callable[[], Node]) -> None:
    dout = -0.6
    for x, y in ((1.3, -0.4), (-2.0, 3.5), (0.25, 8.0)):
        node = factory()
        node.forward(x, y)
        analytic = node.backward(dout)
        res = check_function(lambda t: dout * factory().forward(float(t[0]), float(t[1])),
                             np.array([x, y]), np.array(analytic))
        assert res.passed, f"{factory.__name__} at ({x}, {y}): {res}"


def test_local_derivatives_in_closed_form() -> None:
    s = Sigmoid()
    out = s.forward(0.8)
    assert_close(s.backward(1.0), out * (1 - out))
    d = Div()
    d.forward(3.0, 4.0)
    dx, dy = d.backward(2.0)
    assert_close(dx, 0.5)
    assert_close(dy, -2.0 * 3.0 / 16.0)
    e = Exp()
    e.forward(1.0)
    assert_close(e.backward(1.0), math.e)
    sub = Sub()
    sub.forward(5.0, 2.0)
    assert sub.backward(3.0) == (3.0, -3.0)


def test_relu_kink_has_zero_subgradient_like_torch() -> None:
    r = ReLU()
    assert r.forward(0.0) == 0.0
    assert r.backward(5.0) == 0.0
    assert r.forward(-0.0) == 0.0


def test_sigmoid_is_stable_for_large_inputs() -> None:
    s = Sigmoid()
    assert s.forward(-1000.0) == 0.0
    assert s.backward(1.0) == 0.0
    assert s.forward(1000.0) == 1.0


# -- the Graph recorder ---------------------------------------------------------------------
def test_fan_out_gradients_are_summed() -> None:
    """f = x*x + x: x feeds three edges, df/dx = 2x + 1."""
    g = Graph()
    x = g.input("x", 3.0)
    sq = g.apply(Mul(), x, x)
    f = g.apply(Add(), sq, x)
    grads = g.backward(f)
    assert f.value == 12.0
    assert grads["x"] == 7.0


def test_composite_expression_against_finite_differences() -> None:
    """f = ln(sigmoid(x y) + e^y) / relu(x - y), every node type at once."""
    def build(x: float, y: float) -> tuple[Graph, str]:
        g = Graph()
        vx, vy = g.input("x", x), g.input("y", y)
        s = g.apply(Sigmoid(), g.apply(Mul(), vx, vy))
        num = g.apply(Log(), g.apply(Add(), s, g.apply(Exp(), vy)))
        den = g.apply(ReLU(), g.apply(Sub(), vx, vy))
        return g, g.apply(Div(), num, den, name="f").name

    g, out = build(0.7, -1.3)
    grads = g.backward(out, dout=2.0)
    res = check_function(lambda t: 2.0 * build(float(t[0]), float(t[1]))[0].value("f"),
                         np.array([0.7, -1.3]), np.array([grads["x"], grads["y"]]))
    assert res.passed, str(res)


def test_unrelated_variables_get_no_gradient_and_dout_scales() -> None:
    g = Graph()
    x, y = g.input("x", 2.0), g.input("y", 5.0)
    z = g.apply(Mul(), x, x, name="z")
    g.apply(Exp(), y, name="w")
    grads = g.backward(z, dout=0.5)
    assert grads == {"z": 0.5, "x": 2.0}


def test_describe_lines_name_nodes_and_values() -> None:
    g = Graph()
    a, b = g.input("a", 2.0), g.input("b", 3.0)
    c = g.apply(Mul(), a, b, name="c")
    g.backward(c)
    fwd, bwd = g.describe_forward(), g.describe_backward()
    assert fwd[-1].startswith("Mul") and "c = *(a=2, b=3) = 6" in fwd[-1]
    assert bwd == ["Mul     c: dout = 1 -> d/da = 3, d/db = 2"]
    assert [s.output for s in g.steps] == ["c"] and g.leaves == ("a", "b")


# -- errors ---------------------------------------------------------------------------------
def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match=r"Mul.backward\(\) called before forward"):
        Mul().backward(1.0)
    with pytest.raises(RuntimeError, match="Sigmoid"):
        Sigmoid().backward(1.0)


def test_domain_errors() -> None:
    with pytest.raises(ValueError, match="Log input must be positive, got 0.0"):
        Log().forward(0.0)
    with pytest.raises(ValueError, match="division by zero"):
        Div().forward(1.0, 0.0)
    with pytest.raises(ValueError, match="must be finite"):
        Add().forward(float("nan"), 1.0)


def test_scalar_validation() -> None:
    assert as_scalar(np.float32(1.5), "x") == 1.5
    assert as_scalar(np.array([2.5]), "x") == 2.5
    assert as_scalar(3, "x") == 3.0
    for bad in (True, "1", np.array([1.0, 2.0]), None):
        with pytest.raises(TypeError, match="x must be a real scalar"):
            as_scalar(bad, "x")


def test_graph_misuse_raises() -> None:
    g = Graph()
    x = g.input("x", 1.0)
    node = Mul()
    g.apply(node, x, x)
    with pytest.raises(ValueError, match="already used in this graph"):
        g.apply(node, x, x)
    with pytest.raises(ValueError, match="Exp takes 1 input"):
        g.apply(Exp(), x, x)
    with pytest.raises(ValueError, match="already used"):
        g.input("x", 2.0)
    other = Graph().input("y", 4.0)
    with pytest.raises(ValueError, match="not a variable of this graph"):
        g.apply(Exp(), other)
    with pytest.raises(TypeError, match="expects a Node"):
        g.apply(math.exp, x)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="unknown variable 'nope'"):
        g.backward("nope")
