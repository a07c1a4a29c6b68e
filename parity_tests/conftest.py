"""Fixtures shared by the parity tests: an isolated converter registry and a user layer pair.

pytest runs with ``--import-mode=importlib`` and parity_tests/ is no package, so shared test
code is handed out as fixtures rather than imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from refbp.mirror import modules as mirror_modules
from refbp.nn.module import Cache, Module, Parameter

_TORCH_THREADS = torch.get_num_threads()


def pytest_configure(config: pytest.Config) -> None:
    """One torch intra-op thread while the parity tests collect and run: their tensors are
    tiny, so starting and synchronising threads would dominate (on a loaded 2-core machine it
    doubled the run). refbp's own runs pin their workers the same way
    (``refbp.parity.sweep.PIN_THREADS_ENV``); a test about threads sets its own count."""
    torch.set_num_threads(1)


def pytest_unconfigure(config: pytest.Config) -> None:
    torch.set_num_threads(_TORCH_THREADS)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private copies of the converter registry, so user registrations do not leak."""
    monkeypatch.setattr(mirror_modules, "_REGISTRY", dict(mirror_modules._REGISTRY))
    monkeypatch.setattr(mirror_modules, "_BY_TORCH", dict(mirror_modules._BY_TORCH))


class TorchScale(torch.nn.Module):
    """Per-feature scaling y = x * scale (a user's torch layer)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.scale = torch.nn.Parameter(torch.linspace(0.5, 1.5, num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RefbpScale(Module):
    """y = x * scale, scale (F,), x (N, F). Backward: dL/dx = G * scale, dL/dscale = sum_n G x.

    Subclasses plant bugs: ``grad_factor`` scales dL/dscale (1 is correct), ``explode`` makes
    the backward raise ``RuntimeError("<class name> exploded")``.
    """

    grad_factor = 1.0
    explode = False

    def __init__(self, num_features: int, dtype: Any = None) -> None:
        super().__init__()
        self.num_features = num_features
        self.scale = Parameter(np.ones(num_features, dtype=dtype or np.float64))
        self._cache = Cache(type(self).__name__)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache.save(x=x)
        return x * self.scale.data

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self.explode:
            raise RuntimeError(f"{type(self).__name__} exploded")
        x = self._cache.load()["x"]
        self.scale.accumulate(self.grad_factor * np.sum(grad_out * x, axis=0))
        return grad_out * self.scale.data


@pytest.fixture
def scale_layers() -> tuple[type[TorchScale], type[RefbpScale]]:
    """``(TorchScale, RefbpScale)``: a user's torch layer and its refbp twin."""
    return TorchScale, RefbpScale

