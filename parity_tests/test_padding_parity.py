"""Parity of every padding layer with torch: output and input gradient, float64 and float32,
batched and unbatched inputs, the op-check options of each declaration plus an int padding,
a maximal one (size - 1 for reflection, size for circular) and a cropping one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp.mirror import compare_module
from refbp.registry.ops import of_kind

pytestmark = pytest.mark.parity

PADS = [o for o in of_kind("layer") if "Pad" in o.name]
SHAPES = {1: (3, 2, 5), 2: (2, 3, 4, 5), 3: (2, 2, 3, 4, 5)}


def _options(name: str, dims: int) -> list[dict[str, Any]]:
    value = {"value": -0.5} if name.startswith("Constant") else {}
    widest = {"Reflection": [1, 4, 2, 3, 1, 2], "Circular": [5, 1, 4, 0, 3, 1]}.get(
        name[: name.index("Pad")], [2, 3, 1, 4, 0, 2])
    out = [{"padding": 2, **value}, {"padding": widest[: 2 * dims], **value}]
    if name.startswith(("Constant", "Zero", "Circular", "Replication")):
        out.append({"padding": [-1, 2, 1, -1, 0, 1][: 2 * dims], **value})  # crops
    return out


CASES = [(o.name, o, opts, batched) for o in PADS
         for opts in (o.samples[0].options, *_options(o.name, int(o.name[-2])))
         for batched in (True, False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,op,options,batched", CASES,
                         ids=[f"{c[0]}-{c[2]}-{'batch' if c[3] else 'single'}" for c in CASES])
def test_padding_matches_torch(name: str, op: Any, options: dict[str, Any], batched: bool,
                               dtype: Any) -> None:
    shape = SHAPES[int(name[-2])]
    x = np.random.default_rng(1).standard_normal(shape if batched else shape[1:]).astype(dtype)
    result = compare_module(op.numpy_class()(**options), x)
    bad = {k: str(d) for k, d in result.items() if not d.passed}
    assert not bad, f"refbp vs torch: {name} {options}: {bad}"
