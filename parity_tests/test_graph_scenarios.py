"""Torch models as scenarios (``TorchModel``) and through the command line, and the symbolic
batch dimension of a capture.

A scenario file names a user's torch model by ``factory`` (``path/to/file.py:Name`` here, as a
user writes it); ``refbp run --scenarios FILE`` builds it from the scenario seed, captures it
with ``torch.export`` and runs both sides. An operator refbp does not declare stops the run
before anything runs: exit 2, one line naming the ATen operator, the graph node and the
user's source line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from refbp.cli import main
from refbp.mirror import from_torch
from refbp.parity.runner import run_scenario
from refbp.parity.scenario import TORCH_MODEL, DataSpec, Scenario, Spec
from refbp.report import load_results

pytestmark = pytest.mark.parity
tnn = torch.nn

MODELS = '''\
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, width: int = 6) -> None:
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.out(h + torch.relu(self.hidden(h)))


class Cumprod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return torch.cumprod(self.lin(x), dim=1)


def not_a_model(width: int = 3):
    return [width]
'''


def _scenario_file(tmp_path: Path, factory: str, **args: Any) -> Path:
    (tmp_path / "models.py").write_text(MODELS)
    extra = "".join(f", {k} = {v}" for k, v in args.items())
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(f"""\
        [[scenario]]
        name = "mine"
        dtypes = ["float64", "float32"]
        model = [{{ type = "TorchModel", factory = "{factory}"{extra} }}]
        loss = {{ type = "MSELoss" }}
        optimizer = {{ type = "Adam", lr = 0.01 }}
        steps = 3
        batch_size = 4
        data = {{ kind = "regression", n = 10, features = 4, outputs = 3 }}
        """))
    return f


def test_a_scenario_file_checks_a_users_torch_model(tmp_path: Path) -> None:
    f = _scenario_file(tmp_path, str(tmp_path / "models.py") + ":Residual", width = 5)
    out = tmp_path / "rep"
    assert main(["run", "--scenarios", str(f), "--out", str(out)]) == 0
    df, _ = load_results(out)
    assert set(df.scenario) == {"mine-f64", "mine-f32"}
    assert set(df.step) == {1, 2, 3}  # batches of 4, 4 and 2 samples: one graph
    assert {"grad:inp.weight", "grad:hidden.bias", "param:out.weight",
            "state:hidden.weight:exp_avg_sq"} <= set(df.tensor)
    assert df.model.iloc[0] == f"TorchModel(factory='{tmp_path}/models.py:Residual', width=5)"
    assert df.passed.all()
    f64 = df[df.dtype == "float64"]
    assert f64.normwise.max() < 1e-13


def test_an_unsupported_operator_stops_the_run_with_exit_2_and_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _scenario_file(tmp_path, str(tmp_path / "models.py") + ":Cumprod")
    out = tmp_path / "rep"
    capsys.readouterr()
    assert main(["run", "--scenarios", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("refbp: error: scenario mine-f64: cannot run Cumprod in refbp: ATen "
                          "operator aten.cumprod.default (graph node 'cumprod', from "
                          f"{tmp_path}/models.py:23 in forward: return "
                          "torch.cumprod(self.lin(x), dim=1)) is not supported.")
    assert "Supported operators: " in err and "aten.linear.default" in err
    assert not out.exists()


@pytest.mark.parametrize(("factory", "message"), [
    ("{dir}/models.py:Nope", "defines no 'Nope'"),
    ("no_such_package_xyz.models:Net", "TorchModel factory 'no_such_package_xyz.models:Net': "
     "cannot import 'no_such_package_xyz.models'"),
    ("refbp.mirror.zoo:Nope", "module 'refbp.mirror.zoo' has no 'Nope'"),
    ("{dir}/models.py:not_a_model", "returned a list, not a torch.nn.Module"),
])
def test_a_factory_that_gives_no_torch_model_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], factory: str, message: str) -> None:
    f = _scenario_file(tmp_path, factory.format(dir=tmp_path))
    capsys.readouterr()
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refbp: error: ") and message in err and err.count("\n") == 1


def test_a_python_scenario_of_a_zoo_model_runs_every_batch_size() -> None:
    s = Scenario(name="gpt", model=(Spec(TORCH_MODEL, {
        "factory": "refbp.mirror.zoo:GPT", "vocab_size": 12, "block_size": 6, "n_layer": 1,
        "n_head": 2, "n_embd": 8}),), loss=Spec("MSELoss"),
        optimizer=Spec("SGD", {"lr": 0.05}), data=DataSpec(
            "tokens", n=7, features=12, outputs=12, extra={"seq_len": 6, "target": "steps"}),
        batch_size=3, steps=3)
    result = run_scenario(s)
    rows = result.frame()
    assert result.passed, rows[~rows.passed]
    outputs = rows[rows.tensor == "output"]
    assert len(outputs) == 3 and list(outputs.numel) == [3 * 6 * 12, 3 * 6 * 12, 1 * 6 * 12]


def test_a_scenario_model_is_captured_once_and_each_build_gets_a_fresh_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``refbp run --scenarios`` builds a scenario for its up-front check, which trains a
    step, and again to run it: the second build reuses the capture and starts from the
    initial weights."""
    import refbp.mirror.scenario_model as sm
    from refbp.parity.build import build_refbp, dry_run

    calls = []
    real = sm.graph_from_torch
    monkeypatch.setattr(sm, "graph_from_torch", lambda *a, **k: calls.append(1) or real(*a, **k))
    s = Scenario(name="resnet-once", model=(Spec(TORCH_MODEL, {
        "factory": "refbp.mirror.zoo:ResNet", "layers": [1], "num_classes": 3, "width": 4,
        "in_channels": 1}),), loss=Spec("CrossEntropyLoss"), optimizer=Spec("SGD", {"lr": 0.5}),
        data=DataSpec("images", n=6, features=1, outputs=3, extra={"height": 8, "width": 8}),
        batch_size=4, seed=11, steps=1)
    first = build_refbp(s)
    before = {k: v.copy() for k, v in first.model.state_dict().items()}
    dry_run(s)
    second = build_refbp(s)
    assert len(calls) == 1
    after = second.model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    torch_weights = {k: v.detach().numpy() for k, v in second.torch_model.state_dict().items()}
    for key, value in before.items():
        np.testing.assert_array_equal(torch_weights[key], value, err_msg=key)
    assert second.model is not first.model and second.torch_model is not first.torch_model


