r"""``chain_rule``: backpropagation written out with the chain rule, one neuron per layer first.

Part 1: one neuron per layer
----------------------------
Three layers l = 1, 2, 3 = L, each with one weight w^l and one bias b^l; input a^0 = x:

    z^l = w^l a^(l-1) + b^l,     a^l = sigma(z^l),     C0 = (a^L - y)^2.

The cost depends on w^L only through z^L, and on z^L only through a^L, so

    dC0/dw^L = dz^L/dw^L * da^L/dz^L * dC0/da^L = a^(L-1) * sigma'(z^L) * 2(a^L - y),
    dC0/db^L = dz^L/db^L * da^L/dz^L * dC0/da^L =    1    * sigma'(z^L) * 2(a^L - y),
    dC0/da^(L-1) = dz^L/da^(L-1) * da^L/dz^L * dC0/da^L = w^L * sigma'(z^L) * 2(a^L - y).

With delta^l = dC0/dz^l this is a recursion towards the input: delta^L = sigma'(z^L) 2(a^L - y),
and for every earlier layer

    dC0/da^(l-1) = w^l delta^l,      delta^(l-1) = sigma'(z^(l-1)) dC0/da^(l-1),
    dC0/dw^l = a^(l-1) delta^l,      dC0/db^l = delta^l.

sigma'(z) = sigma(z) (1 - sigma(z)).

Part 2: several neurons per layer, several samples
--------------------------------------------------
Neuron j of layer l receives every neuron k of layer l-1 through the weight w_jk^l (row j,
column k: torch's ``(out_features, in_features)`` layout):

    z_j^l = sum_k w_jk^l a_k^(l-1) + b_j^l,   a_j^l = sigma(z_j^l),   C0 = sum_j (a_j^L - y_j)^2.

    dC0/dw_jk^l = a_k^(l-1) sigma'(z_j^l) dC0/da_j^l          (outer product delta^l a^(l-1)^T)
    dC0/da_k^(l-1) = sum_j w_jk^l sigma'(z_j^l) dC0/da_j^l    (a neuron influences the cost
                                                              through every neuron it feeds:
                                                              the paths are summed; W^T delta)

The cost over n training samples is the average C = 1/n sum_i C0_i, so every gradient is the
average of the per-sample gradients. Both parts are checked by central finite differences
(``refbp.gradcheck.check_function``) and against torch autograd (the torch half beside this
module, ``refbp.examples.chain_rule.mirror``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refbp.examples._common import (
    Echo,
    ExampleSpec,
    Result,
    fmt,
    new_figure,
    save_figure,
    sigmoid,
    sigmoid_prime,
)
from refbp.gradcheck import check_function

SINGLE_W = np.array([0.8, -1.2, 1.5])
SINGLE_B = np.array([0.1, 0.3, -0.2])
SINGLE_X = 0.6
SINGLE_Y = 1.0

SIZES = (2, 3, 3, 2)
N_SAMPLES = 4
SEED = 0


# -- part 1 -------------------------------------------------------------------------------
def single_forward(w: np.ndarray, b: np.ndarray, x: float) -> tuple[np.ndarray, np.ndarray]:
    """Activations a^0..a^L and pre-activations z^1..z^L of the one-neuron chain."""
    a, z = [float(x)], []
    for wl, bl in zip(w, b, strict=True):
        z.append(wl * a[-1] + bl)
        a.append(float(sigmoid(z[-1])))
    return np.array(a), np.array(z)


def single_cost(w: np.ndarray, b: np.ndarray, x: float, y: float) -> float:
    """``C0 = (a^L - y)^2``."""
    return float((single_forward(w, b, x)[0][-1] - y) ** 2)


def single_backward(w: np.ndarray, a: np.ndarray, z: np.ndarray,
                    y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dC0/dw^l, dC0/db^l, dC0/da^l)`` for l = 1..L, 1..L and 0..L by the recursion."""
    L = len(w)
    dw, db, da = np.zeros(L), np.zeros(L), np.zeros(L + 1)
    da[L] = 2.0 * (a[L] - y)
    for ell in range(L, 0, -1):
        delta = float(sigmoid_prime(z[ell - 1])) * da[ell]       # dC0/dz^l
        dw[ell - 1] = a[ell - 1] * delta
        db[ell - 1] = delta
        da[ell - 1] = w[ell - 1] * delta
    return dw, db, da


