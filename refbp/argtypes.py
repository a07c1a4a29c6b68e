"""argparse value types of the ``refbp`` command: checked numbers, so bad flags exit 2.

Each function converts one command-line string or raises ``argparse.ArgumentTypeError``,
which argparse turns into a usage message and exit code 2 before anything runs.
"""

from __future__ import annotations

import argparse
import math

from refbp.parity.scenario import MAX_SEED


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


def positive_int(text: str) -> int:
    """An integer >= 1 (``--steps``, ``--jobs``)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed(text: str) -> int:
    """A seed: an integer with 0 <= seed < 2**63 (stored as int64 in the reports)."""
    value = _int(text)
    if not 0 <= value < MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 2**63, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (``--timeout``)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def factor(text: str) -> float:
    """A finite number > 1 (``compare --factor``)."""
    value = _float(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be > 1, got {text}")
    return value


def fraction(text: str) -> float:
    """A finite number >= 0 (``compare --floor``)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value