class _FixedBatch(tnn.Module):
    """Its code fixes the batch size: ``reshape(3, ...)``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = tnn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).reshape(3, 2, 2).sum(1)


def test_the_captured_batch_dimension_is_symbolic() -> None:
    torch.manual_seed(0)
    model = tnn.Sequential(tnn.Linear(4, 5), tnn.Tanh(), tnn.Linear(5, 2)).double()
    graph = from_torch(model, example_inputs=(torch.zeros(3, 4, dtype=torch.float64),),
                       graph=True)
    for n in (1, 2, 7):
        x = np.random.default_rng(n).standard_normal((n, 4))
        expected = model(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(graph(x), expected, rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match=r"captured for input 'input' of shape \(batch, 4\), "
                       r"got \(2, 3\): only the batch dimension \(0\) was captured as symbolic"):
        graph(np.zeros((2, 3)))


def test_a_model_that_fixes_its_batch_size_is_captured_with_fixed_shapes_saying_why() -> None:
    x = torch.zeros(3, 4)
    graph = from_torch(_FixedBatch(), example_inputs=(x,))
    with pytest.raises(ValueError) as info:
        graph(np.zeros((2, 4), dtype=np.float32))
    assert str(info.value) == (
        "_FixedBatch graph was captured for input 'x' of shape (3, 4), got (2, 4): the capture "
        "fixed every shape (torch.export could not keep the batch dimension symbolic: You "
        "marked batch as dynamic but your code specialized it to be a constant (3)), so "
        "capture it again with example inputs of this shape")
    with pytest.raises(ValueError, match="cannot capture a symbolic batch dimension: You marked"):
        from_torch(_FixedBatch(), example_inputs=(x,), graph=True, dynamic_batch=True)
    one = from_torch(tnn.Sequential(tnn.Linear(4, 2), tnn.ReLU()), example_inputs=(x[:1],),
                     graph=True)
    assert one.fixed_shapes_reason == ("the example batch has 1 sample, a size torch.export "
                                       "always fixes: capture with 2 or more")
