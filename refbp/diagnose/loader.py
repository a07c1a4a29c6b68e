"""Load user code as its authors wrote it: ``FILE.py:Name`` or ``package.module:Name`` (no torch).

From-scratch code is rarely a clean library. A book's chapter file imports ``from common.layers
import Affine`` and expects to be run from the repository root; a course's package uses
relative imports (``from .layers import *``); a script defines its classes and then trains
(or parses ``sys.argv``, or calls ``sys.exit``) at import time; a file imports a helper package
that is not installed (``import nnfs``). The loader handles all of them:

- the working directory, the file's directory, the file's project root (nearest ancestor with
  ``.git``, ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``requirements.txt``) and, for an
  absolute import that fails, the nearest ancestor holding that package, go on ``sys.path``;
- a file inside a package (``__init__.py`` beside it) is loaded under its dotted name, so its
  relative imports resolve;
- only *definitions* run: imports, ``def``/``class``, and assignments whose calls are
  standard-library or NumPy calls (``EPS = np.finfo(float).eps``, ``HERE = Path(__file__)``).
  Top-level statements that would train, plot,
  parse arguments or exit (loops, bare calls, ``model = Net()``, ``if __name__ ...``) are
  skipped, and the notes say so;
- each top-level statement runs on its own: an import of a package that is not installed, or a
  definition that needs it, is skipped with a note instead of failing the load; ``SystemExit``
  raised at import is caught the same way.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refbp.diagnose.guard import guarded
from refbp.diagnose.spec import UserCodeError

ROOT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")
MAX_ANCESTORS = 6


@dataclass
class Loaded:
    """The object a spec names, with what the loader had to do to get it."""

    obj: Any
    module: types.ModuleType
    notes: list[str] = field(default_factory=list)


def _add_path(directory: Path) -> None:
    text = str(directory)
    if text not in sys.path:
        sys.path.insert(0, text)


def _ancestors(start: Path) -> list[Path]:
    out = [start]
    while len(out) < MAX_ANCESTORS and out[-1].parent != out[-1]:
        out.append(out[-1].parent)
    return out


def project_root(path: Path) -> Path | None:
    """The nearest ancestor directory of ``path`` that looks like a project root."""
    for d in _ancestors(path.parent):
        if any((d / m).exists() for m in ROOT_MARKERS):
            return d
    return None


def _package_of(path: Path) -> tuple[str, Path]:
    """``(dotted module name, directory to put on sys.path)`` of a file, following
    ``__init__.py`` files upwards (``("", parent)`` for a file outside any package)."""
    parts = [path.stem]
    d = path.parent
    while (d / "__init__.py").is_file() and d.parent != d:
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts) if len(parts) > 1 else "", d


SAFE_LIBRARIES = ("numpy", "math", "scipy")


def _safe_module(name: str) -> bool:
    top = name.split(".")[0]
    return top in sys.stdlib_module_names or top in SAFE_LIBRARIES


def _is_library_call(node: ast.AST, safe: set[str]) -> bool:
    """A call of a standard-library or NumPy name (``np.zeros(3)``, ``Path(__file__)``)."""
    if not isinstance(node, ast.Call):
        return True
    func = node.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in safe


def _is_definition(stmt: ast.stmt, modules: set[str]) -> bool:
    """Whether a top-level statement only defines something (see the module docstring)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return True
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Constant)  # docstring
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        value = stmt.value
        return value is None or all(_is_library_call(n, modules) for n in ast.walk(value))
    if isinstance(stmt, ast.Try):
        body = [*stmt.body, *(s for h in stmt.handlers for s in h.body), *stmt.orelse]
        return all(_is_definition(s, modules) for s in body)
    if isinstance(stmt, ast.If) and not _is_main_guard(stmt):
        return all(_is_definition(s, modules) for s in [*stmt.body, *stmt.orelse])
    return False


def _is_main_guard(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and "__main__" in ast.unparse(stmt.test)


def _safe_names(tree: ast.Module) -> set[str]:
    """Names bound by top-level imports of the standard library or NumPy: calling them at
    import time cannot train a model or load a data set."""
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.asname or a.name.split(".")[0] for a in node.names
                    if _safe_module(a.name)}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and \
                _safe_module(node.module):
            out |= {a.asname or a.name for a in node.names}
    return out | {"float", "int", "str", "dict", "list", "tuple", "set", "frozenset", "range"}


def _describe_skipped(stmts: list[ast.stmt]) -> str:
    first = stmts[0]
    text = ast.unparse(first).splitlines()[0]
    if len(text) > 50:
        text = text[:47] + "..."
    more = f" and {len(stmts) - 1} more top-level statement(s)" if len(stmts) > 1 else ""
    return f"line {first.lineno}: `{text}`{more}"


def _missing_module(exc: BaseException) -> str | None:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name.split(".")[0]
    return None


def _find_holder(name: str, starts: list[Path]) -> Path | None:
    """The nearest ancestor of ``starts`` holding a package or module ``name``."""
    for start in starts:
        for d in _ancestors(start):
            if (d / name).is_dir() or (d / f"{name}.py").is_file():
                return d
    return None


