"""torch's default dtype, as refbp's optimizers see it: the dtype of scalar optimizer state.

torch keeps some optimizer state in 0-d tensors whose dtype follows ``torch.get_default_dtype()``
(``torch.optim.optimizer._get_scalar_dtype``): float64 when the default dtype is float64,
float32 otherwise. It matters where such a scalar is *computed in*: NAdam's ``mu_product``
(the running product of the momentum schedule) rounds in that dtype at every step, so a float64
run under ``torch.set_default_dtype(torch.float64)`` and one under the float32 default drift
apart by ~1e-10 after 30 steps. ``step`` counters follow the same rule (exact either way).

refbp never imports torch, so it keeps its own setting with torch's API:
:func:`set_default_dtype`, :func:`get_default_dtype` and the context manager
:func:`default_dtype`; :func:`scalar_dtype` is torch's rule. The parity harness and
``refbp.testing`` run refbp under the torch default dtype in force when they run (and record it
in the report's provenance).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from refbp.dtypes import DTYPE_WORDS, float_type

__all__ = ["default_dtype", "get_default_dtype", "scalar_dtype", "set_default_dtype"]

_current = [np.dtype(np.float32)]


def _check(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if float_type(dt) is None:
        raise TypeError(f"default dtype must be {DTYPE_WORDS}, got {dt}")
    return dt


def get_default_dtype() -> np.dtype:
    """The default dtype (float32 unless set, as torch's)."""
    return _current[0]


def set_default_dtype(dtype: Any) -> None:
    """Set the default dtype (float32 or float64), as ``torch.set_default_dtype``."""
    _current[0] = _check(dtype)


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Run the block with ``dtype`` as the default dtype, restoring the previous one."""
    before = _current[0]
    _current[0] = _check(dtype)
    try:
        yield
    finally:
        _current[0] = before


def scalar_dtype() -> np.dtype:
    """torch's ``_get_scalar_dtype()``: float64 under a float64 default dtype, else float32."""
    return np.dtype(np.float64) if _current[0] == np.float64 else np.dtype(np.float32)
