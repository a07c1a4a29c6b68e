"""Hugging Face ``transformers`` models, built from tiny configs (nothing downloaded), checked
through ``torch.export``: GPT-2 (tied embeddings, Conv1D projections through ``addmm``), Llama
(RMSNorm, rotary embeddings built under ``no_grad``, grouped-query attention, SiLU gating) and
BERT for sequence classification (token type and position ids, pooler). Each trains 3 AdamW
steps on both sides (loss, logits, every gradient, parameter and optimizer state).

These configs set the attention dropout to 0; with it, dropout drawn inside ``transformers``'
attention function (``torch.nn.functional.dropout`` in the eager implementation,
``scaled_dot_product_attention(dropout_p=...)`` in the sdpa one) runs with torch's masks, read
from those calls (``refbp.mirror.dropout``), as do the hidden-state ``nn.Dropout`` modules.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import torch

from refbp.mirror import from_torch
from refbp.mirror.zoo import LogitsOf
from refbp.nn.dropout import record_masks
from refbp.testing import parity_table
from refbp.tolerances import OVERRIDES

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.parity
logging.getLogger("transformers").setLevel(logging.ERROR)

VOCAB = 50


def gpt2() -> torch.nn.Module:
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=16, n_embd=8, n_layer=2, n_head=2, attn_pdrop=0.0,
        attn_implementation="eager", bos_token_id=0, eos_token_id=0))


def llama() -> torch.nn.Module:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
        attn_implementation="eager", bos_token_id=0, eos_token_id=0, pad_token_id=0))


def bert() -> torch.nn.Module:
    return transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16, num_labels=3, pad_token_id=0,
        attention_probs_dropout_prob=0.0, attn_implementation="eager"))


MODELS = {"gpt2": gpt2, "llama": llama, "bert": bert}
CASES = [pytest.param(name, dt, id=f"{name}-{dt}",
                      marks=() if dt == "float64" else pytest.mark.slow)
         for name in MODELS for dt in ("float64", "float32")]


def _check(name: str, dtype: str) -> Any:
    torch.manual_seed(0)
    model = LogitsOf(MODELS[name]())
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (2, 6))
    target = rng.standard_normal((2, 3) if name == "bert" else (2, 6, VOCAB))
    # Llama computes RMSNorm and the rotary embedding in float32 whatever the model's dtype
    tol = OVERRIDES["float64_computed_in_float32"] if (name, dtype) == ("llama", "float64") \
        else {}
    return parity_table(model, ids, target, loss="MSELoss", optimizer=("AdamW", {"lr": 1e-2}),
                        steps=3, dtype=dtype, **tol)


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_transformers_model_trains_as_torch(name: str, dtype: str) -> None:
    table = _check(name, dtype)
    assert table.passed.all(), table[~table.passed][["step", "tensor", "max_rel", "tol_ratio"]]
    assert set(table.step) == {1, 2, 3}
    assert table.model.iloc[0].startswith("GraphModel(name='LogitsOf'")
    params = set(table.tensor[table.kind == "param"])
    if name == "gpt2":  # the output projection is the token embedding: one parameter
        assert "param:model.transformer.wte.weight" in params
        assert "param:model.lm_head.weight" not in params
    if name == "bert":
        assert "param:model.classifier.weight" in params


DROPOUT_CASES = [pytest.param(name, impl, id=f"{name}-{impl}",
                              marks=() if (name, impl) == ("llama", "sdpa") else pytest.mark.slow)
                 for name in ("llama", "bert") for impl in ("eager", "sdpa")]


@pytest.mark.parametrize(("name", "impl"), DROPOUT_CASES)
def test_attention_dropout_in_the_models_code_uses_torchs_masks(name: str, impl: str) -> None:
    """``transformers`` drops attention weights with ``F.dropout`` in its own code (eager) or
    inside ``F.scaled_dot_product_attention(dropout_p=...)`` (sdpa): the masks torch draws are
    read from those calls and fed to the graph's nodes."""
    torch.manual_seed(0)
    config = {"llama": (transformers.LlamaConfig, {
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 16,
        "attention_dropout": 0.2, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}),
        "bert": (transformers.BertConfig, {
            "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 16, "max_position_embeddings": 16, "num_labels": 3,
            "pad_token_id": 0, "attention_probs_dropout_prob": 0.2})}[name]
    cls = (transformers.LlamaForCausalLM if name == "llama"
           else transformers.BertForSequenceClassification)
    model = LogitsOf(cls(config[0](vocab_size=VOCAB, attn_implementation=impl, **config[1])))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (2, 6))
    target = rng.standard_normal((2, 3) if name == "bert" else (2, 6, VOCAB))
    tol = OVERRIDES["float64_computed_in_float32"] if name == "llama" else {}
    graph = from_torch(model, example_inputs=(torch.from_numpy(ids),))
    with record_masks() as drawn:
        graph(ids)
    assert len(drawn.masks) == (8 if name == "bert" else 2)  # BERT: also its nn.Dropout ones
    attention = [m for m in drawn.masks if m.shape == (2, 2, 6, 6)]
    assert len(attention) == 2 and all(0 < m.mean() < 1 for m in attention)
    table = parity_table(model, ids, target, loss="MSELoss",
                         optimizer=("AdamW", {"lr": 1e-2}), steps=3, **tol)
    assert table.passed.all(), table[~table.passed][["step", "tensor", "max_rel", "tol_ratio"]]
