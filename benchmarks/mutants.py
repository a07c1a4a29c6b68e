"""Small planted bugs (mutants) in refbp's source, found and applied on the AST.

Operators: ``+`` <-> ``-`` and ``*`` <-> ``/`` (binary and augmented assignment), ``<`` <->
``<=`` and ``>`` <-> ``>=``, a unary minus dropped, a non-zero float literal times 1.5.

Never mutated (validation and messages, where a bug is not a numerical bug): the test and body
of an ``if`` block that raises, ``raise`` and ``assert`` statements, f-strings, ``warnings.warn``
calls, annotations, functions named ``check_*`` / ``_check_*`` / ``validate*`` /
``__repr__`` / ``extra_repr``, and modules that only validate (``*_checks.py``). Additions
with a string, tuple or list literal operand (concatenation, not arithmetic) are skipped too.

A mutant is named by its file and its ordinal in a fixed traversal of that file, so the same
list is produced from the same source on any machine; :func:`apply` re-parses the file, finds
the node by its ordinal and writes the mutated module with ``ast.unparse`` (same semantics,
reformatted; line numbers in reports refer to the original file).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Lt: "<", ast.LtE: "<=",
          ast.Gt: ">", ast.GtE: ">="}
SKIP_FUNCS = ("check_", "_check", "validate", "_validate", "__repr__", "extra_repr")
FACTOR = 1.5


@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``file`` (relative to the source root), ``ordinal`` in the file's
    traversal, the original ``line`` and a description of the change."""

    file: str
    ordinal: int
    line: int
    change: str
    lines: tuple[int, ...] = field(default=())
    """Source lines whose execution can expose the mutant; empty: runs at import time."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _raises(stmts: list[ast.stmt]) -> bool:
    return any(isinstance(n, ast.Raise) for s in stmts for n in ast.walk(s))


def _concat(node: ast.BinOp) -> bool:
    literal = (ast.JoinedStr, ast.Tuple, ast.List)
    for side in (node.left, node.right):
        if isinstance(side, literal) or (isinstance(side, ast.Constant)
                                         and isinstance(side.value, str | bytes)):
            return True
    return False


def _is_warn(node: ast.AST) -> bool:
    f = node.func if isinstance(node, ast.Call) else None
    return (isinstance(f, ast.Attribute) and f.attr == "warn") or (
        isinstance(f, ast.Name) and f.id == "warn")


class _Finder:
    """Walks a module in a fixed order and yields ``(node, variant, change, lines)``."""

    def __init__(self) -> None:
        self.func_lines: list[tuple[int, ...]] = []

    def visit(self, node: ast.AST) -> Iterator[tuple[ast.AST, int, str, tuple[int, ...]]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from self._function(node)
            return
        if isinstance(node, ast.If) and _raises(node.body):
            for child in node.orelse:
                yield from self.visit(child)
            return
        if isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr) or _is_warn(node):
            return
        if isinstance(node, ast.AnnAssign):
            children: list[ast.AST] = [node.target] + ([node.value] if node.value else [])
        elif isinstance(node, ast.arg):
            children = []
        else:
            children = list(ast.iter_child_nodes(node))
        yield from self._mutations(node)
        for child in children:
            yield from self.visit(child)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef
                  ) -> Iterator[tuple[ast.AST, int, str, tuple[int, ...]]]:
        if node.name.startswith(SKIP_FUNCS):
            return
        body = tuple(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
        self.func_lines.append(body)
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            for item in self.visit(d):  # a default is used by the calls of the function
                yield item[:3] + (body,)
        for stmt in node.body:
            yield from self.visit(stmt)
        self.func_lines.pop()

    def _mutations(self, node: ast.AST) -> Iterator[tuple[ast.AST, int, str, tuple[int, ...]]]:
        lines: tuple[int, ...] = ()
        if self.func_lines and hasattr(node, "lineno"):
            lines = tuple(range(node.lineno, (node.end_lineno or node.lineno) + 1))  # type: ignore[attr-defined]
        if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BIN and not _concat(node):
            new = SWAP_BIN[type(node.op)]
            yield node, 0, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", lines
        elif isinstance(node, ast.AugAssign) and type(node.op) in SWAP_BIN:
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return
            new = SWAP_BIN[type(node.op)]
            yield node, 0, f"{SYMBOL[type(node.op)]}= -> {SYMBOL[new]}=", lines
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAP_CMP:
                    yield node, i, f"{SYMBOL[type(op)]} -> {SYMBOL[SWAP_CMP[type(op)]]}", lines
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            yield node, 0, "unary minus dropped", lines
        elif (isinstance(node, ast.Constant) and isinstance(node.value, float)
              and node.value != 0.0 and node.value == node.value):
            yield node, 0, f"{node.value!r} -> {node.value * FACTOR!r}", lines


def _candidates(tree: ast.Module) -> list[tuple[ast.AST, int, str, tuple[int, ...]]]:
    return list(_Finder().visit(tree))


def _mutate(node: ast.AST, variant: int) -> ast.AST | None:
    """Change ``node`` in place; returns a replacement node when it must be swapped out."""
    if isinstance(node, ast.BinOp | ast.AugAssign):
        node.op = SWAP_BIN[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[variant] = SWAP_CMP[type(node.ops[variant])]()
    elif isinstance(node, ast.UnaryOp):
        return node.operand
    elif isinstance(node, ast.Constant):
        node.value = node.value * FACTOR
    return None


def find(root: Path, packages: tuple[str, ...]) -> list[Mutant]:
    """Every mutant of the ``.py`` files under ``root/<package>`` (sorted, fixed order)."""
    out = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            if path.name.endswith("_checks.py"):
                continue
            rel = str(path.relative_to(root))
            tree = ast.parse(path.read_text(), filename=rel)
            for k, (node, _v, change, lines) in enumerate(_candidates(tree)):
                out.append(Mutant(rel, k, node.lineno, change, lines))  # type: ignore[attr-defined]
    return out


def apply(root: Path, m: Mutant) -> str:
    """The source of ``m.file`` with the mutant planted."""
    tree = ast.parse((root / m.file).read_text(), filename=m.file)
    node, variant, change, _ = _candidates(tree)[m.ordinal]
    if change != m.change or node.lineno != m.line:  # type: ignore[attr-defined]
        raise ValueError(f"source changed since the mutant was found: {m.where} {m.change}")
    replacement = _mutate(node, variant)
    if replacement is not None:
        for parent in ast.walk(tree):
            for name, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, name, replacement)
                elif isinstance(value, list):
                    value[:] = [replacement if v is node else v for v in value]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
