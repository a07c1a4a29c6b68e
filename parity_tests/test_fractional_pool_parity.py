"""FractionalMaxPool2d/3d parity with torch: fixed samples in both dtypes (torch's windows,
bit for bit), samples drawn by torch and fed to refbp in training and eval mode, torch's
errors, a model converted layer by layer and a model captured as a graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refbp import nn
from refbp.metrics import discrepancy
from refbp.mirror import from_torch, to_torch
from refbp.mirror.dropout import DropoutMaskTap, step_generator
from refbp.nn.dropout import feed_masks
from refbp.nn.module import Module
from refbp.testing import parity_table
from refbp.tolerances import tolerance_for

DTYPES = ["float64", "float32"]


def _configs(count: int, seed: int) -> list[tuple[int, tuple[int, ...], tuple[int, ...],
                                                  tuple[int, ...]]]:
    """(dims, input shape, kernel, output size) within torch's size rule (3-D: strict)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        dims = 2 + len(out) % 2
        spatial = tuple(int(v) for v in rng.integers(3, 11, dims))
        kernel = tuple(int(v) for v in rng.integers(1, 4, dims))
        if any(k + (dims == 3) > n - 1 for k, n in zip(kernel, spatial, strict=True)):
            continue
        size = tuple(int(rng.integers(1, n - k + 2 - (dims == 3)))
                     for k, n in zip(kernel, spatial, strict=True))
        out.append((dims, (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *spatial),
                    kernel, size))
    return out


def _torch_fn(dims: int) -> Any:
    return F.fractional_max_pool2d if dims == 2 else F.fractional_max_pool3d


@pytest.mark.parametrize("dtype", DTYPES)
def test_fixed_samples_give_torchs_windows_outputs_and_gradients(dtype: str) -> None:
    """Random shapes, kernels, output sizes and samples (rounded inputs make ties): the same
    argmax everywhere, so outputs and indices are identical and gradients within tolerance."""
    rng = np.random.default_rng(0)
    tol = tolerance_for(dtype)
    for i, (dims, shape, kernel, size) in enumerate(_configs(40, seed=1)):
        x = rng.standard_normal(shape)
        x = (np.round(x) if i % 3 == 0 else x).astype(dtype)
        u = rng.random((shape[0], shape[1], dims)).astype(dtype)
        cls = nn.FractionalMaxPool2d if dims == 2 else nn.FractionalMaxPool3d
        m = cls(kernel, output_size=size, return_indices=True, _random_samples=u)
        y, idx = m(x)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        yt, it = _torch_fn(dims)(xt, kernel, output_size=size, return_indices=True,
                                 _random_samples=torch.from_numpy(u))
        g = rng.standard_normal(y.shape).astype(dtype)
        yt.backward(torch.from_numpy(g))
        case = f"{cls.__name__}{kernel} {shape} -> {size}"
        np.testing.assert_array_equal(idx, it.numpy(), err_msg=case)
        np.testing.assert_array_equal(y, yt.detach().numpy(), err_msg=case)
        assert discrepancy(m.backward(g), xt.grad.numpy(), tol).passed, case


def test_float32_starts_round_as_torchs_float32_kernel() -> None:
    """L=6, k=1, O=4, u=0.8: the second window starts at 2 in float64 and at 1 in float32
    (1.8f * (5/3)f rounds below 3), in both libraries."""
    x = np.arange(6.0).reshape(1, 1, 1, 6)
    for dtype, start in ((np.float64, 2), (np.float32, 1)):
        u = np.array([[[0.8, 0.0]]], dtype=dtype)
        _, idx = nn.FractionalMaxPool2d(1, output_size=(1, 4), return_indices=True,
                                        _random_samples=u)(x.astype(dtype))
        _, it = F.fractional_max_pool2d(torch.from_numpy(x.astype(dtype)), 1,
                                        output_size=(1, 4), return_indices=True,
                                        _random_samples=torch.from_numpy(u))
        assert idx[0, 0, 0, 1] == start == it[0, 0, 0, 1].item()


