"""The size rules of the declared layers: elements of the parameters and buffers a layer
would hold, from its complete constructor arguments, with torch's shape rules
(``torch/nn/modules/*.py``), without building it.

A declaration names its rule (``OpInfo.size``); :func:`refbp.layer_sizes.layer_elements`
completes the arguments with the class's defaults and applies it. A layer without a rule
holds nothing (activations, pooling, dropout, reshaping). Each rule's docstring states it.
A bias-free layer (``bias = false``) drops its bias terms. Arguments of the wrong type count as
what they would be if they were integers (the build then reports the type error); a required
size left out raises ``KeyError`` (the build names it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

#: A size rule: complete constructor arguments -> elements of parameters and buffers.
SizeRule = Callable[[Mapping[str, Any]], int]


def count(value: Any) -> int:
    """A size argument as a non-negative integer (0 for what is not a number)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return abs(value)
    if isinstance(value, float) and math.isfinite(value):
        return abs(math.ceil(value))
    return 0


def prod(value: Any, dims: int) -> int:
    """``kernel_size`` / ``normalized_shape``: an integer repeated ``dims`` times, or a list."""
    if isinstance(value, list | tuple):
        return math.prod(count(v) for v in value)
    return count(value) ** dims


def linear(a: Mapping[str, Any]) -> int:
    """``Linear(i, o)``: ``o*i`` + ``o`` (bias)."""
    i, o = count(a["in_features"]), count(a["out_features"])
    return o * i + o * bool(a["bias"])


def conv(dims: int, transposed: bool) -> SizeRule:
    """``Conv{dims}d`` / ``ConvTranspose{dims}d``: ``o * i/groups * prod(k)`` (transposed:
    ``i * o/groups * prod(k)``) + ``o`` (bias)."""
    def rule(a: Mapping[str, Any]) -> int:
        i, o, g = count(a["in_channels"]), count(a["out_channels"]), max(count(a["groups"]), 1)
        k = prod(a["kernel_size"], dims)
        weight = i * (o // g) * k if transposed else o * (i // g) * k
        return weight + o * bool(a["bias"])
    return rule


def batchnorm(a: Mapping[str, Any]) -> int:
    """BatchNorm / InstanceNorm: ``2C`` (affine) + ``2C + 1`` (running statistics and
    ``num_batches_tracked``)."""
    c = count(a["num_features"])
    affine = c * (bool(a["affine"]) + bool(a["affine"] and a.get("bias", True)))
    return affine + (2 * c + 1 if a["track_running_stats"] else 0)


def groupnorm(a: Mapping[str, Any]) -> int:
    """``GroupNorm(g, C)``: ``2C`` (affine)."""
    c = count(a["num_channels"])
    return c * (bool(a["affine"]) + bool(a["affine"] and a["bias"]))


def layernorm(a: Mapping[str, Any]) -> int:
    """``LayerNorm(shape)``: ``2 prod(shape)`` (elementwise affine)."""
    size = prod(a["normalized_shape"], 1)
    return size * (bool(a["elementwise_affine"]) + bool(a["elementwise_affine"] and a["bias"]))


def rmsnorm(a: Mapping[str, Any]) -> int:
    """``RMSNorm(shape)``: ``prod(shape)`` (elementwise affine; no bias)."""
    return prod(a["normalized_shape"], 1) * bool(a["elementwise_affine"])


def prelu(a: Mapping[str, Any]) -> int:
    """``PReLU(n)``: ``n``."""
    return count(a["num_parameters"])


def embedding(a: Mapping[str, Any]) -> int:
    """``Embedding(n, d)``: ``n*d``."""
    return count(a["num_embeddings"]) * count(a["embedding_dim"])


def rnn(gates: int) -> SizeRule:
    """RNN / GRU / LSTM (``gates`` 1, 3, 4): per layer and direction ``G h (in + h_out)`` +
    ``2 G h`` (bias) + ``p h`` (LSTM ``proj_size`` p)."""
    def rule(a: Mapping[str, Any]) -> int:
        i, h = count(a["input_size"]), count(a["hidden_size"])
        p = count(a.get("proj_size", 0))
        out = p or h
        dirs = 2 if a["bidirectional"] else 1
        total = 0
        for layer in range(max(count(a["num_layers"]), 1)):
            fan_in = i if layer == 0 else dirs * out
            per_dir = gates * h * (fan_in + out) + 2 * gates * h * bool(a["bias"]) + p * h
            total += dirs * per_dir
        return total
    return rule


def cell(gates: int) -> SizeRule:
    """RNNCell / GRUCell / LSTMCell: ``G h (i + h)`` + ``2 G h`` (bias)."""
    def rule(a: Mapping[str, Any]) -> int:
        i, h = count(a["input_size"]), count(a["hidden_size"])
        return gates * h * (i + h) + 2 * gates * h * bool(a["bias"])
    return rule


def attention(a: Mapping[str, Any]) -> int:
    """``MultiheadAttention(e)``: in-projections, out-projection, ``add_bias_kv``."""
    e = count(a["embed_dim"])
    kdim = e if a.get("kdim") is None else count(a["kdim"])
    vdim = e if a.get("vdim") is None else count(a["vdim"])
    bias = bool(a.get("bias", True))
    return (e * (e + kdim + vdim) + 3 * e * bias + e * e + e * bias
            + 2 * e * bool(a.get("add_bias_kv", False)))


def encoder_layer(a: Mapping[str, Any]) -> int:
    """``TransformerEncoderLayer``: its attention, the feed-forward and two norms."""
    d, f, bias = count(a["d_model"]), count(a["dim_feedforward"]), bool(a["bias"])
    return (attention({"embed_dim": d, "bias": bias}) + 2 * d * f + (f + d) * bias
            + 2 * d * (1 + bias))


def decoder_layer(a: Mapping[str, Any]) -> int:
    """``TransformerDecoderLayer``: the encoder layer's, plus the cross-attention and a
    third norm."""
    d, bias = count(a["d_model"]), bool(a["bias"])
    return encoder_layer(a) + attention({"embed_dim": d, "bias": bias}) + d * (1 + bias)


def transformer(a: Mapping[str, Any]) -> int:
    """``Transformer``: its encoder and decoder layers, each stack with a final norm (a custom
    encoder or decoder is an object: not counted)."""
    norm = count(a["d_model"]) * (1 + bool(a["bias"]))
    encoder = count(a["num_encoder_layers"]) * encoder_layer(a) + norm
    decoder = count(a["num_decoder_layers"]) * decoder_layer(a) + norm
    return (encoder if a["custom_encoder"] is None else 0) + (
        decoder if a["custom_decoder"] is None else 0)


def bilinear(a: Mapping[str, Any]) -> int:
    """``Bilinear(i1, i2, o)``: ``o*i1*i2`` + ``o`` (bias)."""
    o = count(a["out_features"])
    return o * count(a["in1_features"]) * count(a["in2_features"]) + o * bool(a["bias"])


def random_samples(a: Mapping[str, Any]) -> int:
    """``FractionalMaxPool2d/3d``: the fixed ``_random_samples`` buffer when given (an
    array, or nested lists)."""
    u = a.get("_random_samples")
    if u is None:
        return 0
    shape = getattr(u, "shape", None)
    if shape is not None:
        return math.prod(int(n) for n in shape)
    return sum(random_samples({"_random_samples": v}) for v in u) if isinstance(
        u, list | tuple) else 1
