"""torch's older ``common_nn`` test tables run through refbp, in float64 and float32.

``torch.testing._internal.common_nn`` holds three tables of test entries (dicts):
``module_tests``, ``get_new_module_tests()`` and ``criterion_tests``. torch's own
``test/test_nn.py`` (not installed with torch) turns each into a ``NewModuleTest`` or a
``CriterionTest`` and adds variants; this file rebuilds them the same way
(:func:`expand_entry`):

- an entry without ``constructor`` is ``getattr(torch.nn, module_name)``;
- ``check_eval``: a second test named ``<name>_eval`` whose constructor sets
  ``module.training = False`` (on the top module only, as torch's does);
- ``check_with_long_tensor`` (present, whatever its value): a test named
  ``<name>_with_long_tensor`` whose floating parameters, buffers and input are replaced by
  float64 tensors of integers in [-1000, 1000) (``torch.randint(...).double()``);
- ``check_sum_reduction`` (criteria): a test named ``<name>_sum_reduction`` whose constructor
  is called with ``reduction='sum'``.

Then, for every entry and both dtypes (case id ``<test name>-<dtype>``, the test name being
torch's ``test_nn`` name without ``test_``):

1. build the module, its input (and, for a criterion, its target and extra arguments) with the
   entry's constructor arguments and ``input_size``/``input_fn``/``target_fn``, under the
   entry's ``default_dtype``, with torch's generator seeded from the test name; then cast the
   module and every floating tensor to the case's dtype (floating inputs require grad, as
   ``InputVariableMixin`` makes them; targets do not);
2. convert with ``from_torch(module, example_inputs=...)``: a tree of known layers becomes
   the same tree of refbp layers, anything else (``wrap_functional``'s ``FunctionalModule``,
   whose forward calls ``torch.nn.functional``) is captured with ``torch.export`` as a graph.
   A module refbp cannot convert is counted as *not supported* with the reason (the test is
   skipped with it, never silently);
3. run forward on both sides (dropout and RReLU noise drawn by torch and fed to refbp) and
   backward with a seeded standard-normal upstream gradient for every floating output;
4. compare outputs, the gradient of every input that requires grad, every parameter gradient
   and every floating buffer with ``refbp.tolerances``' tolerance of the dtype.

Cost: the float64 half runs by default; the float32 half is marked ``slow``
(``pytest -m slow parity_tests/test_common_nn.py``) because the two halves together take
longer than the default run can afford (graph captures with ``torch.export`` dominate).

The table of cases and their status is ``parity_tests/common_nn_table.md``; regenerate it
with ``python parity_tests/test_common_nn.py`` (a test checks it is current).
"""

from __future__ import annotations

import copy
import functools
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("expecttest")  # torch.testing._internal imports it

import torch_tables  # noqa: E402  (parity_tests/, on sys.path)
from torch.testing._internal import common_nn  # noqa: E402
from torch.testing._internal.common_utils import set_default_dtype  # noqa: E402

from refbp.errors import UnsupportedOpError  # noqa: E402
from refbp.metrics import Discrepancy  # noqa: E402
from refbp.mirror import from_torch  # noqa: E402
from refbp.mirror.dropout import DropoutMaskTap, step_generator  # noqa: E402
from refbp.nn import Loss, Module  # noqa: E402
from refbp.nn.dropout import feed_masks  # noqa: E402
from refbp.nn.graph_model import GraphModel  # noqa: E402
from refbp.report.schema import discrepancy_text, metric_fields  # noqa: E402
from refbp.tolerances import Tolerance, effective_tolerance, tolerance_for  # noqa: E402

pytestmark = pytest.mark.parity
TABLE = Path(__file__).with_name("common_nn_table.md")
DTYPES = {"float64": torch.float64, "float32": torch.float32}

# Cases that differ by rounding only: the derivation that shows it, and the tolerance
# override the case is checked with instead (a bound derived from it, not a strict xfail: on
# another CPU the residue may be smaller or zero).
ROUNDING: dict[str, tuple[str, dict[str, float]]] = {
    "Conv2d_with_long_tensor-float32": (
        "float32 sums of integers up to 1000 times normal upstream gradients cancel: "
        "grad_weight[0, 1, 1, 1] is a sum of n = 40 products with sum |terms| = 1.5e4 and "
        "value -1.58905 (float64), so each side's float32 sum carries up to "
        "(n - 1) u sum |terms| = 39 * 6e-8 * 1.5e4 = 3.5e-2 (measured: torch -1.58925, refbp "
        "-1.58960); normwise stays at 1.0e-7 (tolerance 1e-5): atol 5e-2",
        {"atol": 5e-2}),
}
# Real differences, not yet fixed in refbp (strict xfail: the test fails once they are fixed).
KNOWN_GAPS: dict[str, str] = {}
# Inputs refbp refuses on purpose with a clear error (ValueError or TypeError) where torch
# computes something: the test checks that it does (empty: none so far).
REJECTED: dict[str, str] = {}


