"""User-code errors and ``--options`` parsing (no torch).

Loading (``load_user``) lives in :mod:`refbp.diagnose.loader`; how options reach the user's
code under its own names in :mod:`refbp.diagnose.naming`. Options are given once, under
torch's names (``lr``, ``betas``, ``eps``, ...) or the user's, and go to both sides.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from refbp.errors import UsageError


class UserCodeError(UsageError, ValueError):
    """User code cannot be loaded or driven; the message names what was expected."""


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
    """``{"lr": 0.01}`` -> ``"lr=0.01"`` (for messages and the report's optimizer column);
    arrays are shown by shape, never in full."""
    def show(v: Any) -> str:
        shape = getattr(v, "shape", None)
        return f"<array {tuple(shape)}>" if shape is not None and hasattr(v, "dtype") else repr(v)

    return ", ".join(f"{k}={show(v)}" for k, v in options.items())


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
            f"cannot call {name}({call}): {exc}. {what}; options are passed as keyword "
            "arguments under the constructor's own names") from exc
    except ValueError:
        pass  # no signature available (builtins): just call it
    try:
        return cls(*args, **options)
    except Exception as exc:
        raise UserCodeError(f"{name}({call}) raised {type(exc).__name__}: {exc}") from exc
