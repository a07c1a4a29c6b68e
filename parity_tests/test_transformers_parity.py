"""Hugging Face ``transformers`` models, built from tiny configs (nothing downloaded), checked
through ``torch.export``: GPT-2 (tied embeddings, Conv1D projections through ``addmm``), Llama
(RMSNorm, rotary embeddings built under ``no_grad``, grouped-query attention, SiLU gating) and
BERT for sequence classification (token type and position ids, pooler). Each trains 3 AdamW
steps on both sides (loss, logits, every gradient, parameter and optimizer state).

Dropout on the attention weights is drawn inside ``transformers``' attention function with
``torch.nn.functional.dropout`` (no ``nn.Dropout`` module whose draw refbp can read), so the
configs set the attention dropout to 0; the hidden-state dropouts are ``nn.Dropout`` modules
and run with torch's masks.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import torch

from refbp.mirror.zoo import LogitsOf
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
