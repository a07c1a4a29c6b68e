"""Attention scenarios of the built-in suites: LayerNorm on sequences, SDPA, MultiheadAttention
option families, Transformer encoder layers, a Transformer token classifier and a trained
MultiheadAttention with appended keys (add_bias_kv, add_zero_attn).

Attention takes more than one input, so the op checks use the one-input adapters
``SDPAProbe`` and ``AttentionProbe`` (``refbp.nn.attention_probe``), which fix masks and flags
at construction. Data are ``sequence`` (float, (n, seq_len, features), per-step targets) and
``tokens`` (int64 ids) from ``refbp.parity.datagen``; models are ``batch_first``.

Float32 scenarios use the stated exception ``refbp.tolerances.OVERRIDES["float32_attention"]``,
the tolerance override declared for MultiheadAttention in ``refbp.registry``
(cancellation noise of the query gradient). The Adam classifier's encoder has no biases: the
key block of ``in_proj_bias`` has an exactly zero gradient whose rounding residue Adam would
scale to +-lr steps on either side (see ``parity_tests/test_attention_parity.py``); the SGD
classifier keeps the biases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.data import stream_rng
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.registry.ops import op
from refbp.tolerances import OVERRIDES

L = 6
STEPS = {"seq_len": L, "target": "steps"}
CAUSAL = np.triu(np.full((L, L), -np.inf), 1).tolist()
KEY_PADDING = [[False] * (L - k) + [True] * k for k in (0, 1, 2, 3, 5, 6)]
ALLOWED = (stream_rng(0).uniform(size=(L, L)) > 0.4) | np.eye(L, dtype=bool)


def _seq(features: int, outputs: int) -> DataSpec:
    return DataSpec("sequence", n=6, features=features, outputs=outputs, extra=STEPS)


def _mha(**kw: Any) -> Spec:
    return Spec("AttentionProbe", {"embed_dim": 8, "num_heads": 2, "batch_first": True, **kw})


def _tel(**kw: Any) -> Spec:
    return Spec("TransformerEncoderLayer", {"d_model": 8, "nhead": 2, "dim_feedforward": 16,
                                            "dropout": 0.0, "batch_first": True, **kw})


# (name, layers, data, description): one op check per option family, MSE on every step
OPS: list[tuple[str, list[Spec], DataSpec, str]] = [
    ("layernorm-seq", [Spec("LayerNorm", {"normalized_shape": [L, 4], "eps": 1e-3})],
     _seq(4, 4), "LayerNorm over the last two dimensions of a sequence batch"),
    ("sdpa", [Spec("SDPAProbe")], _seq(12, 4), "scaled_dot_product_attention of Q|K|V thirds"),
    ("sdpa-causal", [Spec("SDPAProbe", {"is_causal": True})], _seq(12, 4),
     "scaled_dot_product_attention, is_causal"),
    ("sdpa-mask-scale", [Spec("SDPAProbe", {"attn_mask": ALLOWED.tolist(), "scale": 0.5})],
     _seq(12, 4), "scaled_dot_product_attention, boolean mask (True = allowed), scale"),
    ("mha", [_mha()], _seq(8, 8), "MultiheadAttention, packed in_proj_weight, weights path"),
    ("mha-kdim-vdim", [_mha(num_heads=4, kdim=5, vdim=3)], _seq(8, 8),
     "MultiheadAttention with kdim/vdim: separate q/k/v_proj_weight"),
    ("mha-padding-nobias", [_mha(bias=False, key_padding_mask=KEY_PADDING,
                                 need_weights=False)], _seq(8, 8),
     "MultiheadAttention, bool key_padding_mask (one sample with every key padded: output 0 "
     "by the safe softmax), no bias, SDPA path"),
    ("mha-causal", [_mha(attn_mask=CAUSAL, is_causal=True, need_weights=False)], _seq(8, 8),
     "MultiheadAttention, float causal mask with the is_causal hint"),
    ("mha-weights", [_mha(attn_mask=(~ALLOWED).tolist(), output="weights")], _seq(8, L),
     "MultiheadAttention, bool attn_mask (True = masked); loss on the averaged weights"),
    ("tel-post-relu", [_tel()], _seq(8, 8), "TransformerEncoderLayer, post-norm, relu"),
    ("tel-pre-gelu", [_tel(norm_first=True, activation="gelu")], _seq(8, 8),
     "TransformerEncoderLayer, pre-norm, gelu"),
    ("mha-bias-kv-causal", [_mha(add_bias_kv=True, attn_mask=CAUSAL, is_causal=True,
                                 need_weights=False)], _seq(8, 8),
     "MultiheadAttention with add_bias_kv and the is_causal hint: causal over the extended keys"),
    ("tel-dropout", [_tel(dropout=0.25)], _seq(8, 8),
     "TransformerEncoderLayer with dropout: attention and feed-forward masks drawn by torch"),
]

CLASSIFIER_DATA = DataSpec("tokens", n=32, features=10, outputs=3, extra={"seq_len": 8})


def _classifier(**tel: Any) -> tuple[Spec, ...]:
    return (Spec("Embedding", {"num_embeddings": 10, "embedding_dim": 8}), _tel(**tel),
            Spec("Flatten"), Spec("Linear", {"in_features": 64, "out_features": 3}))


# (name, layers, optimizer, description): trained 5 steps on token sequences, CE, both dtypes
TRAINING: list[tuple[str, tuple[Spec, ...], Spec, str]] = [
    ("seq-transformer-clf-adam", _classifier(bias=False), Spec("Adam", {"lr": 0.001}),
     "token classifier: Embedding > TransformerEncoderLayer (no bias) > Flatten > Linear, "
     "Adam"),
    ("seq-transformer-clf-sgd", _classifier(norm_first=True),
     Spec("SGD", {"lr": 0.05, "momentum": 0.9}),
     "token classifier: Embedding > pre-norm TransformerEncoderLayer > Flatten > Linear, "
     "SGD momentum"),
]


def _tolerance(dtype: str) -> dict[str, float]:
    """The override ``refbp.registry`` declares for MultiheadAttention in this dtype."""
    key = op("MultiheadAttention").tolerance.get(dtype)
    return dict(OVERRIDES[key]) if key else {}


def op_checks(dtype: str, short: str) -> list[Scenario]:
    """The attention op checks in ``dtype`` (``short`` is the name suffix, e.g. ``f64``)."""
    return [Scenario(name=f"op-{name}-{short}", model=tuple(layers), loss=Spec("MSELoss"),
                     data=data, batching="batch", batch_size=None, dtype=dtype, seed=0,
                     steps=1, tolerance=_tolerance(dtype), description=text)
            for name, layers, data, text in OPS]


# trained 5 steps on the full sequence batch (the fixed key padding mask has one row per
# sample), MSE on every step, both dtypes
APPENDED_KEYS = (
    "seq-mha-bias-kv-zero-attn-sgd",
    (_mha(add_bias_kv=True, add_zero_attn=True, key_padding_mask=KEY_PADDING),),
    Spec("SGD", {"lr": 0.05, "momentum": 0.9}),
    "MultiheadAttention with add_bias_kv and add_zero_attn (learned bias_k/bias_v rows and a "
    "zero key appended), bool key_padding_mask (the fully padded sample attends only to the "
    "appended keys), weights path, SGD momentum",
)


def training(dtype: str, short: str) -> list[Scenario]:
    """The Transformer classifiers trained for 5 steps in ``dtype``, minibatches of 8, and
    attention with appended keys trained for 5 steps on one sequence batch."""
    out = [Scenario(name=f"{name}-{short}", model=layers, loss=Spec("CrossEntropyLoss"),
                    optimizer=opt, data=CLASSIFIER_DATA, batching="minibatch", batch_size=8,
                    dtype=dtype, seed=0, steps=5, tolerance=_tolerance(dtype),
                    description=text)
           for name, layers, opt, text in TRAINING]
    name, layers, opt, text = APPENDED_KEYS
    out.append(Scenario(name=f"{name}-{short}", model=layers, loss=Spec("MSELoss"),
                        optimizer=opt, data=_seq(8, 8), batching="batch", batch_size=None,
                        dtype=dtype, seed=0, steps=5, tolerance=_tolerance(dtype),
                        description=text))
    return out
