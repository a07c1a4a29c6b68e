r"""``conv_im2col``: a 2-D convolution and its backward as im2col + one matrix product.

Setting: one 4x4 single-channel image ``x``, two 3x3 filters ``W`` (2, 1, 3, 3) with biases
``b``, stride 1, no padding, so the output ``y`` is (2, 2, 2): two channels of 2x2.

Forward
-------
A convolution (cross-correlation, as in every framework) computes, for filter o and output
pixel (p, q)::

    y[o, p, q] = b[o] + sum_{i, j} W[o, 0, i, j] * x[p + i, q + j]

im2col copies each 3x3 window of x into one column of a matrix ``cols`` (9 rows = the
taps (i, j) in row-major order, 4 columns = the output pixels (p, q) in row-major order)::

    cols[(i, j), (p, q)] = x[p + i, q + j]

and flattens each filter into one row of ``Wm`` (2, 9). The whole convolution is then one
matrix product: ``Y = Wm @ cols + b`` (2, 4), reshaped to (2, 2, 2). (In
``refbp.nn.functional_conv`` the same idea runs on batches, channels and groups: the window
view comes from ``numpy.lib.stride_tricks.as_strided`` without copying.)

Backward
--------
With the upstream gradient ``G = dL/dY`` (2, 4) and ``Y = Wm cols + b``:

- ``dL/dWm = G @ cols^T`` (2, 9): filter o's tap (i, j) collects G[o, (p, q)] times the pixel
  it multiplied, x[p + i, q + j];
- ``dL/db = sum over (p, q) of G`` (2,);
- ``dL/dcols = Wm^T @ G`` (9, 4): what each copied pixel received;
- ``dL/dx = col2im(dL/dcols)``: every pixel appears in several windows, so its gradient is the
  **sum** over all its copies: col2im scatter-adds each column back onto its 3x3 window (the
  adjoint of the copy). The centre pixels, covered by all four windows, gather four terms.

The loss is ``L = sum(G * Y)`` for a fixed seeded G, so dL/dY = G exactly. The torch side
(``refbp.examples.conv_im2col.mirror``) uses ``torch.nn.functional.unfold`` (torch's im2col)
for ``cols``, autograd through ``Wm @ unfold(x)`` for dL/dcols, and
``torch.nn.functional.conv2d`` with autograd for y, dL/dW, dL/db and dL/dx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

from refbp.examples._common import Echo, ExampleSpec, Result, fmt, new_figure, save_figure
from refbp.gradcheck import GradcheckResult, check_function
from refbp.nn.conv import Conv2d

SEED = 7
K = 3
X = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # 1..16, easy to follow in the printout


def params() -> dict[str, np.ndarray]:
    """Seeded small-integer filters W (2, 1, 3, 3), biases b (2,) and upstream G (2, 4)."""
    rng = np.random.default_rng(SEED)
    return {"W": rng.integers(-2, 3, (2, 1, K, K)).astype(np.float64),
            "b": np.array([0.5, -1.0]),
            "G": rng.integers(-3, 4, (2, 4)).astype(np.float64)}


def im2col(x: np.ndarray) -> np.ndarray:
    """cols (9, 4) of a (1, 1, 4, 4) image: column (p, q) = the window at (p, q), flattened."""
    img = x[0, 0]
    ho, wo = img.shape[0] - K + 1, img.shape[1] - K + 1
    return np.stack([img[p:p + K, q:q + K].ravel() for p in range(ho) for q in range(wo)],
                    axis=1)


def col2im(dcols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`im2col`: add column (p, q) back onto the window at (p, q)."""
    out = np.zeros(shape)
    wo = shape[1] - K + 1
    for col in range(dcols.shape[1]):
        p, q = divmod(col, wo)
        out[p:p + K, q:q + K] += dcols[:, col].reshape(K, K)
    return out


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cols, y)`` with y (2, 2, 2) = reshape(Wm @ cols + b)."""
    cols = im2col(x)
    y = w.reshape(2, -1) @ cols + b[:, None]
    return cols, y.reshape(2, 2, 2)


def run(out_dir: Path | None, echo: Echo) -> Result:
    p = params()
    w, b, g = p["W"], p["b"], p["G"]
    wm = w.reshape(2, -1)
    echo("conv_im2col: y = conv2d(x, W) + b as im2col + one matrix product, and its backward")
    echo(f"x (4x4) =\n{fmt(X[0, 0], 3)}")
    echo(f"W: two 3x3 filters =\n{fmt(w[:, 0], 3)}\nb = {fmt(b)}")
    cols, y = forward(X, w, b)
    echo("im2col: column (p, q) is the 3x3 window of x at (p, q), flattened row by row;")
    echo(f"cols (9 taps x 4 output pixels) =\n{fmt(cols, 3)}")
    echo(f"Wm = filters as rows (2 x 9) =\n{fmt(wm, 3)}")
    echo(f"Y = Wm @ cols + b (2 x 4) =\n{fmt(y.reshape(2, 4), 6)}")
    echo(f"  e.g. y[0, 0, 0] = sum(W[0] * x[0:3, 0:3]) + b[0] = "
         f"{float(np.sum(w[0, 0] * X[0, 0, :3, :3]) + b[0]):g}")
    echo(f"upstream G = dL/dY (2 x 4), L = sum(G * Y) =\n{fmt(g, 3)}")
    dw = (g @ cols.T).reshape(w.shape)
    db = g.sum(axis=1)
    dcols = wm.T @ g
    dx = col2im(dcols, X.shape[2:])
    echo(f"dL/dWm = G @ cols^T (2 x 9) =\n{fmt(dw.reshape(2, -1), 6)}")
    echo(f"dL/db = row sums of G = {fmt(db)}")
    echo(f"dL/dcols = Wm^T @ G (9 x 4) =\n{fmt(dcols, 6)}")
    cover = col2im(np.ones_like(cols), X.shape[2:])
    echo(f"col2im adds each column back onto its window; copies per pixel =\n{fmt(cover, 3)}")
    echo(f"dL/dx = col2im(dL/dcols) (4x4) =\n{fmt(dx, 6)}")
    fd = _finite_differences(w, b, g, dx, dw, db)
    echo(f"finite differences on x, W and b: {fd}")
    layer = _layer_difference(w, b, g, y, dx, dw, db)
    echo(f"refbp.nn.Conv2d(1, 2, 3) with the same W, b: largest difference {layer:.1e}")
    result: Result = {"cols": cols, "y": y, "dL_dW": dw, "dL_db": db, "dL_dcols": dcols,
                      "dL_dx": dx, "fd_max_rel_err": fd.max_rel_err, "fd_passed": fd.passed,
                      "layer_max_abs_diff": layer}
    if out_dir is not None:
        _figure(out_dir, cols, y, dx, cover)
    return result


def _layer_difference(w: np.ndarray, b: np.ndarray, g: np.ndarray, y: np.ndarray,
                      dx: np.ndarray, dw: np.ndarray, db: np.ndarray) -> float:
    """Largest |difference| between the hand-written steps and the library layer."""
    conv = Conv2d(1, 2, K)
    conv.weight.data[...] = w
    conv.bias.data[...] = b  # type: ignore[union-attr]
    y_layer = conv(X)[0]
    dx_layer = np.asarray(conv.backward(g.reshape(1, 2, 2, 2)))[0, 0]
    pairs = [(y_layer, y), (dx_layer, dx), (conv.weight.grad, dw),
             (conv.bias.grad, db)]  # type: ignore[union-attr]
    return max(float(np.max(np.abs(a - e))) for a, e in pairs)


def _finite_differences(w: np.ndarray, b: np.ndarray, g: np.ndarray, dx: np.ndarray,
                        dw: np.ndarray, db: np.ndarray) -> GradcheckResult:
    """One finite-difference check over all of (x, W, b) through L = sum(G * Y).

    L is linear in every single variable (bilinear in x and W), so central differences have
    no truncation error; the power-of-two step 2^-6 keeps every x +- h exact on these small
    integers, leaving only the rounding of L itself (|L| ~ 1e2, error ~ eps |L| / h ~ 1e-12).
    """
    sizes = (X.size, w.size, b.size)

    def loss(theta: np.ndarray) -> float:
        x_, w_, b_ = np.split(theta, np.cumsum(sizes)[:-1])
        _, y = forward(x_.reshape(X.shape), w_.reshape(w.shape), b_)
        return float(np.sum(g * y.reshape(2, 4)))

    theta = np.concatenate([X.ravel(), w.ravel(), b])
    return check_function(loss, theta, np.concatenate([dx.ravel(), dw.ravel(), db]),
                          eps=2.0**-6)


def _figure(out_dir: Path, cols: np.ndarray, y: np.ndarray, dx: np.ndarray,
            cover: np.ndarray) -> None:
    """Four panels: x with one window, cols, Y, and dL/dx annotated with copies per pixel."""
    fig, axes = new_figure(4, width=3.6, height=3.6)
    panels = [(X[0, 0], "x (4x4), window (0, 0) boxed", "{:g}"),
              (cols, "cols = im2col(x) (9x4), its column 0", "{:g}"),
              (y.reshape(2, 4), "Y = Wm @ cols + b (2x4)", "{:g}"),
              (dx, "dL/dx = col2im(Wm^T G)", "{:g}")]
    for ax, (m, title, f) in zip(axes, panels, strict=True):
        lim = float(np.abs(m).max()) or 1.0
        ax.imshow(m, cmap="coolwarm", vmin=-lim, vmax=lim)
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, f.format(v), ha="center", va="center", fontsize=7)
        ax.set(title=title, xticks=range(m.shape[1]), yticks=range(m.shape[0]))
    axes[0].add_patch(Rectangle((-0.5, -0.5), K, K, fill=False, edgecolor="black",
                                linewidth=2))
    axes[1].add_patch(Rectangle((-0.5, -0.5), 1, K * K, fill=False, edgecolor="black",
                                linewidth=2))
    for (r, c), n in np.ndenumerate(cover):
        axes[3].text(c + 0.3, r - 0.3, f"x{n:g}", fontsize=6, color="dimgray")
    save_figure(fig, out_dir, "conv_im2col.png")


SPEC = ExampleSpec("conv_im2col", "a 2-D convolution and its backward as im2col + matmul",
                   run, ("conv_im2col.png",),
                   diagnostics=("fd_max_rel_err", "fd_passed", "layer_max_abs_diff"))
