"""Elements of a layer's parameters and buffers, from its constructor arguments, unbuilt.

A scenario's size limits (:mod:`refbp.limits`) must hold *before* a layer allocates anything:
``Conv2d(3000, 3000, 3)`` or ``Embedding(400_000_000, 4)`` would be killed by the kernel's
out-of-memory killer while it is being built. :func:`layer_elements` computes what a layer
would hold with torch's shape rules (``torch/nn/modules/*.py``), from its arguments and the
refbp class's defaults (the same as torch's), without building it:

==========================  ============================================================
layer                       parameters and buffers (elements)
==========================  ============================================================
Linear(i, o)                ``o*i`` + ``o`` (bias)
Conv{1,2}d(i, o, k)         ``o * i/groups * prod(k)`` + ``o`` (bias)
ConvTranspose{1,2}d(i,o,k)  ``i * o/groups * prod(k)`` + ``o`` (bias)
BatchNorm / InstanceNorm    ``2C`` (affine: weight, bias) + ``2C + 1`` (running stats and
                            ``num_batches_tracked``)
GroupNorm(g, C)             ``2C`` (affine)
LayerNorm(shape)            ``2 prod(shape)`` (elementwise affine)
Embedding(n, d)             ``n*d``
PReLU(n)                    ``n`` (``num_parameters``)
RNN/GRU/LSTM(i, h)          per layer and direction: ``G h (in + h_out)`` + ``2 G h`` (bias)
                            + ``p h`` (LSTM ``proj_size`` p), with G = 1, 3, 4 gates,
                            ``in`` = i for layer 0 and ``dirs * h_out`` above, ``h_out`` =
                            p or h
RNNCell/GRUCell/LSTMCell    ``G h (i + h)`` + ``2 G h`` (bias)
MultiheadAttention(e)       ``3e^2`` (or ``e (e + kdim + vdim)``) + ``3e`` + ``e^2 + e`` +
                            ``2e`` (``add_bias_kv``)
TransformerEncoderLayer     its attention + ``2 d f + f + d`` (feed-forward) + ``4d`` (norms)
==========================  ============================================================

Every other layer (activations, pooling, dropout, reshaping) holds nothing. A bias-free
layer (``bias = false``) drops its bias terms. Arguments of the wrong type count as what
they would be if they were integers (the build then reports the type error).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any


def _n(value: Any) -> int:
    """A size argument as a non-negative integer (0 for what is not a number)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return abs(value)
    if isinstance(value, float) and math.isfinite(value):
        return abs(math.ceil(value))
    return 0


def _prod(value: Any, dims: int) -> int:
    """``kernel_size`` / ``normalized_shape``: an integer repeated ``dims`` times, or a list."""
    if isinstance(value, list | tuple):
        return math.prod(_n(v) for v in value)
    return _n(value) ** dims


def _linear(a: Mapping[str, Any]) -> int:
    i, o = _n(a["in_features"]), _n(a["out_features"])
    return o * i + o * bool(a["bias"])


