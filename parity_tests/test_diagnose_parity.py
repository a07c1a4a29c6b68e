"""refbp.diagnose against torch itself: the catalog table, BatchNorm1d, localisation, noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from refbp.diagnose import (
    check_layer,
    check_loss,
    check_optimizer,
    load_user,
    localize,
    thread_noise,
)
from refbp.diagnose.torch_side import ensure_converters
from refbp.metrics import discrepancy
from refbp.mirror import compare_module
from refbp.nn import Linear, ReLU
from refbp.nn.batchnorm import BatchNorm1d
from refbp.tolerances import TOLERANCES

pytestmark = pytest.mark.parity

HERE = Path(__file__).parent.parent / "tests" / "user_code"
CASES = load_user(f"{HERE}/cases.py:CASES")
#: the cases the default run checks against torch (tests/test_diagnose_catalog.py checks the
#: others with refbp's oracle); ``-m slow`` runs the rest here
DEFAULT = load_user(f"{HERE}/cases.py:in_default_run")("torch")
CHECKS = {"optimizer": check_optimizer, "layer": check_layer, "loss": check_loss}


@pytest.mark.parametrize("case", [
    pytest.param(c, id=f"{c[1]}-{c[2]}-{'+'.join(c[3]) or 'defaults'}",
                 marks=() if default else pytest.mark.slow)
    for c, default in zip(CASES, DEFAULT, strict=True)])
def test_user_convention_identified_against_torch(case: tuple[Any, ...]) -> None:
    kind, spec, like, options, expected = case
    d = CHECKS[kind](f"{HERE}/{spec}", like=like, options=options, oracle="torch")
    assert d.oracle == "torch"
    assert d.explanation.startswith(f"your {spec.rpartition(':')[2]}")
    assert f"torch's {like}" in d.explanation
    if expected is None:
        assert d.matches_torch, d.explanation
        assert d.frame["normwise"].max() <= TOLERANCES["float64"].normwise
    else:
        assert d.matched_variant is not None and d.matched_variant.name == expected, \
            d.explanation


@pytest.mark.parametrize("shape", [(8, 4), (3, 4, 5)])
@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"affine": False},
                                     {"track_running_stats": False}, {"bias": False}])
def test_batchnorm_matches_torch(shape: tuple[int, ...], options: dict[str, Any]) -> None:
    ensure_converters()
    rng = np.random.default_rng(0)
    bn = BatchNorm1d(4, eps=1e-3, **options)
    for p in bn.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape)
    tb = torch.nn.BatchNorm1d(4, eps=1e-3, dtype=torch.float64, **options)
    tb.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bn.state_dict().items()})
    for step in range(3):
        x = 1 + 2 * rng.standard_normal(shape)
        for name, d in compare_module(bn, x, seed=step).items():
            assert d.passed, (step, name, d)
        bn(x)
        tb(torch.from_numpy(x))
        for key, value in tb.state_dict().items():
            np.testing.assert_allclose(bn.state_dict()[key], value.numpy(), rtol=1e-13)
    # eval mode: refbp.mirror.to_torch builds twins in training mode, so compare by hand
    bn.eval()
    tb.eval()
    x = 1 + 2 * rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    tb(xt).backward(torch.from_numpy(g))
    bn.zero_grad()
    tol = TOLERANCES["float64"]
    assert discrepancy(bn(x), tb(torch.from_numpy(x)).detach().numpy(), tol).passed
    assert discrepancy(bn.backward(g), xt.grad.numpy(), tol).passed
    for (name, p), tp in zip(bn.named_parameters(), tb.parameters(), strict=True):
        assert discrepancy(p.grad, tp.grad.numpy(), tol).passed, name


def test_batchnorm_float32_and_state_dict_keys() -> None:
    ensure_converters()
    bn = BatchNorm1d(3, dtype=np.float32)
    assert list(bn.state_dict()) == list(torch.nn.BatchNorm1d(3).state_dict())
    x = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    for name, d in compare_module(bn, x).items():
        assert d.passed, (name, d)


def test_localize_with_torch_hooks() -> None:
    rng = np.random.default_rng(0)
    affine = load_user(f"{HERE}/linear_family.py:Affine")
    users = [affine(rng.standard_normal((4, 8)), rng.standard_normal(8)),
             load_user(f"{HERE}/relu.py:Relu")(),
             load_user(f"{HERE}/linear_family.py:Dense")(8, 3)]
    x = rng.standard_normal((6, 4))
    loc = localize(users, [Linear(4, 8), ReLU(), Linear(8, 3)], x, oracle="torch")
    assert (loc.layer, loc.phase, loc.tensor) == (2, "backward", "grad:weight")
    passed = loc.table[loc.table["tensor"] != "grad:weight"]
    assert passed[passed["layer"] != 2]["normwise"].max() <= TOLERANCES["float64"].normwise


def test_thread_noise_is_reported() -> None:
    d = check_optimizer(f"{HERE}/adam_family.py:AdamTfEpsHat", like="Adam", options={"lr": 1e-2},
                        oracle="torch", thread_noise=True)
    assert d.thread_noise is not None and d.thread_noise <= TOLERANCES["float64"].normwise
    assert "torch against itself (1 vs 2 threads) on this check: normwise" in d.explanation
    assert d.first_divergence is not None and d.first_divergence.normwise > 1e3 * max(
        d.thread_noise, 1e-16)

    def run() -> list[tuple[int, str, np.ndarray]]:
        torch.manual_seed(0)
        a = torch.randn(64, 256, dtype=torch.float32)
        return [(1, "matmul", (a @ a.T).numpy())]

    nf = thread_noise(run, threads=(1, 2), repeats=2)
    assert nf.runs == 4 and nf.normwise < TOLERANCES["float32"].normwise
    assert nf.max_ulp >= 0
