"""Argument and shape checks of the recurrent layers, with torch's exception types and texts."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Protocol

import numpy as np

from refbp._checks import as_float_array


class _Stack(Protocol):
    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    batch_first: bool

    @property
    def num_directions(self) -> int: ...

    @property
    def real_hidden_size(self) -> int: ...

    @property
    def _dtype(self) -> np.dtype: ...


def _check_type(value: Any, kind: type, name: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")


def check_rnn_args(input_size: Any, hidden_size: Any, num_layers: Any, bias: Any,
                   batch_first: Any, dropout: Any, proj_size: Any) -> None:
    """The constructor checks of ``torch.nn.RNNBase`` (same exception types and messages)."""
    if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
            or not 0 <= dropout <= 1):  # type: ignore[operator]
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         "probability of an element being zeroed")
    if dropout > 0 and num_layers == 1:  # type: ignore[operator]
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
    _check_type(bias, bool, "bias")
    _check_type(batch_first, bool, "batch_first")
    _check_type(input_size, int, "input_size")
    if input_size <= 0:
        raise ValueError("input_size must be greater than zero")
    _check_type(hidden_size, int, "hidden_size")
    if hidden_size <= 0:
        raise ValueError("hidden_size must be greater than zero")
    _check_type(num_layers, int, "num_layers")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")


def _check_dtype(x: np.ndarray, m: _Stack) -> None:
    if x.dtype != m._dtype:
        raise ValueError(
            f"RNN input dtype ({x.dtype}) does not match weight dtype ({m._dtype}). Convert "
            f"input: input.astype({m._dtype}), or convert model: model.to({x.dtype})"
        )


def to_time_major(x: np.ndarray, m: _Stack, name: str) -> tuple[np.ndarray, bool]:
    """``x`` as (T, B, I) and whether it was batched; torch's rank and size errors."""
    if x.ndim not in (2, 3):
        raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.ndim}D tensor instead")
    _check_dtype(x, m)
    if x.shape[-1] != m.input_size:
        raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                           f"{m.input_size}, got {x.shape[-1]}")
    if x.ndim == 2:
        return x[:, None, :], False
    return (x.transpose(1, 0, 2) if m.batch_first else x), True


def _one_state(h: Any, batched: bool, shape: tuple[int, int, int], label: str,
               m: _Stack) -> np.ndarray:
    arr = as_float_array(h, label)
    _check_dtype(arr, m)
    want = 3 if batched else 2
    if arr.ndim != want:
        kind = "batched 3-D" if batched else "unbatched 2-D"
        raise RuntimeError(f"For {kind} input, {label} should also be {want}-D but got "
                           f"{arr.ndim}-D tensor")
    arr = arr if batched else arr[:, None, :]
    if arr.shape != shape:
        got = list(arr.shape if batched else (arr.shape[0], arr.shape[2]))
        raise RuntimeError(f"Expected {label} size {shape}, got {got}")
    return arr


def prepare_state(hx: Any, x_tm: np.ndarray, batched: bool,
                  m: _Stack) -> tuple[np.ndarray, np.ndarray | None]:
    """Initial states as (L*D, B, H_out) and (LSTM) (L*D, B, H); zeros when ``hx`` is None."""
    lead = m.num_layers * m.num_directions
    batch = x_tm.shape[1]
    h_shape = (lead, batch, m.real_hidden_size)
    c_shape = (lead, batch, m.hidden_size)
    dt = x_tm.dtype
    if m.mode != "LSTM":
        if hx is None:
            return np.zeros(h_shape, dtype=dt), None
        return _one_state(hx, batched, h_shape, "hidden", m), None
    if hx is None:
        return np.zeros(h_shape, dtype=dt), np.zeros(c_shape, dtype=dt)
    if not isinstance(hx, tuple | list) or len(hx) != 2:
        raise TypeError("LSTM hx must be a pair (h_0, c_0), got "
                        f"{type(hx).__name__}")
    return (_one_state(hx[0], batched, h_shape, "hidden[0]", m),
            _one_state(hx[1], batched, c_shape, "hidden[1]", m))
