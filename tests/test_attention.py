"""Unit tests of softmax attention and MultiheadAttention (no torch).

Hand values (uniform attention, causal first row, masked keys), finite differences of every
gradient for each option family, the two torch conventions for a query that may attend to
nothing, parameter names and layouts, and torch's errors.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_function, check_module
from refbp.metrics import discrepancy
from refbp.nn.dropout import feed_masks, record_masks
from refbp.nn.functional_attention import (
    attention_backward,
    scaled_dot_product_attention,
    sdpa_forward,
)
from refbp.nn.module import Module, Parameter
from refbp.tolerances import tolerance_for

RNG = np.random.default_rng(0)


def _qkv(*shapes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# -- scaled_dot_product_attention ---------------------------------------------------------
def test_zero_queries_average_the_values() -> None:
    q, k, v = _qkv((2, 3, 4), (2, 5, 4), (2, 5, 6))
    out = scaled_dot_product_attention(np.zeros_like(q), k, v)
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(axis=1, keepdims=True), out.shape),
                               rtol=1e-15, atol=1e-15)


def test_causal_first_query_sees_only_the_first_key() -> None:
    q, k, v = _qkv((4, 4), (4, 4), (4, 3))
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_array_equal(out[0], v[0])


def test_bool_mask_true_means_allowed_and_equals_minus_inf_float_mask() -> None:
    q, k, v = _qkv((3, 4), (5, 4), (5, 2))
    allowed = np.array([[1, 1, 0, 0, 1]] * 3, dtype=bool)
    additive = np.where(allowed, 0.0, -np.inf)
    a = scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    b = scaled_dot_product_attention(q, k, v, attn_mask=additive)
    c = scaled_dot_product_attention(q, k[allowed[0]], v[allowed[0]])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-14, atol=1e-15)


def test_a_query_that_may_attend_to_nothing_gives_zero_and_zero_gradients() -> None:
    q, k, v = _qkv((3, 4), (5, 4), (5, 2))
    allowed = np.ones((3, 5), dtype=bool)
    allowed[1] = False
    out, cache = sdpa_forward(q, k, v, attn_mask=allowed)
    assert np.all(out[1] == 0) and np.all(np.isfinite(out))
    dq, dk, dv = attention_backward(np.ones_like(out), cache)
    assert np.all(dq[1] == 0) and np.all(np.isfinite(dk)) and np.all(np.isfinite(dv))


def test_dropout_mask_scales_the_kept_weights() -> None:
    q, k, v = _qkv((3, 4), (5, 4), (5, 2))
    keep = RNG.uniform(size=(3, 5)) > 0.3
    out, cache = sdpa_forward(q, k, v, dropout_p=0.25, dropout_mask=keep)
    np.testing.assert_allclose(cache.pd, cache.p * keep / 0.75, rtol=1e-15)
    np.testing.assert_allclose(out, cache.pd @ v, rtol=1e-15)


SDPA_CASES: list[dict[str, Any]] = [
    {},
    {"is_causal": True},
    {"attn_mask": np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)},
    {"attn_mask": np.random.default_rng(3).standard_normal((2, 1, 3, 5))},
    {"scale": 0.7},
    {"dropout_p": 0.4, "dropout_mask": np.random.default_rng(4).uniform(size=(3, 5)) > 0.4},
]


@pytest.mark.parametrize("kwargs", SDPA_CASES, ids=lambda kw: ",".join(kw) or "plain")
@pytest.mark.parametrize("which", [0, 1, 2])
def test_sdpa_gradients_match_finite_differences(kwargs: dict[str, Any], which: int) -> None:
    q, k, v = _qkv((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), seed=1)
    r = np.random.default_rng(2).standard_normal((2, 2, 3, 3))
    out, cache = sdpa_forward(q, k, v, **kwargs)
    grads = attention_backward(r, cache)

    def objective(x: np.ndarray) -> float:
        a = [q, k, v]
        a[which] = x
        return float(np.sum(scaled_dot_product_attention(a[0], a[1], a[2], **kwargs) * r))

    res = check_function(objective, (q, k, v)[which], grads[which])
    assert res.passed, str(res)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"is_causal": True, "attn_mask": np.ones((3, 5), bool)}, ValueError, "is_causal"),
    ({"attn_mask": np.ones((3, 5), np.int64)}, TypeError, "only bool and floating"),
    ({"attn_mask": np.ones((4, 5), bool)}, ValueError, "not broadcastable"),
    ({"dropout_p": 0.5}, ValueError, "dropout_mask"),
    ({"dropout_p": 1.5}, ValueError, r"dropout_p must be in \[0, 1\]"),
])
def test_sdpa_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    q, k, v = _qkv((3, 4), (5, 4), (5, 2))
    with pytest.raises(error, match=match):
        scaled_dot_product_attention(q, k, v, **kwargs)


def test_sdpa_shape_and_dtype_errors() -> None:
    q, k, v = _qkv((3, 4), (5, 4), (5, 2))
    with pytest.raises(TypeError, match="same dtype"):
        scaled_dot_product_attention(q.astype(np.float32), k, v)
    with pytest.raises(ValueError, match="same last dimension"):
        scaled_dot_product_attention(q[:, :3], k, v)
    with pytest.raises(ValueError, match="same sequence length"):
        scaled_dot_product_attention(q, k, v[:4])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="same batch dimensions"):
        scaled_dot_product_attention(q[None], k, v)


# -- MultiheadAttention -------------------------------------------------------------------
class Attend(Module):
    """Test wrapper: x -> mha(x[..., :E], x[..., :kdim], x[..., :vdim], **kw)[0] (+ weights).

    The three slices overlap, so d x is the sum of the three input gradients (padded).
    """

    def __init__(self, mha: nn.MultiheadAttention, weights_grad: Any = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.mha = mha
        self.kwargs = kwargs
        self.weights_grad = weights_grad

    def forward(self, x: np.ndarray) -> np.ndarray:
        m = self.mha
        self.shape = x.shape
        out, w = m(x[..., :m.embed_dim], x[..., :m.kdim], x[..., :m.vdim], **self.kwargs)
        if self.weights_grad is not None:
            self.extra = float(np.sum(w * self.weights_grad))
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        grads = self.mha.backward(g, self.weights_grad)
        gx = np.zeros(self.shape)
        for d in grads:
            gx[..., :d.shape[-1]] += d
        return gx


M = TypeVar("M", bound=Module)


def _random_params(m: M, seed: int) -> M:
    rng = np.random.default_rng(seed)
    for p in m.parameters():
        p.data[...] = 0.5 * rng.standard_normal(p.shape)
    return m


MHA_CASES: list[tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]] = [
    ({}, {}, (4, 2, 8)),
    ({"batch_first": True}, {"need_weights": False}, (2, 4, 8)),
    ({"bias": False}, {"average_attn_weights": False}, (4, 8)),
    ({"kdim": 5, "vdim": 3}, {}, (4, 2, 8)),
    ({}, {"key_padding_mask": np.array([[0, 0, 1, 1], [0, 0, 0, 1]], bool)}, (4, 2, 8)),
    ({}, {"attn_mask": np.triu(np.ones((4, 4), bool), 1)}, (4, 2, 8)),
    ({}, {"attn_mask": np.random.default_rng(5).standard_normal((4, 4, 4))}, (4, 2, 8)),
    ({"batch_first": True}, {"attn_mask": np.triu(np.full((4, 4), -np.inf), 1),
                             "is_causal": True, "need_weights": False}, (2, 4, 8)),
    ({"add_bias_kv": True}, {}, (4, 2, 8)),
    ({"add_zero_attn": True, "batch_first": True}, {"need_weights": False}, (2, 4, 8)),
    ({"add_bias_kv": True, "add_zero_attn": True, "kdim": 5, "vdim": 3},
     {"key_padding_mask": np.array([[1, 1, 1, 1], [0, 0, 0, 1]], bool)}, (4, 2, 8)),
    ({"add_bias_kv": True, "add_zero_attn": True, "bias": False},
     {"attn_mask": np.random.default_rng(5).standard_normal((2, 4, 4)),
      "average_attn_weights": False}, (4, 8)),
    ({"add_bias_kv": True, "add_zero_attn": True},
     {"attn_mask": np.triu(np.ones((4, 4), bool), 1), "need_weights": False}, (4, 2, 8)),
]


@pytest.mark.parametrize("ctor,call,shape", MHA_CASES)
def test_mha_gradients_match_finite_differences(ctor: dict[str, Any], call: dict[str, Any],
                                                shape: tuple[int, ...]) -> None:
    mha = _random_params(nn.MultiheadAttention(8, 2, **ctor), 1)
    x = np.random.default_rng(2).standard_normal(shape)
    res = check_module(Attend(mha, **call), x, seed=3)
    assert res.passed, str(res)


def test_mha_gradient_of_the_returned_weights() -> None:
    mha = _random_params(nn.MultiheadAttention(8, 2), 1)
    x = np.random.default_rng(2).standard_normal((4, 2, 8))
    gw = np.random.default_rng(6).standard_normal((2, 4, 4))
    wrapper = Attend(mha, weights_grad=gw)
    out = wrapper(x)
    mha.zero_grad()
    analytic = wrapper.backward(np.zeros_like(out))

    def objective(z: np.ndarray) -> float:
        wrapper(z)
        return wrapper.extra

    res = check_function(objective, x, analytic)
    assert res.passed, str(res)


def test_mha_gradient_of_the_returned_weights_with_appended_keys() -> None:
    mha = _random_params(nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True), 1)
    x = np.random.default_rng(2).standard_normal((4, 2, 8))
    gw = np.random.default_rng(6).standard_normal((2, 2, 4, 6))
    wrapper = Attend(mha, weights_grad=gw, average_attn_weights=False)
    out = wrapper(x)
    mha.zero_grad()
    analytic = wrapper.backward(np.zeros_like(out))
    bias_k_grad = cast(Parameter, mha.bias_k).grad

    def objective(z: np.ndarray) -> float:
        wrapper(z)
        return wrapper.extra

    res = check_function(objective, x, analytic)
    assert res.passed, str(res)
    bias_k = cast(Parameter, mha.bias_k)

    def of_bias_k(b: np.ndarray) -> float:
        bias_k.data[...] = b
        wrapper(x)
        return wrapper.extra

    res = check_function(of_bias_k, bias_k.data.copy(), bias_k_grad)
    assert res.passed, str(res)


def test_mha_parameters_follow_torch_names_and_layouts() -> None:
    m = nn.MultiheadAttention(8, 2)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)),
        ("out_proj.bias", (8,))]
    sep = nn.MultiheadAttention(8, 4, kdim=5, vdim=3, bias=False)
    assert [(n, p.shape) for n, p in sep.named_parameters()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 5)), ("v_proj_weight", (8, 3)),
        ("out_proj.weight", (8, 8))]
    assert m.in_proj_bias is not None and np.all(m.in_proj_bias.data == 0)
    assert m.out_proj.bias is not None and np.all(m.out_proj.bias.data == 0)
    bound = np.sqrt(6.0 / (8 + 24))  # xavier_uniform_ on (3E, E)
    assert 0 < np.abs(m.in_proj_weight.data).max() <= bound


def test_mha_appended_keys_follow_torch_names_layouts_and_init() -> None:
    m = nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("bias_k", (1, 1, 8)),
        ("bias_v", (1, 1, 8)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert list(m.state_dict()) == [n for n, _ in m.named_parameters()]
    assert nn.MultiheadAttention(8, 2).bias_k is None
    # xavier_normal_ on (1, 1, E): fan_in = fan_out = E, std = sqrt(2 / 2E); with 4096
    # draws the sample std is within 5 % of it (its relative spread is 1 / sqrt(2 n) = 1.1 %)
    big = nn.MultiheadAttention(4096, 1, add_bias_kv=True,
                                generator=np.random.default_rng(0))
    for p in (big.bias_k, big.bias_v):
        assert p is not None
        assert abs(p.data.std() / np.sqrt(1 / 4096) - 1) < 0.05
    assert not np.array_equal(cast(Parameter, big.bias_k).data,
                              cast(Parameter, big.bias_v).data)


def _identity_projections(m: nn.MultiheadAttention) -> nn.MultiheadAttention:
    """Zero in-projections, identity out_proj, zero biases; bias_k = 0, bias_v = 1..E."""
    e = m.embed_dim
    m.in_proj_weight.data[...] = 0
    cast(Parameter, m.in_proj_bias).data[...] = 0
    m.out_proj.weight.data[...] = np.eye(e)
    cast(Parameter, m.out_proj.bias).data[...] = 0
    if m.bias_k is not None and m.bias_v is not None:
        m.bias_k.data[...] = 0
        m.bias_v.data[...] = np.arange(1, e + 1)
    return m


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_appended_keys_are_attended_like_the_others(bias_kv: bool, zero_attn: bool) -> None:
    """All scores 0 (zero projections): uniform weights over S keys + the appended ones, and
    the output is the mean of the values: 0 for the S projected values and the zero value,
    ``b_v`` for the bias row."""
    m = _identity_projections(nn.MultiheadAttention(4, 2, add_bias_kv=bias_kv,
                                                    add_zero_attn=zero_attn))
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    out, w = m(x, x, x)
    total = 5 + bias_kv + zero_attn
    assert w is not None and w.shape == (3, 5, total)
    np.testing.assert_array_equal(w, np.full(w.shape, 1 / total))
    expected = np.arange(1.0, 5.0) / total if bias_kv else np.zeros(4)
    # one nonzero product (1/total) * b_v per entry: two roundings at most, 2 eps < 1e-15
    np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), rtol=1e-15)


def test_a_query_with_every_key_masked_attends_to_the_appended_keys() -> None:
    """No NaN with need_weights=True: the appended keys' mask columns are 0 (allowed)."""
    m = _random_params(nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True), 0)
    x = np.random.default_rng(1).standard_normal((3, 2, 4))
    kpm = np.array([[True] * 3, [False] * 3])
    out, w = m(x, x, x, key_padding_mask=kpm, average_attn_weights=False)
    assert w is not None and np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    assert np.all(w[0, :, :, :3] == 0)
    np.testing.assert_allclose(w[0].sum(axis=-1), 1.0, rtol=1e-15)
    out_sdpa, _ = m(x, x, x, key_padding_mask=kpm, need_weights=False)
    d = discrepancy(out_sdpa, out, tolerance_for(np.float64))  # safe softmax: same rows
    assert d.passed, str(d)


