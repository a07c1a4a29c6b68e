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