# -- the entries, as test_nn.py builds them --------------------------------------------------
@dataclass(frozen=True)
class NnEntry:
    """One test of torch's test_nn built from a common_nn table entry."""

    table: str  # "module_tests", "new_module_tests" or "criterion_tests"
    index: int  # position in the table
    variant: str  # "", "eval", "with_long_tensor" or "sum_reduction"
    name: str  # test_nn's test name without "test_"

    @property
    def criterion(self) -> bool:
        return self.table == "criterion_tests"


@functools.cache
def _tables() -> dict[str, list[dict[str, Any]]]:
    """The three tables; ``get_new_module_tests()`` draws the fixed tensors its entries close
    over (the targets of the functional losses), so it runs once under a fixed seed."""
    with step_generator(0):
        new = common_nn.get_new_module_tests()
    return {"module_tests": common_nn.module_tests, "new_module_tests": new,
            "criterion_tests": common_nn.criterion_tests}


def _eval_constructor(constructor: Callable[..., Any]) -> Callable[..., Any]:
    def eval_constructor(*args: Any, **kwargs: Any) -> Any:
        module = constructor(*args, **kwargs)
        module.training = False
        return module
    eval_constructor.__name__ = constructor.__name__
    return eval_constructor


def _long_like(size: Any) -> torch.Tensor:
    return torch.randint(-1000, 1000, size=size).double()


def _long_constructor(constructor: Callable[..., Any]) -> Callable[..., Any]:
    def to_long(t: torch.Tensor) -> torch.Tensor:
        if not t.is_floating_point():
            return t
        if isinstance(t, torch.nn.Parameter):
            return torch.nn.Parameter(_long_like(t.size()))
        return _long_like(t.size())

    def long_tensor_constructor(*args: Any, **kwargs: Any) -> Any:
        module = constructor(*args, **kwargs)
        module._apply(to_long)
        return module
    long_tensor_constructor.__name__ = constructor.__name__
    return long_tensor_constructor


def _sum_constructor(constructor: Callable[..., Any]) -> Callable[..., Any]:
    def sum_reduction_constructor(*args: Any, **kwargs: Any) -> Any:
        return constructor(*args, reduction="sum", **kwargs)
    sum_reduction_constructor.__name__ = constructor.__name__
    return sum_reduction_constructor


def _suffixed(params: dict[str, Any], suffix: str) -> None:
    """test_nn's naming of a variant: ``fullname + _suffix`` or ``desc + _suffix``."""
    if suffix == "with_long_tensor" and params.get("fullname"):
        params["fullname"] = f"{params['fullname']}_{suffix}"
        return
    desc = params.get("desc")
    params["desc"] = suffix if desc is None else f"{desc}_{suffix}"


