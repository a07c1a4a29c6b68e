"""Plots of a report as inline PNG data URIs (matplotlib, Agg canvas, no pyplot state).

Every function returns ``"data:image/png;base64,..."`` so that ``report.html`` needs no
external file. Figures are built with ``matplotlib.figure.Figure`` directly, which renders
with the Agg backend and leaves pyplot's global state alone. Layouts are fixed rather than
"constrained": constrained layout made each figure several times slower to render.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from refbp.errors import printable

ERROR_FLOOR = 1e-18
"""Exact agreement (error 0) is drawn at this floor on log axes."""

RATIO_LOG_RANGE = (-8.0, 3.0)
"""log10 range of the tolerance-ratio heatmap colour scale (ratio 1 = log 0 is the centre)."""

DPI = 80


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG and return it as a base64 data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def ratio_heatmap(ratios: np.ndarray, rows: Sequence[str], cols: Sequence[str]) -> str:
    """Heatmap of worst failing ratios (``rows`` scenarios x ``cols`` tensor kinds): each the
    larger of the tolerance ratio and the normwise error over its tolerance.

    Colour is log10 of the ratio, clipped to ``RATIO_LOG_RANGE``, green below 1 (pass) and red
    above; zeros sit at the bottom of the scale, missing cells (NaN) are grey and non-finite
    ratios (a NaN/Inf on one side) are drawn at the top. Cells are annotated when few.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    rows = [printable(r) for r in rows]  # names from report data: no control characters
    lo, hi = RATIO_LOG_RANGE
    with np.errstate(divide="ignore"):
        logs = np.log10(np.where(np.isinf(ratios), 10.0**hi, ratios))
    logs = np.clip(logs, lo, hi)
    label_in = 0.3 + 0.075 * max((len(r) for r in rows), default=0)
    grid_w, grid_h = 0.9 * len(cols), 0.22 * len(rows)
    width, height = label_in + grid_w + 1.6, grid_h + 1.6
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((label_in / width, 1.0 / height, grid_w / width, grid_h / height))
    cax = fig.add_axes(((label_in + grid_w + 0.2) / width, 1.0 / height, 0.2 / width,
                        grid_h / height))
    cmap = colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(logs), aspect="auto", cmap=cmap,
                      norm=TwoSlopeNorm(vmin=lo, vcenter=0.0, vmax=hi), interpolation="nearest")
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_title("worst failing ratio (log10; > 0 fails)")
    fig.colorbar(image, cax=cax, label="log10 max(tol ratio, normwise/tol)")
    if ratios.size <= 300:
        for (i, j), value in np.ndenumerate(ratios):
            if not np.isnan(value):
                ax.text(j, i, _short(value), ha="center", va="center", fontsize=7)
    return to_data_uri(fig)


def scenario_plots(steps: Sequence[int], refbp_loss: Sequence[float],
                   torch_loss: Sequence[float], errors: Mapping[str, tuple[np.ndarray,
                                                                            np.ndarray]],
                   normwise_tol: float, title: str, left: str = "refbp") -> str:
    """Loss curves of both sides (``left``, refbp by default, dashed over torch) and normwise
    error vs step.

    ``errors`` maps a tensor kind to ``(steps, worst normwise error per step)``. Errors of 0
    are drawn at ``ERROR_FLOOR``; non-finite errors at the top of the axis with an ``x``.
    """
    fig = Figure(figsize=(10.0, 3.4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.84, wspace=0.25)
    ax_loss, ax_err = fig.subplots(1, 2)
    few = len(steps) <= 30
    ax_loss.plot(steps, torch_loss, "-", color="tab:orange", lw=2.5, label="torch",
                 marker="o" if few else None, fillstyle="none", ms=7)
    ax_loss.plot(steps, refbp_loss, "--", color="tab:blue", lw=1.5, label=left,
                 marker="." if few else None)
    loss_values = np.asarray(list(refbp_loss) + list(torch_loss), dtype=np.float64)
    finite_loss = loss_values[np.isfinite(loss_values)]
    if finite_loss.size and finite_loss.min() > 0 and finite_loss.max() > 100 * finite_loss.min():
        _log_y(ax_loss)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(f"loss ({left} dashed over torch)")
    ax_loss.legend(loc="best", fontsize=8)
    top = ERROR_FLOOR
    for _, (_, err) in errors.items():
        finite = err[np.isfinite(err)]
        if finite.size:
            top = max(top, float(finite.max()))
    top = max(top * 10.0, normwise_tol * 10.0)
    for kind, (x, err) in errors.items():
        err = np.asarray(err, dtype=np.float64)
        shown = np.where(np.isfinite(err), np.maximum(err, ERROR_FLOOR), top)
        (line,) = ax_err.plot(x, shown, "-", marker="." if few else None, label=kind)
        bad = ~np.isfinite(err)
        if bad.any():
            ax_err.plot(np.asarray(x)[bad], shown[bad], "x", color=line.get_color(), ms=9)
    ax_err.axhline(normwise_tol, color="red", ls=":", lw=1, label="normwise tol")
    _log_y(ax_err)
    ax_err.set_ylim(ERROR_FLOOR / 2, top * 2)
    ax_err.set_xlabel("step")
    ax_err.set_ylabel("normwise rel. error (0 drawn at 1e-18)")
    ax_err.set_title("worst normwise error per tensor kind")
    ax_err.legend(loc="best", fontsize=7, ncol=2)
    fig.suptitle(printable(title), fontsize=10)
    return to_data_uri(fig)


def _log_y(ax: Axes) -> None:
    """Log y axis, plain "1e-16" labels, no minor ticks (mathtext and ticks are slow)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"1e{np.log10(v):.0f}"))
    ax.yaxis.set_minor_locator(NullLocator())


def _short(value: float) -> str:
    if np.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.0e}"


def ulp_histogram_plot(max_ulps: Mapping[str, np.ndarray]) -> str:
    """Histogram of per-tensor largest ULP distances, one bar series per tensor kind.

    Bins are 0, 1, 2, 3-4, 5-8, ... (powers of two); ``max_ulps`` maps a kind to the largest
    ULP distance of each of its rows (NaN entries are skipped).
    """
    values = {k: np.asarray(v, dtype=np.float64) for k, v in max_ulps.items()}
    values = {k: v[np.isfinite(v)] for k, v in values.items()}
    top = max((float(v.max()) for v in values.values() if v.size), default=0.0)
    edges = [-0.5, 0.5, 1.5, 2.5]
    while edges[-1] < top:
        edges.append(2 * edges[-1] - 0.5 if edges[-1] > 2 else edges[-1] * 2)
    labels = ["0", "1", "2"] + [f"{int(lo + 0.5)}-{int(hi - 0.5)}"
                                for lo, hi in zip(edges[3:-1], edges[4:], strict=False)]
    fig = Figure(figsize=(8.0, 3.0))
    ax = fig.add_axes((0.08, 0.25, 0.9, 0.65))
    width = 0.8 / max(len(values), 1)
    for i, (kind, v) in enumerate(values.items()):
        counts, _ = np.histogram(v, bins=edges)
        ax.bar(np.arange(len(counts)) + i * width, counts, width=width, label=kind)
    ax.set_xticks(np.arange(len(edges) - 1) + 0.4 - width / 2)
    ax.set_xticklabels(labels[: len(edges) - 1], rotation=45, fontsize=7)
    ax.set_xlabel("largest ULP distance refbp vs torch in a tensor")
    ax.set_ylabel("tensors (rows)")
    ax.legend(fontsize=7, ncol=4)
    return to_data_uri(fig)
