r"""``bptt``: backpropagation through time, a two-step RNN unrolled by hand.

Model
-----
Two inputs x_1, x_2 (2 features each), a hidden state of 2 units starting at h_0, one output
read from the last state, half squared error:

    a_1 = W_xh x_1 + W_hh h_0 + b,      h_1 = tanh(a_1)
    a_2 = W_xh x_2 + W_hh h_1 + b,      h_2 = tanh(a_2)
    y   = W_hy h_2 + c,                 L = 1/2 (y - t)^2.

The same W_xh, W_hh and b are used at both steps: unrolled, the RNN is a feed-forward net whose
layers share their weights.

Backward, step by step (chain rule from the loss towards the first step)
------------------------------------------------------------------------
    dL/dy    = y - t
    dL/dW_hy = (y - t) h_2^T,    dL/dc = y - t
    dL/dh_2  = W_hy^T (y - t)
    dL/da_2  = dL/dh_2 * (1 - h_2^2)                       (tanh' = 1 - tanh^2)
    dL/dh_1  = W_hh^T dL/da_2                              (h_1 reaches L only through a_2)
    dL/da_1  = dL/dh_1 * (1 - h_1^2)
    dL/dh_0  = W_hh^T dL/da_1,   dL/dx_t = W_xh^T dL/da_t.

A shared weight collects one term per step where it is used (the multivariable chain rule sums
over every path from the weight to the loss):

    dL/dW_xh = dL/da_1 x_1^T + dL/da_2 x_2^T
    dL/dW_hh = dL/da_1 h_0^T + dL/da_2 h_1^T
    dL/db    = dL/da_1 + dL/da_2.

This is what ``refbp.nn.RNN`` does for any length (``refbp.nn.functional_rnn``): a loop from
the last step to the first carrying dL/dh backwards, and per-step terms summed into the
weight gradients. torch's ``nn.RNN`` has two biases b_ih and b_hh where this example has one b;
both receive dL/db. The example checks the hand gradients three ways: central finite
differences, ``refbp.nn.RNN`` on the same weights, and torch autograd
(``refbp.examples.bptt.mirror``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refbp.examples._common import Echo, ExampleSpec, Result, fmt, new_figure, save_figure
from refbp.gradcheck import check_function

X = np.array([[1.0, -0.5], [0.3, 0.8]])           # x_1, x_2
H0 = np.array([0.1, -0.2])
TARGET = 0.5
W_XH = np.array([[0.5, -0.3], [0.8, 0.2]])
W_HH = np.array([[0.4, -0.6], [0.3, 0.9]])
B = np.array([0.1, -0.1])
W_HY = np.array([[1.2, -0.7]])
C = np.array([0.05])
PARAMS = ("W_xh", "W_hh", "b", "W_hy", "c", "h0")


def params() -> dict[str, np.ndarray]:
    """Fresh copies of the weights and of h_0 (the leaves of the graph)."""
    return {"W_xh": W_XH.copy(), "W_hh": W_HH.copy(), "b": B.copy(), "W_hy": W_HY.copy(),
            "c": C.copy(), "h0": H0.copy()}


def forward(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``a_1, h_1, a_2, h_2, y, L`` of the unrolled net."""
    a1 = p["W_xh"] @ X[0] + p["W_hh"] @ p["h0"] + p["b"]
    h1 = np.tanh(a1)
    a2 = p["W_xh"] @ X[1] + p["W_hh"] @ h1 + p["b"]
    h2 = np.tanh(a2)
    y = p["W_hy"] @ h2 + p["c"]
    return {"a1": a1, "h1": h1, "a2": a2, "h2": h2, "y": y,
            "loss": np.asarray(0.5 * float((y - TARGET) @ (y - TARGET)))}


