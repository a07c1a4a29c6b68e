"""``refbp.layer_sizes`` counts what torch allocates: every module of torch's own
``module_db`` that refbp has, built from each of its constructor inputs, holds exactly the
parameter and buffer elements refbp counts from the same arguments without building."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import pytest
import torch

from refbp import nn as rnn
from refbp.layer_sizes import COUNTED_TYPES, layer_elements

pytest.importorskip("expecttest")  # torch.testing._internal imports it

from torch.testing._internal.common_modules import module_db  # noqa: E402

pytestmark = pytest.mark.parity


def _cases() -> list[tuple[str, dict[str, Any], int]]:
    out = []
    for info in module_db:
        name = info.module_cls.__name__
        cls = getattr(rnn, name, None)
        if not inspect.isclass(cls) or issubclass(cls, rnn.Loss):
            continue  # a loss's weights are data of the file, not sizes
        if issubclass(info.module_cls, torch.nn.modules.lazy.LazyModuleMixin):
            continue  # holds nothing until its first forward sizes it (then its eager class)
        inputs = info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                         requires_grad=False, training=True)
        for k, case in enumerate(inputs):
            ctor = case.constructor_input
            kwargs = {a: v for a, v in ctor.kwargs.items() if a not in ("device", "dtype")}
            args = inspect.signature(cls).bind(*ctor.args, **kwargs).arguments  # torch's names
            if any(isinstance(v, torch.nn.Module) for v in args.values()):
                continue  # built from another module (TransformerEncoder): not a spec
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = info.module_cls(*ctor.args, **ctor.kwargs)
            held = sum(t.numel() for t in module.state_dict().values())
            out.append((f"{name}-{k}", args, held))
    return out


CASES = _cases()


@pytest.mark.parametrize("layer_type,args,held", CASES, ids=[c[0] for c in CASES])
def test_counted_elements_match_torch(layer_type: str, args: dict[str, Any],
                                      held: int) -> None:
    kind = layer_type.rsplit("-", 1)[0]
    assert layer_elements(kind, args) == held


def test_every_counted_type_and_every_holding_module_is_covered() -> None:
    kinds = {c[0].rsplit("-", 1)[0] for c in CASES}
    holding = {c[0].rsplit("-", 1)[0] for c in CASES if c[2] > 0}
    assert holding <= COUNTED_TYPES
    assert len(kinds & COUNTED_TYPES) >= 15


def _output_cases() -> list[tuple[str, dict[str, Any], tuple[int, ...], tuple[int, ...]]]:
    """Every module_db case refbp has whose forward takes a tensor first: the constructor
    arguments, the input shape and the shape of torch's output (its first, for a tuple)."""
    from refbp.activation_sizes import SHAPED_TYPES

    out = []
    for info in module_db:
        name = info.module_cls.__name__
        if name not in SHAPED_TYPES:
            continue
        inputs = info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                         requires_grad=False, training=True)
        cls = getattr(rnn, name)
        for k, case in enumerate(inputs):
            ctor, fwd = case.constructor_input, case.forward_input
            if fwd is None or not fwd.args or not isinstance(fwd.args[0], torch.Tensor):
                continue
            kwargs = {a: v for a, v in ctor.kwargs.items() if a not in ("device", "dtype")}
            args = inspect.signature(cls).bind(*ctor.args, **kwargs).arguments
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                module = info.module_cls(*ctor.args, **ctor.kwargs).to(torch.float64)
                result = module(*fwd.args, **fwd.kwargs)
            first = result[0] if isinstance(result, tuple) else result
            out.append((f"{name}-{k}", dict(args), tuple(fwd.args[0].shape),
                        tuple(first.shape)))
    return out


OUTPUT_CASES = _output_cases()


@pytest.mark.parametrize("layer_type,args,shape,expected", OUTPUT_CASES,
                         ids=[c[0] for c in OUTPUT_CASES])
def test_output_shapes_match_torch(layer_type: str, args: dict[str, Any],
                                   shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """``refbp.activation_sizes`` predicts the shape torch computes, unbuilt."""
    from refbp.activation_sizes import layer_output

    assert layer_output(layer_type.rsplit("-", 1)[0], args, shape)[0] == expected


def test_assert_parity_refuses_wide_activations_before_running() -> None:
    import numpy as np

    from refbp.errors import LimitError
    from refbp.testing import assert_parity

    torch.manual_seed(0)
    wide = torch.nn.Sequential(torch.nn.Linear(4, 1_000_000), torch.nn.ReLU(),
                               torch.nn.Linear(1_000_000, 1))
    x, y = np.zeros((64, 4)), np.zeros((64, 1))
    total = 2 * (64 * 4 + 2 * 64 * 10**6 + 64)
    with pytest.raises(LimitError, match=rf"^assert_parity: activation elements of a forward "
                                         rf"and backward pass on a batch of shape \(64, 4\) = "
                                         rf"{total:,} exceed the limit of 50,000,000"):
        assert_parity(wide, x, y, loss="MSELoss")
