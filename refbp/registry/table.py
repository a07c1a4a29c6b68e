"""Name tables of declarations: build one (duplicates refused), look a name up in it, and
load a package's exports from one."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def by_name(named: Iterable[tuple[str, T]], what: str) -> dict[str, T]:
    """``{name: declaration}`` in order; RuntimeError when a name is declared twice."""
    table: dict[str, T] = {}
    for name, d in named:
        if name in table:
            raise RuntimeError(f"the {what} {name!r} is declared twice")
        table[name] = d
    return table


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a KeyError naming the declared ones."""
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no {what} {name!r} is declared; declared: "
                       f"{', '.join(table)}") from None


def load_exports(exports: Mapping[str, str]) -> dict[str, Any]:
    """``{name: object}`` of an exports table (``name -> "module:attr"``, or a bare module
    path), as ``refbp.nn`` and ``refbp.optim`` build their namespaces from the declarations."""
    out: dict[str, Any] = {}
    for name, path in exports.items():
        module, _, attr = path.partition(":")
        obj = importlib.import_module(module)
        out[name] = getattr(obj, attr) if attr else obj
    return out
