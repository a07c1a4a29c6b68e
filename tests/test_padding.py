"""Unit tests (no torch) of the padding layers: hand values of every mode, the summed
gradients at edges, finite-difference gradchecks of every declared layer, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module
from refbp.registry.ops import of_kind

ROW = np.array([[[1.0, 2.0, 3.0, 4.0]]])  # (N=1, C=1, L=4)
PADS = [o for o in of_kind("layer") if "Pad" in o.name]


@pytest.mark.parametrize("layer,expected", [
    (rnn.ZeroPad1d((2, 1)), [0, 0, 1, 2, 3, 4, 0]),
    (rnn.ConstantPad1d(1, -5.0), [-5, 1, 2, 3, 4, -5]),
    (rnn.ConstantPad1d((-1, 1), 7.0), [2, 3, 4, 7]),  # negative padding crops
    (rnn.ReflectionPad1d((3, 2)), [4, 3, 2, 1, 2, 3, 4, 3, 2]),  # the edge is not repeated
    (rnn.ReplicationPad1d((2, 1)), [1, 1, 1, 2, 3, 4, 4]),
    (rnn.CircularPad1d((1, 3)), [4, 1, 2, 3, 4, 1, 2, 3]),
])
def test_hand_values(layer: rnn.Module, expected: list[float]) -> None:
    y = layer(ROW)
    assert y.ravel().tolist() == expected
    # every input element receives the sum of the gradients of its copies
    copies = [sum(1 for v in expected if v == k) for k in (1, 2, 3, 4)]
    assert layer.backward(np.ones_like(y)).ravel().tolist() == copies


def test_2d_and_3d_pad_the_last_dimensions_first() -> None:
    x = np.arange(6.0).reshape(1, 2, 3)
    y = rnn.ReplicationPad2d((1, 0, 0, 1))(x)
    assert y.tolist() == [[[0, 0, 1, 2], [3, 3, 4, 5], [3, 3, 4, 5]]]
    v = rnn.ZeroPad3d((0, 0, 0, 0, 1, 1))(np.ones((2, 1, 1, 1)))
    assert v.shape == (2, 3, 1, 1) and v[:, :, 0, 0].tolist() == [[0, 1, 0], [0, 1, 0]]
    assert rnn.ZeroPad2d((1, 2))(np.ones((3, 4))).shape == (3, 7)  # a 2-tuple pads the last dim


@pytest.mark.parametrize("op", PADS, ids=[o.name for o in PADS])
def test_gradcheck(op: object) -> None:
    sample = op.samples[0]  # type: ignore[attr-defined]
    dims = int(op.name[-2])  # type: ignore[attr-defined]
    shape = {1: (2, 2, 9), 2: (2, 2, 7, 6), 3: (1, 2, 3, 3, 4)}[dims]
    m = op.numpy_class()(**sample.options)  # type: ignore[attr-defined]
    x = np.random.default_rng(0).standard_normal(shape)
    res = check_module(m, x)
    assert res.passed, str(res)
    unbatched = check_module(m, x[0])
    assert unbatched.passed, str(unbatched)


def test_errors() -> None:
    with pytest.raises(RuntimeError, match=r"padding \(3, 3\) at dimension 2 of input \[1, 1, 3\]"):
        rnn.ReflectionPad1d(3)(np.ones((1, 1, 3)))
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        rnn.CircularPad1d(5)(np.ones((1, 1, 4)))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 1D input\)"):
        rnn.CircularPad1d(1)(np.ones(4))
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D"):
        rnn.ReplicationPad1d(1)(np.ones((1, 1, 2, 3)))
    with pytest.raises(RuntimeError, match="padding length 4 and input of dimension 1"):
        rnn.ConstantPad2d(1, 0.0)(np.ones(4))
    with pytest.raises(RuntimeError, match="non-empty"):
        rnn.ReplicationPad1d(1)(np.ones((1, 2, 0)))
    with pytest.raises(ValueError, match="divisible by 2"):
        rnn.ZeroPad2d((1, 2, 3))
    m = rnn.ZeroPad1d(1)
    m(np.ones((1, 1, 2)))
    with pytest.raises(ValueError, match=r"output shape \(1, 1, 4\), got \(1, 1, 2\)"):
        m.backward(np.ones((1, 1, 2)))
    assert repr(rnn.ConstantPad2d(1, 2.5)) == "ConstantPad2d(padding=(1, 1, 1, 1), value=2.5)"
    assert repr(rnn.ReflectionPad1d((1, 2))) == "ReflectionPad1d((1, 2))"