# -- part 2 -------------------------------------------------------------------------------
def multi_params() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded weights W^l (n_l, n_(l-1)) and biases b^l (n_l,) for layer sizes ``SIZES``."""
    rng = np.random.default_rng(SEED)
    ws = [rng.normal(0.0, 1.0, (m, k)) for k, m in zip(SIZES[:-1], SIZES[1:], strict=True)]
    bs = [rng.normal(0.0, 0.5, m) for m in SIZES[1:]]
    return ws, bs


def multi_data() -> tuple[np.ndarray, np.ndarray]:
    """``N_SAMPLES`` seeded inputs (n, 2) and targets in (0, 1) of shape (n, 2)."""
    rng = np.random.default_rng(SEED + 1)
    return rng.normal(0.0, 1.0, (N_SAMPLES, SIZES[0])), rng.uniform(0.1, 0.9, (N_SAMPLES,
                                                                               SIZES[-1]))


def multi_forward(ws: list[np.ndarray], bs: list[np.ndarray],
                  x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For one sample: activations a^0..a^L and pre-activations z^1..z^L (vectors)."""
    a, z = [x], []
    for w, b in zip(ws, bs, strict=True):
        z.append(w @ a[-1] + b)            # z_j = sum_k w_jk a_k + b_j
        a.append(sigmoid(z[-1]))
    return a, z


def multi_sample_grads(ws: list[np.ndarray], bs: list[np.ndarray], x: np.ndarray,
                       y: np.ndarray) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """``C0`` and its gradients for one sample, by the w_jk recursion."""
    a, z = multi_forward(ws, bs, x)
    da = 2.0 * (a[-1] - y)                  # dC0/da_j^L
    gws: list[np.ndarray] = []
    gbs: list[np.ndarray] = []
    for ell in range(len(ws), 0, -1):
        delta = sigmoid_prime(z[ell - 1]) * da                 # delta_j = sigma'(z_j) dC0/da_j
        gws.insert(0, np.outer(delta, a[ell - 1]))             # dC0/dw_jk = a_k delta_j
        gbs.insert(0, delta)
        da = ws[ell - 1].T @ delta                             # dC0/da_k = sum_j w_jk delta_j
    return float(np.sum((a[-1] - y) ** 2)), gws, gbs


