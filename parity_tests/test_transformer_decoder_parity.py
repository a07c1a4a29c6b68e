"""TransformerDecoderLayer, TransformerDecoder and Transformer vs torch: outputs, both input
gradients and every parameter gradient, with every kind of mask (causal with and without the
hint, detected causal masks, bool and float memory masks, key padding), norm_first, batch
first and unbatched inputs, dropout masks drawn by torch, and the converters.

torch runs its regular (autograd) path (the inputs require grad). Float32 uses the stated
attention exception of ``refbp.tolerances.OVERRIDES``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.mirror.dropout import DropoutMaskTap, step_generator
from refbp.nn.dropout import feed_masks
from refbp.nn.transformer import square_subsequent_mask
from refbp.tolerances import OVERRIDES, tolerance_for

pytestmark = pytest.mark.parity

D, T, S = 8, 5, 4
CAUSAL = square_subsequent_mask(T)
#: key padding of the target (N=3, T) and of the memory (N=3, S), True = padded
TGT_KPM = np.array([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=bool)
MEM_KPM = np.array([[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=bool)
MEM_MASK = np.array([[0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0]],
                    dtype=bool)

# (id, layer options, forward keyword arguments, kind: layer / stack / transformer)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("layer-post", {}, {}, "layer"),
    ("layer-pre-gelu", {"norm_first": True, "activation": "gelu"}, {}, "layer"),
    ("layer-causal-hint", {}, {"tgt_mask": CAUSAL, "tgt_is_causal": True}, "layer"),
    ("layer-masks", {"bias": False}, {"tgt_mask": np.triu(np.ones((T, T), bool), 1),
                                      "memory_mask": MEM_MASK,
                                      "tgt_key_padding_mask": TGT_KPM,
                                      "memory_key_padding_mask": MEM_KPM}, "layer"),
    ("layer-float-memory-mask", {"norm_first": True},
     {"memory_mask": np.where(MEM_MASK, -1.5, 0.25)}, "layer"),
    ("stack-detected-causal", {}, {"tgt_mask": CAUSAL}, "stack"),
    ("stack-bool-causal-pre", {"norm_first": True},
     {"tgt_mask": np.triu(np.ones((T, T), bool), 1), "memory_key_padding_mask": MEM_KPM},
     "stack"),
    ("transformer", {}, {"tgt_mask": CAUSAL, "src_key_padding_mask": MEM_KPM,
                         "memory_key_padding_mask": MEM_KPM}, "transformer"),
    ("transformer-pre-causal-src", {"norm_first": True},
     {"src_mask": square_subsequent_mask(S), "src_is_causal": True,
      "memory_mask": MEM_MASK}, "transformer"),
]


def _transformer(*args: Any, **kw: Any) -> torch.nn.Module:
    """``torch.nn.Transformer(*args, **kw)`` without its note on the inference fast path."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        return torch.nn.Transformer(*args, **kw)


def _torch_model(kind: str, ctor: dict[str, Any], dtype: torch.dtype,
                 dropout: float = 0.0, layers: int = 2) -> torch.nn.Module:
    common = {"dim_feedforward": 16, "dropout": dropout, "batch_first": True, **ctor}
    if kind == "transformer":
        model = _transformer(D, 2, layers, layers, **common)
    else:
        model = torch.nn.TransformerDecoderLayer(D, 2, **common)
        if kind == "stack":
            model = torch.nn.TransformerDecoder(model, 2, norm=torch.nn.LayerNorm(D))
    model = model.to(dtype)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():  # layers of a stack move apart; norms leave 1 and 0
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return model


def _tensor(v: Any, dtype: Any) -> Any:
    if not isinstance(v, np.ndarray):
        return v
    return torch.from_numpy(v if v.dtype == np.bool_ else v.astype(dtype))


def compare_two(t: torch.nn.Module, m: Any, a: np.ndarray, b: np.ndarray,
                kw: dict[str, Any], seed: int = 7) -> dict[str, Discrepancy]:
    """Forward of both sides on ``(a, b, **kw)`` (torch's dropout masks fed to refbp),
    backward of one upstream gradient; every input and parameter gradient compared."""
    dtype = a.dtype
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    with DropoutMaskTap(t) as tap, step_generator(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on its inference fast path
        ty = t(ta, tb, **{k: _tensor(v, dtype) for k, v in kw.items()})
        masks = tap.take()
    kw_np = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
             for k, v in kw.items()}
    with feed_masks(masks):
        y = m(a, b, **kw_np)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    ga, gb = m.backward(g)
    tol = tolerance_for(dtype)
    if dtype == np.float32:
        tol = replace(tol, **OVERRIDES["float32_attention"])
    res = {"output": discrepancy(y, ty.detach().numpy(), tol),
           "grad_input": discrepancy(ga, ta.grad.numpy(), tol),
           "grad_input.1": discrepancy(gb, tb.grad.numpy(), tol)}
    tparams = dict(t.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tparams)
    for n, p in m.named_parameters():
        res[f"grad:{n}"] = discrepancy(p.grad, tparams[n].grad.numpy(), tol)
    return res


