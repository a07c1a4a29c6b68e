"""Activation memory of a model, from its layers' arguments and the batch shape, unbuilt.

Parameters and buffers are bounded by :mod:`refbp.layer_sizes`; what a layer *computes* can
still be huge while its weights are small: ``Linear(4, 5_000_000)`` holds 25 million weights,
but on a batch of 256 its output alone is 1.3 billion elements, and ``Conv2d(3, 512, 3)`` on
256 images of 224 x 224 produces 6.6 billion. A forward pass keeps every layer's output (and
a few layers' inner values) for the backward pass, which then holds gradients of the same
shapes. :func:`activation_elements` estimates that memory with torch's shape rules
(``torch/nn/modules/*.py``), from the input shape of one step and the layers' arguments,
before anything is built or runs:

==============================  =========================================================
layer                           output shape (and what the backward pass keeps besides)
==============================  =========================================================
Linear(i, o)                    ``(..., o)``
Conv{1,2}d                      ``(N, out_channels, *L)``,
                                ``L = floor((L + 2 padding - dilation (k - 1) - 1) / stride) + 1``
ConvTranspose{1,2}d             ``L = (L - 1) stride - 2 padding + dilation (k - 1)
                                + output_padding + 1``
Max/AvgPool{1,2}d               as Conv (``stride`` defaults to ``kernel_size``; ceil_mode)
AdaptiveAvg/MaxPool{1,2}d       ``(N, C, *output_size)``
Flatten / Unflatten             the same elements, reshaped
Embedding(n, d)                 ``(*input, d)``
RNN/GRU/LSTM                    ``(..., dirs * (proj_size or h))``, plus the gates of every
                                layer and direction at every step (``G h``, ``G`` = 1, 3, 4;
                                LSTM also its cell state)
RNNCell/GRUCell/LSTMCell        ``(N, h)``, plus the gates (``G h``)
MultiheadAttention(e, heads)    ``(N, L, e)``, plus q, k, v (``3 L e``) and the attention
AttentionProbe, SDPAProbe       weights (``heads L^2``) of every sample
TransformerEncoderLayer         ``(N, L, d)``, plus its attention and feed-forward (``2 L f``)
every other layer               the shape of its input (activations, norms, dropout)
==============================  =========================================================

The estimate counts elements (multiply by the dtype's size for bytes): the input, and for each
layer its output and inner values, twice (the forward values kept and their gradients in the
backward pass). The limit is :attr:`refbp.limits.Limits.activation_elements`. Arguments that
cannot build a layer leave the shape unchanged (the build then names the problem).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from refbp.layer_sizes import _with_defaults

Shape = tuple[int, ...]




def _n(value: Any) -> int:
    """A size argument; one that is not a finite number raises (:func:`layer_output` then
    leaves the shape unchanged, and the build names the problem)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"not a size: {value!r}")
    return abs(int(value))


Rule = Callable[[Shape, Mapping[str, Any]], tuple[Shape, int]]
"""``(input shape, arguments) -> (output shape, inner elements kept for the backward pass)``."""


def _per_dim(value: Any, dims: int) -> list[int]:
    """``kernel_size``, ``stride``, ...: an integer for every spatial dimension, or a list."""
    if isinstance(value, list | tuple):
        return [_n(v) for v in value][-dims:] if value else [1] * dims
    return [_n(value)] * dims


def _last(shape: Shape, size: Any) -> Shape:
    return (*shape[:-1], _n(size)) if shape else (_n(size),)


