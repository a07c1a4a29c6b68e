"""Weight initialisation with torch's fan and gain rules, driven by ``numpy.random.Generator``.

Every function fills an array (or a ``Parameter``'s data) in place and returns it. The random
stream is ``generator`` when given, otherwise the module-level generator that
:func:`manual_seed` resets. The *distributions* match ``torch.nn.init``; the random streams
do not (NumPy and torch use different generators), which is why the parity harness copies
weights from refbp into torch rather than seeding both.

Rules (from ``torch/nn/init.py``):

- fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (needs ndim >= 2);
- gain: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2))
  (slope 0.01 by default), selu 3/4;
- xavier: std = gain * sqrt(2 / (fan_in + fan_out)), uniform bound = sqrt(3) * std;
- kaiming: std = gain / sqrt(fan), uniform bound = sqrt(3) * std.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from refbp.nn.module import Parameter

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator used when no ``generator`` is passed; returns it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    """The generator used by the initialisers when none is passed (see :func:`manual_seed`)."""
    return _default


def _array(t: np.ndarray | Parameter) -> np.ndarray:
    arr = t.data if isinstance(t, Parameter) else t
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise TypeError("init functions take a float ndarray or a Parameter")
    return arr


def _gen(generator: np.random.Generator | None) -> np.random.Generator:
    return _default if generator is None else generator


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(t: np.ndarray | Parameter) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (out, in, *kernel) as torch computes them: ``in *
    prod(kernel)``, ``out * prod(kernel)``; at least 2 dimensions.
    """
    arr = _array(t)
    if arr.ndim < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = int(np.prod(arr.shape[2:])) if arr.ndim > 2 else 1
    return arr.shape[1] * receptive, arr.shape[0] * receptive


def _no_elements(t: np.ndarray | Parameter) -> bool:
    """True (with torch's warning) when ``t`` has a zero-size dimension: the He initialisers
    leave such a tensor as it is, as torch's do (its fan may be 0)."""
    if 0 not in _array(t).shape:
        return False
    warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=3)
    return True


def _fan(t: np.ndarray | Parameter, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Any, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Any:
    """Fill ``t`` in place with U(a, b) draws from ``generator``; returns ``t``."""
    arr = _array(t)
    arr[...] = _gen(generator).uniform(a, b, size=arr.shape)
    return t


def normal_(t: Any, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Any:
    """Fill ``t`` in place with N(mean, std^2) draws from ``generator``; returns ``t``."""
    arr = _array(t)
    arr[...] = _gen(generator).normal(mean, std, size=arr.shape)
    return t


def constant_(t: Any, val: float) -> Any:
    """Fill ``t`` in place with ``val``; returns ``t``."""
    _array(t)[...] = val
    return t


def zeros_(t: Any) -> Any:
    """Fill ``t`` in place with 0; returns ``t``."""
    return constant_(t, 0.0)


def ones_(t: Any) -> Any:
    """Fill ``t`` in place with 1; returns ``t``."""
    return constant_(t, 1.0)


def xavier_uniform_(t: Any, gain: float = 1.0,
                    generator: np.random.Generator | None = None) -> Any:
    """Glorot uniform: U(-b, b) with ``b = gain * sqrt(6 / (fan_in + fan_out))``; returns ``t``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t: Any, gain: float = 1.0,
                   generator: np.random.Generator | None = None) -> Any:
    """Glorot normal: N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``; returns ``t``.
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(t, 0.0, std, generator)


def kaiming_uniform_(t: Any, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Any:
    """He uniform: U(-b, b) with ``b = gain * sqrt(3 / fan)``, ``gain = calculate_gain(nonlinearity,
    a)`` and ``fan`` from ``mode``; returns ``t``. A tensor with no element is left as it is,
    with torch's warning.
    """
    if _no_elements(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Any:
    """He normal: N(0, std^2) with ``std = gain / sqrt(fan)``, ``gain = calculate_gain(nonlinearity,
    a)`` and ``fan`` from ``mode``; returns ``t``. A tensor with no element is left as it is,
    with torch's warning.
    """
    if _no_elements(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return normal_(t, 0.0, std, generator)
