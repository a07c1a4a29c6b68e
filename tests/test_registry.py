"""The op declarations (``refbp.registry``) against the NumPy side they declare (no torch)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.registry import ops as registry
from refbp.registry.opinfo import KINDS, REFBP_ONLY_EVERYWHERE, REQUIRED, OpInfo, resolve
from refbp.tolerances import OVERRIDES

OPS = registry.OPS
IDS = [o.name for o in OPS]
# refbp.nn's classes that are not ops: bases, the containers and the parameter type.
NOT_OPS = {"Module", "Loss", "Parameter", "Sequential", "RNNBase", "RNNCellBase", "ModuleList",
           "ModuleDict", "ParameterList", "ParameterDict"}


def test_every_refbp_nn_class_is_declared_once() -> None:
    classes = {n for n in nn.__all__ if inspect.isclass(getattr(nn, n))} - NOT_OPS
    assert sorted(classes) == sorted(IDS)
    assert set(registry.NN_OTHERS) - {"init", "utils"} == NOT_OPS
    assert len(set(IDS)) == len(IDS)
    assert {o.kind for o in OPS} == set(KINDS)


def _signature(cls: type) -> dict[str, Any]:
    params = inspect.signature(cls).parameters.values()
    return {p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default
            for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in REFBP_ONLY_EVERYWHERE}


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_declared_arguments_are_the_refbp_constructor(op: OpInfo) -> None:
    """Names, order and defaults (torch's, checked by parity_tests/test_defaults_parity.py)."""
    got = _signature(op.numpy_class())
    assert list(got) == list(op.args), f"{op.name}: refbp {list(got)}, declared {list(op.args)}"
    assert all(got[k] is v if v is REQUIRED else got[k] == v for k, v in op.args.items()), (
        f"{op.name}: refbp defaults {got}, declared {dict(op.args)}")


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_declared_maths_resolve(op: OpInfo) -> None:
    assert callable(resolve(op.forward)) and callable(resolve(op.backward))
    assert issubclass(op.numpy_class(), nn.Module)
    if op.kind == "loss" and not op.suite_note:  # a noted loss is checked by its own tests
        assert issubclass(op.numpy_class(), nn.Loss)
    assert all(k in OVERRIDES for k in op.tolerance.values()), op.tolerance
    assert all(a.startswith("aten.") and a.count(".") == 2 for a in op.aten), op.aten


def _check_kwargs(op: OpInfo) -> list[dict[str, Any]]:
    """The constructor arguments of each option set, required sizes from the first sample;
    none for an op whose required arguments no sample gives (built by its suite module)."""
    sample = op.samples[0].options if op.samples else {}
    out = [{**{k: sample[k] for k in op.required() if k in sample}, **c.options}
           for c in op.checks]
    return [kw for kw in out if set(op.required()) <= set(kw)]


BUILDABLE = [(o, kw) for o in OPS for kw in _check_kwargs(o)]


@pytest.mark.parametrize("op,kwargs", BUILDABLE, ids=[f"{o.name}-{kw}" for o, kw in BUILDABLE])
def test_every_check_builds(op: OpInfo, kwargs: dict[str, Any]) -> None:
    """Each option set of the tests constructs the refbp op, with the declared options (a
    list option of a loss check is an array, a loss's ``weight``)."""
    arrays = op.kind == "loss"
    m = op.numpy_class()(**{k: np.asarray(v) if arrays and isinstance(v, list) else v
                            for k, v in kwargs.items()})
    assert isinstance(m, nn.Module)
    # stored under torch's names (LayerNorm keeps normalized_shape as a tuple, a convolution
    # its kernel_size as one per dimension); refbp's own probes need not
    for k, v in kwargs.items() if op.namesake else ():
        got = getattr(m, k)
        if isinstance(v, list):
            assert np.array_equal(got, v), (k, got, v)
        else:
            assert got == v or (isinstance(got, tuple) and got == (v,) * len(got)), (k, got, v)


def test_every_activation_and_loss_check_builds() -> None:
    built = {o.name for o, _ in BUILDABLE}
    assert {o.name for o in OPS if o.kind != "layer" and not o.suite_note} <= built


def test_sample_ids_are_unique() -> None:
    ids = [s.id for o in OPS for s in o.samples]
    assert len(ids) == len(set(ids))


def test_look_ups() -> None:
    assert registry.op("LeakyReLU").functional == "torch.nn.functional.leaky_relu"
    assert [o.name for o in registry.by_aten("aten.relu.default")] == ["ReLU"]
    assert [o.name for o in registry.by_aten("aten._softmax")] == ["Softmax"]
    assert {o.name for o in registry.by_aten("aten.convolution.default")} == {
        "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"}
    assert registry.names("loss")[:2] == ["MSELoss", "SSELoss"]
    with pytest.raises(KeyError, match="no op 'Nope' is declared; declared: ReLU"):
        registry.op("Nope")
    with pytest.raises(AttributeError, match="'refbp.nn:Nope' does not resolve"):
        resolve("refbp.nn:Nope")
    with pytest.raises(ValueError, match="kind must be one of"):
        OpInfo("X", "widget", "a:b", "a:c")


def test_declarations_import_neither_torch_nor_numpy() -> None:
    code = ("import sys; import refbp.registry.ops; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def _quick_suite_types() -> set[str]:
    from refbp.parity.suites import get_suite

    return {spec.type for s in get_suite("quick") for spec in (*s.model, s.loss)}


def test_every_declared_op_is_in_the_quick_suite() -> None:
    """Built by an op check or training scenario, or the declaration says what checks it."""
    missing = [o.name for o in OPS if o.name not in _quick_suite_types() and not o.suite_note]
    assert missing == []
    assert [o.name for o in OPS if o.suite_note and o.name in _quick_suite_types()] == []


def test_every_declared_op_is_in_the_docs() -> None:
    from refbp.registry import docs

    assert docs.DOC.exists(), "docs/ops.md is missing: run python -m refbp.registry.docs"
    text = docs.DOC.read_text(encoding="utf-8")
    assert text == docs.markdown(), "docs/ops.md is out of date: python -m refbp.registry.docs"
    assert all(f"\n| {o.name} | {docs.signature(o)} |" in text for o in OPS)


def test_refbp_nn_exports_the_declarations_and_its_stub_is_current() -> None:
    """``refbp.nn`` exports each declared op's class from its declared module, and the type
    stub that type checkers read lists the same names from the same modules."""
    from refbp.registry import docs

    assert nn.__all__ == list(registry.nn_exports())
    for o in OPS:
        assert getattr(nn, o.name) is o.numpy_class() and o.numpy_class().__module__ == o.module
    assert docs.NN_STUB.read_text(encoding="utf-8") == docs.nn_stub(), (
        "refbp/nn/__init__.pyi is out of date: python -m refbp.registry.docs")
    assert "from refbp.nn.linear import Linear as Linear\n" in docs.nn_stub()
    with pytest.raises(ValueError, match="X: declare the refbp.nn module of its class"):
        OpInfo(name="X", kind="layer", forward="f", backward="b")


def test_the_readme_names_every_declared_family_and_the_catalog_reads_every_module() -> None:
    """docs/explain.md's "Families:" sentence lists the layer and loss families in declaration
    order; the catalog reads every module of its package that has variants."""
    import re
    from pathlib import Path

    from refbp.diagnose import catalog

    readme = (Path(__file__).resolve().parents[1] / "docs" / "explain.md").read_text(
        encoding="utf-8")
    found = re.search(r"Families: every optimizer declared with one in .*?optimizer's\);"
                      r"([^;]*);([^(]*)\(", readme, re.S)
    assert found, "docs/explain.md: the 'Families:' sentence is missing"
    layers, losses = ([n.strip() for n in g.split(",")] for g in found.groups())
    declared = registry.family_ops()
    assert layers == [f for f, o in declared if o.kind != "loss"]
    assert losses == [f for f, o in declared if o.kind == "loss"]
    folder = Path(catalog.__file__).parent
    modules = {m.__name__.rsplit(".", 1)[1] for m in catalog.catalog_modules()}
    assert modules == {f.stem for f in folder.glob("*.py") if f.stem != "__init__"}


def test_every_declared_family_is_in_the_explain_catalog() -> None:
    """Declared families are the catalog's layer and loss families (a layer's with the sizes
    its check uses); no catalog family is left undeclared."""
    from refbp.diagnose import catalog
    from refbp.diagnose.catalog.layer import SPECS

    declared = registry.family_ops()
    assert {name for name, _ in declared} >= {"Linear", "ReLU", "MSELoss", "CrossEntropyLoss"}
    for name, o in declared:
        fam = catalog.family(name)
        assert fam.build is o.numpy_class() and fam.kind == ("loss" if o.kind == "loss"
                                                             else "layer")
        if fam.kind == "layer":
            assert name in SPECS, f"{name}: no LayerSpec for its check in catalog/layer.py"
    ours = {n for n, f in catalog._all_families().items() if f.kind != "optimizer"}
    assert ours == {name for name, _ in declared}
    assert set(SPECS) == {name for name, o in declared if o.kind != "loss"}


def test_refbp_list_ops_prints_every_declaration(capsys: pytest.CaptureFixture[str]) -> None:
    from refbp.cli.commands import main

    assert main(["list", "--ops"]) == 0
    out = capsys.readouterr().out
    assert "  PReLU(num_parameters=1, init=0.25)\n" in out
    assert "ATen aten.hardtanh.default" in out and "op checks op-hardtanh, op-hardtanh-range" in out
    assert all(f"  {o.name}(" in out for o in OPS)
    with pytest.raises(SystemExit):
        main(["list", "--ops", "--suite", "quick"])


def test_building_the_command_line_reads_no_declaration() -> None:
    """``refbp --help`` stays as fast as before: the --like help reads the families only
    when it is shown."""
    code = ("import sys; from refbp.cli.commands import _parser; _parser(); "
            "print(any(m.startswith('refbp.registry') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
