"""``assert_close``: one refbp array against a reference, with the harness's metrics (no torch).

The comparison is ``refbp.metrics.discrepancy`` at the tolerance of ``refbp.tolerances`` for
the dtype, and the failure message is the harness's "refbp vs torch" line
(``refbp.report.schema.discrepancy_text``): tensor name, worst index, both values there, the
normwise error and the tolerance ratio with the tolerance used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.metrics import Discrepancy, discrepancy
from refbp.report.schema import discrepancy_text, metric_fields, tolerance_fields
from refbp.tolerances import tolerance_for

__all__ = ["assert_close"]


def assert_close(actual: Any, expected: Any, *, dtype: Any = None,
                 name: str = "tensor") -> Discrepancy:
    """Assert that ``actual`` (refbp) agrees with ``expected`` (the reference, e.g. torch).

    Parameters
    ----------
    actual, expected : array_like (a torch tensor on the CPU works as ``expected``)
        Same shape, no broadcasting.
    dtype : float32 or float64, optional
        Selects the tolerance (``refbp.tolerances``); default: ``expected``'s dtype when it is
        floating point, else ``actual``'s.
    name : str
        The tensor's name in the message.

    Returns
    -------
    Discrepancy
        The figures, when the arrays agree.

    Raises
    ------
    AssertionError
        "refbp vs torch: tensor <name>, index (i, j): refbp=.., torch=..; normwise ..
        (tol ..), tol ratio .. (rtol .., atol ..)".
    ValueError
        Different shapes, or a dtype without a tolerance.
    """
    if dtype is None:
        ref = np.asarray(expected)
        dtype = ref.dtype if ref.dtype.kind == "f" else np.asarray(actual).dtype
    tol = tolerance_for(dtype)
    d = discrepancy(actual, expected, tol)
    if not d.passed:
        row = {"tensor": name, **tolerance_fields(tol), **metric_fields(d)}
        raise AssertionError(f"refbp vs torch: {discrepancy_text(row)}")
    return d
