"""Torch twins of the two-input layers: ``PairProbe`` and ``PairwiseDistance``.

``PairProbeTorch`` is the stock ``torch.nn`` layer named by the probe, applied to the same
two slices of the input with the same fixed keyword arguments. ``PairwiseDistance`` is
converted by hand because torch stores its ``p`` as ``norm``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from refbp import nn as rnn
from refbp.mirror.attention import _mask_tensor
from refbp.mirror.modules import finish_twin, register_converter, to_torch
from refbp.nn.module import Module


def _fixed(value: Any, dtype: torch.dtype) -> Any:
    """A fixed forward argument as refbp's probe reads it: a list becomes a tensor (bool kept,
    numbers in the input's dtype)."""
    return _mask_tensor(value, dtype) if isinstance(value, list | tuple | np.ndarray) else value


class PairProbeTorch(torch.nn.Module):
    """Torch twin of :class:`refbp.nn.PairProbe`: ``torch.nn.<op>(**options)`` on
    ``x[..., :split]`` and ``x[..., split:]``."""

    def __init__(self, op: str, split: int, options: Mapping[str, Any] | None = None,
                 kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.op_name, self.split = op, split
        self.options, self.kwargs = dict(options or {}), dict(kwargs or {})
        with warnings.catch_warnings():
            # torch.nn.Transformer's note on its inference fast path
            warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
            self.op = getattr(torch.nn, op)(**self.options)

    def forward(self, x: torch.Tensor) -> Any:
        """The layer on the two halves of ``x``'s last axis."""
        kw = {k: _fixed(v, x.dtype) for k, v in self.kwargs.items()}
        return self.op(x[..., :self.split], x[..., self.split:], **kw)


def _probe_to_torch(m: Any) -> torch.nn.Module:
    t = PairProbeTorch(m.op_name, m.split, m.options, m.kwargs)
    t.op = to_torch(m.op)
    return t.train(m.training)


def _probe_from_torch(t: Any) -> Module:
    from refbp.mirror.modules import from_torch

    m = rnn.PairProbe(t.op_name, t.split, t.options, t.kwargs)
    m.op = from_torch(t.op, _path="op")
    return m.train(t.training)


def _pairwise_to_torch(m: Any) -> torch.nn.Module:
    return finish_twin(m, torch.nn.PairwiseDistance(m.norm, m.eps, m.keepdim))


def register_pair_converters() -> None:
    register_converter(rnn.PairProbe, PairProbeTorch, _probe_to_torch, _probe_from_torch)
    register_converter(rnn.PairwiseDistance, torch.nn.PairwiseDistance, _pairwise_to_torch,
                       lambda t: rnn.PairwiseDistance(t.norm, t.eps, t.keepdim).train(
                           t.training))


register_pair_converters()