def _run_both(model: Module, x: np.ndarray, seed: int) -> tuple[Any, ...]:
    """Forward and backward of ``sum(y * r)`` on both sides, torch's draws fed to refbp."""
    t = to_torch(model)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    with DropoutMaskTap(t) as tap, step_generator(seed):
        yt = t(xt)
        masks = tap.take()
    yt0 = yt[0] if isinstance(yt, tuple) else yt
    r = np.random.default_rng(seed).standard_normal(tuple(yt0.shape)).astype(x.dtype)
    (yt0 * torch.from_numpy(r)).sum().backward()
    with feed_masks(masks):
        y = model(x)
    gx = model.backward(r)
    return y, gx, yt, xt.grad.numpy(), masks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.FractionalMaxPool2d(2, output_size=(4, 3), return_indices=True), (3, 2, 7, 6)),
    (lambda: nn.FractionalMaxPool2d((3, 2), output_ratio=(0.5, 0.7)), (2, 9, 8)),
    (lambda: nn.FractionalMaxPool3d(2, output_ratio=0.5, return_indices=True), (2, 3, 6, 5, 7)),
    (lambda: nn.FractionalMaxPool3d((2, 1, 3), output_size=(3, 2, 2)), (2, 6, 4, 5)),
])
def test_samples_drawn_by_torch_in_training_and_eval(make: Any, shape: tuple[int, ...],
                                                     training: bool, dtype: str) -> None:
    """torch draws new samples at every forward pass in both modes; the tap reads them (a
    batch of one for an unbatched input) and refbp, fed them, pools the same windows."""
    m = make().train(training)
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    y, gx, yt, gxt, masks = _run_both(m, x, seed=7)
    dims = m._spatial
    assert [s.shape for s in masks] == [((shape[0] if len(shape) == dims + 2 else 1),
                                         shape[-dims - 1], dims)]
    assert masks[0].dtype == np.dtype(dtype)
    if isinstance(y, tuple):
        np.testing.assert_array_equal(y[1], yt[1].numpy())
        y, yt = y[0], yt[0]
    np.testing.assert_array_equal(y, yt.detach().numpy())
    assert discrepancy(gx, gxt, tolerance_for(dtype)).passed
    # another seed draws other samples: the windows move
    assert not np.array_equal(_run_both(m, x, seed=8)[4][0], masks[0])


def _torch_error(fn: Any) -> str:
    with pytest.raises((RuntimeError, ValueError)) as err:
        fn()
    return str(err.value).splitlines()[0]


@pytest.mark.parametrize("dims,kw,shape,samples", [
    (2, {"kernel_size": (2, 2, 2), "output_size": 2}, (1, 1, 5, 5), None),
    (3, {"kernel_size": 2, "output_size": (2, 2)}, (1, 1, 5, 5, 5), None),
    (2, {"kernel_size": 2, "output_size": 2}, (5, 5), (1, 5, 2)),
    (3, {"kernel_size": 2, "output_size": 2}, (2, 5, 5, 5, 5, 5), (2, 5, 3)),
    (2, {"kernel_size": 2, "output_size": 2}, (2, 0, 5, 5), (2, 0, 2)),
    (3, {"kernel_size": 2, "output_size": 2}, (2, 1, 5, 0, 5), (2, 1, 3)),
    (2, {"kernel_size": 3, "output_size": (4, 2)}, (1, 1, 5, 6), None),
    (2, {"kernel_size": 3, "output_size": (2, 5)}, (1, 1, 5, 6), None),
    (3, {"kernel_size": 3, "output_size": (3, 2, 2)}, (1, 1, 5, 6, 6), None),
    (3, {"kernel_size": 3, "output_size": (2, 4, 2)}, (1, 1, 5, 6, 6), None),
    (3, {"kernel_size": 3, "output_size": (2, 2, 4)}, (1, 1, 5, 6, 6), None),
    (2, {"kernel_size": 2, "output_size": 2}, (2, 3, 5, 5), (1, 3, 2)),
    (2, {"kernel_size": 2, "output_size": 2}, (2, 3, 5, 5), (2, 2, 2)),
    (3, {"kernel_size": 2, "output_size": 2}, (2, 3, 5, 5, 5), (2, 3, 2)),
    (2, {"kernel_size": 2, "output_size": 2}, (2, 3, 5, 5), (6, 2)),
])
def test_bad_inputs_raise_torchs_message(dims: int, kw: dict[str, Any],
                                         shape: tuple[int, ...],
                                         samples: tuple[int, ...] | None) -> None:
    x = np.zeros(shape)
    u = None if samples is None else np.full(samples, 0.5)
    cls = nn.FractionalMaxPool2d if dims == 2 else nn.FractionalMaxPool3d
    theirs = _torch_error(lambda: _torch_fn(dims)(
        torch.from_numpy(x), **kw, _random_samples=None if u is None else torch.from_numpy(u)))
    with pytest.raises(ValueError) as err:
        cls(**kw, _random_samples=u)(x)
    assert str(err.value) == theirs


