"""Torch converters of the attention layers: MultiheadAttention, TransformerEncoder(Layer),
TransformerDecoder(Layer) and Transformer.

Registered with ``refbp.mirror.register_converter`` when ``refbp.mirror`` is imported. Both
directions build the target from the source's constructor arguments and then copy the whole
state dict (same keys on both sides), so trained layers and stacks whose layers have moved
apart convert exactly.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from refbp import nn as rnn
from refbp.mirror.dropout import next_dropout_mask, register_mask_probe, rewound_rng
from refbp.mirror.modules import finish_twin, from_torch, register_converter, to_torch
from refbp.nn.module import Module

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _numpy_state(t: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in t.state_dict().items()}


def _dtype_of(t: Any) -> Any:
    for p in t.parameters():
        return np.float64 if p.dtype == torch.float64 else np.float32
    return np.float64


def _finish_from_torch(m: Module, t: torch.nn.Module) -> Module:
    own, theirs = list(m.state_dict()), list(t.state_dict())
    if own != theirs:
        raise ValueError(f"cannot convert {type(t).__name__}: torch has state {theirs}, refbp "
                         f"{own}")
    m.load_state_dict(_numpy_state(t))
    mine = dict(m.named_parameters())
    for name, p in t.named_parameters():
        mine[name].requires_grad = p.requires_grad
    return m.train(t.training)


# -- MultiheadAttention --------------------------------------------------------------------
def _mha_args(a: Any) -> dict[str, Any]:
    """The constructor options of a MultiheadAttention (either side; same attributes)."""
    return {"bias": a.in_proj_bias is not None, "add_bias_kv": a.bias_k is not None,
            "add_zero_attn": a.add_zero_attn, "kdim": a.kdim, "vdim": a.vdim,
            "batch_first": a.batch_first}


def _mha_to_torch(m: rnn.MultiheadAttention) -> torch.nn.Module:
    t = torch.nn.MultiheadAttention(m.embed_dim, m.num_heads, dropout=m.dropout,
                                    **_mha_args(m))
    return finish_twin(m, t)


def _mha_from_torch(t: Any) -> Module:
    m = rnn.MultiheadAttention(t.embed_dim, t.num_heads, dropout=t.dropout, **_mha_args(t),
                               dtype=_dtype_of(t))
    return _finish_from_torch(m, t)


# -- TransformerEncoderLayer ---------------------------------------------------------------
def _layer_args(m: Any) -> dict[str, Any]:
    """The constructor arguments of a refbp encoder or decoder layer, by torch's names."""
    return {"dim_feedforward": m.dim_feedforward, "dropout": m.dropout_p,
            "activation": m.activation, "layer_norm_eps": m.layer_norm_eps,
            "batch_first": m.batch_first, "norm_first": m.norm_first, "bias": m.bias}


def _layer_args_torch(t: Any) -> dict[str, Any]:
    """The same arguments read from a torch encoder or decoder layer."""
    return {"dim_feedforward": t.linear1.out_features, "dropout": t.dropout.p,
            "activation": _activation_name(t), "layer_norm_eps": t.norm1.eps,
            "batch_first": t.self_attn.batch_first, "norm_first": t.norm_first,
            "bias": t.linear1.bias is not None}


def _tel_to_torch(m: rnn.TransformerEncoderLayer) -> torch.nn.Module:
    return finish_twin(m, torch.nn.TransformerEncoderLayer(m.d_model, m.nhead,
                                                           **_layer_args(m)))


def _activation_name(t: Any) -> str:
    act = t.activation
    for name, fn in _ACTIVATIONS.items():
        if act is fn:
            return name
    if type(act) is torch.nn.ReLU:
        return "relu"
    if type(act) is torch.nn.GELU and act.approximate == "none":
        return "gelu"
    raise ValueError(f"cannot convert {type(t).__name__} with activation {act!r}: refbp "
                     "supports 'relu' and 'gelu' (F.relu, F.gelu)")


def _tel_from_torch(t: Any) -> Module:
    m = rnn.TransformerEncoderLayer(t.self_attn.embed_dim, t.self_attn.num_heads,
                                    **_layer_args_torch(t), dtype=_dtype_of(t))
    return _finish_from_torch(m, t)


