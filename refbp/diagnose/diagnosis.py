"""``Diagnosis``: the verdict on user code, its explanation and its report rows (no torch).

A *trajectory* is the ordered list of ``(step, tensor, array)`` records one implementation
produces on a check (parameters after each optimizer step; outputs, gradients and buffers of a
layer; loss values and input gradients of a loss). The user's trajectory is compared with
torch's (or refbp's torch-convention implementation, ``oracle="refbp"``) and with every
catalogued variant's, record by record, with the float64 tolerance of ``refbp.tolerances``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from refbp.diagnose.variant import Variant
from refbp.metrics import Discrepancy, discrepancy
from refbp.report.schema import COLUMN_NAMES, metric_row, scenario_fields
from refbp.tolerances import TOLERANCES

Record = tuple[int, str, np.ndarray]
TOL = TOLERANCES["float64"]


def compare(mine: list[Record], ref: list[Record]) -> list[tuple[int, str, Discrepancy]]:
    """Discrepancy of every record of ``mine`` against the same (step, tensor) of ``ref``."""
    table = {(s, t): a for s, t, a in ref}
    out = []
    for s, t, a in mine:
        if (s, t) not in table:
            raise KeyError(f"reference trajectory has no record for step {s}, tensor {t}")
        out.append((s, t, discrepancy(a, table[(s, t)], TOL)))
    return out


def worst(cmp: list[tuple[int, str, Discrepancy]]) -> float:
    """The largest normwise relative error of a comparison (0 for an empty one)."""
    return max((d.normwise for _, _, d in cmp), default=0.0)


def tensor_phrase(tensor: str) -> str:
    """``param:fc1.weight`` -> ``parameter fc1.weight`` (for sentences)."""
    kind, _, name = tensor.partition(":")
    return {"param": f"parameter {name}", "grad": f"gradient of {name}",
            "state": f"optimizer state {name}", "buffer": f"buffer {name}",
            "grad_input": "input gradient", "loss": "loss value",
            "output": "output"}.get(kind, tensor)


@dataclass(frozen=True)
class Divergence:
    """Where a trajectory first leaves the reference."""

    step: int
    tensor: str
    normwise: float
    max_rel: float
    index: tuple[int, ...]
    user_value: float
    torch_value: float

    def describe(self) -> str:
        return (f"step {self.step}, {tensor_phrase(self.tensor)}, rel err "
                f"{self.normwise:.1e}")


def first_divergence(cmp: list[tuple[int, str, Discrepancy]]) -> Divergence | None:
    for s, t, d in cmp:
        if not d.passed:
            return Divergence(s, t, d.normwise, d.max_rel, d.worst_index, d.a_value, d.b_value)
    return None


@dataclass
class Diagnosis:
    """The verdict of :func:`refbp.diagnose.check_optimizer` (or ``check_layer`` / ``check_loss``).

    Attributes
    ----------
    matches_torch : bool
        The user's trajectory equals torch's to float64 precision (normwise <= 1e-12).
    matched_variant : Variant or None
        The catalogued convention the user's code follows when it does not match torch.
    first_divergence : Divergence or None
        First step and tensor where the user's code leaves torch's behaviour.
    explanation : str
        One sentence, e.g. "your Adam matches torch's Adam except epsilon is added inside the
        square root (TF-style); first divergence at step 1, parameter fc1.weight, rel err
        3.1e-04".
    variants : DataFrame
        One row per variant: name, description, reference, applies, matches (user),
        user_normwise (worst normwise error user vs variant), torch_normwise (variant vs
        torch: how visible the convention is on this check).
    frame : DataFrame
        Rows in the report schema (``refbp.report.schema``): user code in the ``refbp_*``
        columns, torch in the ``torch_*`` columns, the explanation in ``explanation``.
    notes : list of str
        Adapter notes (transposed weights, options not passed, lr schedule skipped, ...).
    noise_floor : float or None
        torch's own run-to-run / thread-count variation on this check (normwise), if measured.
    """

    kind: str
    like: str
    subject: str
    options: dict[str, Any]
    oracle: str
    matches_torch: bool
    matched_variant: Variant | None
    first_divergence: Divergence | None
    explanation: str
    variants: pd.DataFrame
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    noise_floor: float | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.matches_torch else 1

    def __str__(self) -> str:
        lines = [self.explanation]
        if len(self.variants):
            cols = ["name", "applies", "matches", "user_normwise", "torch_normwise"]
            with pd.option_context("display.width", 160, "display.float_format",
                                   "{:.1e}".format):
                lines += ["", self.variants[cols].to_string(index=False)]
        return "\n".join(lines)


def _sentence(like: str, oracle: str, n_steps: int, user_vs_ref: float,
              matched: Variant | None, div: Divergence | None,
              closest: tuple[str, float] | None) -> str:
    side = "torch's" if oracle == "torch" else "torch's (refbp reference)"
    if div is None:
        return (f"your {like} matches {side} {like} to float64 precision over {n_steps} "
                f"step(s) (worst normwise rel err {user_vs_ref:.1e})")
    where = f"first divergence at {div.describe()}"
    if matched is not None:
        return (f"your {like} matches {side} {like} except {matched.description} "
                f"[{matched.name}; {matched.reference}]; {where}")
    near = f" (closest: {closest[0]}, normwise rel err {closest[1]:.1e})" if closest else ""
    return (f"your {like} does not match {side} {like} nor any catalogued convention{near}; "
            f"{where}")


def build_diagnosis(*, kind: str, like: str, subject: str, options: dict[str, Any],
                    oracle: str, user: list[Record], ref: list[Record],
                    variants: list[tuple[Variant, list[Record] | None]], notes: list[str],
                    seed: int, describe: dict[str, str],
                    noise_floor: float | None = None) -> Diagnosis:
    """Compare the user's trajectory with the reference and every variant; explain."""
    cmp = compare(user, ref)
    div = first_divergence(cmp)
    rows = []
    matched: Variant | None = None
    for v, traj in variants:
        if traj is None:
            rows.append({"name": v.name, "applies": False, "matches": False,
                         "user_normwise": np.nan, "torch_normwise": np.nan})
            continue
        to_torch = worst(compare(traj, ref))
        vs_user = compare(user, traj)
        ok = all(d.passed for _, _, d in vs_user) and first_divergence(compare(traj, ref))
        if ok and div is not None and matched is None:
            matched = v
        rows.append({"name": v.name, "applies": True, "matches": bool(ok and div is not None),
                     "user_normwise": worst(vs_user), "torch_normwise": to_torch})
    table = pd.DataFrame(rows, columns=["name", "applies", "matches", "user_normwise",
                                        "torch_normwise"])
    table["description"] = [v.description for v, _ in variants]
    table["reference"] = [v.reference for v, _ in variants]
    applicable = table[table["applies"]]
    closest = None
    if len(applicable):
        best = applicable.loc[applicable["user_normwise"].idxmin()]
        closest = (str(best["name"]), float(best["user_normwise"]))
    steps = max((s for s, _, _ in user), default=0)
    text = _sentence(like, oracle, steps, worst(cmp), matched, div, closest)
    if noise_floor is not None:
        text += f"; torch's own noise floor on this check: normwise {noise_floor:.1e}"
    if notes:
        text += ". Notes: " + "; ".join(notes)
    frame = _frame(cmp, user, ref, subject=subject, kind=kind, like=like, seed=seed,
                   describe=describe, explanation=text)
    return Diagnosis(kind, like, subject, options, oracle, div is None, matched, div, text,
                     table, frame, notes, noise_floor)


def _frame(cmp: list[tuple[int, str, Discrepancy]], user: list[Record], ref: list[Record], *,
           subject: str, kind: str, like: str, seed: int, describe: dict[str, str],
           explanation: str) -> pd.DataFrame:
    losses_u = {s: float(a) for s, t, a in user if t == "loss"}
    losses_r = {s: float(a) for s, t, a in ref if t == "loss"}
    sizes = {(s, t): int(np.size(a)) for s, t, a in user}
    base = scenario_fields(scenario=f"check-{kind}:{subject} like {like}", suite="diagnose",
                           model=describe.get("model", ""), loss=describe.get("loss", ""),
                           optimizer=describe.get("optimizer", ""),
                           batching=describe.get("batching", ""), dtype="float64", seed=seed,
                           tol=TOL)
    rows = [metric_row(base, step=s, tensor=t, d=d, numel=sizes[(s, t)],
                       losses=(losses_u.get(s, np.nan), losses_r.get(s, np.nan)),
                       explanation=explanation) for s, t, d in cmp]
    return pd.DataFrame(rows, columns=COLUMN_NAMES)
