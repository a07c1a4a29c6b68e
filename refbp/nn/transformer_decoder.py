r"""``TransformerDecoderLayer``, ``TransformerDecoder`` and ``Transformer`` with torch's
semantics (no torch), on the blocks of :mod:`refbp.nn.transformer` and the attention core of
:class:`~refbp.nn.attention.MultiheadAttention`.

As the encoder, these follow torch's regular (autograd) code path; torch has no fused
inference path for the decoder. Dropout masks (on both attention weights and the four
dropouts of a layer) come from the shared dropout-mask mechanism, in torch's draw order:
self-attention, ``dropout1``, cross-attention, ``dropout2``, ``dropout``, ``dropout3``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import init
from refbp.nn.attention import MultiheadAttention
from refbp.nn.dropout import Dropout
from refbp.nn.layernorm import LayerNorm
from refbp.nn.linear import Linear
from refbp.nn.module import Module
from refbp.nn.transformer import (
    TransformerEncoder,
    TransformerEncoderLayer,
    _TransformerBlocks,
    clones,
    detect_is_causal,
    seq_len,
    square_subsequent_mask,
)

Array = np.ndarray

__all__ = ["Transformer", "TransformerDecoder", "TransformerDecoderLayer"]


def _mask(mask: Any) -> Array | None:
    return None if mask is None else np.asarray(mask)


class TransformerDecoderLayer(_TransformerBlocks):
    r"""Self-attention, cross-attention on ``memory`` and feed-forward blocks, as
    ``torch.nn.TransformerDecoderLayer``.

    With ``SA(x) = dropout1(self_attn(x, x, x, tgt masks)[0])``,
    ``CA(x, m) = dropout2(multihead_attn(x, m, m, memory masks)[0])`` and
    ``FF(x) = dropout3(linear2(dropout(activation(linear1(x)))))``:

    - post-norm (default): ``h1 = norm1(x + SA(x))``, ``h2 = norm2(h1 + CA(h1, m))``,
      ``y = norm3(h2 + FF(h2))``;
    - ``norm_first=True``: ``h1 = x + SA(norm1(x))``, ``h2 = h1 + CA(norm2(h1), m)``,
      ``y = h2 + FF(norm3(h2))``.

    Backward runs the graph in reverse; each residual adds the gradient around a block to the
    one through it, and the memory's gradient is the sum of the cross-attention's key and
    value gradients. Post-norm::

        g2 = norm3.backward(g);  g2 = g2 + FF.backward(g2)
        g1 = norm2.backward(g2); dq, dm = CA.backward(g1);  g1 = g1 + dq
        gx = norm1.backward(g1); gx = gx + SA.backward(gx)

    Pre-norm::

        g2 = g + norm3.backward(FF.backward(g))
        dq, dm = CA.backward(g2);  g1 = g2 + norm2.backward(dq)
        gx = g1 + norm1.backward(SA.backward(g1))

    Parameters
    ----------
    d_model, nhead : int
    dim_feedforward : int, default 2048
    dropout : float, default 0.1
    activation : "relu" or "gelu", default "relu"
    layer_norm_eps : float, default 1e-5
    batch_first, norm_first, bias : bool, defaults False, False, True
    dtype, generator : refbp only (keyword), as ``TransformerEncoderLayer``

    Notes
    -----
    Shapes: ``tgt`` (T, N, E) and ``memory`` (S, N, E) ((N, T, E), (N, S, E) with
    ``batch_first``; unbatched (T, E), (S, E)); output like ``tgt``. ``backward`` returns
    ``(dL/dtgt, dL/dmemory)``. Masks go to the attention layers as given (torch's layer does
    not canonicalise them; ``MultiheadAttention`` does). Children and ``state_dict`` keys are
    torch's (``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1..3``).
    """

    _ff_dropout = "dropout3"

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self._activation(activation)
        kw: dict[str, Any] = {"dtype": dtype, "generator": generator}
        mha = {"dropout": dropout, "batch_first": batch_first, "bias": bias, **kw}
        self.self_attn = MultiheadAttention(d_model, nhead, **mha)
        self.multihead_attn = MultiheadAttention(d_model, nhead, **mha)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        for i in (1, 2, 3):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias,
                                                dtype=dtype))
        for i in (1, 2, 3):
            setattr(self, f"dropout{i}", Dropout(dropout, generator=generator))
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.layer_norm_eps, self.batch_first = layer_norm_eps, bool(batch_first)

    def _ca(self, x: Array, mem: Array, mask: Array | None, kpm: Array | None,
            is_causal: bool) -> Array:
        out = self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm,
                                  need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(out)

    def _ca_backward(self, g: Array) -> tuple[Array, Array]:
        dq, dk, dv = self.multihead_attn.backward(self.dropout2.backward(g))
        return dq, dk + dv

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Array:
        """Decode ``tgt`` attending to ``memory`` (see the class docstring)."""
        x, mem = np.asarray(tgt), np.asarray(memory)
        sa = (_mask(tgt_mask), _mask(tgt_key_padding_mask), bool(tgt_is_causal))
        ca = (_mask(memory_mask), _mask(memory_key_padding_mask), bool(memory_is_causal))
        if self.norm_first:
            x = x + self._sa(self.norm1(x), *sa)
            x = x + self._ca(self.norm2(x), mem, *ca)
            return x + self._ff(self.norm3(x))
        x = self.norm1(x + self._sa(x, *sa))
        x = self.norm2(x + self._ca(x, mem, *ca))
        return self.norm3(x + self._ff(x))

    def backward(self, grad_out: Any) -> tuple[Array, Array]:
        """``(dL/dtgt, dL/dmemory)``; accumulates every parameter gradient."""
        g = np.asarray(grad_out)
        if self.norm_first:
            g2 = g + self.norm3.backward(self._ff_backward(g))
            dq, dm = self._ca_backward(g2)
            g1 = g2 + self.norm2.backward(dq)
            return g1 + self.norm1.backward(self._sa_backward(g1)), dm
        g2 = self.norm3.backward(g)
        g2 = g2 + self._ff_backward(g2)
        g1 = self.norm2.backward(g2)
        dq, dm = self._ca_backward(g1)
        g1 = g1 + dq
        gx = self.norm1.backward(g1)
        return gx + self._sa_backward(gx), dm

class TransformerDecoder(Module):
    r"""A stack of ``num_layers`` copies of ``decoder_layer`` (+ ``norm``), as torch's.

    Forward: ``x_{i+1} = layers[i](x_i, memory, masks, tgt_is_causal, memory_is_causal)``,
    then ``y = norm(x_L)``; ``tgt_is_causal=None`` detects a causal ``tgt_mask`` (equal to
    :func:`~refbp.nn.transformer.square_subsequent_mask` in its dtype) as torch does.
    Backward: ``norm``, then the layers in reverse; every layer reads the same ``memory``, so
    its gradient is the sum of the layers' memory gradients. ``backward`` returns
    ``(dL/dtgt, dL/dmemory)``. Layers are deep copies (identical initial weights, as torch's
    ``_get_clones``); ``state_dict`` keys ``layers.0.self_attn.in_proj_weight``, ...,
    ``norm.weight``.
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = clones(decoder_layer, TransformerDecoderLayer, num_layers, "decoder_layer")
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Array:
        """Apply the layers in turn (then ``norm``)."""
        x = np.asarray(tgt)
        causal = detect_is_causal(tgt_mask, tgt_is_causal,
                                  seq_len(x, self.layers[0].self_attn.batch_first))
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=causal, memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)

    def backward(self, grad_out: Any) -> tuple[Array, Array]:
        """``(dL/dtgt, dL/dmemory)`` through ``norm`` and the layers in reverse."""
        g = np.asarray(grad_out)
        if self.norm is not None:
            g = self.norm.backward(g)
        last, *rest = reversed(list(self.layers))
        g, dmem = last.backward(g)
        for layer in rest:
            g, dm = layer.backward(g)
            dmem = dmem + dm
        return g, dmem

    def extra_repr(self) -> str:
        """The number of layers, shown in ``repr``."""
        return f"num_layers={self.num_layers}"


