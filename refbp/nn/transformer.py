r"""``TransformerEncoderLayer`` and ``TransformerEncoder`` with torch's semantics (no torch).

Both follow torch's regular (autograd) code path, which is the one torch runs whenever
gradients are recorded, i.e. in every parity comparison. In eval mode under ``torch.no_grad``
torch may take a fused "fast path" (``torch._transformer_encoder_layer_fwd``) that computes
the same function up to rounding; with ``enable_nested_tensor=True`` and a
``src_key_padding_mask`` that fast path of ``TransformerEncoder`` also returns 0 at padded
positions (before the final ``norm``), where the regular path returns the attention result.
refbp implements the regular path only: ``enable_nested_tensor`` is accepted and passed on
to the torch mirror, and has no effect in refbp.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from refbp.nn.activation import GELU, ReLU
from refbp.nn.attention import MultiheadAttention
from refbp.nn.attention_checks import check_mask_dtype, warn_mismatched
from refbp.nn.container import Sequential
from refbp.nn.dropout import Dropout
from refbp.nn.layernorm import LayerNorm
from refbp.nn.linear import Linear
from refbp.nn.module import Module

Array = np.ndarray
ACTIVATIONS = ("relu", "gelu")


def square_subsequent_mask(size: int, dtype: Any = np.float64) -> Array:
    """torch's ``generate_square_subsequent_mask``: ``-inf`` above the diagonal, 0 elsewhere."""
    return np.triu(np.full((size, size), -np.inf, dtype=np.dtype(dtype)), k=1)


def seq_len(x: Array, batch_first: bool) -> int:
    """torch's ``_get_seq_len``: the sequence length of (S, E), (S, N, E) or (N, S, E)."""
    return int(x.shape[0] if x.ndim == 2 else x.shape[1 if batch_first else 0])


def detect_is_causal(mask: Any, is_causal: bool | None, size: int | None = None) -> bool:
    """torch's ``_detect_is_causal_mask``: ``is_causal`` when given; for ``None``, whether
    ``mask`` equals :func:`square_subsequent_mask` of ``size`` in the mask's dtype (a bool
    mask: True above the diagonal)."""
    if is_causal is not None or mask is None:
        return is_causal is True
    m = np.asarray(mask)
    ref = square_subsequent_mask(m.shape[-2] if size is None else size, m.dtype)
    return m.shape == ref.shape and bool(np.all(m == ref))


def _float_mask(mask: Any, dtype: np.dtype, name: str) -> Array | None:
    """torch's ``_canonical_mask``: bool (True = masked) becomes 0 / -inf of ``dtype``."""
    if mask is None:
        return None
    m = np.asarray(mask)
    check_mask_dtype(m, name)
    if m.dtype == np.bool_:
        return np.where(m, dtype.type(-np.inf), dtype.type(0))
    return m


def _canonical_masks(src: Array, mask: Any, kpm: Any, mask_name: str,
                     kpm_name: str) -> tuple[Array | None, Array | None]:
    m = None if mask is None else np.asarray(mask)
    k = None if kpm is None else np.asarray(kpm)
    warn_mismatched(k, m, kpm_name, mask_name)
    return _float_mask(m, src.dtype, mask_name), _float_mask(k, src.dtype, kpm_name)


