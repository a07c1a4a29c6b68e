"""Unit tests (no torch) of Unfold and Fold: the columns by hand, Fold as the adjoint of
Unfold (<Unfold x, y> = <x, Fold y>), gradchecks and torch's errors."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module


def test_unfold_columns_by_hand() -> None:
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    cols = rnn.Unfold(2)(x)
    assert cols.shape == (1, 4, 4)
    # column (p, q) holds the 2x2 block at (p, q), row-major over the kernel
    assert cols[0, :, 0].tolist() == [0, 1, 3, 4] and cols[0, :, 3].tolist() == [4, 5, 7, 8]


@pytest.mark.parametrize("k,d,p,s", [(2, 1, 0, 1), ((2, 3), (2, 1), 1, (1, 2)), (3, 1, 1, 2)])
def test_fold_is_the_adjoint_of_unfold(k: object, d: object, p: object, s: object) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 7))
    cols = rnn.Unfold(k, d, p, s)(x)  # type: ignore[arg-type]
    y = rng.standard_normal(cols.shape)
    folded = rnn.Fold((6, 7), k, d, p, s)(y)  # type: ignore[arg-type]
    assert np.isclose(np.sum(cols * y), np.sum(x * folded), rtol=1e-13)
    # overlaps are summed: folding the unfolded ones counts the blocks covering each pixel
    counts = rnn.Fold((6, 7), k, d, p, s)(rnn.Unfold(k, d, p, s)(np.ones((1, 1, 6, 7))))  # type: ignore[arg-type]
    assert counts.min() >= 0 and counts.max() >= 1


@pytest.mark.parametrize("m,shape", [(rnn.Unfold((2, 3), padding=1, stride=2), (2, 2, 5, 6)),
                                     (rnn.Unfold(2), (3, 4, 4)),
                                     (rnn.Fold((4, 5), 2), (2, 8, 12)),
                                     (rnn.Fold(4, 2, stride=2), (8, 4))])
def test_gradcheck(m: rnn.Module, shape: tuple[int, ...]) -> None:
    res = check_module(m, np.random.default_rng(1).standard_normal(shape))
    assert res.passed, str(res)


def test_errors() -> None:
    with pytest.raises(RuntimeError, match=r"Only 3D or 4D input Tensors are supported \(got 2D"):
        rnn.Unfold(2)(np.ones((3, 3)))
    with pytest.raises(RuntimeError, match=r"input.size\(1\)=5 and kernel_size=\(2, 2\)"):
        rnn.Fold(4, 2)(np.ones((1, 5, 9)))
    with pytest.raises(RuntimeError, match=r"sliding blocks 3 \* 3 = 9, but got input.size\(2\)=8"):
        rnn.Fold(4, 2)(np.ones((1, 4, 8)))
