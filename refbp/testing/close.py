"""``assert_close``: one refbp array against a reference, with the harness's metrics (no torch).

The comparison is ``refbp.metrics.discrepancy`` at the tolerance of ``refbp.tolerances`` for
the dtype, and the failure message is in the manner of ``torch.testing.assert_close``
(``refbp.report.messages.close_lines``): mismatched elements (count and percent), the greatest
absolute and relative difference with their index and the allowed values, the normwise
difference, and both values at the worst element. It reads "refbp vs torch" when the reference
is a torch tensor and "actual vs expected" otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.metrics import Discrepancy, discrepancy
from refbp.report.messages import HEADER, close_lines
from refbp.report.schema import metric_fields, tolerance_fields
from refbp.tolerances import tolerance_for

__all__ = ["assert_close"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


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
        "refbp vs torch: Tensor-likes are not close!" (or "actual vs expected: ..." when
        ``expected`` is not a torch tensor), then the tensor's name, "Mismatched elements: 1 / 2
        (50.0%)", "Greatest absolute difference: 0.5 at index (0, 1) (up to 1e-12 allowed)",
        the greatest relative and the normwise difference, and both values at the worst
        element.
    ValueError
        Different shapes, or a dtype without a tolerance.
    """
    __tracebackhide__ = True  # pytest shows the caller's frame, not refbp's
    if dtype is None:
        ref = np.asarray(expected)
        dtype = ref.dtype if ref.dtype.kind == "f" else np.asarray(actual).dtype
    tol = tolerance_for(dtype)
    d = discrepancy(actual, expected, tol)
    if not d.passed:
        sides = ("refbp", "torch") if _is_torch(expected) else ("actual", "expected")
        row = {"tensor": name, "numel": int(np.prod(np.shape(actual))),
               **tolerance_fields(tol), **metric_fields(d)}
        lines = [f"{sides[0]} vs {sides[1]}: {HEADER}", "", f"Tensor: {name}",
                 *close_lines(row, actual=sides[0], expected=sides[1])]
        raise AssertionError("\n".join(lines)) from None
    return d
