r"""``MultiheadAttention`` with torch's parameters, options and semantics (no torch).

The math of one attention (softmax, masks, the backward through the softmax) lives in
``refbp.nn.functional_attention``; this module adds the projections, the head split, the
masks' conventions and the layouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import init
from refbp.nn.attention_checks import (
    check_attn_mask_shape,
    check_dtypes,
    check_features,
    check_key_padding_mask,
    check_mask_dtype,
    check_mha_args,
    check_ranks,
    warn_mismatched,
)
from refbp.nn.dropout import keep_mask
from refbp.nn.functional_attention import (
    additive_mask,
    attention_backward,
    attention_forward,
    causal_mask,
    keep_scale,
)
from refbp.nn.linear import Linear, _float_dtype
from refbp.nn.module import Cache, Module, Parameter

Array = np.ndarray


def _project(x: Array, w: Array, b: Array | None) -> Array:
    y = x @ w.T
    return y if b is None else y + b


def _split_heads(x: Array, num_heads: int) -> Array:
    """(T, N, E) -> (N, H, T, E / H)."""
    t, n, e = x.shape
    return x.reshape(t, n, num_heads, e // num_heads).transpose(1, 2, 0, 3)


def _merge_heads(x: Array) -> Array:
    """(N, H, T, D) -> (T, N, H * D), the inverse of :func:`_split_heads`."""
    n, h, t, d = x.shape
    return np.ascontiguousarray(x.transpose(2, 0, 1, 3)).reshape(t, n, h * d)


def _append_key(x: Array, row: Array | float, axis: int) -> Array:
    """``x`` with one more entry along the key ``axis``: ``row`` broadcast to the others."""
    shape = list(x.shape)
    shape[axis] = 1
    extra = np.broadcast_to(np.asarray(row, dtype=x.dtype), tuple(shape))
    return np.concatenate([x, extra], axis=axis)


def _pad_keys(mask: Array | None, extra: int) -> Array | None:
    """The additive mask (..., L, S) with ``extra`` zero columns: appended keys are allowed."""
    if mask is None or extra == 0:
        return mask
    return np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, extra)])


class MultiheadAttention(Module):
    r"""Multi-head attention, as ``torch.nn.MultiheadAttention``.

    Forward (sequence-first layout (T, N, E) inside; ``batch_first`` input is transposed;
    unbatched input (T, E) gets N = 1), with ``E = embed_dim``, ``H = num_heads``,
    ``D = E / H``::

        Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v   (projections)
        split each into H heads of D features: (N, H, T, D)
        A_h = softmax(Q_h K_h^T / sqrt(D) + M) ,  O_h = dropout(A_h) V_h       per head
        out = concat_h(O_h) W_o^T + b_o                                        (out_proj)

    ``W_q, W_k, W_v`` are the three row blocks of ``in_proj_weight`` (3E, E) when
    ``kdim == vdim == embed_dim``, else the separate ``q_proj_weight`` (E, E),
    ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim); ``b_q, b_k, b_v`` are the blocks
    of ``in_proj_bias`` (3E,). Parameter names, order and layouts are torch's.

    Masks (torch's conventions): ``key_padding_mask`` (N, S), True = the key is padding;
    ``attn_mask`` (L, S) or (N * H, L, S), True = not allowed to attend; float masks are
    added to the scores. Both become additive (``-inf`` for True) and are summed into ``M``.
    ``is_causal`` is a hint that ``attn_mask`` is causal; like torch, when neither a
    key padding mask nor the weights are requested the exact causal mask replaces it.

    Weights: with ``need_weights`` the attention weights (after dropout, as torch returns
    them) are returned, averaged over heads (N, L, S) or per head (N, H, L, S). torch computes
    this path with a plain softmax, the other one with scaled_dot_product_attention's safe
    softmax, so a query whose keys are all masked gives NaN with ``need_weights=True`` and 0
    with ``need_weights=False``; refbp does the same (see ``refbp.nn.functional_attention``).

    Backward: ``backward(grad_output, grad_attn_weights=None)`` returns ``(d query, d key,
    d value)`` in the input layout (self-attention callers add the three). Through
    ``out_proj`` (a ``Linear``), the heads (``attention_backward``: ``dV = A^T G``,
    ``dA = G V^T``, softmax VJP ``dS = A (dA - rowsum(dA A))``, ``dQ = dS K / sqrt(D)``,
    ``dK = dS^T Q / sqrt(D)``), then each projection: ``dW_q = dQ^T query``,
    ``db_q = sum dQ``, ``d query = dQ W_q`` (likewise for K and V). The appended rows
    are sliced off the key and value gradients first: the zero row's gradient is dropped (a
    constant), and since ``b_k`` is copied into row S of ``K'`` for every batch element
    ``n``, ``dL/db_k = sum_n dK'[S, n, :]`` (likewise ``dL/db_v`` from ``dV'``), accumulated
    into ``bias_k.grad`` and ``bias_v.grad``.

    Parameters
    ----------
    embed_dim, num_heads : int
        ``embed_dim`` must be divisible by ``num_heads``.
    dropout : float, default 0.0
        Dropout on the attention weights in training mode. The keep-mask comes from the
        dropout-mask mechanism shared with ``Dropout`` (fed from torch in parity runs).
    bias : bool, default True
    add_bias_kv : bool, default False
        Learned key and value rows ``bias_k``, ``bias_v`` (1, 1, E) appended to the keys.
    add_zero_attn : bool, default False
        A zero key and value appended per head (after ``bias_k``/``bias_v``).
    kdim, vdim : int, optional
        Feature sizes of key and value (default ``embed_dim``).
    batch_first : bool, default False
    dtype : float32 or float64, default float64
    generator : numpy.random.Generator, optional
        For the default initialisation: ``xavier_uniform_`` on the projection weights, zero
        biases, ``out_proj`` as ``Linear``'s default with its bias zeroed, ``xavier_normal_``
        on ``bias_k`` and ``bias_v`` (std ``sqrt(1 / E)``: fans E and E), as torch.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 *, dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self.head_dim = check_mha_args(embed_dim, num_heads, dropout)
        dt = _float_dtype(dtype)
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim = embed_dim if kdim is None else int(kdim)
        self.vdim = embed_dim if vdim is None else int(vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.add_bias_kv, self.add_zero_attn = bool(add_bias_kv), bool(add_zero_attn)
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * e, e), dtype=dt))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.in_proj_weight = None  # type: ignore[assignment]  # torch's None when kdim/vdim differ
            self.q_proj_weight = Parameter(np.empty((e, e), dtype=dt))
            self.k_proj_weight = Parameter(np.empty((e, self.kdim), dtype=dt))
            self.v_proj_weight = Parameter(np.empty((e, self.vdim), dtype=dt))
        self.in_proj_bias = Parameter(np.zeros(3 * e, dtype=dt)) if bias else None
        self.out_proj = Linear(e, e, bias=bias, dtype=dt, generator=generator)
        self.bias_k = Parameter(np.empty((1, 1, e), dtype=dt)) if add_bias_kv else None
        self.bias_v = Parameter(np.empty((1, 1, e), dtype=dt)) if add_bias_kv else None
        self._generator = generator
        self._cache = Cache("MultiheadAttention")
        self._reset_parameters(generator)

    def _reset_parameters(self, generator: np.random.Generator | None) -> None:
        for p in self._proj_weights():
            init.xavier_uniform_(p, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None and self.bias_v is not None:
            init.xavier_normal_(self.bias_k, generator=generator)
            init.xavier_normal_(self.bias_v, generator=generator)

    def _extra_keys(self) -> int:
        """How many keys are appended to the source sequence (``bias_k``, the zero key)."""
        return int(self.bias_k is not None) + int(self.add_zero_attn)

    def _proj_weights(self) -> list[Parameter]:
        if self.in_proj_weight is not None:
            return [self.in_proj_weight]
        return [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]

    def _weights_and_biases(self) -> list[tuple[Array, Array | None]]:
        """(W, b) of the q, k and v projections (views into the packed parameters)."""
        e = self.embed_dim
        if self.in_proj_weight is not None:
            w = self.in_proj_weight.data
            ws = [w[:e], w[e:2 * e], w[2 * e:]]
        else:
            ws = [p.data for p in self._proj_weights()]
        b = None if self.in_proj_bias is None else self.in_proj_bias.data
        bs = [None] * 3 if b is None else [b[:e], b[e:2 * e], b[2 * e:]]
        return list(zip(ws, bs, strict=True))

    # -- forward ---------------------------------------------------------------------------
    def _to_seq_first(self, a: Array, batched: bool) -> Array:
        if not batched:
            return a[:, None, :]
        return a.transpose(1, 0, 2) if self.batch_first else a

    def _from_seq_first(self, a: Array, batched: bool) -> Array:
        if not batched:
            return a[:, 0, :]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _merged_mask(self, attn_mask: Array | None, kpm: Array | None, bsz: int, tgt: int,
                     src: int, dt: np.dtype) -> Array | None:
        """The additive mask (N, H or 1, L, S) of both masks (MHA's True = masked)."""
        mask = None
        if attn_mask is not None:
            check_attn_mask_shape(attn_mask, bsz, self.num_heads, tgt, src)
            m = additive_mask(attn_mask, dt, true_means="masked", name="attn_mask")
            mask = m[None, None] if m.ndim == 2 else m.reshape(bsz, self.num_heads, tgt, src)
        if kpm is not None:
            check_key_padding_mask(kpm, bsz, src, self._extra_keys())
            k = additive_mask(kpm, dt, true_means="masked", name="key_padding_mask")
            k = k[:, None, None, :]
            mask = k if mask is None else mask + k
        return mask

    def _keep(self, shape: tuple[int, ...], dt: np.dtype) -> Array | None:
        """The dropout keep-scale ``D / (1 - p)`` of the attention weights (N, H, L, S), or
        None in eval mode or with p = 0 (as torch, which then draws nothing).

        The mask comes from ``refbp.nn.dropout.keep_mask`` (fed from torch in parity runs,
        drawn from ``generator`` otherwise), one draw of shape (N, H, L, S) per forward.
        """
        if not self.training or self.dropout == 0.0:
            return None
        gen = self._generator if self._generator is not None else init.default_generator()
        mask = keep_mask(shape, self.dropout, gen, "MultiheadAttention")
        return keep_scale(mask, self.dropout, dt)

    def _heads(self, q_sf: Array, k_sf: Array, v_sf: Array) -> list[Array]:
        """Projected, extended (``bias_k``/``bias_v``, zero rows) and split: (N, H, T, D)."""
        (wq, bq), (wk, bk), (wv, bv) = self._weights_and_biases()
        proj = [_project(a, w, b)
                for a, (w, b) in ((q_sf, (wq, bq)), (k_sf, (wk, bk)), (v_sf, (wv, bv)))]
        if self.bias_k is not None and self.bias_v is not None:
            proj[1] = _append_key(proj[1], self.bias_k.data, 0)
            proj[2] = _append_key(proj[2], self.bias_v.data, 0)
        heads = [_split_heads(a, self.num_heads) for a in proj]
        if self.add_zero_attn:
            heads[1], heads[2] = _append_key(heads[1], 0.0, 2), _append_key(heads[2], 0.0, 2)
        return heads

    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Array, Array | None]:
        """``(attn_output, attn_weights or None)``; shapes as torch (see the class docstring)."""
        q_in, k_in, v_in = (np.asarray(a) for a in (query, key, value))
        kpm = None if key_padding_mask is None else np.asarray(key_padding_mask)
        am = None if attn_mask is None else np.asarray(attn_mask)
        batched = check_ranks(q_in, k_in, v_in, kpm, am, self.num_heads)
        dt = self._proj_weights()[0].dtype
        check_dtypes(q_in, k_in, v_in, dt)
        check_mask_dtype(kpm, "key_padding_mask")
        check_mask_dtype(am, "attn_mask")
        warn_mismatched(kpm, am, "key_padding_mask", "attn_mask")
        if kpm is not None and not batched:
            kpm = kpm[None, :]
        q_sf, k_sf, v_sf = (self._to_seq_first(a, batched) for a in (q_in, k_in, v_in))
        if is_causal and am is None:
            raise ValueError("Need attn_mask if specifying the is_causal hint. You may use "
                             "the Transformer module method `generate_square_subsequent_mask` "
                             "to create this mask.")
        check_features(q_sf, k_sf, v_sf, self.embed_dim, self.kdim, self.vdim,
                       not self._qkv_same_embed_dim)
        tgt, bsz, _ = q_sf.shape
        src, extra = k_sf.shape[0], self._extra_keys()
        if is_causal and kpm is None and not need_weights:
            # torch hands is_causal on to SDPA: causal over the extended key sequence
            full = src + extra
            mask = self._merged_mask(~causal_mask(tgt, full), None, bsz, tgt, full, dt)
        else:
            mask = _pad_keys(self._merged_mask(am, kpm, bsz, tgt, src, dt), extra)
        q, k, v = self._heads(q_sf, k_sf, v_sf)
        keep = self._keep((bsz, self.num_heads, tgt, src + extra), dt)
        o, attn = attention_forward(q, k, v, mask, 1.0 / np.sqrt(self.head_dim),
                                    safe=not need_weights, keep=keep)
        out = self._from_seq_first(self.out_proj(_merge_heads(o)), batched)
        self._cache.save(inputs=(q_sf, k_sf, v_sf), attn=attn, batched=batched,
                         need_weights=need_weights, average=average_attn_weights,
                         out_shape=out.shape)
        if not need_weights:
            return out, None
        w = attn.pd.mean(axis=1) if average_attn_weights else attn.pd
        return out, (w if batched else w[0])

    # -- backward --------------------------------------------------------------------------
    def _grad_weights(self, g: Any, c: dict[str, Any]) -> Array | None:
        """dL/d(dropped weights) (N, H, L, S) from dL/d(returned weights), or None."""
        if g is None:
            return None
        pd = c["attn"].pd
        g = np.asarray(g, dtype=pd.dtype)
        if not c["need_weights"]:
            raise ValueError("grad_attn_weights given, but forward ran with need_weights=False")
        if not c["batched"]:
            g = g[None]
        if c["average"]:
            if g.shape != pd.shape[:1] + pd.shape[2:]:
                raise ValueError(f"grad_attn_weights must have the weights' shape, got "
                                 f"{g.shape}")
            return np.broadcast_to(g[:, None] / pd.dtype.type(pd.shape[1]), pd.shape)
        if g.shape != pd.shape:
            raise ValueError(f"grad_attn_weights must have the weights' shape, got {g.shape}")
        return g

    def backward(self, grad_output: Any, grad_attn_weights: Any = None
                 ) -> tuple[Array, Array, Array]:
        """``(d query, d key, d value)``; accumulates every parameter gradient.

        ``grad_output=None`` means zero (only the returned weights are used downstream).
        """
        c = self._cache.load()
        g = (np.zeros(c["out_shape"], dtype=c["attn"].q.dtype) if grad_output is None
             else np.asarray(grad_output))
        if g.shape != c["out_shape"]:
            raise ValueError(f"MultiheadAttention grad_output must have shape {c['out_shape']},"
                             f" got {g.shape}")
        g_sf = self._to_seq_first(g, c["batched"])
        g_heads = _split_heads(self.out_proj.backward(g_sf), self.num_heads)
        dq, dk, dv = attention_backward(g_heads, c["attn"],
                                        self._grad_weights(grad_attn_weights, c))
        if self.add_zero_attn:  # the appended zero key and value are constants
            dk, dv = dk[:, :, :-1], dv[:, :, :-1]
        dproj = [_merge_heads(d) for d in (dq, dk, dv)]
        if self.bias_k is not None and self.bias_v is not None:
            for i, p in ((1, self.bias_k), (2, self.bias_v)):  # row S of every batch element
                p.accumulate(dproj[i][-1].sum(axis=0)[None, None], owned=True)
                dproj[i] = dproj[i][:-1]
        grads_w = [d.reshape(-1, d.shape[-1]).T @ x.reshape(-1, x.shape[-1])
                   for d, x in zip(dproj, c["inputs"], strict=True)]
        if self.in_proj_weight is not None:
            self.in_proj_weight.accumulate(np.concatenate(grads_w), owned=True)
        else:
            for p, gw in zip(self._proj_weights(), grads_w, strict=True):
                p.accumulate(gw, owned=True)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(np.concatenate([d.sum(axis=(0, 1)) for d in dproj]),
                                         owned=True)
        wb = self._weights_and_biases()
        return tuple(self._from_seq_first(d @ w, c["batched"])  # type: ignore[return-value]
                     for d, (w, _) in zip(dproj, wb, strict=True))

    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr``."""
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")