def multi_cost_and_grads(ws: list[np.ndarray], bs: list[np.ndarray], xs: np.ndarray,
                         ys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Per-sample costs C0_i and the averaged gradients of C = 1/n sum_i C0_i."""
    costs = []
    gws = [np.zeros_like(w) for w in ws]
    gbs = [np.zeros_like(b) for b in bs]
    for x, y in zip(xs, ys, strict=True):
        c, gw, gb = multi_sample_grads(ws, bs, x, y)
        costs.append(c)
        for acc, g in zip(gws + gbs, gw + gb, strict=True):
            acc += g / len(xs)
    return np.array(costs), gws, gbs


def _unflatten(theta: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    out, i = [], 0
    for t in like:
        out.append(theta[i:i + t.size].reshape(t.shape))
        i += t.size
    return out


def run(out_dir: Path | None, echo: Echo) -> Result:
    r: Result = {}
    echo("chain_rule part 1: one neuron per layer, L = 3, sigmoid, C0 = (a^L - y)^2")
    w, b = SINGLE_W, SINGLE_B
    a, z = single_forward(w, b, SINGLE_X)
    dw, db, da = single_backward(w, a, z, SINGLE_Y)
    L = len(w)
    for ell in range(1, L + 1):
        echo(f"  z^{ell} = w^{ell} a^{ell - 1} + b^{ell} = {w[ell - 1]} * {a[ell - 1]:.6f} "
             f"+ {b[ell - 1]} = {z[ell - 1]:.6f},  a^{ell} = sigma(z^{ell}) = {a[ell]:.6f}")
    cost = single_cost(w, b, SINGLE_X, SINGLE_Y)
    echo(f"  C0 = (a^L - y)^2 = ({a[L]:.6f} - {SINGLE_Y})^2 = {cost:.10f}")
    s = float(sigmoid_prime(z[L - 1]))
    echo(f"  dC0/dw^L = a^(L-1) sigma'(z^L) 2(a^L - y) = {a[L - 1]:.6f} * {s:.6f} * "
         f"{2 * (a[L] - SINGLE_Y):.6f} = {dw[L - 1]:.10f}")
    echo(f"  dC0/db^L = sigma'(z^L) 2(a^L - y) = {db[L - 1]:.10f}")
    echo(f"  dC0/da^(L-1) = w^L sigma'(z^L) 2(a^L - y) = {da[L - 1]:.10f}")
    for ell in range(L - 1, 0, -1):
        echo(f"  layer {ell}: delta^{ell} = sigma'(z^{ell}) dC0/da^{ell} = {db[ell - 1]:.10f};  "
             f"dC0/dw^{ell} = a^{ell - 1} delta^{ell} = {dw[ell - 1]:.10f};  "
             f"dC0/da^{ell - 1} = w^{ell} delta^{ell} = {da[ell - 1]:.10f}")
    theta = np.concatenate([w, b])
    fd = check_function(lambda t: single_cost(t[:L], t[L:], SINGLE_X, SINGLE_Y), theta,
                        np.concatenate([dw, db]))
    echo(f"  finite differences on (w, b): {fd}")
    r.update({"single.a": a, "single.z": z, "single.cost": cost, "single.dC_dw": dw,
              "single.dC_db": db, "single.dC_da": da,
              "single.fd_max_rel_err": fd.max_rel_err, "single.fd_passed": fd.passed})

    echo(f"chain_rule part 2: layers {SIZES}, w_jk^l indexing, cost averaged over "
         f"n = {N_SAMPLES} samples")
    ws, bs = multi_params()
    xs, ys = multi_data()
    costs, gws, gbs = multi_cost_and_grads(ws, bs, xs, ys)
    _, gw0, _ = multi_sample_grads(ws, bs, xs[0], ys[0])
    echo("  sample 0, output layer: dC0/dw_jk^L = a_k^(L-1) sigma'(z_j^L) 2(a_j^L - y_j)")
    for j, k in np.ndindex(*gw0[-1].shape):
        echo(f"    dC0/dw_{j}{k}^L = {gw0[-1][j, k]:+.10f}")
    echo(f"  per-sample costs C0_i = {fmt(costs, 8)}; C = mean = {costs.mean():.10f}")
    for ell, (gw, gb) in enumerate(zip(gws, gbs, strict=True), start=1):
        echo(f"  dC/dW^{ell} (average of {N_SAMPLES} samples) =\n{fmt(gw, 8)}")
        echo(f"  dC/db^{ell} = {fmt(gb, 8)}")
        r[f"multi.dC_dW{ell}"] = gw
        r[f"multi.dC_db{ell}"] = gb
    params = ws + bs

    def mean_cost(t: np.ndarray) -> float:
        p = _unflatten(t, params)
        return float(multi_cost_and_grads(p[:len(ws)], p[len(ws):], xs, ys)[0].mean())

    fd2 = check_function(mean_cost, np.concatenate([p.ravel() for p in params]),
                         np.concatenate([g.ravel() for g in gws + gbs]))
    echo(f"  finite differences on every w_jk, b_j: {fd2}")
    r.update({"multi.cost_per_sample": costs, "multi.cost": float(costs.mean()),
              "multi.fd_max_rel_err": fd2.max_rel_err, "multi.fd_passed": fd2.passed})
    if out_dir is not None:
        _figure(out_dir, r)
    return r


def _figure(out_dir: Path, r: Result) -> None:
    fig, (ax0, ax1) = new_figure(2)
    layers = np.arange(1, len(SINGLE_W) + 1)
    ax0.bar(layers - 0.2, np.abs(r["single.dC_dw"]), width=0.4, label="|dC0/dw^l|")
    ax0.bar(layers + 0.2, np.abs(r["single.dC_db"]), width=0.4, label="|dC0/db^l|")
    ax0.set(xlabel="layer l", ylabel="magnitude", title="one neuron per layer",
            xticks=layers)
    ax0.legend(fontsize=8)
    norms = [np.linalg.norm(r[f"multi.dC_dW{ell}"]) for ell in layers]
    ax1.bar(layers, norms, color="tab:green")
    ax1.set(xlabel="layer l", ylabel="||dC/dW^l||", xticks=layers,
            title=f"layers {SIZES}, mean over {N_SAMPLES} samples")
    save_figure(fig, out_dir, "chain_rule.png")


SPEC = ExampleSpec(
    "chain_rule", "the chain rule layer by layer: one neuron per layer, then w_jk and n samples",
    run, ("chain_rule.png",),
    diagnostics=("single.fd_max_rel_err", "single.fd_passed", "multi.fd_max_rel_err",
                 "multi.fd_passed"),
)