# -- TransformerEncoder --------------------------------------------------------------------
def _te_to_torch(m: rnn.TransformerEncoder) -> torch.nn.Module:
    norm = None if m.norm is None else to_torch(m.norm)
    with warnings.catch_warnings():
        # torch's notice that its inference fast path cannot be used for this layer
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        layer: Any = to_torch(m.layers[0])
        t = torch.nn.TransformerEncoder(layer, m.num_layers, norm=norm,
                                        enable_nested_tensor=m.enable_nested_tensor,
                                        mask_check=m.mask_check)
    return finish_twin(m, t)


def _te_from_torch(t: Any) -> Module:
    norm: Any = None if t.norm is None else from_torch(t.norm, _path="norm")
    layer: Any = from_torch(t.layers[0], _path="layers.0")
    m = rnn.TransformerEncoder(layer, t.num_layers,
                               norm=norm, enable_nested_tensor=t.enable_nested_tensor,
                               mask_check=getattr(t, "mask_check", True))
    return _finish_from_torch(m, t)


# -- TransformerDecoderLayer, TransformerDecoder, Transformer ------------------------------
def _tdl_to_torch(m: Any) -> torch.nn.Module:
    return finish_twin(m, torch.nn.TransformerDecoderLayer(m.d_model, m.nhead,
                                                           **_layer_args(m)))


def _tdl_from_torch(t: Any) -> Module:
    m = rnn.TransformerDecoderLayer(t.self_attn.embed_dim, t.self_attn.num_heads,
                                    **_layer_args_torch(t), dtype=_dtype_of(t))
    return _finish_from_torch(m, t)


def _td_to_torch(m: Any) -> torch.nn.Module:
    norm = None if m.norm is None else to_torch(m.norm)
    layer: Any = to_torch(m.layers[0])
    return finish_twin(m, torch.nn.TransformerDecoder(layer, m.num_layers, norm=norm))


def _td_from_torch(t: Any) -> Module:
    norm: Any = None if t.norm is None else from_torch(t.norm, _path="norm")
    layer: Any = from_torch(t.layers[0], _path="layers.0")
    return _finish_from_torch(rnn.TransformerDecoder(layer, t.num_layers, norm=norm), t)


def _transformer_to_torch(m: Any) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        t = torch.nn.Transformer(m.d_model, m.nhead, custom_encoder=to_torch(m.encoder),
                                 custom_decoder=to_torch(m.decoder), batch_first=m.batch_first)
    return finish_twin(m, t)


def _transformer_from_torch(t: Any) -> Module:
    m = rnn.Transformer(t.d_model, t.nhead, custom_encoder=from_torch(t.encoder, _path="encoder"),
                        custom_decoder=from_torch(t.decoder, _path="decoder"),
                        batch_first=t.batch_first)
    return _finish_from_torch(m, t)


# -- one-input adapters --------------------------------------------------------------------
def _mask_tensor(mask: Any, dtype: torch.dtype) -> torch.Tensor | None:
    if mask is None:
        return None
    m = torch.as_tensor(np.asarray(mask))
    return m if m.dtype == torch.bool else m.to(dtype)


class AttentionProbeTorch(torch.nn.Module):
    """Torch twin of :class:`refbp.nn.AttentionProbe`: stock ``nn.MultiheadAttention`` on
    slices of the input, with the same fixed masks and flags."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 key_padding_mask: Any = None, attn_mask: Any = None,
                 need_weights: bool = True, average_attn_weights: bool = True,
                 is_causal: bool = False, output: str = "output", add_bias_kv: bool = False,
                 add_zero_attn: bool = False) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(embed_dim, num_heads, bias=bias, kdim=kdim,
                                                vdim=vdim, batch_first=batch_first,
                                                add_bias_kv=add_bias_kv,
                                                add_zero_attn=add_zero_attn)
        self.key_padding_mask, self.attn_mask = key_padding_mask, attn_mask
        self.need_weights, self.average_attn_weights = need_weights, average_attn_weights
        self.is_causal, self.output = is_causal, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of the query, key and value slices of ``x`` (output or weights)."""
        a = self.attn
        q, k, v = (x[..., :w] for w in (a.embed_dim, a.kdim, a.vdim))
        out, weights = a(q, k, v, key_padding_mask=_mask_tensor(self.key_padding_mask, x.dtype),
                         attn_mask=_mask_tensor(self.attn_mask, x.dtype),
                         need_weights=self.need_weights,
                         average_attn_weights=self.average_attn_weights,
                         is_causal=self.is_causal)
        return out if self.output == "output" else weights