def _inputs(kind: str, dtype: Any, batched: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    tgt, mem = rng.standard_normal((3, T, D)), rng.standard_normal((3, S, D))
    if not batched:
        tgt, mem = tgt[0], mem[0]
    # a Transformer takes (src, tgt): the memory's sequence is the source
    pair = (mem, tgt) if kind == "transformer" else (tgt, mem)
    return pair[0].astype(dtype), pair[1].astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,ctor,call,kind", CASES, ids=[c[0] for c in CASES])
def test_decoder_matches_torch(name: str, ctor: dict[str, Any], call: dict[str, Any],
                               kind: str, dtype: Any) -> None:
    t = _torch_model(kind, ctor, torch.float64 if dtype == np.float64 else torch.float32)
    res = compare_two(t, from_torch(t), *_inputs(kind, dtype), call)
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["layer", "stack", "transformer"])
def test_dropout_masks_drawn_by_torch(kind: str, dtype: Any) -> None:
    """Training with dropout: six draws per decoder layer (self- and cross-attention weights,
    dropout1..3 and the feed-forward dropout) in torch's order, four per encoder layer.

    The transformer has one encoder and one decoder layer. With two of each, float32 rounding
    grows past the attention exception's atol on some runs (one element of a weight gradient
    3e-5 apart, 0.3% of it): recomputed in float64 (refbp, the same weights and torch's
    masks), refbp's and torch's float32 gradients are equally far from the float64 values,
    each the closer one on different elements, so it is rounding on both sides, not a
    difference in the maths; a weight gradient is a sum over the tokens, and where it cancels
    its float32 error scales with the sum of the absolute terms, not with the element. No
    bound tight enough for a 2 + 2 float32 test is derived yet; float64 agrees."""
    t = _torch_model(kind, {"norm_first": kind == "stack"},
                     torch.float64 if dtype == np.float64 else torch.float32, dropout=0.25,
                     layers=1)
    m = from_torch(t)
    a, b = _inputs(kind, dtype)
    with DropoutMaskTap(t) as tap, step_generator(7), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t(torch.from_numpy(a), torch.from_numpy(b))
        draws = len(tap.take())
    assert draws == {"layer": 6, "stack": 12, "transformer": 4 + 6}[kind]
    res = compare_two(t, m, a, b, {})
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


def test_unbatched_and_sequence_first() -> None:
    t = torch.nn.TransformerDecoderLayer(D, 2, 16, dropout=0.0).double()
    res = compare_two(t, from_torch(t), *_inputs("layer", np.float64, batched=False), {})
    assert all(d.passed for d in res.values()), res
    tf = _transformer(D, 2, 1, 1, 16, dropout=0.0).double()
    src, tgt = _inputs("transformer", np.float64)
    res = compare_two(tf, from_torch(tf), src.transpose(1, 0, 2).copy(),
                      tgt.transpose(1, 0, 2).copy(), {"tgt_mask": CAUSAL})
    assert all(d.passed for d in res.values()), res


def test_transformer_converts_both_ways() -> None:
    """(The decoder layer's conversion is checked with the encoder layer's in
    test_transformer_parity.py.)"""
    tf = _torch_model("transformer", {}, torch.float64)
    mf = from_torch(tf)
    assert isinstance(mf, nn.Transformer) and isinstance(mf.decoder, nn.TransformerDecoder)
    assert mf.encoder.num_layers == 2 and mf.decoder.num_layers == 2
    backf = to_torch(mf)
    assert list(backf.state_dict()) == list(tf.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(backf.state_dict().values(),
                                                  tf.state_dict().values(), strict=True))


def test_refbp_transformer_initialises_as_torch() -> None:
    """Every weight with more than one dimension xavier_uniform_: bounded by its gain-1
    bound; state_dict keys are torch's."""
    m = nn.Transformer(8, 2, 1, 1, 16, generator=np.random.default_rng(0))
    t = _transformer(8, 2, 1, 1, 16)
    assert list(m.state_dict()) == list(t.state_dict())
    for name, p in m.named_parameters():
        if p.data.ndim > 1:
            fan_out, fan_in = p.data.shape
            assert np.abs(p.data).max() <= np.sqrt(6 / (fan_in + fan_out)), name


def test_transformer_errors_are_torchs() -> None:
    t = _transformer(8, 2, 1, 1, 16).double()
    m = from_torch(t)
    for src, tgt in (((4, 3, 8), (5, 2, 8)), ((4, 3, 8), (5, 3, 6))):
        with pytest.raises(RuntimeError) as t_err:
            t(torch.ones(src, dtype=torch.float64), torch.ones(tgt, dtype=torch.float64))
        with pytest.raises(RuntimeError) as r_err:
            m(np.ones(src), np.ones(tgt))
        assert str(r_err.value) == str(t_err.value)
