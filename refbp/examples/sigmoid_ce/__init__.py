r"""``sigmoid_ce``: a 2-3-2 sigmoid network with cross-entropy loss, neuron by neuron.

Forward pass (one sample x, target y in {0, 1}^2)
-------------------------------------------------
    z_j^(1) = sum_k w_jk^(1) x_k + b_j^(1),     h_j = sigma(z_j^(1))        hidden, j = 0..2
    z_j^(2) = sum_k w_jk^(2) h_k + b_j^(2),     a_j = sigma(z_j^(2))        output, j = 0..1
    l = -sum_j [ y_j ln a_j + (1 - y_j) ln(1 - a_j) ]                       cross-entropy

Every weight multiplies one input, so the forward pass already knows the local derivative
``dz_j/dw_jk = (input k of the weight)``: x_k in layer 1, h_k in layer 2.

Backward pass (dl/dz recursion from the output layer)
-----------------------------------------------------
Output layer: dl/da_j = -y_j / a_j + (1 - y_j) / (1 - a_j) = (a_j - y_j) / (a_j (1 - a_j)) and
da_j/dz_j = a_j (1 - a_j), so the sigmoid's derivative cancels:

    dl/dz_j^(2) = a_j - y_j.

Hidden layer: h_k feeds every output neuron, so the paths add up:

    dl/dh_k = sum_j w_jk^(2) dl/dz_j^(2),      dl/dz_k^(1) = h_k (1 - h_k) dl/dh_k.

Weights and biases: dl/dw_jk = dl/dz_j * dz_j/dw_jk = dl/dz_j * (input k), dl/db_j = dl/dz_j.
The torch side (``refbp.examples.sigmoid_ce.mirror``) uses
``torch.nn.functional.binary_cross_entropy`` with ``reduction='sum'`` on the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from refbp.examples._common import (
    Echo,
    ExampleSpec,
    Result,
    new_figure,
    save_figure,
    sigmoid,
)
from refbp.gradcheck import check_function

SEED = 3
X = np.array([0.5, -1.0])
Y = np.array([1.0, 0.0])


def params() -> dict[str, np.ndarray]:
    """Seeded W1 (3, 2), b1 (3,), W2 (2, 3), b2 (2,)."""
    rng = np.random.default_rng(SEED)
    return {"W1": rng.normal(0, 1, (3, 2)), "b1": rng.normal(0, 0.5, 3),
            "W2": rng.normal(0, 1, (2, 3)), "b2": rng.normal(0, 0.5, 2)}


def forward(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every intermediate value of the forward pass and the loss."""
    z1 = p["W1"] @ x + p["b1"]
    h = sigmoid(z1)
    z2 = p["W2"] @ h + p["b2"]
    a = sigmoid(z2)
    loss = float(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)))
    return {"z1": z1, "h": h, "z2": z2, "a": a, "loss": loss}


def backward(p: dict[str, np.ndarray], f: dict[str, Any], x: np.ndarray,
             y: np.ndarray) -> dict[str, np.ndarray]:
    """The dl/dz recursion and the parameter gradients."""
    dz2 = f["a"] - y
    dh = p["W2"].T @ dz2
    dz1 = f["h"] * (1 - f["h"]) * dh
    return {"dl_dz2": dz2, "dl_dh": dh, "dl_dz1": dz1,
            "dl_dW2": np.outer(dz2, f["h"]), "dl_db2": dz2,
            "dl_dW1": np.outer(dz1, x), "dl_db1": dz1}


def run(out_dir: Path | None, echo: Echo) -> Result:
    p = params()
    echo("sigmoid_ce: 2-3-2 sigmoid network, cross-entropy l = -sum y ln a + (1-y) ln(1-a)")
    echo(f"x = {X}, y = {Y}")
    f = forward(p, X, Y)
    echo("forward pass:")
    for j in range(3):
        terms = " + ".join(f"{p['W1'][j, k]:.4f}*{X[k]:.4f}" for k in range(2))
        echo(f"  hidden {j}: z = {terms} + {p['b1'][j]:.4f} = {f['z1'][j]:.6f}, "
             f"h = sigma(z) = {f['h'][j]:.6f};  dz/dw_{j}k = x_k = {X}")
    for j in range(2):
        echo(f"  output {j}: z = sum_k w_{j}k h_k + b_{j} = {f['z2'][j]:.6f}, "
             f"a = {f['a'][j]:.6f};  dz/dw_{j}k = h_k = {np.round(f['h'], 6)}")
    echo(f"  loss l = {f['loss']:.10f}")
    g = backward(p, f, X, Y)
    echo("backward pass:")
    for j in range(2):
        echo(f"  output {j}: dl/dz = a - y = {f['a'][j]:.6f} - {Y[j]} = {g['dl_dz2'][j]:+.8f};"
             f"  dl/dw_{j}k = dl/dz * h_k = {np.round(g['dl_dW2'][j], 8)}")
    for k in range(3):
        echo(f"  hidden {k}: dl/dh = sum_j w_j{k} dl/dz_j = {g['dl_dh'][k]:+.8f}, "
             f"dl/dz = h(1-h) dl/dh = {g['dl_dz1'][k]:+.8f};  "
             f"dl/dw_{k}i = dl/dz * x_i = {np.round(g['dl_dW1'][k], 8)}")
    names = ("W1", "b1", "W2", "b2")
    theta = np.concatenate([p[n].ravel() for n in names])

    def loss_of(t: np.ndarray) -> float:
        q, i = {}, 0
        for n in names:
            q[n] = t[i:i + p[n].size].reshape(p[n].shape)
            i += p[n].size
        return float(forward(q, X, Y)["loss"])

    fd = check_function(loss_of, theta, np.concatenate([g[f"dl_d{n}"].ravel() for n in names]))
    echo(f"finite differences on all 17 parameters: {fd}")
    result: Result = {**f, **g, "fd_max_rel_err": fd.max_rel_err, "fd_passed": fd.passed}
    if out_dir is not None:
        _figure(out_dir, g)
    return result


def _figure(out_dir: Path, g: dict[str, np.ndarray]) -> None:
    fig, axes = new_figure(2, width=4.5)
    for ax, name in zip(axes, ("dl_dW1", "dl_dW2"), strict=True):
        m = g[name]
        lim = float(np.abs(m).max())
        im = ax.imshow(m, cmap="coolwarm", vmin=-lim, vmax=lim)
        for (j, k), v in np.ndenumerate(m):
            ax.text(k, j, f"{v:+.4f}", ha="center", va="center", fontsize=8)
        ax.set(title=f"{name.replace('dl_d', 'dl/d')}  (row j, column k)", xlabel="k",
               ylabel="j", xticks=range(m.shape[1]), yticks=range(m.shape[0]))
        fig.colorbar(im, ax=ax, shrink=0.8)
    save_figure(fig, out_dir, "sigmoid_ce.png")


SPEC = ExampleSpec("sigmoid_ce", "a 2-3-2 sigmoid network with cross-entropy, neuron by neuron",
                   run, ("sigmoid_ce.png",), diagnostics=("fd_max_rel_err", "fd_passed"))
