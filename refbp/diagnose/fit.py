"""Find the constants a user's code hard-codes, by fitting them (no torch).

A from-scratch RMSprop often writes ``np.sqrt(h) + 1e-7`` instead of taking ``eps``; a book's
BatchNorm writes ``np.sqrt(var + 10e-7)``. Such a constant is not a convention, it is a value:
the check should say "matches torch's RMSprop with eps=1e-07 (torch default 1e-08)". For every
torch option the user's code does not take as a parameter, candidate values are tried, one
option at a time, on torch's convention and on every catalogued variant (refbp
implementations, so no torch is needed): first the numeric literals written in the user's
source, then the values common in the wild. The first candidate whose trajectory the user's
code reproduces to float64 precision is the fitted constant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from refbp.diagnose.diagnosis import Record, compare_trajectories

COMMON = {
    "eps": (1e-7, 1e-8, 1e-6, 1e-5, 1e-10, 1e-4, 1e-3, 1e-12, 1e-9, 0.0),
    "decay": (0.9, 0.99, 0.999, 0.95, 0.5),
    "lr": (),
    "weight_decay": (),
}
_KIND = {"eps": "eps", "alpha": "decay", "rho": "decay", "momentum": "decay", "lr": "lr",
         "weight_decay": "weight_decay", "log_eps": "eps"}
BOOLEANS = ("nesterov", "amsgrad", "centered")


@dataclass(frozen=True)
class Fitted:
    """A constant found in the user's code: option, value, torch's default."""

    option: str
    value: Any
    default: Any

    def describe(self) -> str:
        """``option=value``, with torch's default beside it when there is one."""
        if self.default is None:
            return f"{self.option}={self.value!r}"
        return f"{self.option}={self.value!r} (torch default {self.default!r})"


def _plausible(kind: str, v: float) -> bool:
    if kind == "eps":
        return 0 < v <= 1e-2
    if kind == "decay":
        return 0.0 < v < 1.0
    return 0 < v <= 10


def candidates(option: str, default: Any, literals: Iterable[float]) -> list[Any]:
    """Values to try for ``option``: the source's literals first, then common values."""
    if option in BOOLEANS:
        return [not default] if isinstance(default, bool) else []
    lits = list(literals)
    if option == "betas":
        decays = [v for v in [*lits, *COMMON["decay"]] if _plausible("decay", v)]
        pairs = [(a, b) for a in decays for b in decays if a <= b]
        return [p for p in dict.fromkeys(pairs) if p != tuple(default)]
    kind = _KIND.get(option)
    if kind is None:
        return []
    values = [v for v in [*lits, *COMMON[kind]] if _plausible(kind, v)]
    return [v for v in dict.fromkeys(values) if v != default]


def reproduces(user: list[Record], traj: list[Record] | None) -> bool:
    """Whether ``user`` equals ``traj`` to float64 precision on every record."""
    return traj is not None and all(d.passed for _, _, d in compare_trajectories(user, traj))


def fit_constants(user: list[Record], options: dict[str, Any], hard_coded: dict[str, Any],
                  literals: list[float], variants: list[Any],
                  run: Callable[[dict[str, Any], Any], list[Record] | None]
                  ) -> tuple[list[Fitted], Any]:
    """``([Fitted], variant or None)``: one hard-coded option's value under which torch's
    convention (``None``) or a variant reproduces the user's trajectory; ``([], None)`` when
    none does. ``run(options, variant)`` gives the trajectory (None: variant not applicable);
    ``hard_coded`` maps option names to torch's defaults."""
    for option, default in hard_coded.items():
        for value in candidates(option, default, literals):
            trial = {**options, option: value}
            for v in [None, *variants]:
                try:
                    traj = run(trial, v)
                except (ValueError, TypeError, ZeroDivisionError, FloatingPointError):
                    continue
                if reproduces(user, traj):
                    return [Fitted(option, value, default)], v
    return [], None
