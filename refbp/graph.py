r"""Scalar computational-graph nodes, in the style of the teaching material.

Each node is a tiny layer that works on Python floats:

- ``forward(x)`` or ``forward(x, y)`` computes the output and caches what backward needs;
- ``backward(dout)`` multiplies the upstream derivative ``dout = dL/d out`` by the node's
  *local derivative* and returns ``dL/dx`` (single-input nodes) or ``(dL/dx, dL/dy)``
  (two-input nodes).

That is the whole chain rule: if ``out = f(x, y)`` then
``dL/dx = dL/d out * d out/dx`` and ``dL/dy = dL/d out * d out/dy``.

=========  ======================  ============================================
node       forward                 local derivative(s)
=========  ======================  ============================================
Add        out = x + y             d/dx = 1,        d/dy = 1
Sub        out = x - y             d/dx = 1,        d/dy = -1
Mul        out = x * y             d/dx = y,        d/dy = x
Div        out = x / y             d/dx = 1/y,      d/dy = -x/y^2 = -out/y
Exp        out = e^x               d/dx = e^x = out
Log        out = ln x              d/dx = 1/x
Sigmoid    out = 1/(1 + e^-x)      d/dx = out (1 - out)
ReLU       out = max(0, x)         d/dx = 1 if x > 0 else 0   (0 at the kink, as torch)
=========  ======================  ============================================

:class:`Graph` records nodes as they are applied to named variables and runs backward through
them in reverse order, adding up the gradient of a variable that feeds several nodes (the
multivariate chain rule: contributions along every path are summed)::

    g = Graph()
    price, count, tax = g.input("apple", 10.0), g.input("apple_num", 2.0), g.input("tax", 1.1)
    subtotal = g.apply(Mul(), price, count, name="apple_price")
    pay = g.apply(Mul(), subtotal, tax, name="pay")           # 22.0
    grads = g.backward(pay)     # {'pay': 1, 'apple_price': 1.1, 'tax': 20, 'apple': 2.2, ...}
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Add", "BackwardStep", "Div", "Exp", "Graph", "Log", "Mul", "Node", "ReLU", "Sigmoid",
    "Step", "Sub", "Var", "as_scalar",
]


def as_scalar(value: Any, name: str) -> float:
    """Return ``value`` as a finite Python float, or raise TypeError/ValueError naming it."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind == "f":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real scalar, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


