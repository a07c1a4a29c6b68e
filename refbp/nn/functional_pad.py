"""Functional core of the padding layers: constant, reflect, replicate and circular padding of
the last 1, 2 or 3 dimensions, and its backward.

Every mode is an index map per padded axis: output position ``o`` (``-left <= o < L +
right`` in input coordinates) reads input position

- constant: ``o`` if ``0 <= o < L``, else the fill value (no input, no gradient);
- reflect: ``|o|``, mirrored at ``L - 1`` (``2 (L - 1) - |o|``), the edge not repeated;
- replicate: ``clip(o, 0, L - 1)``;
- circular: ``o mod L``; with a negative side torch crops first and wraps around the rest
  (``start + (o mod L')`` over the kept ``L'`` positions).

Negative padding crops (the map starts inside the input). The forward pass gathers along
each padded axis, the last one first, as torch's ``F.pad`` pads the last dimension first;
the backward pass scatter-adds the upstream gradient through the same maps in reverse order,
so an input element that several outputs copy (the edges under replicate, the mirrored rows
under reflect) receives the sum of their gradients.
"""

from __future__ import annotations

import numpy as np

MODES = ("constant", "reflect", "replicate", "circular")


def pad_index(size: int, left: int, right: int, mode: str) -> np.ndarray:
    """The input position of every output position along one axis (-1: the fill value)."""
    pos = np.arange(-left, size + right)
    if mode == "constant":
        return np.where((pos >= 0) & (pos < size), pos, -1)
    if size == 0:
        return np.full(pos.shape, -1)
    if mode == "reflect":
        mirrored = np.abs(pos)
        return np.where(mirrored >= size, 2 * (size - 1) - mirrored, mirrored)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    # circular: torch crops first (negative sides), then wraps around what is left
    start, kept = max(-left, 0), size - max(-left, 0) - max(-right, 0)
    wrapped = np.arange(-max(left, 0), kept + max(right, 0))
    return start + np.mod(wrapped, kept)


def _maps(shape: tuple[int, ...], padding: tuple[int, ...],
          mode: str) -> list[tuple[int, np.ndarray, int]]:
    """``(axis, index map, input size)`` per padded axis, in the order the forward applies
    them (the last axis first)."""
    maps = []
    for k in range(len(padding) // 2):
        axis = len(shape) - 1 - k
        size = shape[axis]
        maps.append((axis, pad_index(size, padding[2 * k], padding[2 * k + 1], mode), size))
    return maps


def pad(x: np.ndarray, padding: tuple[int, ...], mode: str, value: float = 0.0) -> np.ndarray:
    """``x`` padded by ``padding = (left, right[, top, bottom[, front, back]])`` (the last
    dimension first, as ``torch.nn.functional.pad``)."""
    out = x
    for axis, idx, _ in _maps(x.shape, padding, mode):
        taken = np.take(out, np.maximum(idx, 0), axis=axis)
        if mode == "constant":
            shape = [1] * out.ndim
            shape[axis] = idx.size
            taken = np.where((idx >= 0).reshape(shape), taken, np.asarray(value, x.dtype))
        out = taken
    return out


def pad_backward(grad: np.ndarray, in_shape: tuple[int, ...], padding: tuple[int, ...],
                 mode: str) -> np.ndarray:
    """d loss / d x: the upstream gradient summed back through each index map (fill
    positions dropped), the first padded axis of the forward pass last."""
    g = grad
    for axis, idx, size in reversed(_maps(in_shape, padding, mode)):
        moved = np.moveaxis(g, axis, 0)
        acc = np.zeros((size,) + moved.shape[1:], dtype=grad.dtype)
        keep = idx >= 0
        np.add.at(acc, idx[keep], moved[keep])
        g = np.moveaxis(acc, 0, axis)
    return g
