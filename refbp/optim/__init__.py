"""NumPy optimizers with ``torch.optim`` semantics (no torch).

Same class names, constructor arguments, defaults, validation messages, ``param_groups``,
``state`` keys, ``zero_grad``, ``step(closure)`` and state dicts as ``torch.optim``; each update
follows torch's single-tensor (``foreach=False``) code path operation by operation. torch's
implementation switches are accepted as keywords where torch's class takes them:
``foreach``/``fused`` with any value (the same update rule), ``capturable``/``differentiable``
only false (``True`` raises ``ValueError`` with the reason). Each
optimizer is declared in :mod:`refbp.registry.optimizers`, and this package's exports come
from the declarations (:func:`~refbp.registry.optimizers.optim_exports`: every declared
optimizer's class from its module, and ``Optimizer``, ``lr_scheduler``, ``swa_utils`` and
the default-dtype functions); the type stub beside this file (``__init__.pyi``, what type
checkers read) is generated from the same declarations by ``python -m refbp.registry.docs``.
The table of the optimizers (``docs_table()``) ends this docstring.

Learning-rate schedulers are in ``refbp.optim.lr_scheduler``, weight averaging (SWA, EMA,
``SWALR``, ``update_bn``) in ``refbp.optim.swa_utils``, as in torch.

Scalar state (``step``, NAdam's ``mu_product``) follows torch's default dtype rule:
``refbp.optim.set_default_dtype`` / ``default_dtype`` mirror ``torch.set_default_dtype``.
"""

from __future__ import annotations

from refbp.registry.optimizers import docs_table as _docs_table
from refbp.registry.optimizers import optim_exports as _optim_exports
from refbp.registry.table import load_exports as _load_exports

_EXPORTS = _optim_exports()
globals().update(_load_exports(_EXPORTS))
__all__ = list(_EXPORTS)
__doc__ = f"{__doc__}\n{_docs_table()}\n"
