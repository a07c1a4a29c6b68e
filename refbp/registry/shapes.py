"""The output-shape rules of the declared layers: the shape a layer computes from its input
shape and its complete constructor arguments, and the inner values its backward pass keeps,
with torch's shape rules (``torch/nn/modules/*.py``), without building it.

A declaration names its rule (``OpInfo.output``); :func:`refbp.activation_sizes.layer_output`
completes the arguments with the class's defaults and applies it. A layer without a rule
keeps the shape of its input (activations, norms, dropout). Each rule's docstring states it;
a unit test runs every declared sample through refbp and compares the shapes it predicts.
A rule may raise ``KeyError``, ``TypeError``, ``ValueError`` or ``ZeroDivisionError`` on
arguments that cannot build the layer (the shape is then left unchanged, and the build
names the problem).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Shape = tuple[int, ...]

#: An output-shape rule: ``(input shape, complete arguments) -> (output shape, inner
#: elements kept for the backward pass)``.
ShapeRule = Callable[[Shape, Mapping[str, Any]], tuple[Shape, int]]


def as_size(value: Any) -> int:
    """A size argument; one that is not a finite number raises (``layer_output`` then
    leaves the shape unchanged, and the build names the problem)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"not a size: {value!r}")
    return abs(int(value))


def _per_dim(value: Any, dims: int) -> list[int]:
    """``kernel_size``, ``stride``, ...: an integer for every spatial dimension, or a list (of
    one element: for every dimension)."""
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return [as_size(value[0])] * dims
        return [as_size(v) for v in value][-dims:] if value else [1] * dims
    return [as_size(value)] * dims


def _last(shape: Shape, size: Any) -> Shape:
    return (*shape[:-1], as_size(size)) if shape else (as_size(size),)


def linear(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Linear(i, o)``: ``(..., o)``."""
    return _last(shape, a["out_features"]), 0


def sliding(dims: int, transposed: bool = False, out_key: str | None = "out_channels"
             ) -> ShapeRule:
    """Conv, ConvTranspose and pooling (``out_key=None``: the channels are kept; ``stride``
    defaults to ``kernel_size``): the last ``dims`` dimensions slide, ``L = floor((L +
    2 padding - dilation (k - 1) - 1) / stride) + 1`` (ceil in ceil mode, less the last
    window when it would start in the right padding); transposed
    ``L = (L - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1``."""
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
                n = (-(-span // si) if ceil else span // si) + 1
                if ceil and (n - 1) * si >= length + pi:
                    n -= 1  # the last window would start in the right padding
                out.append(max(n, 0) if pad != "same" else length)
        channels = shape[-dims - 1] if out_key is None else as_size(a[out_key])
        return (*shape[:-dims - 1], channels, *out), 0
    return rule


def adaptive(dims: int) -> ShapeRule:
    """Adaptive pooling: ``(N, C, *output_size)`` (None keeps a length)."""
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        size = a["output_size"]
        sizes = list(size) if isinstance(size, list | tuple) else [size] * dims
        out = [length if s is None else as_size(s) for length, s in zip(shape[-dims:], sizes,
                                                                     strict=False)]
        return (*shape[:-dims], *out), 0
    return rule


def fractional(dims: int) -> ShapeRule:
    """Fractional max pooling: ``(N, C, *output_size)``, or ``int(L * output_ratio)`` per
    axis."""
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        size, ratio = a.get("output_size"), a.get("output_ratio")
        if size is not None:
            out = _per_dim(size, dims)
        elif isinstance(ratio, int | float):
            out = [int(length * float(ratio)) for length in shape[-dims:]]
        else:
            out = [int(length * float(f)) for length, f in zip(shape[-dims:], list(ratio or ()),
                                                               strict=True)]
        return (*shape[:-dims], *out), 0
    return rule


def flatten(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Flatten``: ``start_dim`` to ``end_dim`` joined."""
    if not shape:
        return shape, 0
    start, end = int(a.get("start_dim", 1)) % len(shape), int(a.get("end_dim", -1)) % len(shape)
    if start > end:
        return shape, 0
    return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]), 0


