"""The convention catalog: named variants of optimizers, layers and losses (no torch).

Each :class:`Variant` is a refbp implementation of one *other* convention, with a one-line
description (phrased to follow "matches torch's X except ...") and a reference to where the
convention comes from. Variants of a family are run on the same trajectory as the user's code
when it disagrees with torch; the one that matches to float64 precision names the convention.

The entries (:class:`Variant`, :class:`Family` in :mod:`refbp.diagnose.variant`) live in
the modules of this package that define ``VARIANTS`` (today :mod:`~.optim`, :mod:`~.adaptive`,
:mod:`~.layer` and :mod:`~.loss`): every such module is read, in the declaration order of the
families its variants belong to (optimizers, then ops), so a new module needs no list entry.
:func:`variants_for` and :func:`catalog_frame` read them. The families themselves are the
optimizers and ops declared with ``families`` in ``refbp.registry``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

from refbp.diagnose.catalog import optim
from refbp.diagnose.variant import Family, Variant
from refbp.registry.ops import family_ops
from refbp.registry.optimizers import families as optimizer_families

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Family", "Variant", "catalog_frame", "family", "get_variant", "variants_for"]


@cache
def catalog_modules() -> tuple[ModuleType, ...]:
    """The modules of this package that define ``VARIANTS``, in the declaration order of
    their variants' families (``refbp.registry``: optimizers, then ops)."""
    declared = [f for f, _ in optimizer_families()] + [f for f, _ in family_ops()]
    rank = {f: i for i, f in enumerate(declared)}
    found = [importlib.import_module(f"{__name__}.{m.name}")
             for m in pkgutil.iter_modules(__path__)]
    mods = [m for m in found if hasattr(m, "VARIANTS")]
    return tuple(sorted(mods, key=lambda m: min(
        (rank.get(f, len(rank)) for v in m.VARIANTS for f in v.families), default=len(rank))))


def _all_variants() -> list[Variant]:
    return [v for m in catalog_modules() for v in m.VARIANTS]


def declared_families() -> list[Family]:
    """The layer and loss families: the ops ``refbp.registry`` declares as the torch
    reference of an explain family, with their refbp classes."""
    return [Family(name, "loss" if op.kind == "loss" else "layer", op.numpy_class())
            for name, op in family_ops()]


def _all_families() -> dict[str, Family]:
    fams = [*optim.FAMILIES, *declared_families()]
    return {f.like: f for f in fams}


def family(like: str, kind: str | None = None) -> Family:
    """The family named ``like`` (ValueError listing the known names otherwise)."""
    fams = _all_families()
    if like not in fams or (kind is not None and fams[like].kind != kind):
        known = sorted(n for n, f in fams.items() if kind is None or f.kind == kind)
        raise ValueError(f"--like {like!r} is not in the catalog; expected one of "
                         f"{', '.join(known)}")
    return fams[like]


def variants_for(like: str) -> list[Variant]:
    """Every variant of the family ``like``, in catalog order."""
    return [v for v in _all_variants() if like in v.families]


def get_variant(name: str) -> Variant:
    """The variant called ``name`` (KeyError listing the names otherwise)."""
    for v in _all_variants():
        if v.name == name:
            return v
    raise KeyError(f"no variant {name!r}; known: {', '.join(v.name for v in _all_variants())}")


def catalog_frame() -> pd.DataFrame:
    """The catalog as a table: name, families, description, reference."""
    import pandas as pd

    return pd.DataFrame([{"name": v.name, "like": ", ".join(v.families),
                          "description": v.description, "reference": v.reference}
                         for v in _all_variants()])