class _TransformerBlocks(Module):
    """The blocks the encoder and decoder layers share: self-attention with ``dropout1``,
    and the feed-forward block ``linear2(dropout(act(linear1(x))))`` followed by the
    dropout named ``_ff_dropout`` (``dropout2`` in the encoder layer, ``dropout3`` in the
    decoder layer), each with its backward."""

    _ff_dropout = "dropout2"

    def _activation(self, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation should be relu/gelu, not {activation}")
        self.activation = activation
        # not a child: torch keeps a string activation as a function, outside the module tree
        object.__setattr__(self, "_act", ReLU() if activation == "relu" else GELU())

    @property
    def bias(self) -> bool:
        """Whether the linear layers, the projections and the norms have biases."""
        return self.linear1.bias is not None

    @property
    def dropout_p(self) -> float:
        """The dropout probability shared by the attention weights and the three dropouts."""
        return self.self_attn.dropout

    def _sa(self, x: Array, mask: Array | None, kpm: Array | None, is_causal: bool) -> Array:
        out = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm,
                             need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(out)

    def _sa_backward(self, g: Array) -> Array:
        dq, dk, dv = self.self_attn.backward(self.dropout1.backward(g))
        return dq + dk + dv

    def _ff(self, x: Array) -> Array:
        out: Array = getattr(self, self._ff_dropout)(
            self.linear2(self.dropout(self._act(self.linear1(x)))))
        return out

    def _ff_backward(self, g: Array) -> Array:
        g = self.linear2.backward(getattr(self, self._ff_dropout).backward(g))
        return self.linear1.backward(self._act.backward(self.dropout.backward(g)))

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return (f"d_model={self.d_model}, nhead={self.nhead}, "
                f"dim_feedforward={self.dim_feedforward}, activation={self.activation!r}, "
                f"norm_first={self.norm_first}, batch_first={self.batch_first}")


class TransformerEncoderLayer(_TransformerBlocks):
    r"""Self-attention block and feed-forward block, as ``torch.nn.TransformerEncoderLayer``.

    With ``SA(x) = dropout1(self_attn(x, x, x, masks, need_weights=False)[0])`` and
    ``FF(x) = dropout2(linear2(dropout(activation(linear1(x)))))``:

    - ``norm_first=False`` (post-norm, the default): ``h = norm1(x + SA(x))``,
      ``y = norm2(h + FF(h))``;
    - ``norm_first=True`` (pre-norm): ``h = x + SA(norm1(x))``, ``y = h + FF(norm2(h))``.

    Backward follows the same graph in reverse; a residual connection adds the gradient
    that flows around a block to the one that flows through it. Post-norm::

        gh = norm2.backward(g);   gh = gh + FF.backward(gh)
        gx = norm1.backward(gh);  gx = gx + sum(self_attn.backward(dropout1.backward(gx)))

    Pre-norm::

        gh = g + norm2.backward(FF.backward(g))
        gx = gh + norm1.backward(sum(self_attn.backward(dropout1.backward(gh))))

    (``sum`` adds the query, key and value gradients: all three are the same tensor.)

    Parameters
    ----------
    d_model, nhead : int
    dim_feedforward : int, default 2048
    dropout : float, default 0.1
        Used by ``self_attn`` (on the attention weights), ``dropout``, ``dropout1`` and
        ``dropout2`` in training mode; masks come from the shared dropout-mask mechanism
        (``refbp.nn.dropout``), fed from torch in parity runs.
    activation : "relu" or "gelu", default "relu"
    layer_norm_eps : float, default 1e-5
    batch_first, norm_first, bias : bool, defaults False, False, True
    dtype : float32 or float64, default float64
    generator : numpy.random.Generator, optional
        For the initialisation (each sub-layer's torch default) and refbp's own dropout draws.

    Notes
    -----
    Shapes: ``src`` (S, N, E), (N, S, E) with ``batch_first``, or unbatched (S, E); output
    the same. Children and ``state_dict`` keys are torch's (``self_attn.in_proj_weight``,
    ``linear1.weight``, ``norm1.weight``, ...).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self._activation(activation)
        kw: dict[str, Any] = {"dtype": dtype, "generator": generator}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, generator=generator)
        self.dropout2 = Dropout(dropout, generator=generator)
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.layer_norm_eps, self.batch_first = layer_norm_eps, bool(batch_first)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Array:
        """Encode ``src``; masks as ``MultiheadAttention``'s (True = masked), see the class."""
        x = np.asarray(src)
        mask, kpm = _canonical_masks(x, src_mask, src_key_padding_mask, "src_mask",
                                     "src_key_padding_mask")
        if self.norm_first:
            h = x + self._sa(self.norm1(x), mask, kpm, is_causal)
            return h + self._ff(self.norm2(h))
        h = self.norm1(x + self._sa(x, mask, kpm, is_causal))
        return self.norm2(h + self._ff(h))

    def backward(self, grad_out: Any) -> Array:
        """d loss / d src; accumulates every parameter gradient (derivation in the class)."""
        g = np.asarray(grad_out)
        if self.norm_first:
            gh = g + self.norm2.backward(self._ff_backward(g))
            return gh + self.norm1.backward(self._sa_backward(gh))
        gh = self.norm2.backward(g)
        gh = gh + self._ff_backward(gh)
        gx = self.norm1.backward(gh)
        return gx + self._sa_backward(gx)


def clones(layer: Module, cls: type, num_layers: int, name: str) -> Sequential:
    """torch's ``_get_clones``: ``num_layers`` deep copies of ``layer`` (identical initial
    weights), keyed ``0``, ``1``, ...; ``layer`` must be a refbp ``cls``."""
    if not isinstance(layer, cls):
        raise TypeError(f"{name} must be a refbp {cls.__name__}, got {type(layer).__name__}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers}")
    return Sequential(*(copy.deepcopy(layer) for _ in range(num_layers)))


class TransformerEncoder(Module):
    r"""A stack of ``num_layers`` copies of ``encoder_layer`` (+ ``norm``), as torch's.

    Forward: ``x_{i+1} = layers[i](x_i, mask, src_key_padding_mask, is_causal)``, then
    ``y = norm(x_L)`` when ``norm`` is given. Backward: ``norm``, then the layers in reverse
    (each returns the gradient with respect to its input).

    The layers are deep copies of ``encoder_layer``, so they start with identical weights,
    exactly as torch's ``_get_clones``; ``state_dict`` keys are ``layers.0.self_attn.
    in_proj_weight``, ..., ``norm.weight``. Boolean masks become ``-inf`` float masks first, and
    ``is_causal=None`` detects a causal ``mask`` (equal to :func:`square_subsequent_mask`),
    as torch does. ``enable_nested_tensor`` and ``mask_check`` only steer torch's inference
    fast path (see the module docstring); refbp stores them for the mirror.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: LayerNorm | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True) -> None:
        super().__init__()
        self.layers = clones(encoder_layer, TransformerEncoderLayer, num_layers, "encoder_layer")
        self.num_layers = int(num_layers)
        self.norm = norm
        self.enable_nested_tensor = bool(enable_nested_tensor)
        self.mask_check = bool(mask_check)

    def forward(self, src: Any, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None) -> Array:
        """Apply the layers in turn (then ``norm``); ``is_causal=None`` detects a causal mask."""
        x = np.asarray(src)
        fmask, kpm = _canonical_masks(x, mask, src_key_padding_mask, "mask",
                                      "src_key_padding_mask")
        is_causal = detect_is_causal(fmask, is_causal, seq_len(x, self.layers[0].batch_first))
        for layer in self.layers:
            x = layer(x, src_mask=fmask, src_key_padding_mask=kpm, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)

    def backward(self, grad_out: Any) -> Array:
        """d loss / d src through ``norm`` and the layers in reverse."""
        g = np.asarray(grad_out)
        if self.norm is not None:
            g = self.norm.backward(g)
        for layer in reversed(list(self.layers)):
            g = layer.backward(g)
        return g

    def extra_repr(self) -> str:
        """The number of layers, shown in ``repr``."""
        return f"num_layers={self.num_layers}"
