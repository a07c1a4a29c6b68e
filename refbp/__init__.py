"""refbp: a from-scratch NumPy reference implementation of backpropagation, checked against PyTorch.

The NumPy side (``refbp.nn``, ``refbp.optim``, ``refbp.graph``, ``refbp.gradcheck``,
``refbp.data``) never imports torch. The torch side lives in ``refbp.mirror`` and
``refbp.parity``.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__"]
