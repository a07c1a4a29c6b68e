"""Stated size limits: what refbp runs without being told that a large run is meant.

A scenario file, a ``--steps`` flag or a spec can ask for more memory or time than the machine
has (``steps = 10**9``, ``n = 10**12``, ``--scenarios /dev/zero``). Inputs beyond these limits
are refused with a :class:`refbp.errors.LimitError` (exit code 2) before anything runs;
``refbp run --allow-large`` (``allow_large=True``) lifts the size limits of scenarios. The
figures leave the built-in suites (at most 100 steps, 256 samples, a few thousand weights)
two orders of magnitude of room.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from refbp.errors import LimitError

MAX_STEPS = 10_000
"""Steps of one scenario (a step records every tensor: ~36 KB of results per step)."""
MAX_DATA_ELEMENTS = 10_000_000
"""Elements of one generated data array (``n`` x ``features`` or ``n`` x ``outputs``)."""
MAX_LAYER_ELEMENTS = 10_000_000
"""Weights of one layer, estimated from its size arguments (``in_features`` x ``out_features``)."""
MAX_SCENARIO_FILE_BYTES = 1 << 20
"""Size of a TOML scenario file (1 MiB; read in bounded chunks, so ``/dev/zero`` stops)."""

OVERRIDE_HINT = "pass --allow-large to run it anyway"


def check_count(value: int, limit: int, what: str) -> None:
    """Raise LimitError when ``value`` exceeds ``limit``, naming ``what`` and the override."""
    if value > limit:
        raise LimitError(f"{what} = {value:,} exceeds the limit of {limit:,} "
                         f"(refbp.limits); {OVERRIDE_HINT}")


def layer_elements(args: Mapping[str, Any]) -> int:
    """Weights a layer's size arguments imply: the product of its ``*features`` integers."""
    sizes = [int(v) for k, v in args.items()
             if k.endswith("features") and isinstance(v, int) and not isinstance(v, bool)]
    return math.prod(abs(v) for v in sizes) if sizes else 0


def check_scenario(s: Any) -> None:
    """Check a :class:`refbp.parity.scenario.Scenario`'s steps, data and layer sizes."""
    check_count(s.steps, MAX_STEPS, f"scenario {s.name}: steps")
    extra = s.data.extra
    spatial = math.prod(int(v) for v in extra.get("size", ())) * math.prod(
        int(extra.get(k, 1)) for k in ("d", "height", "width", "seq_len"))
    for key in ("features", "outputs"):
        check_count(s.data.n * getattr(s.data, key) * spatial, MAX_DATA_ELEMENTS,
                    f"scenario {s.name}: data elements (n x {key} x spatial size)")
    for i, spec in enumerate(s.model):
        check_count(layer_elements(spec.args), MAX_LAYER_ELEMENTS,
                    f"scenario {s.name}: weights of model[{i}] {spec.type}")
