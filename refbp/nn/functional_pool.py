"""Functional core of the pooling layers (no torch): window tables, forward and backward.

Every pooling -- sliding (max / average, with padding, dilation, ceil mode) or adaptive -- is
described by one *window table* over the flattened spatial plane of the input (``H * W``
values, ``D * H * W`` for 3-D, or ``L`` for 1-D):

- ``index`` (P, K) int64: flat input position of the k-th element of output window p
  (clipped to a valid position where the window reaches padding);
- ``valid`` (P, K) bool: whether that element lies inside the input (padding is not).

Windows are listed in row-major output order and their elements in row-major scan order
(``kd`` outer, then ``kh``, ``kw`` inner), which is the order torch's CPU kernels scan them.
The forward pass runs one vectorised step per window element k (``x[:, index[:, k]]`` for
all windows and samples at once), reducing in scan order as torch's kernels do; the backward pass
scatters the window gradients back with one ``np.add.at`` (overlapping windows add, in
torch's order). No Python loop runs over output positions.

Output size along an axis (torch's ``pooling_output_shape``)::

    O = floor((L + 2 p - d (k - 1) - 1 + (s - 1 if ceil_mode else 0)) / s) + 1
    if ceil_mode and (O - 1) s >= L + p:  O -= 1     (the last window must start inside)

Adaptive pooling window o along an axis of length L with O outputs covers
``[floor(o L / O), ceil((o + 1) L / O))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np


@dataclass(frozen=True)
class Windows:
    """A window table (see the module docstring) and the spatial shapes it maps."""

    index: np.ndarray
    valid: np.ndarray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def plane(self) -> int:
        """Number of values in one input plane (H * W, or L)."""
        return int(np.prod(self.in_shape, dtype=np.int64))

    @cached_property
    def disjoint(self) -> bool:
        """Whether no input position lies in two windows (padding not counted) and every
        window has an element inside the input (so that window maxima have distinct
        positions too: a window all in padding reports position 0)."""
        inside = self.index[self.valid]
        return bool(np.unique(inside).size == inside.size and self.valid.any(axis=1).all())

    @cached_property
    def whole_plane(self) -> bool:
        """Whether the table is one window over the whole plane in scan order (a global
        pooling): its elements are then the plane itself, in memory order."""
        return (self.index.shape[0] == 1 and bool(self.valid.all())
                and np.array_equal(self.index[0], np.arange(self.plane)))


def pool_output_size(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape`` for one axis."""
    num = length + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


def sliding_axis(length: int, k: int, s: int, p: int, d: int,
                 ceil_mode: bool) -> tuple[np.ndarray, np.ndarray]:
    """Positions (O, k) of the elements of every window along one axis (may be out of range)."""
    out = pool_output_size(length, k, s, p, d, ceil_mode)
    pos = np.arange(max(out, 0))[:, None] * s - p + np.arange(k)[None, :] * d
    return pos, (pos >= 0) & (pos < length)


