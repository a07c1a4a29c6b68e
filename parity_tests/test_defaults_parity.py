"""Constructor signatures of refbp's ops and lr schedulers against torch's.

Ops: one test over every declaration of ``refbp.registry`` compares the declared arguments
(names, order and defaults; the unit test ``tests/test_registry.py`` checks them against the
refbp class) with torch's class, and checks that the declared ``torch.nn.functional``
counterpart and ATen operators exist. lr schedulers: the declared arguments (names, order,
defaults) against torch's class, likewise (optimizers: ``test_optim_parity``).

The parity harness builds each side from the scenario's specs with its own library's defaults,
so ``refbp run`` sees a wrong default only where a scenario leaves the argument out; these
tests see all of them.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from refbp.registry.opinfo import REQUIRED, TORCH_ONLY_EVERYWHERE, OpInfo, resolve
from refbp.registry.ops import OPS
from refbp.registry.schedulers import SCHEDULERS, SchedulerInfo, scheduler
from refbp.registry.schedulers import args as sched_args

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


@pytest.mark.parametrize("info", SCHEDULERS, ids=[s.name for s in SCHEDULERS])
def test_declared_scheduler_signature_is_torchs(info: SchedulerInfo) -> None:
    """torch's constructor after ``optimizer``: the declared names, order and defaults (the
    unit test ``tests/test_registry_optim.py`` checks the refbp class against the same)."""
    params = list(inspect.signature(getattr(getattr(torch.optim, info.module), info.name))
                  .parameters.values())
    assert (params[0].name == "optimizer") == info.optimizer_first
    theirs = [(p.name, REQUIRED if p.default is p.empty else p.default,
               p.kind is p.KEYWORD_ONLY) for p in params[info.optimizer_first:]]
    ours = [(h.name, h.default, h.keyword_only) for h in info.hyperparameters]
    assert [n for n, _, _ in theirs] == [n for n, _, _ in ours], info.name
    diff = {a[0]: (a[1], b[1]) for a, b in zip(ours, theirs, strict=True)
            if a[2] != b[2] or not (a[1] is b[1] if a[1] is REQUIRED else _same(a[1], b[1]))}
    assert not diff, f"{info.name}: declared vs torch defaults {diff}"


def test_a_wrong_scheduler_default_is_caught() -> None:
    info = scheduler("StepLR")
    wrong = info._replace(hyperparameters=sched_args("step_size", gamma=0.5, last_epoch=-1))
    with pytest.raises(AssertionError, match=r"gamma': \(0.5, 0.1\)"):
        test_declared_scheduler_signature_is_torchs(wrong)
