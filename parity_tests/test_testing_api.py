"""``refbp.testing`` with torch: ``assert_parity``, ``compare`` and ``check_gradients(torch_fn=)``.

Covers the happy paths (float64/float32, optimizers, mini-batches, tensors or arrays), the
failure message of a planted bug, and every documented bad-input message.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch

from refbp.data import epoch_indices
from refbp.mirror import register_converter
from refbp.parity.runner import run_scenario
from refbp.parity.suites import quick
from refbp.testing import assert_parity, check_gradients, loss_names, parity_table, run_parity
from refbp.testing.parity import _batch_plan
from refbp.tolerances import TOLERANCES

pytestmark = pytest.mark.parity
tnn = torch.nn
F = torch.nn.functional
NONFINITE = r"{name} contains a non-finite value (np\.float64\()?{value}\)? at index {index}"


def _mlp(seed: int = 0) -> tnn.Module:
    torch.manual_seed(seed)
    return tnn.Sequential(tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 8), tnn.ReLU(),
                          tnn.Linear(8, 3))


def _data(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 4)), r.integers(0, 3, n)


def test_assert_parity_float64_adam_minibatches_leaves_the_model_alone() -> None:
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    x, y = _data()
    assert assert_parity(model, x, y, loss="CrossEntropyLoss", optimizer=("Adam", {"lr": 1e-2}),
                         steps=5, batch_size=5) is None
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compare_rows_and_measured_discrepancy(dtype: str) -> None:
    x, y = _data()
    df = parity_table(_mlp(), torch.from_numpy(x), torch.from_numpy(y),
                 loss=tnn.CrossEntropyLoss(label_smoothing=0.1),
                 optimizer=("SGD", {"lr": 0.1, "momentum": 0.9}), steps=3, dtype=dtype)
    assert bool(df["passed"].all())
    assert set(df["step"]) == {1, 2, 3}
    assert {"loss", "output", "grad_input", "grad:0.weight", "param:4.bias",
            "state:4.bias:momentum_buffer"} <= set(df["tensor"])
    assert df["normwise"].max() <= TOLERANCES[dtype].normwise
    assert set(df["dtype"]) == {dtype}
    assert df["loss"].iloc[0] == ("CrossEntropyLoss(weight=None, ignore_index=-100, "
                                  "reduction='mean', label_smoothing=0.1)")
    assert df["model"].iloc[0].startswith("Linear(in_features=4, out_features=8, bias=True) > "
                                          "Tanh() > Linear(")


def test_report_columns_match_refbp_run() -> None:
    x, y = _data()
    ours = parity_table(_mlp(), x, y, loss="CrossEntropyLoss", name="mine")
    theirs = run_scenario(quick()[0]).rows[0]
    assert list(ours.columns) == list(theirs)
    assert set(ours["scenario"]) == {"mine"}


def test_batches_are_seeded_epochs_cycled() -> None:
    rng = np.random.default_rng(7)
    expected = epoch_indices(5, batch_size=2, rng=rng) + epoch_indices(5, batch_size=2, rng=rng)
    got = _batch_plan(5, 5, 2, 7)
    assert [b.tolist() for b in got] == [b.tolist() for b in expected[:5]]
    assert [b.tolist() for b in _batch_plan(3, 2, None, 0)] == [[0, 1, 2], [0, 1, 2]]


def test_tolerance_override_is_recorded_and_used() -> None:
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="CrossEntropyLoss", rtol=1e-3, atol=1e-4, normwise=1e-2)
    assert set(df["rtol"]) == {1e-3} and set(df["atol"]) == {1e-4}
    assert set(df["normwise_tol"]) == {1e-2}


def test_exact_comparison_with_zero_tolerances() -> None:
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="CrossEntropyLoss", rtol=0.0, atol=0.0, normwise=0.0,
                      floors="off")
    assert "error" not in set(df["kind"]), df["explanation"].iloc[0]
    assert (df["passed"] == (df["max_abs"] == 0.0)).all()
    # with the rounding floor, bitwise differences are noise, never a failure
    judged = parity_table(_mlp(), x, y, loss="CrossEntropyLoss", rtol=0.0, atol=0.0, normwise=0.0)
    assert set(judged["verdict"]) <= {"pass", "noise"}
    assert (judged["verdict"] == np.where(judged["max_abs"] == 0.0, "pass", "noise")).all()


@pytest.mark.parametrize("loss", ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
                                  "BCEWithLogitsLoss", "SSELoss"])
def test_regression_losses_by_name(loss: str) -> None:
    torch.manual_seed(1)
    model = tnn.Sequential(tnn.Linear(3, 5), tnn.SiLU(), tnn.Linear(5, 2))
    r = np.random.default_rng(1)
    y = r.uniform(size=(6, 2)) if loss == "BCEWithLogitsLoss" else r.standard_normal((6, 2))
    assert_parity(model, r.standard_normal((6, 3)), y, loss=loss,
                  optimizer=("RMSprop", {"lr": 1e-2}), steps=2)


# -- a planted bug: a user converter whose refbp backward is off by a factor ------------------
@pytest.fixture
def buggy(registry: None, scale_layers: tuple[type, type]) -> type:
    """Registers RefbpScale with dL/dscale off by 1.01 for TorchScale; returns TorchScale."""
    TorchScale, RefbpScale = scale_layers

    class BuggyScale(RefbpScale):  # type: ignore[misc,valid-type]
        grad_factor = 1.01

    register_converter(BuggyScale, TorchScale)
    return TorchScale


def test_failure_message_names_step_tensor_values_tolerance_and_culprit(buggy: type) -> None:
    torch.manual_seed(0)
    model = tnn.Sequential(tnn.Linear(2, 3), buggy(3), tnn.Linear(3, 1))
    x, y = np.random.default_rng(0).standard_normal((5, 2)), np.ones((5, 1))
    with pytest.raises(AssertionError) as info:
        assert_parity(model, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2,
                      name="buggy-scale")
    lines = str(info.value).splitlines()
    assert lines[:3] == ["refbp vs torch: Tensor-likes are not close!", "",
                         "Scenario buggy-scale (float64, seed 0): first failure at step 1, "
                         "tensor grad:1.scale"]
    assert lines[3] == "Mismatched elements: 3 / 3 (100.0%)"
    assert re.fullmatch(r"Greatest absolute difference: [0-9.e-]+ at index \(\d,\) \(up to "
                        r"1e-12 allowed\)", lines[4]), lines[4]
    assert re.fullmatch(r"Greatest relative difference: 0\.0(1|099)\d* at index \(\d,\) \(up to "
                        r"1e-09 allowed\)", lines[5]), lines[5]
    assert re.fullmatch(r"Normwise relative difference: 0\.0(1|099)\d* \(up to 1e-12 allowed\)",
                        lines[6]), lines[6]
    assert re.fullmatch(r"Worst element \(tolerance ratio [0-9.e+]+\) at index \(\d,\): "
                        r"refbp=-?[0-9.e-]+, torch=-?[0-9.e-]+", lines[7]), lines[7]
    assert re.fullmatch(r"Mismatched tensors: \d+ / \d+ \([0-9.]+%\) over 2 step\(s\); also "
                        r"failing: step 1 param:1\.scale, .*", lines[8]), lines[8]
    assert lines[9].startswith("Culprit: refbp (evidence: float64 finite differences of the "
                               "forward both sides agree on agree with torch")
    assert lines[9].endswith("refbp is off)")
    assert "torch is off" not in str(info.value)


@pytest.mark.usefixtures("registry")
def test_an_exception_inside_refbp_is_a_failing_error_row(
        scale_layers: tuple[type, type]) -> None:
    TorchScale, RefbpScale = scale_layers

    class ExplodingScale(RefbpScale):  # type: ignore[misc,valid-type]
        """Its backward raises: the run records one failing ``error`` row."""

        explode = True

    register_converter(ExplodingScale, TorchScale)
    model = tnn.Sequential(tnn.Linear(2, 3), TorchScale(3))
    result = run_parity(model, np.ones((2, 2)), np.ones((2, 3)), loss="MSELoss", name="boom")
    assert [r["kind"] for r in result.rows] == ["error"]
    with pytest.raises(AssertionError, match=r"^refbp vs torch: scenario boom \(float64, seed "
                                             r"0\), step 1: error: RuntimeError: ExplodingScale "
                                             r"exploded"):
        assert_parity(model, np.ones((2, 2)), np.ones((2, 3)), loss="MSELoss", name="boom")


# -- bad input through the public entry points -------------------------------------------------
class _OwnLayer(tnn.Module):
    """A user's own layer: every torch.nn layer converts, this one does not (nor does its
    operator, cumprod, in a graph)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(x, 1)


