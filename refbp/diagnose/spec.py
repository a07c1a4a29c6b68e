"""Loading user code from ``path/to/file.py:ClassName`` and parsing ``--options`` (no torch).

Hyperparameters are given once and go to both sides under **torch's argument names**
(``lr``, ``betas``, ``eps``, ``weight_decay``, ``momentum``, ``label_smoothing``, ...): the
user's constructor must accept them as keyword arguments. With no options nothing is passed to
the user's constructor (its own defaults apply) and the torch side uses torch's defaults.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from refbp.errors import UsageError


class UserCodeError(UsageError, ValueError):
    """User code cannot be loaded or driven; the message names what was expected."""


def load_user(spec: str) -> Any:
    """The object named by ``path/to/file.py:ClassName`` (the file is imported by path).

    Raises :class:`UserCodeError` for a malformed spec, a missing file, a file that fails to
    import (the exception is named) or a missing name (the names the file defines are listed).
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise UserCodeError(f"expected USER_SPEC of the form path/to/file.py:ClassName, got "
                            f"{spec!r}")
    path_text, _, name = spec.rpartition(":")
    path = Path(path_text)
    if not name.isidentifier():
        raise UserCodeError(f"expected a class name after ':' in {spec!r}, got {name!r}")
    if path.suffix != ".py" or not path.is_file():
        raise UserCodeError(f"no Python file {str(path)!r} (from USER_SPEC {spec!r}); expected "
                            "path/to/file.py:ClassName")
    mod_name = f"refbp_user_{abs(hash(str(path.resolve())))}"
    mspec = importlib.util.spec_from_file_location(mod_name, path)
    if mspec is None or mspec.loader is None:
        raise UserCodeError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(mspec)
    sys.modules[mod_name] = module
    from refbp.diagnose.guard import guarded

    try:
        with guarded(str(path)):  # no sys.exit, BaseException or argv parsing escapes
            mspec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        if isinstance(exc, UserCodeError):
            raise
        raise UserCodeError(f"importing {str(path)!r} raised {type(exc).__name__}: {exc}"
                            ) from exc
    if not hasattr(module, name):
        defined = sorted(n for n, v in vars(module).items()
                         if inspect.isclass(v) and v.__module__ == mod_name)
        raise UserCodeError(f"{str(path)!r} defines no {name!r}; classes defined there: "
                            f"{', '.join(defined) or 'none'}")
    return getattr(module, name)


def _literal(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_options(text: str | None) -> dict[str, Any]:
    """``"lr=0.01,betas=0.9,0.99,amsgrad=true"`` -> ``{"lr": 0.01, "betas": (0.9, 0.99),
    "amsgrad": True}``.

    Items are separated by commas; a comma-separated piece without ``=`` continues the previous
    value (so tuples need no brackets). Values are Python literals; ``true``/``false``/``none``
    are accepted in any case; anything else stays a string.
    """
    if text is None or not text.strip():
        return {}
    items: list[list[str]] = []
    for piece in text.split(","):
        if "=" in piece:
            key, _, value = piece.partition("=")
            if not key.strip().isidentifier():
                raise UserCodeError(f"bad option name {key.strip()!r} in {text!r}; expected "
                                    "name=value[,name=value...]")
            items.append([key.strip(), value])
        elif items:
            items[-1][1] += "," + piece
        else:
            raise UserCodeError(f"expected name=value at the start of --options, got {text!r}")
    return {k: _literal(v) for k, v in items}


def format_options(options: dict[str, Any]) -> str:
    """``{"lr": 0.01}`` -> ``"lr=0.01"`` (for messages and the report's optimizer column)."""
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def accepted_kwargs(cls: Any) -> set[str] | None:
    """Keyword names a callable accepts (``None``: it takes ``**kwargs``, so anything)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def construct(cls: Any, args: tuple[Any, ...], options: dict[str, Any], what: str) -> Any:
    """``cls(*args, **options)`` with a clear error when the signature does not fit."""
    name = getattr(cls, "__name__", type(cls).__name__)
    call = ", ".join([*(f"<{type(a).__name__}>" for a in args), format_options(options)])
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as exc:
        raise UserCodeError(
            f"cannot call {name}({call}): {exc}. {what}; hyperparameters are passed as keyword "
            "arguments under torch's names") from exc
    except ValueError:
        pass  # no signature available (builtins): just call it
    try:
        return cls(*args, **options)
    except Exception as exc:
        raise UserCodeError(f"{name}({call}) raised {type(exc).__name__}: {exc}") from exc
