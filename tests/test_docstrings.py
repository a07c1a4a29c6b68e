"""Every public function, class and method of the library's packages has a docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import refbp

ROOT = Path(refbp.__file__).parent
PACKAGES = ("nn", "optim", "testing", "report", "diagnose")


def _public(body: list[ast.stmt], prefix: str = "") -> list[tuple[str, ast.AST]]:
    out: list[tuple[str, ast.AST]] = []
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
            out.append((prefix + node.name, node))
            if isinstance(node, ast.ClassDef):
                out += _public(node.body, f"{prefix}{node.name}.")
    return out


def _undocumented(package: str) -> list[str]:
    missing = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for name, node in _public(tree.body):
            assert isinstance(node, ast.ClassDef | ast.FunctionDef)
            if ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {name}")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_is_documented(package: str) -> None:
    missing = _undocumented(package)
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)