def _features_model() -> tnn.Module:
    return tnn.Sequential(OrderedDict([
        ("features", tnn.Sequential(tnn.Linear(4, 8), tnn.ReLU(), tnn.Linear(8, 8),
                                    _OwnLayer())),
        ("head", tnn.Linear(8, 3)),
    ]))


def _nan_weight_model() -> tnn.Module:
    m = _mlp()
    with torch.no_grad():
        m[0].weight[0, 1] = float("nan")
    return m


X, Y = _data()
class _OwnLoss(tnn.Module):
    """A user's own loss module: nothing in refbp converts it."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((input - target) ** 4).mean()


BAD: list[tuple[str, dict[str, Any], type, str]] = [
    ("unsupported-layer", {"torch_model": _features_model()}, TypeError,
     r"^cannot run Sequential in refbp: ATen operator aten\.cumprod\.default \(graph node "
     r"'cumprod', from .*test_testing_api\.py:\d+ in forward: return torch\.cumprod\(x, 1\)\) "
     r"is not supported\. Supported operators: .*aten\.linear\.default"),
    ("not-a-model", {"torch_model": "mlp"}, TypeError,
     r"^torch_model must be a torch\.nn\.Module, got str$"),
    ("list-inputs", {"inputs": X.tolist()}, TypeError,
     r"^inputs must be a NumPy array or a torch\.Tensor, got list$"),
    ("bool-inputs", {"inputs": np.ones((12, 4), dtype=bool)}, TypeError,
     r"^inputs must be a floating-point array, got dtype bool$"),
    # integer inputs are token indices (for an Embedding); a Linear model cannot take them
    ("int-inputs", {"inputs": np.ones((12, 4), dtype=np.int64)}, ValueError,
     r"^torch_model cannot be applied to inputs of shape \(12, 4\) \(int64\): "),
    ("bool-targets", {"targets": np.ones(12, dtype=bool)}, TypeError,
     r"^targets must be a floating-point array or integer class indices, got dtype bool$"),
    ("empty-batch", {"inputs": np.ones((0, 4)), "targets": np.ones(0, dtype=np.int64)},
     ValueError, r"^inputs is an empty batch \(shape \(0, 4\)\); need at least one sample$"),
    ("scalar-inputs", {"inputs": np.float64(1.0)}, TypeError,
     r"^inputs must be a NumPy array or a torch\.Tensor, got float64$"),
    ("0d-inputs", {"inputs": np.array(1.0)}, ValueError,
     r"^inputs must have a first \(batch\) dimension, got a 0-d array$"),
    ("nan-inputs", {"inputs": np.where(np.arange(48).reshape(12, 4) == 6, np.nan, X)},
     ValueError, "^" + NONFINITE.format(name="inputs", value="nan", index=r"\(1, 2\)") + "$"),
    ("inf-targets", {"targets": np.full((12, 3), np.inf), "loss": "MSELoss"}, ValueError,
     "^" + NONFINITE.format(name="targets", value="inf", index=r"\(0, 0\)") + "$"),
    ("nan-weights", {"torch_model": _nan_weight_model()}, ValueError,
     r"^torch_model parameter '0\.weight' contains a non-finite value nan at index \(0, 1\)$"),
    ("batch-mismatch", {"targets": np.zeros(11, dtype=np.int64)}, ValueError,
     r"^inputs and targets must have the same number of samples \(first dimension\), got "
     r"inputs\.shape=\(12, 4\) and targets\.shape=\(11,\)$"),
    ("bad-feature-shape", {"inputs": np.ones((12, 5))}, ValueError,
     r"^torch_model cannot be applied to inputs of shape \(12, 5\) \(float64\): mat1 and mat2 "
     r"shapes cannot be multiplied"),
    ("bad-target-shape", {"targets": np.ones((12, 2)), "loss": "MSELoss"}, ValueError,
     r"^targets do not fit the model output for MSELoss: output shape \(12, 3\), targets "
     r"shape \(12, 2\) \(float64\): "),
    ("class-out-of-range", {"targets": np.full(12, 7)}, ValueError,
     r"^targets do not fit the model output for CrossEntropyLoss: output shape \(12, 3\), "
     r"targets shape \(12,\) \(int64\): Target 7 is out of bounds"),
    ("dtype", {"dtype": "float16"}, ValueError,
     r"^dtype must be float32 or float64, got 'float16'$"),
    ("unknown-loss", {"loss": "FooLoss"}, ValueError,
     r"^unknown loss 'FooLoss'; known: BCELoss, BCEWithLogitsLoss, (\w+, )*CrossEntropyLoss, "
     r"(\w+, )*MSELoss, "),
    ("loss-of-three-arguments", {"loss": "MarginRankingLoss"}, ValueError,
     r"^MarginRankingLoss takes 3 arguments \(input1, input2, target\); a parity run gives the "
     r"loss the model's output and the targets only: check this loss with "
     r"refbp\.mirror\.compare_loss$"),
    ("loss-type", {"loss": 42}, TypeError,
     r"^loss must be a torch loss module \(e\.g\. torch\.nn\.MSELoss\(\)\) or its class name "),
    ("unsupported-loss", {"loss": _OwnLoss()}, TypeError,
     r"^unsupported loss: cannot convert module at '<root>' of type _OwnLoss to refbp"),
    ("optimizer-type", {"optimizer": ["Adam"]}, TypeError,
     r"^optimizer must be None, a name or a \(name, options\) tuple"),
    ("unknown-optimizer", {"optimizer": ("Foo", {})}, ValueError, r"unknown optimizer 'Foo'"),
    ("bad-lr", {"optimizer": ("SGD", {"lr": -1.0})}, ValueError,
     r"Invalid learning rate: -1\.0"),
    ("steps-zero", {"steps": 0}, ValueError, r"^steps must be a positive int, got 0$"),
    ("steps-beyond-the-limit", {"steps": 10**9, "optimizer": "SGD"}, ValueError,
     r"^assert_parity: steps = 1,000,000,000 exceeds the limit of 10,000 \(refbp\.limits\); "
     r"pass --allow-large \(allow_large=True\)"),
    ("steps-beyond-allow-large", {"steps": 10**9, "optimizer": "SGD", "allow_large": True},
     ValueError, r"limit of 1,000,000 .*beyond even --allow-large"),
    ("steps-without-optimizer", {"steps": 3}, ValueError,
     r"an op check \(no optimizer\) has one step, got steps=3"),
    ("batch-size", {"batch_size": 0}, ValueError, r"^batch_size must be a positive int, got 0$"),
    ("rtol", {"rtol": -1.0}, ValueError, r"^rtol must be a finite non-negative number, got -1\.0$"),
    ("name-with-space", {"name": "my model"}, ValueError,
     r"scenario name must be a non-empty string without spaces, got 'my model'"),
]


@pytest.mark.parametrize(("case", "override", "exc", "pattern"), BAD,
                         ids=[b[0] for b in BAD])
def test_bad_input_raises_the_documented_message(case: str, override: dict[str, Any],
                                                  exc: type, pattern: str) -> None:
    args: dict[str, Any] = {"torch_model": _mlp(), "inputs": X, "targets": Y,
                            "loss": "CrossEntropyLoss"}
    args.update(override)
    with pytest.raises(exc) as info:
        assert_parity(args.pop("torch_model"), args.pop("inputs"), args.pop("targets"), **args)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_loss_names_are_the_refbp_losses() -> None:
    assert {"CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "SSELoss"} <= set(loss_names())
    assert "Loss" not in loss_names()


# -- check_gradients against torch -------------------------------------------------------------
class TanhGELU:
    """A user's GELU with the tanh approximation: right derivative, not torch's exact GELU."""

    C = float(np.sqrt(2.0 / np.pi))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.t = np.tanh(self.C * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + self.t)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, t = self.x, self.t
        dt = (1 - t ** 2) * self.C * (1 + 3 * 0.044715 * x ** 2)
        return dout * (0.5 * (1 + t) + 0.5 * x * dt)


def test_check_gradients_against_a_named_torch_function() -> None:
    x = np.linspace(-3, 3, 13)
    exact = check_gradients(TanhGELU(), x, torch_fn="torch.nn.functional.gelu")
    assert exact.get("input").passed  # finite differences: the backward is right ...
    assert not exact.get("output", "torch").passed  # ... but it is not torch's exact GELU
    assert exact.get("output", "torch").normwise > 1e-5
    approx = check_gradients(TanhGELU(), x, torch_fn=lambda t: F.gelu(t, approximate="tanh"))
    assert approx.passed, str(approx)
    assert approx.get("input", "torch").normwise <= TOLERANCES["float64"].normwise


def test_check_gradients_with_parameters_against_torch() -> None:
    class Affine:
        def __init__(self) -> None:
            r = np.random.default_rng(0)
            self.W, self.b = r.standard_normal((3, 2)), r.standard_normal(2)
            self.dW = self.db = None

        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout: np.ndarray) -> np.ndarray:
            self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
            return dout @ self.W.T

    report = check_gradients(Affine(), np.random.default_rng(1).standard_normal((4, 3)),
                             torch_fn=lambda x, w, b: x @ w + b)
    assert report.passed, str(report)
    assert [(c.tensor, c.oracle) for c in report.checks][-4:] == [
        ("output", "torch"), ("input", "torch"), ("W", "torch"), ("b", "torch")]


def test_check_gradients_bad_torch_fn() -> None:
    with pytest.raises(ValueError, match=r"^torch_fn 'torch\.nn\.functional\.gelux' does not "
                                         r"name a torch math function"):
        check_gradients(TanhGELU(), np.ones(3), torch_fn="torch.nn.functional.gelux")
    with pytest.raises(ValueError, match=r"^torch_fn returned \(2,\), expected a tensor of the "
                                         r"output shape \(3,\)$"):
        check_gradients(TanhGELU(), np.ones(3), torch_fn=lambda t: t[:2])


# -- BatchNorm: train/eval mode and the preflight run ------------------------------------------
def _bn_model(train: bool) -> tnn.Module:
    torch.manual_seed(5)
    m = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.ReLU(), tnn.Linear(4, 2))
    with torch.no_grad():
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
    return m.train(train)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_in_both_modes(train: bool) -> None:
    r = np.random.default_rng(5)
    model = _bn_model(train)
    before = model[1].running_mean.clone()
    assert_parity(model, r.standard_normal((8, 3)), r.standard_normal((8, 2)), loss="MSELoss",
                  optimizer=("SGD", {"lr": 0.1}), steps=3, batch_size=4)
    assert torch.equal(model[1].running_mean, before) and model.training is train


def test_batchnorm_batch_of_one_in_training_mode() -> None:
    with pytest.raises(ValueError, match=r"^torch_model cannot be applied to inputs of shape "
                                         r"\(1, 3\) \(float64\): Expected more than 1 value per "
                                         r"channel when training"):
        assert_parity(_bn_model(True), np.ones((1, 3)), np.ones((1, 2)), loss="MSELoss")


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), torch.float32, "float32"])
def test_dtype_spellings(dtype: Any) -> None:
    x, y = _data()
    df = parity_table(_mlp(), x, y, loss="CrossEntropyLoss", dtype=dtype)
    assert set(df["dtype"]) == {"float32"} and bool(df["passed"].all())


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


@pytest.mark.parametrize("call", ["assert_parity", "parity_table", "run_parity", "raises"])
def test_the_api_runs_with_one_thread_and_gives_the_callers_back(call: str) -> None:
    """The API pins torch and BLAS to one thread for the call, as ``refbp run`` does, and
    restores the caller's counts after it, also when it raises."""
    from threadpoolctl import threadpool_limits

    model, (x, y) = _mlp(), _data()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with threadpool_limits(limits=2, user_api="blas"):
            blas = _blas_threads()
            if call == "raises":  # from inside the call: steps is checked after the pinning
                with pytest.raises(ValueError, match="steps"):
                    assert_parity(model, x, y, loss="CrossEntropyLoss", steps=0)
            else:
                {"assert_parity": assert_parity, "parity_table": parity_table,
                 "run_parity": run_parity}[call](model, x, y, loss="CrossEntropyLoss")
            assert (torch.get_num_threads(), _blas_threads()) == (2, blas)
    finally:
        torch.set_num_threads(before)


def test_the_model_runs_under_one_torch_and_one_blas_thread() -> None:
    """Every forward of the torch side (the copies of the model) sees one thread each."""
    from threadpoolctl import threadpool_limits

    seen: list[tuple[int, int]] = []

    class Probe(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = tnn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.get_num_threads(), _blas_threads()))
            return self.fc(x)

    x, y = _data()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with threadpool_limits(limits=2, user_api="blas"):
            assert_parity(Probe(), x, y, loss="CrossEntropyLoss", steps=2,
                          optimizer=("SGD", {"lr": 0.1}))
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {(1, 1)}