def test_causal_hint_masks_the_appended_keys_as_torch_does() -> None:
    """With the is_causal hint on the SDPA path torch's causal mask is tril(L, S + 2): for
    L = S the appended keys are masked for every query, so the output is the one without
    them and bias_k, bias_v get exactly zero gradients."""
    ext = _random_params(nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True), 0)
    plain = nn.MultiheadAttention(4, 2)
    plain.load_state_dict({k: v for k, v in ext.state_dict().items()
                           if k not in ("bias_k", "bias_v")})
    x = np.random.default_rng(1).standard_normal((5, 2, 4))
    causal = np.triu(np.full((5, 5), -np.inf), 1)
    hint = {"attn_mask": causal, "is_causal": True, "need_weights": False}
    out, _ = ext(x, x, x, **hint)
    ref, _ = plain(x, x, x, **hint)
    tol = tolerance_for(np.float64)
    d = discrepancy(out, ref, tol)
    assert d.passed, str(d)
    ext.backward(np.random.default_rng(2).standard_normal(out.shape))
    assert np.all(cast(Parameter, ext.bias_k).grad == 0)
    assert np.all(cast(Parameter, ext.bias_v).grad == 0)
    # without the hint (or with the weights) the padded float mask allows them
    full, _ = ext(x, x, x, attn_mask=causal, need_weights=False)
    assert not discrepancy(full, ref, tol).passed


