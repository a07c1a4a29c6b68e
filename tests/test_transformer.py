"""Unit tests of TransformerEncoderLayer and TransformerEncoder (no torch).

Finite differences of every gradient for each option family (post-/pre-norm, relu/gelu,
batch_first, masks, bias), torch's children and state_dict keys, the stack's deep copies and
causal-mask detection, and errors.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.module import Module
from refbp.nn.transformer import square_subsequent_mask

M = TypeVar("M", bound=Module)


def _random_params(m: M, seed: int) -> M:
    rng = np.random.default_rng(seed)
    for p in m.parameters():
        p.data[...] = 0.4 * rng.standard_normal(p.shape) + (1.0 if p.data.ndim == 1 else 0.0)
    return m


class WithMasks(Module):
    """Test wrapper: a layer or stack applied with fixed forward keyword arguments."""

    def __init__(self, inner: Module, **kwargs: Any) -> None:
        super().__init__()
        self.inner = inner
        self.kwargs = kwargs

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.inner(x, **self.kwargs)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return self.inner.backward(g)


KPM = np.array([[0, 0, 0, 1], [0, 1, 1, 1]], dtype=bool)
LAYER_CASES: list[tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]] = [
    ({}, {}, (4, 2, 6)),
    ({"norm_first": True, "activation": "gelu"}, {}, (4, 2, 6)),
    ({"batch_first": True}, {"src_key_padding_mask": KPM}, (2, 4, 6)),
    ({"batch_first": True, "norm_first": True},
     {"src_mask": square_subsequent_mask(4), "is_causal": True}, (2, 4, 6)),
    ({"bias": False, "layer_norm_eps": 1e-3}, {}, (4, 6)),
]


@pytest.mark.parametrize("ctor,call,shape", LAYER_CASES)
def test_encoder_layer_gradients_match_finite_differences(ctor: dict[str, Any],
                                                          call: dict[str, Any],
                                                          shape: tuple[int, ...]) -> None:
    layer = nn.TransformerEncoderLayer(6, 2, dim_feedforward=10, dropout=0.0, **ctor)
    x = np.random.default_rng(2).standard_normal(shape)
    res = check_module(WithMasks(_random_params(layer, 1), **call), x, seed=3)
    assert res.passed, str(res)


def test_encoder_gradients_match_finite_differences() -> None:
    layer = nn.TransformerEncoderLayer(6, 2, dim_feedforward=10, dropout=0.0, batch_first=True)
    enc = _random_params(nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(6)), 4)
    x = np.random.default_rng(2).standard_normal((2, 4, 6))
    res = check_module(WithMasks(enc, src_key_padding_mask=KPM), x, seed=3)
    assert res.passed, str(res)


def test_encoder_layer_children_and_state_dict_follow_torch() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert [n for n, _ in layer.named_children()] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"]
    assert list(layer.state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
        "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]
    assert layer.dropout_p == 0.1 and layer.activation == "relu"


def test_encoder_copies_the_layer_and_keys_its_state_like_torch() -> None:
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, bias=False)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(4))
    keys = list(enc.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-1] == "norm.bias"
    assert sum(k.startswith("layers.2.") for k in keys) == 6
    w = [enc.layers[i].linear1.weight for i in range(3)]
    np.testing.assert_array_equal(w[0].data, w[2].data)
    assert w[0] is not w[1] and w[0].data is not layer.linear1.weight.data


def test_bool_and_float_masks_agree_and_causal_mask_is_detected() -> None:
    layer = _random_params(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), 0)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = np.random.default_rng(1).standard_normal((5, 3, 4))
    causal = square_subsequent_mask(5)
    a = enc(x, mask=causal)
    b = enc(x, mask=np.isinf(causal))
    c = enc(x, mask=causal, is_causal=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, enc(x))


@pytest.mark.parametrize("build,error,match", [
    (lambda: nn.TransformerEncoderLayer(8, 2, activation="tanh"), ValueError,
     "activation should be relu/gelu, not tanh"),
    (lambda: nn.TransformerEncoderLayer(10, 3), ValueError, "divisible by num_heads"),
    (lambda: nn.TransformerEncoder(cast(Any, nn.Linear(2, 2)), 2), TypeError,
     "TransformerEncoderLayer"),
    (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2), 0), ValueError,
     "num_layers"),
])
def test_constructor_errors(build: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_is_causal_without_a_mask_is_torch_error() -> None:
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        layer(np.zeros((3, 2, 4)), is_causal=True)
