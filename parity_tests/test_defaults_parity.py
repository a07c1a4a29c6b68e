"""Constructor defaults of refbp's layers, losses and lr schedulers against torch's.

The parity harness builds each side from the scenario's specs with its own library's defaults,
so ``refbp run`` sees a wrong default only where a scenario leaves the argument out; this test
compares the defaults of every constructor argument both sides have (optimizers:
``test_optim_parity``).
"""

from __future__ import annotations

import inspect

import pytest
import torch

import refbp.nn as rnn
from refbp.optim import lr_scheduler as rsched

pytestmark = pytest.mark.parity


def _pairs() -> list[tuple[str, type, type]]:
    out = []
    for ours, theirs, prefix in ((rnn, torch.nn, "nn"),
                                 (rsched, torch.optim.lr_scheduler, "lr_scheduler")):
        for name in sorted(dir(ours)):
            a, b = getattr(ours, name), getattr(theirs, name, None)
            if inspect.isclass(a) and inspect.isclass(b) and not name.startswith("_"):
                out.append((f"{prefix}.{name}", a, b))
    return out


PAIRS = _pairs()


def test_pairs_cover_layers_losses_and_schedulers() -> None:
    names = {n for n, _, _ in PAIRS}
    assert {"nn.Linear", "nn.ELU", "nn.CrossEntropyLoss", "nn.BatchNorm1d",
            "lr_scheduler.StepLR", "lr_scheduler.OneCycleLR"} <= names


def _same(a: object, b: object) -> bool:
    """Equal defaults; refbp names an activation function by a string (torch: F.relu)."""
    return a == b or (isinstance(a, str) and getattr(b, "__name__", None) == a)


@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=[n for n, _, _ in PAIRS])
def test_constructor_defaults_match_torch(name: str, ours: type, theirs: type) -> None:
    a = inspect.signature(ours.__init__).parameters
    b = inspect.signature(theirs.__init__).parameters
    shared = [k for k in a if k in b and k not in ("self", "device", "dtype")]
    diff = {k: (a[k].default, b[k].default) for k in shared
            if not _same(a[k].default, b[k].default)}
    assert not diff, f"{name}: refbp vs torch defaults {diff}"
