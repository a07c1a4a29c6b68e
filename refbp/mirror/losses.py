"""Torch twins of the losses that own parameters: ``LinearCrossEntropyLoss`` and
``AdaptiveLogSoftmaxWithLoss``.

torch keeps LinearCrossEntropyLoss's ``in_features`` and ``bias`` on its ``linear`` child, so
the constructor arguments cannot be read by name; the weights still copy by state dict
(``linear.weight``, ``linear.bias``, the class ``weight`` buffer). torch's
AdaptiveLogSoftmaxWithLoss keeps ``cutoffs`` with ``n_classes`` appended, so it is read without
its last value; its weights copy by state dict too (``head.*``, ``tail.<i>.<j>.weight``).
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
    return _take_state(m, t)


def _take_state(m: Module, t: torch.nn.Module) -> Module:
    """``m`` with ``t``'s state dict, ``requires_grad`` flags and mode."""
    m.load_state_dict({k: v.detach().cpu().numpy() for k, v in t.state_dict().items()})
    mine = dict(m.named_parameters())
    for name, p in t.named_parameters():
        mine[name].requires_grad = p.requires_grad
    return m.train(t.training)


def _asm_to_torch(m: Any) -> torch.nn.Module:
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(m.in_features, m.n_classes, m.cutoffs[:-1],
                                            div_value=m.div_value, head_bias=m.head_bias)
    return finish_twin(m, t)


def _asm_from_torch(t: Any) -> Module:
    m = rnn.AdaptiveLogSoftmaxWithLoss(
        t.in_features, t.n_classes, t.cutoffs[:-1], div_value=t.div_value,
        head_bias=t.head_bias, dtype=t.head.weight.detach().numpy().dtype)
    return _take_state(m, t)


register_converter(rnn.LinearCrossEntropyLoss, torch.nn.LinearCrossEntropyLoss, _lce_to_torch,
                   _lce_from_torch)
register_converter(rnn.AdaptiveLogSoftmaxWithLoss, torch.nn.AdaptiveLogSoftmaxWithLoss,
                   _asm_to_torch, _asm_from_torch)
