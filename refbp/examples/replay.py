"""The torch side of the worked examples: the same steps computed by torch autograd.

Each ``_<example>`` function rebuilds the example's expression from leaf tensors with stock
torch ops (``*``, ``torch.sigmoid``, ``torch.nn.Linear``, ``torch.nn.functional``
losses, ``torch.optim.SGD``), calls ``backward`` and returns the same result keys as
``refbp.examples.run_example`` (minus the refbp-only ``ExampleSpec.diagnostics``). Only the
data, the initial values and the batch order are taken from the refbp example modules, so torch
is an independent oracle of every derivative and update.

``example_discrepancies(name)`` runs both sides and compares them key by key with
``refbp.metrics.discrepancy`` at the float64 tolerance (``refbp.tolerances``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from refbp import graph as rgraph
from refbp.examples import (
    bptt,
    chain_rule,
    conv_im2col,
    gd_variants,
    get_example,
    graph_apples,
    line_gd,
    linear_regression,
    run_example,
    sigmoid_ce,
)
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror.oracle import as_tensor, to_numpy
from refbp.tolerances import tolerance_for

__all__ = ["example_discrepancies", "replay_graph", "replay_example"]

Result = dict[str, Any]


def _leaf(x: Any) -> torch.Tensor:
    return as_tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def _const(x: Any) -> torch.Tensor:
    return as_tensor(np.asarray(x, dtype=np.float64))


def _descend(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], lr: float,
             steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch gradient descent with ``torch.optim.SGD`` on scalar leaf tensors.

    Returns the parameter trajectory (steps + 1, P), the loss before every step followed by
    the final loss (steps + 1,) and the gradient of every step (steps, P).
    """
    opt = torch.optim.SGD(params, lr=lr)
    traj = [[p.item() for p in params]]
    losses, grads = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.item() for p in params])  # type: ignore[union-attr]
        opt.step()
        traj.append([p.item() for p in params])
    with torch.no_grad():
        losses.append(loss_fn().item())
    return np.array(traj), np.array(losses), np.array(grads)


def _line_gd() -> Result:
    x, y = map(_const, line_gd.data())
    w = _leaf(line_gd.W0)
    traj, losses, grads = _descend([w], lambda: 0.5 * ((y - w * x) ** 2).sum(), line_gd.ETA,
                                   line_gd.STEPS)
    return {"w": traj[:, 0], "E": losses[:-1], "dE_dw": grads[:, 0], "w_final": traj[-1, 0],
            "E_final": losses[-1], "w_closed_form": ((x * y).sum() / (x * x).sum()).item()}


def _linear_regression() -> Result:
    lr = linear_regression
    x, y = map(_const, lr.data())
    a, b = _leaf(lr.A0), _leaf(lr.B0)

    def sse() -> torch.Tensor:
        return 0.5 * torch.nn.functional.mse_loss(a * x + b, y, reduction="sum")

    traj, losses, grads = _descend([a, b], sse, lr.LR, lr.EPOCHS)
    xc, yc = x - x.mean(), y - y.mean()
    a_star = (xc * yc).sum() / (xc * xc).sum()
    b_star = y.mean() - a_star * x.mean()
    l_star = 0.5 * torch.nn.functional.mse_loss(a_star * x + b_star, y, reduction="sum")
    return {"a": traj[:, 0], "b": traj[:, 1], "loss": losses, "ga": grads[:, 0],
            "gb": grads[:, 1], "a_final": traj[-1, 0], "b_final": traj[-1, 1],
            "loss_final": losses[-1], "a_closed_form": a_star.item(),
            "b_closed_form": b_star.item(), "loss_closed_form": l_star.item()}


def _chain_rule() -> Result:
    cr = chain_rule
    w, b, a0 = _leaf(cr.SINGLE_W), _leaf(cr.SINGLE_B), _leaf(cr.SINGLE_X)
    acts, zs = [a0], []
    for layer in range(len(cr.SINGLE_W)):
        zs.append(w[layer] * acts[-1] + b[layer])
        acts.append(torch.sigmoid(zs[-1]))
        acts[-1].retain_grad()
    cost = (acts[-1] - cr.SINGLE_Y) ** 2
    cost.backward()
    r: Result = {
        "single.a": np.array([t.item() for t in acts]), "single.z": np.array([t.item()
                                                                              for t in zs]),
        "single.cost": cost.item(), "single.dC_dw": to_numpy(w.grad),
        "single.dC_db": to_numpy(b.grad),
        "single.dC_da": np.array([t.grad.item() for t in acts]),  # type: ignore[union-attr]
    }
    ws_np, bs_np = cr.multi_params()
    ws, bs = [_leaf(v) for v in ws_np], [_leaf(v) for v in bs_np]
    xs, ys = map(_const, cr.multi_data())
    act = xs
    for wl, bl in zip(ws, bs, strict=True):
        act = torch.sigmoid(act @ wl.T + bl)
    costs = ((act - ys) ** 2).sum(dim=1)
    costs.mean().backward()
    for layer, (wl, bl) in enumerate(zip(ws, bs, strict=True), start=1):
        r[f"multi.dC_dW{layer}"] = to_numpy(wl.grad)
        r[f"multi.dC_db{layer}"] = to_numpy(bl.grad)
    r["multi.cost_per_sample"] = to_numpy(costs)
    r["multi.cost"] = costs.mean().item()
    return r


