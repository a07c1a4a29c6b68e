"""NumPy layers and losses with torch's names, arguments, defaults and layouts (no torch).

The exports come from the declarations (:func:`refbp.registry.ops.nn_exports`): every
declared op's class under its name, and the bases, ``Sequential``, ``Parameter``, ``init``
and ``utils``. A new op is exported by its declaration; the type stub beside this file
(``__init__.pyi``, what type checkers read) is generated from the same declarations by
``python -m refbp.registry.docs``.
"""

from __future__ import annotations

from refbp.registry.ops import nn_exports as _nn_exports
from refbp.registry.table import load_exports as _load_exports

_EXPORTS = _nn_exports()
globals().update(_load_exports(_EXPORTS))
__all__ = list(_EXPORTS)
