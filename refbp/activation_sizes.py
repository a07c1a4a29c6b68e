"""Activation memory of a model, from its layers' arguments and the batch shape, unbuilt.

Parameters and buffers are bounded by :mod:`refbp.layer_sizes`; what a layer *computes* can
still be huge while its weights are small: ``Linear(4, 5_000_000)`` holds 25 million weights,
but on a batch of 256 its output alone is 1.3 billion elements, and ``Conv2d(3, 512, 3)`` on
256 images of 224 x 224 produces 6.6 billion. A forward pass keeps every layer's output (and
a few layers' inner values) for the backward pass, which then holds gradients of the same
shapes. :func:`activation_elements` estimates that memory with torch's shape rules
(``torch/nn/modules/*.py``), from the input shape of one step and the layers' arguments,
before anything is built or runs: each layer's output shape (and the inner values its backward
pass keeps besides, such as the gates of a recurrent layer or the attention weights) by the
rule its declaration names (``OpInfo.output``, the rules in :mod:`refbp.registry.shapes`);
a layer without a rule keeps the shape of its input (activations, norms, dropout).

The estimate counts elements (multiply by the dtype's size for bytes): the input, and for each
layer its output and inner values, twice (the forward values kept and their gradients in the
backward pass). The limit is :attr:`refbp.limits.Limits.activation_elements`. Arguments that
cannot build a layer leave the shape unchanged (the build then names the problem).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from refbp.layer_sizes import _with_defaults
from refbp.registry.ops import OPS
from refbp.registry.shapes import Shape, as_size

_RULES = {o.name: o.output for o in OPS if o.output is not None}
SHAPED_TYPES = frozenset(_RULES)
"""Layer types whose output shape is not their input's (their declaration has a rule)."""


def layer_output(layer_type: str, args: Mapping[str, Any], shape: Shape) -> tuple[Shape, int]:
    """``(output shape, inner elements)`` of ``layer_type(**args)`` on an input of ``shape``
    (see the module docstring); the input shape and 0 for a shape-keeping layer or arguments
    that cannot build one."""
    rule = _RULES.get(layer_type)
    if rule is None:
        return shape, 0
    full = _with_defaults(layer_type, args)
    if full is None:
        return shape, 0
    try:
        out, inner = rule(shape, full)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return shape, 0
    return tuple(max(int(v), 0) for v in out), max(int(inner), 0)


def activation_elements(layers: Sequence[tuple[str, Mapping[str, Any]]], input_shape: Shape
                        ) -> tuple[int, int, str]:
    """``(total, largest, name)``: the activation elements of a forward and backward pass of
    ``layers`` (``(type, args)`` in order) on one batch of ``input_shape`` (batch first), and
    the largest single layer's share with its ``model[i] Type`` name."""
    shape = tuple(as_size(v) for v in input_shape)
    total = 2 * math.prod(shape)
    largest, name = 0, "the input"
    for i, (layer_type, args) in enumerate(layers):
        shape, inner = layer_output(layer_type, args, shape)
        here = 2 * (math.prod(shape) + inner)
        total += here
        if here > largest:
            largest, name = here, f"model[{i}] {layer_type}"
    return total, largest, name