class SDPAProbeTorch(torch.nn.Module):
    """Torch twin of :class:`refbp.nn.SDPAProbe`: ``F.scaled_dot_product_attention`` of the
    Q, K, V thirds of the input."""

    def __init__(self, attn_mask: Any = None, is_causal: bool = False,
                 scale: float | None = None) -> None:
        super().__init__()
        self.attn_mask, self.is_causal, self.scale = attn_mask, is_causal, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of the three thirds of ``x``'s last axis."""
        q, k, v = x.chunk(3, dim=-1)
        return F.scaled_dot_product_attention(q, k, v, _mask_tensor(self.attn_mask, x.dtype),
                                              is_causal=self.is_causal, scale=self.scale)


_PROBE_ARGS = ("key_padding_mask", "attn_mask", "need_weights", "average_attn_weights",
               "is_causal", "output")


def _probe_to_torch(m: rnn.AttentionProbe) -> torch.nn.Module:
    a = m.attn
    t = AttentionProbeTorch(a.embed_dim, a.num_heads, **_mha_args(a),
                            **{k: getattr(m, k) for k in _PROBE_ARGS})
    return finish_twin(m, t)


def _probe_from_torch(t: Any) -> Module:
    a = t.attn
    m = rnn.AttentionProbe(a.embed_dim, a.num_heads, **_mha_args(a), dtype=_dtype_of(t),
                           **{k: getattr(t, k) for k in _PROBE_ARGS})
    return _finish_from_torch(m, t)


def probe_attention_dropout(module: Any, args: tuple[Any, ...]) -> list[np.ndarray]:
    """The keep-mask ``nn.MultiheadAttention`` is about to draw on its attention weights.

    torch drops the weights with stock dropout (``F.dropout`` on the (N * H, L, S) weights
    with ``need_weights``, scaled_dot_product_attention's math path on (N, H, L, S) without);
    both draw one Bernoulli per element in memory order from the CPU generator, which
    ``F.dropout`` on ones of shape (N, H, L, S) and the query's dtype reproduces (read under a
    rewound generator, so torch's own draw is untouched). refbp asks for that shape. The key
    length S counts the keys torch appends (``bias_k``, the zero key of ``add_zero_attn``).
    Query and key must be passed positionally (as ``TransformerEncoderLayer`` does).
    """
    if module.dropout == 0.0:
        return []
    if len(args) < 2:
        raise TypeError("MultiheadAttention with dropout in a parity run must get query and "
                        "key as positional arguments (the dropout-mask probe reads them)")
    q, k = args[0], args[1]
    seq_axis = 1 if module.batch_first and q.dim() == 3 else 0
    batch = 1 if q.dim() == 2 else q.shape[0 if module.batch_first else 1]
    src = k.shape[seq_axis] + int(module.bias_k is not None) + int(module.add_zero_attn)
    like = torch.empty((batch, module.num_heads, q.shape[seq_axis], src), dtype=q.dtype)
    with rewound_rng():
        return [next_dropout_mask(like, module.dropout)]


def register_attention_converters() -> None:
    register_converter(rnn.MultiheadAttention, torch.nn.MultiheadAttention, _mha_to_torch,
                       _mha_from_torch)
    register_converter(rnn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer,
                       _tel_to_torch, _tel_from_torch)
    register_converter(rnn.TransformerEncoder, torch.nn.TransformerEncoder, _te_to_torch,
                       _te_from_torch)
    register_converter(rnn.TransformerDecoderLayer, torch.nn.TransformerDecoderLayer,
                       _tdl_to_torch, _tdl_from_torch)
    register_converter(rnn.TransformerDecoder, torch.nn.TransformerDecoder, _td_to_torch,
                       _td_from_torch)
    register_converter(rnn.Transformer, torch.nn.Transformer, _transformer_to_torch,
                       _transformer_from_torch)
    register_mask_probe(torch.nn.MultiheadAttention, probe_attention_dropout)
    register_converter(rnn.AttentionProbe, AttentionProbeTorch, _probe_to_torch,
                       _probe_from_torch)
    register_converter(rnn.SDPAProbe, SDPAProbeTorch,
                       lambda m: SDPAProbeTorch(m.attn_mask, m.is_causal, m.scale).train(
                           m.training),
                       lambda t: rnn.SDPAProbe(t.attn_mask, t.is_causal, t.scale).train(
                           t.training))


register_attention_converters()
