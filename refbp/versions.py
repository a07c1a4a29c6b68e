"""The torch releases this refbp release is validated against, and the check made on import.

refbp declares ``torch>=2.4`` without an upper cap (a cap would force a multi-GB reinstall on
every newer torch). Parity is established, release by release, against the torch versions in
:data:`VALIDATED_TORCH` (the tested one is pinned in ``constraints.txt``); on any other version
refbp works but warns once, and every report records the torch version it ran with and whether
it was validated (``provenance.json``: ``torch``, ``torch_validated``).
"""

from __future__ import annotations

import warnings

VALIDATED_TORCH: tuple[str, ...] = ("2.13",)
"""``major.minor`` torch releases whose parity suites pass with this refbp release."""


class UnvalidatedTorchWarning(UserWarning):
    """The installed torch is not among :data:`VALIDATED_TORCH`."""


def torch_release(version: str) -> str:
    """``'2.13.0+cpu'`` -> ``'2.13'``."""
    return ".".join(version.split("+")[0].split(".")[:2])


def is_validated(version: str) -> bool:
    """True when ``version`` (a torch ``__version__``) is a validated release."""
    return torch_release(version) in VALIDATED_TORCH


def warn_if_unvalidated(version: str) -> None:
    """Warn (never fail) when torch ``version`` is not a validated release."""
    if not is_validated(version):
        warnings.warn(f"refbp {_refbp_version()} is validated against torch "
                      f"{', '.join(VALIDATED_TORCH)}; torch {version} is installed. Parity "
                      "results may differ in the last bits; please report failures.",
                      UnvalidatedTorchWarning, stacklevel=3)


def _refbp_version() -> str:
    from refbp import __version__

    return __version__
