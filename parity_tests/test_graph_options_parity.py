"""Graph models beyond one output and stock modules: dropout drawn in the model's own code
(``F.dropout``, ``F.scaled_dot_product_attention(dropout_p=...)``) with torch's masks,
BatchNorm with ``momentum=None`` (cumulative running averages), and models that return
several outputs (``output=``: an index, a key, or their sum).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refbp.errors import LimitError
from refbp.mirror import from_torch
from refbp.nn.dropout import record_masks
from refbp.parity.runner import run_scenario
from refbp.parity.scenario import TORCH_MODEL, DataSpec, Scenario, Spec
from refbp.testing import parity_table

pytestmark = pytest.mark.parity
tnn = torch.nn
DTYPES = ("float64", "float32")


class _Attention(tnn.Module):
    """Self-attention dropping its weights in its own code, then ``F.dropout`` on the output."""

    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.qkv = tnn.Linear(8, 24)
        self.out = tnn.Linear(8, 8)
        self.sdpa = sdpa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.qkv(x).view(b, t, 3, 2, 4).permute(2, 0, 3, 1, 4)
        q, k, v = h[0], h[1], h[2]
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3 if self.training else 0.0,
                                               is_causal=True)
        else:
            weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)
            y = F.dropout(weights, 0.3, self.training) @ v
        return self.out(F.dropout(y.transpose(1, 2).reshape(b, t, c), 0.2, self.training))


def _data(shape_x: tuple[int, ...], shape_y: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape_x), rng.standard_normal(shape_y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sdpa", [False, True], ids=["F.dropout", "sdpa-dropout_p"])
def test_dropout_in_the_models_code_runs_with_torchs_masks(sdpa: bool, dtype: str) -> None:
    torch.manual_seed(0)
    x, y = _data((6, 5, 8), (6, 5, 8))
    model = _Attention(sdpa)
    graph = from_torch(model.double(), example_inputs=(torch.from_numpy(x[:2]),))
    with record_masks() as drawn:
        graph(x[:2])
    assert [m.shape for m in drawn.masks] == [(2, 2, 5, 5), (2, 5, 8)]
    table = parity_table(model, x, y, loss="MSELoss", optimizer=("Adam", {"lr": 1e-2}),
                         steps=3, batch_size=4, dtype=dtype, nodes=True)
    assert table.passed.all(), table[~table.passed][["step", "tensor", "tol_ratio"]]
    assert table.tensor.str.startswith("node_grad:").any()


class _CumulativeBN(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = tnn.Linear(4, 6)
        self.bn = tnn.BatchNorm1d(6, momentum=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.bn(self.lin(x))) * 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_with_momentum_none_keeps_cumulative_averages(dtype: str) -> None:
    torch.manual_seed(1)
    x, y = _data((10, 4), (10, 6))
    table = parity_table(_CumulativeBN(), x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}),
                         steps=3, batch_size=4, dtype=dtype)  # batches of 4, 4 and 2
    assert table.passed.all(), table[~table.passed][["step", "tensor", "tol_ratio"]]
    assert {"buffer:bn.running_mean", "buffer:bn.running_var"} <= set(table.tensor)
    # the cumulative average of 4 batches differs from any exponential one: check the value
    model = _CumulativeBN().double()
    graph = from_torch(model, example_inputs=(torch.from_numpy(x[:3]),))
    means = []
    for part in (x[:3], x[3:6], x[6:9]):
        graph(part)
        means.append((part @ model.lin.weight.detach().numpy().T
                      + model.lin.bias.detach().numpy()).mean(axis=0))
    np.testing.assert_allclose(graph.state_dict()["bn.running_mean"], np.mean(means, axis=0),
                               rtol=1e-13)


class _TwoBN(tnn.Module):
    def __init__(self, momentum: float) -> None:
        super().__init__()
        self.cumulative = _CumulativeBN()
        self.lin = tnn.Linear(6, 6)
        self.bn = tnn.BatchNorm1d(6, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.lin(self.cumulative(x)))


def test_any_numeric_momentum_is_an_exponential_average() -> None:
    """A BatchNorm with momentum=None is told by its module, not by the captured momentum:
    a momentum of any value (this one was once the capture's marker for momentum=None)
    stays an exponential average beside a cumulative one in the same model."""
    torch.manual_seed(1)
    x, _ = _data((9, 4), (9, 6))
    model = _TwoBN(0.12345678901234568).double()
    graph = from_torch(model, example_inputs=(torch.from_numpy(x[:3]),))
    for part in (x[:3], x[3:6], x[6:9]):
        graph(part)
        model(torch.from_numpy(part))
    for key in ("cumulative.bn.running_mean", "bn.running_mean", "bn.running_var"):
        np.testing.assert_allclose(graph.state_dict()[key], model.state_dict()[key].numpy(),
                                   rtol=1e-12, err_msg=key)


class _TwoHeads(tnn.Module):
    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.body = tnn.Linear(4, 3)
        self.aux = tnn.Linear(4, 3)
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor) -> Any:
        main = torch.tanh(self.body(x))
        aux = self.aux(x) * self.body(x)
        return {"main": main, "aux": aux} if self.as_dict else (main, aux)


@pytest.mark.parametrize(("as_dict", "output"), [(False, 1), (False, "sum"), (True, "aux"),
                                                 (True, "sum")])
def test_a_model_with_several_outputs_is_checked_on_the_chosen_one(as_dict: bool,
                                                                   output: Any) -> None:
    torch.manual_seed(2)
    x, y = _data((6, 4), (6, 3))
    model = _TwoHeads(as_dict)
    table = parity_table(model, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2,
                         output=output)
    assert table.passed.all(), table[~table.passed][["step", "tensor", "tol_ratio"]]
    with torch.no_grad():
        out = model(torch.from_numpy(x).float())
        expected = (out[0] + out[1] if not as_dict else out["main"] + out["aux"]) \
            if output == "sum" else out[output]
    got = table[(table.tensor == "output") & (table.step == 1)].torch_value.iloc[0]
    assert np.isfinite(got) and expected.shape == (6, 3)
    assert {"grad:model.body.weight", "grad:model.aux.weight"} <= set(table.tensor)


def test_several_outputs_without_a_choice_say_how_to_choose() -> None:
    x, y = _data((6, 4), (6, 3))
    with pytest.raises(TypeError, match="choose one with output=INDEX or KEY, or "
                       "output='sum'"):
        parity_table(_TwoHeads(False), x, y, loss="MSELoss")
    with pytest.raises(TypeError, match="output=.missing. does not name an output of "
                       "_TwoHeads"):
        parity_table(_TwoHeads(True), x, y, loss="MSELoss", output="missing")


def test_a_torch_model_scenario_chooses_an_output() -> None:
    s = Scenario(name="two-heads", model=(Spec(TORCH_MODEL, {
        "factory": "refbp.mirror.zoo:GPT", "vocab_size": 10, "block_size": 4, "n_layer": 1,
        "n_head": 1, "n_embd": 4, "output": "sum"}),), loss=Spec("MSELoss"),
        optimizer=Spec("SGD", {"lr": 0.1}), data=DataSpec(
            "tokens", n=4, features=10, outputs=10, extra={"seq_len": 4, "target": "steps"}),
        batching="batch", steps=2)
    result = run_scenario(s)
    assert result.passed, result.frame()[~result.frame().passed]
    assert "grad:model.wte.weight" in set(result.frame().tensor)


class _Outer(tnn.Module):
    """A small input, a large intermediate value: the outer product of a 2000-wide layer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = tnn.Linear(4, 2000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return (h.unsqueeze(2) * h.unsqueeze(1)).mean((1, 2)).unsqueeze(1)


def test_the_activation_limit_counts_every_node_of_a_graph() -> None:
    x, y = np.zeros((8, 4)), np.zeros((8, 1))
    with pytest.raises(LimitError) as info:
        parity_table(_Outer(), x, y, loss="MSELoss")
    assert str(info.value).startswith(
        "assert_parity: activation elements of a forward and backward pass on a batch of shape "
        "(8, 4) = 64,0")
    assert "the largest share: graph node 'mul', 64,000,000" in str(info.value)
    table = parity_table(_Outer(), x[:2], y[:2], loss="MSELoss")  # 16 million: allowed
    assert table.passed.all()