def _run_statement(stmt: ast.stmt, ns: dict[str, Any], path: Path) -> BaseException | None:
    code = compile(ast.Module(body=[stmt], type_ignores=[]), str(path), "exec")
    try:
        exec(code, ns)  # noqa: S102 - loading the user's own definitions is the point
    except (Exception, SystemExit) as exc:
        return exc
    return None


def exec_definitions(path: Path, module: types.ModuleType) -> list[str]:
    """Run the definitions of ``path`` in ``module`` statement by statement; notes."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        raise UserCodeError(f"{str(path)!r} is not valid Python: {exc}") from exc
    modules = _safe_names(tree)
    kept = [s for s in tree.body if _is_definition(s, modules)]
    skipped = [s for s in tree.body if s not in kept and not _is_main_guard(s)]
    notes = []
    if skipped:
        notes.append(f"{path.name} runs code at import ({_describe_skipped(skipped)}); refbp "
                     "loaded only its imports and definitions")
    failed: dict[str, list[str]] = {}
    for stmt in kept:
        err = _run_statement(stmt, vars(module), path)
        missing = _missing_module(err) if err is not None else None
        if missing is not None:
            holder = _find_holder(missing, [path.parent, Path.cwd()])
            if holder is not None:
                _add_path(holder)
                err = _run_statement(stmt, vars(module), path)
        if err is not None:
            failed.setdefault(f"{type(err).__name__}: {err}", []).append(str(stmt.lineno))
    notes += [f"{path.name} line{'s' if len(lines) > 1 else ''} {', '.join(lines)} failed at "
              f"import ({why}); refbp loaded the file without {'them' if len(lines) > 1 else 'it'}"
              for why, lines in failed.items()]
    return notes


def load_file(path: Path) -> tuple[types.ModuleType, list[str]]:
    """Import the definitions of a Python file (see the module docstring)."""
    path = path.resolve()
    dotted, base = _package_of(path)
    for d in (base, path.parent, project_root(path), Path.cwd()):
        if d is not None:
            _add_path(d)
    package = dotted.rpartition(".")[0]
    if package:
        try:
            importlib.import_module(package)
        except (Exception, SystemExit) as exc:
            raise UserCodeError(f"importing the package {package!r} of {str(path)!r} raised "
                                f"{type(exc).__name__}: {exc}") from exc
    name = dotted or f"refbp_user_{abs(hash(str(path)))}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__package__ = package
    module.__spec__ = importlib.util.spec_from_file_location(name, path)
    sys.modules[name] = module
    return module, exec_definitions(path, module)


def _module_file(dotted: str, spec: str) -> Path:
    _add_path(Path.cwd())
    known = getattr(sys.modules.get(dotted), "__file__", None)
    if known:
        return Path(known)
    try:
        mspec = importlib.util.find_spec(dotted)
    except (ImportError, ValueError) as exc:
        raise UserCodeError(f"cannot find module {dotted!r} (from USER_SPEC {spec!r}): {exc}"
                            ) from exc
    if mspec is None or not mspec.origin or not mspec.origin.endswith(".py"):
        raise UserCodeError(f"no Python module {dotted!r} (from USER_SPEC {spec!r}) on the "
                            "import path or under the working directory; expected "
                            "path/to/file.py:Name or package.module:Name")
    return Path(mspec.origin)


def load(spec: str) -> Loaded:
    """Load the object named by ``path/to/file.py:Name`` or ``package.module:Name``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UserCodeError(f"expected USER_SPEC of the form path/to/file.py:Name or "
                            f"package.module:Name, got {spec!r}")
    where, _, name = spec.rpartition(":")
    if not name.isidentifier():
        raise UserCodeError(f"expected a class or function name after ':' in {spec!r}, got "
                            f"{name!r}")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if path.suffix != ".py" or not path.is_file():
            raise UserCodeError(f"no Python file {where!r} (from USER_SPEC {spec!r}); "
                                "expected path/to/file.py:Name or package.module:Name")
    else:
        path = _module_file(where, spec)
    module, notes = load_file(path)
    if not hasattr(module, name):
        defined = sorted(n for n, v in vars(module).items()
                         if (inspect.isclass(v) or inspect.isfunction(v))
                         and v.__module__ == module.__name__)
        extra = f" ({'; '.join(notes)})" if notes else ""
        raise UserCodeError(f"{where!r} defines no {name!r}; classes and functions defined "
                            f"there: {', '.join(defined) or 'none'}{extra}")
    return Loaded(getattr(module, name), module, notes)


def load_user(spec: str) -> Any:
    """The object named by ``path/to/file.py:Name`` or ``package.module:Name``.

    See this module (import paths, packages, scripts that train at import).
    Raises :class:`UserCodeError` for a malformed spec, a missing file or module, or a missing
    name (the names the file defines are listed).
    """
    with guarded(spec):  # no sys.exit, BaseException or argv parsing escapes the import
        return load(spec).obj
