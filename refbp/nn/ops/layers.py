r"""Layer-level ops of a graph model, on the maths of the refbp layers of the same name.

The weights are arguments here (graph nodes), not attributes: ``conv2d`` runs
``refbp.nn.functional_conv``, ``batch_norm`` and ``layer_norm`` the functions of
``refbp.nn.batchnorm`` and ``refbp.nn.layernorm``, ``embedding`` the scatter-add of
``refbp.nn.embedding``, ``scaled_dot_product_attention`` ``refbp.nn.functional_attention``;
the pooling ops run a refbp pooling layer built from the arguments. The dropouts (element,
channel, alpha, channel alpha) ask ``refbp.nn.dropout.keep_mask`` for their mask and
``rrelu`` asks ``refbp.nn.dropout.random_slopes`` for its slopes, so a parity run feeds them
what torch drew.
Conventions: ``refbp.nn.ops``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp.nn import functional_act_hard as fah
from refbp.nn import functional_attention as fatt
from refbp.nn import functional_conv as fconv
from refbp.nn import functional_pad as fpad
from refbp.nn import init
from refbp.nn.adaptive_pooling import AdaptiveAvgPool2d
from refbp.nn.batchnorm import (
    batch_norm_backward,
    batch_norm_forward,
    update_running,
)
from refbp.nn.dropout import apply_mask, feature_noise_shape, keep_mask, random_slopes
from refbp.nn.dropout_alpha import alpha_dropout_affine
from refbp.nn.embedding import embedding_weight_grad
from refbp.nn.fractional_pool import FractionalMaxPool2d, FractionalMaxPool3d
from refbp.nn.layernorm import layer_norm_rows, layer_norm_rows_backward
from refbp.nn.ops import is_float
from refbp.nn.pooling import AvgPool2d, MaxPool2d

Grads = tuple[Any, ...]


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    v = list(v)
    return (int(v[0]), int(v[0])) if len(v) == 1 else (int(v[0]), int(v[1]))


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
           ) -> tuple[Any, Any]:
    """``refbp.nn.Conv2d``'s convolution (zero padding; ``padding`` "valid" or "same" as
    torch)."""
    geo = fconv.Geometry(_pair(weight.shape[2:]), _pair(stride), _pair(dilation))
    if padding == "valid":
        pad: fconv.Pads = (0, 0, 0, 0)
    elif padding == "same":
        pad = fconv.same_pads(geo)
    else:
        ph, pw = _pair(padding)
        pad = (ph, ph, pw, pw)
    y, cache = fconv.conv_forward(x, weight, bias, geo, pad, groups, "zeros")
    return y, (weight, cache, geo, pad, groups, bias is not None)


def conv2d_backward(g: np.ndarray, saved: Any) -> Grads:
    """``refbp.nn.functional_conv.conv_backward``: ``dx`` by col2im of ``W^T g`` (with stride 1
    the same sums gathered: the padded ``g`` correlated with the flipped kernel), ``dW`` by
    ``g`` times the im2col matrix, ``db`` the sum of ``g`` over batch and positions."""
    weight, cache, geo, pad, groups, has_bias = saved
    dx, dw, db = fconv.conv_backward(g, weight, cache, geo, pad, groups, "zeros")
    return dx, dw, (db if has_bias else None)


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> tuple[Any, Any]:
    """``refbp.nn.ConvTranspose2d``'s transposed convolution (weight ``(C_in, C_out / G, kh,
    kw)``): ``col2im(W^T x)`` on the full grid, ``padding`` cropped from each side."""
    geo = fconv.Geometry(_pair(weight.shape[2:]), _pair(stride), _pair(dilation))
    pad = _pair(padding)
    y, cache = fconv.conv_transpose_forward(x, weight, bias, geo, pad, _pair(output_padding),
                                            groups)
    return y, (weight, cache, geo, pad, groups, bias is not None)


def conv_transpose2d_backward(g: np.ndarray, saved: Any) -> Grads:
    """``refbp.nn.functional_conv.conv_transpose_backward``: the adjoint of col2im is im2col
    of the zero-padded ``g``, so ``dx = W im2col(g)``, ``dW = x im2col(g)^T``, ``db`` the sum
    of ``g`` over batch and positions."""
    weight, cache, geo, pad, groups, has_bias = saved
    dx, dw, db = fconv.conv_transpose_backward(g, weight, cache, geo, pad, groups)
    return dx, dw, (db if has_bias else None)


def pad(x: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float | None = None
        ) -> tuple[Any, Any]:
    """``torch.nn.functional.pad`` (``pad`` the last dimension first; modes ``constant``,
    ``reflect``, ``replicate``, ``circular``): ``refbp.nn.functional_pad``, each padded axis an
    index map from output to input positions."""
    padding = tuple(int(p) for p in pad)
    y = fpad.pad(x, padding, mode, 0.0 if value is None else value)
    return y, (x.shape, padding, mode)


def pad_backward(g: np.ndarray, saved: Any) -> Grads:
    """``refbp.nn.functional_pad.pad_backward``: each output position's gradient goes back to
    the input position it was read from (summed where several read the same one: reflect,
    replicate, circular); constant fill positions get none."""
    shape, padding, mode = saved
    return (fpad.pad_backward(g, shape, padding, mode),)


def batch_norm(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
               running_mean: np.ndarray | None, running_var: np.ndarray | None,
               training: bool, momentum: float, eps: float, cudnn_enabled: bool = False
               ) -> tuple[Any, Any]:
    """``refbp.nn.BatchNorm2d``'s normalisation over every dimension but 1; in training the
    running statistics (the module's buffers, passed in) are updated in place as torch does."""
    use_batch = training or running_mean is None
    update = None
    if training and running_mean is not None and running_var is not None:
        def update(mean: np.ndarray, var: np.ndarray, count: int) -> None:
            update_running(running_mean, running_var, mean, var, count, momentum)
    mean, var = (None, None) if use_batch else (running_mean, running_var)
    y, xhat, invstd = batch_norm_forward(x, weight, bias, mean, var, eps, update)
    return y, (xhat, invstd, weight, bias is not None, use_batch)


def batch_norm_cumulative(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                          running_mean: np.ndarray | None, running_var: np.ndarray | None,
                          training: bool, count: Any, eps: float,
                          cudnn_enabled: bool = False) -> tuple[Any, Any]:
    """:func:`batch_norm` of a BatchNorm with ``momentum=None``: the running statistics are
    the cumulative average of the batch statistics, factor ``1 / num_batches_tracked``
    (``count``, already incremented for this batch), as torch's ``_BatchNorm.forward``
    computes it in Python (double precision). Its backward is :func:`batch_norm_backward_`."""
    return batch_norm(x, weight, bias, running_mean, running_var, training,
                      1.0 / float(count), eps, cudnn_enabled)


def batch_norm_backward_(g: np.ndarray, saved: Any) -> Grads:
    """``refbp.nn.batchnorm.batch_norm_backward`` (the batch statistics depend on x)."""
    xhat, invstd, weight, has_bias, use_batch = saved
    dx, dw, db = batch_norm_backward(g, xhat, invstd, weight, use_batch)
    return dx, None if weight is None else dw, db if has_bias else None


def layer_norm(x: np.ndarray, normalized_shape: Sequence[int], weight: np.ndarray | None = None,
               bias: np.ndarray | None = None, eps: float = 1e-5, cudnn_enable: bool = True
               ) -> tuple[Any, Any]:
    """``refbp.nn.LayerNorm``'s normalisation of the trailing ``normalized_shape``."""
    d = int(np.prod(normalized_shape, dtype=np.int64))
    xhat, rstd = layer_norm_rows(x.reshape(-1, d), eps)
    y2 = xhat if weight is None else xhat * weight.reshape(-1)
    if bias is not None:
        y2 = y2 + bias.reshape(-1)
    return y2.reshape(x.shape), (xhat, rstd, weight, bias is not None, x.shape)


def layer_norm_backward(g: np.ndarray, saved: Any) -> Grads:
    """``dW = sum of g * xhat``, ``db = sum of g`` over rows;
    ``dx = refbp.nn.layernorm.layer_norm_rows_backward``."""
    xhat, rstd, weight, has_bias, shape = saved
    g2 = g.reshape(xhat.shape)
    w = None if weight is None else weight.reshape(-1)
    dx = layer_norm_rows_backward(g2, xhat, rstd, w).reshape(shape)
    dw = None if weight is None else (g2 * xhat).sum(axis=0).reshape(weight.shape)
    return dx, None, dw, (g2.sum(axis=0).reshape(-1) if has_bias else None)


def embedding(weight: np.ndarray, indices: np.ndarray, padding_idx: int = -1,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> tuple[Any, Any]:
    """``weight[indices]`` (ATen's ``padding_idx`` is -1 for none)."""
    pad = None if padding_idx < 0 else padding_idx
    return weight[indices], (indices, weight.shape, pad, scale_grad_by_freq)


def embedding_backward(g: np.ndarray, saved: Any) -> Grads:
    """The scatter-add of ``refbp.nn.embedding.embedding_weight_grad``; no gradient for the
    integer indices."""
    indices, shape, pad, scale = saved
    return embedding_weight_grad(g, indices, shape, pad, scale), None


def dropout(x: np.ndarray, p: float, train: bool) -> tuple[Any, Any]:
    """``x * mask / (1 - p)`` in training with ``p > 0`` (the mask from
    ``refbp.nn.dropout.keep_mask``: fed from torch in a parity run, else drawn from refbp's
    default generator, ``refbp.nn.init``), else ``x`` (torch draws nothing then)."""
    if not train or p == 0.0 or x.size == 0:
        return x, None
    noise = apply_mask(x, keep_mask(x.shape, p, init.default_generator(), "graph dropout"), p)
    return x * noise, noise


def dropout_backward(g: np.ndarray, noise: np.ndarray | None) -> Grads:
    """``y = x * noise`` with a constant ``noise``: ``dx = g * noise``."""
    return (g if noise is None else g * noise), None, None


def _graph_mask(x: np.ndarray, p: float, feature: bool, who: str) -> np.ndarray:
    """The keep-mask of one graph dropout: of ``x``'s shape, or torch's feature-noise shape
    ``(N, C, 1, ...)`` (``feature``: dim 0 is the batch, dim 1 the channels, as ATen's
    ``feature_dropout`` reads every input)."""
    shape = feature_noise_shape(x) if feature else x.shape
    return keep_mask(shape, p, init.default_generator(), who)


def feature_dropout(x: np.ndarray, p: float, train: bool) -> tuple[Any, Any]:
    """``aten.feature_dropout`` (``F.dropout1d/2d/3d``; torch unsqueezes an unbatched input
    before it): ``x * mask / (1 - p)`` with one mask entry per (sample, channel), broadcast
    over the rest; ``x`` when not training, ``p == 0`` or empty. Backward:
    :func:`dropout_backward` (``dx = g * noise``)."""
    if not train or p == 0.0 or x.size == 0:
        return x, None
    noise = apply_mask(x, _graph_mask(x, p, True, "graph feature dropout"), p)
    return x * noise, noise


def _alpha(x: np.ndarray, p: float, train: bool, feature: bool) -> tuple[Any, Any]:
    """``x * noise + b`` of ``refbp.nn.dropout_alpha`` (rounded as torch's kernel); torch
    draws nothing and multiplies by zero at ``p == 1``."""
    if not train or p == 0.0 or x.size == 0:
        return x, None
    if p == 1.0:
        zero = np.zeros((), dtype=x.dtype)
        return x * zero, zero
    noise, b = alpha_dropout_affine(_graph_mask(x, p, feature, "graph alpha dropout"), p,
                                    x.dtype)
    return x * noise + b, noise


def alpha_dropout(x: np.ndarray, p: float, train: bool) -> tuple[Any, Any]:
    """``aten.alpha_dropout`` (``nn.AlphaDropout``): one mask entry per element.
    ``y = x * noise + b`` with constant ``noise`` and ``b``, so the backward is
    :func:`dropout_backward`'s ``dx = g * noise``."""
    return _alpha(x, p, train, feature=False)


def feature_alpha_dropout(x: np.ndarray, p: float, train: bool) -> tuple[Any, Any]:
    """``aten.feature_alpha_dropout`` (``nn.FeatureAlphaDropout``): one mask entry per
    (sample, channel); backward as :func:`alpha_dropout`."""
    return _alpha(x, p, train, feature=True)


def rrelu(x: np.ndarray, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, generator: Any = None) -> tuple[Any, Any]:
    """``aten.rrelu`` (``nn.RReLU``): in training ``x * noise`` with one slope
    ``U(lower, upper)`` per element ``x <= 0`` (``refbp.nn.dropout.random_slopes``: torch's
    in a parity run); else the leaky ReLU of slope ``(lower + upper) / 2``
    (``refbp.nn.functional_act_hard.rrelu``). ``generator`` must be None (torch's default)."""
    if generator is not None:
        raise ValueError("a graph rrelu with its own generator cannot be run by refbp")
    lo, hi = float(lower), float(upper)
    noise = random_slopes(x, lo, hi, init.default_generator(), "graph rrelu") if training \
        else None
    return np.asarray(fah.rrelu(x, noise, lo, hi), dtype=x.dtype), (x, noise, lo, hi)


def rrelu_backward(g: np.ndarray, saved: Any) -> Grads:
    """``g * noise`` (the drawn slope at ``x <= 0``, 1 elsewhere), or the mean-slope leaky
    ReLU's derivative: ``refbp.nn.functional_act_hard.rrelu_backward``, torch's
    ``rrelu_with_noise_backward``."""
    x, noise, lo, hi = saved
    return fah.rrelu_backward(g, x, noise, lo, hi), None, None, None, None


def max_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = (), padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> tuple[Any, Any]:
    """``refbp.nn.MaxPool2d`` (an empty ``stride`` means the kernel size, as torch)."""
    layer = MaxPool2d(kernel_size, stride if stride else None, padding, dilation,
                      ceil_mode=ceil_mode)
    return layer.forward(x), layer


def avg_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = (), padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> tuple[Any, Any]:
    """``refbp.nn.AvgPool2d``."""
    layer = AvgPool2d(kernel_size, stride if stride else None, padding, ceil_mode,
                      count_include_pad, divisor_override)
    return layer.forward(x), layer


def adaptive_avg_pool2d(x: np.ndarray, output_size: Any) -> tuple[Any, Any]:
    """``refbp.nn.AdaptiveAvgPool2d``."""
    layer = AdaptiveAvgPool2d(list(output_size))
    return layer.forward(x), layer


def fractional_max_pool2d(x: np.ndarray, kernel_size: Any, output_size: Any,
                          random_samples: np.ndarray) -> tuple[Any, Any]:
    """``refbp.nn.FractionalMaxPool2d`` with the samples as an argument (the graph's
    ``rand`` node, fed from torch in a parity run): the output and the indices."""
    layer = FractionalMaxPool2d(kernel_size, output_size, return_indices=True,
                                _random_samples=random_samples)
    return list(layer.forward(x)), layer


def fractional_max_pool3d(x: np.ndarray, kernel_size: Any, output_size: Any,
                          random_samples: np.ndarray) -> tuple[Any, Any]:
    """``refbp.nn.FractionalMaxPool3d``, as :func:`fractional_max_pool2d`."""
    layer = FractionalMaxPool3d(kernel_size, output_size, return_indices=True,
                                _random_samples=random_samples)
    return list(layer.forward(x)), layer


def fractional_max_pool_backward(g: list[Any], layer: Any) -> Grads:
    """The layer's backward of the output's gradient (each to its argmax); the indices and
    the samples get none."""
    return (None if g[0] is None else layer.backward(g[0])), None, None, None


def pool_backward(g: np.ndarray, layer: Any) -> Grads:
    """The refbp pooling layer's backward (the maths in ``refbp.nn.functional_pool``)."""
    return (layer.backward(g),)


def sdpa(q: np.ndarray, k: np.ndarray, v: np.ndarray, attn_mask: Any = None,
         dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
         enable_gqa: bool = False) -> tuple[Any, Any]:
    """``refbp.nn.functional_attention.sdpa_forward``; with ``enable_gqa`` each key/value head
    serves ``q_heads / kv_heads`` query heads (repeated along dimension -3). With
    ``dropout_p > 0`` the attention weights are dropped as torch's kernel does,
    ``softmax(...) * D / (1 - p)``, with the keep-mask ``D`` of the weights' shape from
    ``refbp.nn.dropout.keep_mask`` (fed from torch in a parity run: ``refbp.mirror.dropout``
    reads the mask torch's call draws)."""
    reps = q.shape[-3] // k.shape[-3] if enable_gqa and q.ndim >= 3 else 1
    if reps > 1:
        k, v = np.repeat(k, reps, axis=-3), np.repeat(v, reps, axis=-3)
    mask = None
    if dropout_p > 0.0:
        mask = keep_mask(q.shape[:-1] + (k.shape[-2],), dropout_p, init.default_generator(),
                         "graph attention dropout")
    out, cache = fatt.sdpa_forward(q, k, v, attn_mask, dropout_p, is_causal, scale,
                                   dropout_mask=mask)
    return out, (cache, reps, is_float(attn_mask))


def sdpa_backward(g: np.ndarray, saved: Any) -> Grads:
    """``refbp.nn.functional_attention.attention_backward``; a repeated key/value head gets the
    sum of its copies' gradients."""
    cache, reps, _ = saved
    dq, dk, dv = fatt.attention_backward(g, cache)
    if reps > 1:
        shape = dk.shape[:-3] + (dk.shape[-3] // reps, reps) + dk.shape[-2:]
        dk, dv = dk.reshape(shape).sum(axis=-3), dv.reshape(shape).sum(axis=-3)
    return dq, dk, dv, None
