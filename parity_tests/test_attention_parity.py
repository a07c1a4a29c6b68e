"""Attention vs torch: scaled_dot_product_attention, MultiheadAttention, conversions, errors.

Every option family runs in float64 and float32 with seeded random weights, inputs and
upstream gradients (of the output and, with ``need_weights``, of the returned weights); the
output, the weights, the query/key/value gradients and every parameter gradient must agree
within the tolerance of the dtype.

One gradient is compared against a bound instead of against torch: the key block of
``in_proj_bias``. Adding a vector b to every key adds ``q . b`` to every score of a query
row, which softmax ignores, so ``dL/db_k = sum_l q_l sum_j dS_lj = 0`` exactly (each row of
the softmax VJP ``dS = P (dP - sum(P dP))`` sums to zero). Both sides compute a rounding
residue of that zero, of either sign; each must stay below the derived bound
``(S L N + 2 S) eps c sum_{n,l} |q_l| sum_j (|dS_lj| + P_lj |dP_lj|)`` (c the softmax scale)
rather than match the other. Keys appended by ``add_bias_kv``/``add_zero_attn`` do not get
b, so when they are attended the block is an ordinary gradient, compared with torch's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refbp import nn
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.mirror.dropout import DropoutMaskTap, step_generator
from refbp.nn.dropout import feed_masks
from refbp.nn.functional_attention import attention_backward, sdpa_forward
from refbp.tolerances import OVERRIDES, Tolerance, tolerance_for

pytestmark = pytest.mark.parity

DTYPES = [np.float64, np.float32]
TORCH = {np.float64: torch.float64, np.float32: torch.float32}


def _tol(dtype: type) -> Tolerance:
    """The dtype's tolerance; float32 with the stated attention exception of OVERRIDES."""
    tol = tolerance_for(dtype)
    if dtype == np.float32:
        tol = replace(tol, **OVERRIDES["float32_attention"])
    return tol


def _t(a: Any) -> Any:
    return torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a


def _check(results: dict[str, Discrepancy]) -> None:
    bad = {k: str(d) for k, d in results.items() if not d.passed}
    assert not bad, bad


# -- scaled_dot_product_attention ---------------------------------------------------------
SDPA_CASES: list[dict[str, Any]] = [
    {},
    {"is_causal": True},
    {"scale": 0.3},
    {"attn_mask": np.random.default_rng(1).uniform(size=(4, 6)) > 0.4},
    {"attn_mask": np.random.default_rng(2).standard_normal((2, 1, 4, 6))},
    {"attn_mask": np.array([[True] * 6, [False] * 6, [True] * 6, [False, True] * 3])},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", SDPA_CASES, ids=lambda kw: ",".join(kw) or "plain")
def test_sdpa_matches_torch(kwargs: dict[str, Any], dtype: type) -> None:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in
               ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)))
    kw = {n: (a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a)
          for n, a in kwargs.items()}
    out, cache = sdpa_forward(q, k, v, **kw)
    g = rng.standard_normal(out.shape).astype(dtype)
    grads = attention_backward(g, cache)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = F.scaled_dot_product_attention(tq, tk, tv, **{n: _t(a) for n, a in kw.items()})
    tout.backward(torch.from_numpy(g))
    tol = _tol(dtype)
    res = {"output": discrepancy(out, tout.detach().numpy(), tol)}
    for name, mine, t in zip(("q", "k", "v"), grads, (tq, tk, tv), strict=True):
        res[f"grad_{name}"] = discrepancy(mine, t.grad.numpy(), tol)
    _check(res)