def _sigmoid_ce() -> Result:
    p = {k: _leaf(v) for k, v in sigmoid_ce.params().items()}
    x, y = _const(sigmoid_ce.X), _const(sigmoid_ce.Y)
    z1 = p["W1"] @ x + p["b1"]
    h = torch.sigmoid(z1)
    z2 = p["W2"] @ h + p["b2"]
    a = torch.sigmoid(z2)
    for t in (z1, h, z2):
        t.retain_grad()
    loss = torch.nn.functional.binary_cross_entropy(a, y, reduction="sum")
    loss.backward()
    r: Result = {"z1": to_numpy(z1), "h": to_numpy(h), "z2": to_numpy(z2), "a": to_numpy(a),
                 "loss": loss.item(), "dl_dz2": to_numpy(z2.grad), "dl_dh": to_numpy(h.grad),
                 "dl_dz1": to_numpy(z1.grad)}
    r.update({f"dl_d{k}": to_numpy(v.grad) for k, v in p.items()})
    return r


def _backward_all(prefix: str, out: torch.Tensor, named: dict[str, torch.Tensor]) -> Result:
    for t in named.values():
        if not t.is_leaf:
            t.retain_grad()
    out.backward()
    r: Result = {f"{prefix}.pay": out.item()}
    r.update({f"{prefix}.d_{k}": t.grad.item() for k, t in named.items()})  # type: ignore
    return r


def _graph_apples() -> Result:
    v = {k: _leaf(val) for k, val in graph_apples.APPLE_INPUTS.items()}
    v["apple_price"] = v["apple"] * v["apple_num"]
    r = _backward_all("apple", v["apple_price"] * v["tax"], v)
    f = {k: _leaf(val) for k, val in graph_apples.FRUIT_INPUTS.items()}
    f["apple_price"] = f["apple"] * f["apple_num"]
    f["orange_price"] = f["orange"] * f["orange_num"]
    f["all_price"] = f["apple_price"] + f["orange_price"]
    r.update(_backward_all("fruit", f["all_price"] * f["tax"], f))
    return r


def _gd_variants() -> Result:
    r: Result = {}
    for problem in gd_variants.PROBLEMS:
        x_np, y_np = gd_variants.problem_data(problem)
        x, y = _const(x_np), as_tensor(y_np)
        state = gd_variants.initial_state(problem)
        model = torch.nn.Linear(2, state["weight"].shape[0], dtype=torch.float64)
        model.load_state_dict({k: as_tensor(v) for k, v in state.items()})
        loss_fn: torch.nn.Module = (torch.nn.MSELoss() if problem == "mse"
                                    else torch.nn.CrossEntropyLoss())
        for variant in gd_variants.VARIANTS:
            model.load_state_dict({k: as_tensor(v) for k, v in state.items()})
            opt = torch.optim.SGD(model.parameters(), lr=gd_variants.LR)
            steps = gd_variants.batch_indices(variant)
            per_epoch = len(steps) // gd_variants.EPOCHS
            with torch.no_grad():
                epoch_loss = [loss_fn(model(x), y).item()]
            step_loss = []
            for k, idx in enumerate(steps):
                i = torch.from_numpy(idx)
                opt.zero_grad()
                loss = loss_fn(model(x[i]), y[i])
                loss.backward()
                opt.step()
                step_loss.append(loss.item())
                if (k + 1) % per_epoch == 0:
                    with torch.no_grad():
                        epoch_loss.append(loss_fn(model(x), y).item())
            pre = f"{problem}.{variant}."
            r.update({pre + "step_loss": np.array(step_loss),
                      pre + "epoch_loss": np.array(epoch_loss),
                      pre + "weight": to_numpy(model.weight), pre + "bias": to_numpy(model.bias)})
    return r


def _conv_im2col() -> Result:
    p = conv_im2col.params()
    x, w, b = _leaf(conv_im2col.X), _leaf(p["W"]), _leaf(p["b"])
    g = _const(p["G"])
    y = torch.nn.functional.conv2d(x, w, b)
    y.backward(g.reshape(1, 2, 2, 2))
    cols = torch.nn.functional.unfold(_const(conv_im2col.X), conv_im2col.K)[0].requires_grad_()
    (w.detach().reshape(2, -1) @ cols).backward(g)
    return {"cols": to_numpy(cols), "y": to_numpy(y)[0], "dL_dW": to_numpy(w.grad),
            "dL_db": to_numpy(b.grad), "dL_dcols": to_numpy(cols.grad),
            "dL_dx": to_numpy(x.grad)[0, 0]}