def test_dropout_mask_spans_the_appended_keys() -> None:
    m = nn.MultiheadAttention(4, 2, dropout=0.5, add_bias_kv=True, add_zero_attn=True)
    x = np.zeros((3, 2, 4))
    with record_masks() as rec:
        m(x, x, x)
    assert [mk.shape for mk in rec.masks] == [(2, 2, 3, 5)]


def test_key_padding_mask_error_counts_the_appended_keys_as_torch() -> None:
    m = nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)
    x = np.zeros((4, 2, 8))
    with pytest.raises(ValueError, match=r"shape\[1\] to be 6, but got 7"):
        m(x, x, x, key_padding_mask=np.zeros((2, 5), bool))


def test_mha_shapes_of_outputs_and_weights() -> None:
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    q = np.zeros((3, 4, 8))
    kv = np.zeros((3, 6, 8))
    out, w = m(q, kv, kv)
    assert out.shape == (3, 4, 8) and w.shape == (3, 4, 6)
    out, w = m(q, kv, kv, average_attn_weights=False)
    assert w.shape == (3, 2, 4, 6)
    out, w = m(q[0], kv[0], kv[0])
    assert out.shape == (4, 8) and w.shape == (4, 6)
    assert m(q, kv, kv, need_weights=False)[1] is None