def test_samples_of_another_dtype_raise_as_torch() -> None:
    u = np.full((1, 1, 2), 0.5, dtype=np.float32)
    x = np.zeros((1, 1, 5, 5))
    theirs = _torch_error(lambda: F.fractional_max_pool2d(
        torch.from_numpy(x), 2, output_size=2, _random_samples=torch.from_numpy(u)))
    with pytest.raises(ValueError, match=theirs):
        nn.FractionalMaxPool2d(2, output_size=2, _random_samples=u)(x)


@pytest.mark.parametrize("kw", [{}, {"output_ratio": 1.0}, {"output_size": 2,
                                                              "output_ratio": 0.5}])
def test_constructor_errors_as_torch(kw: dict[str, Any]) -> None:
    for name in ("FractionalMaxPool2d", "FractionalMaxPool3d"):
        theirs = _torch_error(lambda n=name: getattr(torch.nn, n)(2, **kw))
        with pytest.raises(ValueError) as err:
            getattr(nn, name)(2, **kw)
        assert str(err.value) == theirs


def test_from_torch_keeps_arguments_and_fixed_samples() -> None:
    u = torch.rand(2, 3, 3, dtype=torch.float64)
    t = torch.nn.FractionalMaxPool3d((2, 1, 2), output_ratio=(0.5, 0.6, 0.7),
                                     return_indices=True, _random_samples=u)
    m = from_torch(t)
    assert (m.kernel_size, m.output_ratio, m.output_size, m.return_indices) == (
        (2, 1, 2), (0.5, 0.6, 0.7), None, True)
    np.testing.assert_array_equal(m._random_samples, u.numpy())
    back = to_torch(m)
    assert torch.equal(back._random_samples, u) and back.kernel_size == (2, 1, 2)


class _Trunk(torch.nn.Module):
    """Conv, then fractional pooling of two sizes joined by a skip connection (a graph, not a
    tree of layers), then a 3-D fractional pooling of the stacked maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.pool = torch.nn.FractionalMaxPool2d(2, output_size=(4, 4))
        self.pool3 = torch.nn.FractionalMaxPool3d((2, 2, 1), output_size=(1, 2, 3))
        self.fc = torch.nn.Linear(18, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv(x))
        b = self.pool(a) + F.fractional_max_pool2d(a, 3, output_size=(4, 4))
        c = self.pool3(torch.stack([b, b * 2.0, -b], dim=2))
        return self.fc(c.flatten(1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_models_with_fractional_pooling_train_as_torch(dtype: str, training: bool) -> None:
    """A tree of layers (converted by from_torch) and a captured graph (``rand`` and
    ``fractional_max_pool2d/3d`` nodes), three SGD steps each, torch's draws fed to refbp at
    every step, in training and eval mode."""
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    tree = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.FractionalMaxPool2d(
        2, output_ratio=0.6), torch.nn.Flatten(), torch.nn.Linear(27, 4)).train(training)
    graph = _Trunk().train(training)
    x, y = rng.standard_normal((4, 2, 7, 7)), rng.standard_normal((4, 4))
    for model, kind in ((tree, "Conv2d("), (graph, "GraphModel(")):
        table = parity_table(model, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}),
                             steps=3, dtype=dtype)
        assert table.passed.all(), table[~table.passed]
        assert table.model.iloc[0].startswith(kind)
        assert set(table.step) == {1, 2, 3}


def test_a_torch_rand_of_the_models_own_code_is_fed_to_refbp() -> None:
    """A captured graph's ``rand`` node takes the values torch drew in the model's code (the
    functional tap records every ``torch.rand`` call)."""

    class Noisy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x * torch.rand(x.shape, dtype=x.dtype)) + self.fc(x)

    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    table = parity_table(Noisy(), rng.standard_normal((4, 3)), rng.standard_normal((4, 2)),
                         loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2)
    assert table.passed.all(), table[~table.passed]
    assert table.model.iloc[0].startswith("GraphModel(")
