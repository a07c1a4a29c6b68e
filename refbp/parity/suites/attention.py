"""Attention training scenarios of the built-in suites: a Transformer token classifier and a
trained MultiheadAttention with appended keys (add_bias_kv, add_zero_attn). The attention op
checks are the samples declared in ``refbp.registry`` (``samples_attention``), whose helpers
build these models too.

Data are ``sequence`` (float, (n, seq_len, features), per-step targets) and ``tokens`` (int64
ids) from ``refbp.parity.datagen``; models are ``batch_first``.

Float32 scenarios use the stated exception ``refbp.tolerances.OVERRIDES["float32_attention"]``,
the tolerance override declared for MultiheadAttention in ``refbp.registry``
(cancellation noise of the query gradient). The Adam classifier's encoder has no biases: the
key block of ``in_proj_bias`` has an exactly zero gradient whose rounding residue Adam would
scale to +-lr steps on either side (see ``parity_tests/test_attention_parity.py``); the SGD
classifier keeps the biases.
"""

from __future__ import annotations

from typing import Any

from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.registry.opinfo import Data
from refbp.registry.ops import op
from refbp.registry.samples_attention import KEY_PADDING, mha, seq, tel
from refbp.tolerances import OVERRIDES


def _seq(features: int, outputs: int) -> DataSpec:
    return _data(seq(features, outputs))


def _data(d: Data) -> DataSpec:
    return DataSpec(d.kind, n=d.n, features=d.features, outputs=d.outputs, extra=dict(d.extra))


def _mha(**kw: Any) -> Spec:
    return Spec("AttentionProbe", mha(**kw))


def _tel(**kw: Any) -> Spec:
    return Spec("TransformerEncoderLayer", tel(**kw))


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
