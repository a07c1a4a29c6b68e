"""Name tables of declarations: build one (duplicates refused) and look a name up in it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


def by_name(declarations: Iterable[T], what: str) -> dict[str, T]:
    """``{declaration.name: declaration}`` in order; RuntimeError when a name is declared twice."""
    table: dict[str, T] = {}
    for d in declarations:
        if d.name in table:
            raise RuntimeError(f"the {what} {d.name!r} is declared twice")
        table[d.name] = d
    return table


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a KeyError naming the declared ones."""
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no {what} {name!r} is declared; declared: "
                       f"{', '.join(table)}") from None
