"""Elements of a layer's parameters and buffers, from its constructor arguments, unbuilt.

A scenario's size limits (:mod:`refbp.limits`) must hold *before* a layer allocates anything:
``Conv2d(3000, 3000, 3)`` or ``Embedding(400_000_000, 4)`` would be killed by the kernel's
out-of-memory killer while it is being built. :func:`layer_elements` completes a layer's
arguments with the refbp class's defaults (the same as torch's) and applies the size rule its
declaration names (``OpInfo.size``, torch's shape rules in :mod:`refbp.registry.sizes`),
without building it. A layer whose declaration has no rule holds nothing (activations,
pooling, dropout, reshaping).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from refbp.registry.ops import OPS

_RULES = {o.name: o.size for o in OPS if o.size is not None}
COUNTED_TYPES = frozenset(_RULES)
"""Layer types that hold parameters or buffers (their declaration has a size rule)."""


def _with_defaults(layer_type: str, args: Mapping[str, Any]) -> dict[str, Any] | None:
    """``args`` completed with the refbp class's defaults (None: arguments that do not bind)."""
    from refbp import nn

    cls = getattr(nn, layer_type, None)
    if cls is None:
        return None
    try:
        bound = inspect.signature(cls).bind_partial(**args)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def layer_elements(layer_type: str, args: Mapping[str, Any]) -> int:
    """Elements of every parameter and buffer ``layer_type(**args)`` would hold (see the
    module docstring); 0 for a layer that holds none or arguments that cannot build one."""
    rule = _RULES.get(layer_type)
    if rule is None:
        return 0
    full = _with_defaults(layer_type, args)
    if full is None:
        return 0
    try:
        return rule(full)
    except KeyError:  # a required size left out: the build names it
        return 0
