"""Unit tests of the activation layers (no torch): hand values, kinks, extremes, gradcheck."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.metrics import discrepancy
from refbp.nn import Module
from refbp.nn._special import erf
from refbp.registry.ops import of_kind
from refbp.tolerances import tolerance_for

Factory = Callable[[], Module]

# Every option set of every declared activation (refbp.registry), keyed by its label
# ("Softplus(beta=2.0, threshold=1.0)"); softmax-like ones reduce along ``dim``.
CHECKS = {c.label(o.name): (o, c) for o in of_kind("activation") for c in o.checks}
ALL: dict[str, Factory] = {k: functools.partial(o.numpy_class(), **c.options)
                           for k, (o, c) in CHECKS.items()}
# Ops that take only some shapes (GLU, Softmax2d) run on the shapes their checks declare.
SHAPED = {k: f for k, f in ALL.items() if CHECKS[k][1].shapes}
ALONG_DIM = {k: f for k, f in ALL.items() if "dim" in CHECKS[k][0].args and k not in SHAPED}
ELEMENTWISE = {k: f for k, f in ALL.items() if k not in ALONG_DIM}
# Differentiable at 0 (no kink there): exact zeros are included in their gradchecks.
SMOOTH_AT_ZERO = [k for k in ELEMENTWISE if 0.0 not in CHECKS[k][1].kinks]
# Finite-difference steps for inputs of magnitude up to 1e4. Both are powers of two, so
# x +- h is exact for every x used (a multiple of 2^-10); a decimal step such as 1e-6 would be
# rounded to the 1.8e-12 grid of 1e4, a 1e-6 relative error in the step itself.
# Elementwise functions are constant or exactly linear for |x| >= 50 (to within e^-50), so
# the large step has no truncation error and keeps rounding error ~ eps*|L|/h small even
# though |L| ~ 1e4; softmax rows near +-1e4 keep their curvature, hence the small step.
STEP_SATURATED = 2.0**-10
STEP_SHIFTED = 2.0**-20


def assert_close(actual: object, expected: object) -> None:
    """refbp value vs hand-computed value, with the float64 tolerance of refbp.tolerances."""
    a = np.asarray(actual)
    d = discrepancy(a, np.asarray(expected, dtype=np.float64), tolerance_for(a.dtype))
    assert d.passed, f"refbp vs hand value: {d}"


def forward_backward(m: Module, x: object, g: object = None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = m(x)
    return y, m.backward(np.ones_like(y) if g is None else np.asarray(g, dtype=np.float64))


# -- hand-computed values ------------------------------------------------------------------
E = math.e
SIXTH_F32 = 0.1666666716337204  # float32(1) / float32(6)
SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
MISH_T1 = ((1 + E) ** 2 - 1) / ((1 + E) ** 2 + 1)  # tanh(log(1 + e))
HAND: list[tuple[str, Factory, list[float], list[float], list[float]]] = [
    # name, factory, x, y, dy/dx (upstream gradient of ones)
    ("ReLU", nn.ReLU, [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.1), [-2.0, 0.0, 3.0], [-0.2, 0.0, 3.0], [0.1, 0.1, 1.0]),
    ("ELU", lambda: nn.ELU(alpha=2.0), [-1.0, 0.0, 1.0], [2 * (1 / E - 1), 0.0, 1.0],
     [2 / E, 2.0, 1.0]),
    ("GELU", nn.GELU, [-1.0, 0.0, 1.0], [-0.15865525393145707, 0.0, 0.8413447460685429],
     [0.15865525393145707 - 0.24197072451914337, 0.5,
      0.8413447460685429 + 0.24197072451914337]),
    ("GELU(tanh)", lambda: nn.GELU(approximate="tanh"), [0.0, 1.0], [0.0, 0.8411919906082768],
     [0.5, 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
      + 0.5 * (1 - math.tanh(math.sqrt(2 / math.pi) * 1.044715) ** 2)
      * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715)]),
    ("SiLU", nn.SiLU, [0.0, 1.0], [0.0, 1 / (1 + 1 / E)],
     [0.5, (1 / (1 + 1 / E)) * (1 + 1 / (1 + E))]),
    ("Sigmoid", nn.Sigmoid, [0.0, 1.0, -1e4, 1e4], [0.5, 1 / (1 + 1 / E), 0.0, 1.0],
     [0.25, E / (1 + E) ** 2, 0.0, 0.0]),
    ("Tanh", nn.Tanh, [0.0, 1.0, -1e4, 1e4], [0.0, math.tanh(1.0), -1.0, 1.0],
     [1.0, 1 - math.tanh(1.0) ** 2, 0.0, 0.0]),
    ("Softplus", nn.Softplus, [0.0, 1.0, -1e4, 1e4], [math.log(2), math.log1p(E), 0.0, 1e4],
     [0.5, E / (1 + E), 0.0, 1.0]),
    # beta x = 20 is not above the threshold (smooth branch); 21 is (returns x exactly).
    ("Softplus(threshold)", nn.Softplus, [20.0, 21.0], [math.log1p(math.exp(20.0)), 21.0],
     [1 / (1 + math.exp(-20.0)), 1.0]),
    ("Softplus(beta=2)", lambda: nn.Softplus(beta=2.0), [0.0, 10.5], [math.log(2) / 2, 10.5],
     [0.5, 1.0]),
    ("PReLU", nn.PReLU, [-2.0, 0.0, 3.0], [-0.5, 0.0, 3.0], [0.25, 0.25, 1.0]),
    # both kinks have the subgradient 0, as the flat sides
    ("Hardtanh", nn.Hardtanh, [-2.0, -1.0, 0.5, 1.0, 3.0], [-1.0, -1.0, 0.5, 1.0, 1.0],
     [0.0, 0.0, 1.0, 0.0, 0.0]),
    ("Hardtanh(-0.5, 2)", lambda: nn.Hardtanh(-0.5, 2.0), [-0.5, -0.25, 2.0, 2.5],
     [-0.5, -0.25, 2.0, 2.0], [0.0, 1.0, 0.0, 0.0]),
    ("ReLU6", nn.ReLU6, [-1.0, 0.0, 3.0, 6.0, 7.0], [0.0, 0.0, 3.0, 6.0, 6.0],
     [0.0, 0.0, 1.0, 0.0, 0.0]),
    # the outer pieces own the kinks: f'(-3) = 0, f'(3) = 1
    ("Hardswish", nn.Hardswish, [-4.0, -3.0, 0.0, 1.5, 3.0, 4.0],
     [0.0, 0.0, 0.0, 1.5 * 4.5 / 6, 3.0, 4.0], [0.0, 0.0, 0.5, 1.0, 1.0, 1.0]),
    # torch's slope is one sixth rounded to float32
    ("Hardsigmoid", nn.Hardsigmoid, [-4.0, -3.0, 0.0, 1.5, 3.0, 4.0],
     [0.0, 0.0, 0.5, 0.75, 1.0, 1.0], [0.0, 0.0, SIXTH_F32, SIXTH_F32, 0.0, 0.0]),
    ("Hardshrink", nn.Hardshrink, [-1.0, -0.5, 0.2, 0.5, 2.0], [-1.0, 0.0, 0.0, 0.0, 2.0],
     [1.0, 0.0, 0.0, 0.0, 1.0]),
    ("Softshrink", nn.Softshrink, [-1.0, -0.5, 0.2, 0.5, 2.0], [-0.5, 0.0, 0.0, 0.0, 1.5],
     [1.0, 0.0, 0.0, 0.0, 1.0]),
    ("Threshold(0.5, -1)", lambda: nn.Threshold(0.5, -1.0), [0.0, 0.5, 1.0], [-1.0, -1.0, 1.0],
     [0.0, 0.0, 1.0]),
    ("RReLU(eval)", lambda: nn.RReLU(0.1, 0.3).eval(), [-2.0, 0.0, 3.0], [-0.4, 0.0, 3.0],
     [0.2, 0.2, 1.0]),
    ("Softsign", nn.Softsign, [-1.0, 0.0, 3.0], [-0.5, 0.0, 0.75], [0.25, 1.0, 1 / 16]),
    ("Tanhshrink", nn.Tanhshrink, [0.0, 1.0], [0.0, 1 - math.tanh(1.0)],
     [0.0, math.tanh(1.0) ** 2]),
    ("LogSigmoid", nn.LogSigmoid, [0.0, 1.0, -1e4], [-math.log(2), -math.log1p(1 / E), -1e4],
     [0.5, 1 / (1 + E), 1.0]),
    # the exponential side owns 0: f'(0) = scale * alpha
    ("SELU", nn.SELU, [-1.0, 0.0, 2.0], [SELU_S * SELU_A * (1 / E - 1), 0.0, 2 * SELU_S],
     [SELU_S * SELU_A / E, SELU_S * SELU_A, SELU_S]),
    ("CELU(2)", lambda: nn.CELU(2.0), [-2.0, 0.0, 1.0], [2 * (1 / E - 1), 0.0, 1.0],
     [1 / E, 1.0, 1.0]),
    # tanh(softplus(0)) = tanh(log 2) = 3/5
    ("Mish", nn.Mish, [0.0, 1.0], [0.0, MISH_T1], [0.6, MISH_T1 + E / (1 + E) * (1 - MISH_T1**2)]),
    # halves a = (1, 2), b = (0, -1): y = a * sigmoid(b)
    ("GLU", nn.GLU, [1.0, 2.0, 0.0, -1.0], [0.5, 2 / (1 + E)],
     [0.5, 1 / (1 + E), 0.25, 2 * (E / (1 + E)) / (1 + E)]),
    ("Softmin", lambda: nn.Softmin(dim=0), [0.0, math.log(3.0)], [0.75, 0.25], [0.0, 0.0]),
]


@pytest.mark.parametrize("name,factory,x,y,dydx", HAND, ids=[h[0] for h in HAND])
def test_hand_values(name: str, factory: Factory, x: list[float], y: list[float],
                     dydx: list[float]) -> None:
    out, grad = forward_backward(factory(), x)
    assert_close(out, y)
    assert_close(grad, dydx)


def test_relu_kink_is_zero_and_leaky_kink_is_slope() -> None:
    _, g_relu = forward_backward(nn.ReLU(), [0.0, -0.0])
    _, g_leaky = forward_backward(nn.LeakyReLU(0.3), [0.0, -0.0])
    assert g_relu.tolist() == [0.0, 0.0]
    assert g_leaky.tolist() == [0.3, 0.3]


def test_prelu_weight_gradient_sums_each_channel() -> None:
    """dL/da_c = sum over channel c of g * x * [x <= 0]; x = 0 contributes 0."""
    m = nn.PReLU(num_parameters=2, init=0.5)
    x = np.array([[[-1.0, 2.0], [0.0, -3.0]], [[-4.0, 0.0], [5.0, -0.5]]])  # (N=2, C=2, L=2)
    g = np.array([[[1.0, 1.0], [2.0, 2.0]], [[3.0, 3.0], [4.0, 4.0]]])
    y = m(x)
    assert y.tolist() == [[[-0.5, 2.0], [0.0, -1.5]], [[-2.0, 0.0], [5.0, -0.25]]]
    gx = m.backward(g)
    assert gx.tolist() == [[[0.5, 1.0], [1.0, 1.0]], [[1.5, 1.5], [4.0, 2.0]]]
    assert m.weight.grad is not None
    assert m.weight.grad.tolist() == [-1.0 - 12.0, -6.0 - 2.0]
    m(x)
    m.backward(g)  # gradients accumulate, as every Parameter's
    assert m.weight.grad.tolist() == [-26.0, -16.0]


def test_prelu_and_hardtanh_contract() -> None:
    m = nn.PReLU(3, init=-0.1)
    assert m.weight.data.tolist() == [-0.1, -0.1, -0.1] and m.weight.dtype == np.float64
    assert list(m.state_dict()) == ["weight"]
    assert repr(m) == "PReLU(num_parameters=3)"
    with pytest.raises(ValueError, match=r"3 slopes .* shape \(2, 4\)"):
        m(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        m(np.zeros(()))
    with pytest.raises(TypeError, match="float32 does not match weight dtype float64"):
        m(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 1"):
        nn.PReLU(0)
    m.weight.data[...] = 7.0
    m.reset_parameters()
    assert m.weight.data.tolist() == [-0.1, -0.1, -0.1]
    assert nn.PReLU(dtype=np.float32)(np.float32(-2.0)).tolist() == -0.5
    assert repr(nn.Hardtanh(-2.0, 3.0, True)) == "Hardtanh(min_val=-2.0, max_val=3.0, inplace=True)"
    with pytest.raises(ValueError, match=r"max_val \(1.0\) must be greater than min_val"):
        nn.Hardtanh(1.0, 1.0)


def test_rrelu_training_uses_the_noise() -> None:
    """Training: y = x * noise (a slope where x <= 0, 1 elsewhere), dL/dx = g * noise; the
    noise is fed like a dropout mask, or drawn in [lower, upper] from the generator."""
    from refbp.nn.dropout import feed_masks

    m = nn.RReLU(0.1, 0.3)
    x = np.array([-2.0, 0.0, 3.0])
    with feed_masks([np.array([0.25, 0.125, 1.0])]):
        assert m(x).tolist() == [-0.5, 0.0, 3.0]
    assert m.backward(np.array([1.0, 2.0, 3.0])).tolist() == [0.25, 0.25, 3.0]
    drawn = nn.RReLU(0.1, 0.3, generator=np.random.default_rng(0))
    y = drawn(np.array([-1.0, -2.0, 0.0, 5.0]))
    slopes = drawn.backward(np.ones(4))
    assert np.all((slopes[:3] >= 0.1) & (slopes[:3] <= 0.3)) and slopes[3] == 1.0
    assert y.tolist() == (slopes * [-1.0, -2.0, 0.0, 5.0]).tolist()
    # a range narrower than 1e-6: torch differentiates the leaky ReLU of the mean slope
    flat = nn.RReLU(0.2, 0.2)
    with feed_masks([np.array([0.2, 1.0])]):
        flat(np.array([-1.0, 2.0]))
    assert flat.backward(np.array([1.0, 1.0])).tolist() == [0.2, 1.0]


def test_new_activation_contracts() -> None:
    with pytest.raises(ValueError, match="lambda must be greater or equal to 0"):
        nn.Softshrink(-1.0)
    assert nn.Hardshrink(-1.0)(np.array([0.25])).tolist() == [0.25]
    with pytest.raises(ZeroDivisionError, match="alpha cannot be 0 for CELU"):
        nn.CELU(0.0)
    with pytest.raises(ValueError, match="Lower bound should be less than or equal"):
        nn.RReLU(0.5, 0.1)
    with pytest.raises(RuntimeError, match="dimension 1 is size 3"):
        nn.GLU()(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="does not support scalars"):
        nn.GLU()(np.zeros(()))
    with pytest.raises(ValueError, match="expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(np.zeros((2, 3)))
    assert_close(nn.Softmax2d()(np.array([[[0.0]], [[math.log(3.0)]]])).ravel(), [0.25, 0.75])
    assert isinstance(nn.ReLU6(), nn.Hardtanh) and (nn.ReLU6().min_val, nn.ReLU6().max_val) == (
        0.0, 6.0)
    assert [repr(m) for m in (nn.ReLU6(), nn.Hardshrink(), nn.Threshold(0.1, 20),
                              nn.CELU(), nn.GLU(), nn.Softmin(1), nn.RReLU(), nn.SELU(True))] == [
        "ReLU6()", "Hardshrink(0.5)", "Threshold(threshold=0.1, value=20)", "CELU(alpha=1.0)",
        "GLU(dim=-1)", "Softmin(dim=1)", "RReLU(lower=0.125, upper=0.3333333333333333)",
        "SELU(inplace=True)"]


def test_softmax_hand_values() -> None:
    x = np.array([0.0, math.log(3.0)])
    assert_close(nn.Softmax(dim=0)(x), [0.25, 0.75])
    assert_close(nn.LogSoftmax(dim=0)(x), [math.log(0.25), math.log(0.75)])
    # backward: y * (g - <g, y>) and g - exp(y) * sum(g)
    g = np.array([1.0, -1.0])
    sm, lsm = nn.Softmax(dim=0), nn.LogSoftmax(dim=0)
    sm(x)
    lsm(x)
    assert_close(sm.backward(g), [0.25 * (1 + 0.5), 0.75 * (-1 + 0.5)])
    assert_close(lsm.backward(g), [1.0, -1.0])


def test_softmax_extreme_logits_are_exact() -> None:
    x = np.array([1e4, -1e4, 0.0])
    y_sm, g_sm = forward_backward(nn.Softmax(dim=0), x, [1.0, 2.0, 3.0])
    y_lsm, g_lsm = forward_backward(nn.LogSoftmax(dim=0), x, [1.0, 2.0, 3.0])
    assert y_sm.tolist() == [1.0, 0.0, 0.0]
    assert g_sm.tolist() == [0.0, 0.0, 0.0]
    assert y_lsm.tolist() == [0.0, -2e4, -1e4]
    assert g_lsm.tolist() == [1.0 - 6.0, 2.0, 3.0]


@pytest.mark.parametrize("cls", [nn.Softmax, nn.LogSoftmax])
def test_softmax_0d_is_one_element(cls: type[Module]) -> None:
    y, g = forward_backward(cls(), 3.5, 2.0)
    assert y.shape == () and g.shape == ()
    assert float(y) == (1.0 if cls is nn.Softmax else 0.0)
    assert float(g) == 0.0


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((2, 3), 1), ((2, 3, 4), 0),
                                        ((2, 3, 4, 5), 1)])
def test_softmax_dim_none_follows_torch_legacy_rule(shape: tuple[int, ...], axis: int) -> None:
    x = np.random.default_rng(1).standard_normal(shape)
    y = nn.Softmax()(x)
    assert_close(y.sum(axis=axis), np.ones(shape[:axis] + shape[axis + 1:]))
    assert_close(np.exp(nn.LogSoftmax()(x)), y)


def test_erf_matches_reference_values_to_one_ulp() -> None:
    # erf at points with 20-digit reference values (Abramowitz & Stegun table 7.1 / mpmath).
    x = np.array([0.5, 1.0, 2.0, 1e-10, 3.5])
    exact = np.array([0.52049987781304653768, 0.84270079294971486934, 0.99532226501895273416,
                      1.1283791670955125739e-10, 0.99999925690162765859])
    got = erf(x)
    assert np.all(np.abs(got - exact) <= np.spacing(exact))
    assert erf(-x).tolist() == (-got).tolist()
    assert erf(np.zeros((2, 3), dtype=np.float32)).shape == (2, 3)
    special = erf(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))
    assert special[:4].tolist() == [0.0, 0.0, 1.0, -1.0] and np.signbit(special[1])
    assert np.isnan(special[4])


# -- gradcheck -----------------------------------------------------------------------------
def _shape(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """``default``, or for an op that takes only some shapes its largest declared one."""
    declared = CHECKS[name][1].shapes
    return max(declared, key=math.prod) if declared else default


def _deterministic(m: Module) -> Module:
    """The module in eval mode if it draws random numbers in training (RReLU's slopes: every
    forward of a finite difference would draw new ones); its training-mode gradient is the
    fed noise, checked in test_rrelu_training_uses_the_noise and against torch."""
    return m.eval() if hasattr(m, "generator") else m


def _random_input(name: str) -> np.ndarray:
    x = 3.0 * np.random.default_rng(2).standard_normal(_shape(name, (4, 5)))
    if name in SMOOTH_AT_ZERO:
        x.reshape(-1)[:3] = 0.0
    return x


@pytest.mark.parametrize("name", list(ALL))
def test_gradcheck_random(name: str) -> None:
    res = check_module(_deterministic(ALL[name]()), _random_input(name))
    assert res.passed, str(res)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_gradcheck_extremes(name: str) -> None:
    extremes = np.array([50.0, -50.0, 100.0, -100.0, 1e3, -1e3, 1e4, -1e4])
    shape = _shape(name, (2, 4))
    x = np.resize(extremes, math.prod(shape)).reshape(shape)
    res = check_module(_deterministic(ELEMENTWISE[name]()), x, eps=STEP_SATURATED)
    assert res.passed, str(res)


@pytest.mark.parametrize("name", list(ALONG_DIM))
def test_gradcheck_softmax_extremes(name: str) -> None:
    rng = np.random.default_rng(3)
    near = np.round(rng.standard_normal((2, 5)) * 1024) / 1024  # on the 2^-10 grid
    shifted = np.concatenate([1e4 + near, -1e4 + near])           # rows near +-1e4
    if CHECKS[name][1].options.get("dim") == 0:  # reduce within a row's shift, not across
        shifted = shifted.T
    res = check_module(ALONG_DIM[name](), shifted, eps=STEP_SHIFTED)
    assert res.passed, str(res)
    if name.startswith("Softmax"):
        mixed = np.array([[1e4, -1e4, 1e4 - 1.0, 0.0], [-1e4, 1e4 - 0.5, 1e4, 5.0]])
        res = check_module(ALONG_DIM[name](), mixed, eps=STEP_SHIFTED)
        assert res.passed, str(res)


# -- contract: shapes, dtypes, errors --------------------------------------------------------
SHAPES = [(), (7,), (3, 4), (2, 3, 4), (0, 4)]  # (0, 4): an empty batch
VALID = [(n, s) for n in ALL for s in CHECKS[n][1].shapes or SHAPES
         if not (CHECKS[n][1].options.get("dim") == 1 and len(s) < 2)]


@pytest.mark.parametrize("name,shape", VALID)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_and_dtype_follow_input(name: str, dtype: type, shape: tuple[int, ...]) -> None:
    x: np.ndarray = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    x_before = x.copy()
    m = ALL[name]().to(dtype)  # a layer with parameters (PReLU) takes its input's dtype
    y = m(x)
    g = m.backward(np.ones(y.shape, dtype=np.float64))
    assert isinstance(y, np.ndarray) and isinstance(g, np.ndarray)
    assert g.shape == shape and (y.shape == shape or name in SHAPED)
    assert y.dtype == dtype and g.dtype == dtype
    assert np.array_equal(x, x_before)  # inplace or not, the input is never written


@pytest.mark.parametrize("name", list(ALL))
def test_backward_before_forward_raises(name: str) -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        ALL[name]().backward(np.ones(3))


@pytest.mark.parametrize("name", list(ALL))
def test_wrong_grad_out_shape_raises(name: str) -> None:
    m = ALL[name]()
    y = m(np.zeros(_shape(name, (2, 3))))
    wrong = y.shape[::-1] + (1,)
    with pytest.raises(ValueError, match=re.escape(f"{y.shape}, got {wrong}")):
        m.backward(np.zeros(wrong))


@pytest.mark.parametrize("name", list(ALL))
def test_integer_input_and_grad_raise_type_error(name: str) -> None:
    m = ALL[name]()
    shape = _shape(name, (2, 3))
    with pytest.raises(TypeError, match="int64"):
        m(np.arange(math.prod(shape), dtype=np.int64).reshape(shape))
    y = m(np.zeros(shape))
    with pytest.raises(TypeError, match="bool"):
        m.backward(np.ones(y.shape, dtype=bool))


def test_constructor_arguments_are_stored_with_torch_names() -> None:
    assert nn.LeakyReLU(0.2, inplace=True).negative_slope == 0.2
    assert nn.ReLU(inplace=True).inplace and nn.SiLU(True).inplace and nn.ELU(2.0, True).inplace
    assert nn.ELU(alpha=2.0).alpha == 2.0
    assert nn.GELU("tanh").approximate == "tanh"
    sp = nn.Softplus(beta=3.0, threshold=5.0)
    assert (sp.beta, sp.threshold) == (3.0, 5.0)
    assert nn.Softmax(dim=1).dim == 1 and nn.LogSoftmax().dim is None
    assert repr(nn.LeakyReLU(0.2, True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"


def test_invalid_options_raise() -> None:
    with pytest.raises(ValueError, match="none or tanh"):
        nn.GELU(approximate="erf")
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Softmax(dim=2)(np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.longdouble])
def test_relu_backward_is_the_select_bit_for_bit(dtype: type[np.floating[Any]]) -> None:
    """The branch-free ReLU backward equals ``where(y <= 0, 0, grad)`` in every bit: dropped
    entries are +0.0 (also for a -0.0, NaN or inf gradient), kept ones keep NaN and inf."""
    from refbp.nn import functional_act as F

    y = np.array([[-1.0, 0.0, -0.0, np.nan, 2.0, np.inf, 3.0, 0.5]], dtype)
    g = np.array([[1.0, -2.0, np.nan, -np.inf, -3.0, 4.0, -0.0, np.nan]], dtype)

    def same_bits(a: np.ndarray, b: np.ndarray) -> bool:  # long double has padding bytes
        return (a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
                and np.array_equal(np.signbit(a), np.signbit(b)))

    got = F.relu_backward(g, y)
    expected = np.array([[0.0, 0.0, 0.0, -np.inf, -3.0, 4.0, -0.0, np.nan]], dtype)
    assert got.shape == g.shape
    assert same_bits(got, expected) and same_bits(got, np.where(y <= 0, 0, g).astype(dtype))
    strided = F.relu_backward(g[:, ::2], y[:, 1::2])
    assert same_bits(strided, np.where(y[:, 1::2] <= 0, 0, g[:, ::2]).astype(dtype))
    zero_d = F.relu_backward(np.array(-2.0, dtype), np.array(1.0, dtype))
    assert zero_d.shape == () and zero_d == -2.0
