"""NumPy layers and losses with torch's names, arguments, defaults and layouts (no torch).

The exports come from the declarations (:func:`refbp.registry.ops.nn_exports`): every
declared op's class under its name, and the bases, ``Sequential``, ``Parameter``, ``init``
and ``utils``. A new op is exported by its declaration; the type stub beside this file
(``__init__.pyi``, what type checkers read) is generated from the same declarations by
``python -m refbp.registry.docs``.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from refbp.registry.ops import nn_exports as _nn_exports


def _load(path: str) -> _Any:
    """The object of a dotted path (``module:attr``, or a bare module)."""
    module, _, attr = path.partition(":")
    obj = _importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


_EXPORTS = _nn_exports()
globals().update({name: _load(path) for name, path in _EXPORTS.items()})
__all__ = list(_EXPORTS)
