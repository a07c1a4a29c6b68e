"""The one table of tolerances used everywhere refbp compares two numbers.

Every comparison (unit tests, parity tests, the harness, reports) reads its bounds from here.
A tensor ``a`` (refbp) agrees with a reference ``b`` (torch, or finite differences) when both

- normwise:    ||a - b||_2 / max(||b||_2, tiny)  <= ``normwise``
- elementwise: max_i |a_i - b_i| / (atol + rtol * |b_i|)  <= 1   (the *tolerance ratio*)

hold (the normwise test is waived when every |a_i - b_i| <= atol, e.g. a reference that is
exactly zero). The normwise bound is the headline figure (elementwise relative error alone is
misleading on large sums in float32, and on elements that cancel to near zero); the
elementwise test catches a single wrong element hidden inside a large norm.

=========  ==========  =======  =======  ==========================================
dtype      normwise    rtol     atol     why
=========  ==========  =======  =======  ==========================================
float64    1e-12       1e-9     1e-12    eps64 = 2.2e-16; a few thousand roundings
float32    1e-5        1e-4     1e-6     eps32 = 1.2e-7; a hundred roundings
=========  ==========  =======  =======  ==========================================

Finite differences (``refbp.gradcheck``, float64 central differences, step h = 1e-6) are an
approximation with truncation error O(h^2) and rounding error O(eps/h), so they get their own,
looser bound: max relative error <= ``GRADCHECK_RTOL`` = 1e-6 with an absolute floor
``GRADCHECK_ATOL`` = 1e-8.

A scenario may override any of these values (see ``refbp.parity``). The built-in suites use
exactly the stated exceptions in ``OVERRIDES`` below, each with its measured reason.

The tolerance a comparison uses is merged in one place, :func:`effective_tolerance`: the
dtype's entry here, then each layer of overrides in order, a later layer winning key by key
(for ``refbp run``: ``[tool.refbp.tolerances.<dtype>]``, then the scenario's own
``tolerance``; for ``assert_parity`` and ``check_gradients``: their ``rtol``/``atol``/
``normwise`` arguments, gathered by :func:`given_overrides`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeGuard

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """Bounds for one dtype: normwise relative error, and elementwise rtol/atol."""

    normwise: float
    rtol: float
    atol: float


TOLERANCE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Tolerance))
"""The keys an override may set: ``normwise``, ``rtol``, ``atol``."""

TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(normwise=1e-12, rtol=1e-9, atol=1e-12),
    "float32": Tolerance(normwise=1e-5, rtol=1e-4, atol=1e-6),
}

OVERRIDES: dict[str, dict[str, float]] = {
    # Centered RMSprop divides by sqrt(v - avg^2) + eps: in float32 the cancellation in
    # v - avg^2 amplifies the rounding of the BLAS-order-dependent gradients, so momentum_buffer
    # elements of size ~1e-3 differ by ~2e-6 from torch while normwise stays at ~6e-7 (quick
    # suite, 20 steps, not growing).
    "float32_centered_rmsprop": {"atol": 1e-5},
    # 100-step float32 training with RMSprop/Adadelta (full suite): dividing by a running RMS
    # amplifies last-bit gradient differences along the trajectory; measured normwise up to
    # 3.2e-5 and elementwise ratios up to 54 on near-zero momentum elements, growing with the
    # step count, while the float64 runs of the same trajectories agree to <= 1e-12 and the
    # optimizers fed identical float32 gradients agree to <= 7.6e-7.
    "float32_rms_long_training": {"normwise": 1e-4, "atol": 1e-4},
    # Softmax attention in float32: each row of the softmax VJP dS sums to zero, so the query
    # gradient dQ = c dS K depends only on K - mean(K) but is computed from K; with key biases
    # and random weights the cancellation leaves elements of size ~5e-3 carrying rounding of
    # size eps32 |dS| |K|. Measured (MultiheadAttention op checks, E = 8, 2-4 heads): max
    # |refbp - torch| 3.8e-6 on such elements while normwise stays <= 3e-7, and float64 agrees
    # to <= 1e-15 normwise on the same cases.
    "float32_attention": {"atol": 1e-5},
    # Muon (both dtypes): torch runs the Newton-Schulz iteration in bfloat16 and accumulates
    # its bfloat16 matrix products in float32 in the order of the CPU's gemm kernel; refbp
    # sums the (exact) products exactly and rounds once, so where torch's float32 sum lands on
    # the other side of a bfloat16 rounding boundary one element of the orthogonalised update
    # O differs by one bfloat16 unit, at most 2^-7 for |O| < 2, and the parameter by
    # adjusted_lr * 2^-7 (2.2e-4 at lr 0.02 on an 8x4 matrix). Measured with identical
    # gradients, 100 steps: 8 of 9 option sets agree to <= 1e-16 (float64) and 1e-7
    # (float32); lr 0.01 has one such flip, max |refbp - torch| 1.1e-4, normwise 1.0e-4.
    # A wrong formula (lr adjustment, decay, momentum) moves parameters by ~lr every step.
    "muon_bfloat16": {"normwise": 1e-3, "rtol": 1e-3, "atol": 1e-3},
    # L-BFGS (20 iterations per step) builds its curvature pairs from differences of
    # gradients and divides by their dot products, so a last-bit difference in a dot product
    # (NumPy's BLAS vs torch's, another summation order) grows from iteration to iteration.
    # Measured with identical closures on the full data set of the parity tests' MLPs: after
    # 3 steps float64 agrees to 6e-13 normwise (MSE, lr 1), and 1e-12 (classifier); float32
    # to 6e-4 normwise (MSE, lr 1; 4e-6 after one step), 3e-6 with lr 1e-3. A wrong
    # two-loop recursion or line search moves the parameters by O(1).
    "lbfgs_float64": {"normwise": 1e-10, "rtol": 1e-7, "atol": 1e-10},
    "lbfgs_float32": {"normwise": 5e-3, "rtol": 5e-2, "atol": 1e-3},
    # A float64 model whose own code computes in float32: transformers' LlamaRMSNorm casts
    # the hidden states to float32 (``hidden_states.to(torch.float32)``) and its rotary
    # embedding builds cos/sin in float32, on both sides. The two float32 reductions (the
    # RMS mean over 8 features) round differently in the last bit (measured, node by node:
    # the first departing node is the float32 ``mean``, 4.8e-8 relative), and that float32
    # rounding reaches the float64 outputs (measured 2e-5 elementwise relative on logits near
    # zero): such a model is compared at float32's tolerance.
    "float64_computed_in_float32": {"normwise": 1e-5, "rtol": 1e-4, "atol": 1e-6},
}


def is_tolerance_value(value: object) -> TypeGuard[int | float]:
    """A finite non-negative number (not a bool): what a tolerance may be set to (an infinite
    tolerance would pass anything)."""
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and 0 <= value < math.inf)


def check_overrides(overrides: Mapping[str, object], where: str = "") -> dict[str, float]:
    """Validated tolerance overrides: keys among ``normwise``, ``rtol``, ``atol``, values
    finite non-negative numbers (returned as floats; an infinite tolerance would pass
    anything). ``where`` prefixes the error messages."""
    unknown = set(overrides) - set(TOLERANCE_KEYS)
    if unknown:
        raise ValueError(f"{where}unknown tolerance keys {sorted(unknown)}; "
                         "expected normwise, rtol, atol")
    out = {}
    for key, value in overrides.items():
        if not is_tolerance_value(value):
            raise ValueError(f"{where}{key} must be a finite non-negative number, got "
                             f"{value!r}")
        out[key] = float(value)
    return out


GRADCHECK_EPS = 1e-6
GRADCHECK_RTOL = 1e-6
GRADCHECK_ATOL = 1e-8


def normwise_waived(max_abs: Any, normwise: Any, *, atol: Any, normwise_tol: Any) -> Any:
    """Where the normwise test is waived: every |a - b| <= atol while normwise > its bound.

    The reference is then zero up to rounding (e.g. a converged gradient) and the normwise
    figure divides noise by noise; the absolute floor decides, as it does elementwise. Works
    on floats and elementwise on arrays or pandas Series.
    """
    return (max_abs <= atol) & (normwise > normwise_tol)


def tolerance_for(dtype: object) -> Tolerance:
    """The tolerance of a dtype (``np.float32``, ``"float64"``, ...)."""
    name = np.dtype(dtype).name  # type: ignore[call-overload]
    if name not in TOLERANCES:
        raise ValueError(f"no tolerance defined for dtype {name}; known: {sorted(TOLERANCES)}")
    return TOLERANCES[name]


def merge_overrides(*layers: Mapping[str, float] | None) -> dict[str, float]:
    """Layers of tolerance overrides merged in order, a later layer winning key by key
    (None or empty layers are skipped)."""
    merged: dict[str, float] = {}
    for layer in layers:
        merged.update(layer or {})
    return merged


def effective_tolerance(dtype: object, *layers: Mapping[str, float] | None) -> Tolerance:
    """The tolerance a comparison in ``dtype`` uses: :func:`tolerance_for` with the override
    ``layers`` applied in order (:func:`merge_overrides`)."""
    return replace(tolerance_for(dtype), **merge_overrides(*layers))


def given_overrides(*, rtol: object = None, atol: object = None,
                    normwise: object = None) -> dict[str, float]:
    """The tolerance arguments a caller gave (None: not given), validated
    (:func:`check_overrides`)."""
    return check_overrides({k: v for k, v in (("rtol", rtol), ("atol", atol),
                                              ("normwise", normwise)) if v is not None})
