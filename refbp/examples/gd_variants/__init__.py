r"""``gd_variants``: batch, stochastic and mini-batch gradient descent side by side.

The three variants differ only in how many samples estimate the gradient of one step:

==========  ==================  ==========================================================
variant     samples per step    update, for a batch B of the n training samples
==========  ==================  ==========================================================
BGD         all n               theta <- theta - eta * grad (1/n sum_(i<=n) l_i)
SGD         1                   theta <- theta - eta * grad l_i, i from a shuffled order
MBGD        b (here 6)          theta <- theta - eta * grad (1/b sum_(i in B) l_i)
==========  ==================  ==========================================================

Each epoch visits every sample once (``refbp.data.BatchIterator``: one seeded permutation per
epoch), so per epoch BGD takes 1 step, MBGD n/b steps and SGD n steps, with the same learning
rate. The mini-batch gradient is an unbiased estimate of the full gradient; its noise makes
SGD's loss curve jagged while it still descends fastest per epoch.

Two problems, both with refbp.nn layers and losses:

- regression: ``Linear(2, 1)`` with ``MSELoss``; for a batch, with r = yhat - y,
  dL/dW = 2/b * r^T X and dL/db = 2/b * sum r (``Linear.backward`` of ``MSELoss.backward``).
- classification: ``Linear(2, 3)`` (logits) with ``CrossEntropyLoss`` on three Gaussian
  blobs; dL/dz_ic = (softmax(z_i)_c - [c = t_i]) / b, then the same Linear backward.

The torch side (``refbp.examples.gd_variants.mirror``) feeds ``torch.nn.Linear`` + stock losses +
``torch.optim.SGD`` the very same index arrays (``batch_indices``) from the same initial weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from refbp.data import BatchIterator
from refbp.examples._common import Echo, ExampleSpec, Result, new_figure, save_figure
from refbp.nn import CrossEntropyLoss, Linear, MSELoss
from refbp.nn.loss import Loss

SEED = 7
N = 24
EPOCHS = 20
LR = 0.05
#: variant -> (refbp.data mode, batch size)
VARIANTS: dict[str, tuple[str, int | None]] = {
    "bgd": ("batch", None), "sgd": ("sgd", None), "mbgd": ("minibatch", 6)}
PROBLEMS = ("mse", "ce")


def problem_data(problem: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded data: ``mse`` -> X (24, 2), y (24, 1); ``ce`` -> X (24, 2), class t (24,) int64."""
    rng = np.random.default_rng(SEED)
    if problem == "mse":
        x = rng.normal(0.0, 1.0, (N, 2))
        y = x @ np.array([[1.5], [-0.7]]) + 0.3 + rng.normal(0.0, 0.1, (N, 1))
        return x, y
    if problem == "ce":
        t = np.arange(N, dtype=np.int64) % 3
        centers = np.array([[0.0, 1.5], [1.5, -1.0], [-1.5, -1.0]])
        return centers[t] + rng.normal(0.0, 0.7, (N, 2)), t
    raise ValueError(f"unknown problem {problem!r}; known: {PROBLEMS}")


def initial_state(problem: str) -> dict[str, np.ndarray]:
    """The seeded initial ``weight`` and ``bias`` (torch's default init, same for all variants)."""
    out = 1 if problem == "mse" else 3
    return Linear(2, out, generator=np.random.default_rng(SEED + 1)).state_dict()


def batch_indices(variant: str) -> list[np.ndarray]:
    """The sample indices of every update step, all epochs in order (fed to both sides)."""
    mode, size = VARIANTS[variant]
    x = np.zeros((N, 1))
    it = BatchIterator(x, mode=mode, batch_size=size, shuffle=mode != "batch",  # type: ignore[arg-type]
                       rng=SEED + 2)
    return [idx for _ in range(EPOCHS) for idx in it.next_epoch_indices()]


def _loss(problem: str) -> Loss:
    return MSELoss() if problem == "mse" else CrossEntropyLoss()


def train(problem: str, variant: str) -> dict[str, Any]:
    """Run one variant; per-step batch loss, full-data loss per epoch, final parameters."""
    x, y = problem_data(problem)
    model = Linear(2, 1 if problem == "mse" else 3)
    model.load_state_dict(initial_state(problem))
    loss_fn = _loss(problem)
    steps = batch_indices(variant)
    per_epoch = len(steps) // EPOCHS
    step_loss, epoch_loss = [], [float(loss_fn(model(x), y))]
    for k, idx in enumerate(steps):
        model.zero_grad()
        step_loss.append(float(loss_fn(model(x[idx]), y[idx])))
        model.backward(loss_fn.backward())
        for p in model.parameters():
            if p.grad is not None:
                p.data -= LR * p.grad                 # theta <- theta - eta * grad
        if (k + 1) % per_epoch == 0:
            epoch_loss.append(float(loss_fn(model(x), y)))
    state = model.state_dict()
    return {"step_loss": np.array(step_loss), "epoch_loss": np.array(epoch_loss),
            "weight": state["weight"], "bias": state["bias"]}


def run(out_dir: Path | None, echo: Echo) -> Result:
    r: Result = {}
    for problem in PROBLEMS:
        name = "regression, MSELoss" if problem == "mse" else "3-class classifier, CrossEntropy"
        echo(f"gd_variants: {name}, n = {N}, lr = {LR}, {EPOCHS} epochs")
        for variant in VARIANTS:
            res = train(problem, variant)
            steps = len(res["step_loss"])
            curve = ", ".join(f"{v:.4f}" for v in res["epoch_loss"][:: EPOCHS // 4])
            echo(f"  {variant:4s}: {steps:3d} steps ({steps // EPOCHS} per epoch); full-data loss "
                 f"every {EPOCHS // 4} epochs: {curve}; final {res['epoch_loss'][-1]:.6f}")
            r.update({f"{problem}.{variant}.{k}": v for k, v in res.items()})
    if out_dir is not None:
        _figure(out_dir, r)
    return r


def _figure(out_dir: Path, r: Result) -> None:
    fig, axes = new_figure(2)
    colors = {"bgd": "tab:blue", "sgd": "tab:orange", "mbgd": "tab:green"}
    titles = ("regression (MSE)", "classifier (CE)")
    for ax, problem, title in zip(axes, PROBLEMS, titles, strict=True):
        for variant, color in colors.items():
            steps = r[f"{problem}.{variant}.step_loss"]
            ax.plot(np.arange(1, len(steps) + 1) * EPOCHS / len(steps), steps, color=color,
                    alpha=0.3, lw=0.8)
            ax.plot(np.arange(EPOCHS + 1), r[f"{problem}.{variant}.epoch_loss"], color=color,
                    marker="o", ms=3, label=f"{variant.upper()} (full-data loss)")
        ax.set(xlabel="epoch", ylabel="loss", yscale="log", title=title)
        ax.legend(fontsize=8)
    fig.suptitle(f"lr = {LR}, same initial weights; faint: loss of each batch, "
                 "markers: full-data loss after each epoch", fontsize=10)
    save_figure(fig, out_dir, "gd_variants.png")


SPEC = ExampleSpec("gd_variants", "batch vs stochastic vs mini-batch gradient descent (MSE, CE)",
                   run, ("gd_variants.png",))