def adaptive_bounds(length: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (floor(o L / O)) and end (ceil((o + 1) L / O)) of every adaptive window."""
    o = np.arange(out)
    return (o * length) // out, -((-(o + 1) * length) // out)


def adaptive_axis(length: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (O, Kmax) of adaptive windows along one axis; ``valid`` marks the real ones."""
    start, end = adaptive_bounds(length, out)
    kmax = int((end - start).max()) if out > 0 else 1
    pos = start[:, None] + np.arange(kmax)[None, :]
    return pos, pos < end[:, None]


def combine_axes(axes: list[tuple[np.ndarray, np.ndarray]], in_shape: tuple[int, ...]) -> Windows:
    """The window table of the outer product of per-axis windows (row-major everywhere).

    With ``D`` axes, output window ``(o_0, ..., o_{D-1})`` holds the elements
    ``(k_0, ..., k_{D-1})`` at flat position ``sum_a pos_a[o_a, k_a] * prod(in_shape[a+1:])``;
    both the windows and their elements are listed in row-major order.
    """
    d = len(axes)
    plane = int(np.prod(in_shape, dtype=np.int64))
    index = np.zeros((1,) * (2 * d), dtype=np.int64)
    ok = np.ones((1,) * (2 * d), dtype=bool)
    for a, (pos, valid) in enumerate(axes):
        shape = [1] * (2 * d)
        shape[a], shape[d + a] = pos.shape
        step = int(np.prod(in_shape[a + 1:], dtype=np.int64))
        index = index + pos.reshape(shape) * step
        ok = ok & valid.reshape(shape)
    n_out = int(np.prod([p.shape[0] for p, _ in axes], dtype=np.int64))
    n_el = int(np.prod([p.shape[1] for p, _ in axes], dtype=np.int64))
    full = tuple(p.shape[0] for p, _ in axes) + tuple(p.shape[1] for p, _ in axes)
    index = np.broadcast_to(index, full).reshape(n_out, n_el)
    ok = np.broadcast_to(ok, full).reshape(n_out, n_el)
    index = np.where(ok, np.clip(index, 0, max(plane - 1, 0)), 0).astype(np.int64)
    for arr in (index, ok):
        arr.flags.writeable = False
    return Windows(index, ok, tuple(in_shape), tuple(p.shape[0] for p, _ in axes))


@lru_cache(maxsize=256)
def sliding_windows(in_shape: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                    padding: tuple[int, ...], dilation: tuple[int, ...],
                    ceil_mode: bool) -> Windows:
    """The window table of a sliding pooling (max or average) over ``in_shape``."""
    axes = [sliding_axis(n, k, s, p, d, ceil_mode)
            for n, k, s, p, d in zip(in_shape, kernel, stride, padding, dilation, strict=True)]
    return combine_axes(axes, in_shape)


@lru_cache(maxsize=256)
def adaptive_windows(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Windows:
    """The window table of an adaptive pooling from ``in_shape`` to ``out_shape``."""
    axes = [adaptive_axis(n, o) for n, o in zip(in_shape, out_shape, strict=True)]
    return combine_axes(axes, in_shape)


SCAN_MAX = 32  # average windows up to this size are summed element by element, in scan order


def window_column(x2: np.ndarray, w: Windows, j: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Element j (scan order) of every window of ``x2`` (B, plane): (B, P) values, and the
    (P,) validity mask when some windows reach padding there (else None)."""
    vals = np.take(x2, w.index[:, j], axis=1)
    valid = w.valid[:, j]
    return vals, (None if valid.all() else valid)


def max_forward(x2: np.ndarray, w: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima (B, P) and their flat input positions (B, P), routed as torch routes them.

    Done as torch's CPU kernel does it: start from ``max = -inf`` at the first in-bounds
    element and scan the window in row-major order, replacing where ``v > max or isnan(v)``
    (one vectorised pass per window element, over all windows at once). Hence ties go to the
    *first* maximum, a window with NaN reports its *last* NaN, an all ``-inf`` window its first
    in-bounds element.
    """
    b, (p, k) = x2.shape[0], w.index.shape
    best = np.full((b, p), -np.inf, dtype=x2.dtype)
    first = w.index[np.arange(p), w.valid.argmax(axis=1)]
    pos = np.repeat(first[None, :], b, axis=0)
    check_nan = bool(np.isnan(x2).any())
    for j in range(k):
        vals, valid = window_column(x2, w, j)
        upd = vals > best
        if check_nan:
            upd |= np.isnan(vals)
        if valid is not None:
            upd &= valid
        np.copyto(best, vals, where=upd)
        np.copyto(pos, np.broadcast_to(w.index[:, j], pos.shape), where=upd)
    return best, pos


def scatter(values: np.ndarray, positions: np.ndarray, plane: int, dtype: np.dtype, *,
            distinct: bool = False, valid: np.ndarray | None = None) -> np.ndarray:
    """Add ``values`` (B, ...) into a zero (B, plane) array at ``positions`` (B, ...) per row.

    ``np.add.at`` adds one value at a time, in the dtype, in row-major order of ``values``:
    output window by output window, which is the order of torch's CPU backward kernels, so
    overlapping windows accumulate with the same roundings.

    ``distinct=True`` promises that the positions where ``valid`` (broadcast to ``values``;
    everywhere when None) holds are distinct within a row, and that ``values`` is 0 elsewhere.
    Each position then receives ``0 + v`` for one value ``v`` (or only zeros), so one
    assignment of ``v + 0`` (which turns -0 into +0 as the sum does) gives the same bits as
    ``np.add.at``, many times faster.
    """
    b = values.shape[0]
    flat = (np.arange(b).reshape((b,) + (1,) * (positions.ndim - 1)) * plane + positions)
    out = np.zeros(b * plane, dtype=dtype)
    vals = values.astype(dtype, copy=False)
    if not distinct:
        np.add.at(out, flat.ravel(), vals.ravel())
    elif valid is None:
        out[np.broadcast_to(flat, vals.shape)] = vals + dtype.type(0)
    else:
        mask = np.broadcast_to(valid, vals.shape)
        out[np.broadcast_to(flat, vals.shape)[mask]] = vals[mask] + dtype.type(0)
    return out.reshape(b, plane)


def max_backward(g2: np.ndarray, positions: np.ndarray, plane: int, *,
                 distinct: bool = False) -> np.ndarray:
    """Gradient of the window maxima: each output gradient goes to its argmax (adds up).
    Windows that share no input position (``Windows.disjoint``) have distinct argmaxes:
    pass ``distinct=True`` then (see :func:`scatter`)."""
    return scatter(g2, positions, plane, g2.dtype, distinct=distinct)


def sliding_divisor(in_shape: tuple[int, ...], kernel: tuple[int, ...],
                    stride: tuple[int, ...], padding: tuple[int, ...], ceil_mode: bool,
                    count_include_pad: bool, divisor_override: int | None) -> np.ndarray:
    """The divisor (P,) of every average window, as torch's CPU kernel forms it.

    Per axis, window ``[a, b)`` with ``a = o s - p``: ``pool = min(a + k, L + p) - a`` counts
    padding but not the ceil-mode overhang, ``n = min(b, L) - max(a, 0)`` counts input only.
    The divisor is ``divisor_override``, else the product of ``pool`` (count_include_pad) or
    of ``n``.
    """
    pools, counts = [], []
    for n, k, s, p in zip(in_shape, kernel, stride, padding, strict=True):
        out = pool_output_size(n, k, s, p, 1, ceil_mode)
        a = np.arange(out) * s - p
        b = np.minimum(a + k, n + p)
        pools.append(b - a)
        counts.append(np.minimum(b, n) - np.maximum(a, 0))
    valid_count = _outer(counts)
    if divisor_override is not None:
        div = np.full(valid_count.shape, divisor_override, dtype=np.int64)
    else:
        div = _outer(pools) if count_include_pad else valid_count
    return np.where(valid_count > 0, div, 0)


def adaptive_divisor(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Per-axis window lengths (P, naxes) of an adaptive average (torch divides by each)."""
    lengths = []
    for n, o in zip(in_shape, out_shape, strict=True):
        start, end = adaptive_bounds(n, o)
        lengths.append(end - start)
    grids = np.meshgrid(*lengths, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=-1)


def _outer(factors: list[np.ndarray]) -> np.ndarray:
    out = factors[0]
    for f in factors[1:]:
        out = np.multiply.outer(out, f)
    return out.ravel()


def divide(sums: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """``sums / divisor`` with the divisor (P,) or (P, naxes) applied in turn, in the sums'
    dtype; a window without input elements (divisor 0) gives 0, as torch skips it."""
    dt = sums.dtype.type
    div = divisor if divisor.ndim == 2 else divisor[:, None]
    out = sums
    empty = (div == 0).any(axis=-1)
    safe = np.where(div == 0, 1, div)
    for j in range(div.shape[1]):
        out = out / safe[:, j].astype(dt)
    return np.where(empty, dt(0), out) if empty.any() else out


def avg_forward(x2: np.ndarray, w: Windows, divisor: np.ndarray) -> np.ndarray:
    """Window sums divided as torch divides them: (B, P).

    Windows of up to ``SCAN_MAX`` elements are summed in scan order in the input dtype, one
    element at a time, as torch's CPU kernel sums them (padding skipped); larger windows
    (a global average) are gathered whole and reduced by NumPy's pairwise sum, as torch's
    global average is a ``mean`` reduction of its own order.
    """
    b, (p, k) = x2.shape[0], w.index.shape
    if w.whole_plane and k > SCAN_MAX:  # the gathered array would be x2 itself
        return divide(np.ascontiguousarray(x2).reshape(b, 1, k).sum(axis=-1), divisor)
    if k > SCAN_MAX:
        vals = np.take(x2, w.index, axis=1)
        if not w.valid.all():
            vals = np.where(w.valid, vals, x2.dtype.type(0))
        return divide(vals.sum(axis=-1), divisor)
    acc = np.zeros((b, p), dtype=x2.dtype)
    for j in range(k):
        vals, valid = window_column(x2, w, j)
        if valid is None:
            acc += vals
        else:
            np.add(acc, vals, out=acc, where=valid)
    return divide(acc, divisor)


def avg_backward(g2: np.ndarray, w: Windows, divisor: np.ndarray) -> np.ndarray:
    """Every in-bounds window element receives ``g / divisor`` of its window (adds up)."""
    share = divide(g2, divisor)
    if w.whole_plane:  # every position receives 0 + its window's share, once
        return np.repeat(share + g2.dtype.type(0), w.plane, axis=1)
    spread = np.where(w.valid, share[..., None], g2.dtype.type(0))
    positions = np.broadcast_to(w.index, spread.shape)
    return scatter(spread, positions, w.plane, g2.dtype, distinct=w.disjoint, valid=w.valid)
