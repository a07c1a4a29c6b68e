"""The optimizer and lr scheduler declarations against everything built from them (no torch).

A declared optimizer or scheduler that is missing from its class, the converter, the
option-set table, the quick suite, the docs or the explain catalog fails here; so does a
class whose signature drifts from its declaration (torch's side: parity_tests).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refbp import optim
from refbp.optim import lr_scheduler
from refbp.registry.optimizers import (
    OPTIMIZERS,
    REQUIRED,
    SPELLINGS,
    SWITCH_DEFAULTS,
    SWITCHES,
    Hyper,
    OptimInfo,
    _checked,
    docs_table,
    optimizer,
)
from refbp.registry.schedulers import (
    SCHEDULER_MODULES,
    SCHEDULERS,
    SchedulerCheck,
    SchedulerInfo,
    Sub,
)
from refbp.registry.schedulers import _checked as _checked_scheduler
from refbp.registry.schedulers import args as sched_args

ROOT = Path(__file__).resolve().parents[1]
IDS = [o.name for o in OPTIMIZERS]


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_class_signature_is_the_declaration(info: OptimInfo) -> None:
    """Names, order, defaults and keyword-only flags of ``refbp.optim.<name>`` after params."""
    cls = info.numpy_class()
    assert cls is getattr(optim, info.name) and cls.__module__ == info.module
    params = list(inspect.signature(cls).parameters.values())[1:]
    got = [(p.name, p.default, p.kind is p.KEYWORD_ONLY) for p in params]
    want = [(h.name, h.default, h.keyword_only) for h in info.hyperparameters]
    assert got == want


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_instance_defaults_and_state_keys_are_the_declaration(info: OptimInfo) -> None:
    from refbp.nn.module import Parameter
    from refbp.parity.optim_cases import cases_for

    opt = info.numpy_class()([Parameter(np.zeros((3, 3)))])
    want = {**info.defaults, **info.fixed}
    if info.name == "LBFGS":  # as torch, the constructor resolves max_eval=None
        want["max_eval"] = want["max_iter"] * 5 // 4
    assert opt.defaults == {**want, **{k: SWITCH_DEFAULTS[k] for k in info.torch_only}}
    assert set(opt.hyperparameters()) == set(want)
    assert opt.state_keys == info.state_keys
    assert [c.name for c in cases_for(info.name)] == [s.name for s in info.option_sets]
    assert set(info.torch_only) <= set(SWITCHES) and not set(info.defaults) & set(SWITCHES)


def test_every_declared_optimizer_is_exported_and_in_the_docs_table() -> None:
    """``refbp.optim`` exports each declared optimizer's class from its declared module, its
    docstring ends with the declared table, and the type stub that type checkers read lists
    the same names from the same modules."""
    from refbp.registry import docs
    from refbp.registry.optimizers import optim_exports

    assert optim.__doc__ is not None and optim.__doc__.endswith(f"\n{docs_table()}\n")
    assert optim.__all__ == list(optim_exports())
    for o in OPTIMIZERS:
        assert getattr(optim, o.name) is o.numpy_class() and o.numpy_class().__module__ == o.module
    assert docs.OPTIM_STUB.read_text(encoding="utf-8") == docs.optim_stub(), (
        "refbp/optim/__init__.pyi is out of date: python -m refbp.registry.docs")
    assert "from refbp.optim.adam import AdamW as AdamW\n" in docs.optim_stub()
    exported = {n for n in optim.__all__ if inspect.isclass(getattr(optim, n))
                and issubclass(getattr(optim, n), optim.Optimizer)} - {"Optimizer"}
    assert exported == {o.name for o in OPTIMIZERS}


def test_every_declared_optimizer_has_its_algorithm_box_and_a_hand_computed_trajectory() -> None:
    from tests.test_optim import HAND

    assert {cls.__name__ for cls, _, _ in HAND} == {o.name for o in OPTIMIZERS}
    for o in OPTIMIZERS:
        assert "Algorithm (torch's box)" in (o.numpy_class().__doc__ or ""), o.name


@pytest.fixture(scope="module")
def suites() -> dict[str, set[str]]:
    from refbp.parity.suites import get_suite

    return {name: {sc.name for sc in get_suite(name)} for name in ("quick", "full")}


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_every_declared_optimizer_is_in_the_suites(info: OptimInfo,
                                                   suites: dict[str, set[str]]) -> None:
    from refbp.parity.suites.common import optimizer_training

    quick, full = suites["quick"], suites["full"]
    low = info.name.lower()
    prefix = optimizer_training(info.name)[0]
    want = {f"defaults-{low}-f64", *(f"{prefix}-{r.id}-{d}" for r in info.quick
                                      for d in ("f64", "f32"))}
    if info.has("maximize") and not info.hyper("maximize").torch_since:  # not LBFGS's (2.14)
        want.add(f"maximize-{low}-f64")
    assert want <= quick, sorted(want - quick)
    if info.sparse_grads:  # its option sets run in parity_tests/test_sparse_adam_parity.py
        assert not any(f"-{info.name}-" in name for name in full)
        return
    sets = [s.name for s in info.option_sets if not s.options.get("maximize")]
    want_full = {f"full-{m}-{info.name}-{s}-f64" for m in ("mlp", "clf") for s in sets}
    if not info.long_float32_skip:
        want_full |= {f"full-{m}-{info.name}-{s}-f32" for m in ("mlp", "clf") for s in sets}
    assert want_full <= full, sorted(want_full - full)


@pytest.mark.parametrize("info", [o for o in OPTIMIZERS if o.families], ids=lambda o: o.name)
def test_every_declared_family_is_in_the_catalog_and_the_cli_help(info: OptimInfo) -> None:
    from refbp.cli.diagnose import _LIKES
    from refbp.diagnose.catalog import family

    for like in info.families:
        assert family(like, "optimizer").build is info.numpy_class()
        assert like in _LIKES["check-optimizer"][1]().split(", ")


def test_aliases_leave_out_the_spellings_a_family_gives_another_meaning() -> None:
    assert ("alpha",) in optimizer("Adam").hyper("lr").aliases
    assert ("alpha",) not in optimizer("RMSprop").hyper("lr").aliases
    assert ("alpha",) not in optimizer("Adadelta").hyper("lr").aliases
    assert ("decay",) not in optimizer("RMSprop").hyper("alpha").aliases
    assert optimizer("Rprop").hyper("etas").aliases[1] == ("etaminus", "etaplus")
    assert Hyper("amsgrad", False).aliases == (("amsgrad",),)
    assert all(names[0] == name for name, spellings in SPELLINGS.items()
               for names in spellings[:1])


def test_explain_mode_pairs_rprop_pairs_spelled_as_two_names() -> None:
    from refbp.diagnose.naming import build_naming

    naming = build_naming({"lr": 0.1, "etaminus": 0.4, "etaplus": 1.3}, False,
                          optimizer("Rprop").defaults | {"maximize": False}, {}, "Rprop")
    assert naming.names["etas"] == ("etaminus", "etaplus")
    assert naming.effective["etas"] == (0.4, 1.3)
    explicit = build_naming({"lr": 0.1, "etaminus": 0.4, "etaplus": 1.3}, False,
                            optimizer("Rprop").defaults, {"etas": (0.3, 1.1)}, "Rprop")
    assert explicit.user_kwargs == {"etaminus": 0.3, "etaplus": 1.1}


def test_unknown_names_are_refused_with_the_declared_ones() -> None:
    with pytest.raises(KeyError, match="no optimizer 'Adamm' is declared; declared: SGD, Adam"):
        optimizer("Adamm")
    with pytest.raises(KeyError, match="Rprop has no hyperparameter 'eps'; it has lr, etas"):
        optimizer("Rprop").hyper("eps")
    with pytest.raises(ValueError, match="'default' set with no options"):
        _checked(OptimInfo("X", "m", "s", (), frozenset(), (), ()))


def test_hyperparameters_without_default_are_marked() -> None:
    assert repr(REQUIRED) == "REQUIRED"
    assert all(h.default is not REQUIRED for o in OPTIMIZERS for h in o.hyperparameters)


# -- lr schedulers -----------------------------------------------------------------------------
def _types(value: Any) -> list[str]:
    if isinstance(value, Sub):
        return [value.type, *(t for v in value.options.values() for t in _types(v))]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _types(v)]
    return []


def _scheduler_class(info: SchedulerInfo) -> Any:
    return getattr(importlib.import_module(f"refbp.optim.{info.module}"), info.name)


def test_every_scheduler_is_declared_and_every_declaration_is_a_scheduler() -> None:
    classes = {n for m in SCHEDULER_MODULES
               for mod in [importlib.import_module(f"refbp.optim.{m}")] for n in mod.__all__
               if inspect.isclass(getattr(mod, n))
               and issubclass(getattr(mod, n), lr_scheduler.LRScheduler)}
    assert classes - {"LRScheduler"} == {s.name for s in SCHEDULERS}
    for s in SCHEDULERS:
        sig = inspect.signature(_scheduler_class(s)).parameters
        assert set(s.defaults or {}) <= set(sig), s.name
        assert set(s.required()) <= set(s.defaults or {}) or s.defaults is None, s.name
        for c in s.checks:
            assert set(c.options) <= {h.name for h in s.hyperparameters}, (s.name, c.id)
            assert set(_types(list(c.options.values()))) <= {x.name for x in SCHEDULERS}
        for o in s.option_sets:
            assert set(o.options) <= set(sig), (s.name, o.id)
            assert set(_types(list(o.options.values()))) <= {x.name for x in SCHEDULERS}


@pytest.mark.parametrize("info", SCHEDULERS, ids=[s.name for s in SCHEDULERS])
def test_scheduler_signature_is_the_declaration(info: SchedulerInfo) -> None:
    """Names, order, defaults and keyword kinds of ``lr_scheduler.<name>`` after optimizer."""
    params = list(inspect.signature(_scheduler_class(info)).parameters.values())
    assert (params[0].name == "optimizer") == info.optimizer_first
    got = [(p.name, REQUIRED if p.default is p.empty else p.default,
            p.kind is p.KEYWORD_ONLY) for p in params[info.optimizer_first:]]
    assert got == [(h.name, h.default, h.keyword_only) for h in info.hyperparameters]


def test_a_scheduler_declaration_must_declare_its_arguments() -> None:
    with pytest.raises(ValueError, match="StepLR: declare torch's constructor arguments"):
        _checked_scheduler(SchedulerInfo("StepLR", "s", {"step_size": 3}))
    with pytest.raises(ValueError, match="StepLR: declare the cases of the parity test"):
        _checked_scheduler(SchedulerInfo("StepLR", "s", {"step_size": 3},
                                         hyperparameters=sched_args("step_size")))
    with pytest.raises(ValueError, match=r"leaves out required \['step_size'\]"):
        _checked_scheduler(SchedulerInfo("StepLR", "s", {},
                                         hyperparameters=sched_args("step_size"),
                                         checks=(SchedulerCheck("", {"step_size": 3}),)))


def test_every_declared_scheduler_is_in_the_quick_suite(suites: dict[str, set[str]]) -> None:
    quick = suites["quick"]
    for s in SCHEDULERS:
        want = {f"sched-{o.id}-f64" for o in s.option_sets if not o.epoch_only}
        want |= {f"sched-epoch-{o.id}-f64" for o in s.option_sets if o.epoch_stride}
        if s.defaults is not None:
            want.add(f"defaults-{s.name.lower()}-f64")
        assert want and want <= quick, (s.name, sorted(want - quick))


# -- torch stays out ------------------------------------------------------------------------
def test_registry_imports_neither_torch_nor_the_numpy_side() -> None:
    for f in sorted((ROOT / "refbp" / "registry").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""])
                assert all(not m.startswith(("torch", "numpy", "refbp.optim", "refbp.nn",
                                             "refbp.parity", "refbp.diagnose"))
                           for m in mods), (f.name, mods)
    code = ("import sys; import refbp.registry.optimizers, refbp.registry.schedulers; "
            "print(sorted(m for m in ('torch', 'numpy', 'refbp.optim') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_refbp_list_optimizers_shows_every_declaration(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from refbp.cli import main

    assert main(["list", "--optimizers"]) == 0
    out = capsys.readouterr().out
    for o in OPTIMIZERS:
        assert f"  {o.name}{o.signature()}\n" in out
    assert "  Rprop(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-06, 50), *, maximize=False)" in out
    for s in SCHEDULERS:
        assert f"  {s.name}: {s.summary}\n" in out
        assert f"      {s.name}{s.signature()}\n" in out
    assert "      StepLR(step_size, gamma=0.1, last_epoch=-1)\n" in out


def test_refbp_help_does_not_import_the_declarations() -> None:
    """``refbp --help`` builds every subparser; the declarations load only for a help page
    that shows them (``check-optimizer --help``)."""
    code = ("import sys, contextlib, io\nfrom refbp.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('refbp.registry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
