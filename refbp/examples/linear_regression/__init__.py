r"""``linear_regression``: fit y = a x + b to 20 points by gradient descent on the SSE loss.

Model, loss
-----------
Prediction yhat_i = a x_i + b, error e_i = yhat_i - y_i, and the sum-of-squares loss (the
teaching material's SSE, ``refbp.nn.SSELoss``)

    L(a, b) = 1/2 sum_i e_i^2 = 1/2 sum_i (a x_i + b - y_i)^2.

Gradients by the chain rule
---------------------------
L depends on a and b only through the predictions, and on each prediction through its error:

    dL/de_i = e_i,      de_i/dyhat_i = 1,      dyhat_i/da = x_i,      dyhat_i/db = 1,

    ga = dL/da = sum_i dL/de_i * de_i/dyhat_i * dyhat_i/da = sum_i (a x_i + b - y_i) x_i,
    gb = dL/db = sum_i dL/de_i * de_i/dyhat_i * dyhat_i/db = sum_i (a x_i + b - y_i).

Update (one epoch = one full-batch step with learning rate eta):

    a <- a - eta ga,      b <- b - eta gb.

Closed form (least squares)
---------------------------
ga = gb = 0 are the normal equations; with means xbar, ybar they give

    a* = sum_i (x_i - xbar)(y_i - ybar) / sum_i (x_i - xbar)^2,      b* = ybar - a* xbar.

Convergence: L is quadratic with Hessian H = [[sum x^2, sum x], [sum x, n]], so the error
(a - a*, b - b*) is multiplied by (I - eta H) every epoch; it converges when
eta < 2 / lambda_max(H), at the rate |1 - eta lambda_min(H)| per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refbp.examples._common import Echo, ExampleSpec, Result, fmt, new_figure, save_figure

SEED = 0
N_POINTS = 20
TRUE_A, TRUE_B = 1.2, 0.4
A0, B0 = 0.293, 0.758
LR = 0.03
EPOCHS = 400
SHOW_EPOCHS = (1, 3, 5)


def data() -> tuple[np.ndarray, np.ndarray]:
    """20 seeded points around y = 1.2 x + 0.4 with x in [0, 2] and noise sd 0.15."""
    rng = np.random.default_rng(SEED)
    x = np.sort(rng.uniform(0.0, 2.0, N_POINTS))
    return x, TRUE_A * x + TRUE_B + rng.normal(0.0, 0.15, N_POINTS)


def sse(a: float, b: float, x: np.ndarray, y: np.ndarray) -> float:
    """``L = 1/2 sum (a x + b - y)^2``."""
    return float(0.5 * np.sum((a * x + b - y) ** 2))


def gradients(a: float, b: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(ga, gb) = (sum e x, sum e)`` with ``e = a x + b - y``."""
    e = a * x + b - y
    return float(np.sum(e * x)), float(np.sum(e))


def closed_form(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares ``(a*, b*)`` from the centred normal equations."""
    xc, yc = x - x.mean(), y - y.mean()
    a = float(np.sum(xc * yc) / np.sum(xc * xc))
    return a, float(y.mean() - a * x.mean())


def run(out_dir: Path | None, echo: Echo) -> Result:
    x, y = data()
    echo(f"linear_regression: y = a x + b, {N_POINTS} points, SSE L = 1/2 sum (a x + b - y)^2")
    echo(f"x = {fmt(x, 4)}")
    echo(f"y = {fmt(y, 4)}")
    echo(f"ga = sum (a x + b - y) x,  gb = sum (a x + b - y);  a0 = {A0}, b0 = {B0}, "
         f"lr = {LR}, {EPOCHS} epochs")
    a, b = A0, B0
    av, bv, lv, gav, gbv = [a], [b], [sse(a, b, x, y)], [], []
    for epoch in range(1, EPOCHS + 1):
        ga, gb = gradients(a, b, x, y)
        a, b = a - LR * ga, b - LR * gb
        av.append(a)
        bv.append(b)
        lv.append(sse(a, b, x, y))
        gav.append(ga)
        gbv.append(gb)
        if epoch <= 5 or epoch % 50 == 0:
            echo(f"epoch {epoch:3d}: ga = {ga:+.6e}, gb = {gb:+.6e} -> a = {a:.12f}, "
                 f"b = {b:.12f}, L = {lv[-1]:.12f}")
    a_star, b_star = closed_form(x, y)
    l_star = sse(a_star, b_star, x, y)
    echo(f"final       a = {a:.15f}, b = {b:.15f}, L = {lv[-1]:.15f}")
    echo(f"closed form a = {a_star:.15f}, b = {b_star:.15f}, L = {l_star:.15f}")
    echo(f"|a - a*| = {abs(a - a_star):.3e}, |b - b*| = {abs(b - b_star):.3e}")
    r: Result = {
        "a": np.array(av), "b": np.array(bv), "loss": np.array(lv), "ga": np.array(gav),
        "gb": np.array(gbv), "a_final": a, "b_final": b, "loss_final": lv[-1],
        "a_closed_form": a_star, "b_closed_form": b_star, "loss_closed_form": l_star,
    }
    if out_dir is not None:
        _figures(out_dir, x, y, r)
    return r


def _figures(out_dir: Path, x: np.ndarray, y: np.ndarray, r: Result) -> None:
    fig, ax = new_figure(width=6.0, height=4.5)
    grid = np.array([0.0, 2.0])
    ax.scatter(x, y, color="k", s=18, zorder=3, label="data")
    ax.plot(grid, A0 * grid + B0, ls=":", color="0.5", label=f"init a = {A0}, b = {B0}")
    for e in SHOW_EPOCHS:
        ax.plot(grid, r["a"][e] * grid + r["b"][e], label=f"after epoch {e}")
    ax.plot(grid, r["a_final"] * grid + r["b_final"], color="k", lw=2,
            label=f"epoch {EPOCHS}: a = {r['a_final']:.4f}, b = {r['b_final']:.4f}")
    ax.set(xlabel="x", ylabel="y", title="y = a x + b fitted by gradient descent (SSE)")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "linear_regression_fit.png")

    fig, ax = new_figure(width=6.0, height=4.0)
    for key, color in (("a", "tab:blue"), ("b", "tab:orange")):
        ax.plot(r[key], color=color, label=key)
        ax.axhline(r[f"{key}_closed_form"], color=color, ls="--", lw=1,
                   label=f"{key}* (least squares)")
    ax.set(xlabel="epoch (symlog scale)", ylabel="value", xscale="symlog", xlim=(0, EPOCHS),
           title="trajectories of a and b")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "linear_regression_params.png")

    fig, ax = new_figure(width=6.0, height=4.0)
    ax.plot(np.log2(r["loss"]), label="log2 L")
    ax.axhline(np.log2(r["loss_closed_form"]), color="k", ls="--", lw=1, label="log2 L*")
    ax.set(xlabel="epoch (symlog scale)", ylabel="log2 loss", xscale="symlog", xlim=(0, EPOCHS),
           title="SSE loss (log2)")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "linear_regression_loss.png")


SPEC = ExampleSpec(
    "linear_regression", "y = ax + b by gradient descent on SSE, vs the least-squares solution",
    run, ("linear_regression_fit.png", "linear_regression_params.png",
          "linear_regression_loss.png"),
)