def _conv(dims: int, transposed: bool) -> Callable[[Mapping[str, Any]], int]:
    def count(a: Mapping[str, Any]) -> int:
        i, o, g = _n(a["in_channels"]), _n(a["out_channels"]), max(_n(a["groups"]), 1)
        k = _prod(a["kernel_size"], dims)
        weight = i * (o // g) * k if transposed else o * (i // g) * k
        return weight + o * bool(a["bias"])
    return count


def _batchnorm(a: Mapping[str, Any]) -> int:
    c = _n(a["num_features"])
    affine = c * (bool(a["affine"]) + bool(a["affine"] and a.get("bias", True)))
    return affine + (2 * c + 1 if a["track_running_stats"] else 0)


def _groupnorm(a: Mapping[str, Any]) -> int:
    c = _n(a["num_channels"])
    return c * (bool(a["affine"]) + bool(a["affine"] and a["bias"]))


def _layernorm(a: Mapping[str, Any]) -> int:
    size = _prod(a["normalized_shape"], 1)
    return size * (bool(a["elementwise_affine"]) + bool(a["elementwise_affine"] and a["bias"]))


def _prelu(a: Mapping[str, Any]) -> int:
    return _n(a["num_parameters"])


def _embedding(a: Mapping[str, Any]) -> int:
    return _n(a["num_embeddings"]) * _n(a["embedding_dim"])


_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4, "RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


def _rnn(gates: int) -> Callable[[Mapping[str, Any]], int]:
    def count(a: Mapping[str, Any]) -> int:
        i, h = _n(a["input_size"]), _n(a["hidden_size"])
        p = _n(a.get("proj_size", 0))
        out = p or h
        dirs = 2 if a["bidirectional"] else 1
        total = 0
        for layer in range(max(_n(a["num_layers"]), 1)):
            fan_in = i if layer == 0 else dirs * out
            per_dir = gates * h * (fan_in + out) + 2 * gates * h * bool(a["bias"]) + p * h
            total += dirs * per_dir
        return total
    return count


def _cell(gates: int) -> Callable[[Mapping[str, Any]], int]:
    def count(a: Mapping[str, Any]) -> int:
        i, h = _n(a["input_size"]), _n(a["hidden_size"])
        return gates * h * (i + h) + 2 * gates * h * bool(a["bias"])
    return count


def _attention(a: Mapping[str, Any]) -> int:
    e = _n(a["embed_dim"])
    kdim = e if a.get("kdim") is None else _n(a["kdim"])
    vdim = e if a.get("vdim") is None else _n(a["vdim"])
    bias = bool(a.get("bias", True))
    return (e * (e + kdim + vdim) + 3 * e * bias + e * e + e * bias
            + 2 * e * bool(a.get("add_bias_kv", False)))


def _encoder_layer(a: Mapping[str, Any]) -> int:
    d, f, bias = _n(a["d_model"]), _n(a["dim_feedforward"]), bool(a["bias"])
    attention = _attention({"embed_dim": d, "bias": bias})
    return attention + 2 * d * f + (f + d) * bias + 2 * d * (1 + bias)


_RULES: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "Linear": _linear,
    "Conv1d": _conv(1, False), "Conv2d": _conv(2, False),
    "ConvTranspose1d": _conv(1, True), "ConvTranspose2d": _conv(2, True),
    "BatchNorm1d": _batchnorm, "BatchNorm2d": _batchnorm, "InstanceNorm2d": _batchnorm,
    "GroupNorm": _groupnorm, "LayerNorm": _layernorm, "Embedding": _embedding,
    "PReLU": _prelu,
    **{t: _rnn(g) for t, g in _GATES.items() if not t.endswith("Cell")},
    **{t: _cell(g) for t, g in _GATES.items() if t.endswith("Cell")},
    "MultiheadAttention": _attention, "AttentionProbe": _attention,
    "TransformerEncoderLayer": _encoder_layer,
}
COUNTED_TYPES = frozenset(_RULES)
"""Layer types that hold parameters or buffers; every other refbp layer holds none."""


def _with_defaults(layer_type: str, args: Mapping[str, Any]) -> dict[str, Any] | None:
    """``args`` completed with the refbp class's defaults (None: arguments that do not bind)."""
    from refbp import nn

    cls = getattr(nn, layer_type, None)
    if cls is None:
        return None
    try:
        bound = inspect.signature(cls).bind_partial(**args)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def layer_elements(layer_type: str, args: Mapping[str, Any]) -> int:
    """Elements of every parameter and buffer ``layer_type(**args)`` would hold (see the
    module docstring); 0 for a layer that holds none or arguments that cannot build one."""
    rule = _RULES.get(layer_type)
    if rule is None:
        return 0
    full = _with_defaults(layer_type, args)
    if full is None:
        return 0
    try:
        return rule(full)
    except KeyError:  # a required size left out: the build names it
        return 0
