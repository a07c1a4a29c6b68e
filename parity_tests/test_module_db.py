"""torch's own module test inputs (``module_db``) run through refbp, in float64.

For every ``ModuleInfo`` of ``torch.testing._internal.common_modules.module_db`` whose module
class is declared in ``refbp.registry`` (and converted by ``from_torch``), and for each of its
float64 module inputs (in training mode, and in eval mode too where torch says the two
differ):

1. build the torch module from the case's constructor arguments, convert it with
   ``from_torch`` (a conversion refbp refuses is recorded as *not supported* and skipped);
2. run forward on both sides with the case's forward arguments (keyword arguments by name);
3. run backward with a seeded random gradient for every floating-point output (one argument
   per output; an output that is None on both sides, e.g. MultiheadAttention's weights with
   ``need_weights=False``, is skipped; a tuple of input gradients is compared input by
   input);
4. compare outputs, the input gradient, every parameter gradient and every float buffer with
   the harness tolerance of float64 (``refbp.tolerances``).

Losses: ``backward`` gives the gradient with respect to the input; every further argument
that requires grad in torch and gets a gradient (MSELoss's target, KLDivLoss's, a variance)
is compared with refbp's ``grad(name)`` as ``grad_<name>`` (``grad_target``).

The default run takes up to :data:`DEFAULT_PER_GROUP` cases of every module and mode (the
first, the last and evenly spaced between, by torch's index), so every module type runs; the
other cases are marked ``slow`` (``pytest -m slow``, which CI runs too).

The table of cases and their status is ``parity_tests/module_db_table.md``; regenerate it with
``python parity_tests/test_module_db.py`` after declaring an op (a test checks it is
current). Case ids: ``<Module>-<index>-<desc>-<train|eval>``, index = position in torch's list.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("expecttest")  # torch.testing._internal imports it

import torch_tables  # noqa: E402  (parity_tests/, on sys.path)
from torch.testing._internal.common_modules import ModuleInput, module_db  # noqa: E402

from refbp.metrics import Discrepancy, discrepancy  # noqa: E402
from refbp.mirror import from_torch  # noqa: E402
from refbp.mirror.dropout import DropoutMaskTap, step_generator  # noqa: E402
from refbp.nn import Loss, Module  # noqa: E402
from refbp.nn.dropout import feed_masks  # noqa: E402
from refbp.registry.ops import OPS  # noqa: E402
from refbp.report.schema import discrepancy_text, metric_fields  # noqa: E402
from refbp.tolerances import tolerance_for  # noqa: E402

pytestmark = pytest.mark.parity
TABLE = Path(__file__).with_name("module_db_table.md")
TOL = tolerance_for(np.float64)

# Cases that fail only by rounding, each with the derivation that shows it (empty: none so far).
ROUNDING: dict[str, str] = {}
# Real differences, not yet fixed in refbp (strict xfail: the test fails once they are fixed).
KNOWN_GAPS: dict[str, str] = {}


@dataclass(frozen=True)
class DbCase:
    """One module input of one ModuleInfo, in one mode."""

    module: str
    index: int
    desc: str
    training: bool

    @property
    def id(self) -> str:
        mode = "train" if self.training else "eval"
        return f"{self.module}-{self.index:03d}-{self.desc or 'default'}-{mode}"


_INFOS = {info.module_cls.__name__: info for info in module_db}
# The declared ops whose torch twin is their torch.nn namesake.
DECLARED = {o.name for o in OPS if o.namesake}


@functools.cache
def _inputs_of(module: str, training: bool) -> list[ModuleInput]:
    """torch's module inputs, generated once (cases clone the forward tensors they use)."""
    info = _INFOS[module]
    torch.manual_seed(0)
    return info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                   requires_grad=True, training=training)


def _module_inputs(case: DbCase) -> list[ModuleInput]:
    return _inputs_of(case.module, case.training)


