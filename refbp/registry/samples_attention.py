"""Op-check samples of the attention layers (declared in :mod:`refbp.registry.layers`).

Attention takes more than one input, so the op checks use the one-input adapters
``SDPAProbe`` and ``AttentionProbe`` (``refbp.nn.attention_probe``), which fix masks and flags
at construction. Data are ``sequence`` (float, (6, 6, features), per-step targets) from
``refbp.parity.datagen``; models are ``batch_first``; MSE on every step. Float32 checks take
the layers' declared tolerance exception (``float32_attention``).
"""

from __future__ import annotations

from typing import Any

from refbp.registry.opinfo import Data, Sample

L = 6
STEPS = {"seq_len": L, "target": "steps"}
#: float causal mask: -inf above the diagonal
CAUSAL = [[0.0 if j <= i else float("-inf") for j in range(L)] for i in range(L)]
#: bool key padding mask (True = padded): 0, 1, 2, 3, 5 and all 6 keys of the six samples
KEY_PADDING = [[False] * (L - k) + [True] * k for k in (0, 1, 2, 3, 5, 6)]
#: bool mask (True = allowed), drawn once: ``(stream_rng(0).uniform(size=(6, 6)) > 0.4) |
#: eye(6)`` (a test redraws it)
ALLOWED = [[bool(v) for v in row] for row in (
    (1, 0, 0, 0, 1, 1), (1, 1, 1, 1, 1, 0), (1, 0, 1, 0, 1, 1),
    (0, 1, 0, 1, 1, 1), (1, 0, 1, 1, 1, 1), (1, 0, 0, 1, 1, 1))]
_MSE: tuple[str, dict[str, Any]] = ("MSELoss", {})


def seq(features: int, outputs: int) -> Data:
    """``sequence`` data of 6 samples of 6 steps, per-step targets."""
    return Data("sequence", n=6, features=features, outputs=outputs, extra=STEPS)


def mha(**kw: Any) -> dict[str, Any]:
    """``AttentionProbe`` options: embed_dim 8, 2 heads, batch first, then ``kw``."""
    return {"embed_dim": 8, "num_heads": 2, "batch_first": True, **kw}


def tel(**kw: Any) -> dict[str, Any]:
    """``TransformerEncoderLayer`` options: d_model 8, 2 heads, feed-forward 16, no dropout,
    batch first, then ``kw``."""
    return {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0,
            "batch_first": True, **kw}


def _s(id: str, options: dict[str, Any], data: Data, text: str, **kw: Any) -> Sample:
    return Sample(id, options, data, loss=_MSE, description=text, **kw)


# checked with the attention layers' float32 tolerance since it joined the suite with them
LAYER_NORM = (_s("layernorm-seq", {"normalized_shape": [L, 4], "eps": 1e-3}, seq(4, 4),
                 "LayerNorm over the last two dimensions of a sequence batch",
                 tolerance={"float32": "float32_attention"}),)
SDPA = (
    _s("sdpa", {}, seq(12, 4), "scaled_dot_product_attention of Q|K|V thirds"),
    _s("sdpa-causal", {"is_causal": True}, seq(12, 4),
       "scaled_dot_product_attention, is_causal"),
    _s("sdpa-mask-scale", {"attn_mask": ALLOWED, "scale": 0.5}, seq(12, 4),
       "scaled_dot_product_attention, boolean mask (True = allowed), scale"),
)
MHA = (
    _s("mha", mha(), seq(8, 8), "MultiheadAttention, packed in_proj_weight, weights path"),
    _s("mha-kdim-vdim", mha(num_heads=4, kdim=5, vdim=3), seq(8, 8),
       "MultiheadAttention with kdim/vdim: separate q/k/v_proj_weight"),
    _s("mha-padding-nobias", mha(bias=False, key_padding_mask=KEY_PADDING, need_weights=False),
       seq(8, 8), "MultiheadAttention, bool key_padding_mask (one sample with every key padded: "
       "output 0 by the safe softmax), no bias, SDPA path"),
    _s("mha-causal", mha(attn_mask=CAUSAL, is_causal=True, need_weights=False), seq(8, 8),
       "MultiheadAttention, float causal mask with the is_causal hint"),
    _s("mha-weights", mha(attn_mask=[[not v for v in row] for row in ALLOWED],
                          output="weights"), seq(8, L),
       "MultiheadAttention, bool attn_mask (True = masked); loss on the averaged weights"),
    _s("mha-bias-kv-causal", mha(add_bias_kv=True, attn_mask=CAUSAL, is_causal=True,
                                 need_weights=False), seq(8, 8),
       "MultiheadAttention with add_bias_kv and the is_causal hint: causal over the extended "
       "keys"),
)
TRANSFORMER_ENCODER_LAYER = (
    _s("tel-post-relu", tel(), seq(8, 8), "TransformerEncoderLayer, post-norm, relu"),
    _s("tel-pre-gelu", tel(norm_first=True, activation="gelu"), seq(8, 8),
       "TransformerEncoderLayer, pre-norm, gelu"),
    _s("tel-dropout", tel(dropout=0.25), seq(8, 8),
       "TransformerEncoderLayer with dropout: attention and feed-forward masks drawn by torch"),
    _s("tel-defaults", {"d_model": 8, "nhead": 2}, seq(8, 8),
       "TransformerEncoderLayer with each library's defaults (dropout 0.1, masks drawn by "
       "torch; feed-forward 2048, relu, post-norm, sequence first)"),
)


def _pair_tf(id: str, op: str, options: dict[str, Any], text: str, **kwargs: Any) -> Sample:
    """An op check of a two-input transformer layer through ``PairProbe``: (N, 6, 16)
    sequences cut into target (or source) and memory (or target) of width 8."""
    probe = {"op": op, "split": 8, "options": options, "kwargs": kwargs}
    return _s(id, probe, seq(16, 8), text, tolerance={"float32": "float32_attention"})


def tf(**kw: Any) -> dict[str, Any]:
    """``Transformer`` options: ``tel``'s, one encoder and one decoder layer, then ``kw``."""
    return tel(num_encoder_layers=1, num_decoder_layers=1, **kw)


#: PairProbe's samples of the decoder layer and the whole transformer (declared in
#: :mod:`refbp.registry.layers_extra`)
TRANSFORMER_DECODER = (
    _pair_tf("pair-transformerdecoderlayer", "TransformerDecoderLayer", tel(),
             "TransformerDecoderLayer, post-norm, relu (target | memory halves)"),
    _pair_tf("pair-transformerdecoderlayer-causal-pre", "TransformerDecoderLayer",
             tel(norm_first=True, activation="gelu"),
             "TransformerDecoderLayer, pre-norm, gelu, causal target mask with the hint, bool "
             "memory key padding mask", tgt_mask=CAUSAL, tgt_is_causal=True,
             memory_key_padding_mask=KEY_PADDING),
    _pair_tf("pair-transformerdecoderlayer-dropout", "TransformerDecoderLayer",
             tel(dropout=0.25), "TransformerDecoderLayer with dropout: the six masks drawn by "
             "torch", memory_mask=[[not v for v in row] for row in ALLOWED]),
    _pair_tf("pair-transformer", "Transformer", tf(),
             "Transformer, one encoder and one decoder layer (source | target halves), "
             "causal target mask", tgt_mask=CAUSAL),
    _pair_tf("pair-transformer-pre-padding", "Transformer", tf(norm_first=True),
             "Transformer, pre-norm, source and memory key padding masks",
             src_key_padding_mask=KEY_PADDING[:5] + [[False] * L],
             memory_key_padding_mask=KEY_PADDING[:5] + [[False] * L]),
)
