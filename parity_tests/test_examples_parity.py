"""The worked examples and the graph nodes recomputed by torch autograd (float64, <= 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.examples import EXAMPLES, run_example
from refbp.examples import graph_apples as ga
from refbp.examples.replay import example_discrepancies, replay_example, replay_graph
from refbp.graph import Add, Div, Exp, Graph, Log, Mul, Node, ReLU, Sigmoid, Sub
from refbp.metrics import discrepancy
from refbp.testing import assert_close
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

TOL = tolerance_for(np.float64)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_agrees_with_torch(name: str) -> None:
    report = example_discrepancies(name)
    assert report, f"{name}: nothing compared"
    failed = {k: d for k, d in report.items() if not d.passed}
    assert not failed, "refbp vs torch, example " + name + ": " + "; ".join(
        f"{k}: normwise {d.normwise:.3e}, worst {d.worst_index} refbp {d.a_value!r} torch "
        f"{d.b_value!r}" for k, d in failed.items())
    assert max(d.normwise for d in report.values()) <= TOL.normwise


def test_compare_example_covers_every_non_diagnostic_key() -> None:
    mine = run_example("chain_rule", None, echo=lambda _s: None)
    report = example_discrepancies("chain_rule")
    assert set(report) == set(mine) - set(EXAMPLES["chain_rule"].diagnostics)
    assert "multi.dC_dW1" in report and "single.fd_passed" not in report


def test_torch_reproduces_the_book_values() -> None:
    r = replay_example("graph_apples")
    for key, value in ga.EXPECTED.items():
        d = discrepancy(r[key], value, TOL)
        assert d.passed, f"torch {key} = {r[key]!r}, expected {value!r}"


def test_linear_regression_torch_run_reaches_least_squares() -> None:
    r = replay_example("linear_regression")
    assert discrepancy(r["a_final"], r["a_closed_form"], TOL).passed
    assert discrepancy(r["b_final"], r["b_closed_form"], TOL).passed


#: f = ln(sigmoid(x y) + e^y) / relu(x - y) + x * x as (output, node type, inputs) rows:
#: every node type, and x feeds four edges (its gradient sums four paths).
EXPRESSION: tuple[tuple[str, type[Node], tuple[str, ...]], ...] = (
    ("xy", Mul, ("x", "y")), ("s", Sigmoid, ("xy",)), ("ey", Exp, ("y",)),
    ("s_ey", Add, ("s", "ey")), ("num", Log, ("s_ey",)), ("x_y", Sub, ("x", "y")),
    ("den", ReLU, ("x_y",)), ("q", Div, ("num", "den")), ("xx", Mul, ("x", "x")),
    ("f", Add, ("q", "xx")),
)


def _expression(x: float, y: float) -> tuple[Graph, str]:
    g = Graph()
    v = {"x": g.input("x", x), "y": g.input("y", y)}
    for out, node, inputs in EXPRESSION:
        v[out] = g.apply(node(), *(v[i] for i in inputs), name=out)
    return g, EXPRESSION[-1][0]


@pytest.mark.parametrize(("x", "y"), [(0.7, -1.3), (2.5, 0.4), (-0.2, -3.0), (40.0, -0.5)])
def test_graph_nodes_agree_with_torch(x: float, y: float) -> None:
    g, out = _expression(x, y)
    grads = g.backward(out, dout=1.5)
    value, ref = replay_graph(g, out, dout=1.5)
    assert discrepancy(g.value(out), value, TOL).passed
    assert set(grads) == set(ref)
    for name in grads:
        assert_close(grads[name], ref[name], dtype="float64", name=f"d f / d {name}")


def test_relu_kink_and_dead_branch_agree_with_torch() -> None:
    g = Graph()
    x, y = g.input("x", 1.0), g.input("y", 1.0)
    r = g.apply(ReLU(), g.apply(Sub(), x, y))            # relu(0): subgradient 0 on both sides
    out = g.apply(Add(), r, g.apply(Mul(), x, y), name="out").name
    grads = g.backward(out)
    value, ref = replay_graph(g, out)
    assert value == g.value(out) == 1.0
    assert grads["x"] == ref["x"] == 1.0 and grads["y"] == ref["y"] == 1.0
