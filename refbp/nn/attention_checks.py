"""Input validation of ``MultiheadAttention``: torch's shape, rank and mask rules (no torch).

The messages are torch's (``torch.nn.functional._mha_shape_check``, ``_canonical_mask``,
``multi_head_attention_forward``); torch raises ``AssertionError``/``RuntimeError`` for most
of them, refbp raises ``ValueError`` (shapes, ranks) and ``TypeError`` (dtypes) with the
same text.
"""

from __future__ import annotations

import warnings

import numpy as np

from refbp._checks import FLOAT_DTYPES, as_float_array


def check_mha_args(embed_dim: int, num_heads: int, dropout: float) -> int:
    """The head dimension ``embed_dim // num_heads``, or torch's error."""
    if embed_dim <= 0 or num_heads <= 0:
        raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                         f"embed_dim={embed_dim} and num_heads={num_heads} instead")
    if (embed_dim // num_heads) * num_heads != embed_dim:
        raise ValueError("embed_dim must be divisible by num_heads")
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {dropout}")
    return embed_dim // num_heads


def check_ranks(query: np.ndarray, key: np.ndarray, value: np.ndarray,
                key_padding_mask: np.ndarray | None, attn_mask: np.ndarray | None,
                num_heads: int) -> bool:
    """torch's ``_mha_shape_check``: True for batched (3-D) input, False for unbatched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise ValueError("For batched (3-D) `query`, expected `key` and `value` to be 3-D "
                             f"but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ValueError("For batched (3-D) `query`, expected `key_padding_mask` to be "
                             f"`None` or 2-D but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise ValueError("For batched (3-D) `query`, expected `attn_mask` to be `None`, "
                             f"2-D or 3-D but found {attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise ValueError("For unbatched (2-D) `query`, expected `key` and `value` to be "
                             f"2-D but found {key.ndim}-D and {value.ndim}-D tensors "
                             "respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ValueError("For unbatched (2-D) `query`, expected `key_padding_mask` to be "
                             f"`None` or 1-D but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise ValueError("For unbatched (2-D) `query`, expected `attn_mask` to be "
                                 f"`None`, 2-D or 3-D but found {attn_mask.ndim}-D tensor "
                                 "instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and attn_mask.shape != expected:
                raise ValueError(f"Expected `attn_mask` shape to be {expected} but got "
                                 f"{attn_mask.shape}")
        return False
    raise ValueError("query should be unbatched 2D or batched 3D tensor but received "
                     f"{query.ndim}-D query tensor")


def check_mask_dtype(mask: np.ndarray | None, name: str) -> None:
    """Masks are bool or float32/float64 (torch: ``only bool and floating types``)."""
    if mask is not None and mask.dtype != np.bool_ and mask.dtype not in FLOAT_DTYPES:
        raise TypeError(f"only bool and floating types of {name} are supported, got dtype "
                        f"{mask.dtype}")


def warn_mismatched(mask: np.ndarray | None, other: np.ndarray | None, name: str,
                    other_name: str) -> None:
    """torch's deprecation warning when one mask is bool and the other float."""
    if mask is not None and other is not None and mask.dtype != other.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use "
                      "same type for both instead.", UserWarning, stacklevel=3)


def check_features(query: np.ndarray, key: np.ndarray, value: np.ndarray, embed_dim: int,
                   kdim: int, vdim: int, separate: bool) -> None:
    """Feature sizes and the key/value agreement of ``multi_head_attention_forward``."""
    if query.shape[-1] != embed_dim:
        raise ValueError(f"was expecting embedding dimension of {embed_dim}, but got "
                         f"{query.shape[-1]}")
    if key.shape[-1] != kdim or value.shape[-1] != vdim:
        raise ValueError(f"expected key with {kdim} and value with {vdim} features (kdim, "
                         f"vdim), got shapes {key.shape} and {value.shape}")
    if separate and key.shape[:2] != value.shape[:2]:
        raise ValueError(f"key's sequence and batch dims {key.shape[:2]} do not match value's "
                         f"{value.shape[:2]}")
    if not separate and key.shape != value.shape:
        raise ValueError(f"key shape {key.shape} does not match value shape {value.shape}")
    if query.shape[1] != key.shape[1]:
        raise ValueError(f"query and key must have the same batch size, got shapes "
                         f"{query.shape} and {key.shape} (sequence first)")


def check_attn_mask_shape(attn_mask: np.ndarray, bsz: int, num_heads: int, tgt_len: int,
                          src_len: int) -> None:
    """A 2-D ``attn_mask`` is (L, S), a 3-D one (N * num_heads, L, S)."""
    if attn_mask.ndim == 2 and attn_mask.shape != (tgt_len, src_len):
        raise ValueError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                         f"{(tgt_len, src_len)}.")
    if attn_mask.ndim == 3 and attn_mask.shape != (bsz * num_heads, tgt_len, src_len):
        raise ValueError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                         f"{(bsz * num_heads, tgt_len, src_len)}.")


def check_key_padding_mask(mask: np.ndarray, bsz: int, src_len: int, extra: int = 0) -> None:
    """``key_padding_mask`` is (N, S) (after the batch dimension of unbatched input).

    torch checks it after padding it with one column per appended key (``extra``: bias_k,
    zero attention), so its message counts those columns on both sides; refbp's too.
    """
    if mask.shape[0] != bsz:
        raise ValueError(f"Expected key_padded_mask.shape[0] to be {bsz}, but got "
                         f"{mask.shape[0]}")
    if mask.shape[1] != src_len:
        raise ValueError(f"Expected key_padded_mask.shape[1] to be {src_len + extra}, but got "
                         f"{mask.shape[1] + extra}")


def check_dtypes(query: np.ndarray, key: np.ndarray, value: np.ndarray,
                 weight_dtype: np.dtype) -> None:
    """Query, key and value are float arrays of the parameters' dtype."""
    for name, a in (("query", query), ("key", key), ("value", value)):
        as_float_array(a, f"MultiheadAttention {name}")
        if a.dtype != weight_dtype:
            raise TypeError(f"MultiheadAttention {name} dtype {a.dtype} does not match the "
                            f"parameter dtype {weight_dtype}")
