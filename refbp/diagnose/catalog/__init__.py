"""The convention catalog: named variants of optimizers, layers and losses (no torch).

Each :class:`Variant` is a refbp implementation of one *other* convention, with a one-line
description (phrased to follow "matches torch's X except ...") and a reference to where the
convention comes from. Variants of a family are run on the same trajectory as the user's code
when it disagrees with torch; the one that matches to float64 precision names the convention.

The entries (:class:`Variant`, :class:`Family` in :mod:`refbp.diagnose.variant`) live in
:mod:`refbp.diagnose.catalog.optim`, :mod:`~.adaptive`, :mod:`~.layer` and
:mod:`~.loss`; :func:`variants_for` and :func:`catalog_frame` read them. The layer and loss
families are the ops declared with ``families`` in ``refbp.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refbp.diagnose.catalog import adaptive, layer, loss, optim
from refbp.diagnose.variant import Family, Variant
from refbp.registry.ops import family_ops

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Family", "Variant", "catalog_frame", "family", "get_variant", "variants_for"]


def _all_variants() -> list[Variant]:
    return [*optim.VARIANTS, *adaptive.VARIANTS, *layer.VARIANTS,
            *loss.VARIANTS]


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