def all_cases() -> list[DbCase]:
    """Every float64 case of every module_db module declared in ``refbp.registry``."""
    out: list[DbCase] = []
    for name, info in sorted(_INFOS.items()):
        if name not in DECLARED or torch.float64 not in info.dtypes:
            continue
        for training in (True, False) if info.train_and_eval_differ else (True,):
            probe = DbCase(name, 0, "", training)
            for i, mi in enumerate(_module_inputs(probe)):
                out.append(DbCase(name, i, mi.desc, training))
    return out


def build(case: DbCase) -> tuple[torch.nn.Module, ModuleInput]:
    """The torch module of a case (float64, in the case's mode) and its module input.

    The module's random initialisation is seeded from the case id, so a case gets the same
    weights whichever cases run before it (``-k`` selections, reruns, the table).
    """
    mi = _module_inputs(case)[case.index]
    c = mi.constructor_input
    torch.manual_seed(zlib.crc32(case.id.encode()))
    with warnings.catch_warnings():
        # TransformerEncoder's notice that its inference fast path cannot be used
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        module = _INFOS[case.module].module_cls(*c.args, **c.kwargs).to(torch.float64)
    return module.train(case.training), mi


def unsupported_reason(case: DbCase) -> str | None:
    """Why ``from_torch`` refuses the case's module, or None when it converts."""
    module, _ = build(case)
    try:
        from_torch(module)
    except (TypeError, ValueError, NotImplementedError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _leaf(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().clone().requires_grad_(v.requires_grad)
    if isinstance(v, list | tuple):  # a state pair such as LSTM's (h_0, c_0)
        return type(v)(_leaf(x) for x in v)
    return v


def _as_tuple(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, tuple | list) else (v,)


def run_case(case: DbCase) -> dict[str, Discrepancy]:
    """Forward and backward on both sides; the discrepancy of every compared tensor.

    Outputs and inputs may be nested (an LSTM's ``(output, (h_n, c_n))`` and ``(input,
    (h_0, c_0))``): every leaf is compared, ``output``, ``output1``, ... and ``grad_input``,
    ``grad_input1``, ... in depth-first order.
    """
    tmodule, mi = build(case)
    rmodule: Module = from_torch(tmodule)
    # torch's forward argument names (input, target) are passed by position to refbp
    bound = inspect.signature(tmodule.forward).bind(*mi.forward_input.args,
                                                    **mi.forward_input.kwargs)
    targs = [_leaf(a) for a in bound.args]
    tkwargs = {k: _leaf(v) for k, v in bound.kwargs.items()}  # by name: refbp uses torch's
    rargs = torch_tables.as_numpy(targs)
    rkwargs = {k: torch_tables.as_numpy(v) for k, v in tkwargs.items()}

    # dropout in training mode: torch draws the masks, refbp is fed the same ones
    with DropoutMaskTap(tmodule) as tap, step_generator(0), warnings.catch_warnings():
        # LinearCrossEntropyLoss's notice that its chunked path falls back to the reference
        warnings.filterwarnings("ignore", message="linear_cross_entropy: ``options`` ignored")
        touts = _as_tuple(tmodule(*targs, **tkwargs))
    with feed_masks(tap.take()):
        routs = _as_tuple(rmodule(*rargs, **rkwargs))
    float_grads, _ = torch_tables.torch_backward(touts)
    # several outputs: one upstream gradient per output (nested like it), as backward's
    # arguments
    rgrad_in = rmodule.backward(*float_grads)

    out = torch_tables.compare_outputs(routs, touts, TOL)
    # a module with several inputs (query, key, value; input, hx) returns a tuple of input
    # gradients, nested like the inputs
    rgrads = torch_tables.leaves(rgrad_in) if isinstance(rgrad_in, tuple) else [rgrad_in]
    out.update(torch_tables.compare_input_grads(targs, rgrads, TOL))
    out.update(torch_tables.compare_state(rmodule, tmodule, TOL))
    if isinstance(rmodule, Loss):
        out.pop("output1", None)
        out.update(_argument_grads(rmodule, targs, float_grads[0] if float_grads else None))
    return out


def _argument_grads(loss: Loss, targs: list[Any], g: Any) -> dict[str, Discrepancy]:
    """``grad_<name>`` of every argument after the first that torch gave a gradient, against
    refbp's ``loss.grad(name, g)`` (which must give one too)."""
    out: dict[str, Discrepancy] = {}
    for name, t in zip(loss.arguments[1:], targs[1:], strict=False):
        if isinstance(t, torch.Tensor) and t.grad is not None:
            mine = loss.grad(name, g)
            assert mine is not None, f"torch gives {name} a gradient, refbp gives none"
            out[f"grad_{name}"] = discrepancy(np.asarray(mine), torch_tables.as_numpy(t.grad), TOL)
    return out


CASES = all_cases()

DEFAULT_PER_GROUP = 4
"""Cases of each module and mode that the default run takes; the others are ``slow``."""


def default_ids(cases: list[DbCase], per_group: int = DEFAULT_PER_GROUP) -> frozenset[str]:
    """The ids of the default run: of each module and mode, ``per_group`` cases (all when it
    has fewer), the first, the last and evenly spaced between in torch's order."""
    groups: dict[tuple[str, bool], list[DbCase]] = {}
    for c in cases:
        groups.setdefault((c.module, c.training), []).append(c)
    keep: set[str] = set()
    for group in groups.values():
        n = len(group)
        picks = range(n) if n <= per_group else (
            round(i * (n - 1) / (per_group - 1)) for i in range(per_group))
        keep |= {group[i].id for i in picks}
    return frozenset(keep)


DEFAULT = default_ids(CASES)
PARAMS = [pytest.param(c, id=c.id, marks=() if c.id in DEFAULT else pytest.mark.slow)
          for c in CASES]


def nonfinite_reason(case: DbCase) -> str | None:
    """Why refbp rejects the case's forward inputs (non-finite targets), or None.

    torch's KLDivLoss cases take the log of standard normals, NaN for the negative half;
    refbp's losses refuse a non-finite target with a ValueError instead of returning NaN.
    """
    if not issubclass(_INFOS[case.module].module_cls, torch.nn.modules.loss._Loss):
        return None
    args = _module_inputs(case)[case.index].forward_input.args
    bad = [i for i, a in enumerate(args[1:2], 1)
           if isinstance(a, torch.Tensor) and a.is_floating_point()
           and not bool(torch.isfinite(a).all())]
    return "torch's target holds non-finite values (log of negative numbers)" if bad else None


@pytest.mark.parametrize("case", PARAMS)
def test_module_db_case(case: DbCase) -> None:
    reason = unsupported_reason(case)
    if reason is not None:
        pytest.skip(f"not supported: {reason}")
    if nonfinite_reason(case) is not None:  # refbp refuses it with a clear error
        with pytest.raises(ValueError, match="non-finite"):
            run_case(case)
        return
    if case.id in ROUNDING or case.id in KNOWN_GAPS:
        pytest.xfail(ROUNDING.get(case.id) or KNOWN_GAPS[case.id])
    diffs = run_case(case)
    assert "output" in diffs
    bad = [discrepancy_text({"tensor": name, **metric_fields(d), "normwise_tol": TOL.normwise,
                             "rtol": TOL.rtol, "atol": TOL.atol})
           for name, d in diffs.items() if not d.passed]
    assert not bad, f"{case.id}: refbp vs torch\n" + "\n".join(bad)


def test_a_planted_error_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative error of 1e-9 in Linear's output (1000x the tolerance) fails the case."""
    from refbp.nn import Linear

    forward = Linear.forward
    monkeypatch.setattr(Linear, "forward", lambda self, x: forward(self, x) * (1 + 1e-9))
    case = next(c for c in CASES if c.module == "Linear")
    diffs = run_case(case)
    assert not diffs["output"].passed and diffs["grad_input"].passed
    message = r"refbp vs torch\n\s*tensor output, index .* normwise"
    with pytest.raises(AssertionError, match=message):
        test_module_db_case(case)


# -- the table ------------------------------------------------------------------------------
def status(case: DbCase) -> str:
    """``pass``, ``not supported: <reason>`` or ``rounding: <reason>`` (static: no run)."""
    reason = unsupported_reason(case)
    return torch_tables.first_status(("not supported", reason),
                        ("rejected", None if reason else nonfinite_reason(case)),
                        ("rounding (xfail)", ROUNDING.get(case.id)),
                        ("known gap (xfail)", KNOWN_GAPS.get(case.id)))


def render_table(cases: list[DbCase]) -> str:
    """The markdown table: a per-module summary, then one row per case."""
    rows = [(c, status(c)) for c in cases]
    per: dict[str, Counter[str]] = {}
    for c, s in rows:
        per.setdefault(c.module, Counter())[s.split(":")[0]] += 1
    lines = [
        "# torch module_db cases run through refbp (float64)",
        "",
        "Generated by `python parity_tests/test_module_db.py`; checked by",
        "`parity_tests/test_module_db.py::test_table_is_current`. `pass` means the case's test",
        "`test_module_db_case[<id>]` compares outputs, the input gradient, parameter gradients and",
        "float buffers with the float64 tolerance and must pass; `not supported` cases are",
        "constructor options `from_torch` refuses (skipped); `rejected` cases feed a",
        "non-finite target, which refbp refuses with a ValueError (the test checks it does);",
        "`rounding` cases differ by rounding only (derivation in the test file) and `known gap`",
        "cases are real differences not fixed yet (both strict xfail).",
        "",
        "| module | cases | pass | not supported | rejected | rounding (xfail) | "
        "known gap (xfail) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total: Counter[str] = Counter()
    for module, cnt in sorted(per.items()):
        n = sum(cnt.values())
        total.update(cnt)
        lines.append(f"| {module} | {n} | {cnt['pass']} | {cnt['not supported']} | "
                     f"{cnt['rejected']} | {cnt['rounding (xfail)']} | "
                     f"{cnt['known gap (xfail)']} |")
    lines.append(f"| **total** | {sum(total.values())} | {total['pass']} | "
                 f"{total['not supported']} | {total['rejected']} | "
                 f"{total['rounding (xfail)']} | {total['known gap (xfail)']} |")
    lines += ["", "| test id | status |", "| --- | --- |"]
    lines += [f"| `{c.id}` | {s.replace('|', '/')} |" for c, s in rows]
    return "\n".join(lines) + "\n"


def test_table_is_current() -> None:
    torch_tables.assert_table_current(TABLE, lambda: render_table(CASES),
                                      "parity_tests/test_module_db.py")


def test_the_default_run_takes_every_module_and_mode() -> None:
    """Every module and mode runs by default; a group of 4 or fewer runs whole."""
    groups = Counter((c.module, c.training) for c in CASES)
    taken = Counter((c.module, c.training) for c in CASES if c.id in DEFAULT)
    assert set(taken) == set(groups)
    assert all(taken[g] == min(n, DEFAULT_PER_GROUP) for g, n in groups.items())
    assert default_ids([DbCase("M", i, "", True) for i in range(10)]) == {
        "M-000-default-train", "M-003-default-train", "M-006-default-train",
        "M-009-default-train"}


def test_covers_every_declared_op_that_module_db_has() -> None:
    covered = {c.module for c in CASES}
    assert covered == DECLARED & set(_INFOS)
    assert {"Linear", "PReLU", "Hardtanh", "CrossEntropyLoss", "LSTM",
            "TransformerEncoder"} <= covered


if __name__ == "__main__":
    torch_tables.write_table(TABLE, render_table(CASES), len(CASES))
