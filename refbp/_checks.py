"""Input validation shared by every public entry point.

User-facing errors are exceptions with a message that names what was expected and what was
received; nothing here uses ``assert`` and nothing broadcasts silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from refbp.dtypes import DTYPE_WORDS, FLOAT_TYPES


class _FloatDtypes(tuple):  # type: ignore[type-arg]
    """The supported dtypes (``refbp.dtypes``); also ``np.longdouble`` inside
    :func:`extended_precision`.

    A tuple (iterating gives the public dtypes), whose ``in`` test also admits long double
    while the exact referee (``refbp.parity.referee``) recomputes a step in higher precision.
    """

    def __contains__(self, dt: object) -> bool:
        if tuple.__contains__(self, dt):
            return True
        return _EXTENDED.get() and dt == np.dtype(np.longdouble)


_EXTENDED: ContextVar[bool] = ContextVar("refbp_extended_precision", default=False)
FLOAT_DTYPES = _FloatDtypes(t.dtype for t in FLOAT_TYPES)


@contextmanager
def extended_precision() -> Iterator[None]:
    """Within the block, refbp's NumPy side also accepts ``np.longdouble`` arrays.

    Used only by the exact referee; everywhere else float32 and float64 are the supported
    dtypes.
    """
    token = _EXTENDED.set(True)
    try:
        yield
    finally:
        _EXTENDED.reset(token)


def as_float_array(x: Any, name: str = "input") -> np.ndarray:
    """Return ``x`` as a float ndarray of a supported dtype, or raise a TypeError naming it.

    Integer, boolean, complex and object arrays are rejected rather than silently cast, as
    torch rejects them for floating-point ops.
    """
    arr = np.asarray(x)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a {DTYPE_WORDS} array, got dtype {arr.dtype}")
    return arr


def check_float_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """``dtype`` as a NumPy dtype, or a TypeError naming the supported ones."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{what} must be {DTYPE_WORDS}, got {dt}")
    return dt


def param_dtype(dtype: Any) -> np.dtype:
    """The dtype of a layer's parameters: ``dtype`` (None: float64), checked."""
    return check_float_dtype(np.float64 if dtype is None else dtype)


def as_index_array(x: Any, name: str = "target") -> np.ndarray:
    """Return ``x`` as an int64 ndarray of class indices, or raise a TypeError."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_same_dtype(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise a TypeError when two float arrays have different dtypes."""
    if a.dtype != b.dtype:
        raise TypeError(
            f"{names[0]} and {names[1]} must have the same dtype, got {a.dtype} and {b.dtype}"
        )


def check_same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise a ValueError when two arrays differ in shape (no broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}"
        )


def grad_out_array(grad_out: Any, shape: tuple[int, ...], owner: str) -> np.ndarray:
    """A layer's upstream gradient as a float array of the output ``shape`` (TypeError for
    another dtype, ValueError naming both shapes otherwise)."""
    g = as_float_array(grad_out, f"{owner} grad_out")
    if g.shape != tuple(shape):
        raise ValueError(f"{owner} grad_out must have the output shape {tuple(shape)}, got "
                         f"{g.shape}")
    return g


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first non-finite element of ``x``."""
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        idx = tuple(int(i) for i in bad)
        raise ValueError(f"{name} contains a non-finite value {float(x[idx])!r} at index {idx}")


def check_last_dim(x: np.ndarray, size: int, name: str) -> None:
    """Raise a ValueError when the last dimension of ``x`` is not ``size``."""
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(
            f"{name} must have last dimension {size}, got shape {x.shape}"
        )


def check_reduction(reduction: str) -> str:
    """Validate a loss ``reduction`` argument the way torch does."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def normalize_dim(dim: int, ndim: int) -> int:
    """Map a possibly negative ``dim`` into ``range(ndim)`` or raise an IndexError."""
    nd = max(ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})"
        )
    return dim % nd
