"""Validation of what users hand to ``refbp.testing`` (torch-free).

Every check raises a ``TypeError`` (wrong kind or dtype) or a ``ValueError`` (wrong value or
shape) whose message names the argument, what was expected and what was received. The exact
messages are part of the public contract and are asserted by the tests:

=====================================  ===========================================================
situation                              message (``...`` = the offending values)
=====================================  ===========================================================
not an array / tensor                  ``inputs must be a NumPy array or a torch.Tensor, got ...``
wrong dtype (inputs)                   ``inputs must be a floating-point array, got dtype ...``
wrong dtype (targets)                  ``targets must be a floating-point array or integer class
                                       indices, got dtype ...``
0-d array                              ``inputs must have a first (batch) dimension, got a 0-d
                                       array``
empty batch                            ``inputs is an empty batch (shape ...); need at least one
                                       sample``
NaN / Inf                              ``inputs contains a non-finite value nan at index (i, j)``
batch sizes differ                     ``inputs and targets must have the same number of samples
                                       (first dimension), got inputs.shape=... and
                                       targets.shape=...``
unknown dtype                          ``dtype must be 'float32' or 'float64', got ...``
=====================================  ===========================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import check_finite
from refbp.dtypes import DTYPE_NAMES, DTYPE_WORDS


def is_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return any(c.__module__.startswith("torch") and c.__name__ == "Tensor"
               for c in type(x).__mro__)


def to_array(x: Any, name: str) -> np.ndarray:
    """``x`` (ndarray or torch.Tensor) as an ndarray copy; anything else is a TypeError."""
    if is_tensor(x):
        return np.array(x.detach().cpu().numpy(), copy=True)
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True)
    raise TypeError(f"{name} must be a NumPy array or a torch.Tensor, got {type(x).__name__}")


def dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` for a dtype given as string, NumPy or torch dtype."""
    spec = dtype if isinstance(dtype, type | np.dtype) else str(dtype).removeprefix("torch.")
    try:
        name = np.dtype(spec).name
    except TypeError:
        name = str(spec)
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be {DTYPE_WORDS}, got {dtype!r}")
    return name


def check_batch(x: np.ndarray, name: str) -> None:
    """A first (batch) dimension with at least one sample and no zero-sized dimension."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have a first (batch) dimension, got a 0-d array")
    if x.size == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}); need at least one sample")


def float_data(x: Any, name: str, dtype: str) -> np.ndarray:
    """Validated floating-point data cast to ``dtype``: batch dimension, finite values."""
    arr = to_array(x, name)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    check_batch(arr, name)
    check_finite(arr, name)
    return arr.astype(dtype)


def input_data(x: Any, dtype: str) -> np.ndarray:
    """Model inputs: floating-point data cast to ``dtype``, or integer token indices (the
    input of an ``Embedding``) as int64, which get no input gradient."""
    arr = to_array(x, "inputs")
    if arr.dtype.kind in "iu":
        check_batch(arr, "inputs")
        return arr.astype(np.int64)
    return float_data(arr, "inputs", dtype)


def target_data(y: Any, dtype: str) -> np.ndarray:
    """Validated targets: floats cast to ``dtype``, integer class indices as int64."""
    arr = to_array(y, "targets")
    if arr.dtype.kind == "f":
        check_batch(arr, "targets")
        check_finite(arr, "targets")
        return arr.astype(dtype)
    if arr.dtype.kind not in "iu":
        raise TypeError("targets must be a floating-point array or integer class indices, "
                        f"got dtype {arr.dtype}")
    check_batch(arr, "targets")
    return arr.astype(np.int64)


def check_same_batch(x: np.ndarray, y: np.ndarray) -> None:
    """Inputs and targets have the same number of samples."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "inputs and targets must have the same number of samples (first dimension), "
            f"got inputs.shape={x.shape} and targets.shape={y.shape}"
        )


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> None:
    """``value`` is an int >= 1 (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