class Node:
    """Base class of a graph node: cache in ``forward``, local derivative in ``backward``."""

    n_inputs: int = 1
    symbol: str = "?"

    def __init__(self) -> None:
        self._cache: tuple[float, ...] | None = None

    def _load(self) -> tuple[float, ...]:
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): run forward first"
            )
        return self._cache

    def __call__(self, *inputs: Any) -> float:
        return self.forward(*inputs)

    def forward(self, *inputs: Any) -> float:
        raise NotImplementedError

    def backward(self, dout: float) -> Any:
        raise NotImplementedError

    def grads(self, dout: Any) -> tuple[float, ...]:
        """``backward(dout)`` as a tuple, one entry per input (for generic traversal)."""
        g = self.backward(as_scalar(dout, "dout"))
        return tuple(g) if isinstance(g, tuple) else (g,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Binary(Node):
    n_inputs = 2

    def _save(self, x: Any, y: Any) -> tuple[float, float]:
        xs = as_scalar(x, f"{type(self).__name__} input x")
        ys = as_scalar(y, f"{type(self).__name__} input y")
        self._cache = (xs, ys)
        return xs, ys


class _Unary(Node):
    n_inputs = 1

    def _save(self, x: Any, out: float | None = None) -> float:
        xs = as_scalar(x, f"{type(self).__name__} input x")
        self._cache = (xs,) if out is None else (xs, out)
        return xs


class Add(_Binary):
    """``out = x + y``. Backward: ``(dout * 1, dout * 1)``: addition passes dout through."""

    symbol = "+"

    def forward(self, x: Any, y: Any) -> float:
        xs, ys = self._save(x, y)
        return xs + ys

    def backward(self, dout: float) -> tuple[float, float]:
        self._load()
        return dout, dout


class Sub(_Binary):
    """``out = x - y``. Backward: ``(dout * 1, dout * -1)``."""

    symbol = "-"

    def forward(self, x: Any, y: Any) -> float:
        xs, ys = self._save(x, y)
        return xs - ys

    def backward(self, dout: float) -> tuple[float, float]:
        self._load()
        return dout, -dout


class Mul(_Binary):
    """``out = x * y``. Backward: ``(dout * y, dout * x)``: each input gets the *other* one.

    This is why the apple example's d pay / d price equals count * tax: the multiplier node
    swaps its inputs on the way back.
    """

    symbol = "*"

    def forward(self, x: Any, y: Any) -> float:
        xs, ys = self._save(x, y)
        return xs * ys

    def backward(self, dout: float) -> tuple[float, float]:
        x, y = self._load()
        return dout * y, dout * x


class Div(_Binary):
    """``out = x / y``. Backward: ``dx = dout / y``, ``dy = -dout * x / y^2``.

    From d(x y^-1)/dy = -x y^-2. ``y == 0`` raises ValueError (torch would return inf/nan).
    """

    symbol = "/"

    def forward(self, x: Any, y: Any) -> float:
        xs, ys = self._save(x, y)
        if ys == 0.0:
            raise ValueError(f"Div: division by zero (x={xs!r}, y=0.0)")
        return xs / ys

    def backward(self, dout: float) -> tuple[float, float]:
        x, y = self._load()
        return dout / y, -dout * x / (y * y)


class Exp(_Unary):
    """``out = e^x``. Backward: ``dout * e^x`` (the output itself, cached)."""

    symbol = "exp"

    def forward(self, x: Any) -> float:
        xs = as_scalar(x, "Exp input x")
        out = math.exp(xs)
        self._save(xs, out)
        return out

    def backward(self, dout: float) -> float:
        return dout * self._load()[1]


class Log(_Unary):
    """``out = ln x`` for ``x > 0``. Backward: ``dout / x``. ``x <= 0`` raises ValueError."""

    symbol = "ln"

    def forward(self, x: Any) -> float:
        xs = as_scalar(x, "Log input x")
        if xs <= 0.0:
            raise ValueError(f"Log input must be positive, got {xs!r}")
        self._save(xs)
        return math.log(xs)

    def backward(self, dout: float) -> float:
        return dout / self._load()[0]


def _sigmoid(x: float) -> float:
    """``1 / (1 + e^-x)`` computed without overflow for large negative x."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class Sigmoid(_Unary):
    """``out = 1 / (1 + e^-x)``. Backward: ``dout * out * (1 - out)``.

    Derivation: with u = 1 + e^-x, out = u^-1, so d out/dx = -u^-2 * (-e^-x)
    = e^-x / (1 + e^-x)^2 = out * (1 - out).
    """

    symbol = "sigmoid"

    def forward(self, x: Any) -> float:
        xs = as_scalar(x, "Sigmoid input x")
        out = _sigmoid(xs)
        self._save(xs, out)
        return out

    def backward(self, dout: float) -> float:
        out = self._load()[1]
        return dout * out * (1.0 - out)


class ReLU(_Unary):
    """``out = max(0, x)``. Backward: ``dout`` where ``x > 0``, else 0 (ReLU'(0) = 0, as torch)."""

    symbol = "relu"

    def forward(self, x: Any) -> float:
        xs = self._save(x)
        return xs if xs > 0.0 else 0.0

    def backward(self, dout: float) -> float:
        return dout if self._load()[0] > 0.0 else 0.0


@dataclass(frozen=True)
class Var:
    """A named value in a :class:`Graph` (an input or the output of a node)."""

    name: str
    value: float


@dataclass(frozen=True)
class Step:
    """One recorded node application: ``output = node(*inputs)``."""

    node: Node
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class BackwardStep:
    """One node visited by backward: upstream ``dout`` and the gradients sent to its inputs."""

    step: Step
    dout: float
    grads: tuple[float, ...]


class Graph:
    """Records node applications on named scalars and back-propagates through them.

    ``input(name, value)`` declares a leaf; ``apply(node, *vars, name=...)`` runs
    ``node.forward`` and records the step; ``backward(output)`` visits the steps in reverse
    (a valid reverse topological order, since a step can only use variables that already
    exist) and returns ``dL/dv`` for every variable ``v`` that ``output`` depends on. A variable
    used by several nodes receives the sum of their contributions.
    """

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self._leaves: list[str] = []
        self._steps: list[Step] = []
        self._backward_log: list[BackwardStep] = []

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    @property
    def leaves(self) -> tuple[str, ...]:
        return tuple(self._leaves)

    @property
    def backward_log(self) -> tuple[BackwardStep, ...]:
        """The steps visited by the last ``backward`` call, in visiting (reverse) order."""
        return tuple(self._backward_log)

    def value(self, name: str) -> float:
        if name not in self._values:
            raise KeyError(f"unknown variable {name!r}; known: {sorted(self._values)}")
        return self._values[name]

    def _new_name(self, name: str | None) -> str:
        name = name if name is not None else f"v{len(self._values)}"
        if name in self._values:
            raise ValueError(f"variable name {name!r} is already used in this graph")
        return name

    def input(self, name: str, value: Any) -> Var:
        """Declare a leaf variable (an input of the expression)."""
        name = self._new_name(name)
        self._values[name] = as_scalar(value, f"input {name!r}")
        self._leaves.append(name)
        return Var(name, self._values[name])

    def apply(self, node: Node, *args: Var, name: str | None = None) -> Var:
        """Run ``node.forward`` on the values of ``args`` and record the step."""
        if not isinstance(node, Node):
            raise TypeError(f"apply expects a Node, got {type(node).__name__}")
        if any(s.node is node for s in self._steps):
            raise ValueError(
                f"{node!r} is already used in this graph; each node caches its own inputs, "
                "so use a fresh node for every operation"
            )
        if len(args) != node.n_inputs:
            raise ValueError(
                f"{type(node).__name__} takes {node.n_inputs} input(s), got {len(args)}"
            )
        for a in args:
            if not isinstance(a, Var) or self._values.get(a.name) != a.value:
                raise ValueError(f"{a!r} is not a variable of this graph")
        out = node.forward(*(a.value for a in args))
        name = self._new_name(name)
        self._values[name] = out
        self._steps.append(Step(node, tuple(a.name for a in args), name))
        return Var(name, out)

    def backward(self, output: Var | str, dout: Any = 1.0) -> dict[str, float]:
        """``dL/dv`` for every variable ``v`` on a path to ``output``, with ``dL/d output = dout``.

        Variables ``output`` does not depend on are absent from the result (their gradient
        is zero).
        """
        out_name = output.name if isinstance(output, Var) else output
        self.value(out_name)
        grads: dict[str, float] = {out_name: as_scalar(dout, "dout")}
        self._backward_log = []
        for step in reversed(self._steps):
            if step.output not in grads:
                continue
            local = step.node.grads(grads[step.output])
            self._backward_log.append(BackwardStep(step, grads[step.output], local))
            for inp, g in zip(step.inputs, local, strict=True):
                grads[inp] = grads.get(inp, 0.0) + g
        return grads

    def describe_forward(self) -> list[str]:
        """One line per step: ``name = Node(in=value, ...) = value``."""
        lines = [f"input  {n} = {self._values[n]:g}" for n in self._leaves]
        for s in self._steps:
            args = ", ".join(f"{i}={self._values[i]:g}" for i in s.inputs)
            lines.append(f"{type(s.node).__name__:7s} {s.output} = {s.node.symbol}({args}) "
                         f"= {self._values[s.output]:.10g}")
        return lines

    def describe_backward(self) -> list[str]:
        """One line per node visited by the last backward: ``dout`` in, gradients out."""
        lines = []
        for b in self._backward_log:
            pairs = zip(b.step.inputs, b.grads, strict=True)
            outs = ", ".join(f"d/d{i} = {g:.10g}" for i, g in pairs)
            lines.append(f"{type(b.step.node).__name__:7s} {b.step.output}: dout = {b.dout:.10g}"
                         f" -> {outs}")
        return lines
