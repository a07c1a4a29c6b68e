"""One-input adapters that put attention into a ``Sequential`` (parity scenarios, op checks).

A scenario's model is a chain of layers applied to one input, while attention takes a query,
a key, a value, masks and flags. These two layers fix everything but the input at
construction, so every option family of attention can run through ``refbp run`` (and a TOML
scenario) like any layer. Their torch twins (``refbp.mirror.attention``) are stock
``torch.nn.MultiheadAttention`` / ``F.scaled_dot_product_attention`` with the same slicing.

- :class:`AttentionProbe`: ``x -> MultiheadAttention(x[..., :E], x[..., :kdim], x[..., :vdim],
  masks, flags)``, returning the attention output or the attention weights. The three inputs
  are overlapping slices of ``x``, so ``d x`` is the sum of the query, key and value
  gradients (each padded with zeros to ``x``'s width); the parameters are those of the child
  ``attn``.
- :class:`SDPAProbe`: ``x`` of shape (..., L, 3 * E) split into Q, K, V thirds of the last
  axis, then ``scaled_dot_product_attention(Q, K, V, attn_mask, is_causal, scale)``;
  ``d x`` concatenates ``dQ, dK, dV``. No parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn.attention import MultiheadAttention
from refbp.nn.functional_attention import attention_backward, sdpa_forward
from refbp.nn.module import Cache, Module
from refbp.nn.pair_probe import fixed_argument

OUTPUTS = ("output", "weights")


class AttentionProbe(Module):
    """``MultiheadAttention`` on slices of one input, with fixed masks and flags.

    Parameters
    ----------
    embed_dim, num_heads, bias, kdim, vdim, batch_first, add_bias_kv, add_zero_attn :
        As ``MultiheadAttention`` (the child ``attn``); ``dropout`` is 0.
    key_padding_mask, attn_mask : array-like, optional
        Fixed masks (bool or float; nested lists are fine), applied at every call.
    need_weights, average_attn_weights, is_causal : bool
        As ``MultiheadAttention.forward``.
    output : "output" or "weights"
        What the layer returns (``"weights"`` needs ``need_weights=True``).
    dtype, generator :
        As ``MultiheadAttention``.

    Notes
    -----
    Shapes: x (L, N, F), (N, L, F) with ``batch_first``, or (L, F), with
    ``F >= max(embed_dim, kdim, vdim)``; the key and value sequences are the query's.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 key_padding_mask: Any = None, attn_mask: Any = None,
                 need_weights: bool = True, average_attn_weights: bool = True,
                 is_causal: bool = False, output: str = "output", add_bias_kv: bool = False,
                 add_zero_attn: bool = False, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if output == "weights" and not need_weights:
            raise ValueError("output='weights' needs need_weights=True")
        self.attn = MultiheadAttention(embed_dim, num_heads, bias=bias, kdim=kdim, vdim=vdim,
                                       batch_first=batch_first, add_bias_kv=add_bias_kv,
                                       add_zero_attn=add_zero_attn, dtype=dtype,
                                       generator=generator)
        self.key_padding_mask, self.attn_mask = key_padding_mask, attn_mask
        self.need_weights, self.average_attn_weights = need_weights, average_attn_weights
        self.is_causal, self.output = is_causal, output
        self._cache = Cache("AttentionProbe")

    def widths(self) -> tuple[int, int, int]:
        """Feature widths of the query, key and value slices of the input."""
        a = self.attn
        return a.embed_dim, a.kdim, a.vdim

    def call_kwargs(self, dtype: np.dtype) -> dict[str, Any]:
        """The keyword arguments handed to the attention at every call."""
        return {"key_padding_mask": fixed_argument(self.key_padding_mask, dtype),
                "attn_mask": fixed_argument(self.attn_mask, dtype),
                "need_weights": self.need_weights,
                "average_attn_weights": self.average_attn_weights, "is_causal": self.is_causal}

    def forward(self, x: Any) -> np.ndarray:
        """The attention output (or weights) of the three slices of ``x``."""
        x = as_float_array(x, "AttentionProbe input")
        if x.shape[-1] < max(self.widths()):
            raise ValueError(f"AttentionProbe input needs at least {max(self.widths())} "
                             f"features (embed_dim, kdim, vdim), got shape {x.shape}")
        q, k, v = (x[..., :w] for w in self.widths())
        out, weights = self.attn(q, k, v, **self.call_kwargs(x.dtype))
        self._cache.save(shape=x.shape, dtype=x.dtype)
        return out if self.output == "output" else weights

    def backward(self, grad_out: Any) -> np.ndarray:
        """Sum of the query, key and value gradients, each in its slice of ``x``."""
        c = self._cache.load()
        g = np.asarray(grad_out, dtype=c["dtype"])
        grads = (self.attn.backward(g) if self.output == "output"
                 else self.attn.backward(None, g))
        gx = np.zeros(c["shape"], dtype=c["dtype"])
        for d in grads:
            gx[..., :d.shape[-1]] += d
        return gx

    def extra_repr(self) -> str:
        """The fixed call options shown in ``repr``."""
        return (f"need_weights={self.need_weights}, is_causal={self.is_causal}, "
                f"output={self.output!r}")


class SDPAProbe(Module):
    """``scaled_dot_product_attention`` of the Q, K, V thirds of one input (no parameters).

    Parameters
    ----------
    attn_mask : array-like, optional
        Bool (True = allowed, SDPA's convention) or float, broadcastable to (..., L, L).
    is_causal : bool
    scale : float, optional

    Notes
    -----
    Shapes: x (..., L, 3 E); output (..., L, E).
    """

    def __init__(self, attn_mask: Any = None, is_causal: bool = False,
                 scale: float | None = None) -> None:
        super().__init__()
        self.attn_mask, self.is_causal, self.scale = attn_mask, is_causal, scale
        self._cache = Cache("SDPAProbe")

    def forward(self, x: Any) -> np.ndarray:
        """Attention of the three thirds of ``x``'s last axis."""
        x = as_float_array(x, "SDPAProbe input")
        if x.ndim < 2 or x.shape[-1] % 3:
            raise ValueError("SDPAProbe input must be (..., L, 3 * E), got shape "
                             f"{x.shape}")
        q, k, v = np.split(x, 3, axis=-1)
        out, cache = sdpa_forward(q, k, v, fixed_argument(self.attn_mask, x.dtype),
                                  is_causal=self.is_causal, scale=self.scale)
        self._cache.save(attn=cache)
        return out

    def backward(self, grad_out: Any) -> np.ndarray:
        """``concat(dQ, dK, dV)`` along the last axis."""
        cache = self._cache.load()["attn"]
        g = np.asarray(grad_out, dtype=cache.q.dtype)
        return np.concatenate(attention_backward(g, cache), axis=-1)

    def extra_repr(self) -> str:
        """The fixed options shown in ``repr``."""
        return f"is_causal={self.is_causal}, scale={self.scale}"
