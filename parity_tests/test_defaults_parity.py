"""Constructor signatures of refbp's ops and lr schedulers against torch's.

Ops: one test over every declaration of ``refbp.registry`` compares the declared arguments
(names, order and defaults; the unit test ``tests/test_registry.py`` checks them against the
refbp class) with torch's class, and checks that the declared ``torch.nn.functional``
counterpart and ATen operators exist. lr schedulers: the defaults of every constructor
argument both sides have (optimizers: ``test_optim_parity``).

The parity harness builds each side from the scenario's specs with its own library's defaults,
so ``refbp run`` sees a wrong default only where a scenario leaves the argument out; these
tests see all of them.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from refbp.optim import lr_scheduler as rsched
from refbp.registry.opinfo import REQUIRED, TORCH_ONLY_EVERYWHERE, OpInfo, resolve
from refbp.registry.ops import OPS

pytestmark = pytest.mark.parity


def _same(a: object, b: object) -> bool:
    """Equal defaults; refbp names an activation function by a string (torch: F.relu)."""
    return a == b or (isinstance(a, str) and getattr(b, "__name__", None) == a)


def _torch_args(op: OpInfo) -> dict[str, Any] | None:
    """torch's constructor arguments and defaults, or None for ``(*args, **kwargs)``."""
    params = inspect.signature(op.torch_class()).parameters.values()
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not named and any(p.kind == p.VAR_POSITIONAL for p in params) and op.args:
        return None
    skip = {**TORCH_ONLY_EVERYWHERE, **op.torch_only}
    return {p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default
            for p in named if p.name not in skip}


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_declared_signature_is_torchs(op: OpInfo) -> None:
    if op.namesake:
        theirs = _torch_args(op)
        if theirs is None:
            assert op.signature_note, f"{op.name}: torch takes (*args, **kwargs); say why"
        else:
            assert list(theirs) == list(op.args), (
                f"{op.name}: torch {list(theirs)}, declared {list(op.args)}")
            diff = {k: (v, theirs[k]) for k, v in op.args.items()
                    if not (v is theirs[k] if v is REQUIRED else _same(v, theirs[k]))}
            assert not diff, f"{op.name}: declared vs torch defaults {diff}"
    else:  # a twin of refbp's own (SSELoss, RNNOutput, the attention probes)
        assert issubclass(op.torch_class(), torch.nn.Module)
    if op.functional is not None:
        assert callable(resolve(op.functional)), op.functional
    for name in op.aten:
        _, packet, overload = name.split(".")
        assert overload in getattr(torch.ops.aten, packet).overloads(), name


def test_a_wrong_default_is_caught() -> None:
    op = next(o for o in OPS if o.name == "ELU")
    wrong = OpInfo(**{**op.__dict__, "args": {"alpha": 0.5, "inplace": False}})
    with pytest.raises(AssertionError, match=r"alpha': \(0.5, 1.0\)"):
        test_declared_signature_is_torchs(wrong)


def _scheduler_pairs() -> list[tuple[str, type, type]]:
    out = []
    for name in sorted(dir(rsched)):
        a, b = getattr(rsched, name), getattr(torch.optim.lr_scheduler, name, None)
        if inspect.isclass(a) and inspect.isclass(b) and not name.startswith("_"):
            out.append((f"lr_scheduler.{name}", a, b))
    return out


PAIRS = _scheduler_pairs()


def test_pairs_cover_schedulers() -> None:
    names = {n for n, _, _ in PAIRS}
    assert {"lr_scheduler.StepLR", "lr_scheduler.OneCycleLR"} <= names


@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=[n for n, _, _ in PAIRS])
def test_constructor_defaults_match_torch(name: str, ours: type, theirs: type) -> None:
    a = inspect.signature(ours.__init__).parameters
    b = inspect.signature(theirs.__init__).parameters
    shared = [k for k in a if k in b and k not in ("self", "device", "dtype")]
    diff = {k: (a[k].default, b[k].default) for k in shared
            if not _same(a[k].default, b[k].default)}
    assert not diff, f"{name}: refbp vs torch defaults {diff}"
