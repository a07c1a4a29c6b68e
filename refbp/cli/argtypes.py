"""argparse value types of the ``refbp`` command: checked numbers, so bad flags exit 2.

Each function converts one command-line string or raises ``argparse.ArgumentTypeError``,
which argparse turns into a usage message and exit code 2 before anything runs.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from refbp.parity.scenario import MAX_SEED

T = TypeVar("T", int, float)


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _checked(convert: Callable[[str], T], ok: Callable[[T], bool], requirement: str,
             name: str) -> Callable[[str], T]:
    """An argparse type: ``convert`` the text, then require ``ok(value)``."""
    def parse(text: str) -> T:
        value = convert(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    parse.__name__ = name
    return parse


positive_int = _checked(_int, lambda v: v >= 1, ">= 1", "positive_int")
"""An integer >= 1 (``--steps``, ``--jobs``)."""
seed = _checked(_int, lambda v: 0 <= v < MAX_SEED, ">= 0 and < 2**63", "seed")
"""A seed: an integer with 0 <= seed < 2**63 (stored as int64 in the reports)."""
positive_float = _checked(_float, lambda v: v > 0, "> 0", "positive_float")
"""A finite number > 0 (``--timeout``)."""
factor = _checked(_float, lambda v: v > 1, "> 1", "factor")
"""A finite number > 1 (``compare --factor``)."""
fraction = _checked(_float, lambda v: v >= 0, ">= 0", "fraction")
"""A finite number >= 0 (``compare --floor``)."""


def add_comparison_options(parser: argparse.ArgumentParser) -> None:
    """``--factor``, ``--floor`` and ``--allow-removed``: the regression rule of ``refbp
    compare`` (``refbp.report.compare``), shared by ``compare`` and ``history``."""
    parser.add_argument("--factor", type=factor, default=10.0,
                        help="flag discrepancies that grew more than this factor (> 1, "
                        "default 10)")
    parser.add_argument("--floor", type=fraction, default=1e-3,
                        help="ignore growth that stays below this fraction of the tolerance "
                        "(default 1e-3)")
    parser.add_argument("--allow-removed", action="store_true",
                        help="scenarios or tensors missing from the later report are "
                        "reported but are not a regression")
