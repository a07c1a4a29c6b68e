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
from refbp.report.schema import metric_row, rows_frame, scenario_fields
from refbp.tolerances import tolerance_for

Record = tuple[int, str, np.ndarray]
TOL = tolerance_for("float64")


def compare_trajectories(mine: list[Record],
                         ref: list[Record]) -> list[tuple[int, str, Discrepancy]]:
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
    if kind == "state" and ":" in name:
        param, _, key = name.rpartition(":")
        return f"optimizer state {key} of {param}"
    return {"param": f"parameter {name}", "grad": f"gradient of {name}",
            "state": f"optimizer state {name}", "buffer": f"buffer {name}",
            "grad_input": "input gradient", "loss": "loss value",
            "output": "eval-mode output" if name == "eval" else "output"}.get(kind, tensor)


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
        """One line: step, tensor and relative error of the first divergence."""
        return (f"step {self.step}, {tensor_phrase(self.tensor)}, rel err "
                f"{self.normwise:.1e}")


def first_divergence(cmp: list[tuple[int, str, Discrepancy]]) -> Divergence | None:
    """The first ``(step, tensor, discrepancy)`` that failed, as a :class:`Divergence`, or None."""
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
    thread_noise : float or None
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
    thread_noise: float | None = None

    untested: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def exit_code(self) -> int:
        """0: matches torch; 1: does not, or conventions were left untested (refbp's exit
        codes: 1 is "not verified to match", 3 is reserved for refbp's own internal errors)."""
        if not self.matches_torch:
            return 1
        return 1 if self.untested else 0

    def __str__(self) -> str:
        lines = [self.explanation]
        if len(self.variants):
            cols = ["name", "applies", "matches", "user_normwise", "torch_normwise"]
            shown = self.variants[cols].rename(columns={
                "user_normwise": "yours_vs_variant", "torch_normwise": "variant_vs_torch"})
            with pd.option_context("display.width", 160, "display.float_format",
                                   "{:.1e}".format):
                lines += ["", shown.to_string(index=False),
                          "(normwise relative errors: yours_vs_variant = your code against the "
                          "convention; variant_vs_torch = the convention against torch)"]
        return "\n".join(lines)


KIND_PHRASES = {"param": "parameter updates", "grad": "parameter gradients",
                "grad_input": "input gradients", "output": "outputs",
                "eval_output": "eval-mode outputs", "state": "averaged parameters",
                "buffer": "running statistics", "loss": "loss values"}


def kinds_split(cmp: list[tuple[int, str, Discrepancy]]) -> tuple[list[str], list[str]]:
    """``(kinds that match the reference on every record, kinds that do not)`` in order."""
    order: list[str] = []
    bad: set[str] = set()
    for _, t, d in cmp:
        k = "eval_output" if t == "output:eval" else t.split(":", 1)[0]
        if k not in order:
            order.append(k)
        if not d.passed:
            bad.add(k)
    return [k for k in order if k not in bad], [k for k in order if k in bad]


def _phrase(kinds: list[str]) -> str:
    names = list(dict.fromkeys(KIND_PHRASES.get(k, k) for k in kinds))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class Verdict:
    """What the sentence needs: who, against what, with which constants, and the results."""

    label: str
    like: str
    oracle: str
    constants: str = ""
    untested: tuple[str, ...] = ()
    untested_reason: str = ""
    eps: str = ""

    def describe(self, v: Variant) -> str:
        """The variant's description with the fitted epsilon written in."""
        return v.description.replace("+ eps", f"+ {self.eps}") if self.eps else v.description


def _sentence(v: Verdict, n_steps: int, user_vs_ref: float, matched: Variant | None,
              div: Divergence | None, closest: tuple[str, float] | None,
              kinds: tuple[list[str], list[str]]) -> str:
    side = "torch's" if v.oracle == "torch" else "torch's (refbp reference)"
    target = f"{side} {v.like}{v.constants}"
    if div is None:
        text = (f"your {v.label} matches {target} to float64 precision over {n_steps} "
                f"step(s) (worst normwise rel err {user_vs_ref:.1e})")
        if v.untested:
            text += (f"; NOT TESTED: {', '.join(v.untested)} (indistinguishable from torch at a "
                     f"constant learning rate, and {v.untested_reason}, so the learning rate "
                     "was kept constant)")
        return text
    where = f"first divergence at {div.describe()}"
    ok, bad = kinds
    if ok:
        head = (f"your {v.label}'s {_phrase(ok)} match {target} exactly; only the "
                f"{_phrase(bad)} differ")
        if matched is not None:
            return f"{head}: {v.describe(matched)} [{matched.name}; {matched.reference}]; {where}"
    else:
        head = f"your {v.label} does not match {target}"
        if matched is not None:
            return (f"your {v.label} matches {target} except {v.describe(matched)} "
                    f"[{matched.name}; {matched.reference}]; {where}")
    near = ""
    if closest is not None and closest[1] * 1.05 < user_vs_ref:
        near = (f"; closest catalogued convention: {closest[0]} (normwise rel err of your code "
                f"against it {closest[1]:.1e}, against torch {user_vs_ref:.1e}: "
                f"{user_vs_ref / max(closest[1], 1e-300):.2g}x closer)")
    return f"{head}{'' if ok else ' nor any catalogued convention'}; {where}{near}"


def build_diagnosis(*, kind: str, like: str, subject: str, options: dict[str, Any],
                    oracle: str, user: list[Record], ref: list[Record],
                    variants: list[tuple[Variant, list[Record] | None]], notes: list[str],
                    seed: int, describe: dict[str, str],
                    thread_noise: float | None = None, verdict: Verdict | None = None,
                    mismatch: str = "") -> Diagnosis:
    """Compare the user's trajectory with the reference and every variant; explain.

    ``mismatch``, when given, makes a trajectory that equals the reference a mismatch anyway
    (e.g. the user's code ignores an option that was asked for) and is added to the sentence.
    """
    verdict = verdict or Verdict(label=like, like=like, oracle=oracle)
    cmp = compare_trajectories(user, ref)
    div = first_divergence(cmp)
    rows = []
    matched: Variant | None = None
    hidden = []
    for v, traj in variants:
        if traj is None:
            rows.append({"name": v.name, "applies": False, "matches": False,
                         "user_normwise": np.nan, "torch_normwise": np.nan})
            continue
        vs_ref = compare_trajectories(traj, ref)
        to_torch = worst(vs_ref)
        vs_user = compare_trajectories(user, traj)
        visible = first_divergence(vs_ref) is not None
        if not visible:
            hidden.append(v.name)
        ok = all(d.passed for _, _, d in vs_user) and visible
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
    untested = tuple(hidden) if verdict.untested_reason else ()
    verdict = Verdict(verdict.label, verdict.like, verdict.oracle, verdict.constants, untested,
                      verdict.untested_reason, verdict.eps)
    text = _sentence(verdict, steps, worst(cmp), matched, div, closest, kinds_split(cmp))
    if mismatch:
        text += f"; {mismatch}"
    if thread_noise is not None:
        text += ("; torch against itself (1 vs 2 threads) on this check: normwise "
                 f"{thread_noise:.1e}")
    if notes:
        text += ". Notes: " + "; ".join(notes)
    frame = _frame(cmp, user, ref, subject=subject, kind=kind, like=like, seed=seed,
                   describe=describe, explanation=text)
    return Diagnosis(kind, like, subject, options, oracle, div is None and not mismatch,
                     matched, div, text, table, frame, notes, thread_noise, list(untested),
                     verdict.label)


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
    return rows_frame(rows)
