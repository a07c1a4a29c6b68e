"""``Variant`` and ``Family``: the entries of the convention catalog (no torch).

The tables live in :mod:`refbp.diagnose.catalog.optim`, :mod:`~.layer` and
:mod:`~.loss`; :mod:`refbp.diagnose.catalog` reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any


def always(options: dict[str, Any]) -> bool:
    """Predicate of variants that differ from torch under any options."""
    return True


@dataclass(frozen=True)
class Variant:
    """One named convention.

    ``build`` makes the refbp implementation: for an optimizer ``build(params, options, like)``
    (params: a list of Parameters), for a layer ``build(options)`` (a refbp Module whose
    constructor arguments are torch's), for a loss ``build(options)`` returning a function
    ``(pred, target) -> (loss, d loss / d pred)``. ``applies(options)`` says whether the
    convention can differ from torch under these options (e.g. weight-decay conventions need
    ``weight_decay > 0``).
    """

    name: str
    families: tuple[str, ...]
    description: str
    reference: str
    build: Callable[..., Any]
    applies: Callable[[dict[str, Any]], bool] = field(default=always)


@dataclass(frozen=True)
class Family:
    """The torch convention of one ``like`` name: its kind and the refbp reference builder."""

    like: str
    kind: str  # "optimizer", "layer" or "loss"
    build: Callable[..., Any]
    torch_options: frozenset[str] = frozenset()


def with_update(base: type, update: Callable[..., None], params: list[Any],
                options: dict[str, Any], **switches: Any) -> Any:
    """An instance of a subclass of the refbp optimizer ``base`` whose ``update`` is
    ``update`` with the keyword ``switches`` bound (the usual shape of an optimizer variant),
    over ``params`` with torch's ``options``."""
    rule = partial(update, **switches) if switches else update
    cls = type(f"{base.__name__}Variant", (base,), {"update": staticmethod(rule)})
    return cls(params, **options)
