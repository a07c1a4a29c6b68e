"""Converters of the lazy layers (``refbp.nn.lazy``) to and from torch's, uninitialised.

torch draws a lazy module's weights at its first forward, from its own generator, which
NumPy cannot reproduce. So the refbp layer takes them, as dropout masks are taken: both
converters pair the uninitialised refbp layer with an uninitialised torch twin and give the
refbp layer a weight source (``LazyModule.take_weights_from``) reading the state the torch
twin holds right after it materialised. That state is captured by a stock forward pre-hook
registered on the twin after torch's own lazy hook (hooks run in registration order): it
copies the state dict once the twin is sized and initialised, before its forward runs (so
before a training-mode BatchNorm updates its running statistics), and removes itself.

A torch lazy module that has run its first forward has become its eager class (``Linear``,
``Conv2d``, ...) and converts as such; so does a refbp lazy layer after its first forward.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from refbp import nn as rnn
from refbp._checks import param_dtype
from refbp.mirror.modules import register_converter, torch_dtype
from refbp.nn.lazy import LazyModule, WeightSource

__all__ = ["LAZY_TYPES", "materialized_state"]

#: The lazy layers, each converted to and from its torch namesake.
LAZY_TYPES = ("LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
              "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
              "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
              "LazyInstanceNorm3d")


def materialized_state(twin: torch.nn.Module) -> WeightSource:
    """A weight source of ``twin``, an uninitialised torch lazy module: None until its first
    forward, then the state dict it held just after materialising (before that forward ran)."""
    held: dict[str, Any] = {}

    def capture(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        held["state"] = {k: v.detach().cpu().numpy().copy()
                         for k, v in module.state_dict().items()}
        handle.remove()

    handle = twin.register_forward_pre_hook(capture)
    return lambda: held.get("state")


def _torch_dtype_of(t: torch.nn.Module) -> np.dtype | None:
    """The NumPy dtype of the twin's first floating-point (uninitialised) tensor."""
    for v in (*t.parameters(), *t.buffers()):
        if v.is_floating_point():
            return np.dtype(str(v.dtype).removeprefix("torch."))
    return None


def _from_torch(t: Any) -> LazyModule:
    """The refbp lazy layer of an uninitialised torch lazy module, taking its weights."""
    cls = getattr(rnn, type(t).__name__)
    names = [n for n in inspect.signature(cls).parameters if n not in ("dtype", "generator")]
    kwargs: dict[str, Any] = {n: getattr(t, n) for n in names if n != "bias"}
    # bias: whether torch made one (a norm without affine makes none, whatever its argument)
    kwargs["bias"] = t.bias is not None or not getattr(t, "affine", True)
    m = cls(**kwargs, dtype=_torch_dtype_of(t))
    m.take_weights_from(materialized_state(t))
    return m.train(t.training)


def _to_torch(m: Any) -> torch.nn.Module:
    """An uninitialised torch lazy twin of an uninitialised refbp lazy layer, whose weights
    the refbp layer takes."""
    kwargs = {k: v for k, v in m._eager_kwargs.items() if k not in ("dtype", "generator")}
    t = getattr(torch.nn, type(m).__name__)(**kwargs)
    t = t.to(torch_dtype(param_dtype(m._eager_kwargs.get("dtype"))))
    m.take_weights_from(materialized_state(t))
    return t.train(m.training)


for _name in LAZY_TYPES:
    register_converter(getattr(rnn, _name), getattr(torch.nn, _name), _to_torch, _from_torch)
