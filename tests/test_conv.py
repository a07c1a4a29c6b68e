"""Unit tests of the convolution layers (no torch): direct definitions, gradcheck, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.metrics import discrepancy
from refbp.nn import functional_conv
from refbp.nn.functional_conv import pad_nd
from refbp.tolerances import tolerance_for

Case = tuple[type, dict[str, Any], tuple[int, ...]]

CONV_CASES: dict[str, Case] = {
    "2d": (nn.Conv2d, {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 6, 5)),
    "2d-stride-pad-dil": (nn.Conv2d, {"in_channels": 2, "out_channels": 3,
                                      "kernel_size": (3, 2), "stride": (2, 1),
                                      "padding": (1, 2), "dilation": (1, 2)}, (2, 2, 7, 6)),
    "2d-groups": (nn.Conv2d, {"in_channels": 4, "out_channels": 6, "kernel_size": 2,
                              "groups": 2}, (2, 4, 5, 5)),
    "2d-depthwise-same": (nn.Conv2d, {"in_channels": 3, "out_channels": 3, "kernel_size": 4,
                                      "groups": 3, "padding": "same", "bias": False},
                          (2, 3, 5, 6)),
    "2d-zero-pad-wider-than-kernel": (nn.Conv2d, {"in_channels": 2, "out_channels": 3,
                                                  "kernel_size": (2, 3), "padding": (3, 1),
                                                  "dilation": (1, 2)}, (2, 2, 4, 5)),
    "2d-reflect": (nn.Conv2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3,
                               "padding": 2, "padding_mode": "reflect"}, (2, 2, 4, 5)),
    "2d-replicate": (nn.Conv2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3,
                                 "padding": (3, 1), "padding_mode": "replicate"}, (2, 2, 4, 5)),
    "2d-circular": (nn.Conv2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3,
                                "stride": 2, "padding": (4, 1), "padding_mode": "circular"},
                    (2, 2, 4, 5)),
    "2d-unbatched": (nn.Conv2d, {"in_channels": 2, "out_channels": 3, "kernel_size": 2},
                     (2, 4, 4)),
    "1d": (nn.Conv1d, {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2,
                       "padding": 1, "dilation": 2}, (2, 3, 9)),
    "1d-circular-same": (nn.Conv1d, {"in_channels": 2, "out_channels": 4, "kernel_size": 2,
                                     "groups": 2, "padding": "same",
                                     "padding_mode": "circular"}, (2, 2, 6)),
    "1d-unbatched": (nn.Conv1d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3},
                     (2, 5)),
}
TRANSPOSE_CASES: dict[str, Case] = {
    "t2d": (nn.ConvTranspose2d, {"in_channels": 3, "out_channels": 2, "kernel_size": 3},
            (2, 3, 4, 3)),
    "t2d-options": (nn.ConvTranspose2d, {"in_channels": 4, "out_channels": 6,
                                         "kernel_size": (3, 2), "stride": (2, 3),
                                         "padding": (1, 0), "output_padding": (1, 2),
                                         "groups": 2, "dilation": (2, 1)}, (2, 4, 3, 3)),
    "t2d-dilation-outpad": (nn.ConvTranspose2d, {"in_channels": 2, "out_channels": 2,
                                                 "kernel_size": 2, "dilation": 3,
                                                 "output_padding": 2, "bias": False},
                            (2, 3, 3)),
    "t1d": (nn.ConvTranspose1d, {"in_channels": 2, "out_channels": 3, "kernel_size": 3,
                                 "stride": 3, "padding": 1, "output_padding": 2}, (2, 2, 4)),
    "t1d-groups": (nn.ConvTranspose1d, {"in_channels": 4, "out_channels": 2, "kernel_size": 3,
                                        "groups": 2, "padding": 1}, (2, 4, 5)),
}
CASES_3D: dict[str, Case] = {
    "3d-options": (nn.Conv3d, {"in_channels": 4, "out_channels": 2, "kernel_size": (2, 3, 1),
                               "stride": (1, 2, 1), "padding": (1, 0, 1), "dilation": (2, 1, 1),
                               "groups": 2, "padding_mode": "reflect"}, (2, 4, 4, 5, 3)),
    "t3d-options": (nn.ConvTranspose3d, {"in_channels": 2, "out_channels": 4,
                                         "kernel_size": (2, 2, 3), "stride": (2, 1, 2),
                                         "padding": (0, 1, 1), "output_padding": (1, 0, 1),
                                         "groups": 2}, (2, 2, 2, 3, 2)),
}
ALL_CASES = {**CONV_CASES, **TRANSPOSE_CASES, **CASES_3D}


def _make(case: Case, dtype: Any = np.float64) -> tuple[nn.Module, np.ndarray]:
    cls, args, shape = case
    m = cls(**args, dtype=dtype, generator=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    return m, x


# -- reference implementations straight from the definitions (loops, tiny sizes only) --------
def _padded(m: Any, x4: np.ndarray) -> np.ndarray:
    return pad_nd(x4, m._pads(), m.padding_mode)


def direct_conv(m: Any, x: np.ndarray) -> np.ndarray:
    """y[n,o,p,q] = b[o] + sum_{c,i,j} W[o,c,i,j] xp[n, g*Cg+c, p*sh+i*dh, q*sw+j*dw]."""
    x4, _ = m._prepare(x)
    w = m._core_weight()
    xp = _padded(m, x4)
    geo = m._geometry()
    ho, wo = geo.out_size(xp.shape[2:])
    n_out, cg, kh, kw = w.shape
    og = n_out // m.groups
    y = np.zeros((x4.shape[0], n_out, ho, wo))
    for o in range(n_out):
        g = o // og
        for p in range(ho):
            for q in range(wo):
                for i in range(kh):
                    for j in range(kw):
                        r = p * geo.stride[0] + i * geo.dilation[0]
                        s = q * geo.stride[1] + j * geo.dilation[1]
                        y[:, o, p, q] += xp[:, g * cg:(g + 1) * cg, r, s] @ w[o, :, i, j]
    if m.bias is not None:
        y += m.bias.data[None, :, None, None]
    return m._restore(y, x.shape)


def direct_conv_transpose(m: Any, x: np.ndarray) -> np.ndarray:
    """Scatter: x[n,c,h,w] * W[c,o,i,j] lands on (h*sh + i*dh - ph, w*sw + j*dw - pw)."""
    x4, _ = m._prepare(x)
    w = m._core_weight()
    geo = m._geometry()
    cin, og, kh, kw = w.shape
    cg = cin // m.groups
    ph, pw = (0, m.padding[0]) if m._nd == 1 else m.padding
    oph, opw = (0, m.output_padding[0]) if m._nd == 1 else m.output_padding
    h, wd = x4.shape[2:]
    full = ((h - 1) * geo.stride[0] + geo.span(0) + oph, (wd - 1) * geo.stride[1]
            + geo.span(1) + opw)
    y = np.zeros((x4.shape[0], og * m.groups, *full))
    for c in range(cin):
        g = c // cg
        for a in range(h):
            for b in range(wd):
                for i in range(kh):
                    for j in range(kw):
                        r = a * geo.stride[0] + i * geo.dilation[0]
                        s = b * geo.stride[1] + j * geo.dilation[1]
                        y[:, g * og:(g + 1) * og, r, s] += x4[:, c, a, b, None] * w[c, :, i, j]
    y = y[:, :, ph:full[0] - ph, pw:full[1] - pw]
    if m.bias is not None:
        y = y + m.bias.data[None, :, None, None]
    return m._restore(y, x.shape)


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_forward_matches_definition(name: str) -> None:
    m, x = _make(CONV_CASES[name])
    d = discrepancy(m(x), direct_conv(m, x), tolerance_for(np.float64))
    assert d.passed, d


@pytest.mark.parametrize("name", list(TRANSPOSE_CASES))
def test_conv_transpose_forward_matches_definition(name: str) -> None:
    m, x = _make(TRANSPOSE_CASES[name])
    d = discrepancy(m(x), direct_conv_transpose(m, x), tolerance_for(np.float64))
    assert d.passed, d


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_gradients_match_finite_differences(name: str) -> None:
    m, x = _make(ALL_CASES[name])
    result = check_module(m, x)
    assert result.passed, str(result)
    assert set(result.per_tensor) == {"input", "weight"} | ({"bias"} if m.bias is not None
                                                            else set())


@pytest.mark.parametrize("name", ["2d-groups", "1d-circular-same", "t2d-options", "3d-options",
                                  "t3d-options"])
def test_float32_follows_input_and_agrees_with_float64(name: str) -> None:
    m64, x64 = _make(ALL_CASES[name])
    m32, x32 = _make(ALL_CASES[name], np.float32)
    y32 = m32(x32)
    assert y32.dtype == np.float32
    g = np.random.default_rng(3).standard_normal(y32.shape)
    gx32 = m32.backward(g.astype(np.float32))
    assert gx32.dtype == np.float32 and m32.weight.grad.dtype == np.float32
    y64 = m64(x64)
    gx64 = m64.backward(g)
    tol = tolerance_for(np.float32)
    assert discrepancy(y32, y64, tol).passed
    assert discrepancy(gx32, gx64, tol).passed


@pytest.mark.parametrize("transposed", [False, True])
def test_3d_with_a_unit_depth_kernel_is_2d_per_slice(transposed: bool) -> None:
    """A (1, kh, kw) kernel sees one depth slice at a time: Conv3d / ConvTranspose3d on
    (N, C, D, H, W) equals the 2-D layer with the same weights on each of the D slices, and
    the weight gradient is the sum over slices."""
    kind = "ConvTranspose" if transposed else "Conv"
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": (1, 2, 3), "stride": (1, 2, 1),
            "padding": (0, 1, 1), "groups": 2}
    m3 = getattr(nn, f"{kind}3d")(**args, generator=np.random.default_rng(0))
    m2 = getattr(nn, f"{kind}2d")(**{**args, "kernel_size": (2, 3), "stride": (2, 1),
                                     "padding": (1, 1)})
    m2.load_state_dict({"weight": m3.weight.data[:, :, 0], "bias": m3.bias.data})
    x = np.random.default_rng(1).standard_normal((2, 2, 3, 5, 4))
    y3 = m3(x)
    g = np.random.default_rng(2).standard_normal(y3.shape)
    gx3 = m3.backward(g)
    for d in range(3):
        np.testing.assert_allclose(y3[:, :, d], m2(x[:, :, d]), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(gx3[:, :, d], m2.backward(g[:, :, d]), rtol=1e-13,
                                   atol=1e-13)
    np.testing.assert_allclose(m3.weight.grad[:, :, 0], m2.weight.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["2d", "1d", "t2d", "t1d", "3d-options", "t3d-options"])
def test_empty_batch_gives_empty_results_and_zero_weight_gradients(name: str) -> None:
    m, x = _make(ALL_CASES[name])
    x0 = x[:0] if x.ndim == m._nd + 2 else x[None][:0]
    y = m(x0)
    assert y.shape[0] == 0 and y.shape[1:] == m(x[None] if x.ndim == m._nd + 1 else x).shape[1:]
    m(x0)
    m.zero_grad()
    gx = m.backward(np.zeros(y.shape))
    assert gx.shape == x0.shape
    assert m.weight.grad is not None and not m.weight.grad.any()


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_chunks_of_the_batch_give_the_same_numbers(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is convolved in chunks of CHUNK_BYTES of columns: one sample per chunk
    (a 1-byte budget) and the whole batch in one chunk give bit-identical results."""
    results = []
    for budget in (1, 2**40):
        monkeypatch.setattr(functional_conv, "CHUNK_BYTES", budget)
        m, x = _make(ALL_CASES[name])
        x3 = np.concatenate([x, x[::-1] * 0.5]) if x.ndim == m._nd + 2 else x
        y = m(x3)
        gx = m.backward(np.random.default_rng(3).standard_normal(y.shape))
        assert m.weight.grad is not None
        results.append((y, gx, m.weight.grad.copy()))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_known_values_box_filter() -> None:
    """A 2x2 ones kernel sums each 2x2 window; its input gradient counts window coverage."""
    m = nn.Conv2d(1, 1, 2, bias=False)
    m.weight.data[...] = 1.0
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(m(x), [[[[8.0, 12.0], [20.0, 24.0]]]])
    gx = np.asarray(m.backward(np.ones((1, 1, 2, 2))))
    np.testing.assert_array_equal(gx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(np.asarray(m.weight.grad)[0, 0], [[8.0, 12.0], [20.0, 24.0]])


def test_padding_modes_known_values() -> None:
    """Identity 1x3 kernel with padding 1 shows each mode's border value."""
    x = np.array([[[1.0, 2.0, 3.0]]])
    expect = {"zeros": [0, 1, 2, 3, 0], "reflect": [2, 1, 2, 3, 2],
              "replicate": [1, 1, 2, 3, 3], "circular": [3, 1, 2, 3, 1]}
    for mode, row in expect.items():
        m = nn.Conv1d(1, 1, 1, padding=1, padding_mode=mode, bias=False)
        m.weight.data[...] = 1.0
        np.testing.assert_array_equal(m(x)[0, 0], row)
        # the adjoint adds every border copy back onto the pixel it copied
        gx = np.asarray(m.backward(np.ones((1, 1, 5))))
        assert gx.sum() == (5 if mode != "zeros" else 3)


def test_accumulates_and_skips_input_grad() -> None:
    m, x = _make(CONV_CASES["2d"])
    g = np.ones(m(x).shape)
    m.backward(g)
    first = m.weight.grad.copy()
    m(x)
    assert m.backward(g, input_grad=False) is None
    np.testing.assert_allclose(m.weight.grad, 2 * first, rtol=1e-15)


def test_layout_state_dict_and_init_bounds() -> None:
    c = nn.Conv2d(4, 6, (3, 2), groups=2)
    t = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert c.weight.shape == (6, 2, 3, 2) and c.bias is not None and c.bias.shape == (6,)
    assert t.weight.shape == (4, 3, 3, 3)
    assert list(c.state_dict()) == ["weight", "bias"]
    for m, fan_in in ((c, 2 * 3 * 2), (t, 3 * 3 * 3)):
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)): gain*sqrt(3/fan_in)
        assert np.abs(m.weight.data).max() <= bound
        assert m.bias is not None and np.abs(m.bias.data).max() <= bound
        assert np.abs(m.weight.data).max() > 0.5 * bound  # drawn, not left at zero


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: nn.Conv2d(3, 4, 3, padding=-1), "negative padding is not supported"),
        (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels must be divisible by groups"),
        (lambda: nn.Conv2d(4, 3, 3, groups=2), "out_channels must be divisible by groups"),
        (lambda: nn.Conv2d(4, 4, 3, groups=0), "groups must be a positive integer"),
        (lambda: nn.Conv2d(3, 4, 3, padding="full"), "Invalid padding string 'full'"),
        (lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2),
         "padding='same' is not supported for strided convolutions"),
        (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
        (lambda: nn.Conv2d(3, 4, 3, stride=0), "non-positive stride is not supported"),
        (lambda: nn.Conv2d(3, 4, 3, dilation=0), "non-positive dilation is not supported"),
        (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "expected kernel_size to be a single integer"),
        (lambda: nn.Conv2d(3, 4, 3, padding=(1, 2, 3)),
         r"expected padding to be a single integer value or a list of 2 values"),
        (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"),
         'Only "zeros" padding mode is supported for ConvTranspose2d'),
        (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2),
         "output padding must be smaller than either stride or dilation"),
        (lambda: nn.ConvTranspose1d(3, 4, 3, padding=-2), "negative padding is not supported"),
    ],
)
def test_bad_arguments_raise_torch_messages(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "layer,x,message",
    [
        (nn.Conv2d(3, 4, 3), np.zeros((2, 3)),
         r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of "
         r"size: \[2, 3\]"),
        (nn.Conv1d(3, 4, 3), np.zeros((2, 3, 4, 5)),
         r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv1d"),
        (nn.ConvTranspose2d(3, 4, 3), np.zeros((3, 5)), r"input to conv_transpose2d"),
        (nn.Conv2d(3, 4, 3), np.zeros((2, 2, 5, 5)),
         r"Given groups=1, weight of size \[4, 3, 3, 3\], expected input\[2, 2, 5, 5\] to "
         r"have 3 channels, but got 2 channels instead"),
        (nn.Conv2d(3, 4, 7), np.zeros((2, 3, 5, 5)),
         r"Calculated padded input size per channel: \(5 x 5\). Kernel size: \(7 x 7\)"),
        (nn.Conv2d(3, 4, 3, padding=5, padding_mode="reflect"), np.zeros((2, 3, 5, 5)),
         r"Padding size should be less than the corresponding input dimension"),
        (nn.Conv2d(3, 4, 3, padding=6, padding_mode="circular"), np.zeros((2, 3, 5, 5)),
         "Padding value causes wrapping around more than once"),
        (nn.ConvTranspose2d(3, 4, 3, padding=4), np.zeros((2, 3, 2, 2)),
         "output size .* is too small"),
    ],
)
def test_bad_inputs_raise(layer: nn.Module, x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_dtype_mismatch_and_backward_before_forward() -> None:
    m = nn.Conv2d(1, 1, 1)
    with pytest.raises(TypeError, match="input dtype float32 does not match weight dtype"):
        m(np.zeros((1, 1, 2, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        m.backward(np.zeros((1, 1, 2, 2)))
    m(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        m.backward(np.zeros((1, 1, 3, 2)))


def test_a_layer_without_input_channels_builds_like_torch() -> None:
    """torch builds Conv2d(0, 4, 3) and Linear(0, 3) with a warning (the He initialiser
    leaves a zero-element tensor as it is); refbp does the same, bias zero (fan_in 0)."""
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        conv = nn.Conv2d(0, 4, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        lin = nn.Linear(0, 3)
    assert conv.weight.data.shape == (4, 0, 3, 3) and lin.weight.data.shape == (3, 0)
    assert conv.bias is not None and lin.bias is not None
    assert not conv.bias.data.any() and not lin.bias.data.any()
