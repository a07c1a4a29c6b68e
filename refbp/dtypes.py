"""The floating-point dtypes refbp supports, declared once (NumPy only).

Everything that depends on the set of dtypes reads it from here: input validation
(``refbp._checks.FLOAT_DTYPES``), the default dtype of optimizer scalars, the bit-pattern
tricks (ULP distances, ReLU's branch-free backward), the built-in suites (one scenario per
dtype, named with its short suffix), the ``--dtype`` choices, ``[tool.refbp]`` tables, the
results schema and the torch dtype of the mirror. Each dtype also needs its tolerance in
:data:`refbp.tolerances.TOLERANCES` (a test checks that every dtype here has one).

=========  =====  ==================  =========================================
dtype      short  same-size integers  notes
=========  =====  ==================  =========================================
float64    f64    int64 / uint64      parity's default
float32    f32    int32 / uint32      torch's default dtype
=========  =====  ==================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DTYPE_NAMES", "DTYPE_WORDS", "FLOAT_TYPES", "FloatType", "float_type"]


@dataclass(frozen=True)
class FloatType:
    """One supported floating-point dtype.

    Attributes
    ----------
    name : str
        NumPy's (and torch's) name, e.g. ``"float64"``: the spelling in scenarios, reports,
        ``--dtype`` and ``torch.<name>``.
    short : str
        The suffix of built-in scenario names (``"f64"``).
    bits : int
        Its size; the same-size integers read its bit patterns.
    """

    name: str
    short: str
    bits: int

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype."""
        import numpy as np

        return np.dtype(self.name)

    @property
    def int_type(self) -> Any:
        """The signed integer type of the same size (``np.int64`` for float64)."""
        import numpy as np

        return np.dtype(f"int{self.bits}").type

    @property
    def uint_type(self) -> Any:
        """The unsigned integer type of the same size (``np.uint64`` for float64)."""
        import numpy as np

        return np.dtype(f"uint{self.bits}").type

    @property
    def sign_mask(self) -> int:
        """The magnitude bits of the same-size signed integer (all but the sign bit)."""
        return (1 << (self.bits - 1)) - 1


FLOAT_TYPES: tuple[FloatType, ...] = (
    FloatType("float64", "f64", 64),
    FloatType("float32", "f32", 32),
)
"""The supported dtypes, in the order the suites run them (float64 first)."""

DTYPE_NAMES: tuple[str, ...] = tuple(t.name for t in FLOAT_TYPES)
"""Their names; importing them imports nothing (the ``refbp`` command's parser uses them)."""


def _in_words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


DTYPE_WORDS: str = _in_words([t.name for t in sorted(FLOAT_TYPES, key=lambda t: t.bits)])
"""The supported dtypes in words, smallest first (``"float32 or float64"``): every error
message that names them reads this."""


def float_type(dtype: object) -> FloatType | None:
    """The supported dtype ``dtype`` (a name or a NumPy dtype) is, or None."""
    import numpy as np

    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        return None
    return next((t for t in FLOAT_TYPES if t.name == name), None)
