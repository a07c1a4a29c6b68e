"""Declarations of the lazy layers: ``LazyLinear``, ``LazyConv{1,2,3}d``,
``LazyConvTranspose{1,2,3}d``, ``LazyBatchNorm{1,2,3}d``, ``LazyInstanceNorm{1,2,3}d``.

A lazy layer reads its input size from its first input and then *becomes* its eager class
(``refbp.nn.lazy``): its maths are the eager class's, checked by the eager class's op checks,
so a lazy layer has no op check, no ATen operator (a captured graph holds the eager op), no
size rule (it holds nothing before its first forward) and no output rule of its own. Its
converter (``refbp.mirror.lazy``) hands the weights an uninitialised torch twin materialises
to the refbp layer; ``parity_tests/test_lazy_parity.py`` and torch's ``module_db`` cases of
the lazy convolutions check them against torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.registry.opinfo import REQUIRED, OpInfo

_F = "torch.nn.functional"
_CONV = {"out_channels": REQUIRED, "kernel_size": REQUIRED, "stride": 1, "padding": 0,
         "dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"}
_CONVT = {"out_channels": REQUIRED, "kernel_size": REQUIRED, "stride": 1, "padding": 0,
          "output_padding": 0, "groups": 1, "bias": True, "dilation": 1,
          "padding_mode": "zeros"}
# torch's lazy normalizations (instance norms too) default to affine and running statistics
_NORM = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True,
         "bias": True}


def _lazy(eager: str, args: Mapping[str, Any], functional: str) -> OpInfo:
    """``Lazy<eager>``: the class ``refbp.nn.lazy.Lazy<eager>``, its maths the eager class's
    once the first forward has sized it."""
    name = f"Lazy{eager}"
    path = "refbp.nn.lazy"
    return OpInfo(name=name, kind="layer", module=path, forward=f"{path}:{name}.forward",
                  backward=f"{path}:{name}.backward", args=args,
                  functional=f"{_F}.{functional}", converter="refbp.mirror.lazy",
                  suite_note=f"becomes {eager} at its first forward, whose op checks run the "
                  "maths; parity_tests/test_lazy_parity.py checks the materialisation and "
                  "torch's weights handed over",
                  shape_note=f"the output is {eager}'s (it becomes {eager} at its first "
                  "forward)")


LAZY_LAYERS: tuple[OpInfo, ...] = (
    _lazy("Linear", {"out_features": REQUIRED, "bias": True}, "linear"),
    *(_lazy(f"Conv{d}d", _CONV, f"conv{d}d") for d in (1, 2, 3)),
    *(_lazy(f"ConvTranspose{d}d", _CONVT, f"conv_transpose{d}d") for d in (1, 2, 3)),
    *(_lazy(f"BatchNorm{d}d", _NORM, "batch_norm") for d in (1, 2, 3)),
    *(_lazy(f"InstanceNorm{d}d", _NORM, "instance_norm") for d in (1, 2, 3)),
)
