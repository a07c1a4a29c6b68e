r"""``line_gd``: fit a line through the origin, y = w x, by gradient descent.

Model and error
---------------
Prediction ``yhat_i = w x_i``; error (half the sum of squares)

    E(w) = 1/2 sum_i (y_i - w x_i)^2.

Derivative (chain rule through the residual r_i = y_i - w x_i)
----------------------------------------------------------------
    dE/dw = sum_i dE/dr_i * dr_i/dw = sum_i r_i * (-x_i) = -sum_i (y_i - w x_i) x_i.

Update: ``w <- w - eta dE/dw``.

Closed form: setting dE/dw = 0 gives sum_i y_i x_i = w sum_i x_i^2, i.e. ``w* = sum xy / sum x^2``.
Since E is a parabola in w with curvature d2E/dw2 = sum x^2, the error of gradient descent
shrinks by the factor ``1 - eta sum x^2`` per step: it converges when 0 < eta < 2 / sum x^2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refbp.examples._common import Echo, ExampleSpec, Result, fmt, new_figure, save_figure

N_POINTS = 10
SEED = 0
TRUE_W = 1.7
W0 = 0.0
ETA = 0.02
STEPS = 120


def data() -> tuple[np.ndarray, np.ndarray]:
    """10 seeded points around y = 1.7 x, x in [0.2, 2]."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(0.2, 2.0, N_POINTS)
    y = TRUE_W * x + rng.normal(0.0, 0.25, N_POINTS)
    return x, y


def error(w: float, x: np.ndarray, y: np.ndarray) -> float:
    """``E(w) = 1/2 sum (y - w x)^2``."""
    return float(0.5 * np.sum((y - w * x) ** 2))


def grad(w: float, x: np.ndarray, y: np.ndarray) -> float:
    """``dE/dw = -sum (y - w x) x``."""
    return float(-np.sum((y - w * x) * x))


def closed_form(x: np.ndarray, y: np.ndarray) -> float:
    """``w* = sum xy / sum x^2``."""
    return float(np.sum(x * y) / np.sum(x * x))


def run(out_dir: Path | None, echo: Echo) -> Result:
    x, y = data()
    echo("line_gd: fit y = w x by gradient descent on E = 1/2 sum (y - w x)^2")
    echo(f"x = {fmt(x, 4)}")
    echo(f"y = {fmt(y, 4)}")
    echo(f"dE/dw = -sum (y_i - w x_i) x_i;  w <- w - eta dE/dw,  eta = {ETA}, w0 = {W0}")
    echo(f"contraction per step 1 - eta sum x^2 = {1 - ETA * np.sum(x * x):.4f}")
    w = W0
    ws, es, gs = [w], [], []
    for t in range(STEPS):
        e, g = error(w, x, y), grad(w, x, y)
        w = w - ETA * g
        es.append(e)
        gs.append(g)
        ws.append(w)
        if t < 5 or (t + 1) % 20 == 0:
            echo(f"step {t + 1:3d}: E = {e:.10f}  dE/dw = {g:+.6e}  w <- {w:.12f}")
    w_star = closed_form(x, y)
    echo(f"final w = {w:.15f}, closed form w* = sum xy / sum x^2 = {w_star:.15f}, "
         f"|w - w*| = {abs(w - w_star):.3e}")
    result: Result = {
        "w": np.array(ws), "E": np.array(es), "dE_dw": np.array(gs),
        "w_final": w, "E_final": error(w, x, y), "w_closed_form": w_star,
    }
    if out_dir is not None:
        _figure(out_dir, x, y, result)
    return result


def _figure(out_dir: Path, x: np.ndarray, y: np.ndarray, r: Result) -> None:
    fig, (ax0, ax1) = new_figure(2)
    grid = np.linspace(0.0, x.max() * 1.05, 50)
    ax0.scatter(x, y, color="k", zorder=3, label="data")
    for t in (0, 1, 2, 5, STEPS):
        ax0.plot(grid, r["w"][t] * grid, alpha=0.4 + 0.6 * (t == STEPS),
                 label=f"step {t}: w = {r['w'][t]:.3f}")
    ax0.set(xlabel="x", ylabel="y", title="y = w x after gradient steps")
    ax0.legend(fontsize=8)
    ax1.plot(r["w"], label="w")
    ax1.axhline(r["w_closed_form"], color="k", ls="--", lw=1, label="w* = Σxy / Σx²")
    ax1.set(xlabel="step", ylabel="w", title="trajectory of w")
    ax1.legend(fontsize=8)
    save_figure(fig, out_dir, "line_gd.png")


SPEC = ExampleSpec("line_gd", "fit y = wx by gradient descent; converges to w* = sum xy / sum x^2",
                   run, ("line_gd.png",))
