"""``refbp.mirror.from_torch``: trees of torch modules, error paths, user converters.

Every converted model is run on the same input as the torch original (``compare_module``) so a
conversion that reorders children or drops weights fails on values, not only on structure.
ModuleDict children keep their names, frozen parameters stay frozen, a converter whose
parameter names do not match fails loudly, and a custom container gets a hint.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, compare_module, from_torch, register_converter, to_numpy
from refbp.mirror import modules as mirror_modules
from refbp.nn.module import Module
from refbp.testing import assert_parity
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity
tnn = torch.nn


def _torch_output(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_numpy(model(as_tensor(x)))


def _sequential_output(children: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        t = as_tensor(x)
        for c in children:
            t = c(t)
        return to_numpy(t)


def _x(shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nested_sequential_keeps_weights_keys_and_dtype(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    t = tnn.Sequential(tnn.Linear(4, 6), tnn.Sequential(tnn.GELU(), tnn.Linear(6, 5),
                                                        tnn.Sequential(tnn.Tanh())),
                       tnn.Linear(5, 2)).to(dtype)
    m = from_torch(t)
    assert list(m.state_dict()) == list(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], to_numpy(v))
        assert m.state_dict()[k].dtype == to_numpy(v).dtype
    x = _x((3, 4), np.float64 if dtype == torch.float64 else np.float32)
    assert discrepancy(m(x), _torch_output(t, x), tolerance_for(x.dtype)).passed
    diffs = compare_module(m, x)
    assert all(d.passed for d in diffs.values()), diffs


def test_module_dict_children_run_in_insertion_order() -> None:
    torch.manual_seed(1)
    # "z" before "a": sorting the keys would apply Linear(3, 1) to a 2-feature input.
    d = tnn.ModuleDict(OrderedDict([("z", tnn.Linear(2, 3)), ("a", tnn.Linear(3, 1))])).double()
    m = from_torch(d)
    x = _x((4, 2))
    np.testing.assert_allclose(m(x), _sequential_output(d.values(), x), rtol=1e-15, atol=0)


def test_module_list_nested_in_sequential() -> None:
    torch.manual_seed(2)
    lst = tnn.ModuleList([tnn.Linear(3, 4), tnn.ReLU(), tnn.Linear(4, 2)]).double()
    t = tnn.Sequential(lst, tnn.Sigmoid())
    m = from_torch(t)
    x = _x((5, 3))
    expected = _sequential_output([*lst, tnn.Sigmoid()], x)
    np.testing.assert_allclose(m(x), expected, rtol=1e-15, atol=0)
    assert [n for n, _ in m.named_parameters()] == ["0.0.weight", "0.0.bias", "0.2.weight",
                                                   "0.2.bias"]


def test_module_dict_keeps_the_users_parameter_names() -> None:
    d = tnn.Sequential(tnn.ModuleDict({"encoder": tnn.Linear(2, 3), "act": tnn.ReLU()}))
    assert list(from_torch(d).state_dict()) == list(d.state_dict())


class _OwnLayer(tnn.Module):
    """A user's own layer: every torch.nn layer converts, this one does not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _features_model() -> tnn.Module:
    return tnn.Sequential(OrderedDict([
        ("features", tnn.Sequential(tnn.Linear(4, 8), tnn.ReLU(), tnn.Linear(8, 8),
                                    _OwnLayer())),
        ("head", tnn.Linear(8, 2)),
    ]))


def test_unsupported_layer_names_path_type_and_supported_types() -> None:
    with pytest.raises(TypeError) as info:
        from_torch(_features_model())
    msg = str(info.value)
    assert msg.startswith("cannot convert module at 'features.3' of type _OwnLayer "
                          "to refbp; supported types: ")
    for name in ("Linear", "ReLU", "CrossEntropyLoss", "Sequential", "ModuleList", "ModuleDict"):
        assert name in msg
    assert "refbp.mirror.register_converter" in msg


def test_unsupported_layer_two_levels_deep_in_lists_and_dicts() -> None:
    t = tnn.Sequential(OrderedDict([
        ("body", tnn.ModuleList([tnn.Linear(2, 2),
                                 tnn.ModuleDict({"act": tnn.Tanh(),
                                                 "norm": _OwnLayer()})])),
    ]))
    with pytest.raises(TypeError, match=r"^cannot convert module at 'body\.1\.norm' of type "
                                        r"_OwnLayer to refbp"):
        from_torch(t)


def test_custom_root_module_is_rejected_at_root() -> None:
    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = tnn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) * 2

    with pytest.raises(TypeError, match=r"^cannot convert module at '<root>' of type Net"):
        from_torch(Net())


