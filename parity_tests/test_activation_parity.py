"""Parity of every activation and option with torch: outputs and input gradients.

Every option set (``checks``) of every activation declared in ``refbp.registry``. Inputs mix
seeded normals with the values where implementations usually part ways: exact +-0 (the kinks
of ReLU, LeakyReLU, PReLU and ELU), +-1 (Hardtanh's), the Softplus switch
``beta * x = threshold``, and +-1e4 (saturation, overflow of exp, log-sum-exp). Every case
runs in float64 and float32 through ``refbp.mirror.compare_module`` (seeded random upstream
gradient) and must pass the tolerance of its dtype from ``refbp.tolerances``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from refbp.metrics import Discrepancy
from refbp.mirror import compare_module
from refbp.nn import Module
from refbp.registry.ops import of_kind

pytestmark = pytest.mark.parity

Factory = Callable[[], Module]

# Every option set of every declared activation (refbp.registry), keyed by its label,
# e.g. "Softplus(beta=2.0, threshold=1.0)".
CHECKS = {c.label(o.name): c for o in of_kind("activation") for c in o.checks}
CASES: dict[str, Factory] = {c.label(o.name): functools.partial(o.numpy_class(), **c.options)
                             for o in of_kind("activation") for c in o.checks}
SHAPES = [(), (7,), (4, 5), (2, 3, 6), (0, 5)]  # (0, 5): an empty batch
DTYPES = [np.float64, np.float32]
# Kinks (+-0), the Softplus switches (beta x = threshold for each option above, and either
# side of it), saturation and overflow territory (+-1e4), and ordinary values.
SPECIAL = [0.0, -0.0, 1e4, -1e4, 20.0, 20.5, 0.5, 10.0, 10.25, 1.0, -1.0, 50.0, -50.0]


def make_input(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    """Seeded normals (scale 3) with the special values written over the first elements."""
    x = 3.0 * np.random.default_rng(seed).standard_normal(shape)
    flat = x.reshape(-1)
    n = min(flat.size, len(SPECIAL))
    flat[:n] = SPECIAL[:n]
    return x.astype(dtype)


def _shapes(name: str) -> list[tuple[int, ...]]:
    """The declared shapes of an op that does not take every rank, else :data:`SHAPES`."""
    return list(CHECKS[name].shapes) or SHAPES


def _valid(name: str, shape: tuple[int, ...]) -> bool:
    """Skip only what torch itself rejects: an explicit dim 1 on inputs with fewer dims, a
    shape the op's declaration does not list."""
    declared = CHECKS[name].shapes
    return (not (CHECKS[name].options.get("dim") == 1 and len(shape) < 2)
            and (not declared or shape in declared))


PARAMS = [(n, s) for n in CASES for s in _shapes(n) if _valid(n, s)]


def _torch_warnings(module: Module) -> contextlib.AbstractContextManager[object]:
    """torch warns about the implicit dim of Softmax(dim=None); assert it, stay strict else."""
    if getattr(module, "dim", 0) is None:
        return pytest.warns(UserWarning, match="Implicit dimension choice")
    return contextlib.nullcontext()


def run_case(name: str, shape: tuple[int, ...], dtype: type,
             x: np.ndarray | None = None) -> dict[str, Discrepancy]:
    module = CASES[name]().to(dtype)  # a layer with parameters (PReLU) takes the dtype
    with _torch_warnings(module):
        return compare_module(module, make_input(shape, dtype) if x is None else x)


def _failures(result: dict[str, Discrepancy]) -> Iterator[str]:
    for tensor, d in result.items():
        if not d.passed:
            yield (f"refbp vs torch: {tensor} at {d.worst_index}: refbp {d.a_value!r}, "
                   f"torch {d.b_value!r} (normwise {d.normwise:.3e}, tol ratio "
                   f"{d.tol_ratio:.3e})")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name,shape", PARAMS)
def test_activation_matches_torch(name: str, shape: tuple[int, ...], dtype: type) -> None:
    result = run_case(name, shape, dtype)
    module = CASES[name]()
    assert set(result) == {"output", "grad_input"} | {f"grad:{n}" for n, _ in
                                                      module.named_parameters()}
    assert not list(_failures(result)), f"{name} {shape} {np.dtype(dtype)}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", [n for n in CASES if _valid(n, ())])
@pytest.mark.parametrize("value", [0.0, -0.0, 1e4, -1e4, 1.5])
def test_scalar_input_matches_torch(name: str, value: float, dtype: type) -> None:
    result = run_case(name, (), dtype, np.array(value, dtype=dtype))
    assert not list(_failures(result)), f"{name} at {value} {np.dtype(dtype)}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", [n for n in CASES if "Softmax" in n and _valid(n, (4, 4))])
def test_softmax_extreme_rows_match_torch(name: str, dtype: type) -> None:
    """Rows entirely at +-1e4, with ties, and with one dominant logit."""
    x: np.ndarray = np.array([[1e4, 1e4, 1e4, 1e4], [-1e4, -1e4, -1e4, -1e4],
                              [1e4, -1e4, 0.0, 1e4 - 1], [-1e4, 0.0, 1e-3, -1e4]], dtype=dtype)
    result = run_case(name, x.shape, dtype, x)
    assert not list(_failures(result)), f"{name} {np.dtype(dtype)}"
