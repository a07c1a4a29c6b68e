r"""``graph_apples``: the shopping computational graphs, forward and backward node by node.

1. Apples: 2 apples at 10 each with 10 % consumption tax.

       apple_price = apple * apple_num = 20,      pay = apple_price * tax = 22.

   Backward from d pay/d pay = 1. A multiplication node sends each input the upstream
   derivative times the *other* input:

       d pay/d tax         = 1 * apple_price          = 20
       d pay/d apple_price = 1 * tax                  = 1.1
       d pay/d apple       = 1.1 * apple_num          = 2.2
       d pay/d apple_num   = 1.1 * apple              = 11

2. Apples and oranges: 2 apples at 100, 3 oranges at 150, tax 1.1.

       all_price = apple * apple_num + orange * orange_num = 200 + 450 = 650,  pay = 715.

   An addition node passes its upstream derivative through unchanged, so both sub-totals get
   d pay/d all_price = tax = 1.1:

       d pay/d tax = 650,  d pay/d apple = 1.1 * 2 = 2.2,  d pay/d apple_num = 1.1 * 100 = 110,
       d pay/d orange = 1.1 * 3 = 3.3,  d pay/d orange_num = 1.1 * 150 = 165.

The nodes are :mod:`refbp.graph`'s ``Mul`` and ``Add``; the torch side builds the same
expressions from leaf tensors and calls ``backward``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Circle

from refbp.examples._common import Echo, ExampleSpec, Result, new_figure, save_figure
from refbp.graph import Add, Graph, Mul

APPLE_INPUTS = {"apple": 10.0, "apple_num": 2.0, "tax": 1.1}
FRUIT_INPUTS = {"apple": 100.0, "apple_num": 2.0, "orange": 150.0, "orange_num": 3.0,
                "tax": 1.1}

#: The values stated by the teaching material (exact up to float rounding).
EXPECTED = {
    "apple.pay": 22.0, "apple.d_apple": 2.2, "apple.d_apple_num": 11.0, "apple.d_tax": 20.0,
    "fruit.pay": 715.0, "fruit.d_apple_num": 110.0, "fruit.d_apple": 2.2,
    "fruit.d_orange": 3.3, "fruit.d_orange_num": 165.0, "fruit.d_tax": 650.0,
}


def apple_graph() -> tuple[Graph, str]:
    """The apples expression; returns the graph and the name of its output."""
    g = Graph()
    v = {k: g.input(k, val) for k, val in APPLE_INPUTS.items()}
    apple_price = g.apply(Mul(), v["apple"], v["apple_num"], name="apple_price")
    g.apply(Mul(), apple_price, v["tax"], name="pay")
    return g, "pay"


def fruit_graph() -> tuple[Graph, str]:
    """The apples-and-oranges expression."""
    g = Graph()
    v = {k: g.input(k, val) for k, val in FRUIT_INPUTS.items()}
    apple_price = g.apply(Mul(), v["apple"], v["apple_num"], name="apple_price")
    orange_price = g.apply(Mul(), v["orange"], v["orange_num"], name="orange_price")
    all_price = g.apply(Add(), apple_price, orange_price, name="all_price")
    g.apply(Mul(), all_price, v["tax"], name="pay")
    return g, "pay"


def _run_one(prefix: str, title: str, g: Graph, out: str, echo: Echo) -> Result:
    echo(f"{title}: forward, node by node")
    for line in g.describe_forward():
        echo(f"  {line}")
    grads = g.backward(out)
    echo(f"{title}: backward from d{out}/d{out} = 1, node by node")
    for line in g.describe_backward():
        echo(f"  {line}")
    echo("  gradients of the inputs: " + ", ".join(
        f"d{out}/d{n} = {grads[n]:.10g}" for n in g.leaves))
    r: Result = {f"{prefix}.pay": g.value(out)}
    r.update({f"{prefix}.d_{n}": grads[n] for n in grads if n != out})
    return r


def run(out_dir: Path | None, echo: Echo) -> Result:
    r: Result = {}
    echo("graph_apples: shopping bills as computational graphs of Mul and Add nodes")
    for prefix, title, build, fig in (("apple", "apples", apple_graph, "graph_apples.png"),
                                      ("fruit", "apples and oranges", fruit_graph,
                                       "graph_apples_oranges.png")):
        g, out = build()
        r.update(_run_one(prefix, title, g, out, echo))
        if out_dir is not None:
            draw_graph(g, out, out_dir, fig, title)
    return r


def draw_graph(g: Graph, out: str, out_dir: Path, name: str, title: str) -> Path:
    """Draw ``g`` as in the book: forward values above each edge, gradients (red) below.

    Requires a backward pass from ``out`` to have run (the gradients are recomputed here).
    """
    grads = g.backward(out)
    pos: dict[str, tuple[float, float]] = {}
    for i, leaf in enumerate(g.leaves):
        pos[leaf] = (0.0, -1.6 * i)
    fig, ax = new_figure(width=8.0, height=1.0 + 1.0 * len(g.leaves))
    for step in g.steps:
        xs = [pos[i][0] for i in step.inputs]
        ys = [pos[i][1] for i in step.inputs]
        pos[step.output] = (max(xs) + 2.0, float(np.mean(ys)))
    end = (pos[out][0] + 2.0, pos[out][1])
    edges = [(i, pos[i], pos[s.output]) for s in g.steps for i in s.inputs]
    edges.append((out, pos[out], end))
    for var, (x0, y0), (x1, y1) in edges:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": "0.3", "shrinkA": 14,
                                "shrinkB": 14})
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        ax.text(xm, ym + 0.12, f"{g.value(var):g}", ha="center", va="bottom", fontsize=9)
        ax.text(xm, ym - 0.12, f"{grads.get(var, 0.0):.4g}", ha="center", va="top",
                fontsize=9, color="tab:red")
    for leaf in g.leaves:
        ax.text(*pos[leaf], leaf, ha="right", va="center", fontsize=9)
    for step in g.steps:
        ax.add_patch(Circle(pos[step.output], 0.35, fc="white", ec="k"))
        ax.text(*pos[step.output], step.node.symbol, ha="center", va="center", fontsize=12)
    ax.text(*end, f" {out}", ha="left", va="center", fontsize=9)
    ax.set_xlim(-1.8, end[0] + 1.2)
    ax.set_ylim(min(p[1] for p in pos.values()) - 0.8, 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{title}: forward values (black), d {out} / d edge (red)")
    return save_figure(fig, out_dir, name)


SPEC = ExampleSpec("graph_apples", "the apple and orange computational graphs, both directions",
                   run, ("graph_apples.png", "graph_apples_oranges.png"))
