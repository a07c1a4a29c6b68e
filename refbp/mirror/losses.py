"""Torch twins of the losses that own parameters: ``LinearCrossEntropyLoss``.

torch keeps LinearCrossEntropyLoss's ``in_features`` and ``bias`` on its ``linear`` child, so
the constructor arguments cannot be read by name; the weights still copy by state dict
(``linear.weight``, ``linear.bias``, the class ``weight`` buffer).
"""

from __future__ import annotations

from typing import Any

import torch

from refbp import nn as rnn
from refbp.mirror.modules import finish_twin, register_converter
from refbp.nn.module import Module


def _lce_to_torch(m: Any) -> torch.nn.Module:
    weight = None if m.weight is None else torch.from_numpy(m.weight.copy())
    t = torch.nn.LinearCrossEntropyLoss(
        m.linear.in_features, m.num_classes, out_features=m.out_features,
        bias=m.linear.bias is not None, reduction=m.reduction, weight=weight,
        ignore_index=m.ignore_index, label_smoothing=m.label_smoothing)
    return finish_twin(m, t)


def _lce_from_torch(t: Any) -> Module:
    """torch's reference path and its chunked path (``options``) compute the same loss: the
    refbp loss is built without ``options``."""
    weight = None if t.weight is None else t.weight.detach().cpu().numpy().copy()
    m = rnn.LinearCrossEntropyLoss(
        t.linear.in_features, t.num_classes, out_features=tuple(t.out_features),
        bias=t.linear.bias is not None, dtype=t.linear.weight.detach().numpy().dtype,
        reduction=t.reduction, weight=weight, ignore_index=t.ignore_index,
        label_smoothing=t.label_smoothing)
    m.load_state_dict({k: v.detach().cpu().numpy() for k, v in t.state_dict().items()})
    mine = dict(m.named_parameters())
    for name, p in t.named_parameters():
        mine[name].requires_grad = p.requires_grad
    return m.train(t.training)


register_converter(rnn.LinearCrossEntropyLoss, torch.nn.LinearCrossEntropyLoss, _lce_to_torch,
                   _lce_from_torch)