def _linear(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    return _last(shape, a["out_features"]), 0


def _sliding(dims: int, transposed: bool = False, out_key: str | None = "out_channels"
             ) -> Rule:
    """Conv, ConvTranspose and pooling: the last ``dims`` dimensions slide."""
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        if len(shape) < dims + 1:
            return shape, 0
        k = _per_dim(a["kernel_size"], dims)
        stride = a.get("stride")
        s = k if stride is None or stride == [] else _per_dim(stride, dims)
        d = _per_dim(a.get("dilation", 1), dims)
        pad = a.get("padding", 0)
        if pad == "valid":
            p = [0] * dims
        elif pad == "same":
            p = [(di * (ki - 1)) // 2 for di, ki in zip(d, k, strict=True)]
        else:
            p = _per_dim(pad, dims)
        op = _per_dim(a.get("output_padding", 0), dims)
        ceil = bool(a.get("ceil_mode", False))
        out = []
        for length, ki, si, di, pi, opi in zip(shape[-dims:], k, s, d, p, op, strict=True):
            si = max(si, 1)
            if transposed:
                out.append(max((length - 1) * si - 2 * pi + di * (ki - 1) + opi + 1, 0))
            else:
                span = length + 2 * pi - di * (ki - 1) - 1
                out.append(max((-(-span // si) if ceil else span // si) + 1, 0)
                           if pad != "same" else length)
        channels = shape[-dims - 1] if out_key is None else _n(a[out_key])
        return (*shape[:-dims - 1], channels, *out), 0
    return rule


def _adaptive(dims: int) -> Rule:
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        size = a["output_size"]
        sizes = list(size) if isinstance(size, list | tuple) else [size] * dims
        out = [length if s is None else _n(s) for length, s in zip(shape[-dims:], sizes,
                                                                     strict=False)]
        return (*shape[:-dims], *out), 0
    return rule


def _flatten(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    if not shape:
        return shape, 0
    start, end = int(a.get("start_dim", 1)) % len(shape), int(a.get("end_dim", -1)) % len(shape)
    if start > end:
        return shape, 0
    return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]), 0


def _unflatten(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    if not shape:
        return shape, 0
    dim = int(a["dim"]) % len(shape)
    sizes = [_n(v) for v in a["unflattened_size"]]
    if -1 in list(a["unflattened_size"]):
        known = math.prod(s for s, v in zip(sizes, a["unflattened_size"], strict=True)
                          if v != -1)
        sizes = [shape[dim] // max(known, 1) if v == -1 else s
                 for s, v in zip(sizes, a["unflattened_size"], strict=True)]
    return (*shape[:dim], *sizes, *shape[dim + 1:]), 0


def _embedding(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    return (*shape, _n(a["embedding_dim"])), 0


_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4, "RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


def _rnn(kind: str) -> Rule:
    gates = _GATES[kind] + (kind == "LSTM")  # LSTM also keeps its cell state

    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        h, p = _n(a["hidden_size"]), _n(a.get("proj_size", 0))
        dirs = 2 if a["bidirectional"] else 1
        rows = math.prod(shape[:-1])  # steps x samples
        inner = rows * dirs * max(_n(a["num_layers"]), 1) * gates * h
        return _last(shape, dirs * (p or h)), inner
    return rule


def _cell(kind: str) -> Rule:
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        h = _n(a["hidden_size"])
        return _last(shape, h), math.prod(shape[:-1]) * _GATES[kind] * h
    return rule


def _attention_inner(shape: Shape, e: int, heads: int, batch_first: bool) -> int:
    """q, k, v and the attention weights of ``(N, L, e)`` (``(L, N, e)`` unless batch_first)."""
    if len(shape) < 2:
        return 0
    length = shape[-2] if batch_first or len(shape) == 2 else shape[-3]
    rows = math.prod(shape[:-1])
    return 3 * rows * e + (rows // max(length, 1)) * max(heads, 1) * length * length


def _attention(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    e = _n(a["embed_dim"])
    return (_last(shape, e),
            _attention_inner(shape, e, _n(a["num_heads"]), bool(a.get("batch_first", False))))


def _sdpa(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    e = shape[-1] // 3 if shape else 0
    return _last(shape, e), _attention_inner(shape, e, 1, True)


def _encoder_layer(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    d, f = _n(a["d_model"]), _n(a["dim_feedforward"])
    rows = math.prod(shape[:-1])
    inner = (_attention_inner(shape, d, _n(a["nhead"]), bool(a["batch_first"]))
             + 2 * rows * f + 4 * rows * d)  # feed-forward, residuals and norms
    return _last(shape, d), inner


_RULES: dict[str, Rule] = {
    "Linear": _linear,
    "Conv1d": _sliding(1), "Conv2d": _sliding(2),
    "ConvTranspose1d": _sliding(1, True), "ConvTranspose2d": _sliding(2, True),
    **{f"{kind}Pool{d}d": _sliding(d, out_key=None) for kind in ("Max", "Avg") for d in (1, 2)},
    "AdaptiveAvgPool1d": _adaptive(1), "AdaptiveAvgPool2d": _adaptive(2),
    "AdaptiveMaxPool2d": _adaptive(2),
    "Flatten": _flatten, "Unflatten": _unflatten, "Embedding": _embedding,
    **{t: _rnn(t) for t in ("RNN", "GRU", "LSTM")},
    **{t: _cell(t) for t in ("RNNCell", "GRUCell", "LSTMCell")},
    "MultiheadAttention": _attention, "AttentionProbe": _attention, "SDPAProbe": _sdpa,
    "TransformerEncoderLayer": _encoder_layer,
}


def layer_output(layer_type: str, args: Mapping[str, Any], shape: Shape) -> tuple[Shape, int]:
    """``(output shape, inner elements)`` of ``layer_type(**args)`` on an input of ``shape``
    (see the module docstring); the input shape and 0 for a shape-keeping layer or arguments
    that cannot build one."""
    rule = _RULES.get(layer_type)
    if rule is None:
        return shape, 0
    full = _with_defaults(layer_type, args)
    if full is None:
        return shape, 0
    try:
        out, inner = rule(shape, full)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return shape, 0
    return tuple(max(int(v), 0) for v in out), max(int(inner), 0)


def activation_elements(layers: Sequence[tuple[str, Mapping[str, Any]]], input_shape: Shape
                        ) -> tuple[int, int, str]:
    """``(total, largest, name)``: the activation elements of a forward and backward pass of
    ``layers`` (``(type, args)`` in order) on one batch of ``input_shape`` (batch first), and
    the largest single layer's share with its ``model[i] Type`` name."""
    shape = tuple(_n(v) for v in input_shape)
    total = 2 * math.prod(shape)
    largest, name = 0, "the input"
    for i, (layer_type, args) in enumerate(layers):
        shape, inner = layer_output(layer_type, args, shape)
        here = 2 * (math.prod(shape) + inner)
        total += here
        if here > largest:
            largest, name = here, f"model[{i}] {layer_type}"
    return total, largest, name
