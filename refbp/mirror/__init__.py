"""The PyTorch side of refbp: stock torch twins of refbp models, and comparison helpers.

Importing this package imports torch; the NumPy side (``refbp.nn``, ``refbp.optim``, ...)
never does.
"""

from __future__ import annotations

from refbp.mirror import lazy as _lazy  # noqa: F401  (registers the lazy layers' converters)
from refbp.mirror import losses as _losses  # noqa: F401  (registers its converters)
from refbp.mirror.attention import register_attention_converters
from refbp.mirror.modules import (
    Converter,
    SSELossTorch,
    from_torch,
    register_converter,
    spec_to_torch,
    supported_types,
    to_torch,
)
from refbp.mirror.oracle import as_tensor, compare_loss, compare_module, to_numpy
from refbp.mirror.pairs import PairProbeTorch
from refbp.mirror.sequence import RNNOutputTorch

__all__ = [
    "Converter", "PairProbeTorch", "RNNOutputTorch", "SSELossTorch", "as_tensor", "compare_loss",
    "compare_module", "from_torch", "register_attention_converters", "register_converter",
    "spec_to_torch", "supported_types", "to_numpy", "to_torch",
]