class Transformer(Module):
    r"""Encoder-decoder transformer, as ``torch.nn.Transformer``.

    Forward: ``memory = encoder(src, src_mask, src_key_padding_mask, src_is_causal)``, then
    ``y = decoder(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
    memory_key_padding_mask, tgt_is_causal, memory_is_causal)``. The encoder is a
    ``TransformerEncoder`` of ``num_encoder_layers`` layers with a final ``LayerNorm``, the
    decoder a ``TransformerDecoder`` of ``num_decoder_layers`` with one (or ``custom_encoder``
    / ``custom_decoder``). Backward: ``(dL/dtgt, dL/dmemory) = decoder.backward(g)``, then
    ``dL/dsrc = encoder.backward(dL/dmemory)``; ``backward`` returns ``(dL/dsrc, dL/dtgt)``.

    Initialisation as torch's ``_reset_parameters``: every parameter with more than one
    dimension (all weights, the attention's packed projections) ``xavier_uniform_``, biases
    and norms as their layers initialise them.

    Parameters
    ----------
    d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
    dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None,
    layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True :
        torch's arguments and defaults.
    dtype, generator : refbp only (keyword).

    Notes
    -----
    Shapes: ``src`` (S, N, E), ``tgt`` (T, N, E) ((N, S, E), (N, T, E) with ``batch_first``;
    unbatched (S, E), (T, E)); output like ``tgt``. torch's errors: "the batch number of src
    and tgt must be equal", "the feature number of src and tgt must be equal to d_model".
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu",
                 custom_encoder: Module | None = None, custom_decoder: Module | None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias)
        kw: dict[str, Any] = {"dtype": dtype, "generator": generator}

        def norm() -> LayerNorm:
            return LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)

        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(*args, **kw), num_encoder_layers, norm())
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(*args, **kw), num_decoder_layers, norm())
        for p in self.parameters():
            if p.data.ndim > 1:
                init.xavier_uniform_(p, generator=generator)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, dtype: Any = np.float64) -> Array:
        """``-inf`` above the diagonal, 0 elsewhere (torch's causal mask)."""
        return square_subsequent_mask(sz, dtype)

    def forward(self, src: Any, tgt: Any, src_mask: Any = None, tgt_mask: Any = None,
                memory_mask: Any = None, src_key_padding_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Array:
        """Encode ``src``, decode ``tgt`` attending to the encoding."""
        s, t = np.asarray(src), np.asarray(tgt)
        axis = 0 if self.batch_first else 1
        if s.ndim == 3 and t.ndim > axis and s.shape[axis] != t.shape[axis]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if s.shape[-1:] != (self.d_model,) or t.shape[-1:] != (self.d_model,):
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(s, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(t, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    def backward(self, grad_out: Any) -> tuple[Array, Array]:
        """``(dL/dsrc, dL/dtgt)`` (see the class docstring)."""
        dtgt, dmem = self.decoder.backward(grad_out)
        return self.encoder.backward(dmem), dtgt