def unflatten(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Unflatten``: ``dim`` split into ``unflattened_size`` (one -1 inferred)."""
    if not shape:
        return shape, 0
    dim = int(a["dim"]) % len(shape)
    sizes = [as_size(v) for v in a["unflattened_size"]]
    if -1 in list(a["unflattened_size"]):
        known = math.prod(s for s, v in zip(sizes, a["unflattened_size"], strict=True)
                          if v != -1)
        sizes = [shape[dim] // max(known, 1) if v == -1 else s
                 for s, v in zip(sizes, a["unflattened_size"], strict=True)]
    return (*shape[:dim], *sizes, *shape[dim + 1:]), 0


def embedding(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Embedding(n, d)``: ``(*input, d)``."""
    return (*shape, as_size(a["embedding_dim"])), 0


def rnn(gates: int, cell_state: bool = False) -> ShapeRule:
    """RNN / GRU / LSTM (``gates`` 1, 3, 4): ``(..., dirs * (proj_size or h))``, plus the
    gates of every layer and direction at every step (and LSTM's cell state)."""
    gates += cell_state

    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        h, p = as_size(a["hidden_size"]), as_size(a.get("proj_size", 0))
        dirs = 2 if a["bidirectional"] else 1
        rows = math.prod(shape[:-1])  # steps x samples
        inner = rows * dirs * max(as_size(a["num_layers"]), 1) * gates * h
        return _last(shape, dirs * (p or h)), inner
    return rule


def cell(gates: int) -> ShapeRule:
    """RNNCell / GRUCell / LSTMCell (``gates`` 1, 3, 4): ``(N, h)``, plus the gates."""
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        h = as_size(a["hidden_size"])
        return _last(shape, h), math.prod(shape[:-1]) * gates * h
    return rule


def _attention_inner(shape: Shape, e: int, heads: int, batch_first: bool) -> int:
    """q, k, v and the attention weights of ``(N, L, e)`` (``(L, N, e)`` unless batch_first)."""
    if len(shape) < 2:
        return 0
    length = shape[-2] if batch_first or len(shape) == 2 else shape[-3]
    rows = math.prod(shape[:-1])
    return 3 * rows * e + (rows // max(length, 1)) * max(heads, 1) * length * length


def attention(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``MultiheadAttention(e, heads)`` (and the one-input ``AttentionProbe``): ``(N, L, e)``,
    plus q, k, v (``3 L e``) and the attention weights (``heads L^2``) of every sample."""
    e = as_size(a["embed_dim"])
    return (_last(shape, e),
            _attention_inner(shape, e, as_size(a["num_heads"]), bool(a.get("batch_first", False))))


def sdpa(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``SDPAProbe``: q, k, v side by side in ``(N, L, 3e)`` -> ``(N, L, e)``, one head."""
    e = shape[-1] // 3 if shape else 0
    return _last(shape, e), _attention_inner(shape, e, 1, True)


def encoder_layer(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``TransformerEncoderLayer``: ``(N, L, d)``, plus its attention and feed-forward
    (``2 L f``), residuals and norms."""
    d, f = as_size(a["d_model"]), as_size(a["dim_feedforward"])
    rows = math.prod(shape[:-1])
    inner = (_attention_inner(shape, d, as_size(a["nhead"]), bool(a["batch_first"]))
             + 2 * rows * f + 4 * rows * d)  # feed-forward, residuals and norms
    return _last(shape, d), inner


def glu(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``GLU(dim)``: ``dim`` halved."""
    dim = int(a["dim"]) % len(shape)
    return (*shape[:dim], shape[dim] // 2, *shape[dim + 1:]), 0


def pad(dims: int) -> ShapeRule:
    """``*Pad{dims}d(padding)``: ``padding`` is one integer for every side, or
    ``(left, right, top, bottom, front, back)`` from the last dimension backwards; each
    padded length grows by its two sides (negative padding crops)."""
    def rule(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
        p = a["padding"]
        sides = [int(v) for v in p] if isinstance(p, list | tuple) else [int(p)] * 2 * dims
        if len(sides) != 2 * dims or len(shape) < dims:
            raise ValueError(f"padding {p!r} of a {dims}-d padding layer")
        out = list(shape)
        for i in range(dims):
            out[-1 - i] = max(out[-1 - i] + sides[2 * i] + sides[2 * i + 1], 0)
        return tuple(out), 0
    return rule


def pixel_shuffle(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``PixelShuffle(r)``: ``(..., C r^2, H, W)`` -> ``(..., C, H r, W r)``."""
    r = as_size(a["upscale_factor"])
    *lead, c, h, w = shape
    return (*lead, c // (r * r), h * r, w * r), 0


def pixel_unshuffle(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``PixelUnshuffle(r)``: ``(..., C, H, W)`` -> ``(..., C r^2, H / r, W / r)``."""
    r = as_size(a["downscale_factor"])
    *lead, c, h, w = shape
    return (*lead, c * r * r, h // r, w // r), 0


def resample(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Upsample`` (and ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``) of ``(N, C, *L)``:
    each ``L`` becomes ``size`` (an integer for every axis, or a list), else
    ``floor(L * scale_factor)``."""
    dims = len(shape) - 2
    size, scale = a.get("size"), a.get("scale_factor")
    if size is not None:
        out = _per_dim(size, dims)
    elif isinstance(scale, list | tuple):
        out = [math.floor(length * float(f)) for length, f in zip(shape[2:], scale, strict=True)]
    elif scale is None:
        raise ValueError("neither size nor scale_factor")
    else:
        out = [math.floor(length * float(scale)) for length in shape[2:]]
    return (*shape[:2], *out), 0


def _blocks(length: Shape, a: Mapping[str, Any]) -> int:
    """The number of sliding blocks of ``Unfold`` / ``Fold`` over a 2-D ``length``."""
    k, d = _per_dim(a["kernel_size"], 2), _per_dim(a["dilation"], 2)
    p, st = _per_dim(a["padding"], 2), _per_dim(a["stride"], 2)
    return math.prod((n + 2 * pi - di * (ki - 1) - 1) // max(si, 1) + 1
                     for n, ki, di, pi, si in zip(length, k, d, p, st, strict=True))


def unfold(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Unfold(k)``: ``(..., C, H, W)`` -> ``(..., C prod(k), blocks)``."""
    *lead, c, h, w = shape
    return (*lead, c * math.prod(_per_dim(a["kernel_size"], 2)), _blocks((h, w), a)), 0


def fold(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``Fold(output_size, k)``: ``(..., C prod(k), blocks)`` -> ``(..., C, *output_size)``."""
    *lead, ck, _ = shape
    c = ck // max(math.prod(_per_dim(a["kernel_size"], 2)), 1)
    return (*lead, c, *_per_dim(a["output_size"], 2)), 0


def rnn_output(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``RNNOutput(select)`` of ``(L, N, H)`` (``(N, L, H)`` batch first): ``"all"`` keeps it,
    ``"last"`` and ``"hidden"`` give ``(N, H)`` (a bound for ``"hidden"`` of a bidirectional
    layer, whose ``h_n[-1]`` has ``H / 2``)."""
    if a["select"] == "all" or len(shape) != 3:
        return shape, 0
    steps = 1 if a["batch_first"] else 0
    return (*shape[:steps], *shape[steps + 1:]), 0


def attention_probe(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``AttentionProbe``: as :func:`attention`, or with ``output="weights"`` the attention
    weights ``(N, L, L)`` (``(N, heads, L, L)`` unless ``average_attn_weights``)."""
    out, inner = attention(shape, a)
    if a["output"] != "weights" or len(shape) < 2:
        return out, inner
    length = shape[-2] if a["batch_first"] or len(shape) == 2 else shape[-3]
    batch = () if len(shape) == 2 else (shape[0] if a["batch_first"] else shape[1],)
    heads = () if a["average_attn_weights"] else (as_size(a["num_heads"]),)
    return (*batch, *heads, length, length), inner


def embedding_bag(shape: Shape, a: Mapping[str, Any]) -> tuple[Shape, int]:
    """``EmbeddingBag(n, d)`` of bags ``(B, L)``: ``(B, d)``."""
    return (*shape[:-1], as_size(a["embedding_dim"])), 0
