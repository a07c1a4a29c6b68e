"""refbp.nn.utils clipping vs torch.nn.utils: total norm and clipped gradients.

Gradients are seeded random arrays of several shapes (one parameter without a gradient);
both sides clip copies of the same arrays. Compared with ``refbp.metrics.discrepancy`` at the
dtype's tolerance (float64 1e-12, float32 1e-5 normwise).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from refbp.nn.module import Parameter
from refbp.nn.utils import clip_grad_norm_, clip_grad_value_
from refbp.testing import assert_close

pytestmark = pytest.mark.parity

SHAPES = [(7, 5), (5,), (3, 4, 2), (1,)]
DTYPES = [np.float64, np.float32]


def _grads(dtype: type, scale: float, seed: int = 0) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    grads: list[np.ndarray | None] = [
        (scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES
    ]
    grads.insert(2, None)  # a parameter that got no gradient is skipped
    return grads


def _pair(grads: list[np.ndarray | None]) -> tuple[list[Parameter], list[torch.Tensor]]:
    ours, theirs = [], []
    for g in grads:
        shape = (2,) if g is None else g.shape
        dtype = np.float64 if g is None else g.dtype
        p = Parameter(np.zeros(shape, dtype=dtype))
        p.grad = None if g is None else g.copy()
        t = torch.zeros(shape, dtype=torch.float64 if g is None else torch.from_numpy(g).dtype,
                        requires_grad=True)
        t.grad = None if g is None else torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(t)
    return ours, theirs


def _check_grads(ours: list[Parameter], theirs: list[torch.Tensor], dtype: type) -> float:
    worst = 0.0
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is None:
            assert p.grad is None
            continue
        assert p.grad is not None and p.grad.dtype == np.dtype(dtype)
        d = assert_close(p.grad, t.grad.numpy(), dtype=dtype, name="clipped grad")
        worst = max(worst, d.normwise)
    return worst


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5, 0.5, "inf", 0.0, -math.inf])
@pytest.mark.parametrize("max_norm", [0.3, 1e6], ids=["clips", "no-clip"])
def test_clip_grad_norm_matches_torch(dtype: type, norm_type: float | str,
                                      max_norm: float) -> None:
    ours, theirs = _pair(_grads(dtype, scale=2.0))
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm,
                                            norm_type=norm_type)  # type: ignore[arg-type]
    assert isinstance(total, np.ndarray) and total.shape == () and total.dtype == np.dtype(dtype)
    assert_close(total, ttotal.numpy(), dtype=dtype, name=f"total norm (p={norm_type})")
    _check_grads(ours, theirs, dtype)
    if max_norm < 1 and float(norm_type) > 0:
        # clipped: the new total norm is max_norm (up to the 1e-6 guard); p = 0 and p = -inf
        # are not homogeneous, so scaling does not move them to max_norm
        after = clip_grad_norm_(ours, 1e6, norm_type=norm_type)
        assert float(after) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_float64_is_exact_given_the_norm() -> None:
    """With the same total norm, the scale factor (reciprocal times max_norm) is bit-identical."""
    ours, theirs = _pair(_grads(np.float64, scale=3.0, seed=4))
    clip_grad_norm_(ours, 0.7)
    torch.nn.utils.clip_grad_norm_(theirs, 0.7)
    worst = _check_grads(ours, theirs, np.float64)
    assert worst <= 1e-15


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_norm(bad: float) -> None:
    grads = _grads(np.float64, scale=1.0)
    grads[0][1, 1] = bad  # type: ignore[index]
    ours, theirs = _pair(grads)
    with pytest.raises(RuntimeError) as ours_err:
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as theirs_err:
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    assert str(ours_err.value) == str(theirs_err.value)
    # without the flag both scale by the non-finite norm: nan gradients everywhere
    total = clip_grad_norm_(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert np.isnan(float(total)) == math.isnan(float(ttotal))
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is not None:
            assert p.grad is not None
            np.testing.assert_array_equal(np.isnan(p.grad), torch.isnan(t.grad).numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("clip_value", [0.5, 2.0, -0.1])
def test_clip_grad_value_matches_torch(dtype: type, clip_value: float) -> None:
    grads = _grads(dtype, scale=1.5, seed=2)
    grads[0][0, 0] = np.nan  # type: ignore[index]
    ours, theirs = _pair(grads)
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_single_parameter_and_empty() -> None:
    g = np.arange(6.0).reshape(2, 3)
    p = Parameter(np.zeros((2, 3)))
    p.grad = g.copy()
    t = torch.zeros((2, 3), dtype=torch.float64, requires_grad=True)
    t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(p, 2.0)
    ttotal = torch.nn.utils.clip_grad_norm_(t, 2.0)
    assert float(total) == pytest.approx(float(ttotal), rel=1e-15)
    np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-15, atol=0)
    empty = clip_grad_norm_([], 1.0)
    tempty = torch.nn.utils.clip_grad_norm_([], 1.0)
    assert empty.dtype == np.float32 and float(empty) == float(tempty) == 0.0
