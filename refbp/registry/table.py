"""Name tables of declarations: build one (duplicates refused) and look a name up in it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

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