def test_custom_container_error_says_what_to_do() -> None:
    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = tnn.Sequential(tnn.Linear(2, 2))

    with pytest.raises(TypeError, match=r"build the model from nn\.Sequential$"):
        from_torch(Net())


def test_subclass_of_a_supported_layer_is_not_silently_converted() -> None:
    class Doubling(tnn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    with pytest.raises(TypeError, match=r"at '1' of type Doubling"):
        from_torch(tnn.Sequential(tnn.ReLU(), Doubling(2, 2)))


# -- a user layer (TorchScale / RefbpScale from conftest.py's scale_layers) ------------
class TorchAlphaScale(tnn.Module):
    """Same layer with a differently named parameter: needs an explicit weight mapping."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.alpha = tnn.Parameter(torch.linspace(-1.0, 1.0, num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.alpha


def _alpha_converters(scale_cls: type[Module]) -> dict[str, Any]:
    """to_torch/from_torch for ``scale_cls`` (a RefbpScale) <-> TorchAlphaScale."""

    def from_torch_fn(t: tnn.Module) -> Module:
        alpha = to_numpy(t.alpha)
        m = scale_cls(alpha.shape[0], dtype=alpha.dtype)
        m.load_state_dict({"scale": alpha})
        return m

    def to_torch_fn(m: Any) -> tnn.Module:
        t = TorchAlphaScale(m.num_features).to(torch.float64 if m.scale.dtype == np.float64
                                               else torch.float32)
        with torch.no_grad():
            t.alpha.copy_(torch.from_numpy(m.scale.data.copy()))
        return t

    return {"to_torch": to_torch_fn, "from_torch": from_torch_fn}


@pytest.mark.usefixtures("registry")
def test_user_converter_with_same_names_runs_through_assert_parity(
        scale_layers: tuple[type, type]) -> None:
    TorchScale, RefbpScale = scale_layers
    register_converter(RefbpScale, TorchScale)
    torch.manual_seed(3)
    t = tnn.Sequential(tnn.Linear(3, 4), TorchScale(4), tnn.Tanh(), tnn.Linear(4, 2))
    m = from_torch(t.double())
    np.testing.assert_array_equal(m[1].scale.data, to_numpy(t[1].scale))
    x, y = _x((6, 3)), _x((6, 2))
    assert_parity(t, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=3)
    assert "RefbpScale" in mirror_modules.supported_types() or "TorchScale" in \
        mirror_modules.supported_types()


@pytest.mark.usefixtures("registry")
def test_user_converter_with_a_weight_mapping(scale_layers: tuple[type, type]) -> None:
    register_converter(scale_layers[1], TorchAlphaScale, **_alpha_converters(scale_layers[1]))
    t = tnn.Sequential(tnn.Linear(2, 3), TorchAlphaScale(3)).double()
    m = from_torch(t)
    np.testing.assert_array_equal(m[1].scale.data, to_numpy(t[1].alpha))
    assert_parity(t, _x((5, 2)), _x((5, 3)), loss="L1Loss", optimizer=("Adam", {"lr": 0.1}),
                  steps=2)


@pytest.mark.usefixtures("registry")
def test_generic_converter_rejects_mismatched_parameter_names(
        scale_layers: tuple[type, type]) -> None:
    register_converter(scale_layers[1], TorchAlphaScale)
    with pytest.raises(ValueError, match="alpha"):
        from_torch(TorchAlphaScale(3).double())


def test_frozen_parameters_stay_frozen() -> None:
    t = tnn.Linear(2, 2).double()
    t.bias.requires_grad_(False)
    assert from_torch(t).bias.requires_grad is False


def test_frozen_parameters_in_assert_parity() -> None:
    torch.manual_seed(4)
    t = tnn.Sequential(tnn.Linear(3, 3), tnn.ReLU(), tnn.Linear(3, 1))
    t[0].weight.requires_grad_(False)
    assert_parity(t, _x((4, 3)), _x((4, 1)), loss="MSELoss", optimizer=("SGD", {"lr": 0.5}),
                  steps=2)


def test_conversion_of_every_loss_option_round_trips() -> None:
    w = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    losses = [tnn.CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=1),
              tnn.BCEWithLogitsLoss(pos_weight=w), tnn.HuberLoss(delta=0.3, reduction="sum"),
              tnn.SmoothL1Loss(beta=0.5)]
    for t in losses:
        m = from_torch(t)
        assert isinstance(m, rnn.Loss)
        for k, v in t.state_dict().items():
            np.testing.assert_array_equal(m.state_dict()[k], to_numpy(v))
        for attr in ("label_smoothing", "ignore_index", "delta", "beta", "reduction"):
            if hasattr(t, attr):
                assert getattr(m, attr) == getattr(t, attr)
