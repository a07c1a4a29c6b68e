"""Lazy package faces: a package lists its public names and the module defining each; the
module is imported on first attribute access (PEP 562), so ``import refbp.x`` stays cheap and
``refbp --help`` does not pull in pandas, matplotlib or torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                  Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` exporting ``exports``.

    ``exports`` maps each public name to the submodule (relative to ``package``) that defines
    it, e.g. ``{"check_layer": "check"}``. A public name must not also be the name of a
    submodule: importing the submodule would set the package attribute to the module.
    """

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        mod = importlib.import_module(f"{package}.{module}")
        return getattr(mod, name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
