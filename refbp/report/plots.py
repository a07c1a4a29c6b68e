"""Plots of a report as inline PNG data URIs (matplotlib, Agg canvas, no pyplot state).

Every function returns ``"data:image/png;base64,..."`` so that ``report.html`` needs no
external file. Figures are built with ``matplotlib.figure.Figure`` directly, which renders
with the Agg backend and leaves pyplot's global state alone. Layouts are fixed rather than
"constrained" (constrained layout made each figure several times slower to render); the saved
image is cropped to the drawn content (``bbox_inches="tight"``), so long tick and colour-bar
labels are never cut off.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from refbp.errors import printable

ERROR_FLOOR = 1e-18
"""Exact agreement (error 0) is drawn at this floor on log axes."""

RATIO_LOG_RANGE = (-8.0, 12.0)
"""log10 range of the tolerance-ratio heatmap colour scale (ratio 1 = log 0 is the centre).
Ratios beyond its top, and non-finite ones, fall in the colour bar's marked "beyond" bin."""

BEYOND_COLOUR = "#4a0030"
"""Heatmap colour of ratios past ``RATIO_LOG_RANGE`` and of rows failing on NaN/inf."""
MISSING_COLOUR = "#dddddd"

DPI = 80


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG (cropped to its drawn content, so no label is cut off) and return
    it as a base64 data URI."""
    buf = io.BytesIO()
    # a log axis reaching ~1e300 (a diverging loss) makes the tick locator compute decades
    # past the float range; those ticks come out inf and are not drawn
    with np.errstate(over="ignore"):
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def ratio_logs(ratios: np.ndarray) -> np.ndarray:
    """log10 of failing ratios as the heatmap colours them: clipped to the bottom of
    ``RATIO_LOG_RANGE``, past its top (the "beyond" bin) for ratios beyond it and for infinite
    ones, NaN (missing) kept."""
    lo, hi = RATIO_LOG_RANGE
    ratios = np.asarray(ratios, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logs = np.log10(np.where(np.isinf(ratios), 10.0 ** (hi + 1), ratios))
    return np.clip(logs, lo, hi + 1)


def ratio_colour_scale() -> tuple[Colormap, Normalize]:
    """Colour map and norm of the heatmap's log10 ratios: green below 0 (ratio 1), red above,
    ``BEYOND_COLOUR`` past the top of ``RATIO_LOG_RANGE``, ``MISSING_COLOUR`` for NaN."""
    lo, hi = RATIO_LOG_RANGE
    cmap = colormaps["RdYlGn_r"].with_extremes(bad=MISSING_COLOUR, over=BEYOND_COLOUR)
    return cmap, TwoSlopeNorm(vmin=lo, vcenter=0.0, vmax=hi)


def ratio_heatmap(ratios: np.ndarray, rows: Sequence[str], cols: Sequence[str]) -> str:
    """Heatmap of worst failing ratios (``rows`` scenarios x ``cols`` tensor kinds): each the
    larger of the tolerance ratio and the normwise error over its tolerance.

    Colour is log10 of the ratio over ``RATIO_LOG_RANGE``, green below 1 (pass) and red above;
    ratios past the top and infinite ones (a row failing on NaN/inf) take the colour bar's
    "beyond" bin (``BEYOND_COLOUR``), zeros sit at the bottom of the scale and missing cells
    (NaN) are grey. Cells are annotated when few.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    rows = [printable(r) for r in rows]  # names from report data: no control characters
    lo, hi = RATIO_LOG_RANGE
    logs = ratio_logs(ratios)
    label_in = 0.3 + 0.075 * max((len(r) for r in rows), default=0)
    grid_w, grid_h = 0.9 * len(cols), (0.22 if len(rows) > 8 else 0.35) * len(rows)
    bar_h = max(grid_h, 2.4)  # a colour bar tall enough for its ticks
    width, height = label_in + grid_w + 1.6, bar_h + 1.6
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((label_in / width, (1.0 + bar_h - grid_h) / height, grid_w / width,
                       grid_h / height))
    cax = fig.add_axes(((label_in + grid_w + 0.2) / width, 1.0 / height, 0.2 / width,
                        bar_h / height))
    cmap, norm = ratio_colour_scale()
    image = ax.imshow(np.ma.masked_invalid(logs), aspect="auto", cmap=cmap, norm=norm,
                      interpolation="nearest")
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_title("worst failing ratio (x tolerance; > 1 fails)", fontsize=10)
    bar = fig.colorbar(image, cax=cax, extend="max", extendfrac=0.08)
    ticks = [t for t in (-8, -4, 0, 3, 6, 9, 12) if lo <= t <= hi]
    bar.set_ticks(ticks, labels=[f"1e{t}" for t in ticks])
    bar.set_label(f"x tolerance (top bin: beyond 1e{hi:.0f} or NaN/inf)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if ratios.size <= 300:
        for (i, j), value in np.ndenumerate(ratios):
            if not np.isnan(value):
                dark = logs[i, j] > 0.75 * hi or logs[i, j] < 0.75 * lo
                ax.text(j, i, _short(value), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    return to_data_uri(fig)


def scenario_plots(steps: Sequence[int], refbp_loss: Sequence[float],
                   torch_loss: Sequence[float], errors: Mapping[str, tuple[np.ndarray,
                                                                            np.ndarray]],
                   normwise_tol: float, title: str, left: str = "refbp",
                   first_nonfinite: int | None = None) -> str:
    """Loss curves of both sides (``left``, refbp by default, dashed over torch) and normwise
    error vs step; the loss panel is left out when neither side recorded a finite loss (a
    layer or a gradient check).

    ``errors`` maps a tensor kind to ``(steps, worst normwise error per step)``. Errors of 0
    are drawn at ``ERROR_FLOOR``; non-finite errors at the top of the axis with a red ``x``,
    and ``first_nonfinite`` (the first step failing on NaN/inf) is marked on both panels.
    """
    loss_values = np.asarray(list(refbp_loss) + list(torch_loss), dtype=np.float64)
    with_loss = bool((~np.isnan(loss_values)).any())
    fig = Figure(figsize=(10.0 if with_loss else 5.6, 3.4))
    if with_loss:
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.84, wspace=0.25)
        ax_loss, ax_err = fig.subplots(1, 2)
        _loss_panel(ax_loss, steps, refbp_loss, torch_loss, left, first_nonfinite)
    else:
        fig.subplots_adjust(left=0.15, right=0.97, bottom=0.14, top=0.78)
        ax_err = fig.subplots(1, 1)
    few = len(steps) <= 30
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
            ax_err.plot(np.asarray(x)[bad], shown[bad], "x", color="red", ms=9, mew=2)
    ax_err.axhline(normwise_tol, color="red", ls=":", lw=1, label="normwise tol")
    _mark_nonfinite(ax_err, first_nonfinite)
    _log_y(ax_err)
    ax_err.set_ylim(ERROR_FLOOR / 2, top * 2)
    ax_err.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_err.set_xlabel("step")
    ax_err.set_ylabel("normwise rel. error (0 drawn at 1e-18)")
    ax_err.set_title("worst normwise error per tensor kind")
    ax_err.legend(loc="best", fontsize=7, ncol=2)
    fig.suptitle(printable(title), fontsize=10)
    return to_data_uri(fig)


def _loss_panel(ax: Axes, steps: Sequence[int], refbp_loss: Sequence[float],
                torch_loss: Sequence[float], left: str, first_nonfinite: int | None) -> None:
    few = len(steps) <= 30
    ax.plot(steps, torch_loss, "-", color="tab:orange", lw=2.5, label="torch",
            marker="o" if few else None, fillstyle="none", ms=7)
    ax.plot(steps, refbp_loss, "--", color="tab:blue", lw=1.5, label=left,
            marker="." if few else None)
    values = np.asarray(list(refbp_loss) + list(torch_loss), dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() > 100 * finite.min():
        _log_y(ax)
        low, high = np.log10(finite.min()), np.log10(finite.max())
        ax.set_ylim(10 ** (low - 0.05 * (high - low)),
                    10 ** min(high + 0.05 * (high - low), 300.0))
    x = np.asarray(steps)
    bad = ~(np.isfinite(np.asarray(refbp_loss, dtype=np.float64))
            & np.isfinite(np.asarray(torch_loss, dtype=np.float64)))
    if bad.any():  # drawn at the top edge of the axis: NaN/inf has no place on it
        ax.plot(x[bad], np.full(int(bad.sum()), 0.97), "x", color="red", ms=9, mew=2,
                transform=ax.get_xaxis_transform(), label="loss NaN/inf")
    _mark_nonfinite(ax, first_nonfinite)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"loss ({left} dashed over torch)")
    ax.legend(loc="best", fontsize=8)


def _mark_nonfinite(ax: Axes, step: int | None) -> None:
    if step is not None:
        ax.axvline(step, color="red", lw=1.2, alpha=0.7, label=f"NaN/inf from step {step}")


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


def ulp_histogram_plot(max_ulps: Mapping[str, np.ndarray], left: str = "refbp") -> str:
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
    ax.set_xlabel(f"largest ULP distance {left} vs torch in a tensor")
    ax.set_ylabel("tensors (rows)")
    ax.legend(fontsize=7, ncol=4)
    return to_data_uri(fig)


def trend_plot(labels: Sequence[str], series: Mapping[str, Sequence[float]],
               flagged: Sequence[int] = (), regressed: Sequence[int] = (), title: str = "",
               ylabel: str = "worst ratio to tolerance") -> str:
    """A figure across reports (``refbp history``): one line per ``series`` (values per
    report, NaN where a report lacks it) on a log axis, the tolerance (1) dotted red, reports
    that the comparison with the previous one flags circled orange and those that regress
    marked with a red ``x``. Values of 0 are drawn at ``ERROR_FLOOR``, infinite ones at the
    top of the axis.
    """
    x = np.arange(len(labels))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in series.items()}
    finite = [a[np.isfinite(a)] for a in arrays.values()]
    top = max([1.0, *(float(f.max()) for f in finite if f.size)]) * 10.0
    fig = Figure(figsize=(max(5.2, min(11.0, 1.6 + 0.45 * len(labels))), 3.1))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.3, top=0.86)
    ax = fig.subplots(1, 1)
    shown: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        shown[name] = np.where(np.isinf(a), top, np.maximum(a, ERROR_FLOOR))
        ax.plot(x, shown[name], "-", marker="o" if len(x) <= 40 else None, ms=3.5, label=name)
    worst = np.fmax.reduce(list(shown.values())) if shown else np.full(len(x), np.nan)
    styles: tuple[tuple[Sequence[int], dict[str, Any]], ...] = (
        (flagged, {"marker": "o", "ms": 11, "mfc": "none", "mec": "tab:orange", "mew": 1.8,
                   "ls": "none", "label": "flagged"}),
        (regressed, {"marker": "x", "ms": 10, "color": "red", "mew": 2.2, "ls": "none",
                     "label": "regression"}))
    for marks, style in styles:
        idx = np.asarray([i for i in marks if 0 <= i < len(x)], dtype=int)
        if idx.size:
            ax.plot(x[idx], np.where(np.isnan(worst[idx]), 1.0, worst[idx]), **style)
    ax.axhline(1.0, color="red", ls=":", lw=1, label="tolerance")
    _log_y(ax)
    low = min([1.0, *(float(f[f > 0].min()) for f in finite if (f > 0).any())])
    zero = any((f == 0).any() for f in finite)
    ax.set_ylim(ERROR_FLOOR / 2 if zero else max(ERROR_FLOOR / 2, low / 30.0), top * 2)
    ax.set_xticks(x)
    ax.set_xticklabels([printable(t) for t in labels], rotation=40, ha="right", fontsize=7)
    ax.set_xlim(-0.5, max(len(x) - 0.5, 0.5))
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(loc="best", fontsize=7, ncol=2)
    if title:
        ax.set_title(printable(title), fontsize=9)
    return to_data_uri(fig)
