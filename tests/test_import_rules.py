"""The layering rules, checked on the source (AST): every import statement, also inside functions.

- the NumPy side (``refbp.nn``, ``optim``, ``graph``, ``gradcheck``, ``data``, ``report``,
  ``metrics``, ``registry`` and the NumPy halves of ``refbp.examples``) never imports torch,
  lazily or not;
- the torch halves of the examples (``refbp/examples/<name>/mirror.py``, their shared
  ``_mirror.py`` and ``replay.py``) are imported by no NumPy half;
- ``refbp.registry`` (the declarations) imports no other part of refbp but ``refbp.versions``
  (the foundation that declares the conventions torch releases changed, whose arguments are
  refbp-only constructor arguments): it names classes and functions by dotted path, so that
  reading it stays cheap;
- ``refbp.optim`` uses ``refbp.nn`` only for ``Parameter`` (``refbp.nn.module``);
- ``refbp.nn`` never imports ``refbp.optim``; ``refbp.report`` never imports ``refbp.parity``;
- no library module imports the command line (``refbp.cli``, a face on top of everything);
- no import cycle among refbp's modules, counting imports inside functions and under
  ``TYPE_CHECKING`` (an edge goes to the most specific module an import names: ``from a
  import b`` is an edge to ``a.b`` when that is a module, else to ``a``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refbp"
NUMPY_SIDE = ("nn", "optim", "graph", "gradcheck", "data", "report", "metrics", "examples",
              "registry")
TORCH_HALVES = ("mirror", "_mirror", "replay")  # module names of the examples' torch side


def _is_torch_half(f: Path) -> bool:
    return f.relative_to(PACKAGE).parts[0] == "examples" and f.stem in TORCH_HALVES


def _files(part: str) -> list[Path]:
    path = PACKAGE / part
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return [f for f in files if not _is_torch_half(f)]


def _statements(source: str, package: str) -> Iterator[tuple[str, list[str]]]:
    """``(module, names)`` of every import statement of ``source``: ``import a.b`` gives
    ``("a.b", [])``, ``from a import b, c`` gives ``("a", ["b", "c"])``; relative imports are
    resolved against ``package``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base, [a.name for a in node.names]


def _imports(source: str, package: str) -> list[str]:
    """Every module an import statement of ``source`` names (``from a import b`` gives ``a``
    and ``a.b``); relative imports are resolved against ``package``."""
    return [m for base, names in _statements(source, package)
            for m in (base, *(f"{base}.{n}" for n in names))]


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the refbp modules its import statements name (see the module docstring;
    ``from a import b, c`` where only ``c`` is a module gives ``a`` and ``a.c``)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, f in files.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for base, names in _statements(f.read_text(encoding="utf-8"), package):
            modules = [f"{base}.{n}" for n in names if f"{base}.{n}" in files]
            for m in modules + ([base] if len(modules) < len(names) or not names else []):
                while m and m not in files:  # a module outside refbp, or an object
                    m = m.rpartition(".")[0]
                if m and m != name:
                    edges.add(m)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _offending(parts: tuple[str, ...], bad: Callable[[str], bool]) -> list[str]:
    out = []
    for part in parts:
        for f in _files(part):
            package = ".".join(f.relative_to(PACKAGE.parent).parts[:-1])
            out += [f"{f.relative_to(PACKAGE.parent)}: {m}"
                    for m in _imports(f.read_text(encoding="utf-8"), package) if bad(m)]
    return out


@pytest.mark.parametrize("part", NUMPY_SIDE)
def test_numpy_side_never_imports_torch(part: str) -> None:
    assert _files(part)
    assert _offending((part,), lambda m: m == "torch" or m.startswith("torch.")) == []


def test_every_example_has_its_torch_half_beside_it() -> None:
    from refbp.examples import EXAMPLES

    for spec in EXAMPLES.values():
        package = PACKAGE.parent.joinpath(*spec.run.__module__.split("."))
        assert (package / "__init__.py").is_file() and (package / "mirror.py").is_file()


def test_numpy_halves_never_import_a_torch_half() -> None:
    assert _offending(("examples",), lambda m: m.startswith("refbp.examples.")
                      and m.split(".")[-1] in TORCH_HALVES) == []


def test_report_never_imports_the_harness() -> None:
    assert _offending(("report",), lambda m: m == "refbp.parity" or m.startswith("refbp.parity.")
                      ) == []


def test_no_library_module_imports_the_command_line() -> None:
    graph = _import_graph()
    users = sorted(m for m, edges in graph.items()
                   if not m.startswith(("refbp.cli", "refbp.__main__"))
                   and any(e == "refbp.cli" or e.startswith("refbp.cli.") for e in edges))
    assert graph["refbp.__main__"] == {"refbp.cli"} and users == []


def test_optim_uses_nn_only_for_parameter() -> None:
    """Parameter and the sparse gradient type; swa_utils (which averages modules, as torch's
    does) also Module and BatchNorm."""
    allowed = {"refbp.nn.module", "refbp.nn.module.Parameter", "refbp.nn.sparse",
               "refbp.nn.sparse.SparseGrad"}
    swa = {"refbp.nn.module.Module", "refbp.nn.batchnorm", "refbp.nn.batchnorm._BatchNorm"}
    offending = _offending(("optim",), lambda m: (m == "refbp.nn" or m.startswith("refbp.nn."))
                           and m not in allowed)
    assert [o for o in offending if not (o.startswith("refbp/optim/swa_utils.py: ")
                                         and o.split(": ")[1] in swa)] == []


def test_nn_never_imports_optim() -> None:
    assert _offending(("nn",), lambda m: m == "refbp.optim" or m.startswith("refbp.optim.")
                      ) == []


def test_registry_imports_only_itself_and_the_torch_conventions() -> None:
    assert _offending(("registry",), lambda m: (m == "refbp" or m.startswith("refbp."))
                      and not m.startswith(("refbp.registry", "refbp.versions"))) == []


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    src = ("import numpy as np\n"
           "def f():\n    import torch.nn\n    from torch import optim\n"
           "class A:\n    def g(self):\n        from ..optim import sgd\n        from . import x\n")
    found = _imports(src, "refbp.nn")
    assert found == ["numpy", "torch.nn", "torch", "torch.optim", "refbp.optim",
                     "refbp.optim.sgd", "refbp.nn", "refbp.nn.x"]


def test_no_import_cycle_among_refbp_modules() -> None:
    graph = _import_graph()
    assert "refbp.cli.commands" in graph and "refbp.report.digest" in graph["refbp.report.markdown"]
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_lazy_and_type_only_cycles() -> None:
    src = {"a": "import b\n", "b": "def f():\n    from c import x\n",
           "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n",
           "d": "import a\n"}
    graph = {m: {i for i in _imports(text, "") if i in src} for m, text in src.items()}
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({**graph, "c": set()}) == []
