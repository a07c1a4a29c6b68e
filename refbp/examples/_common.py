"""Shared plumbing of the worked examples: the spec record, printing, figures, sigmoid.

Figures use matplotlib's object-oriented API (``matplotlib.figure.Figure`` rendered by the
Agg canvas), never ``pyplot``: no display is needed and no global backend state is touched.
Files are written atomically (temporary file in the same directory, then rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Echo = Callable[[str], None]
Result = dict[str, Any]
Runner = Callable[[Path | None, Echo], Result]


@dataclass(frozen=True)
class ExampleSpec:
    """One worked example.

    Attributes
    ----------
    name : str
        The CLI name (``refbp example NAME``).
    title : str
        One line for listings.
    run : callable
        ``run(out_dir, echo) -> dict``: prints its steps through ``echo``, writes ``figures``
        into ``out_dir`` (skipped when ``out_dir`` is None), returns the key numbers.
    figures : tuple of str
        File names of the PNGs written into ``out_dir``.
    diagnostics : tuple of str
        Result keys that only the refbp side computes (e.g. finite-difference errors); every
        other key is also produced by the torch half (the module ``mirror`` beside ``run``'s
        module, run by ``refbp.examples.replay.replay_example``).
    """

    name: str
    title: str
    run: Runner
    figures: tuple[str, ...]
    diagnostics: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """Alias of ``title`` (the one-line description shown by ``refbp example --list``)."""
        return self.title


def fmt(x: Any, precision: int = 6) -> str:
    """Compact printing of a scalar or array for the step-by-step output."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return f"{float(arr):.{precision}g}"
    return np.array2string(arr, precision=precision, suppress_small=False, separator=", ",
                           max_line_width=100)


def new_figure(ncols: int = 1, *, width: float = 5.0, height: float = 4.0) -> tuple[Figure, Any]:
    """A Figure with ``ncols`` side-by-side axes (a single Axes when ``ncols == 1``)."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def save_figure(fig: Figure, out_dir: Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` (PNG, 100 dpi) atomically and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".png", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + e^-z)`` without overflow: ``e^z / (1 + e^z)`` for z < 0."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """``sigma'(z) = sigma(z) (1 - sigma(z))``."""
    s = sigmoid(z)
    return s * (1.0 - s)