def _bptt_forward(w: dict[str, torch.Tensor], x: torch.Tensor, untied: bool
                  ) -> dict[str, torch.Tensor]:
    """The two steps with torch ops; ``untied``: step t uses its own copy ``W_xh.step<t>``."""
    def at(name: str, step: int) -> torch.Tensor:
        return w[f"{name}.step{step}"] if untied else w[name]

    f: dict[str, torch.Tensor] = {}
    h = w["h0"]
    for step in (1, 2):
        f[f"a{step}"] = at("W_xh", step) @ x[step - 1] + at("W_hh", step) @ h + w["b"]
        h = f[f"h{step}"] = torch.tanh(f[f"a{step}"])
    f["y"] = w["W_hy"] @ h + w["c"]
    f["loss"] = 0.5 * ((f["y"] - bptt.TARGET) ** 2).sum()
    return f


def _bptt() -> Result:
    p = bptt.params()
    w = {k: _leaf(v) for k, v in p.items()}
    x = _leaf(bptt.X)
    f = _bptt_forward(w, x, untied=False)
    for k in ("a1", "h1", "a2", "h2", "y"):
        f[k].retain_grad()
    f["loss"].backward()
    r: Result = {k: to_numpy(v) for k, v in f.items()}
    r.update({f"dL_d{k}": to_numpy(f[k].grad) for k in ("y", "a1", "h1", "a2", "h2")})
    r.update({f"dL_d{k}": to_numpy(w[k].grad) for k in bptt.PARAMS})
    r["dL_dx1"], r["dL_dx2"] = to_numpy(x.grad)  # type: ignore[arg-type]
    untied = {k: _leaf(v) for k, v in p.items()}
    for k in ("W_xh", "W_hh"):
        for step in (1, 2):
            untied[f"{k}.step{step}"] = _leaf(p[k])
    _bptt_forward(untied, _const(bptt.X), untied=True)["loss"].backward()
    for k in ("W_xh", "W_hh"):
        for step in (1, 2):
            r[f"dL_d{k}.step{step}"] = to_numpy(untied[f"{k}.step{step}"].grad)
    return r


_TORCH_RUNS: dict[str, Callable[[], Result]] = {
    "line_gd": _line_gd, "chain_rule": _chain_rule, "sigmoid_ce": _sigmoid_ce,
    "graph_apples": _graph_apples, "gd_variants": _gd_variants,
    "linear_regression": _linear_regression, "conv_im2col": _conv_im2col, "bptt": _bptt,
}


def replay_example(name: str) -> Result:
    """The torch-autograd result of example ``name`` (keys as refbp's, minus diagnostics)."""
    get_example(name)
    return _TORCH_RUNS[name]()


def example_discrepancies(name: str) -> dict[str, Discrepancy]:
    """Run example ``name`` in refbp (no figures, no printing) and in torch; compare every key.

    Raises RuntimeError if the two sides do not produce the same keys (refbp's diagnostics
    excepted).
    """
    spec = get_example(name)
    mine = run_example(name, None, echo=lambda _s: None)
    ref = replay_example(name)
    expected = [k for k in mine if k not in spec.diagnostics]
    if sorted(expected) != sorted(ref):
        raise RuntimeError(
            f"example {name!r}: refbp and torch results differ in keys; only refbp: "
            f"{sorted(set(expected) - set(ref))}, only torch: {sorted(set(ref) - set(expected))}"
        )
    tol = tolerance_for(np.float64)
    return {k: discrepancy(mine[k], ref[k], tol) for k in expected}


_TORCH_OPS: dict[type, Callable[..., torch.Tensor]] = {
    rgraph.Add: torch.add, rgraph.Sub: torch.sub, rgraph.Mul: torch.mul, rgraph.Div: torch.div,
    rgraph.Exp: torch.exp, rgraph.Log: torch.log, rgraph.Sigmoid: torch.sigmoid,
    rgraph.ReLU: torch.relu,
}


def replay_graph(g: rgraph.Graph, output: str, dout: float = 1.0) -> tuple[float, dict[str,
                                                                                      float]]:
    """Rebuild the recorded expression ``g`` with torch ops; return its value and gradients.

    Gradients are returned for every variable ``output`` depends on (leaves and
    intermediates), keyed like ``Graph.backward``.
    """
    tensors = {n: _leaf(g.value(n)) for n in g.leaves}
    for step in g.steps:
        op = _TORCH_OPS.get(type(step.node))
        if op is None:
            raise TypeError(f"no torch op registered for {type(step.node).__name__}")
        t = op(*(tensors[i] for i in step.inputs))
        t.retain_grad()
        tensors[step.output] = t
    out = tensors[output]
    out.backward(_const(dout))
    grads = {n: t.grad.item() for n, t in tensors.items() if t.grad is not None}
    return out.item(), grads