# -- MultiheadAttention -------------------------------------------------------------------
E = 8
KPM = np.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1]], dtype=bool)
CAUSAL = np.triu(np.full((5, 5), -np.inf), 1)
MHA_CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[tuple[int, ...], ...]]] = [
    ("default", {}, {}, ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("batch_first-no-weights", {"batch_first": True}, {"need_weights": False},
     ((3, 5, E), (3, 6, E), (3, 6, E))),
    ("kdim-vdim-per-head", {"kdim": 5, "vdim": 3, "num_heads": 4},
     {"average_attn_weights": False}, ((5, 3, E), (6, 3, 5), (6, 3, 3))),
    ("no-bias-unbatched", {"bias": False}, {}, ((5, E), (6, E), (6, E))),
    ("key-padding", {}, {"key_padding_mask": KPM}, ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("bool-masks", {}, {"key_padding_mask": KPM,
                        "attn_mask": np.random.default_rng(1).uniform(size=(5, 6)) > 0.7},
     ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("float-3d-mask-no-weights", {}, {"need_weights": False,
                                      "attn_mask": np.random.default_rng(1).standard_normal(
                                          (6, 5, 6))}, ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("causal-hint", {"batch_first": True}, {"attn_mask": CAUSAL, "is_causal": True,
                                            "need_weights": False},
     ((3, 5, E), (3, 5, E), (3, 5, E))),
    ("causal-with-weights", {"batch_first": True}, {"attn_mask": CAUSAL},
     ((3, 5, E), (3, 5, E), (3, 5, E))),
    ("bias-kv", {"add_bias_kv": True}, {}, ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("zero-attn-no-weights", {"add_zero_attn": True, "batch_first": True},
     {"need_weights": False}, ((3, 5, E), (3, 6, E), (3, 6, E))),
    ("bias-kv-zero-attn-masks-per-head", {"add_bias_kv": True, "add_zero_attn": True},
     {"key_padding_mask": KPM, "attn_mask": np.random.default_rng(1).uniform(size=(5, 6)) > 0.7,
      "average_attn_weights": False}, ((5, 3, E), (6, 3, E), (6, 3, E))),
    ("bias-kv-zero-attn-kdim-vdim-no-bias", {"add_bias_kv": True, "add_zero_attn": True,
                                             "kdim": 5, "vdim": 3, "bias": False},
     {"key_padding_mask": KPM, "need_weights": False}, ((5, 3, E), (6, 3, 5), (6, 3, 3))),
    ("bias-kv-zero-attn-unbatched-3d-mask", {"add_bias_kv": True, "add_zero_attn": True},
     {"attn_mask": np.random.default_rng(2).standard_normal((2, 5, 6))},
     ((5, E), (6, E), (6, E))),
    ("bias-kv-zero-attn-causal-hint", {"add_bias_kv": True, "add_zero_attn": True,
                                       "batch_first": True},
     {"attn_mask": CAUSAL, "is_causal": True, "need_weights": False},
     ((3, 5, E), (3, 5, E), (3, 5, E))),
    ("bias-kv-zero-attn-causal-with-weights", {"add_bias_kv": True, "add_zero_attn": True,
                                               "batch_first": True}, {"attn_mask": CAUSAL},
     ((3, 5, E), (3, 5, E), (3, 5, E))),
]


def _appended_keys_attended(t: torch.nn.MultiheadAttention, call: dict[str, Any]) -> bool:
    """Whether keys appended by add_bias_kv/add_zero_attn take part in the softmax.

    They do unless torch hands the is_causal hint on to SDPA (no key padding mask, no
    weights), whose causal mask over the extended keys masks them for every query here.
    """
    appended = t.bias_k is not None or t.add_zero_attn
    hint = (call.get("is_causal", False) and call.get("key_padding_mask") is None
            and not call.get("need_weights", True))
    return appended and not hint


def _key_bias_bound(t: torch.nn.MultiheadAttention, inputs: tuple[np.ndarray, ...],
                    g: np.ndarray, call: dict[str, Any], eps: float) -> np.ndarray:
    """The bound of the module docstring for the key block of ``in_proj_bias`` (float64).

    Recomputed with torch in float64 (the weights' values, seq-first unbatched inputs).
    Keys appended by add_bias_kv/add_zero_attn are masked whenever this bound applies (see
    :func:`_appended_keys_attended`), so they are left out of the recomputation.
    """
    h = t.num_heads
    with torch.no_grad():
        t64 = torch.nn.MultiheadAttention(t.embed_dim, h, bias=True, kdim=t.kdim,
                                          vdim=t.vdim, batch_first=t.batch_first).double()
        t64.load_state_dict({k: v.double() for k, v in t.state_dict().items()
                             if k not in ("bias_k", "bias_v")})
        w = t64.in_proj_weight if t64.in_proj_weight is not None else None
        e = t.embed_dim
        wq = w[:e] if w is not None else t64.q_proj_weight
        bq = t64.in_proj_bias[:e]
        q = torch.from_numpy(inputs[0].astype(np.float64)) @ wq.T + bq
        if t.batch_first and q.dim() == 3:
            q = q.transpose(0, 1)
        q = q.reshape(q.shape[0], -1, h, e // h).permute(1, 2, 0, 3)  # (N, H, L, D)
    qt, kt, vt = (torch.tensor(a.astype(np.float64)) for a in inputs)
    weights: list[torch.Tensor] = []
    hook = torch.nn.functional.softmax
    try:  # capture the attention probabilities and their gradient
        def spy(x: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
            p = hook(x, *args, **kw)
            p.retain_grad()
            weights.append(p)
            return p
        torch.nn.functional.softmax = spy  # type: ignore[assignment]
        out, _ = t64(qt, kt, vt, **{k: _t(v) for k, v in call.items()
                                    if k != "need_weights"}, need_weights=True)
    finally:
        torch.nn.functional.softmax = hook  # type: ignore[assignment]
    out.backward(torch.from_numpy(g.astype(np.float64)))
    p = weights[0].detach().reshape(q.shape[0], h, q.shape[2], -1)
    dp = weights[0].grad.reshape(p.shape)
    ds = p * (dp - (p * dp).sum(-1, keepdim=True))
    row = (ds.abs() + p * dp.abs()).sum(-1, keepdim=True)          # (N, H, L, 1)
    terms = (q.abs() * row).sum(dim=(0, 2)) / np.sqrt(e // h)      # (H, D)
    n, _, length, s = p.shape
    return ((s * length * n + 2 * s) * eps * terms).reshape(-1).numpy()


def _mha_pair(ctor: dict[str, Any], dtype: type) -> tuple[nn.MultiheadAttention, Any]:
    kw = {"embed_dim": E, "num_heads": 2, **ctor}
    t = torch.nn.MultiheadAttention(**kw).to(TORCH[dtype])
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    m = from_torch(t)
    assert isinstance(m, nn.MultiheadAttention)
    return m, t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,ctor,call,shapes", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_mha_matches_torch(name: str, ctor: dict[str, Any], call: dict[str, Any],
                           shapes: tuple[tuple[int, ...], ...], dtype: type) -> None:
    rng = np.random.default_rng(7)
    m, t = _mha_pair(ctor, dtype)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    if shapes[0] == shapes[1] == shapes[2]:
        k = v = q
    kw = {n: (a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a)
          for n, a in call.items()}
    out, w = m(q, k, v, **kw)
    g = rng.standard_normal(out.shape).astype(dtype)
    gw = None if w is None else rng.standard_normal(w.shape).astype(dtype)
    grads = m.backward(g, gw)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout, tw = t(tq, tk, tv, **{n: _t(a) for n, a in kw.items()})
    assert (w is None) == (tw is None)
    total = (tout * torch.from_numpy(g)).sum()
    if tw is not None:
        total = total + (tw * torch.from_numpy(gw)).sum()
    total.backward()
    tol = _tol(dtype)
    res = {"output": discrepancy(out, tout.detach().numpy(), tol)}
    if w is not None:
        res["weights"] = discrepancy(w, tw.detach().numpy(), tol)
    for n, mine, tt in zip("qkv", grads, (tq, tk, tv), strict=True):
        res[f"grad_{n}"] = discrepancy(mine, tt.grad.numpy(), tol)
    tparams = dict(t.named_parameters())
    for n, p in m.named_parameters():
        mine, ref = p.grad, tparams[n].grad.numpy()
        if n == "in_proj_bias" and not _appended_keys_attended(t, call):
            kb = slice(E, 2 * E)
            bound = _key_bias_bound(t, (q, k, v), g, call, float(np.finfo(dtype).eps))
            assert np.all(np.abs(mine[kb]) <= bound), (mine[kb], bound)
            assert np.all(np.abs(ref[kb]) <= bound), (ref[kb], bound)
            mine, ref = np.delete(mine, kb), np.delete(ref, kb)
        res[f"grad:{n}"] = discrepancy(mine, ref, tol)
    _check(res)


def test_fully_masked_queries_follow_both_torch_paths() -> None:
    m, t = _mha_pair({}, np.float64)
    x = np.random.default_rng(0).standard_normal((4, 2, E))
    kpm = np.array([[True] * 4, [False] * 4])
    for need in (True, False):
        out, _ = m(x, x, x, key_padding_mask=kpm, need_weights=need)
        tout, _ = t(_t(x), _t(x), _t(x), key_padding_mask=_t(kpm), need_weights=need)
        ref = tout.detach().numpy()
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        assert np.isnan(out[:, 0]).all() == need
        d = discrepancy(np.nan_to_num(out), np.nan_to_num(ref), tolerance_for(np.float64))
        assert d.passed, str(d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
def test_dropout_with_appended_keys_uses_torch_masks(need_weights: bool, dtype: type) -> None:
    """Training mode with dropout: torch's keep-mask covers the appended keys, (N, H, L,
    S + 2); refbp is fed it and agrees on the output and on every gradient."""
    t = torch.nn.MultiheadAttention(E, 2, dropout=0.3, add_bias_kv=True, add_zero_attn=True,
                                    batch_first=True).to(TORCH[dtype])
    m = from_torch(t)
    x = np.random.default_rng(0).standard_normal((3, 5, E)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    with DropoutMaskTap(t) as tap, step_generator(7):
        ty = t(tx, tx, tx, need_weights=need_weights)[0]
        masks = tap.take()
    assert [mk.shape for mk in masks] == [(3, 2, 5, 7)]
    assert 0 < int(masks[0].sum()) < masks[0].size
    with feed_masks(masks):
        y = m(x, x, x, need_weights=need_weights)[0]
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    gx = sum(m.backward(g))
    tol = _tol(dtype)
    res = {"output": discrepancy(y, ty.detach().numpy(), tol),
           "grad_input": discrepancy(gx, tx.grad.numpy(), tol)}
    tparams = dict(t.named_parameters())
    for n, p in m.named_parameters():
        res[f"grad:{n}"] = discrepancy(p.grad, tparams[n].grad.numpy(), tol)
    _check(res)


# -- conversions ---------------------------------------------------------------------------
def test_mha_converts_both_ways_with_torch_layouts() -> None:
    for kw in ({}, {"kdim": 3, "vdim": 5, "bias": False, "batch_first": True}):
        t = torch.nn.MultiheadAttention(8, 4, dropout=0.25, **kw).double()
        m = from_torch(t)
        assert list(m.state_dict()) == list(t.state_dict())
        for key, value in t.state_dict().items():
            np.testing.assert_array_equal(m.state_dict()[key], value.numpy())
        back = to_torch(m)
        assert isinstance(back, torch.nn.MultiheadAttention)
        assert (back.kdim, back.vdim, back.dropout, back.batch_first) == (
            t.kdim, t.vdim, t.dropout, t.batch_first)
        assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                      t.state_dict().values(), strict=True))


def test_mha_with_appended_keys_converts_both_ways() -> None:
    t = torch.nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True,
                                    batch_first=True).double()
    m = from_torch(t)
    assert isinstance(m, nn.MultiheadAttention) and m.add_zero_attn and m.bias_k is not None
    assert list(m.state_dict()) == list(t.state_dict())
    back = to_torch(m)
    assert isinstance(back, torch.nn.MultiheadAttention) and back.add_zero_attn
    assert back.bias_k is not None and back.bias_k.shape == (1, 1, 8)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                  t.state_dict().values(), strict=True))
    only_zero = from_torch(torch.nn.MultiheadAttention(8, 2, add_zero_attn=True))
    assert isinstance(only_zero, nn.MultiheadAttention) and only_zero.bias_k is None


def test_mha_default_init_of_bias_kv_matches_torch_in_distribution() -> None:
    """torch draws bias_k, bias_v with xavier_normal_ (std sqrt(1 / E) for (1, 1, E));
    refbp's default init draws from the same distribution (its own generator)."""
    e = 4096
    t = torch.nn.MultiheadAttention(e, 1, add_bias_kv=True)
    m = nn.MultiheadAttention(e, 1, add_bias_kv=True, generator=np.random.default_rng(0))
    for name in ("bias_k", "bias_v"):
        mine = getattr(m, name).data
        theirs = getattr(t, name).detach().numpy()
        # sample std of 4096 normals: relative spread 1 / sqrt(2 n) = 1.1 %; 5 % is 4.5 sigma
        assert abs(mine.std() * np.sqrt(e) - 1) < 0.05
        assert abs(theirs.std() * np.sqrt(e) - 1) < 0.05


# -- errors: refbp raises where torch raises, with torch's message --------------------------
ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"query": np.zeros((2, 3, 4, 8))}, "query should be unbatched 2D or batched 3D tensor"),
    ({"key": np.zeros((5, 8))}, "expected `key` and `value` to be 3-D"),
    ({"key_padding_mask": np.zeros((2, 6), bool)}, "Expected key_padded_mask.shape[1] to be 5"),
    ({"attn_mask": np.zeros((4, 4), bool)}, "The shape of the 2D attn_mask is"),
    ({"attn_mask": np.zeros((3, 4, 5), bool)}, "The shape of the 3D attn_mask is"),
    ({"attn_mask": np.zeros((4, 5), np.int32)}, "only bool and floating types of attn_mask"),
    ({"is_causal": True}, "Need attn_mask if specifying the is_causal hint"),
    ({"key_padding_mask": np.zeros((2, 6), bool), "add_bias_kv": True, "add_zero_attn": True},
     "Expected key_padded_mask.shape[1] to be 7, but got 8"),
]


@pytest.mark.parametrize("call,message", ERRORS, ids=[m for _, m in ERRORS])
def test_mha_errors_match_torch(call: dict[str, Any], message: str) -> None:
    call = dict(call)
    ctor = {k: call.pop(k) for k in ("add_bias_kv", "add_zero_attn") if k in call}
    args: dict[str, Any] = {"query": np.zeros((4, 2, 8)), "key": np.zeros((5, 2, 8)),
                            "value": np.zeros((5, 2, 8)), **call}
    m, t = _mha_pair(ctor, np.float64)
    with pytest.raises((AssertionError, RuntimeError)) as torch_err:
        t(**{k: _t(v) for k, v in args.items()})
    with pytest.raises((ValueError, TypeError)) as refbp_err:
        m(**args)
    assert message in str(torch_err.value)
    assert message in str(refbp_err.value)
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        torch.nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