def test_fully_masked_query_nan_with_weights_zero_without() -> None:
    m = _random_params(nn.MultiheadAttention(4, 2), 0)
    x = np.random.default_rng(1).standard_normal((3, 1, 4))
    mask = np.zeros((3, 3), bool)
    mask[1] = True
    out, _ = m(x, x, x, attn_mask=mask)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))
    out, _ = m(x, x, x, attn_mask=mask, need_weights=False)
    np.testing.assert_array_equal(out[1, 0], cast(Parameter, m.out_proj.bias).data)


@pytest.mark.parametrize("call,error,match", [
    ({"query": np.zeros((2, 3, 4, 8))}, ValueError, "unbatched 2D or batched 3D"),
    ({"key": np.zeros((5, 8))}, ValueError, "expected `key` and `value` to be 3-D"),
    ({"key_padding_mask": np.zeros((2, 6), bool)}, ValueError, "key_padded_mask.shape"),
    ({"key_padding_mask": np.zeros((2, 5, 1), bool)}, ValueError, "`key_padding_mask` to be"),
    ({"attn_mask": np.zeros((4, 4), bool)}, ValueError, "2D attn_mask .* should be"),
    ({"attn_mask": np.zeros((2, 4, 5), bool)}, ValueError, "3D attn_mask .* should be"),
    ({"attn_mask": np.zeros((4, 5), np.int32)}, TypeError, "only bool and floating"),
    ({"is_causal": True}, ValueError, "Need attn_mask"),
    ({"query": np.zeros((4, 2, 6))}, ValueError, "embedding dimension of 8, but got 6"),
    ({"query": np.zeros((4, 2, 8), np.float32)}, TypeError, "does not match the parameter"),
])
def test_mha_errors(call: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"query": np.zeros((4, 2, 8)), "key": np.zeros((5, 2, 8)),
                            "value": np.zeros((5, 2, 8))}
    args.update(call)
    with pytest.raises(error, match=match):
        nn.MultiheadAttention(8, 2)(**args)


def test_mha_constructor_errors() -> None:
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 1)


def test_mha_warns_for_mismatched_mask_types_as_torch() -> None:
    m = nn.MultiheadAttention(4, 1)
    x = np.zeros((3, 1, 4))
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        m(x, x, x, key_padding_mask=np.zeros((1, 3), bool), attn_mask=np.zeros((3, 3)))


def test_mha_dropout_uses_the_shared_mask_mechanism() -> None:
    m = _random_params(nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True), 0)
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    m.eval()
    _, plain = m(x, x, x, average_attn_weights=False)
    m.train()
    keep = np.ones((2, 2, 3, 3), dtype=bool)
    keep[0, 1, 2, 0] = False
    with feed_masks([keep]) as feed:
        _, dropped = m(x, x, x, average_attn_weights=False)
    assert feed.used == 1
    np.testing.assert_array_equal(dropped, plain * keep * 2.0)
    with record_masks() as rec:  # no feed: refbp draws its own mask of the same shape
        m(x, x, x)
    assert [mk.shape for mk in rec.masks] == [(2, 2, 3, 3)]
    m.eval()
    with record_masks() as rec:
        m(x, x, x)
    assert rec.masks == []
