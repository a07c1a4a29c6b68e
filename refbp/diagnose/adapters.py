"""Calling user code safely: short names for messages, calls whose failures become
:class:`~refbp.diagnose.spec.UserCodeError` naming what was expected, and arrays checked for
shape and dtype (no torch).

The styles of user code are driven by :mod:`refbp.diagnose.optim_styles` (optimizers),
:mod:`~refbp.diagnose.layer_styles` (layers) and :mod:`~refbp.diagnose.loss_styles` (losses).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from refbp.diagnose.spec import UserCodeError


def user_name(user: Any) -> str:
    """A short name for messages: the class name, or the factory's name."""
    if inspect.isclass(user):
        return user.__name__
    return getattr(user, "__name__", type(user).__name__)


def call_user(fn: Any, args: tuple[Any, ...], what: str, expected: str) -> Any:
    """Call ``fn(*args)``; signature mismatches and exceptions become UserCodeError naming
    ``expected``."""
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as exc:
        raise UserCodeError(f"{what} has signature {inspect.signature(fn)}; expected "
                            f"{expected}") from exc
    except ValueError:
        pass
    try:
        return fn(*args)
    except UserCodeError:
        raise
    except Exception as exc:
        raise UserCodeError(f"{what} raised {type(exc).__name__}: {exc} (expected "
                            f"{expected})") from exc


def checked_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float64 array of ``shape``; else UserCodeError naming the shape."""
    if value is None:
        raise UserCodeError(f"{what} is None; expected an array of shape {shape}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise UserCodeError(f"{what} has dtype {arr.dtype}; expected a float array of shape "
                            f"{shape}")
    if arr.shape != shape:
        raise UserCodeError(f"{what} has shape {arr.shape}; expected shape {shape}")
    return arr.astype(np.float64)
