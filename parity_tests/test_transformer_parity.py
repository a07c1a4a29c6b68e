"""TransformerEncoderLayer / TransformerEncoder vs torch: outputs, every gradient, conversion.

torch runs its regular (autograd) path here, as in every parity comparison: the inputs
require grad, which rules out the inference fast path (see ``refbp.nn.transformer``). Float32
uses the stated attention exception of ``refbp.tolerances.OVERRIDES``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.metrics import discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.mirror.dropout import DropoutMaskTap, step_generator
from refbp.nn.dropout import feed_masks
from refbp.nn.transformer import square_subsequent_mask
from refbp.tolerances import OVERRIDES, tolerance_for

pytestmark = pytest.mark.parity

D = 8
KPM = np.array([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=bool)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[int, ...], int]] = [
    ("post-norm", {}, {}, (5, 3, D), 0),
    ("pre-norm-gelu", {"norm_first": True, "activation": "gelu", "batch_first": True}, {},
     (3, 5, D), 0),
    ("padding", {"batch_first": True}, {"src_key_padding_mask": KPM}, (3, 5, D), 0),
    ("causal", {"batch_first": True},
     {"src_mask": square_subsequent_mask(5), "is_causal": True}, (3, 5, D), 0),
    ("bool-mask-no-bias", {"bias": False}, {"src_mask": np.triu(np.ones((5, 5), bool), 1)},
     (5, 3, D), 0),
    ("unbatched", {"layer_norm_eps": 1e-3}, {}, (5, D), 0),
    ("stack-causal", {"batch_first": True}, {"mask": square_subsequent_mask(5)}, (3, 5, D), 2),
    ("stack-pre-norm-padding", {"batch_first": True, "norm_first": True},
     {"src_key_padding_mask": KPM}, (3, 5, D), 3),
]


def _torch_model(ctor: dict[str, Any], layers: int, dtype: Any) -> torch.nn.Module:
    layer = torch.nn.TransformerEncoderLayer(D, 2, dim_feedforward=16, dropout=0.0, **ctor)
    if layers:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
            model: torch.nn.Module = torch.nn.TransformerEncoder(
                layer, layers, norm=torch.nn.LayerNorm(D))
    else:
        model = layer
    model = model.to(dtype)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return model


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,ctor,call,shape,layers", CASES, ids=[c[0] for c in CASES])
def test_encoder_matches_torch(name: str, ctor: dict[str, Any], call: dict[str, Any],
                               shape: tuple[int, ...], layers: int, dtype: type) -> None:
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    t = _torch_model(ctor, layers, tdt)
    m = from_torch(t)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    kw = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) if isinstance(v, np.ndarray)
          else v for k, v in call.items()}
    y = m(x, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = m.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = t(tx, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                  for k, v in kw.items()})
    ty.backward(torch.from_numpy(g))
    tol = tolerance_for(dtype)
    if dtype == np.float32:
        tol = replace(tol, **OVERRIDES["float32_attention"])
    res = {"output": discrepancy(y, ty.detach().numpy(), tol),
           "grad_input": discrepancy(gx, tx.grad.numpy(), tol)}
    tparams = dict(t.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tparams)
    for n, p in m.named_parameters():
        res[f"grad:{n}"] = discrepancy(p.grad, tparams[n].grad.numpy(), tol)
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad


@pytest.mark.parametrize("kind", ["Encoder", "Decoder"])
def test_encoder_and_decoder_layers_convert_both_ways(kind: str) -> None:
    t = getattr(torch.nn, f"Transformer{kind}Layer")(
        8, 4, dim_feedforward=12, dropout=0.2, activation="gelu", layer_norm_eps=1e-6,
        batch_first=True, norm_first=True, bias=False)
    m = from_torch(t)
    assert isinstance(m, getattr(nn, f"Transformer{kind}Layer"))
    assert (m.d_model, m.nhead, m.dim_feedforward, m.dropout_p, m.activation,
            m.layer_norm_eps, m.batch_first, m.norm_first, m.bias) == (
        8, 4, 12, 0.2, "gelu", 1e-6, True, True, False)
    back = to_torch(m)
    assert back.activation is torch.nn.functional.gelu and back.norm_first
    assert list(back.state_dict()) == list(t.state_dict())
    assert all(torch.equal(a, b.to(a.dtype)) for a, b in zip(back.state_dict().values(),
                                                              t.state_dict().values(),
                                                              strict=True))


def test_activation_module_converts_to_its_name() -> None:
    t = torch.nn.TransformerEncoderLayer(4, 2, 8, activation=torch.nn.GELU())
    assert from_torch(t).activation == "gelu"
    with pytest.raises(ValueError, match="supports 'relu' and 'gelu'"):
        from_torch(torch.nn.TransformerEncoderLayer(4, 2, 8, activation=torch.nn.Tanh()))


def test_encoder_converts_with_diverged_layers_and_options() -> None:
    t = _torch_model({"batch_first": True}, 2, torch.float64)
    t.enable_nested_tensor, t.mask_check = False, False
    m = from_torch(t)
    assert isinstance(m, nn.TransformerEncoder) and m.num_layers == 2
    assert not m.enable_nested_tensor and not m.mask_check
    assert list(m.state_dict()) == list(t.state_dict())
    for key, value in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[key], value.numpy())
    back = to_torch(m)
    assert isinstance(back, torch.nn.TransformerEncoder) and back.norm is not None
    assert not back.enable_nested_tensor
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                  t.state_dict().values(), strict=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["mha-weights", "mha-sdpa", "layer-post", "layer-pre", "stack"])
def test_dropout_masks_drawn_by_torch_are_used_by_refbp(kind: str, dtype: type) -> None:
    """Training mode with dropout: torch draws (attention weights, dropout, dropout1,
    dropout2), the tap reads the masks in draw order, refbp consumes them."""
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    if kind.startswith("mha"):
        t: torch.nn.Module = torch.nn.MultiheadAttention(D, 2, dropout=0.3, batch_first=True)
    else:
        layer = torch.nn.TransformerEncoderLayer(D, 2, 16, dropout=0.25, batch_first=True,
                                                 norm_first=kind == "layer-pre")
        t = layer
        if kind == "stack":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
                t = torch.nn.TransformerEncoder(layer, 2)
    t = t.to(tdt)
    m = from_torch(t)
    x = np.random.default_rng(0).standard_normal((3, 5, D)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    weights = kind == "mha-weights"
    with DropoutMaskTap(t) as tap, step_generator(7):
        ty = t(tx, tx, tx, need_weights=weights)[0] if kind.startswith("mha") else t(tx)
        masks = tap.take()
    draws = {"mha-weights": 1, "mha-sdpa": 1, "layer-post": 4, "layer-pre": 4, "stack": 8}
    assert len(masks) == draws[kind] and masks[0].shape == (3, 2, 5, 5)
    assert 0 < sum(int(mk.sum()) for mk in masks) < sum(mk.size for mk in masks)
    with feed_masks(masks):
        y = m(x, x, x, need_weights=weights)[0] if kind.startswith("mha") else m(x)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    gx = m.backward(g)
    gx = sum(gx) if isinstance(gx, tuple) else gx
    tol = tolerance_for(dtype)
    if dtype == np.float32:
        tol = replace(tol, **OVERRIDES["float32_attention"])
    res = {"output": discrepancy(y, ty.detach().numpy(), tol),
           "grad_input": discrepancy(gx, tx.grad.numpy(), tol)}
    bad = {k: str(d) for k, d in res.items() if not d.passed}
    assert not bad, bad
