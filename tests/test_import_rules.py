"""The layering rules, checked on the source (AST): every import statement, also inside functions.

- the NumPy side (``refbp.nn``, ``optim``, ``graph``, ``gradcheck``, ``data``, ``report``,
  ``metrics``, ``registry`` and the NumPy halves of ``refbp.examples``) never imports torch,
  lazily or not;
- the torch halves of the examples (``refbp/examples/<name>/mirror.py``, their shared
  ``_mirror.py`` and ``replay.py``) are imported by no NumPy half;
- ``refbp.registry`` (the declarations) imports no other part of refbp: it names classes and
  functions by dotted path, so that reading it stays cheap;
- ``refbp.optim`` uses ``refbp.nn`` only for ``Parameter`` (``refbp.nn.module``);
- ``refbp.nn`` never imports ``refbp.optim``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
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


def _imports(source: str, package: str) -> list[str]:
    """Every module an import statement of ``source`` names (``from a import b`` gives ``a``
    and ``a.b``); relative imports are resolved against ``package``."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out += [base, *(f"{base}.{a.name}" for a in node.names)]
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


def test_optim_uses_nn_only_for_parameter() -> None:
    allowed = {"refbp.nn.module", "refbp.nn.module.Parameter"}
    assert _offending(("optim",), lambda m: (m == "refbp.nn" or m.startswith("refbp.nn."))
                      and m not in allowed) == []


def test_nn_never_imports_optim() -> None:
    assert _offending(("nn",), lambda m: m == "refbp.optim" or m.startswith("refbp.optim.")
                      ) == []


def test_registry_imports_only_itself() -> None:
    assert _offending(("registry",), lambda m: (m == "refbp" or m.startswith("refbp."))
                      and not m.startswith("refbp.registry")) == []


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    src = ("import numpy as np\n"
           "def f():\n    import torch.nn\n    from torch import optim\n"
           "class A:\n    def g(self):\n        from ..optim import sgd\n        from . import x\n")
    found = _imports(src, "refbp.nn")
    assert found == ["numpy", "torch.nn", "torch", "torch.optim", "refbp.optim",
                     "refbp.optim.sgd", "refbp.nn", "refbp.nn.x"]