def expand_entry(table: str, index: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tests test_nn.py builds from one entry: ``(variant, test parameters)``, each
    parameter dict ready for ``NewModuleTest(**params)`` / ``CriterionTest(**params)``.

    As in test_nn.py, the variants mutate one copy of the entry in turn (the long-tensor
    variant of an entry with ``check_eval`` is built from the eval variant's parameters)."""
    params = dict(_tables()[table][index])
    if "constructor" not in params:
        params["constructor"] = getattr(torch.nn, params.pop("module_name"))
    params.pop("decorator", None)
    yield "", dict(params)
    if table == "criterion_tests":
        if "check_sum_reduction" in params:
            _suffixed(params, "sum_reduction")
            params["constructor"] = _sum_constructor(params["constructor"])
            yield "sum_reduction", dict(params)
        return
    if "check_eval" in params:
        _suffixed(params, "eval")
        params["constructor"] = _eval_constructor(params["constructor"])
        yield "eval", dict(params)
    if "check_with_long_tensor" in params:
        _suffixed(params, "with_long_tensor")
        size = params["input_size"]
        params["constructor"] = _long_constructor(params["constructor"])
        params["input_fn"] = lambda: _long_like(size)
        params["check_forward_only"] = True
        yield "with_long_tensor", dict(params)


def _test_object(entry: NnEntry) -> Any:
    params = dict(expand_entry(entry.table, entry.index))[entry.variant]
    cls = common_nn.CriterionTest if entry.criterion else common_nn.NewModuleTest
    return cls(**params)


def all_entries() -> list[NnEntry]:
    """Every test test_nn.py builds from the three tables, in table order."""
    out: list[NnEntry] = []
    for table, rows in _tables().items():
        for index in range(len(rows)):
            for variant, params in expand_entry(table, index):
                cls = common_nn.CriterionTest if table == "criterion_tests" \
                    else common_nn.NewModuleTest
                name = cls(**params).get_name().removeprefix("test_")
                out.append(NnEntry(table, index, variant, name))
    return out


# -- one case: build, convert, run ----------------------------------------------------------
@dataclass(frozen=True)
class NnCase:
    entry: NnEntry
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.entry.name}-{self.dtype}"


def _cast(v: Any, dtype: torch.dtype) -> Any:
    """Floating tensors cast to ``dtype`` as new leaves (keeping ``requires_grad``)."""
    if isinstance(v, torch.Tensor):
        if not v.is_floating_point():
            return v.detach().clone()
        return v.detach().to(dtype).clone().requires_grad_(v.requires_grad)
    if isinstance(v, list | tuple):
        return type(v)(_cast(x, dtype) for x in v)
    return v


@dataclass
class Built:
    """A case's torch module and the arguments of its forward call, in the case's dtype."""

    module: torch.nn.Module
    args: tuple[Any, ...]  # the forward arguments (inputs, then target and extra args)
    n_inputs: int  # how many of ``args`` are the test's inputs


def build(case: NnCase) -> Built:
    """The torch module of a case and its forward arguments, as test_nn builds them (seeded
    from the test name, so a case is the same whichever cases run before it), cast to the
    case's dtype."""
    test = _test_object(case.entry)
    dtype = DTYPES[case.dtype]
    with step_generator(zlib.crc32(case.entry.name.encode())), \
            set_default_dtype(test.default_dtype), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of legacy arguments
        module = test.constructor(*test.constructor_args)
        inputs = test._get_input()
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        rest: tuple[Any, ...] = ()
        if case.entry.criterion:
            rest = (test._get_target(), *test.extra_args)
    module = module.to(dtype)
    return Built(module, _cast(inputs, dtype) + _cast(rest, dtype), len(inputs))


def short_reason(exc: Exception) -> str:
    """The reason of a refusal in one line that reads the same on every machine: the ATen
    operators refbp lacks (without the graph nodes, source paths and the list of supported
    operators), or the first line of the message without the list of supported types."""
    text = str(exc)
    if isinstance(exc, UnsupportedOpError):
        missing = text.split(" is not supported")[0]
        names = sorted(set(re.findall(r"ATen operator (\S+)", missing)
                           + re.findall(r"\); (aten\.\S+) \(graph node", missing)))
        return f"UnsupportedOpError: no refbp op for {', '.join(names)}"
    text = re.sub(r"; supported types: .*?\(register your own[^)]*\)", "", text)
    text = re.sub(r"\S*site-packages/", "", text)
    return f"{type(exc).__name__}: {text}".splitlines()[0]


def _complex(args: tuple[Any, ...]) -> bool:
    return any(isinstance(a, torch.Tensor) and a.is_complex() for a in torch_tables.leaves(args))


@functools.cache
def _conversion(case: NnCase) -> tuple[Module | None, str | None]:
    """``(refbp module, None)`` or ``(None, why refbp cannot run it)`` (converted once per
    case: a graph capture takes a while)."""
    b = build(case)
    if _complex(b.args):
        return None, "complex input: refbp computes in float32 and float64 only"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_torch(b.module, example_inputs=b.args), None
    except Exception as exc:  # noqa: BLE001 - every refusal is recorded with its reason
        return None, short_reason(exc)


def unsupported_reason(case: NnCase) -> str | None:
    """Why ``from_torch`` refuses the case's module, or None when it converts."""
    return _conversion(case)[1]


def path(case: NnCase) -> str:
    """How refbp runs the case: ``tree`` (refbp layers) or ``graph`` (torch.export)."""
    rmodule = _conversion(case)[0]
    return "graph" if isinstance(rmodule, GraphModel) else "tree"


def _refbp_input_grads(rmodule: Module, built: Built, grads: list[Any]) -> list[Any]:
    """refbp's gradients of the inputs, one per forward argument (None where not given)."""
    if isinstance(rmodule, Loss):
        (g,) = grads
        names = rmodule.arguments
        return [rmodule.grad(names[k], g) if isinstance(a, torch.Tensor) and a.requires_grad
                else None for k, a in enumerate(built.args[:len(names)])]
    out = rmodule.backward(*grads)
    return list(out) if isinstance(out, tuple) else [out]


def case_tolerance(case: NnCase) -> Tolerance:
    """The dtype's tolerance, with the case's ``ROUNDING`` override if it has one."""
    return effective_tolerance(case.dtype, ROUNDING[case.id][1] if case.id in ROUNDING
                               else None)


def run_case(case: NnCase, tol: Tolerance | None = None) -> dict[str, Discrepancy]:
    """Forward and backward on both sides; the discrepancy of every compared tensor."""
    built = build(case)
    rmodule = copy.deepcopy(_conversion(case)[0])
    assert rmodule is not None, unsupported_reason(case)
    tol = tol or tolerance_for(case.dtype)
    targs = built.args
    rargs = torch_tables.as_numpy(targs)
    with DropoutMaskTap(built.module) as tap, step_generator(0), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        touts = built.module(*targs)
    touts = touts if isinstance(touts, tuple) else (touts,)
    with feed_masks(tap.take()):
        routs = rmodule(*rargs)
    routs = routs if isinstance(routs, tuple) else (routs,)
    float_grads, ran_backward = torch_tables.torch_backward(touts)

    out = torch_tables.compare_outputs(routs, touts, tol)
    if ran_backward:
        rgrads = _refbp_input_grads(rmodule, built, float_grads)
        out.update(torch_tables.compare_input_grads(targs, torch_tables.leaves(rgrads), tol))
    out.update(torch_tables.compare_state(rmodule, built.module, tol))
    return out

ENTRIES = all_entries()
CASES = [NnCase(e, d) for e in ENTRIES for d in DTYPES]


def _failures(diffs: dict[str, Discrepancy], tol: Tolerance) -> list[str]:
    return [discrepancy_text({"tensor": name, **metric_fields(d), "normwise_tol": tol.normwise,
                              "rtol": tol.rtol, "atol": tol.atol})
            for name, d in diffs.items() if not d.passed]


def _params(dtype: str) -> list[Any]:
    marks = [pytest.mark.slow] if dtype == "float32" else []
    return [pytest.param(c, id=c.id, marks=marks) for c in CASES if c.dtype == dtype]


@pytest.mark.parametrize("case", _params("float64") + _params("float32"))
def test_common_nn_case(case: NnCase) -> None:
    reason = unsupported_reason(case)
    if reason is not None:
        pytest.skip(f"not supported: {reason}")
    if case.id in REJECTED:
        with pytest.raises((ValueError, TypeError)):
            run_case(case)
        return
    if case.id in KNOWN_GAPS:
        pytest.xfail(KNOWN_GAPS[case.id])
    tol = case_tolerance(case)
    diffs = run_case(case, tol)
    assert "output" in diffs
    bad = _failures(diffs, tol)
    assert not bad, f"{case.id}: refbp vs torch\n" + "\n".join(bad)


# -- the table ------------------------------------------------------------------------------
def status(case: NnCase) -> str:
    """``pass``, ``not supported: <reason>``, ``rejected``, ``rounding`` or ``known gap``
    (static: no run)."""
    return torch_tables.first_status(("not supported", unsupported_reason(case)),
                        ("rejected", REJECTED.get(case.id)),
                        ("rounding", ROUNDING[case.id][0] if case.id in ROUNDING else None),
                        ("known gap (xfail)", KNOWN_GAPS.get(case.id)))


def _module_name(entry: NnEntry) -> str:
    """The torch.nn class of the entry, or ``F.<function>`` of a ``wrap_functional`` one."""
    params = dict(expand_entry(entry.table, entry.index))[entry.variant]
    if "fullname" not in params:
        return str(params["constructor"].__name__)
    words = params["fullname"].split("_")
    if words[0][0].isupper():
        return words[0]
    functions = ["_".join(words[:k]) for k in range(len(words), 0, -1)]
    known = [f"F.{f}" for f in functions if hasattr(torch.nn.functional, f)]
    classes = {n.lower(): n for n in dir(torch.nn)}
    return known[0] if known else classes.get(words[0], words[0])


COLUMNS = ("pass", "not supported", "rejected", "rounding", "known gap (xfail)")


def render_table(cases: list[NnCase]) -> str:
    """The markdown table: a per-module summary per dtype, then one row per case."""
    rows = [(c, status(c)) for c in cases]
    lines = [
        "# torch common_nn tests run through refbp (float64 and float32)",
        "",
        "Generated by `python parity_tests/test_common_nn.py`; checked by",
        "`parity_tests/test_common_nn.py::test_table_is_current`. The tests are those torch's",
        "`test_nn.py` builds from `common_nn`'s `module_tests`, `get_new_module_tests()` and",
        "`criterion_tests` (with their `eval`, `with_long_tensor` and `sum_reduction`",
        "variants). `pass` means `test_common_nn_case[<id>]` compares outputs, input gradients,",
        "parameter gradients and float buffers with the dtype's tolerance and must pass;",
        "`not supported` cases are modules refbp cannot run (skipped, with the reason);",
        "`rejected` cases are inputs refbp refuses on purpose with a clear error (checked);",
        "`rounding` cases differ by rounding only and are checked with the looser bound derived",
        "in their reason; `known gap` cases are real differences not fixed yet (strict xfail).",
        "`graph` counts the passing cases refbp runs as a `torch.export` graph",
        "(`wrap_functional` modules, whose forward calls `torch.nn.functional`).",
        "",
    ]
    for dtype in DTYPES:
        per: dict[str, Counter[str]] = {}
        for c, s in rows:
            if c.dtype == dtype:
                cnt = per.setdefault(_module_name(c.entry), Counter())
                cnt[s.split(":")[0]] += 1
                cnt["graph"] += s == "pass" and path(c) == "graph"
        lines += [f"## {dtype}", "",
                  "| module | cases | " + " | ".join(COLUMNS) + " | graph |",
                  "| --- | ---: | " + "---: | " * len(COLUMNS) + "---: |"]
        total: Counter[str] = Counter()
        for module, cnt in sorted(per.items()):
            total.update(cnt)
            lines.append(f"| {module} | {sum(cnt[k] for k in COLUMNS)} | "
                         + " | ".join(str(cnt[k]) for k in COLUMNS) + f" | {cnt['graph']} |")
        lines.append(f"| **total** | {sum(total[k] for k in COLUMNS)} | "
                     + " | ".join(str(total[k]) for k in COLUMNS) + f" | {total['graph']} |")
        lines.append("")
    lines += ["## Cases", "", "| test id | status |", "| --- | --- |"]
    lines += [f"| `{c.id}` | {s.replace('|', '/')} |" for c, s in rows]
    return "\n".join(lines) + "\n"


def test_every_entry_is_a_case() -> None:
    """Every entry of the three tables gives a test (its variants too), under a unique name
    (test_nn.py refuses two tests of one name), in both dtypes."""
    tables = _tables()
    assert {(e.table, e.index) for e in ENTRIES} == {
        (t, i) for t, rows in tables.items() for i in range(len(rows))}
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
    assert len(CASES) == len(ENTRIES) * len(DTYPES)
    variants = Counter(e.variant for e in ENTRIES)
    rows = [r for t in tables.values() for r in t]
    assert variants["eval"] == sum("check_eval" in r for r in rows)
    assert variants["with_long_tensor"] == sum("check_with_long_tensor" in r for r in rows)


def test_a_planted_error_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative error of 1e-9 in Linear's weight gradient (1000x the tolerance) fails."""
    from refbp.nn import Linear

    backward = Linear.backward

    def planted(self: Linear, g: Any) -> Any:
        out = backward(self, g)
        self.weight.grad *= 1 + 1e-9
        return out

    monkeypatch.setattr(Linear, "backward", planted)
    case = next(c for c in CASES if c.id == "Linear-float64")
    diffs = run_case(case)
    assert diffs["output"].passed and not diffs["grad:weight"].passed
    with pytest.raises(AssertionError, match=r"refbp vs torch\n\s*tensor grad:weight"):
        test_common_nn_case(case)


def test_table_is_current() -> None:
    torch_tables.assert_table_current(TABLE, lambda: render_table(CASES),
                                      "parity_tests/test_common_nn.py")


if __name__ == "__main__":
    torch_tables.write_table(TABLE, render_table(CASES), len(CASES))