def backward(p: dict[str, np.ndarray], f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every gradient of the module docstring, named ``dL_d<name>``; per-step terms too."""
    g: dict[str, np.ndarray] = {"dL_dy": f["y"] - TARGET}
    g["dL_dW_hy"] = np.outer(g["dL_dy"], f["h2"])
    g["dL_dc"] = g["dL_dy"].copy()
    g["dL_dh2"] = p["W_hy"].T @ g["dL_dy"]
    g["dL_da2"] = g["dL_dh2"] * (1 - f["h2"] ** 2)
    g["dL_dh1"] = p["W_hh"].T @ g["dL_da2"]
    g["dL_da1"] = g["dL_dh1"] * (1 - f["h1"] ** 2)
    g["dL_dh0"] = p["W_hh"].T @ g["dL_da1"]
    g["dL_dx1"] = p["W_xh"].T @ g["dL_da1"]
    g["dL_dx2"] = p["W_xh"].T @ g["dL_da2"]
    g["dL_dW_xh.step1"] = np.outer(g["dL_da1"], X[0])
    g["dL_dW_xh.step2"] = np.outer(g["dL_da2"], X[1])
    g["dL_dW_hh.step1"] = np.outer(g["dL_da1"], p["h0"])
    g["dL_dW_hh.step2"] = np.outer(g["dL_da2"], f["h1"])
    g["dL_dW_xh"] = g["dL_dW_xh.step1"] + g["dL_dW_xh.step2"]
    g["dL_dW_hh"] = g["dL_dW_hh.step1"] + g["dL_dW_hh.step2"]
    g["dL_db"] = g["dL_da1"] + g["dL_da2"]
    return g


def _finite_differences(p: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> float:
    worst = 0.0
    for name in PARAMS:
        def loss_at(v: np.ndarray, name: str = name) -> float:
            return float(forward({**p, name: v})["loss"])

        res = check_function(loss_at, p[name], g[f"dL_d{name}"])
        if not res.passed:
            raise RuntimeError(f"bptt: finite differences disagree for {name}: {res}")
        worst = max(worst, res.max_rel_err)
    return worst


def _library_layer(p: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> float:
    """``refbp.nn.RNN`` on the same weights (b split as b_ih = b, b_hh = 0): max |diff|."""
    from refbp import nn

    rnn = nn.RNN(2, 2)
    rnn.load_state_dict({"weight_ih_l0": p["W_xh"], "weight_hh_l0": p["W_hh"],
                         "bias_ih_l0": p["b"], "bias_hh_l0": np.zeros(2)})
    out, _ = rnn(X[:, None, :], p["h0"][None, None, :])
    g_out = np.zeros_like(out)
    g_out[-1, 0] = g["dL_dh2"]
    gx, gh0 = rnn.backward(g_out)
    pairs = [(gx[:, 0], np.stack([g["dL_dx1"], g["dL_dx2"]])), (gh0[0, 0], g["dL_dh0"]),
             (rnn.weight_ih_l0.grad, g["dL_dW_xh"]), (rnn.weight_hh_l0.grad, g["dL_dW_hh"]),
             (rnn.bias_ih_l0.grad, g["dL_db"]), (rnn.bias_hh_l0.grad, g["dL_db"])]
    return max(float(np.max(np.abs(a - b))) for a, b in pairs)


def _mat(m: np.ndarray, precision: int = 6) -> str:
    return "[" + "; ".join(fmt(row, precision) for row in m) + "]"


def run(out_dir: Path | None, echo: Echo) -> Result:
    p = params()
    echo("bptt: h_t = tanh(W_xh x_t + W_hh h_(t-1) + b), y = W_hy h_2 + c, "
         "L = 1/2 (y - t)^2, two steps")
    echo(f"x_1 = {fmt(X[0])}, x_2 = {fmt(X[1])}, h_0 = {fmt(H0)}, t = {TARGET}")
    f = forward(p)
    echo("forward, step by step:")
    for k in ("a1", "h1", "a2", "h2", "y", "loss"):
        echo(f"  {k:4s} = {fmt(f[k], 10)}")
    g = backward(p, f)
    echo("backward, from the loss to the first step:")
    for k in ("dL_dy", "dL_dW_hy", "dL_dc", "dL_dh2", "dL_da2", "dL_dh1", "dL_da1", "dL_dh0",
              "dL_dx2", "dL_dx1"):
        echo(f"  {k:9s} = {fmt(g[k], 10)}")
    echo("shared weights sum one term per step (rows separated by ;):")
    for k, terms in (("dL_dW_xh", ("dL_da1 x_1^T", "dL_da2 x_2^T")),
                     ("dL_dW_hh", ("dL_da1 h_0^T", "dL_da2 h_1^T"))):
        echo(f"  {k} = {terms[0]} + {terms[1]}")
        echo(f"           = {_mat(g[k + '.step1'])} + {_mat(g[k + '.step2'])}")
        echo(f"           = {_mat(g[k], 10)}")
    echo(f"  dL_db = {fmt(g['dL_da1'], 6)} + {fmt(g['dL_da2'], 6)} = {fmt(g['dL_db'], 10)}")
    fd = _finite_differences(p, g)
    echo(f"central finite differences agree: max rel err {fd:.2e}")
    layer = _library_layer(p, g)
    echo(f"refbp.nn.RNN on the same weights: max |difference| {layer:.2e}")
    result: Result = {**f, **g, "fd_max_rel_err": fd, "rnn_layer_max_abs_diff": layer}
    if out_dir is not None:
        _figure(out_dir, g)
    return result


def _figure(out_dir: Path, g: Result) -> None:
    fig, axes = new_figure(2, width=4.5)
    for ax, name in zip(axes, ("dL_dW_xh", "dL_dW_hh"), strict=True):
        s1, s2 = g[name + ".step1"].ravel(), g[name + ".step2"].ravel()
        idx = np.arange(s1.size)
        ax.bar(idx - 0.2, s1, width=0.4, label="step 1 term")
        ax.bar(idx + 0.2, s2, width=0.4, label="step 2 term")
        ax.scatter(idx, g[name].ravel(), color="k", zorder=3, label="total (sum)")
        ax.set_xticks(idx, [f"[{i // 2},{i % 2}]" for i in idx])
        ax.set(title=f"{name}: one term per time step", xlabel="element", ylabel="gradient")
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(fontsize=8)
    save_figure(fig, out_dir, "bptt.png")


SPEC = ExampleSpec("bptt", "backpropagation through time: a two-step RNN unrolled by hand",
                   run, ("bptt.png",), diagnostics=("fd_max_rel_err", "rnn_layer_max_abs_diff"))
