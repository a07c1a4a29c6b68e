"""Unit tests of TransformerDecoderLayer, TransformerDecoder and Transformer (no torch):
finite differences of every gradient through PairProbe, the causal-mask detection, torch's
state_dict keys and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.transformer import detect_is_causal, square_subsequent_mask

L = 4
CAUSAL = square_subsequent_mask(L).tolist()
KPM = [[False] * L, [False, False, True, True]]


def _tf(**kw: Any) -> dict[str, Any]:
    return {"d_model": 4, "nhead": 2, "dim_feedforward": 6, "dropout": 0.0,
            "batch_first": True, **kw}


@pytest.mark.parametrize("op,options,kwargs", [
    ("TransformerDecoderLayer", _tf(), {}),
    ("TransformerDecoderLayer", _tf(norm_first=True, activation="gelu"),
     {"tgt_mask": CAUSAL, "tgt_is_causal": True, "memory_key_padding_mask": KPM}),
    ("Transformer", _tf(num_encoder_layers=1, num_decoder_layers=2),
     {"tgt_mask": CAUSAL, "src_key_padding_mask": KPM}),
], ids=["layer-post", "layer-pre-masks", "transformer"])
def test_finite_differences(op: str, options: dict[str, Any], kwargs: dict[str, Any]) -> None:
    probe = nn.PairProbe(op, 4, options, kwargs, generator=np.random.default_rng(0))
    res = check_module(probe, np.random.default_rng(1).standard_normal((2, L, 8)))
    assert res.passed, res


def test_decoder_stack_sums_the_memory_gradient_of_every_layer() -> None:
    rng = np.random.default_rng(2)
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, generator=rng)
    stack = nn.TransformerDecoder(layer, 2)
    tgt, mem = rng.standard_normal((3, 2, 4)), rng.standard_normal((5, 2, 4))
    g = rng.standard_normal((3, 2, 4))
    stack(tgt, mem)
    _, dmem = stack.backward(g)
    # the same computation layer by layer
    first, second = stack.layers
    h = first(tgt, mem)
    second(h, mem)
    gh, dm2 = second.backward(g)
    first(tgt, mem)
    _, dm1 = first.backward(gh)
    np.testing.assert_allclose(dmem, dm1 + dm2, rtol=1e-13, atol=1e-15)


def test_causal_detection_as_torch() -> None:
    causal = square_subsequent_mask(3)
    assert detect_is_causal(causal, None, 3)
    assert detect_is_causal(np.triu(np.ones((3, 3), bool), 1), None, 3)  # bool: True above
    assert not detect_is_causal(causal, False, 3)
    assert not detect_is_causal(causal, None, 4)  # not the target's length
    assert not detect_is_causal(np.zeros((3, 3)), None, 3)
    assert detect_is_causal(None, True) and not detect_is_causal(None, None)


def test_state_dict_keys_are_torchs() -> None:
    layer = nn.TransformerDecoderLayer(4, 2, 6)
    assert list(layer.state_dict())[:6] == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "multihead_attn.in_proj_weight",
        "multihead_attn.in_proj_bias"]
    assert list(layer.state_dict())[-6:] == ["norm1.weight", "norm1.bias", "norm2.weight",
                                             "norm2.bias", "norm3.weight", "norm3.bias"]
    tf = nn.Transformer(4, 2, 1, 1, 6)
    keys = list(tf.state_dict())
    assert keys[0] == "encoder.layers.0.self_attn.in_proj_weight"
    assert keys[-2:] == ["decoder.norm.weight", "decoder.norm.bias"]


def test_errors() -> None:
    with pytest.raises(ValueError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerDecoderLayer(4, 2, activation="tanh")
    with pytest.raises(TypeError, match="decoder_layer must be a refbp TransformerDecoderLayer"):
        nn.TransformerDecoder(nn.Linear(2, 2), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 6), 0)
    tf = nn.Transformer(4, 2, 1, 1, 6)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        tf(np.ones((3, 2, 4)), np.ones((3, 5, 4)))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal "
                                           "to d_model"):
        tf(np.ones((3, 2, 4)), np.ones((3, 2, 5)))
